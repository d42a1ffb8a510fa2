package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAuditEntryContent checks what an assessor looks for in each audit
// entry (ASD V-222473, V-222476, V-222477, V-222448, V-222498): what, when
// (UTC), where (node, site, path), source, outcome and who, on the entries of
// a card's first visit.
func TestAuditEntryContent(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	doe := g.client(card(t, "doe.john.quincy"))
	g.accept(t, doe, "main")
	if resp, body := request(t, doe, "GET", g.url("main", "/app/reports?ssn=900-11-1892"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("admitted request: HTTP %d\n%s", resp.StatusCode, body)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for event, path := range map[string]string{"consent.accepted": "/.cacgate/consent", "access.granted": "/app/reports"} {
		entries := g.auditEntries(t, event)
		if len(entries) != 1 {
			t.Fatalf("%d %s entries, want 1", len(entries), event)
		}
		e := entries[0]
		str := func(k string) string { s, _ := e[k].(string); return s }
		when, err := time.Parse(time.RFC3339Nano, str("time"))
		if err != nil || !strings.HasSuffix(str("time"), "Z") || time.Since(when) > time.Minute {
			t.Errorf("%s: time %q is not a recent UTC RFC 3339 time", event, str("time"))
		}
		for k, want := range map[string]string{
			"event": event, "outcome": "success", "source_ip": "127.0.0.1", "path": path,
			"host": strings.TrimPrefix(g.url("main", ""), "https://"), "edipi": "1234567890",
		} {
			if str(k) != want {
				t.Errorf("%s: %s = %q, want %q", event, k, str(k), want)
			}
		}
		for k, pattern := range map[string]string{
			"request_id": uuid.String(), "node": `.`, "cert_serial": `^[0-9a-f]+$`,
			"cert_issuer": `TEST DOD ID CA`, "cert_subject": `DOE\.JOHN\.QUINCY\.1234567890`, "cert_sha256": `^[0-9a-f]{64}$`,
		} {
			if !regexp.MustCompile(pattern).MatchString(str(k)) {
				t.Errorf("%s: %s = %q, want it to match %s", event, k, str(k), pattern)
			}
		}
	}
	if e := g.auditEntries(t, "access.granted")[0]; e["username"] != "john.q.doe" {
		t.Errorf("access.granted: username %v", e["username"])
	}
	// The query string is not the gateway's to record: it may carry anything.
	data, err := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, auditLogName) && strings.Contains(line, "900-11-1892") {
			t.Errorf("an audit entry carries the query string: %s", line)
		}
	}
}
