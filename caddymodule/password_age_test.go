package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/session"
)

// TestPasswordLoginExpired runs the default password lifetimes through the
// gateway: a password last changed 61 days ago no longer signs in.
func TestPasswordLoginExpired(t *testing.T) {
	g := startEnrollGateway(t, "password_login on")
	passwordUser(t, g) // a fresh password signs in

	// Age the password behind the gateway's back, as 61 days would.
	db := g.rawDB(t)
	res, err := db.Exec(`UPDATE accounts SET password_changed_at = ? WHERE username = ?`,
		time.Now().Add(-61*24*time.Hour).Unix(), "robert.e.johnson")
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("ageing the password: %v (%d rows)", err, n)
	}

	resp, page := signIn(t, g, g.client(nil), "robert.e.johnson", "Correct.Horse~Bat9")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Your password expired on ") || strings.Contains(page, "Correct.Horse") {
		t.Fatalf("expired password: HTTP %d\n%s", resp.StatusCode, page)
	}
	found := false
	for _, e := range g.auditEntries(t, "signin.password") {
		if e["outcome"] == "failure" && e["reason"] == "password_expired" && e["username"] == "robert.e.johnson" {
			found = true
		}
	}
	if !found {
		t.Errorf("no signin.password failure with reason password_expired in %v", g.auditEntries(t, "signin.password"))
	}
}

// TestPasswordSessionIdle checks the idle limit of password sessions (15
// minutes by default) through the gateway, with session tokens minted at
// chosen times under the running app's key.
func TestPasswordSessionIdle(t *testing.T) {
	g := startEnrollGateway(t, "password_login on")
	c := passwordUser(t, g)
	u, _ := url.Parse(g.url("main", "/"))
	var consentCookie, issued string
	for _, ck := range c.Jar.Cookies(u) {
		switch ck.Name {
		case consent.CookieName:
			consentCookie = ck.Value
		case session.CookieName:
			issued = ck.Value
		}
	}
	appIface, err := caddy.ActiveContext().App("cacgate")
	if err != nil {
		t.Fatal(err)
	}
	tokens := appIface.(*App).sessions.Tokens()
	now := time.Now()
	if s, err := tokens.Verify(issued, now); err != nil || s.IdleUntil.Sub(now) > 15*time.Minute || s.IdleUntil.Sub(now) < 14*time.Minute {
		t.Fatalf("the sign-in's session: %+v %v, want a 15-minute idle limit", s, err)
	}
	// The tokens below are minted as signed in minutes ago: move the
	// password's last change before that (a session signed in before the
	// password changed is refused), and drop the cached account.
	db := g.rawDB(t)
	if _, err := db.Exec(`UPDATE accounts SET password_changed_at = ? WHERE username = ?`, now.Add(-time.Hour).Unix(), "robert.e.johnson"); err != nil {
		t.Fatal(err)
	}
	appIface.(*App).invalidate()

	// Requests with a given session token and the user's banner cookie,
	// nothing else.
	bare := &http.Client{Transport: c.Transport, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(token string) *http.Response {
		t.Helper()
		resp, _ := request(t, bare, "GET", g.url("main", "/app"), http.Header{"Accept": {"text/html"},
			"Cookie": {consent.CookieName + "=" + consentCookie + "; " + session.CookieName + "=" + token}}, nil)
		return resp
	}
	mint := func(at time.Time, idle time.Duration) string {
		t.Helper()
		tok, err := tokens.Issue("robert.e.johnson", at, 8*time.Hour, idle)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	renewed := func(resp *http.Response) string {
		for _, ck := range resp.Cookies() {
			if ck.Name == session.CookieName {
				return ck.Value
			}
		}
		return ""
	}

	// Idle for 20 minutes: over.
	if resp := get(mint(now.Add(-20*time.Minute), 15*time.Minute)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session idle for 20 minutes: HTTP %d", resp.StatusCode)
	}
	// Idle for 3 minutes: admitted, and the deadline starts again.
	old := mint(now.Add(-3*time.Minute), 15*time.Minute)
	resp := get(old)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("session idle for 3 minutes: HTTP %d", resp.StatusCode)
	}
	fresh := renewed(resp)
	was, _ := tokens.Verify(old, now)
	got, err := tokens.Verify(fresh, time.Now())
	if err != nil || got.ID != was.ID || !got.Expires.Equal(was.Expires) || got.IdleUntil.Before(now.Add(14*time.Minute)) {
		t.Fatalf("renewed session %+v (%v), was %+v", got, err, was)
	}
	if ck := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "Secure") {
		t.Errorf("renewed cookie attributes: %s", ck)
	}
	// Renewed seconds ago: no new cookie, no signature. (Seconds before
	// this request, not before now: on a busy machine the steps above can
	// take longer than the minute a deadline may go stale.)
	if resp := get(mint(time.Now().Add(-10*time.Second), 15*time.Minute)); resp.StatusCode != http.StatusOK || renewed(resp) != "" {
		t.Fatalf("fresh session: HTTP %d, cookie %q", resp.StatusCode, renewed(resp))
	}
	// A token without the idle limit this site requires is refused.
	if resp := get(mint(now, 0)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session without an idle limit: HTTP %d", resp.StatusCode)
	}
}

