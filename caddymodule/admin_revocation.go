package caddymodule

import (
	"net/http"
	"time"

	"github.com/cacgate/cacgate/revocation"
)

// RevocationStatsJSON is GET /cacgate/revocation: what the revocation
// checker holds, so ops can see CRL freshness and the memory the CRL
// indexes cost.
type RevocationStatsJSON struct {
	Mode         string               `json:"mode"`
	FailOpen     bool                 `json:"fail_open"`
	CRLs         int                  `json:"crls"`
	Entries      int                  `json:"entries"`
	IndexBytes   int64                `json:"index_bytes"`
	StaleCRLs    int                  `json:"stale_crls"`
	OCSPCached   int                  `json:"ocsp_cached"`
	OCSPFailures int                  `json:"ocsp_failures"`
	Sources      []CRLSourceStatsJSON `json:"sources"`
}

// CRLSourceStatsJSON is one CRL file or distribution point.
type CRLSourceStatsJSON struct {
	Name        string         `json:"name"`
	Fetched     bool           `json:"fetched"`
	CRLs        []CRLStatsJSON `json:"crls"`
	Waiting     []string       `json:"waiting_for_issuers,omitempty"`
	LastSuccess *time.Time     `json:"last_success,omitempty"`
	LastError   string         `json:"last_error,omitempty"`
	// RefusedOlder counts CRLs refused because one in use was newer (a
	// replayed or rolled-back CRL).
	RefusedOlder int        `json:"refused_older,omitempty"`
	NextFetch    *time.Time `json:"next_fetch,omitempty"`
}

// CRLStatsJSON is one indexed CRL.
type CRLStatsJSON struct {
	Issuer     string    `json:"issuer"`
	Number     string    `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int       `json:"entries"`
	IndexBytes int64     `json:"index_bytes"`
	Stale      bool      `json:"stale"`
}

func revocationStatsJSON(a *App) RevocationStatsJSON {
	mode := string(revocation.ModeOCSPThenCRL)
	failOpen := false
	if a.Revocation != nil {
		if a.Revocation.Mode != "" {
			mode = a.Revocation.Mode
		}
		failOpen = a.Revocation.FailOpen
	}
	st := a.revocation.Stats()
	out := RevocationStatsJSON{
		Mode: mode, FailOpen: failOpen, CRLs: st.CRLs, Entries: st.Entries, IndexBytes: st.IndexBytes,
		StaleCRLs: st.StaleCRLs, OCSPCached: st.OCSPCached, OCSPFailures: st.OCSPFailures,
		Sources: []CRLSourceStatsJSON{},
	}
	for _, src := range st.Sources {
		s := CRLSourceStatsJSON{Name: src.Name, Fetched: src.Fetched, Waiting: src.Waiting, LastError: src.LastError, RefusedOlder: src.RefusedOlder,
			LastSuccess: optTime(src.LastSuccess), NextFetch: optTime(src.NextFetch), CRLs: []CRLStatsJSON{}}
		for _, c := range src.CRLs {
			s.CRLs = append(s.CRLs, CRLStatsJSON{Issuer: c.Issuer, Number: c.Number, ThisUpdate: c.ThisUpdate.UTC(),
				NextUpdate: c.NextUpdate.UTC(), Entries: c.Entries, IndexBytes: c.IndexBytes, Stale: c.Stale})
		}
		out.Sources = append(out.Sources, s)
	}
	return out
}

func adminRevocationStats(app *App, w http.ResponseWriter, _ *http.Request) error {
	return writeAdminJSON(w, http.StatusOK, revocationStatsJSON(app))
}
