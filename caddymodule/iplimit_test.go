package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// failingThrottler is an account database that cannot count attempts.
type failingThrottler struct{ store.Throttler }

func (failingThrottler) TakeAttempt(context.Context, string, time.Time, time.Duration, int) (bool, error) {
	return false, errors.New("database is locked")
}

// TestAddressLimitFailsClosed: when the shared count cannot be kept, the
// attempt is refused with 503, not let through uncounted, and audited as
// the identity step (the README promises an enroll.identity entry).
func TestAddressLimitFailsClosed(t *testing.T) {
	p := newHotPath(t, "off")
	sealer, err := selfservice.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	core, audits := observer.New(zapcore.InfoLevel)
	p.h.app.audit = audit.New(zap.New(core), "node-a")
	svc, err := selfservice.New(selfservice.Config{}, selfservice.Deps{
		Roster: &mismatchRoster{}, Accounts: p.h.app.store, Sealer: sealer, Throttle: failingThrottler{p.h.app.store}, States: p.h.app.store,
		Hasher: credential.NewHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, 1),
		Audit:  p.h.app.auditSelfService, AuditRepeatable: p.h.app.auditSelfServiceRepeatable,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.h.enrollFlow, err = portal.NewPages(svc); err != nil {
		t.Fatal(err)
	}
	if err := p.h.provisionPortal(); err != nil {
		t.Fatal(err)
	}
	// An identity check (an enrollment POST, its form's token good) from
	// an admitted card: the guard counts it per address before anything.
	id := &cacid.Identity{EDIPI: "1234567890", FingerprintHex: strings.Repeat("ab", 32)}
	form := url.Values{"csrf": {p.h.app.tokens.CSRF(id.FingerprintHex, time.Now())}, "idtype": {"ssn"}, "ssn": {"900-11-1890"}, "dob": {"1980-01-15"}}
	r := httptest.NewRequest(http.MethodPost, portal.PathNew, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept", "application/json")
	r = portal.WithVisitor(r, portal.Visitor{Card: id})
	w := httptest.NewRecorder()
	if err := p.h.portal.ServeHTTP(w, r); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error string `json:"error"`
	}
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error != "account_service_unavailable" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	entries := audits.FilterMessage("enroll.identity").All()
	if len(entries) != 1 {
		t.Fatalf("enroll.identity entries: %v", audits.All())
	}
	if e := entries[0].ContextMap(); e["outcome"] != "unavailable" || e["reason"] != selfservice.ThrottleUnavailableReason || e["edipi"] != "1234567890" {
		t.Errorf("entry %v", e)
	}
}

// TestPasswordLoginAttemptsPerIP: wrong passwords on the sign-in page
// count against attempts_per_ip (so one address cannot try a password on
// account after account), correct ones do not (so a base behind one NAT
// can sign in all day), and the count is kept in the account database, so
// attempts another node counted hold here too.
func TestPasswordLoginAttemptsPerIP(t *testing.T) {
	g := startEnrollGateway(t, `password_login on
		enroll {
			attempts_per_ip 3
		}`)
	enrollJohnson(t, g)
	ctx := context.Background()
	db := g.openStore(t)
	// Enrolling took identity checks from this address: start afresh.
	forget := func() {
		t.Helper()
		if _, err := db.PruneAttempts(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	forget()

	// Forged posts (from another site, or without the form's token) are
	// refused before they count: a page elsewhere cannot make visitors'
	// browsers use their address's allowance up.
	for i := range 5 {
		forged := url.Values{"username": {"john.q.doe"}, "password": {"Summer.Season~2026"}, "csrf": {"forged"}}
		hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}
		if i%2 == 0 {
			hdr.Set("Sec-Fetch-Site", "cross-site")
			hdr.Set("Origin", "https://evil.example")
		}
		if resp, _ := request(t, g.client(nil), "POST", g.url("main", "/.cacgate/login"), hdr, strings.NewReader(forged.Encode())); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged sign-in post %d: HTTP %d", i+1, resp.StatusCode)
		}
	}
	if n, _, err := db.Attempts(ctx, "ip:127.0.0.1", time.Now(), selfservice.AddressWindow); err != nil || n != 0 {
		t.Fatalf("forged posts counted %d, %v; want 0", n, err)
	}

	// Correct passwords do not use the allowance up.
	for i := range 5 {
		if resp, page := signIn(t, g, g.client(nil), "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: HTTP %d\n%s", i+1, resp.StatusCode, page)
		}
	}
	// Three wrong passwords on three accounts (a spray: no account gets
	// near its own lockout)...
	for i, user := range []string{"john.q.doe", "jane.smith", "luis.a.garcia"} {
		if resp, page := signIn(t, g, g.client(nil), user, "Summer.Season~2026"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: HTTP %d\n%s", i+1, resp.StatusCode, page)
		}
	}
	// ...and this address is refused, even with a correct password.
	resp, page := signIn(t, g, g.client(nil), "robert.e.johnson", "Correct.Horse~Bat9")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "900" || !strings.Contains(page, "Too many attempts") {
		t.Fatalf("after three wrong passwords from one address: HTTP %d\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, "Correct.Horse") {
		t.Fatal("the refusal echoes the password")
	}
	entries := g.auditEntries(t, "signin.password")
	last := entries[len(entries)-1]
	if last["outcome"] != audit.Failure || last["reason"] != "too_many_attempts_from_address" || last["source_ip"] != "127.0.0.1" {
		t.Fatalf("audit entry %v", last)
	}
	// The refusal was not counted: the table holds the three failures.
	if n, _, err := db.Attempts(ctx, "ip:127.0.0.1", time.Now(), selfservice.AddressWindow); err != nil || n != 3 {
		t.Fatalf("count %d, %v; want 3", n, err)
	}

	// Attempts counted by another node sharing the database hold here.
	forget()
	for range 3 {
		if ok, err := db.TakeAttempt(ctx, "ip:127.0.0.1", time.Now(), selfservice.AddressWindow, 3); !ok || err != nil {
			t.Fatalf("node B's attempt: %v, %v", ok, err)
		}
	}
	if resp, page := signIn(t, g, g.client(nil), "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sign-in after node B's three failures: HTTP %d\n%s", resp.StatusCode, page)
	}
	// The enrollment pages draw on the same allowance.
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	if resp, page := enrollSteps(t, g, c, "900-11-1890", "1980-01-15"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("identity check after node B's three failures: HTTP %d\n%s", resp.StatusCode, page)
	}
}
