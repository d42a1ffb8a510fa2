package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/store"
)

// BenchmarkCaddy runs whole requests through Caddy's HTTP server in this
// process: the site's handler chain as Caddy runs it, with reverse_proxy's
// real round trip to a loopback backend. Only the client's TCP and TLS are
// left out (equal for every variant), so the difference between variants
// is what the gateway costs a request in Caddy, allocations included:
//
//	bare             mTLS + reverse_proxy (no cacgate)
//	bare+user        the same, but the request already carries
//	                 X-Remote-User (forwarding the identity is part of
//	                 what the gateway costs)
//	bare+assertion   ... only X-Cac-Assertion
//	bare+plain       ... the eight plain identity headers cacgate sends by
//	                 default
//	bare+identity    ... the eight and the assertion
//	cacgate          cacgate (enrolled card, valid consent cookie) +
//	                 reverse_proxy, the default headers (compare with
//	                 bare+plain)
//	cacgate+assertion  ... with header assertion on (compare with
//	                 bare+identity)
//	cacgate-user     ... sending X-Remote-User only (header … off)
//
// Each iteration starts from a fresh copy of the browser's headers (the
// gateway edits the request's headers), in every variant alike. Requests
// run 4×GOMAXPROCS at a time; cpu-ns/op is the process's CPU time (the
// raw backend's included, which barely depends on the variant) per
// request: compare it, not ns/op.
func BenchmarkCaddy(b *testing.B) {
	benchmarkCaddy(b, startBenchCaddy(b, ""))
}

// BenchmarkCaddyQuietProxyLog is BenchmarkCaddy with reverse_proxy's own
// logger routed nowhere. Caddy's reverse_proxy serializes each proxied
// request (every header, the TLS state) into its logger's context on every
// request, whatever the log level; a logger that no log includes skips it.
func BenchmarkCaddyQuietProxyLog(b *testing.B) {
	benchmarkCaddy(b, startBenchCaddy(b, "exclude http.handlers.reverse_proxy"))
}

