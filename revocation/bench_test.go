package revocation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ocsp"
)

// BenchmarkCheckCached is Check answering from its OCSP cache: what a
// caller of Check pays, and what CheckChain pays for a certificate its
// verdict cache has evicted.
func BenchmarkCheckCached(b *testing.B) {
	pki := newTestPKI(b)
	responder := newTestResponder(b, pki.ca)
	leaf := pki.ca.issueLeaf(b, leafOptions{ocsp: []string{responder.url()}})
	responder.set(leaf.SerialNumber, ocsp.Good)
	c := newChecker(b, Config{Mode: ModeOCSP, Logger: zap.NewNop()})
	ctx := context.Background()
	wantStatus(b, c.Check(ctx, leaf, pki.ca.cert), StatusGood, SourceOCSP)

	b.ReportAllocs()
	for b.Loop() {
		if v := c.Check(ctx, leaf, pki.ca.cert); v.Status != StatusGood {
			b.Fatal(v.Err)
		}
	}
	if n := responder.requests.Load(); n != 1 {
		b.Fatalf("%d OCSP requests, want 1", n)
	}
}

// BenchmarkCheckChainCached is CheckChain answering from its verdict
// cache, intermediates on: a fingerprint and a cache lookup per
// certificate checked.
func BenchmarkCheckChainCached(b *testing.B) {
	pki := newTestPKI(b)
	responder := newTestResponder(b, pki.ca)
	leaf := pki.ca.issueLeaf(b, leafOptions{ocsp: []string{responder.url()}})
	responder.set(leaf.SerialNumber, ocsp.Good)
	// The responder answers for the issuing CA's certificates only, so the
	// CA's own status fails open: a verdict cached like any other.
	c := newChecker(b, Config{Mode: ModeOCSP, OCSPResponder: responder.url(), Intermediates: true, FailOpen: true, Logger: zap.NewNop()})
	ctx := context.Background()
	chain := []*x509.Certificate{leaf, pki.ca.cert, pki.root.cert}
	if v := c.CheckChain(ctx, chain); v.Status != StatusGood {
		b.Fatal(v.Err)
	}
	requests := responder.requests.Load()

	b.ReportAllocs()
	for b.Loop() {
		if v := c.CheckChain(ctx, chain); v.Status != StatusGood {
			b.Fatal(v.Err)
		}
	}
	if n := responder.requests.Load(); n != requests {
		b.Fatalf("%d OCSP requests while cached, want none", n-requests)
	}
}

// bigCRL is a CRL of 500,000 entries, like the largest DoD CRLs, with
// 16-byte random serials (DoD serials are shorter, so this errs large).
type bigCRL struct {
	ca      *testCA
	der     []byte
	listed  *big.Int // a serial on the CRL
	revoked int
}

const bigCRLEntries = 500_000

var (
	bigCRLOnce    sync.Once
	bigCRLFixture *bigCRL
)

func loadBigCRL(b *testing.B) *bigCRL {
	bigCRLOnce.Do(func() {
		start := time.Now()
		ca := newTestPKI(b).ca
		entries := make([]x509.RevocationListEntry, bigCRLEntries)
		revokedAt := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
		reasons := []int{0, 1, 3, 4, 5}
		for i := range entries {
			serial, err := rand.Int(rand.Reader, serialLimit)
			if err != nil {
				b.Fatal(err)
			}
			entries[i] = x509.RevocationListEntry{
				SerialNumber:   serial.Add(serial, big.NewInt(1)),
				RevocationTime: revokedAt.Add(-time.Duration(i) * time.Minute),
				ReasonCode:     reasons[i%len(reasons)],
			}
		}
		der := ca.makeCRL(b, crlSpec{revoked: entries})
		bigCRLFixture = &bigCRL{ca: ca, der: der, listed: entries[bigCRLEntries/3].SerialNumber, revoked: len(entries)}
		b.Logf("built a CRL of %d entries, %d bytes, in %v", len(entries), len(der), time.Since(start))
	})
	if bigCRLFixture == nil {
		b.Fatal("building the CRL failed")
	}
	return bigCRLFixture
}

// BenchmarkCRLLookup measures finding a serial in a 500,000-entry index,
// alone and through Check.
func BenchmarkCRLLookup(b *testing.B) {
	crl := loadBigCRL(b)
	path := writeFile(b, b.TempDir(), "big.crl", crl.der)
	c := newChecker(b, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{crl.ca.cert}, Logger: zap.NewNop()})
	index := c.crls.view.Load().byIssuer[c.issuers.find(crl.ca.cert).id][0]
	listed := appendSerial(nil, crl.listed)
	unlisted := appendSerial(nil, new(big.Int).Add(crl.listed, big.NewInt(1)))

	b.Run("index/listed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, found := index.find(listed); !found {
				b.Fatal("not found")
			}
		}
	})
	b.Run("index/unlisted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, found := index.find(unlisted); found {
				b.Fatal("found")
			}
		}
	})
	b.Run("Check", func(b *testing.B) {
		leaf := crl.ca.issueLeaf(b, leafOptions{})
		b.ReportAllocs()
		for b.Loop() {
			if v := c.Check(context.Background(), leaf, crl.ca.cert); v.Status != StatusGood {
				b.Fatal(v.Err)
			}
		}
	})
}

// BenchmarkLoadCRL500k loads a 500,000-entry CRL file the way Start does
// and reports, besides the time per load:
//   - index-bytes: Stats.IndexBytes after the load;
//   - retained-heap-bytes: heap growth after the load and a GC, i.e. what
//     the index really costs (the DER is gone);
//   - peak-heap-bytes: the highest heap seen during the load (sampled every
//     millisecond, garbage included), against the file's size;
//   - alloc-bytes/load: everything allocated during the load.
func BenchmarkLoadCRL500k(b *testing.B) {
	crl := loadBigCRL(b)
	path := writeFile(b, b.TempDir(), "big.crl", crl.der)
	var retained, peak, allocated, indexBytes int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		stopSampling := sampleHeapPeak(&peak, before.HeapAlloc)
		b.StartTimer()

		c := mustNew(b, Config{Mode: ModeCRL, CRLFiles: []string{path}, CRLIssuers: []*x509.Certificate{crl.ca.cert}, Logger: zap.NewNop()})
		ctx, cancel := context.WithCancel(context.Background())
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		stopSampling()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		retained = int64(after.HeapAlloc) - int64(before.HeapAlloc)
		allocated = int64(after.TotalAlloc - before.TotalAlloc)
		stats := c.Stats()
		indexBytes = stats.IndexBytes
		if stats.Entries != crl.revoked {
			b.Fatalf("%d entries indexed, want %d", stats.Entries, crl.revoked)
		}
		cancel()
		<-c.stopped
		runtime.KeepAlive(c)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(crl.der)), "crl-file-bytes")
	b.ReportMetric(float64(indexBytes), "index-bytes")
	b.ReportMetric(float64(retained), "retained-heap-bytes")
	b.ReportMetric(float64(peak), "peak-heap-bytes")
	b.ReportMetric(float64(allocated), "alloc-bytes/load")
}

// sampleHeapPeak records in peak the highest heap growth over base until
// the returned function is called.
func sampleHeapPeak(peak *int64, base uint64) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for !done.Load() {
			runtime.ReadMemStats(&m)
			*peak = max(*peak, int64(m.HeapAlloc)-int64(base))
			time.Sleep(time.Millisecond)
		}
	}()
	return func() {
		done.Store(true)
		<-finished
	}
}
