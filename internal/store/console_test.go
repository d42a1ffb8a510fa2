package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSecurityEvents(t *testing.T) { forEachBackend(t, testSecurityEvents) }

// Events are kept whole, listed per account (by username or DoD ID) newest
// first, filtered by name, and pruned by age and by count.
func testSecurityEvents(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	var events []SecurityEvent
	for i := range 10 {
		e := SecurityEvent{At: testT0.Add(time.Duration(i) * time.Minute), Event: "access.granted", Outcome: "success",
			Username: "john.q.doe", EDIPI: "1234567890", SourceIP: "192.0.2.1", Node: "a", Fields: fmt.Sprintf(`{"n":%d}`, i)}
		if i%2 == 1 {
			e.Event, e.Username = "certificate.refused", "" // before the account: by DoD ID only
		}
		events = append(events, e)
	}
	// Hostile identifiers are kept out of the searchable columns.
	events = append(events, SecurityEvent{At: testT0, Event: "x", Outcome: "failure", Username: "Robert'); DROP", EDIPI: "12", Fields: strings.Repeat("a", MaxEventFields+1)})
	if err := s.RecordSecurityEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	got, err := s.SecurityEvents(ctx, EventQuery{Username: "john.q.doe", EDIPI: "1234567890", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || got[0].Fields != `{"n":9}` || !got[0].At.Equal(testT0.Add(9*time.Minute)) || got[0].SourceIP != "192.0.2.1" {
		t.Fatalf("account events: %d, newest %+v", len(got), got[0])
	}
	got, err = s.SecurityEvents(ctx, EventQuery{Username: "john.q.doe", EDIPI: "1234567890", Events: []string{"access.granted"}, Limit: 3})
	if err != nil || len(got) != 3 || got[0].Event != "access.granted" || got[0].Fields != `{"n":8}` {
		t.Fatalf("sign-ins: %v %+v", err, got)
	}
	all, err := s.SecurityEvents(ctx, EventQuery{Limit: 100})
	if err != nil || len(all) != 11 {
		t.Fatalf("all events: %d %v", len(all), err)
	}
	for _, e := range all {
		if e.Event == "x" && (e.Username != "" || e.EDIPI != "" || e.Fields != `{"truncated":true}`) {
			t.Errorf("hostile event stored as %+v", e)
		}
	}
	// Prune by age: the first three minutes (and the hostile one at T0).
	n, err := s.PruneSecurityEvents(ctx, testT0.Add(3*time.Minute), 0)
	if err != nil || n != 4 {
		t.Fatalf("prune by age: %d %v, want 4", n, err)
	}
	// Then by count: keep the newest 2.
	n, err = s.PruneSecurityEvents(ctx, testT0, 2)
	if err != nil || n != 5 {
		t.Fatalf("prune by count: %d %v, want 5", n, err)
	}
	all, _ = s.SecurityEvents(ctx, EventQuery{Limit: 100})
	if len(all) != 2 || all[0].Fields != `{"n":9}` || all[1].Fields != `{"n":8}` {
		t.Fatalf("after pruning: %+v", all)
	}
}

func TestAnnouncements(t *testing.T) { forEachBackend(t, testAnnouncements) }

func testAnnouncements(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := &Announcement{Severity: SeverityOutage, Message: "Down <b>tonight</b>", Start: testT0, End: testT0.Add(time.Hour), CreatedBy: "CN=X"}
	if err := s.CreateAnnouncement(ctx, a, testT0); err != nil || a.ID == 0 {
		t.Fatalf("create: %v %+v", err, a)
	}
	for _, bad := range []Announcement{
		{Severity: "panic", Message: "x", Start: testT0, End: testT0.Add(time.Hour)},
		{Severity: SeverityInfo, Message: "", Start: testT0, End: testT0.Add(time.Hour)},
		{Severity: SeverityInfo, Message: "x", Start: testT0, End: testT0},
	} {
		if err := s.CreateAnnouncement(ctx, &bad, testT0); !errors.Is(err, ErrInvalidAnnouncement) {
			t.Errorf("create %+v: %v, want ErrInvalidAnnouncement", bad, err)
		}
	}
	list, err := s.OpenAnnouncements(ctx, testT0.Add(30*time.Minute))
	if err != nil || len(list) != 1 || list[0].Message != a.Message || list[0].CreatedBy != "CN=X" {
		t.Fatalf("open: %v %+v", err, list)
	}
	if list, _ := s.OpenAnnouncements(ctx, testT0.Add(time.Hour)); len(list) != 0 {
		t.Errorf("an ended announcement is still open: %+v", list)
	}
	// At most MaxAnnouncements open at once.
	for i := 1; i < MaxAnnouncements; i++ {
		if err := s.CreateAnnouncement(ctx, &Announcement{Severity: SeverityInfo, Message: "n", Start: testT0, End: testT0.Add(time.Hour)}, testT0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAnnouncement(ctx, &Announcement{Severity: SeverityInfo, Message: "one too many", Start: testT0, End: testT0.Add(time.Hour)}, testT0); !errors.Is(err, ErrTooManyAnnouncements) {
		t.Errorf("one too many: %v", err)
	}
	got, err := s.DeleteAnnouncement(ctx, a.ID)
	if err != nil || got.Message != a.Message {
		t.Fatalf("delete: %v %+v", err, got)
	}
	if _, err := s.DeleteAnnouncement(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
	if n, err := s.PruneAnnouncements(ctx, testT0.Add(2*time.Hour)); err != nil || n != MaxAnnouncements-1 {
		t.Errorf("prune: %d %v", n, err)
	}
}

func TestRequirePasswordReset(t *testing.T) { forEachBackend(t, testRequirePasswordReset) }

// A required reset is shown on the account and cleared by a new password.
func testRequirePasswordReset(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	if err := s.CreateAccount(ctx, &Account{Username: "john.q.doe", EDIPI: "1234567890", Status: StatusActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequirePasswordReset(ctx, "john.q.doe", testT0); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("without a password: %v, want ErrNoPassword", err)
	}
	if _, err := s.RequirePasswordReset(ctx, "nobody", testT0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no account: %v, want ErrNotFound", err)
	}
	acct, _ := s.AccountByUsername(ctx, "john.q.doe")
	if err := s.SetPassword(ctx, acct.ID, "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", 5); err != nil {
		t.Fatal(err)
	}
	acct, err := s.RequirePasswordReset(ctx, "john.q.doe", testT0)
	if err != nil || !acct.PasswordResetRequiredAt.Equal(testT0.Truncate(time.Second)) {
		t.Fatalf("require: %v %v", err, acct.PasswordResetRequiredAt)
	}
	if err := s.SetPassword(ctx, acct.ID, "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaDI", 5); err != nil {
		t.Fatal(err)
	}
	if acct, _ := s.AccountByUsername(ctx, "john.q.doe"); !acct.PasswordResetRequiredAt.IsZero() {
		t.Errorf("a new password did not clear the requirement: %v", acct.PasswordResetRequiredAt)
	}
	lf, err := s.LoginFailuresOf(ctx, "john.q.doe")
	if err != nil || lf.Failed != 0 || !lf.LockedUntil.IsZero() {
		t.Errorf("login failures: %+v %v", lf, err)
	}
}
