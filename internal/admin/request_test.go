package admin

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/revocation"
)

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		body   string
		status int
		msg    string
	}{
		{`{"groups":["ops"]}`, 0, ""},
		{``, 400, "request body is empty; a JSON object is expected"},
		{`{"group":["ops"]}`, 400, `request body: json: unknown field "group"`},
		{`{"groups":["ops"]} {"groups":[]}`, 400, "request body: more than one JSON value"},
		{`{"groups":"ops"}`, 400, "request body: json: cannot unmarshal"},
		{`{"groups":["` + strings.Repeat("a", MaxJSONBody) + `"]}`, 413, "request body is larger than 65536 bytes"},
	} {
		r := httptest.NewRequest("POST", "/cacgate/accounts/x/groups", strings.NewReader(tc.body))
		var req GroupsRequest
		err := DecodeJSON(httptest.NewRecorder(), r, &req)
		if status(err) != tc.status || (err != nil && !strings.HasPrefix(err.Error(), tc.msg)) {
			t.Errorf("%.40q: %d %v, want %d %q", tc.body, status(err), err, tc.status, tc.msg)
		}
	}
}

func TestRevocationStatsOf(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("EST", -5*3600))
	st := revocation.Stats{CRLs: 1, Entries: 7, IndexBytes: 100, StaleCRLs: 1, OCSPCached: 2, OCSPFailures: 3, Sources: []revocation.CRLSourceStats{
		{Name: "/etc/crl", CRLs: []revocation.CRLStats{{Issuer: "CN=CA", Number: "0a", ThisUpdate: when, NextUpdate: when, Entries: 7, IndexBytes: 100, Stale: true}}},
		{Name: "http://crl", Fetched: true, LastSuccess: when, NextFetch: when, LastError: "timeout", RefusedOlder: 1, Waiting: []string{"CN=X"}},
	}}
	got := RevocationStatsOf("", true, st)
	if got.Mode != string(revocation.ModeOCSPThenCRL) || !got.FailOpen || got.CRLs != 1 || got.Entries != 7 || got.StaleCRLs != 1 || got.OCSPFailures != 3 {
		t.Errorf("stats: %+v", got)
	}
	file, dp := got.Sources[0], got.Sources[1]
	if file.LastSuccess != nil || file.NextFetch != nil || file.CRLs[0].ThisUpdate.Location() != time.UTC || !file.CRLs[0].Stale {
		t.Errorf("file source: %+v", file)
	}
	if dp.CRLs == nil || len(dp.CRLs) != 0 || dp.LastSuccess == nil || dp.LastSuccess.Location() != time.UTC || !dp.LastSuccess.Equal(when) || dp.RefusedOlder != 1 {
		t.Errorf("distribution point: %+v", dp)
	}
	if got := RevocationStatsOf("crl", false, revocation.Stats{}); got.Mode != "crl" || got.Sources == nil {
		t.Errorf("empty stats: %+v", got)
	}
}

func TestReadImportRequest(t *testing.T) {
	for _, tc := range []struct {
		query, contentType, body string
		status                   int
		msg                      string
	}{
		{"?on_conflict=skip", "text/csv; charset=utf-8", "username,edipi\n", 0, ""},
		{"", "application/csv", "username,edipi\n", 0, ""},
		{"?dry_run=1", "text/csv", "", 400, `unknown or repeated query parameter "dry_run" (only on_conflict)`},
		{"?on_conflict=skip&on_conflict=fail", "text/csv", "", 400, `unknown or repeated query parameter "on_conflict"`},
		{"", "application/json", "", 415, "send the accounts as Content-Type: text/csv"},
		{"", "", "", 415, "send the accounts as Content-Type: text/csv"},
		{"", "text/csv", strings.Repeat("x", 2<<20+1), 413, "CSV larger than 2 MiB: import it with the CLI on the database instead"},
	} {
		r := httptest.NewRequest("POST", "/cacgate/accounts/import"+tc.query, strings.NewReader(tc.body))
		if tc.contentType != "" {
			r.Header.Set("Content-Type", tc.contentType)
		}
		csv, onConflict, err := ReadImportRequest(httptest.NewRecorder(), r, 2<<20)
		if status(err) != tc.status || (err != nil && err.Error() != tc.msg && !strings.HasPrefix(err.Error(), tc.msg)) {
			t.Errorf("%s %q: %d %v, want %d %q", tc.query, tc.contentType, status(err), err, tc.status, tc.msg)
		}
		if err == nil && (string(csv) != tc.body || onConflict != r.URL.Query().Get("on_conflict")) {
			t.Errorf("%s: read %q, on_conflict %q", tc.query, csv, onConflict)
		}
	}
}
