package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRefusalsToHandleErrors: with "refusals handle_errors" a refused
// request becomes an error for the server's handle_errors routes, with
// the reason in {cacgate.refusal.*}; redirects to the banner stay
// redirects, and the refusal is still audited.
func TestRefusalsToHandleErrors(t *testing.T) {
	g := startGateway(t, "", `refusals handle_errors`)
	for _, tc := range []struct {
		name     string
		card     string
		accept   string
		status   int
		code     string
		location bool
	}{
		{name: "no card", status: http.StatusUnauthorized, code: "certificate_required"},
		{name: "program without consent", card: "doe.john.quincy", accept: "application/json", status: http.StatusForbidden, code: "consent_required"},
		{name: "revoked card", card: "revoked.ronald", status: http.StatusForbidden, code: "certificate_revoked"},
		{name: "banner", card: "doe.john.quincy", accept: "text/html", status: http.StatusSeeOther, location: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *http.Client
			if tc.card != "" {
				c = g.client(card(t, tc.card))
			} else {
				c = g.client(nil)
			}
			req, _ := http.NewRequest("GET", g.url("main", "/app"), nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.location {
				if resp.Header.Get("Location") == "" {
					t.Error("no redirect")
				}
				return
			}
			// The site's handle_errors route answered, with the reason.
			if want := "restyled " + tc.code; !strings.HasPrefix(string(body), want) {
				t.Errorf("body %q, want it to start with %q", body, want)
			}
		})
	}
	if len(g.auditEntries(t, "access.denied")) == 0 {
		t.Error("refusals handed to handle_errors were not audited")
	}
}
