package caddymodule

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// The relying parties of the OIDC tests. Their redirect URIs need no
// server: the tests read the code from the Location the provider answers.
const (
	oidcRedirect      = "http://127.0.0.1:9/callback"
	oidcPostLogout    = "http://127.0.0.1:9/signed-out"
	oidcSecret        = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-0123456789"
	oidcPostSecret    = "p0st-p0st-p0st-p0st-p0st-p0st-0123456789"
	oidcWrongSecret   = "wrong-wrong-wrong-wrong-wrong-0123456789"
	oidcCardOnlyScope = "openid profile email groups cac offline_access"
)

// oidcBlock is the main site's oidc block for the tests: a confidential
// client with refresh tokens and every claim (app), one that posts its
// secret (post), a public one (native), one signing its assertions
// (keyed, whose public keys are in jwksFile).
func oidcBlock(jwksFile string) string {
	return fmt.Sprintf(`oidc {
				code_ttl 1m
				client app {
					name "Test App"
					secret %[1]s
					redirect_uri %[2]s
					post_logout_redirect_uri %[3]s
					scopes %[4]s
					claims preferred_username name given_name family_name email groups edipi affiliation categories
					refresh_ttl 1h
				}
				client post {
					secret %[5]s
					auth_method client_secret_post
					redirect_uri %[2]s
				}
				client native {
					auth_method none
					redirect_uri %[2]s
				}
				client keyed {
					jwks_file %[6]s
					redirect_uri %[2]s
				}
			}`, oidcSecret, oidcRedirect, oidcPostLogout, oidcCardOnlyScope, oidcPostSecret, jwksFile)
}

// oidcRP is a relying party built on coreos/go-oidc, an independent
// client library, over the gateway's TLS (trusting the test CA).
type oidcRP struct {
	provider *gooidc.Provider
	config   oauth2.Config
	ctx      context.Context
	issuer   string
}

func (g *testGateway) oidcRP(t *testing.T, clientID, secret, scopes string) *oidcRP {
	t.Helper()
	issuer := g.url("main", "")
	// The RP's own HTTP client: the gateway's CA, no card.
	ctx := gooidc.ClientContext(context.Background(), g.client(nil))
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &oidcRP{provider: p, ctx: ctx, issuer: issuer, config: oauth2.Config{
		ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: oidcRedirect, Scopes: strings.Fields(scopes)}}
}

// signIn drives a browser (c, presenting a card) from the RP's
// authorization URL through the banner to the redirect back, and returns
// the redirect's query. A refusal on the way ends it with that response's
// status and body instead.
func (g *testGateway) oidcSignIn(t *testing.T, c *http.Client, authURL string) (url.Values, int, string) {
	t.Helper()
	next := authURL
	for hop := 0; hop < 8; hop++ {
		resp, body := request(t, c, "GET", next, browser, nil)
		loc := resp.Header.Get("Location")
		switch {
		case resp.StatusCode >= 400 || loc == "":
			return nil, resp.StatusCode, body
		case strings.HasPrefix(loc, oidcRedirect) || strings.HasPrefix(loc, oidcPostLogout):
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			return u.Query(), resp.StatusCode, ""
		case strings.HasPrefix(loc, "/.cacgate/consent"):
			// The banner, as a person would accept it, with its next.
			resp, body = request(t, c, "GET", g.url("main", loc), browser, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("banner: HTTP %d %s", resp.StatusCode, body)
			}
			form := url.Values{"csrf": {formValue(t, body, "csrf")}, "next": {formValue(t, body, "next")}, "accept": {"yes"}}
			resp, body = request(t, c, "POST", g.url("main", "/.cacgate/consent"), http.Header{
				"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}, strings.NewReader(form.Encode()))
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("accepting the banner: HTTP %d %s", resp.StatusCode, body)
			}
			next = g.url("main", resp.Header.Get("Location"))
		case strings.HasPrefix(loc, "/"):
			next = g.url("main", loc)
		default:
			t.Fatalf("redirected to %s", loc)
		}
	}
	t.Fatal("too many redirects")
	return nil, 0, ""
}

func pkce() (verifier string, opts []oauth2.AuthCodeOption) {
	v := oauth2.GenerateVerifier()
	return v, []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(v)}
}

