package gateway

import (
	"bytes"
	"crypto/x509"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"
)

// certCache is a site's verdicts on certificates, at most size of them,
// shaped for the request path of many cards taking turns, where every
// memory access the lookup makes is likely a miss in the CPU's caches:
//
//   - an entry is found first by the parsed certificate it was made for,
//     the one its connection presents on every later request: a lookup
//     then hashes an address and reads nothing of the certificate;
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
//
// The cache keeps no connection's parsed certificate alive: an entry holds
// its certificate's DER (a copy) and the parsed certificate weakly. A
// parsed certificate is some hundred pointer-rich objects (names,
// extensions, the key, the handshake message its Raw slices); kept for
// every card whose connection has closed, they doubled what the garbage
// collector marked per cached card.
type certCache struct {
	seed maphash.Seed
	ttl  time.Duration

	mu sync.RWMutex
	// byLeaf holds each entry under the address of the parsed certificate
	// it was made for (certEntry.leafAddr): a hint, confirmed by the
	// entry's weak pointer to that very certificate, so an address a dead
	// certificate's successor reuses finds nothing.
	byLeaf map[uintptr]*SiteEntry
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
		byLeaf: map[uintptr]*SiteEntry{}, byHash: map[uint64]*SiteEntry{},
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
	e := c.byLeaf[addressOf(leaf)]
	if e == nil || e.leaf.Value() != leaf {
		for e = c.byHash[c.certHash(leaf.Raw)]; e != nil && !e.isFor(leaf); e = e.sameHash {
		}
	}
	// Marked under the lock, so that no mark is set while the hand
	// sweeps (which bounds its sweep), and only when not set already.
	if e != nil && !e.used.Load() {
		e.used.Store(true)
	}
	orphan := e != nil && e.leaf.Value() == nil
	c.mu.RUnlock()
	if orphan {
		c.adopt(e, leaf)
	}
	if e == nil || now.Sub(e.created) >= c.ttl {
		return nil
	}
	return e
}

// adopt makes leaf the certificate e is found by, when the connection e
// was made on is gone (its parsed certificate collected): this
// connection's next requests then find e by address. Once per entry and
// dead connection; while the first connection lives, others find e by
// hash (re-keying back and forth between live connections would write on
// every request).
func (c *certCache) adopt(e *SiteEntry, leaf *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring[e.slot] != e || e.leaf.Value() != nil {
		return // evicted, or adopted by another connection meanwhile
	}
	if c.byLeaf[e.leafAddr] == e {
		delete(c.byLeaf, e.leafAddr)
	}
	e.leaf, e.leafAddr = weak.Make(leaf), addressOf(leaf)
	c.byLeaf[e.leafAddr] = e
}

// add caches se (whose certificate is set: setCertificate), replacing the
// entry for the same certificate if there is one, else, when full, the
// first entry the clock's hand finds unused since it last passed (or
// expired).
func (c *certCache) add(se *SiteEntry, now time.Time) {
	h := c.certHash(se.der)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.unlinkDER(h, se.der); old != nil {
		se.slot = old.slot
	} else if len(c.ring) < c.size {
		se.slot = len(c.ring)
		c.ring = append(c.ring, nil)
	} else {
		se.slot = c.evict(now)
	}
	c.ring[se.slot] = se
	// (An entry of a dead certificate whose address this one reuses
	// loses the key: it was no longer found by it anyway.)
	c.byLeaf[se.leafAddr] = se
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
		c.unlinkDER(c.certHash(e.der), e.der)
		return slot
	}
}

// unlinkDER takes the entry for the certificate der out of the chain
// under h and returns it (nil if there is none). Its ring slot is the
// caller's to reuse.
func (c *certCache) unlinkDER(h uint64, der []byte) *SiteEntry {
	var prev *SiteEntry
	for e := c.byHash[h]; e != nil; prev, e = e, e.sameHash {
		if !bytes.Equal(e.der, der) {
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
		if c.byLeaf[e.leafAddr] == e {
			delete(c.byLeaf, e.leafAddr)
		}
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

	// der is the certificate's DER, a copy: Raw slices the handshake
	// message of the connection that presented it.
	der []byte
	// leaf is the parsed certificate the entry was made for, held weakly
	// (see certCache), and leafAddr its address, the entry's byLeaf key.
	leaf     weak.Pointer[x509.Certificate]
	leafAddr uintptr
}

// setCertificate records the certificate the entry is the verdict on.
func (ce *certEntry) setCertificate(leaf *x509.Certificate) {
	ce.der = bytes.Clone(leaf.Raw)
	ce.leaf = weak.Make(leaf)
	ce.leafAddr = addressOf(leaf)
}

// isFor reports whether the entry is the verdict on leaf: the same parsed
// certificate, or one with the same DER.
func (ce *certEntry) isFor(leaf *x509.Certificate) bool {
	return ce.leaf.Value() == leaf || bytes.Equal(ce.der, leaf.Raw)
}

// addressOf is where leaf is in memory: only a map key, which keeps
// nothing alive (Go's collector does not move objects, so a live
// certificate keeps its address; a dead one's may be reused, which the
// entry's weak pointer tells apart).
func addressOf(leaf *x509.Certificate) uintptr {
	return uintptr(unsafe.Pointer(leaf))
}
