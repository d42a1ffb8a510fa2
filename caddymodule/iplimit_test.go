package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                  "192.0.2.7",
		"192.0.2.7:54321":            "192.0.2.7",
		"::ffff:192.0.2.7":           "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":       "2001:db8:1:2::/64", // same /64: one client
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::/64",
		"fe80::1%eth0":               "fe80::/64",
		"not an address":             "invalid",
		"":                           "invalid",
		"999.1.1.1":                  "invalid",
		"192.0.2.7\r\nX-Injected: 1": "invalid",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
	if len(addressAttemptPrefix+"ffff:ffff:ffff:ffff::/64") > store.MaxAttemptNameLen {
		t.Error("an address key does not fit the attempts table")
	}
	// The counters are pruned attemptRetention after their window began,
	// which must outlast the window.
	if ipAttemptWindow > attemptRetention/2 {
		t.Errorf("ipAttemptWindow %v is over half of attemptRetention %v", ipAttemptWindow, attemptRetention)
	}
}

func TestIPLimiter(t *testing.T) {
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	l := newAddressLimit(3, 15*time.Minute, nil)
	ctx := context.Background()
	take := func(ip string, at time.Time) bool {
		t.Helper()
		ok, err := l.take(ctx, ip, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range 3 {
		if !take("192.0.2.1", now) {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if take("192.0.2.1", now) {
		t.Fatal("fourth attempt allowed")
	}
	if !take("192.0.2.2", now) {
		t.Fatal("another address shares the first one's count")
	}
	// Refused attempts are not counted: one refund makes room for one.
	l.refund(ctx, "192.0.2.1")
	if !take("192.0.2.1", now) || take("192.0.2.1", now) {
		t.Fatal("a refund did not make room for exactly one attempt")
	}
	// Another address in the same IPv6 /64 is the same client.
	for range 3 {
		take("2001:db8::1", now)
	}
	if take("2001:db8::2", now) {
		t.Fatal("a second address in the /64 got a fresh allowance")
	}
	// The window passes.
	if !take("192.0.2.1", now.Add(15*time.Minute)) {
		t.Fatal("still refused after the window")
	}
	// Refunding an address never seen changes nothing.
	l.refund(ctx, "198.51.100.9")
}

// TestIPLimiterConcurrentFirstAttempts: many first attempts from one
// address at once share one counter, so exactly max get through.
func TestIPLimiterConcurrentFirstAttempts(t *testing.T) {
	l := newAddressLimit(10, 15*time.Minute, nil)
	now := time.Now()
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := l.take(context.Background(), "203.0.113.5", now); ok {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 10 {
		t.Fatalf("%d of 64 concurrent attempts allowed, want 10", n)
	}
}

// failingThrottler is an account database that cannot count attempts.
type failingThrottler struct{ store.Throttler }

func (failingThrottler) TakeAttempt(context.Context, string, time.Time, time.Duration, int) (bool, error) {
	return false, errors.New("database is locked")
}

// TestAddressLimitFailsClosed: when the shared count cannot be kept, the
// attempt is refused with 503, not let through uncounted.
func TestAddressLimitFailsClosed(t *testing.T) {
	p := newHotPath(t, "off")
	p.h.ipAttempts = newAddressLimit(3, ipAttemptWindow, failingThrottler{})
	r := httptest.NewRequest(http.MethodPost, selfservice.PathLogin, nil)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	done, err := p.h.limitAddress(w, r, time.Now(), "signin.password")
	if !done || err != nil {
		t.Fatalf("limitAddress = %v, %v; want done", done, err)
	}
	var body struct {
		Error string `json:"error"`
	}
	if w.Code != http.StatusServiceUnavailable || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error != "account_service_unavailable" {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
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
	if n, _, err := db.Attempts(ctx, addressAttemptPrefix+"127.0.0.1", time.Now(), ipAttemptWindow); err != nil || n != 0 {
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
	if n, _, err := db.Attempts(ctx, addressAttemptPrefix+"127.0.0.1", time.Now(), ipAttemptWindow); err != nil || n != 3 {
		t.Fatalf("count %d, %v; want 3", n, err)
	}

	// Attempts counted by another node sharing the database hold here.
	forget()
	for range 3 {
		if ok, err := db.TakeAttempt(ctx, addressAttemptPrefix+"127.0.0.1", time.Now(), ipAttemptWindow, 3); !ok || err != nil {
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
