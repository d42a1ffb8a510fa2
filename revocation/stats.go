package revocation

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Stats describes the checker's state for operators.
type Stats struct {
	CRLs       int   // CRLs indexed
	Entries    int   // revoked serials across all CRLs
	IndexBytes int64 // memory the CRL indexes hold
	StaleCRLs  int   // indexed CRLs past nextUpdate beyond the clock skew
	// FailingSources counts CRL files and distribution points whose last
	// load or fetch was refused (LastError set in Sources).
	FailingSources int

	// OCSPCached counts cached OCSP verdicts and OCSPFailures the
	// certificates whose OCSP check failed in the last 30 seconds; both may
	// include entries expired within the last minute, swept once a minute.
	OCSPCached   int
	OCSPFailures int

	// Sources lists every CRL file and distribution point, sorted by name.
	Sources []CRLSourceStats
}

// CRLSourceStats describes one CRL file or distribution point.
type CRLSourceStats struct {
	Name    string // file path or URL
	Fetched bool   // a distribution point rather than a file
	CRLs    []CRLStats
	// Waiting lists the issuers of CRLs in the file set aside until a
	// certificate of theirs is known.
	Waiting []string
	// LastSuccess is when the source was last read, or fetched, and found
	// current; zero if never.
	LastSuccess time.Time
	// LastError is why the last attempt failed, "" if it did not.
	LastError string
	// NextFetch is when a distribution point is fetched next.
	NextFetch time.Time
	// RefusedOlder counts downloads or re-reads refused because a CRL in
	// them was older (earlier thisUpdate or lower CRL number) than the CRL
	// of the same CA and scope in use: a replayed or rolled-back CRL.
	RefusedOlder int
}

// CRLStats describes one indexed CRL.
type CRLStats struct {
	Issuer     string
	Number     string // CRL number in hex, "" when absent
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	IndexBytes int64
	Stale      bool
}

// Stats returns a snapshot of the checker's state.
func (c *Checker) Stats() Stats {
	now := c.cfg.Now()
	s := Stats{
		OCSPCached:   c.ocspVerdicts.ItemCount(),
		OCSPFailures: c.ocspFailures.ItemCount(),
	}
	c.crls.mu.Lock()
	defer c.crls.mu.Unlock()
	for _, src := range c.crls.sources {
		ss := CRLSourceStats{
			Name:        src.name,
			Fetched:     src.fetched,
			LastSuccess: src.lastSuccess,
		}
		if src.fetched {
			ss.NextFetch = src.nextFetch
		}
		ss.RefusedOlder = src.refusedOlder
		if src.lastErr != nil {
			ss.LastError = src.lastErr.Error()
			s.FailingSources++
		}
		for _, name := range src.waitingFor {
			ss.Waiting = append(ss.Waiting, displayName(name))
		}
		for _, index := range src.indexes {
			stale := index.stale(now, c.cfg.ClockSkew)
			ss.CRLs = append(ss.CRLs, CRLStats{
				Issuer:     index.issuerName,
				Number:     fmt.Sprintf("%X", index.number),
				ThisUpdate: index.thisUpdate,
				NextUpdate: index.nextUpdate,
				Entries:    index.len(),
				IndexBytes: index.bytes(),
				Stale:      stale,
			})
			s.CRLs++
			s.Entries += index.len()
			s.IndexBytes += index.bytes()
			if stale {
				s.StaleCRLs++
			}
		}
		s.Sources = append(s.Sources, ss)
	}
	slices.SortFunc(s.Sources, func(a, b CRLSourceStats) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// FailingCRLSources counts CRL files and distribution points whose last
// load or fetch was refused: Stats().FailingSources without the copying,
// for a metrics gauge.
func (c *Checker) FailingCRLSources() int {
	c.crls.mu.Lock()
	defer c.crls.mu.Unlock()
	n := 0
	for _, src := range c.crls.sources {
		if src.lastErr != nil {
			n++
		}
	}
	return n
}

// crlFailed reports a refused CRL source to OnCRLError.
func (c *Checker) crlFailed(fetched bool) {
	if c.cfg.OnCRLError != nil {
		c.cfg.OnCRLError(fetched)
	}
}
