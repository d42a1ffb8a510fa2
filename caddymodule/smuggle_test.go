package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/forward"
	"github.com/cacgate/cacgate/internal/session"
)

// trailerBody is a request body of unknown length (sent chunked) whose
// trailers are the request's.
type trailerBody struct{ io.Reader }

// postWithTrailers posts a chunked body whose trailers claim an identity.
func postWithTrailers(t *testing.T, c *http.Client, url string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, trailerBody{strings.NewReader("payload")})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Accept", "text/html")
	req.Trailer = http.Header{"X-Remote-User": {"root"}, "X_cac_edipi": {"9999999999"}, "X-App-Checksum": {"abc"}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST with trailers: HTTP %d", resp.StatusCode)
	}
}

// TestIdentityTrailersStripped: identity headers sent as request trailers
// (which net/http fills in only once the body is read, after the gateway's
// header stripping) never reach the backend, on a gated path or an exempt
// one; other trailers do.
func TestIdentityTrailersStripped(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	for _, path := range []string{"/app", "/healthz"} {
		postWithTrailers(t, c, g.url("main", path))
		tr := g.backend.lastTrailer(t)
		for k := range tr {
			if forward.SameName(k, "x-remote-user") || forward.SameName(k, "x-cac-edipi") {
				t.Errorf("%s: the backend got the client's trailer %s: %q", path, k, tr[k])
			}
		}
		if tr.Get("X-App-Checksum") != "abc" {
			t.Errorf("%s: the application's own trailer was lost: %v", path, tr)
		}
	}
	if got := g.backend.last(t).Get("X-Remote-User"); got != "" {
		t.Errorf("exempt path: X-Remote-User %q", got)
	}
}

// TestConnectionHeaderCannotDropIdentity: a client naming the identity
// headers in Connection (which makes a proxy drop them as hop-by-hop)
// cannot keep them from the backend.
func TestConnectionHeaderCannotDropIdentity(t *testing.T) {
	g := startGateway(t, "", "header assertion on")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	resp, _ := request(t, c, "GET", g.url("main", "/app"), http.Header{
		"Accept":     {"text/html"},
		"Connection": {"keep-alive, X-Remote-User, x-cac-assertion", "X_Cac_Auth_Method,X-Cac-Cert-Sha256"},
	}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	got := g.backend.last(t)
	for _, h := range []string{"X-Remote-User", "X-Cac-Assertion", "X-Cac-Auth-Method", "X-Cac-Cert-Sha256", "X-Cac-Edipi"} {
		if got.Get(h) == "" {
			t.Errorf("the backend lost %s to the client's Connection header", h)
		}
	}
}

// TestGatewayCookiesNotForwarded: the password session cookie, a bearer
// credential, stays between the browser and the gateway, through nested
// cacgate blocks too; the application's own cookies reach the backend.
func TestGatewayCookiesNotForwarded(t *testing.T) {
	g := startEnrollGateway(t, "password_login on")
	enrollJohnson(t, g)
	card := g.client(card(t, "doe.john.quincy"))
	g.createAccount("1234567890", "john.q.doe")
	g.accept(t, card, "main")
	password := passwordBrowser(t, g)
	for name, c := range map[string]*http.Client{"card": card, "password": password} {
		for _, path := range []string{"/app", "/healthz"} {
			resp, _ := request(t, c, "GET", g.url("main", path), http.Header{"Accept": {"text/html"}, "Cookie": {"app_session=42; theme=dark"}}, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: HTTP %d", name, path, resp.StatusCode)
			}
			cookies := strings.Join(g.backend.last(t).Values("Cookie"), "; ")
			if strings.Contains(cookies, session.CookieName) {
				t.Errorf("%s %s: the backend got the password session: %q", name, path, cookies)
			}
			if !strings.Contains(cookies, "app_session=42") || !strings.Contains(cookies, "theme=dark") {
				t.Errorf("%s %s: the application's cookies were lost: %q", name, path, cookies)
			}
		}
	}
}
