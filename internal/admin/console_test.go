package admin

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/history"
)

var consoleWho = Actor{Identity: "CN=DOE.JOHN.QUINCY.1234567890,OU=USA,OU=PKI,OU=DoD,O=U.S. Government,C=US", Source: "192.0.2.4",
	CertSHA256: strings.Repeat("ab", 32), Username: "john.q.doe", Via: "console"}

func TestDisableEnableWithReason(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DisableBecause(ctx, consoleWho, "jane.smith", "ticket 1: lost card"); err != nil {
		t.Fatal(err)
	}
	e := f.last(t, EventAccountDisabled)
	if e["comment"] != "ticket 1: lost card" || e["admin_username"] != "john.q.doe" || e["admin_via"] != "console" || e["admin_cert_sha256"] != consoleWho.CertSHA256 {
		t.Errorf("disable audit: %v", e)
	}
	// A reason with a control character is refused, audited, and changes nothing.
	if _, err := f.svc.EnableBecause(ctx, consoleWho, "jane.smith", "line\nbreak"); status(err) != 400 {
		t.Fatalf("bad reason: %v", err)
	}
	if e := f.last(t, EventAccountEnabled); e["outcome"] != "failure" || e["reason"] != "invalid_request" {
		t.Errorf("refused enable audit: %v", e)
	}
	if _, err := f.svc.EnableBecause(ctx, consoleWho, "jane.smith", strings.Repeat("x", MaxReason+1)); status(err) != 400 {
		t.Fatalf("long reason: %v", err)
	}
	acct, err := f.svc.EnableBecause(ctx, consoleWho, "jane.smith", "")
	if err != nil || acct.Status != "active" {
		t.Fatalf("enable: %v %s", err, acct.Status)
	}
	if _, ok := f.last(t, EventAccountEnabled)["comment"]; ok {
		t.Error("an empty reason was recorded")
	}
}

func TestRequirePasswordResetService(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RequirePasswordReset(ctx, consoleWho, "jane.smith"); status(err) != 409 {
		t.Fatalf("without a password: %v, want 409", err)
	}
	sa, _ := f.store.AccountByUsername(ctx, acct.Username)
	if err := f.store.SetPassword(ctx, sa.ID, "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", 5); err != nil {
		t.Fatal(err)
	}
	before := f.invalidated
	got, err := f.svc.RequirePasswordReset(ctx, consoleWho, "jane.smith")
	if err != nil || got.PasswordResetRequired == nil {
		t.Fatalf("require: %v %+v", err, got)
	}
	if f.invalidated != before+1 {
		t.Error("the cache was not invalidated")
	}
	if e := f.last(t, EventPasswordResetRequired); e["outcome"] != "success" || e["username"] != "jane.smith" {
		t.Errorf("audit: %v", e)
	}
}

func TestAnnouncementsService(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	changed := 0
	f.svc.AnnouncementsChanged = func() { changed++ }
	now := time.Now()
	for _, bad := range []NewAnnouncementRequest{
		{Severity: "warning", Message: "x", End: now.Add(time.Hour)},
		{Severity: "info", Message: "  ", End: now.Add(time.Hour)},
		{Severity: "info", Message: "x"},
		{Severity: "info", Message: "x", End: now.Add(-time.Minute)},
		{Severity: "info", Message: "x", End: now.Add(400 * 24 * time.Hour)},
		{Severity: "info", Message: "bell\a", End: now.Add(time.Hour)},
	} {
		if _, err := f.svc.CreateAnnouncement(ctx, consoleWho, bad); status(err) != 400 {
			t.Errorf("create %+v: %v, want 400", bad, err)
		}
	}
	a, err := f.svc.CreateAnnouncement(ctx, consoleWho, NewAnnouncementRequest{Severity: "outage", Message: "Down\nat noon", End: now.Add(time.Hour)})
	if err != nil || !a.Current || a.CreatedBy != consoleWho.Identity {
		t.Fatalf("create: %v %+v", err, a)
	}
	if changed != 1 {
		t.Errorf("AnnouncementsChanged called %d times", changed)
	}
	if e := f.last(t, EventAnnouncementCreated); e["severity"] != "outage" || e["admin_via"] != "console" {
		t.Errorf("audit: %v", e)
	}
	list, err := f.svc.Announcements(ctx)
	if err != nil || len(list) != 1 || list[0].Message != "Down\nat noon" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := f.svc.DeleteAnnouncement(ctx, consoleWho, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteAnnouncement(ctx, consoleWho, a.ID); status(err) != 404 {
		t.Errorf("delete again: %v", err)
	}
	if e := f.last(t, EventAnnouncementDeleted); e["outcome"] != "failure" || e["reason"] != "not_found" {
		t.Errorf("refused delete audit: %v", e)
	}
}

// The account's events come from the history the audit log feeds.
func TestEventsService(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := history.New(history.Config{Store: f.store})
	f.svc.Audit.Tap = rec.Tap
	go rec.Run(ctx)
	if _, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DisableBecause(ctx, consoleWho, "jane.smith", "why"); err != nil {
		t.Fatal(err)
	}
	// Before the account: a card refused, by DoD ID.
	f.svc.Audit.Write("certificate.refused", "failure", zap.String("edipi", "1234567891"))
	flush, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if err := rec.Flush(flush); err != nil {
		t.Fatal(err)
	}
	events, err := f.svc.Events(ctx, "jane.smith", 0)
	if err != nil || len(events) != 3 {
		t.Fatalf("events: %v %+v", err, events)
	}
	if events[0].Event != "certificate.refused" || events[1].Event != EventAccountDisabled || events[1].Fields["comment"] != "why" {
		t.Errorf("events newest first: %+v", events)
	}
	if _, err := f.svc.Events(ctx, "nobody", 0); status(err) != 404 {
		t.Errorf("events of no account: %v", err)
	}
	o, err := f.svc.Overview(ctx)
	if err != nil || o.Accounts != 1 || o.Disabled != 1 {
		t.Errorf("overview: %v %+v", err, o)
	}
}
