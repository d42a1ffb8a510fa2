package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"
)

// fakeCert is a certificate as the cache sees it: its DER. tail sets the
// last bytes, the ones the cache hashes.
func fakeCert(body, tail string) *x509.Certificate {
	t := make([]byte, hashedTail)
	copy(t, tail)
	return &x509.Certificate{Raw: append([]byte(body), t...)}
}

func cacheEntry(leaf *x509.Certificate, now time.Time) *SiteEntry {
	se := &SiteEntry{created: now}
	se.setCertificate(leaf)
	return se
}

// TestCertCacheFindsByCertificate: an entry is found by the certificate
// it was made for and by another parse of the same DER (another
// connection), never by another certificate, even one whose hashed tail
// is the same.
func TestCertCacheFindsByCertificate(t *testing.T) {
	now := time.Now()
	c := newCertCache(10, time.Minute)
	a := fakeCert("certificate A", "signature")
	twin := fakeCert("certificate B", "signature") // same tail, other body
	se := cacheEntry(a, now)
	c.add(se, now)
	if got := c.get(a, now); got != se {
		t.Fatal("entry not found by its own certificate")
	}
	if got := c.get(&x509.Certificate{Raw: append([]byte(nil), a.Raw...)}, now); got != se {
		t.Fatal("entry not found by the same DER parsed again")
	}
	if got := c.get(twin, now); got != nil {
		t.Fatal("found by another certificate with the same hashed tail")
	}
	// Both live side by side, each found by its own certificate.
	seTwin := cacheEntry(twin, now)
	c.add(seTwin, now)
	if c.get(a, now) != se || c.get(twin, now) != seTwin || c.len() != 2 {
		t.Fatal("colliding certificates do not coexist")
	}
	// Replacing one keeps the other and takes no new slot.
	newer := cacheEntry(&x509.Certificate{Raw: append([]byte(nil), a.Raw...)}, now)
	c.add(newer, now)
	if c.get(a, now) != newer || c.get(twin, now) != seTwin || c.len() != 2 {
		t.Fatal("replacing an entry disturbed the cache")
	}
	c.add(cacheEntry(fakeCert("", ""), now), now) // shorter than the tail
	if c.get(fakeCert("", ""), now) == nil {
		t.Fatal("short DER not cached")
	}
}

// TestCertCacheExpires: an entry is not served from its ttl on, and an
// expired entry is evicted before an unexpired unused one.
func TestCertCacheExpires(t *testing.T) {
	now := time.Now()
	c := newCertCache(2, time.Minute)
	old, young := fakeCert("old", "1"), fakeCert("young", "2")
	c.add(cacheEntry(old, now.Add(-2*time.Minute)), now)
	c.add(cacheEntry(young, now), now)
	if c.get(old, now) != nil {
		t.Fatal("expired entry served")
	}
	if c.get(young, now.Add(time.Minute)) != nil {
		t.Fatal("entry served at its ttl")
	}
	third := fakeCert("third", "3")
	c.add(cacheEntry(third, now), now)
	if c.get(young, now) == nil || c.get(third, now) == nil || c.len() != 2 {
		t.Fatal("the expired entry was not the one evicted")
	}
}

// TestCertCacheEvictsUnused: the cache holds at most its size; a full
// cache evicts an entry not used since the hand last passed, so a card
// in use outlives one-off visitors (the second chance of CLOCK).
func TestCertCacheEvictsUnused(t *testing.T) {
	now := time.Now()
	const size = 100
	c := newCertCache(size, time.Hour)
	certs := make([]*x509.Certificate, 3*size)
	for i := range certs {
		certs[i] = fakeCert(fmt.Sprint("cert ", i), fmt.Sprint("sig ", i))
	}
	regular := certs[0]
	for i, leaf := range certs {
		c.add(cacheEntry(leaf, now), now)
		// The regular card is used between every two newcomers.
		if c.get(regular, now) == nil {
			t.Fatalf("the card in use was evicted after %d newcomers", i)
		}
		if n := c.len(); n > size {
			t.Fatalf("%d entries in a cache of %d", n, size)
		}
	}
	// The newest are there, the oldest newcomers are not.
	if c.get(certs[len(certs)-1], now) == nil || c.get(certs[1], now) != nil {
		t.Fatal("eviction order")
	}
	// Every slot of the ring and of the map is one entry, reachable.
	reachable := 0
	for _, e := range c.byHash {
		for ; e != nil; e = e.sameHash {
			if c.ring[e.slot] != e {
				t.Fatal("an entry's slot holds another")
			}
			reachable++
		}
	}
	if reachable != size || len(c.ring) != size || len(c.byLeaf) != size {
		t.Fatalf("%d reachable entries, ring of %d, %d by certificate, size %d", reachable, len(c.ring), len(c.byLeaf), size)
	}
	for addr, e := range c.byLeaf {
		if e.leafAddr != addr || c.ring[e.slot] != e {
			t.Fatal("an entry held under another certificate, or evicted but still found")
		}
	}
}

