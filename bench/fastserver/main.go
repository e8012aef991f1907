// Command fastserver is a minimal HTTP endpoint for load-generator benchmarks.
//
// It answers every POST with a fixed KServe-style prediction and records the arrival
// time of each request, so that the rate a load generator really delivered can be
// measured on the server side. It is written in Go so that, pinned to one core, it is
// faster than any of the load generators being compared and never the bottleneck.
//
//	GET  /stats   {"count": N, "arrivalsNs": [...]} (nanoseconds since start)
//	POST /reset   forget the recorded arrivals
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

var (
	mu       sync.Mutex
	arrivals = make([]int64, 0, 1<<20)
	start    = time.Now()
	response = []byte(`{"predictions":[0.5]}`)
)

func predict(w http.ResponseWriter, r *http.Request) {
	t := time.Since(start).Nanoseconds()
	_, _ = io.Copy(io.Discard, r.Body)
	mu.Lock()
	arrivals = append(arrivals, t)
	mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(response)
}

func stats(w http.ResponseWriter, _ *http.Request) {
	mu.Lock()
	snapshot := append([]int64(nil), arrivals...)
	mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"count": len(snapshot), "arrivalsNs": snapshot})
}

func reset(w http.ResponseWriter, _ *http.Request) {
	mu.Lock()
	arrivals = arrivals[:0]
	mu.Unlock()
	_, _ = w.Write([]byte(`{"reset":true}`))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	portFile := flag.String("port-file", "", "write the bound port here")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	fmt.Printf("fastserver listening on http://127.0.0.1:%d\n", port)
	if *portFile != "" {
		tmp := *portFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", port)), 0o644); err == nil {
			_ = os.Rename(tmp, *portFile)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", stats)
	mux.HandleFunc("/reset", reset)
	mux.HandleFunc("/", predict)
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
