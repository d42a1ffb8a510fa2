package revocation

import (
	"bytes"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// crlSource is where CRLs come from: a file or a distribution point URL.
// Its fields are guarded by crlStore.mu; the slow work (reading, fetching,
// parsing) happens outside the lock on the refresh goroutine, which is the
// only writer of indexes.
type crlSource struct {
	name    string // path or URL
	fetched bool

	indexes []*crlIndex // current; a PEM file may hold several CRLs
	digest  [32]byte    // SHA-256 of the content indexed, to skip re-indexing it

	// Files.
	info       os.FileInfo // at the last load attempt, to notice changes
	waitingFor [][]byte    // issuer names of CRLs set aside for want of a CA certificate
	reload     bool        // set when a CA it waits for was learned

	// Distribution points.
	fetchedFor   *issuer // the CA whose certificate named the URL
	etag         string
	lastModified string
	nextFetch    time.Time
	failures     int

	// refusedOlder counts downloads or re-reads refused by refuseOlder.
	refusedOlder int

	lastSuccess time.Time // last load or fetch that left the source up to date
	lastErr     error
}

// crlStore holds the CRL sources and publishes an immutable view of their
// indexes for Check to read without locking.
type crlStore struct {
	mu      sync.Mutex
	sources map[string]*crlSource
	view    atomic.Pointer[crlView]
	// wake nudges the refresh goroutine: a new URL to fetch, or a file whose
	// CA was learned. It holds one pending nudge; more would be redundant.
	wake chan struct{}

	logger *zap.Logger
	// fetchLimitLogged keeps the "too many distribution points" warning to
	// one.
	fetchLimitLogged bool
}

// crlView is a snapshot of the indexes by issuing CA, rebuilt whenever an
// index or the set of sources changes.
type crlView struct {
	byIssuer map[issuerID][]*crlIndex
	// urls holds every distribution point already registered for fetching,
	// so Check can tell without the lock that there is nothing to request.
	urls map[string]struct{}
}

// maxFetchedSources bounds the distribution points fetched. Certificates
// come from verified chains, so this is a guard, not a working limit: each
// DoD CA publishes one CRL URL.
const maxFetchedSources = 256

func newCRLStore(logger *zap.Logger) *crlStore {
	s := &crlStore{
		sources: make(map[string]*crlSource),
		wake:    make(chan struct{}, 1),
		logger:  logger,
	}
	s.view.Store(&crlView{})
	return s
}

// publishLocked rebuilds the view. s.mu must be held.
func (s *crlStore) publishLocked() {
	v := &crlView{
		byIssuer: make(map[issuerID][]*crlIndex),
		urls:     make(map[string]struct{}),
	}
	for _, src := range s.sources {
		if src.fetched {
			v.urls[src.name] = struct{}{}
		}
		for _, index := range src.indexes {
			v.byIssuer[index.issuer.id] = append(v.byIssuer[index.issuer.id], index)
		}
	}
	s.view.Store(v)
}

func (s *crlStore) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// lookup finds the CRL to judge a certificate of the CA iss by: among the
// CRLs of that CA that cover a certificate with these distribution points,
// CA or not, the most recent one.
func (v *crlView) lookup(iss issuerID, distributionPoints []string, isCA bool) *crlIndex {
	var best *crlIndex
	for _, index := range v.byIssuer[iss] {
		if index.covers(distributionPoints, isCA) && (best == nil || index.newerThan(best)) {
			best = index
		}
	}
	return best
}

// requestFetches registers the certificate's http(s) distribution points
// that are not fetched yet and wakes the refresh goroutine. With every
// point known, as on all but the first check of a CA, it only reads the
// view.
func (s *crlStore) requestFetches(v *crlView, distributionPoints []string, fetchedFor *issuer, now time.Time) {
	var missing []string
	for _, dp := range distributionPoints {
		if _, known := v.urls[dp]; !known && hasHTTPScheme(dp) {
			missing = append(missing, dp)
		}
	}
	if len(missing) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fetched, requested := 0, false
	for _, src := range s.sources {
		if src.fetched {
			fetched++
		}
	}
	for _, url := range missing {
		if _, known := s.sources[url]; known {
			continue
		}
		if fetched >= maxFetchedSources {
			if !s.fetchLimitLogged {
				s.fetchLimitLogged = true
				s.logger.Warn("not fetching more CRL distribution points: limit reached",
					zap.Int("limit", maxFetchedSources), zap.String("url", url))
			}
			break
		}
		s.sources[url] = &crlSource{name: url, fetched: true, fetchedFor: fetchedFor, nextFetch: now}
		fetched++
		requested = true
	}
	if requested {
		s.publishLocked()
		s.nudge()
	}
}

// issuerLearned marks file CRLs waiting for a CA with this subject for
// reloading.
func (s *crlStore) issuerLearned(subject []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, src := range s.sources {
		for _, name := range src.waitingFor {
			if bytes.Equal(name, subject) {
				src.reload = true
				s.nudge()
			}
		}
	}
}
