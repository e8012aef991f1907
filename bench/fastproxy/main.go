// Command fastproxy is the smallest reverse proxy the standard library makes, for the
// capture benchmark: it shows what one more process on the request path costs on the
// machine at hand, whatever the proxy does, so that what modelrollout capture adds on
// top of a plain hop can be told apart.
//
// It forwards every request to -upstream (net/http/httputil's ReverseProxy, keep-alive
// connections) and writes the port it listens on to -port-file.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	upstream := flag.String("upstream", "http://127.0.0.1:8080", "where to forward")
	port := flag.Int("port", 0, "port on 127.0.0.1; 0 picks a free one")
	portFile := flag.String("port-file", "", "write the bound port here")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("-upstream: %v", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
	}
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	if *portFile != "" {
		bound := listener.Addr().(*net.TCPAddr).Port
		if err := os.WriteFile(*portFile, []byte(fmt.Sprintf("%d\n", bound)), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	log.Fatal(http.Serve(listener, proxy))
}