// TestSignOutEndsCopiedSession checks that signing out ends the session on
// the server: a copy of the token taken before, or a renewal of it, is
// refused afterwards, and the end is recorded where other nodes look.
func TestSignOutEndsCopiedSession(t *testing.T) {
	g := startEnrollGateway(t, "password_login on")
	c := passwordUser(t, g)
	u, _ := url.Parse(g.url("main", "/"))
	var cookies []string
	var token string
	for _, ck := range c.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
		if ck.Name == session.CookieName {
			token = ck.Value
		}
	}
	// The copy someone took.
	thief := &http.Client{Transport: c.Transport, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	replay := func(cookie string) int {
		t.Helper()
		resp, _ := request(t, thief, "GET", g.url("main", "/app"), http.Header{"Accept": {"text/html"}, "Cookie": {cookie}}, nil)
		return resp.StatusCode
	}
	if code := replay(strings.Join(cookies, "; ")); code != http.StatusOK {
		t.Fatalf("copied session before sign-out: HTTP %d", code)
	}

	if resp, _ := request(t, c, "POST", g.url("main", "/.cacgate/logout"), nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: HTTP %d", resp.StatusCode)
	}
	if code := replay(strings.Join(cookies, "; ")); code != http.StatusUnauthorized {
		t.Fatalf("copied session after sign-out: HTTP %d", code)
	}
	// A renewal of the same session is the same session.
	appIface, err := caddy.ActiveContext().App("cacgate")
	if err != nil {
		t.Fatal(err)
	}
	tokens := appIface.(*App).sessions.Tokens()
	now := time.Now()
	s, err := tokens.Verify(token, now)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := tokens.Renew(s, now, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var consentCookie string
	for _, ck := range cookies {
		if strings.HasPrefix(ck, consent.CookieName+"=") {
			consentCookie = ck
		}
	}
	if code := replay(consentCookie + "; " + session.CookieName + "=" + renewed); code != http.StatusUnauthorized {
		t.Fatalf("renewed copy after sign-out: HTTP %d", code)
	}

	// Recorded in the database, where the other nodes look, and audited.
	db := g.rawDB(t)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ended_sessions WHERE id = ?`, s.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ended_sessions rows for the session: %d, %v", n, err)
	}
	entries := g.auditEntries(t, "signout.password")
	if len(entries) != 1 || entries[0]["session_ended_in_store"] != true || entries[0]["username"] != "robert.e.johnson" {
		t.Errorf("signout.password audit: %v", entries)
	}
}

// passwordUser enrolls robert.e.johnson with his card (which gives the
// account its password) and returns a browser without a card signed in
// with that password, the banner accepted.
func passwordUser(t *testing.T, g *testGateway) *http.Client {
	t.Helper()
	enrollJohnson(t, g)
	return passwordBrowser(t, g)
}

// passwordBrowser is a browser without a card, signed in as
// robert.e.johnson with his password, the banner accepted.
func passwordBrowser(t *testing.T, g *testGateway) *http.Client {
	t.Helper()
	c := g.client(nil)
	if resp, _ := signIn(t, g, c, "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: HTTP %d", resp.StatusCode)
	}
	_, page := request(t, c, "GET", g.url("main", "/.cacgate/consent?next=/app"), browser, nil)
	if resp, _ := post(t, c, g.url("main", "/.cacgate/consent"), url.Values{"csrf": {formValue(t, page, "csrf")}, "next": {"/app"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accepting the banner: HTTP %d", resp.StatusCode)
	}
	return c
}

// TestPasswordSessionLimit: with session_limit 1, signing in on a second
// browser ends the first browser's session, and says so in the audit trail.
func TestPasswordSessionLimit(t *testing.T) {
	g := startEnrollGateway(t, "password_login on\nsession_limit 1")
	first := passwordUser(t, g)
	if resp, _ := request(t, first, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first browser: HTTP %d", resp.StatusCode)
	}
	second := passwordBrowser(t, g)
	if resp, _ := request(t, second, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("second browser: HTTP %d", resp.StatusCode)
	}
	if resp, _ := request(t, first, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("first browser after the second signed in: HTTP %d", resp.StatusCode)
	}
	entries := g.auditEntries(t, "session.ended")
	if len(entries) != 1 || entries[0]["reason"] != "session_limit" || entries[0]["username"] != "robert.e.johnson" {
		t.Errorf("session.ended audit: %v", entries)
	}
}
