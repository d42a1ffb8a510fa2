package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDenyRulesHoldForUnlinkedCards: a deny rule that shuts a person out
// also keeps their other, unlinked card (found by DoD ID) from the
// gateway's enrollment pages, so it cannot be registered to the excluded
// account.
func TestDenyRulesHoldForUnlinkedCards(t *testing.T) {
	g := startEnrollGatewayWith(t, "link_by_edipi off", `deny group suspended`)
	first := g.client(card(t, "doe.john.quincy"))
	g.accept(t, first, "main")
	if _, page := enrollSteps(t, g, first, "900-11-1890", "1980-01-15"); !strings.Contains(page, "john.q.doe") {
		t.Fatalf("enrolling:\n%s", page)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", map[string][]string{"groups": {"suspended"}}, nil); code != http.StatusOK {
		t.Fatalf("adding the group: HTTP %d", code)
	}
	if resp, _ := request(t, first, "GET", g.url("main", "/.cacgate/account"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("registered card, account page: HTTP %d", resp.StatusCode)
	}
	second := g.client(card(t, "doe.john.quincy.piv"))
	g.accept(t, second, "main")
	link := g.url("main", "/.cacgate/enroll/link")
	resp, page := request(t, second, "GET", link, browser, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unlinked card of an excluded person, link page: HTTP %d", resp.StatusCode)
	}
	if strings.Contains(page, `name="csrf"`) {
		resp, _ = post(t, second, link, url.Values{"csrf": {formValue(t, page, "csrf")}, "username": {"john.q.doe"}, "password": {"Correct.Horse~Bat9"}})
		t.Fatalf("the link form was offered (POST: HTTP %d)", resp.StatusCode)
	}
}
