package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/session"
)

// signIn posts the password form for a client without a card and returns
// the answer.
func signIn(t *testing.T, g *testGateway, c *http.Client, username, password string) (*http.Response, string) {
	t.Helper()
	_, page := request(t, c, "GET", g.url("main", "/.cacgate/login?next=%2Fapp"), browser, nil)
	return post(t, c, g.url("main", "/.cacgate/login"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "next": {formValue(t, page, "next")},
		"username": {username}, "password": {password},
	})
}

func TestPasswordLoginOffByDefault(t *testing.T) {
	g := startEnrollGateway(t, "")
	c := g.client(nil)
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/login"), browser, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("login page with password_login off: HTTP %d", resp.StatusCode)
	}
	if _, page := request(t, c, "GET", g.url("main", "/"), browser, nil); strings.Contains(page, "/.cacgate/login") {
		t.Fatal("the no-card page offers a password sign-in that is off")
	}
}

func TestPasswordLogin(t *testing.T) {
	g := startEnrollGateway(t, "password_login on\n\t\theader assertion on")
	// An account with a password, made by enrolling with the card.
	enrollJohnson(t, g)

	c := g.client(nil)
	resp, page := request(t, c, "GET", g.url("main", "/app"), browser, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "I don&#39;t have a CAC/PIV") || !strings.Contains(page, "/.cacgate/login?next=%2Fapp") {
		t.Fatalf("no-card page: HTTP %d\n%s", resp.StatusCode, page)
	}

	// CSRF: a POST without the form's token (or the browser's login cookie) is refused.
	if resp, _ := post(t, g.client(nil), g.url("main", "/.cacgate/login"), url.Values{"username": {"robert.e.johnson"}, "password": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without CSRF: HTTP %d", resp.StatusCode)
	}
	resp, page = signIn(t, g, c, "robert.e.johnson", "Wrong.Password~1")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "2 tries remaining") || strings.Contains(page, "Wrong.Password") {
		t.Fatalf("wrong password: HTTP %d\n%s", resp.StatusCode, page)
	}
	// An unknown username gets the same answer (TestPasswordLoginUnknownUsername).
	resp, page = signIn(t, g, c, "nobody.at.all", "Wrong.Password~1")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "2 tries remaining") {
		t.Fatalf("unknown user: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, _ = signIn(t, g, c, "Robert.E.Johnson", "Correct.Horse~Bat9")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app" {
		t.Fatalf("sign-in: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	setCookie := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	for _, want := range []string{session.CookieName + "=", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie lacks %q: %s", want, setCookie)
		}
	}

	// The banner, bound to the user, then the app with the identity.
	resp, _ = request(t, c, "GET", g.url("main", "/app"), browser, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/consent") {
		t.Fatalf("before the banner: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = request(t, c, "GET", g.url("main", "/.cacgate/consent?next=/app"), browser, nil)
	resp, _ = post(t, c, g.url("main", "/.cacgate/consent"), url.Values{"csrf": {formValue(t, page, "csrf")}, "next": {"/app"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accepting the banner: HTTP %d", resp.StatusCode)
	}
	resp, _ = request(t, c, "GET", g.url("main", "/app"), http.Header{"Accept": {"text/html"}, "X-Cac-Cert-Sha256": {"spoofed"}, "X-Cac-Auth-Method": {"cac"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in: HTTP %d", resp.StatusCode)
	}
	got := g.backend.last(t)
	if got.Get("X-Remote-User") != "robert.e.johnson" || got.Get("X-Cac-Auth-Method") != "password" || got.Get("X-Cac-Edipi") != "1234567892" {
		t.Fatalf("backend headers: %v", got)
	}
	if v := got.Values("X-Cac-Cert-Sha256"); len(v) != 0 {
		t.Fatalf("a password sign-in reached the backend with a certificate header %q", v)
	}
	var claims struct {
		AuthMethod string `json:"auth_method"`
		Sub        string `json:"sub"`
	}
	parts := strings.Split(got.Get("X-Cac-Assertion"), ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q", got.Get("X-Cac-Assertion"))
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(payload, &claims); claims.AuthMethod != "password" || claims.Sub != "robert.e.johnson" {
		t.Fatalf("assertion claims %s", payload)
	}

	// A forged session is nobody.
	forged := g.client(nil)
	if resp, _ := request(t, forged, "GET", g.url("main", "/app"), http.Header{"Accept": {"text/html"}, "Cookie": {session.CookieName + "=eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb2JlcnQuZS5qb2huc29uIn0."}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged session: HTTP %d", resp.StatusCode)
	}

	// Disabling the account ends the session at once.
	g.adminDo("POST", "/cacgate/accounts/robert.e.johnson/disable", nil, nil)
	if resp, _ := request(t, c, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("disabled account's session: HTTP %d", resp.StatusCode)
	}
	g.adminDo("POST", "/cacgate/accounts/robert.e.johnson/enable", nil, nil)

	// Sign-out ends it too.
	resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/logout"), http.Header{"Origin": {"https://localhost:1"}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-out: HTTP %d", resp.StatusCode)
	}
	// Before signing out, the sign-out page offers the button rather than
	// claiming the session is over.
	if resp, page := request(t, c, "GET", g.url("main", "/.cacgate/logout"), browser, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, "<h1 id=\"notice-title\">Sign out</h1>") || !strings.Contains(page, `<form method="post" action="/.cacgate/logout">`) {
		t.Fatalf("sign-out page while signed in: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/logout"), nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.cacgate/logout" {
		t.Fatalf("sign-out: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after sign-out: HTTP %d", resp.StatusCode)
	}
	// The explicit logoff message (ASD STIG V-222392), for people and for
	// API clients.
	resp, page = request(t, c, "GET", g.url("main", "/.cacgate/logout"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You have signed out") ||
		!strings.Contains(page, `href="/.cacgate/login"`) || strings.Contains(page, "<form") {
		t.Fatalf("signed-out page: HTTP %d\n%s", resp.StatusCode, page)
	}
	if resp, body := request(t, c, "GET", g.url("main", "/.cacgate/logout"), nil, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"status":"signed_out"`) {
		t.Fatalf("signed-out JSON: HTTP %d %s", resp.StatusCode, body)
	}
	if resp, _ := request(t, c, "PUT", g.url("main", "/.cacgate/logout"), nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT sign-out: HTTP %d", resp.StatusCode)
	}

	// Three wrong passwords lock the account; the right one is then refused.
	for i := 0; i < 3; i++ {
		signIn(t, g, c, "robert.e.johnson", "Wrong.Password~1")
	}
	if resp, page = signIn(t, g, c, "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "locked until") {
		t.Fatalf("locked account: HTTP %d\n%s", resp.StatusCode, page)
	}
}
