package caddymodule

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPasswordLoginExpired runs the default password lifetimes through the
// gateway: a password last changed 61 days ago no longer signs in.
func TestPasswordLoginExpired(t *testing.T) {
	g := startEnrollGateway(t, "password_login on")
	card := g.client(card(t, "johnson.robert.e.jr"))
	g.accept(t, card, "main")
	if _, page := enrollSteps(t, g, card, "900-11-1892", "1975-04-12"); !strings.Contains(page, "robert.e.johnson") {
		t.Fatalf("enrolling:\n%s", page)
	}
	c := g.client(nil)
	if resp, _ := signIn(t, g, c, "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("fresh password: HTTP %d", resp.StatusCode)
	}

	// Age the password behind the gateway's back, as 61 days would.
	db, err := sql.Open("sqlite", filepath.Join(g.dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
