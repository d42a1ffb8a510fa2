package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// BenchmarkHotPathManyCards is BenchmarkHotPath with 10,000 enrolled cards
// taking turns, every cache at capacity (the default cache_size, 10,000):
// what the hot path costs when its entries are no longer in the CPU's
// caches, as for the bench tool's scenario (d).
func BenchmarkHotPathManyCards(b *testing.B) {
	const n = 10000
	p := newHotPath(b, "crl")
	reqs := manyCardRequests(b, p, n)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := p.h.ServeHTTP(w, reqs[i].next(), p.next); err != nil {
			b.Fatal(err)
		}
		if i++; i == n {
			i = 0
		}
	}
}

// manyCardRequests enrolls n fresh cards (one bulk import) and returns a
// request for each with a valid consent cookie, every one served once so
// the caches hold them all.
func manyCardRequests(b *testing.B, p *hotPath, n int) []*replay {
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
	_, err := p.h.app.store.ImportAccounts(context.Background(), func() (*store.Account, error) {
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

	reqs := make([]*replay, n)
	w := httptest.NewRecorder()
	for i, c := range cards {
		token, err := p.h.app.tokens.Issue(fingerprint(c), time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		r := p.req.Clone(p.req.Context())
		r.Header.Set("Cookie", "theme=dark; "+consent.CookieName+"="+token+"; other=1")
		r.TLS = verifiedState(c, pki)
		rp := newReplay(r)
		if err := p.h.ServeHTTP(w, rp.next(), p.next); err != nil || w.Code != http.StatusOK || r.Header.Get("X-Remote-User") == "" {
			b.Fatalf("warm-up request for card %d: %v, HTTP %d", i, err, w.Code)
		}
		reqs[i] = rp
	}
	return reqs
}
