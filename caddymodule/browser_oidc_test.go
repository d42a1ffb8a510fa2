package caddymodule

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// startTestRP serves a relying party on loopback, built on coreos/go-oidc:
// /login sends the browser to the provider (state, nonce, PKCE), /callback
// exchanges the code, verifies the ID token and shows who signed in.
func startTestRP(t *testing.T, g *testGateway, ln net.Listener, clientID string) {
	t.Helper()
	rp := g.oidcRP(t, clientID, oidcSecret, "openid profile email")
	rp.config.RedirectURL = "http://" + ln.Addr().String() + "/callback"
	verifier := oauth2.GenerateVerifier()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, rp.config.AuthCodeURL("browser-state", gooidc.Nonce("browser-nonce"), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	})
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		fail := func(msg string, err error) {
			http.Error(w, fmt.Sprintf("RP: %s: %v", msg, err), http.StatusBadRequest)
		}
		if r.URL.Query().Get("state") != "browser-state" {
			fail("state", fmt.Errorf("%q", r.URL.Query().Get("state")))
			return
		}
		tok, err := rp.config.Exchange(rp.ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			fail("exchange", err)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.provider.Verifier(&gooidc.Config{ClientID: clientID}).Verify(rp.ctx, raw)
		if err != nil {
			fail("ID token", err)
			return
		}
		var c struct {
			Nonce string `json:"nonce"`
			User  string `json:"preferred_username"`
			Kind  string `json:"credential_kind"`
		}
		if err := idt.Claims(&c); err != nil || c.Nonce != "browser-nonce" {
			fail("nonce", err)
			return
		}
		fmt.Fprintf(w, "<!doctype html><title>RP</title><p>Valid ID token for %s (%s)</p>", html.EscapeString(c.User), html.EscapeString(c.Kind))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestBrowserOIDCSignIn: in Chromium with a test card, an application's
// sign-in goes through the banner ("I Accept") and comes back to the
// application with a valid ID token.
func TestBrowserOIDCSignIn(t *testing.T) {
	requireBrowser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rpOrigin := "http://" + ln.Addr().String()
	g := startGateway(t, "", fmt.Sprintf(`oidc {
				client browser-app {
					secret %s
					redirect_uri %s/callback
				}
			}`, oidcSecret, rpOrigin))
	g.createAccount("1234567890", "john.q.doe")
	startTestRP(t, g, ln, "browser-app")
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), card(t, "doe.john.quincy")))

	start := time.Now()
	if err := doWithin(ctx, browserStep, chromedp.Navigate(rpOrigin+"/login")); err != nil {
		t.Fatalf("opening the application's sign-in: %v", err)
	}
	if got := evalOr(ctx, `document.location.pathname`); got != "/.cacgate/consent" {
		t.Fatalf("the sign-in reached %q, want the banner\n%s", got, pageText(ctx))
	}
	checkPageBasics(t, ctx, "banner page (OIDC sign-in)")
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
		t.Fatalf("clicking I Accept: %v", err)
	}
	body, err := waitForBody(ctx, browserStep, "/callback", "Valid ID token for john.q.doe (cac)")
	if err != nil {
		t.Fatalf("after I Accept: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), body)
	}
	if !strings.HasPrefix(evalOr(ctx, `document.location.href`), rpOrigin+"/callback?") {
		t.Errorf("ended at %s", evalOr(ctx, `document.location.href`))
	}
	t.Logf("banner accepted and back at the application with an ID token in %v", time.Since(start).Round(time.Millisecond))
}
