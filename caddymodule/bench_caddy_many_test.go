package caddymodule

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/cacgate/cacgate/internal/consent"
)

// BenchmarkCaddyManyCards is BenchmarkCaddy with 1,000 and 10,000 cards
// taking turns, each with its own connection state (certificate, consent
// cookie), against bare Caddy seeing the same connections: the bench
// tool's (d) against (b-10k) in process, without the client's TLS and the
// connections' buffers. Compare cpu-ns/op of cacgate with bare's at the
// same card count; the cards' cache entries are all cached (the default
// cache_size, 10,000).
func BenchmarkCaddyManyCards(b *testing.B) {
	env := startBenchCaddy(b, "")
	appIface, err := caddy.ActiveContext().App("cacgate")
	if err != nil {
		b.Fatal(err)
	}
	app := appIface.(*App)
	const most = 10000
	pki := testPKI(b)
	cards := enrollCards(b, app, most)
	conns := make([]manyCardConn, most)
	for i, c := range cards {
		token, err := app.tokens.Issue(fingerprint(c), time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		hdr := env.headers.Clone()
		hdr["Cookie"] = []string{"theme=dark; " + consent.CookieName + "=" + token + "; lang=en"}
		st := verifiedState(c, pki)
		st.ServerName = "localhost"
		conns[i] = manyCardConn{tls: st, headers: hdr}
	}
	for _, n := range []int{1000, most} {
		for _, v := range []struct {
			name string
			srv  *caddyhttp.Server
		}{{"bare", env.bare}, {"cacgate", env.gate}} {
			warm := false
			b.Run(fmt.Sprintf("cards=%d/%s", n, v.name), func(b *testing.B) {
				if !warm {
					// Every card once, just before it is measured, so each
					// is cached (and fresh: cache_ttl is a minute).
					w := &statusWriter{h: http.Header{}}
					for i := range conns[:n] {
						env.serveCard(b, v.srv, &conns[i], w)
					}
					warm = true
					b.ResetTimer()
				}
				var next atomic.Uint64
				b.ReportAllocs()
				b.SetParallelism(4)
				cpu0 := cpuTime(b)
				b.RunParallel(func(pb *testing.PB) {
					// Labelled, so a CPU profile can leave the warm-up out
					// (go tool pprof -tagfocus phase=measured).
					pprof.Do(context.Background(), pprof.Labels("phase", "measured"), func(context.Context) {
						w := &statusWriter{h: http.Header{}}
						for pb.Next() {
							if !env.serveCard(b, v.srv, &conns[next.Add(1)%uint64(n)], w) {
								return
							}
						}
					})
				})
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// manyCardConn is one card's connection: its TLS state and its browser's
// headers (with its consent cookie).
type manyCardConn struct {
	tls     *tls.ConnectionState
	headers http.Header
}

// serveCard serves one request of conn's card through srv, reporting
// whether it was answered 200.
func (env *benchCaddy) serveCard(b *testing.B, srv *caddyhttp.Server, conn *manyCardConn, w *statusWriter) bool {
	r := env.request(srv, conn.headers)
	r.TLS = conn.tls
	clear(w.h)
	w.status = 0
	srv.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Errorf("HTTP %d", w.status)
		return false
	}
	return true
}