func benchmarkCaddy(b *testing.B, env *benchCaddy) {
	for _, v := range []struct {
		name     string
		srv      *caddyhttp.Server
		identity []string // identity headers the request already carries
	}{
		{"bare", env.bare, nil},
		{"bare+user", env.bare, []string{"X-Remote-User"}},
		{"bare+assertion", env.bare, []string{"X-Cac-Assertion"}},
		{"bare+plain", env.bare, defaultHeaderNames[:]},
		{"bare+identity", env.bare, slices.Collect(maps.Keys(env.identity))},
		{"cacgate", env.gate, nil},
		{"cacgate+assertion", env.gateAll, nil},
		{"cacgate-user", env.gateUser, nil},
	} {
		b.Run(v.name, func(b *testing.B) {
			hdr := env.headers.Clone()
			for _, k := range v.identity {
				hdr[k] = env.identity[k]
			}
			b.ReportAllocs()
			b.SetParallelism(4)
			cpu0 := cpuTime(b)
			b.RunParallel(func(pb *testing.PB) {
				w := &statusWriter{h: http.Header{}}
				for pb.Next() {
					r := env.request(v.srv, hdr)
					clear(w.h)
					w.status = 0
					v.srv.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Errorf("HTTP %d", w.status)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchCaddy is a running Caddy with a bare site and a cacgate site in
// front of one backend.
type benchCaddy struct {
	bare, gate, gateUser, gateAll *caddyhttp.Server
	ports                         map[*caddyhttp.Server]int
	req                           *http.Request
	headers                       http.Header // the browser's, with the consent cookie
	identity                      http.Header // what cacgate adds with the assertion on, as the backend receives it
}

// startBenchCaddy loads the two sites; logExtra goes into the default log's
// block.
func startBenchCaddy(b *testing.B, logExtra string) *benchCaddy {
	b.Helper()
	p := testPKI(b)
	dir := b.TempDir()
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"root.pem", p.Root.CertPEM},
		{"intermediate.pem", p.Intermediate.CertPEM},
		{"server.pem", pemChain(p.Server.Chain)},
		{"server-key.pem", keyPEM(b, p.Server)},
		{"ca.crl", p.CRL},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	backend := startRawBackend(b)
	ports := freePorts(b, 4)
	tlsBlock := fmt.Sprintf(`tls %[1]s/server.pem %[1]s/server-key.pem {
		client_auth {
			mode verify_if_given
			trust_pool file %[1]s/root.pem
		}
	}`, dir)
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %[1]s/storage
	log {
		output file %[1]s/caddy.log
		level INFO
		%[6]s
	}
	cacgate {
		store sqlite %[1]s/cacgate.db
		revocation {
			mode crl
			crl_files %[1]s/ca.crl
			crl_issuers %[1]s/intermediate.pem
			fetch_crls off
		}
	}
}

https://localhost:%[2]d {
	bind 127.0.0.1
	%[4]s
	reverse_proxy %[5]s
}

https://localhost:%[3]d {
	bind 127.0.0.1
	%[4]s
	cacgate
	reverse_proxy %[5]s
}

https://localhost:%[7]d {
	bind 127.0.0.1
	%[4]s
	cacgate {
		header edipi off
		header given_name off
		header family_name off
		header email off
		header affiliation off
		header cert_sha256 off
		header auth_method off
	}
	reverse_proxy %[5]s
}

https://localhost:%[8]d {
	bind 127.0.0.1
	%[4]s
	cacgate {
		header assertion on
	}
	reverse_proxy %[5]s
}
`, dir, ports[0], ports[1], tlsBlock, backend, logExtra, ports[2], ports[3])
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		b.Fatalf("adapting: %v", err)
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		b.Fatalf("loading config: %v", err)
	}
	b.Cleanup(func() {
		if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true); err != nil {
			b.Errorf("unloading config: %v", err)
		}
	})

	env := &benchCaddy{ports: map[*caddyhttp.Server]int{}}
	httpApp, err := caddy.ActiveContext().App("http")
	if err != nil {
		b.Fatal(err)
	}
	for _, srv := range httpApp.(*caddyhttp.App).Servers {
		switch {
		case listensOn(srv, ports[0]):
			env.bare, env.ports[srv] = srv, ports[0]
		case listensOn(srv, ports[1]):
			env.gate, env.ports[srv] = srv, ports[1]
		case listensOn(srv, ports[2]):
			env.gateUser, env.ports[srv] = srv, ports[2]
		case listensOn(srv, ports[3]):
			env.gateAll, env.ports[srv] = srv, ports[3]
		}
	}
	if env.bare == nil || env.gate == nil || env.gateUser == nil || env.gateAll == nil {
		b.Fatal("servers not found in the loaded config")
	}
	appIface, err := caddy.ActiveContext().App("cacgate")
	if err != nil {
		b.Fatal(err)
	}
	app := appIface.(*App)

	doe := card(b, "doe.john.quincy")
	acct := &store.Account{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe", Email: "john.q.doe@mail.mil", Affiliation: "USA", Status: store.StatusActive}
	if err := app.store.CreateAccount(context.Background(), acct); err != nil {
		b.Fatal(err)
	}
	token, err := app.tokens.Issue(fingerprint(doe), time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	env.headers = browserHeaders()
	env.headers["Cookie"] = []string{"theme=dark; " + consent.CookieName + "=" + token + "; lang=en"}
	env.req = httptest.NewRequest("GET", "https://localhost/app/page?id=42", nil)
	env.req.RemoteAddr = "127.0.0.1:50000"
	env.req.TLS = verifiedState(doe, p)
	env.req.TLS.ServerName = "localhost"

	// The first cacgate request links the card, fills the caches and
	// shows what the backend receives (every identity header, with the
	// assertion on).
	w := &statusWriter{h: http.Header{}}
	r := env.request(env.gateAll, env.headers.Clone())
	env.gateAll.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Fatalf("warm-up request: HTTP %d", w.status)
	}
	env.identity = http.Header{}
	for _, name := range append(defaultHeaderNames[:], defaultAssertionHeader) {
		if v := r.Header[name]; len(v) > 0 {
			env.identity[name] = v
		}
	}
	// A CAC holder at a CAC site gets every field but credential (sent
	// where the site accepts other kinds) and account_type (a utility
	// account's), and here the assertion.
	if want := int(gateway.NumFields) - 2 + 1; len(env.identity) != want {
		b.Fatalf("warm-up request carried %d identity headers, want %d", len(env.identity), want)
	}
	return env
}

// cpuTime is this process's user+system CPU time: with the backend in the
// process too, CPU per request is the steadier figure on a shared machine
// (wall time per request mostly measures loopback wake-ups).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// request is a fresh request to srv with a copy of hdr.
func (env *benchCaddy) request(srv *caddyhttp.Server, hdr http.Header) *http.Request {
	r := env.req.Clone(context.Background())
	r.Host = fmt.Sprintf("localhost:%d", env.ports[srv])
	r.Header = hdr.Clone()
	return r
}

// statusWriter is a ResponseWriter that keeps only the status.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header { return w.h }
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *statusWriter) Flush() {}

func listensOn(srv *caddyhttp.Server, port int) bool {
	for _, l := range srv.Listen {
		if strings.HasSuffix(l, fmt.Sprintf(":%d", port)) {
			return true
		}
	}
	return false
}

// rawBackendResponse is the backend's whole answer: small and fixed.
var rawBackendResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")

// startRawBackend serves HTTP/1.1 keep-alive with a fixed answer, reading
// each request only as far as its blank line: its cost barely depends on
// the request's headers, so it does not blur the variants' difference.
func startRawBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReaderSize(conn, 16<<10)
				for {
					// GET requests only: headers end at the blank line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(bytes.TrimRight(line, "\r\n")) == 0 {
							break
						}
					}
					if _, err := conn.Write(rawBackendResponse); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
