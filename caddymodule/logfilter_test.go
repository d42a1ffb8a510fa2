package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAssertionKeptOutOfDebugLog: Caddy's reverse_proxy logs each upstream
// request's headers at DEBUG, redacting only cookies and Authorization; the
// README's filter encoder keeps the X-Cac-Assertion bearer token out.
func TestAssertionKeptOutOfDebugLog(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		name := map[bool]string{false: "unfiltered", true: "filtered"}[filtered]
		t.Run(name, func(t *testing.T) {
			extra := ""
			if filtered {
				extra = "# filter-assertion"
			}
			g := startGateway(t, extra, "header assertion on")
			g.createAccount("1234567890", "john.q.doe")
			c := g.client(card(t, "doe.john.quincy"))
			g.accept(t, c, "main")
			if resp, body := request(t, c, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d %s", resp.StatusCode, body)
			}
			token := g.backend.last(t).Get("X-Cac-Assertion")
			if token == "" {
				t.Fatal("no assertion sent")
			}
			log, err := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), "upstream roundtrip") {
				t.Fatal("no upstream roundtrip entry at DEBUG")
			}
			if leaked := strings.Contains(string(log), token); leaked == filtered {
				t.Errorf("assertion in the DEBUG log: %v, want %v", leaked, !filtered)
			}
		})
	}
}