func writeClientJWKS(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	b, _ := json.Marshal(set)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return key, path
}

// TestOIDCWithGoOIDC drives the provider with coreos/go-oidc over real
// mTLS with the test cards: the code flow with PKCE, state and nonce, the
// ID token's claims, userinfo, refresh bound to the account, every client
// authentication method, and the refusals the issue names.
func TestOIDCWithGoOIDC(t *testing.T) {
	clientKey, jwksFile := writeClientJWKS(t)
	g := startGateway(t, "", oidcBlock(jwksFile)+"\n\t\t\tdeny edipi 1234567891\n\t\t\tdeny group suspended")
	john := g.createAccount("1234567890", "john.q.doe")
	g.createAccount("1234567891", "jane.smith")
	g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", map[string][]string{"groups": {"ops"}}, nil)
	rp := g.oidcRP(t, "app", oidcSecret, oidcCardOnlyScope)
	c := g.client(card(t, "doe.john.quincy"))

	// Discovery says only what is offered.
	if d := rp.provider.Endpoint(); d.AuthURL != rp.issuer+"/.cacgate/oidc/authorize" || d.TokenURL != rp.issuer+"/.cacgate/oidc/token" {
		t.Fatalf("endpoints: %+v", d)
	}
	var disco map[string]any
	if err := rp.provider.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(disco["response_types_supported"]) != "[code]" || fmt.Sprint(disco["code_challenge_methods_supported"]) != "[S256]" ||
		disco["end_session_endpoint"] != rp.issuer+"/.cacgate/logout" || disco["introspection_endpoint"] != nil {
		t.Fatalf("discovery: %v", disco)
	}

	// The card holder signs in: banner, then back to the RP with a code.
	verifier, opts := pkce()
	authURL := rp.config.AuthCodeURL("state-1", append(opts, gooidc.Nonce("nonce-1"))...)
	q, status, body := g.oidcSignIn(t, c, authURL)
	if q == nil || q.Get("state") != "state-1" || q.Get("code") == "" {
		t.Fatalf("sign-in: HTTP %d %v %s", status, q, body)
	}
	tok, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := rp.provider.Verifier(&gooidc.Config{ClientID: "app"}).Verify(rp.ctx, rawID)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Nonce             string   `json:"nonce"`
		AMR               []string `json:"amr"`
		ACR               string   `json:"acr"`
		AuthTime          int64    `json:"auth_time"`
		PreferredUsername string   `json:"preferred_username"`
		Email             string   `json:"email"`
		EDIPI             string   `json:"edipi"`
		Groups            []string `json:"groups"`
		Kind              string   `json:"credential_kind"`
		SID               string   `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Nonce != "nonce-1" || !slices.Equal(claims.AMR, []string{"hwk", "sc", "mfa"}) || claims.ACR == "" || claims.AuthTime == 0 ||
		claims.PreferredUsername != "john.q.doe" || claims.EDIPI != "1234567890" || !slices.Equal(claims.Groups, []string{"ops"}) ||
		claims.Kind != "cac" || claims.SID == "" {
		t.Fatalf("ID token claims: %+v", claims)
	}
	if idt.Subject == "" || idt.Subject == john.EDIPI || idt.Subject == "john.q.doe" {
		t.Fatalf("sub %q: must be opaque", idt.Subject)
	}
	ui, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != idt.Subject {
		t.Fatalf("userinfo: %+v %v", ui, err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}

	t.Run("replayed code", func(t *testing.T) {
		if _, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("replayed code: %v", err)
		}
		// The replay revoked what the code gave.
		if _, err := rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("refresh token survived the code's replay")
		}
		if len(g.auditEntries(t, "oidc.code_replayed")) == 0 {
			t.Error("replay not audited")
		}
	})

	signIn := func(t *testing.T, c *http.Client, rp *oidcRP, extra ...oauth2.AuthCodeOption) (code, verifier string) {
		t.Helper()
		verifier, opts := pkce()
		q, status, body := g.oidcSignIn(t, c, rp.config.AuthCodeURL("s", append(opts, extra...)...))
		if q == nil || q.Get("code") == "" {
			t.Fatalf("sign-in: HTTP %d %v %s", status, q, body)
		}
		return q.Get("code"), verifier
	}

	t.Run("refresh bound to the account", func(t *testing.T) {
		code, v := signIn(t, c, rp)
		tok, err := rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(rt string) (*oauth2.Token, error) {
			return rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: rt}).Token()
		}
		next, err := refresh(tok.RefreshToken)
		if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh: %+v %v", next, err)
		}
		// The replaced token is spent: presenting it again revokes the grant.
		if _, err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("a spent refresh token was accepted")
		}
		if _, err := refresh(next.RefreshToken); err == nil {
			t.Fatal("the grant survived a replayed refresh token")
		}
		// A disabled account stops refreshes at once.
		code, v = signIn(t, c, rp)
		tok, err = rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		g.adminDo("POST", "/cacgate/accounts/john.q.doe/disable", nil, nil)
		if _, err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh for a disabled account")
		}
		if _, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("userinfo for a disabled account")
		}
		g.adminDo("POST", "/cacgate/accounts/john.q.doe/enable", nil, nil)
		// The site's access rules apply again at each refresh.
		g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", map[string][]string{"groups": {"suspended"}}, nil)
		if _, err := refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh for an account a deny rule now refuses")
		}
		g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/groups", map[string][]string{"groups": {"suspended"}}, nil)
		if _, err := refresh(tok.RefreshToken); err != nil {
			t.Fatalf("refresh after re-enabling: %v", err)
		}
		refused := g.auditEntries(t, "oidc.token")
		if !slices.ContainsFunc(refused, func(e map[string]any) bool { return e["reason"] == "account_disabled" }) {
			t.Errorf("refusal not audited: %v", refused)
		}
	})

	t.Run("wrong redirect URI", func(t *testing.T) {
		bad := rp.config
		bad.RedirectURL = "http://127.0.0.1:9/elsewhere"
		resp, body := request(t, c, "GET", bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), browser, nil)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "redirect_uri") {
			t.Fatalf("HTTP %d Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})

	t.Run("wrong client secret", func(t *testing.T) {
		code, v := signIn(t, c, rp)
		bad := rp.config
		bad.ClientSecret = oidcWrongSecret
		if _, err := bad.Exchange(rp.ctx, code, oauth2.VerifierOption(v)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("wrong secret: %v", err)
		}
	})

	t.Run("PKCE", func(t *testing.T) {
		native := g.oidcRP(t, "native", "", "openid profile")
		// A public client must send a challenge.
		q, status, _ := g.oidcSignIn(t, c, native.config.AuthCodeURL("s"))
		if q == nil || q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Fatalf("no challenge: HTTP %d %v", status, q)
		}
		code, _ := signIn(t, c, native)
		if _, err := native.config.Exchange(rp.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("wrong verifier accepted")
		}
		code, v := signIn(t, c, native)
		if tok, err := native.config.Exchange(rp.ctx, code, oauth2.VerifierOption(v)); err != nil || tok.Extra("id_token") == nil {
			t.Fatalf("public client with PKCE: %v", err)
		}
		// The plain method is refused.
		plain := native.config.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", v), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		if q, status, _ := g.oidcSignIn(t, c, plain); q == nil || q.Get("error") != "invalid_request" {
			t.Fatalf("plain PKCE: HTTP %d %v", status, q)
		}
	})

	t.Run("expired code", func(t *testing.T) {
		code, v := signIn(t, c, rp)
		oidcClockSkew.Store(int64(2 * time.Minute))
		defer oidcClockSkew.Store(0)
		if _, err := rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(v)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("expired code: %v", err)
		}
	})

	t.Run("client_secret_post", func(t *testing.T) {
		post := g.oidcRP(t, "post", oidcPostSecret, "openid email")
		post.config.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		code, v := signIn(t, c, post)
		tok, err := post.config.Exchange(rp.ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatalf("client_secret_post: %v", err)
		}
		idt, err := post.provider.Verifier(&gooidc.Config{ClientID: "post"}).Verify(rp.ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		idt.Claims(&got)
		// Released per client: email scope only, and never the DoD ID
		// unless the client lists it.
		if got["email"] == nil || got["preferred_username"] != nil || got["edipi"] != nil || got["credential_kind"] != "cac" {
			t.Fatalf("claims released to post: %v", got)
		}
	})

	t.Run("private_key_jwt", func(t *testing.T) {
		keyed := g.oidcRP(t, "keyed", "", "openid")
		code, v := signIn(t, c, keyed)
		assertion := func(t *testing.T, key *rsa.PrivateKey) string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			s, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "keyed", Subject: "keyed", Audience: jwt.Audience{keyed.issuer},
				IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: fmt.Sprint(now.UnixNano())}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		exchange := func(key *rsa.PrivateKey, code string) (int, string) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirect}, "code_verifier": {v},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion(t, key)}}
			resp, body := request(t, g.client(nil), "POST", keyed.provider.Endpoint().TokenURL,
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
			return resp.StatusCode, body
		}
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		if status, body := exchange(other, code); status < 400 {
			t.Fatalf("assertion signed by another key: HTTP %d %s", status, body)
		}
		code, v = signIn(t, c, keyed)
		if status, body := exchange(clientKey, code); status != http.StatusOK || !strings.Contains(body, "id_token") {
			t.Fatalf("private_key_jwt: HTTP %d %s", status, body)
		}
		// An assertion is good once: the same one again (a fresh code) is
		// refused.
		code, v = signIn(t, c, keyed)
		once := assertion(t, clientKey)
		post := func(a string) int {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirect}, "code_verifier": {v},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
			resp, _ := request(t, g.client(nil), "POST", keyed.provider.Endpoint().TokenURL,
				http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
			return resp.StatusCode
		}
		if status := post(once); status != http.StatusOK {
			t.Fatalf("first use of an assertion: HTTP %d", status)
		}
		code, v = signIn(t, c, keyed)
		if status := post(once); status != http.StatusUnauthorized {
			t.Fatalf("replayed assertion: HTTP %d", status)
		}
	})

	t.Run("refused sign-ins", func(t *testing.T) {
		// An access rule (deny edipi) refuses Jane; a revoked card is
		// refused; neither reaches the RP.
		jane := g.client(card(t, "smith.jane"))
		if q, status, _ := g.oidcSignIn(t, jane, rp.config.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))); q != nil || status != http.StatusForbidden {
			t.Fatalf("access rule: HTTP %d %v", status, q)
		}
		ronald := g.client(card(t, "revoked.ronald"))
		if q, status, _ := g.oidcSignIn(t, ronald, rp.config.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))); q != nil || status != http.StatusForbidden {
			t.Fatalf("revoked card: HTTP %d %v", status, q)
		}
		g.adminDo("POST", "/cacgate/accounts/john.q.doe/disable", nil, nil)
		defer g.adminDo("POST", "/cacgate/accounts/john.q.doe/enable", nil, nil)
		if q, status, _ := g.oidcSignIn(t, c, rp.config.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))); q != nil || status != http.StatusForbidden {
			t.Fatalf("disabled account: HTTP %d %v", status, q)
		}
		// prompt=none without a sign-in goes back to the RP, not to a page.
		nobody := g.client(nil)
		q, _, _ := g.oidcSignIn(t, nobody, rp.config.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")))
		if q == nil || q.Get("error") != "login_required" {
			t.Fatalf("prompt=none: %v", q)
		}
	})

	t.Run("RP-initiated logout", func(t *testing.T) {
		code, v := signIn(t, c, rp)
		tok, err := rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		logout := rp.issuer + "/.cacgate/logout?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)},
			"post_logout_redirect_uri": {oidcPostLogout}, "state": {"bye"}}.Encode()
		resp, body := request(t, c, "GET", logout, browser, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Sign out") {
			t.Fatalf("confirmation: HTTP %d %s", resp.StatusCode, body)
		}
		resp, body = request(t, c, "POST", logout, http.Header{"Accept": {"text/html"}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != oidcPostLogout+"?state=bye" {
			t.Fatalf("sign-out: HTTP %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if _, err := rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("refresh token survived the logout")
		}
		// An unregistered post-logout URI is refused, not followed.
		bad := rp.issuer + "/.cacgate/logout?" + url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode()
		if resp, _ := request(t, c, "GET", bad, browser, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("unregistered post-logout URI: HTTP %d", resp.StatusCode)
		}
	})

	if len(g.auditEntries(t, "oidc.authorize")) == 0 || len(g.auditEntries(t, "oidc.token")) == 0 {
		t.Error("issuance not audited")
	}
}
