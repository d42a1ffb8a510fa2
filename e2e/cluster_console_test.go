package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

// The help-desk console on a cluster: an action taken in node A's console
// applies on node B at once (through PostgreSQL's NOTIFY: the nodes'
// cache_ttl is ten minutes), and node B's console shows the event, read
// from the shared security-event history.
func TestClusterConsole(t *testing.T) {
	c := startClusterWith(t, clusterOptions{site: "admin_group helpdesk"})
	a, b := c.nodes[0], c.nodes[1]
	adminCard, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{Name: "helpdesk", Family: "TECH", Given: "TERRY", EDIPI: "1234567861", Affiliation: "CONTRACTOR"})
	if err != nil {
		t.Fatal(err)
	}
	userCard, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{Name: "user", Family: "USER", Given: "UMA", EDIPI: "1234567862", Affiliation: "USA"})
	if err != nil {
		t.Fatal(err)
	}
	adminJSON(t, a, "POST", "/cacgate/accounts", map[string]any{"edipi": "1234567861", "username": "terry.tech", "groups": []string{"helpdesk"}})
	adminJSON(t, a, "POST", "/cacgate/accounts", map[string]any{"edipi": "1234567862", "username": "uma.user"})

	// The user reaches the application through node B (linked by DoD ID),
	// which now holds the account in its cache for ten minutes.
	user := c.browser(t, userCard)
	if resp, body := acceptBanner(t, user, b.site, "/"); resp.StatusCode != http.StatusOK || body != "user=uma.user node=b" {
		t.Fatalf("user on node b: HTTP %d %q", resp.StatusCode, body)
	}

	// The administrator disables the account in node A's console.
	admin := c.browser(t, adminCard)
	if resp, _ := acceptBanner(t, admin, a.site, "/.cacgate/admin"); resp.StatusCode != http.StatusOK {
		t.Fatalf("console on node a: HTTP %d", resp.StatusCode)
	}
	_, page := get(t, admin, "https://"+a.site+"/.cacgate/admin/accounts/uma.user", "text/html")
	resp := consolePost(t, admin, "https://"+a.site+"/.cacgate/admin/accounts/uma.user/disable", page, url.Values{"reason": {"ticket 99"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable in node a's console: HTTP %d", resp.StatusCode)
	}
	start := time.Now()
	waitFor(t, "node b refuses the disabled account", func() (bool, string) {
		resp, body := get(t, user, "https://"+b.site+"/", "")
		return resp.StatusCode == http.StatusForbidden, fmt.Sprintf("HTTP %d %q", resp.StatusCode, body)
	})
	t.Logf("the console's change applied on node b after %v", time.Since(start).Round(time.Millisecond))

	// An announcement made in node A's console shows on node B's pages.
	_, page = get(t, admin, "https://"+a.site+"/.cacgate/admin/announcements", "text/html")
	end := time.Now().UTC().Add(3 * time.Hour).Format("2006-01-02T15:04")
	if resp := consolePost(t, admin, "https://"+a.site+"/.cacgate/admin/announcements", page,
		url.Values{"severity": {"outage"}, "message": {"Cluster maintenance at noon"}, "end": {end}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("announcement in node a's console: HTTP %d", resp.StatusCode)
	}
	waitFor(t, "node b shows the announcement", func() (bool, string) {
		_, body := get(t, c.browser(t, userCard), "https://"+b.site+"/.cacgate/consent?next=/", "text/html")
		return strings.Contains(body, "Cluster maintenance at noon"), "not shown"
	})

	// Node B's console shows the event node A's console caused (the
	// banner accepted on node A counts on node B: the nodes share the
	// consent key and the host name).
	waitFor(t, "node b's console shows the disable", func() (bool, string) {
		_, body := get(t, admin, "https://"+b.site+"/.cacgate/admin/accounts/uma.user", "text/html")
		return strings.Contains(body, "admin.account.disabled") && strings.Contains(body, "ticket 99") && strings.Contains(body, "<strong>disabled</strong>"), "not shown"
	})
}

// adminJSON calls node n's admin API with a JSON body.
func adminJSON(t *testing.T, n *node, method, path string, body any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+n.admin+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("node %s admin %s %s: HTTP %d %s", n.name, method, path, resp.StatusCode, out)
	}
}

// consolePost submits a console form with page's CSRF token.
func consolePost(t *testing.T, c *http.Client, u, page string, fields url.Values) *http.Response {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no CSRF token:\n%s", page)
	}
	fields.Set("csrf", html.UnescapeString(m[1]))
	req, _ := http.NewRequest("POST", u, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
