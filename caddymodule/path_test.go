package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// backendHits is how many requests the backend has seen.
func (b *backend) hits() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

// TestAmbiguousPathsAgainstExempt: a path that a backend could read as
// another page than the one the gateway decided about is refused before
// the exempt check, so no card-less request reaches a protected page
// through an exempt-looking address.
func TestAmbiguousPathsAgainstExempt(t *testing.T) {
	g := startGateway(t, "", "")
	anon := g.client(nil)
	for _, path := range []string{
		"/app/secret/..%2F..%2Fhealthz",
		"/app/secret/..%2f..%2fhealthz",
		"/app/secret/%2E%2E/%2E%2E/healthz",
		"/app/secret/..;/..;/healthz",
		"/app/secret//..//..//healthz",
		"/app/secret/../../healthz",
		"/static/..%2Fapp%2Fsecret",
		"/healthz/..%5Capp",
		"/app%252F..%252Fhealthz",
	} {
		before := g.backend.hits()
		resp, body := request(t, anon, "GET", g.url("main", path), http.Header{"Accept": {"application/json"}}, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "ambiguous_path") {
			t.Errorf("GET %s: HTTP %d %s, want 400 ambiguous_path", path, resp.StatusCode, body)
		}
		if g.backend.hits() != before {
			t.Errorf("GET %s reached the backend", path)
		}
	}
	// Canonical paths keep working: exempt ones pass, others need a card.
	if resp, _ := request(t, anon, "GET", g.url("main", "/healthz"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: HTTP %d", resp.StatusCode)
	}
	if resp, _ := request(t, anon, "GET", g.url("main", "/app/secret"), nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/app/secret without a card: HTTP %d", resp.StatusCode)
	}
	var audited bool
	for _, e := range g.auditEntries(t, "access.denied") {
		if e["reason"] == "ambiguous_path" && e["raw_path"] == "/app/secret/..%2F..%2Fhealthz" && e["path_problem"] == "encoded_separator" {
			audited = true
		}
	}
	if !audited {
		t.Error("the refusal was not audited with the path as sent")
	}
}

// TestAmbiguousPathsAgainstRoutes: with the README's route layout (handle
// /admin* with an ops-admins block, a catch-all block for everyone), a
// card holder outside ops-admins cannot reach the admin app through an
// address Caddy's matchers clean to another route.
func TestAmbiguousPathsAgainstRoutes(t *testing.T) {
	g := startAccessGateway(t)
	g.createAccount("1234567890", "john.q.doe")
	doe := g.client(card(t, "doe.john.quincy"))
	g.accept(t, doe, "routes")
	if code, _ := getProblem(t, doe, g.url("routes", "/admin/users")); code != http.StatusForbidden {
		t.Fatalf("/admin/users outside ops-admins: HTTP %d", code)
	}
	if code, _ := getProblem(t, doe, g.url("routes", "/app/home")); code != http.StatusOK {
		t.Fatalf("/app/home: HTTP %d", code)
	}
	for _, path := range []string{
		"/admin/users/..%2F..%2Fapp",
		"/admin/users//..//..//app",
		"/app/..%2Fadmin/users",
		"/app/..;/admin/users",
		"/app/%2e%2e/admin/users",
	} {
		before := g.backend.hits()
		code, p := getProblem(t, doe, g.url("routes", path))
		if code != http.StatusBadRequest || p.Error != "ambiguous_path" {
			t.Errorf("GET %s: HTTP %d %+v, want 400 ambiguous_path", path, code, p)
		}
		if g.backend.hits() != before {
			t.Errorf("GET %s reached the backend", path)
		}
	}
}
