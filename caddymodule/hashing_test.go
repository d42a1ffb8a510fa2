package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEnrollmentHashingThroughGateway: hash_queue and hash_wait are read
// from the Caddyfile, enrollment's hashes wait in the hasher's enrollment
// line (cacgate_hash_wait_seconds), and a registered card's identity step
// is refused with a way to the account page.
func TestEnrollmentHashingThroughGateway(t *testing.T) {
	// hash_wait is minutes, not seconds: enrollment's hashes wait behind
	// each other's rests, which a busy machine stretches past a few
	// seconds, and a hash turned away is not what this test is about.
	g := startEnrollGatewayWith(t, "hash_queue 4\nhash_wait 4m", "")
	c := enrollJohnson(t, g)
	samples := g.scrape(t)
	if got := samples[`cacgate_hash_wait_seconds_count{priority="enrollment"}`]; got != 4 {
		t.Errorf("enrollment hashes that waited for a slot: %v, want 4 (password and three answers)", got)
	}
	if _, ok := samples[`cacgate_hash_rejections_total{kind="queue_full",priority="enrollment"}`]; ok {
		t.Error("a hash was rejected")
	}

	resp, page := request(t, c, "GET", g.url("main", "/.cacgate/account/password"), browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("account page: HTTP %d", resp.StatusCode)
	}
	resp, page = post(t, c, g.url("main", "/.cacgate/enroll/new"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {"900-11-1892"}, "dob": {"1975-04-12"},
	})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, `href="/.cacgate/account"`) || strings.Contains(page, `name="state"`) {
		t.Fatalf("identity step of a registered card: HTTP %d\n%s", resp.StatusCode, page)
	}
}
