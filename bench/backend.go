package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// backendBody is what the echo backend answers: small, like an API
// response, so the run measures the gateway and not the payload.
var backendBody = []byte("ok: the legacy app answered; this body is 64 bytes long.........\n")

// echoHeader carries the X-Remote-User the backend received back to the
// load generator, which checks that every gated request arrived with an
// identity.
const echoHeader = "X-Echo-User"

var noUser = []string{"-"}

// runBackend is the tiny echo backend (see backendEnv), in its own
// process so that its CPU time is not counted as the load generator's or a
// server's. It prints its address on stdout and serves until killed.
func runBackend() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, ln.Addr().String())
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			// Always one echo header, so every scenario's answers have
			// the same shape; "-" when no identity came.
			if u := r.Header["X-Remote-User"]; len(u) > 0 {
				h[echoHeader] = u
			} else {
				h[echoHeader] = noUser
			}
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			w.Write(backendBody)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	return srv.Serve(ln)
}
