package caddymodule

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestPasswordLoginUnknownUsername: through the whole gateway, an unknown
// username at /.cacgate/login gets what a known one with a wrong password
// gets, attempt after attempt (status, headers, page), through the lock;
// only the audit log tells them apart.
func TestPasswordLoginUnknownUsername(t *testing.T) {
	g := startEnrollGateway(t, "password_login on")
	enrollJohnson(t, g)

	var (
		csrfRE = regexp.MustCompile(`(name="csrf" value=")[^"]*(")`)
		// The lock's end is the time of each run's third attempt.
		untilRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC`)
	)
	type answer struct {
		status        int
		headers, body string
	}
	run := func(username string) []answer {
		c := g.client(nil)
		var out []answer
		for range 4 {
			resp, page := signIn(t, g, c, username, "Summer.Season~2026")
			page = untilRE.ReplaceAllString(csrfRE.ReplaceAllString(page, "${1}TOKEN${2}"), "TIME")
			page = strings.ReplaceAll(page, username, "USERNAME")
			var hs []string
			for k, vs := range resp.Header {
				if k != "Date" {
					hs = append(hs, k+": "+strings.Join(vs, ", "))
				}
			}
			sort.Strings(hs)
			out = append(out, answer{resp.StatusCode, strings.Join(hs, "\n"), page})
		}
		return out
	}
	// Usernames of one length, as the page echoes them.
	known, unknown := run("robert.e.johnson"), run("nobody.x.unknown")
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusForbidden, http.StatusForbidden} {
		if known[i].status != want {
			t.Fatalf("known username, attempt %d: HTTP %d, want %d\n%s", i+1, known[i].status, want, known[i].body)
		}
		k, u := known[i], unknown[i]
		if k.status != u.status || k.headers != u.headers || k.body != u.body {
			t.Errorf("attempt %d differs:\nknown: HTTP %d\n%s\n%s\nunknown: HTTP %d\n%s\n%s", i+1, k.status, k.headers, k.body, u.status, u.headers, u.body)
		}
	}
	if !strings.Contains(known[0].body, "2 tries remaining") || !strings.Contains(known[2].body, "It is locked until TIME") {
		t.Errorf("known username's pages:\n%s\n%s", known[0].body, known[2].body)
	}
	var reasons []string
	for _, e := range g.auditEntries(t, "signin.password") {
		if e["outcome"] == "failure" {
			reasons = append(reasons, e["reason"].(string))
			if e["reason"] == "unknown_username" && e["username"] != nil {
				t.Errorf("unknown username recorded: %v", e)
			}
		}
	}
	if got := strings.Join(reasons, ","); got != "bad_password,bad_password,locked,locked,unknown_username,unknown_username,unknown_username,unknown_username" {
		t.Errorf("audited reasons %s", got)
	}
}
