package caddymodule

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestOIDCPasswordSession: where the site has password_login on, a
// password session signs in to a client that allows it (amr pwd), not to
// a card-only one; signing out ends its refresh tokens on every node (the
// ended session is in the database); and an unlinked card stops a card
// sign-in's refreshes.
func TestOIDCPasswordSession(t *testing.T) {
	g := startEnrollGateway(t, fmt.Sprintf(`password_login on
		oidc {
			client cards-only {
				secret %[1]s
				redirect_uri %[2]s
				refresh_ttl 1h
			}
			client both {
				secret %[1]s
				redirect_uri %[2]s
				allow_password
				refresh_ttl 1h
			}
		}`, oidcSecret, oidcRedirect))
	cardClient := enrollJohnson(t, g)
	c := g.client(nil)
	if resp, _ := signIn(t, g, c, "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != 303 {
		t.Fatalf("password sign-in: HTTP %d", resp.StatusCode)
	}
	scopes := "openid profile offline_access"
	cardsOnly := g.oidcRP(t, "cards-only", oidcSecret, scopes)
	both := g.oidcRP(t, "both", oidcSecret, scopes)

	v, opts := pkce()
	q, status, body := g.oidcSignIn(t, c, cardsOnly.config.AuthCodeURL("s", opts...))
	if q == nil || q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("password session at a card-only client: HTTP %d %v %s", status, q, body)
	}
	q, status, body = g.oidcSignIn(t, c, both.config.AuthCodeURL("s", opts...))
	if q == nil || q.Get("code") == "" {
		t.Fatalf("password session at a client that allows it: HTTP %d %v %s", status, q, body)
	}
	tok, err := both.config.Exchange(both.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := both.provider.Verifier(&gooidc.Config{ClientID: "both"}).Verify(both.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR  []string `json:"amr"`
		Kind string   `json:"credential_kind"`
	}
	idt.Claims(&claims)
	if !slices.Equal(claims.AMR, []string{"pwd"}) || claims.Kind != "password" {
		t.Fatalf("password sign-in claims: %+v", claims)
	}
	refresh := func(rp *oidcRP, rt string) error {
		_, err := rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: rt}).Token()
		return err
	}
	// Signing out ends the session in the database: its refreshes stop.
	if resp, _ := post(t, c, g.url("main", "/.cacgate/logout"), url.Values{}); resp.StatusCode != 303 {
		t.Fatalf("sign-out: HTTP %d", resp.StatusCode)
	}
	if err := refresh(both, tok.RefreshToken); err == nil {
		t.Fatal("refresh after the password session ended")
	}

	// A card sign-in's refreshes stop when the card is unlinked.
	v, opts = pkce()
	q, status, body = g.oidcSignIn(t, cardClient, cardsOnly.config.AuthCodeURL("s", opts...))
	if q == nil || q.Get("code") == "" {
		t.Fatalf("card sign-in: HTTP %d %v %s", status, q, body)
	}
	tok, err = cardsOnly.config.Exchange(cardsOnly.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	next, err := cardsOnly.config.TokenSource(cardsOnly.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("card refresh: %v", err)
	}
	var acct AccountJSON
	g.adminDo("GET", "/cacgate/accounts/robert.e.johnson", nil, &acct)
	if len(acct.Cards) == 0 {
		t.Fatal("no card")
	}
	if code := g.adminDo("DELETE", "/cacgate/accounts/robert.e.johnson/cards/"+acct.Cards[0].Fingerprint, nil, nil); code >= 300 {
		t.Fatalf("unlink: HTTP %d", code)
	}
	if err := refresh(cardsOnly, next.RefreshToken); err == nil {
		t.Fatal("refresh after the card was unlinked")
	}
}
