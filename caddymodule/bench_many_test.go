package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// BenchmarkHotPathManyCards is BenchmarkHotPath with 1,000 and 10,000
// enrolled cards taking turns, every cache at capacity (the default
// cache_size, 10,000): what the hot path costs when its entries are no
// longer in the CPU's caches, as for the bench tool's scenario (d).
// cpu-ns/op is the process's CPU time per request; heap-B/card is the
// live heap the gateway keeps per cached card (measured once, after the
// warm-up request of every card).
func BenchmarkHotPathManyCards(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("cards=%d", n), func(b *testing.B) {
			p := newHotPath(b, "crl")
			reqs, perCard := manyCardRequests(b, p, n)
			roundRobin(b, p, reqs)
			// (After the loop: b.Loop's start clears reported metrics.)
			b.ReportMetric(perCard.bytes, "heap-B/card")
			b.ReportMetric(perCard.objects, "heap-objects/card")
		})
	}
}

// BenchmarkCacheMiss is the bench tool's d-miss in process: enrolled cards
// taking turns over twice as many as cache_size holds, so every request
// misses every cache (certificate verdict, card entry, consent token,
// assertion) and pays the account lookup in SQLite, the card's parse, the
// consent token's verification, a signature and the access.granted audit
// entry, written to a file as Caddy's file log does; with the assertion
// on (header assertion on), also its signature. cpu-ns/op, the process's
// CPU time per request (the lookups' goroutines and the garbage collector
// included), is the figure to compare.
func BenchmarkCacheMiss(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run("assertion="+map[bool]string{false: "off", true: "on"}[signed], func(b *testing.B) {
			const n = 1000
			p := newHotPath(b, "crl", func(a *App) { a.CacheSize = n / 2 })
			if signed {
				p.h.assertionHeader = defaultAssertionHeader
			}
			p.h.app.audit = fileAudit(b, p.h.app)
			reqs, _ := manyCardRequests(b, p, n)
			roundRobin(b, p, reqs)
			if signed && reqs[0].r.Header.Get(defaultAssertionHeader) == "" {
				b.Fatal("no assertion sent")
			}
		})
	}
}

// roundRobin serves reqs in turn, reporting the CPU time per request.
func roundRobin(b *testing.B, p *hotPath, reqs []*replay) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		if err := p.h.ServeHTTP(w, reqs[i].next(), p.next); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(reqs) {
			i = 0
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if got := reqs[0].r.Header.Get("X-Remote-User"); got == "" {
		b.Fatal("requests were not admitted")
	}
}

// fileAudit is the app's audit log as a deployment has it: JSON lines
// appended to a file, one write per entry (Caddy's file writer), with the
// request's source and the metric.
func fileAudit(b *testing.B, app *App) *audit.Log {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "audit.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	l := audit.New(zap.New(zapcore.NewCore(enc, zapcore.AddSync(f), zapcore.InfoLevel)).Named(auditLogName), "bench")
	l.Source = requestSource
	l.Counted = app.metrics.Audited
	return l
}

// manyCardRequests enrolls n fresh cards and returns a request for each
// with a valid consent cookie, every one served once so the caches hold
// them all (up to cache_size), and the live heap that serving them added,
// per card: what the gateway keeps per cached card (the objects are what
// every garbage collection cycle marks).
func manyCardRequests(b *testing.B, p *hotPath, n int) ([]*replay, heapUse) {
	b.Helper()
	pki := testPKI(b)
	cards := enrollCards(b, p.h.app, n)
	reqs := make([]*replay, n)
	for i, c := range cards {
		token, err := p.h.app.tokens.Issue(fingerprint(c), time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		r := p.req.Clone(p.req.Context())
		r.Header.Set("Cookie", "theme=dark; "+consent.CookieName+"="+token+"; other=1")
		r.TLS = verifiedState(c, pki)
		reqs[i] = newReplay(r)
	}

	before := liveHeap()
	w := httptest.NewRecorder()
	for i, rp := range reqs {
		r := rp.next()
		if err := p.h.ServeHTTP(w, r, p.next); err != nil || w.Code != http.StatusOK || r.Header.Get("X-Remote-User") == "" {
			b.Fatalf("warm-up request for card %d: %v, HTTP %d", i, err, w.Code)
		}
		// What the backend got is the request's, not the gateway's.
		for _, name := range append(defaultHeaderNames[:], defaultAssertionHeader) {
			delete(r.Header, name)
		}
	}
	after := liveHeap()
	return reqs, heapUse{
		bytes:   (after.bytes - before.bytes) / float64(n),
		objects: (after.objects - before.objects) / float64(n),
	}
}

// heapUse is live heap: bytes and objects (or either per something).
type heapUse struct{ bytes, objects float64 }

// liveHeap is the heap in use after a full collection.
func liveHeap() heapUse {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapUse{float64(m.HeapAlloc), float64(m.HeapObjects)}
}

// enrollCards mints n fresh cards and enrolls them, one account each (one
// bulk import).
func enrollCards(b *testing.B, app *App, n int) []*testpki.Card {
	b.Helper()
	pki := testPKI(b)
	cards := make([]*testpki.Card, n)
	var wg sync.WaitGroup
	var once sync.Once
	var mintErr error
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := pki.Intermediate.IssueCard(testpki.CardSpec{
					Name: fmt.Sprintf("many%05d", i), Family: "LOAD", Given: "TESTER", Middle: "Q", EDIPI: fmt.Sprintf("2%09d", i),
				})
				if err != nil {
					once.Do(func() { mintErr = err })
					return
				}
				cards[i] = c
			}
		})
	}
	wg.Wait()
	if mintErr != nil {
		b.Fatal(mintErr)
	}

	j := 0
	_, err := app.store.ImportAccounts(context.Background(), func() (*store.Account, error) {
		if j == n {
			return nil, io.EOF
		}
		c := cards[j]
		j++
		return &store.Account{
			Username: fmt.Sprintf("load.t%05d", j), EDIPI: c.EDIPI, GivenName: "Tester", FamilyName: "Load",
			Email: "load.tester@mail.mil", Affiliation: "USA", Status: store.StatusActive,
			Cards: []store.Card{{Fingerprint: fingerprint(c), Subject: c.Cert.Subject.String(), Issuer: c.Cert.Issuer.String(),
				Serial: c.Cert.SerialNumber.Text(16), NotAfter: c.Cert.NotAfter}},
		}, nil
	}, store.ImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return cards
}
