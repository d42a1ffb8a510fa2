package admin

import (
	"time"

	"github.com/cacgate/cacgate/revocation"
)

// RevocationStats is GET /cacgate/revocation: what the revocation
// checker holds, so ops can see CRL freshness and the memory the CRL
// indexes cost.
type RevocationStats struct {
	Mode       string `json:"mode"`
	FailOpen   bool   `json:"fail_open"`
	CRLs       int    `json:"crls"`
	Entries    int    `json:"entries"`
	IndexBytes int64  `json:"index_bytes"`
	StaleCRLs  int    `json:"stale_crls"`
	// FailingSources counts the sources whose last load or fetch was
	// refused; each says why in its last_error.
	FailingSources int              `json:"failing_sources"`
	OCSPCached     int              `json:"ocsp_cached"`
	OCSPFailures   int              `json:"ocsp_failures"`
	Sources        []CRLSourceStats `json:"sources"`
}

// CRLSourceStats is one CRL file or distribution point.
type CRLSourceStats struct {
	Name        string     `json:"name"`
	Fetched     bool       `json:"fetched"`
	CRLs        []CRLStats `json:"crls"`
	Waiting     []string   `json:"waiting_for_issuers,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	// RefusedOlder counts CRLs refused because one in use was newer (a
	// replayed or rolled-back CRL).
	RefusedOlder int        `json:"refused_older,omitempty"`
	NextFetch    *time.Time `json:"next_fetch,omitempty"`
}

// CRLStats is one indexed CRL.
type CRLStats struct {
	Issuer     string    `json:"issuer"`
	Number     string    `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	IndexBytes int64     `json:"index_bytes"`
	Stale      bool      `json:"stale"`
}

// RevocationStatsOf is what the admin API shows of a revocation checker's
// state: mode and failOpen are the checker's configured mode (default
// revocation.ModeOCSPThenCRL) and fail-open setting, st its Stats.
func RevocationStatsOf(mode string, failOpen bool, st revocation.Stats) RevocationStats {
	if mode == "" {
		mode = string(revocation.ModeOCSPThenCRL)
	}
	out := RevocationStats{
		Mode: mode, FailOpen: failOpen, CRLs: st.CRLs, Entries: st.Entries, IndexBytes: st.IndexBytes,
		StaleCRLs: st.StaleCRLs, FailingSources: st.FailingSources, OCSPCached: st.OCSPCached, OCSPFailures: st.OCSPFailures,
		Sources: []CRLSourceStats{},
	}
	for _, src := range st.Sources {
		s := CRLSourceStats{Name: src.Name, Fetched: src.Fetched, Waiting: src.Waiting, LastError: src.LastError, RefusedOlder: src.RefusedOlder,
			LastSuccess: optTime(src.LastSuccess), NextFetch: optTime(src.NextFetch), CRLs: []CRLStats{}}
		for _, c := range src.CRLs {
			s.CRLs = append(s.CRLs, CRLStats{Issuer: c.Issuer, Number: c.Number, ThisUpdate: c.ThisUpdate.UTC(),
				NextUpdate: c.NextUpdate.UTC(), Entries: c.Entries, IndexBytes: c.IndexBytes, Stale: c.Stale})
		}
		out.Sources = append(out.Sources, s)
	}
	return out
}
