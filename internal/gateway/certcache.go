package gateway

import (
	"bytes"
	"crypto/x509"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// certCache is a site's verdicts on certificates, at most size of them,
// shaped for the request path of many cards taking turns, where every
// memory access the lookup makes is likely a miss in the CPU's caches:
//
//   - an entry is found first by the parsed certificate it was made for,
//     the one its connection presents on every later request: a lookup
//     then hashes a pointer and reads nothing of the certificate;
//   - a request on another connection (its own parse of the same DER)
//     finds it by a hash of the certificate's last bytes (the issuing
//     CA's signature: only certificates a trusted CA signed are cached,
//     so no client chooses them) and a comparison of the whole DER: a
//     hash collision costs a comparison, never a wrong verdict. (A map
//     keyed by the DER itself hashed and compared a kilobyte on each side
//     on every request.)
//   - a hit writes nothing shared: eviction is CLOCK (second chance), so
//     a hit only marks its own entry used, once, where an LRU list move
//     writes the entry's neighbours, which are other cards' cold lines.
//
// Entries expire by the caller's clock (SiteEntry.created); an expired
// one is the first to go when room is needed.
type certCache struct {
	seed maphash.Seed
	ttl  time.Duration

	mu sync.RWMutex
	// byLeaf holds each entry under the parsed certificate it was made
	// for (SiteEntry.Chain.Leaf).
	byLeaf map[*x509.Certificate]*SiteEntry
	// byHash holds each entry under certHash of its certificate; entries
	// whose certificates share the hash are chained through
	// SiteEntry.sameHash.
	byHash map[uint64]*SiteEntry
	// ring is every entry, in the order the clock's hand visits them
	// (SiteEntry.slot is the index); full at size.
	ring []*SiteEntry
	hand int
	size int
}

func newCertCache(size int, ttl time.Duration) *certCache {
	// The maps grow as cards come: cache_size may be millions.
	return &certCache{
		seed: maphash.MakeSeed(), ttl: ttl, size: size,
		byLeaf: map[*x509.Certificate]*SiteEntry{}, byHash: map[uint64]*SiteEntry{},
	}
}

// hashedTail is how many of a certificate's last bytes certHash reads:
// part of the CA's signature, unique to the certificate.
const hashedTail = 32

func (c *certCache) certHash(der []byte) uint64 {
	return maphash.Bytes(c.seed, der[max(0, len(der)-hashedTail):])
}

// get returns the unexpired entry for leaf, nil if there is none.
func (c *certCache) get(leaf *x509.Certificate, now time.Time) *SiteEntry {
	c.mu.RLock()
	e := c.byLeaf[leaf]
	if e == nil {
		for e = c.byHash[c.certHash(leaf.Raw)]; e != nil && !e.isFor(leaf); e = e.sameHash {
		}
	}
	// Marked under the lock, so that no mark is set while the hand
	// sweeps (which bounds its sweep), and only when not set already.
	if e != nil && !e.used.Load() {
		e.used.Store(true)
	}
	c.mu.RUnlock()
	if e == nil || now.Sub(e.created) >= c.ttl {
		return nil
	}
	return e
}

// add caches se (whose Chain.Leaf is set), replacing the entry for the
// same certificate if there is one, else, when full, the first entry the
// clock's hand finds unused since it last passed (or expired).
func (c *certCache) add(se *SiteEntry, now time.Time) {
	h := c.certHash(se.Chain.Leaf.Raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.unlinkFor(h, se.Chain.Leaf); old != nil {
		se.slot = old.slot
	} else if len(c.ring) < c.size {
		se.slot = len(c.ring)
		c.ring = append(c.ring, nil)
	} else {
		se.slot = c.evict(now)
	}
	c.ring[se.slot] = se
	c.byLeaf[se.Chain.Leaf] = se
	se.sameHash = c.byHash[h]
	c.byHash[h] = se
}

// evict frees a slot of the full ring and returns it. The hand gives each
// used entry a second chance, clearing its mark; having passed every
// entry once it finds all unmarked, so it stops within two turns.
func (c *certCache) evict(now time.Time) int {
	for {
		e := c.ring[c.hand]
		slot := c.hand
		c.hand = (c.hand + 1) % len(c.ring)
		if e.used.Load() && now.Sub(e.created) < c.ttl {
			e.used.Store(false)
			continue
		}
		c.unlinkFor(c.certHash(e.Chain.Leaf.Raw), e.Chain.Leaf)
		return slot
	}
}

// unlinkFor takes the entry for leaf out of the chain under h and returns
// it (nil if there is none). Its ring slot is the caller's to reuse.
func (c *certCache) unlinkFor(h uint64, leaf *x509.Certificate) *SiteEntry {
	var prev *SiteEntry
	for e := c.byHash[h]; e != nil; prev, e = e, e.sameHash {
		if !e.isFor(leaf) {
			continue
		}
		switch {
		case prev != nil:
			prev.sameHash = e.sameHash
		case e.sameHash != nil:
			c.byHash[h] = e.sameHash
		default:
			delete(c.byHash, h)
		}
		e.sameHash = nil
		delete(c.byLeaf, e.Chain.Leaf)
		return e
	}
	return nil
}

// len is how many entries the cache holds.
func (c *certCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ring)
}

// certEntry is what the cache keeps in a SiteEntry.
type certEntry struct {
	// used is set by a hit and cleared by the clock's hand.
	used atomic.Bool
	// slot is the entry's index in the ring; sameHash the next entry whose
	// certificate has the same hash. Both are guarded by the cache's lock.
	slot     int
	sameHash *SiteEntry
}

// isFor reports whether the entry is the verdict on leaf: the same parsed
// certificate, or one with the same DER.
func (se *SiteEntry) isFor(leaf *x509.Certificate) bool {
	return se.Chain.Leaf == leaf || bytes.Equal(se.Chain.Leaf.Raw, leaf.Raw)
}