// TestCertCacheEvictsWhenAllUsed: a full cache whose entries are all
// marked used still makes room (the hand clears the marks and comes
// round), and a chain of colliding certificates is kept whole.
func TestCertCacheEvictsWhenAllUsed(t *testing.T) {
	now := time.Now()
	c := newCertCache(3, time.Hour)
	var leaves []*x509.Certificate
	for i := range 3 {
		leaf := fakeCert(fmt.Sprint("colliding ", i), "same tail")
		leaves = append(leaves, leaf)
		c.add(cacheEntry(leaf, now), now)
		c.get(leaf, now)
	}
	extra := fakeCert("extra", "same tail")
	c.add(cacheEntry(extra, now), now)
	if c.len() != 3 || c.get(extra, now) == nil {
		t.Fatal("no room made in a cache of used entries")
	}
	found := 0
	for _, leaf := range leaves {
		if c.get(leaf, now) != nil {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("%d of the first three left, want 2", found)
	}
}

// TestCertCacheConcurrent: lookups and additions from many goroutines at
// once (run with -race) leave a consistent cache of at most its size.
func TestCertCacheConcurrent(t *testing.T) {
	now := time.Now()
	const size, certs, workers, rounds = 16, 64, 8, 500
	c := newCertCache(size, time.Hour)
	leaves := make([]*x509.Certificate, certs)
	for i := range leaves {
		leaves[i] = fakeCert(fmt.Sprint("cert ", i), fmt.Sprint("sig ", i%8)) // colliding tails too
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				leaf := leaves[(w*31+r*7)%certs]
				if e := c.get(leaf, now); e != nil && !e.isFor(leaf) {
					t.Error("entry for another certificate")
					return
				} else if e == nil {
					c.add(cacheEntry(leaf, now), now)
				}
			}
		})
	}
	wg.Wait()
	reachable := 0
	for _, e := range c.byHash {
		for ; e != nil; e = e.sameHash {
			reachable++
		}
	}
	if reachable != len(c.ring) || len(c.byLeaf) != len(c.ring) || len(c.ring) > size {
		t.Fatalf("%d reachable, %d by certificate, ring of %d, size %d", reachable, len(c.byLeaf), len(c.ring), size)
	}
}

// TestCertCacheRealCertificateWithAnothersSignature: a certificate made
// from a cached one by changing its body and keeping its signature (what a
// forger can do: the signature bytes are public) is not served the cached
// verdict, whether parsed once or presented again, and does not displace
// the real one's entry.
func TestCertCacheRealCertificateWithAnothersSignature(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x1234567), Subject: pkix.Name{CommonName: "DOE.JOHN.1234567890"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	real, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	// The same DER with the subject's last digit changed: x509 parses it
	// (it does not check signatures), and its signature bytes, the tail
	// the cache hashes, are the real certificate's.
	forgedDER := bytes.Clone(der)
	i := bytes.LastIndex(forgedDER, []byte("1234567890"))
	if i < 0 {
		t.Fatal("subject not found in the DER")
	}
	forgedDER[i+9] = '1'
	forged, err := x509.ParseCertificate(forgedDER)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(forged.Signature, real.Signature) || !bytes.Equal(forged.Raw[len(forged.Raw)-hashedTail:], real.Raw[len(real.Raw)-hashedTail:]) {
		t.Fatal("the forged certificate does not share the real one's signature")
	}
	now := time.Now()
	c := newCertCache(10, time.Hour)
	se := cacheEntry(real, now)
	c.add(se, now)
	for range 2 {
		if got := c.get(forged, now); got != nil {
			t.Fatalf("a certificate with another's signature got its verdict (entry for %x)", got.der)
		}
	}
	c.add(cacheEntry(forged, now), now)
	if c.get(real, now) != se || c.get(forged, now) == se {
		t.Fatal("the forged certificate's entry displaced or took the real one's")
	}
}

// TestCertCacheKeepsNoCertificateAlive: an entry holds its certificate's
// DER and the parsed certificate only weakly, so once the connection that
// presented it is gone the collector frees the parse; another parse of the
// same DER (a new connection) still finds the entry and becomes its key.
func TestCertCacheKeepsNoCertificateAlive(t *testing.T) {
	now := time.Now()
	c := newCertCache(10, time.Hour)
	leaf := fakeCert("certificate A", "signature")
	se := cacheEntry(leaf, now)
	c.add(se, now)
	gone := weak.Make(leaf)
	leaf = nil
	for i := 0; gone.Value() != nil; i++ {
		if i == 100 {
			t.Fatal("the cache keeps the parsed certificate alive")
		}
		runtime.GC()
	}
	again := fakeCert("certificate A", "signature")
	if c.get(again, now) != se {
		t.Fatal("another parse of the same DER did not find the entry")
	}
	if se.leaf.Value() != again || c.byLeaf[addressOf(again)] != se {
		t.Fatal("the new connection's certificate did not become the entry's key")
	}
	if c.get(fakeCert("certificate B", "signature"), now) != nil {
		t.Fatal("another certificate found the entry")
	}
}
