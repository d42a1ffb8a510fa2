package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPasswordChangeEndsSessions: a password session signed in before the
// password was changed ends at its next request (someone changing a
// leaked password means to shut its holder out), on every node through
// the store, audited once; the new password signs in.
func TestPasswordChangeEndsSessions(t *testing.T) {
	g := startEnrollGateway(t, `password_login on
		enroll {
			password_min_age off
		}`)
	holder := enrollJohnson(t, g)
	stolen := passwordBrowser(t, g)
	if resp, _ := request(t, stolen, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the change: HTTP %d", resp.StatusCode)
	}
	// Times are whole seconds: a sign-in in the same second as the change
	// would count as after it.
	time.Sleep(1100 * time.Millisecond)

	// The holder changes the password on the account page, with the card.
	_, page := request(t, holder, "GET", g.url("main", "/.cacgate/account/password"), browser, nil)
	resp, page := post(t, holder, g.url("main", "/.cacgate/account/password"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "current": {"Correct.Horse~Bat9"},
		"password": {"Brand.New~Horse42"}, "confirm": {"Brand.New~Horse42"},
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your password was changed.") {
		t.Fatalf("changing the password: HTTP %d\n%s", resp.StatusCode, page)
	}

	if resp, _ := request(t, stolen, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session from before the change: HTTP %d, want 401", resp.StatusCode)
	}
	request(t, stolen, "GET", g.url("main", "/app"), browser, nil)
	entries := g.auditEntries(t, "session.ended")
	if len(entries) != 1 || entries[0]["reason"] != "password_changed" || entries[0]["username"] != "robert.e.johnson" {
		t.Fatalf("session.ended audit: %v", entries)
	}
	// Recorded for every node.
	db := g.rawDB(t)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ended_sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ended_sessions rows %d, %v", n, err)
	}
	// The new password signs in; the old one does not.
	if resp, _ := signIn(t, g, g.client(nil), "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old password: HTTP %d", resp.StatusCode)
	}
	fresh := g.client(nil)
	if resp, _ := signIn(t, g, fresh, "robert.e.johnson", "Brand.New~Horse42"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("new password: HTTP %d", resp.StatusCode)
	}
}
