package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/consent"
)

// TestCardSignOut: a card holder signs out at /.cacgate/logout: the page
// offers the button while the banner is accepted, the sign-out deletes the
// consent cookie and is audited, and the next request meets the banner
// again.
func TestCardSignOut(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))

	// Not accepted yet: nothing to sign out of.
	if resp, page := request(t, c, "GET", g.url("main", "/.cacgate/logout"), browser, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, "You have signed out") {
		t.Fatalf("sign-out page before the banner: HTTP %d\n%s", resp.StatusCode, page)
	}
	g.accept(t, c, "main")
	if resp, _ := request(t, c, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the banner: HTTP %d", resp.StatusCode)
	}
	resp, page := request(t, c, "GET", g.url("main", "/.cacgate/logout"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "signed in to this site with your CAC") ||
		!strings.Contains(page, `<form method="post" action="/.cacgate/logout">`) {
		t.Fatalf("sign-out page with the banner accepted: HTTP %d\n%s", resp.StatusCode, page)
	}
	// Cross-site: refused, still signed in.
	if resp, _ := request(t, c, "POST", g.url("main", "/.cacgate/logout"), http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-out: HTTP %d", resp.StatusCode)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a refused sign-out: HTTP %d", resp.StatusCode)
	}

	resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/logout"), nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.cacgate/logout" {
		t.Fatalf("sign-out: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	deleted := false
	for _, ck := range resp.Cookies() {
		if ck.Name == consent.CookieName && ck.MaxAge < 0 {
			deleted = true
		}
	}
	if !deleted {
		t.Fatalf("the sign-out did not delete the consent cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	if resp, page := request(t, c, "GET", g.url("main", "/.cacgate/logout"), browser, nil); !strings.Contains(page, "You have signed out") ||
		!strings.Contains(page, "remove it from the reader") {
		t.Fatalf("after signing out: HTTP %d\n%s", resp.StatusCode, page)
	}
	// The banner again before the application.
	resp, _ = request(t, c, "GET", g.url("main", "/app"), browser, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/consent") {
		t.Fatalf("after signing out: HTTP %d %q, want the banner", resp.StatusCode, resp.Header.Get("Location"))
	}
	entries := g.auditEntries(t, "signout.card")
	if len(entries) != 1 || entries[0]["edipi"] != "1234567890" || entries[0]["outcome"] != "success" || entries[0]["cert_serial"] == nil {
		t.Fatalf("signout.card audit: %v", entries)
	}
}
