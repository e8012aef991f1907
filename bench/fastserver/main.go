// Command fastserver is a minimal HTTP endpoint for load-generator benchmarks.
//
// It answers every POST with a fixed KServe-style prediction and records the arrival
// time and service time of each request, so that the rate and the latency a load
// generator reports can be checked against the server's own record. It is written in Go
// so that, pinned to one core, it is faster than any of the load generators being
// compared, and so that its handler timing covers nearly all of the server-side time
// (request parsing and response writing cost microseconds here).
//
// -latency-ms and -jitter-ms inject a delay: a fixed part plus an exponentially
// distributed part with the given mean.
//
//	GET  /stats   {"count": N, "arrivalsNs": [...], "serviceNs": [...]}
//	POST /reset   forget the records
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

var (
	mu       sync.Mutex
	arrivals = make([]int64, 0, 1<<20)
	services = make([]int64, 0, 1<<20)
	start    = time.Now()
	response = []byte(`{"predictions":[0.5]}`)
	latency  time.Duration
	jitter   float64
	rng      *rand.Rand
)

func delay() time.Duration {
	d := latency
	if jitter > 0 {
		mu.Lock()
		d += time.Duration(rng.ExpFloat64() * jitter * float64(time.Millisecond))
		mu.Unlock()
	}
	return d
}

func predict(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	_, _ = io.Copy(io.Discard, r.Body)
	if d := delay(); d > 0 {
		time.Sleep(d)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(response)
	end := time.Now()
	mu.Lock()
	arrivals = append(arrivals, begin.Sub(start).Nanoseconds())
	services = append(services, end.Sub(begin).Nanoseconds())
	mu.Unlock()
}

func stats(w http.ResponseWriter, _ *http.Request) {
	mu.Lock()
	a := append([]int64(nil), arrivals...)
	s := append([]int64(nil), services...)
	mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"count": len(a), "arrivalsNs": a, "serviceNs": s})
}

func reset(w http.ResponseWriter, _ *http.Request) {
	mu.Lock()
	arrivals = arrivals[:0]
	services = services[:0]
	mu.Unlock()
	_, _ = w.Write([]byte(`{"reset":true}`))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	portFile := flag.String("port-file", "", "write the bound port here")
	latencyMs := flag.Float64("latency-ms", 0, "fixed injected delay per request")
	jitterMs := flag.Float64("jitter-ms", 0, "mean of an exponential extra delay")
	seed := flag.Int64("seed", 1, "seed of the injected jitter")
	flag.Parse()
	latency = time.Duration(*latencyMs * float64(time.Millisecond))
	jitter = *jitterMs
	rng = rand.New(rand.NewSource(*seed))
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
