package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/selfservice"
)

// mismatchRoster matches no claim, and counts how often it was asked.
type mismatchRoster struct {
	mu       sync.Mutex
	verifies int
}

func (m *mismatchRoster) Verify(context.Context, roster.Claim) (roster.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.verifies++
	return roster.Result{}, nil
}

func (*mismatchRoster) NeedsPEBD(context.Context, string) (roster.PEBDNeed, error) {
	return roster.PEBDNotAsked, nil
}

type allowCSRF struct{}

func (allowCSRF) Token() string     { return "t" }
func (allowCSRF) Check(string) bool { return true }

// TestEnrollmentCardLimitSharedAcrossNodes: the gateway (node A) and a
// second node's enrollment flow (node B: its own store handle on the same
// database file, its own flow, the same wiring) count a card's failed
// identity checks together: three on B and two on A use up the card's
// five, and both nodes refuse the sixth, even with the right answers.
func TestEnrollmentCardLimitSharedAcrossNodes(t *testing.T) {
	ctx := context.Background()
	g := startEnrollGateway(t, "")
	holder := card(t, "doe.john.quincy")
	c := g.client(holder)
	g.accept(t, c, "main")

	db := g.openStore(t)
	key, err := db.EnsureSecret(ctx, secretEnrollStateKey, randomBytes(32))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := selfservice.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	rosterB := &mismatchRoster{}
	svcB, err := selfservice.New(selfservice.Config{}, selfservice.Deps{
		Roster:   rosterB,
		Accounts: db,
		Hasher:   credential.NewHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, 1),
		Sealer:   sealer,
		Throttle: db,
	})
	if err != nil {
		t.Fatal(err)
	}
	nodeB, err := portal.NewPages(svcB)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cacid.Parse(holder.Cert)
	if err != nil {
		t.Fatal(err)
	}
	b := *id
	b.Serial, b.NotAfter = "01", holder.Cert.NotAfter
	cardB := &b
	postB := func(ssn, dob string) int {
		t.Helper()
		form := url.Values{"csrf": {"t"}, "idtype": {"ssn"}, "ssn": {ssn}, "dob": {dob}}
		r := httptest.NewRequest(http.MethodPost, portal.PathNew, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		if err := nodeB.Serve(w, r, cardB, allowCSRF{}); err != nil {
			t.Fatal(err)
		}
		return w.Code
	}

	for i := range 3 {
		if code := postB("900-99-9999", "1970-01-01"); code != http.StatusUnprocessableEntity {
			t.Fatalf("node B, failure %d: HTTP %d", i+1, code)
		}
	}
	for i := range 2 {
		if resp, page := enrollSteps(t, g, c, "900-99-9999", "1970-01-01"); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("node A, failure %d: HTTP %d\n%s", i+1, resp.StatusCode, page)
		}
	}
	// The right answers: refused on both nodes, the roster not asked.
	if resp, page := enrollSteps(t, g, c, "900-11-1890", "1980-01-15"); resp.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(page, "Too many attempts") {
		t.Fatalf("node A after five failures across nodes: HTTP %d\n%s", resp.StatusCode, page)
	}
	if code := postB("900-11-1890", "1980-01-15"); code != http.StatusTooManyRequests {
		t.Fatalf("node B after five failures across nodes: HTTP %d", code)
	}
	if rosterB.verifies != 3 {
		t.Errorf("node B asked its roster %d times, want 3", rosterB.verifies)
	}
	n, _, err := db.Attempts(ctx, "enroll:identity:"+id.FingerprintHex, time.Now(), selfservice.ThrottleWindow)
	if err != nil || n != 5 {
		t.Errorf("shared count %d, %v; want 5", n, err)
	}
}
