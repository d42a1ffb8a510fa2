package caddymodule

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// scrape reads Caddy's admin /metrics and returns the cacgate_* samples,
// keyed by the sample line's name and labels as printed.
func (g *testGateway) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: requestTimeout}
	resp, err := c.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: HTTP %d %s", resp.StatusCode, b)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cacgate_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

func TestMetrics(t *testing.T) {
	g := startGateway(t, "", "")
	doe := card(t, "doe.john.quincy")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(doe)

	// consent_required, then granted three times
	if resp, _ := request(t, c, "GET", g.url("main", "/api/items"), nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("before consent: HTTP %d", resp.StatusCode)
	}
	g.accept(t, c, "main")
	for range 3 {
		if resp, body := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("after consent: HTTP %d %s", resp.StatusCode, body)
		}
	}
	// denied: no certificate; revoked card
	if resp, _ := request(t, g.client(nil), "GET", g.url("main", "/"), nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no card: HTTP %d", resp.StatusCode)
	}
	if resp, _ := request(t, g.client(card(t, "revoked.ronald")), "GET", g.url("main", "/"), nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked card: HTTP %d", resp.StatusCode)
	}
	// enroll: an unregistered card, once past the banner
	smith := g.client(card(t, "smith.jane"))
	g.accept(t, smith, "main")
	if resp, _ := request(t, smith, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unregistered card: HTTP %d", resp.StatusCode)
	}

	m := g.scrape(t)
	want := map[string]float64{
		`cacgate_requests_total{outcome="granted",reason=""}`:                                            3,
		`cacgate_requests_total{outcome="consent_required",reason=""}`:                                   1,
		`cacgate_requests_total{outcome="denied",reason="certificate_required"}`:                         1,
		`cacgate_requests_total{outcome="denied",reason="certificate_revoked"}`:                          1,
		`cacgate_requests_total{outcome="enroll",reason="not_registered"}`:                               1,
		`cacgate_accounts{status="active"}`:                                                              1,
		`cacgate_accounts{status="pending"}`:                                                             0,
		`cacgate_audit_events_total{event="consent.accepted",outcome="success"}`:                         2,
		`cacgate_revocation_checks_total{result="revoked",source="crl"}`:                                 1,
		`cacgate_store_operation_duration_seconds_count{operation="account_by_fingerprint",result="ok"}`: 1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m[`cacgate_card_cache_lookups_total{result="hit"}`] < 3 || m[`cacgate_card_cache_lookups_total{result="miss"}`] < 1 {
		t.Errorf("cache lookups: hit %v miss %v", m[`cacgate_card_cache_lookups_total{result="hit"}`], m[`cacgate_card_cache_lookups_total{result="miss"}`])
	}
	if m[`cacgate_revocation_checks_total{result="good",source="crl"}`] < 1 {
		t.Error("no good revocation check counted")
	}
	if t.Failed() {
		for k, v := range m {
			t.Logf("%s %v", k, v)
		}
	}
}
