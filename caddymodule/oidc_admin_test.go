package caddymodule

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/cacgate/cacgate/internal/admin"
)

// oidcCLI runs `caddy cacgate oidc-clients <args>` in-process.
func oidcCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := oidcClientsCommand()
	cmd.SilenceUsage = true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestOIDCClientsThroughAdminAPI: a relying party registered through the
// admin API (secret generated, shown once, stored as a hash) signs people
// in on the provider at once; clients of the config cannot be registered
// over; removal ends it. The CLI does the same through the API.
func TestOIDCClientsThroughAdminAPI(t *testing.T) {
	_, jwksFile := writeClientJWKS(t)
	g := startGateway(t, "", oidcBlock(jwksFile))
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))

	var created admin.OIDCClient
	body := map[string]any{"redirect_uris": []string{oidcRedirect}, "scopes": []string{"openid", "profile"}, "generate_secret": true}
	if code := g.adminDo("PUT", "/cacgate/oidc/clients/registered", body, &created); code != http.StatusOK || len(created.Secret) < 40 || created.SecretHash != "" {
		t.Fatalf("register: HTTP %d %+v", code, created)
	}
	rp := g.oidcRP(t, "registered", created.Secret, "openid profile")
	v, opts := pkce()
	q, status, page := g.oidcSignIn(t, c, rp.config.AuthCodeURL("s", opts...))
	if q == nil || q.Get("code") == "" {
		t.Fatalf("sign-in with a registered client: HTTP %d %s", status, page)
	}
	tok, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := rp.provider.Verifier(&gooidc.Config{ClientID: "registered"}).Verify(rp.ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		path string
		body map[string]any
		want int
	}{
		{"/cacgate/oidc/clients/clear", map[string]any{"redirect_uris": []string{oidcRedirect}, "secret": strings.Repeat("x", 40)}, http.StatusBadRequest},
		{"/cacgate/oidc/clients/app", map[string]any{"redirect_uris": []string{oidcRedirect}, "generate_secret": true}, http.StatusConflict},
		{"/cacgate/oidc/clients/wild", map[string]any{"redirect_uris": []string{"https://*.example.mil/cb"}, "generate_secret": true}, http.StatusBadRequest},
		{"/cacgate/oidc/clients/plainhttp", map[string]any{"redirect_uris": []string{"http://app.example.mil/cb"}, "generate_secret": true}, http.StatusBadRequest},
		{"/cacgate/oidc/clients/scope", map[string]any{"redirect_uris": []string{oidcRedirect}, "scopes": []string{"openid", "admin"}, "generate_secret": true}, http.StatusBadRequest},
	} {
		if code := g.adminDo("PUT", bad.path, bad.body, nil); code != bad.want {
			t.Errorf("PUT %s: HTTP %d, want %d", bad.path, code, bad.want)
		}
	}
	var list []admin.OIDCClient
	if code := g.adminDo("GET", "/cacgate/oidc/clients", nil, &list); code != http.StatusOK || len(list) != 1 || list[0].ID != "registered" || !list[0].HasSecret || list[0].SecretHash != "" {
		t.Fatalf("list: HTTP %d %+v", code, list)
	}

	// The CLI, through the admin API.
	out, _, err := oidcCLI(t, "", "list", "--address", g.admin)
	if err != nil || !strings.Contains(out, "registered") {
		t.Fatalf("cli list: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "client.json")
	os.WriteFile(file, []byte(`{"client_id":"cli-app","redirect_uris":["`+oidcRedirect+`"]}`), 0o600)
	out, errOut, err := oidcCLI(t, "", "put", file, "--generate-secret", "--address", g.admin)
	if err != nil || !strings.Contains(out, "Registered cli-app") || !strings.Contains(errOut, "Client secret") {
		t.Fatalf("cli put: %v\n%s\n%s", err, out, errOut)
	}
	if _, _, err := oidcCLI(t, "", "remove", "cli-app", "--address", g.admin); err != nil {
		t.Fatalf("cli remove: %v", err)
	}

	if code := g.adminDo("DELETE", "/cacgate/oidc/clients/registered", nil, nil); code != http.StatusOK {
		t.Fatalf("delete: HTTP %d", code)
	}
	resp, _ := request(t, c, "GET", rp.config.AuthCodeURL("s", opts...), browser, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("sign-in with a removed client: HTTP %d", resp.StatusCode)
	}
	if len(g.auditEntries(t, admin.EventOIDCClientSaved)) < 3 || len(g.auditEntries(t, admin.EventOIDCClientDeleted)) == 0 {
		t.Error("client management not audited")
	}
}
