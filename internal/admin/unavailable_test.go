package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/storefault"
)

// faultFixture is the fixture's service over a store that fails on demand.
func faultFixture(t *testing.T) (*fixture, *storefault.Store) {
	t.Helper()
	f := newFixture(t)
	fault := storefault.New(f.store)
	f.svc.Store = fault
	return f, fault
}

// wantUnavailable checks an operation's error for an account database
// that could not serve it: 503, the cause named in the message (never the
// driver's text), and the cause carried for the answer.
func wantUnavailable(t *testing.T, err error, cause string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Cause != cause || ReasonOf(err) != "unavailable" {
		t.Fatalf("error %v (%+v), want 503 %s", err, e, cause)
	}
	msg := err.Error()
	if !strings.Contains(msg, store.Explain(cause)) || !strings.Contains(msg, "("+cause+")") || !strings.Contains(msg, "not carried out") {
		t.Errorf("message %q does not name %s", msg, cause)
	}
	for _, internal := range []string{"SQLITE", "sql:", "store:"} {
		if strings.Contains(msg, internal) {
			t.Errorf("message %q shows the driver's error", msg)
		}
	}
}

// TestDisableOnFullDisk: the case. Disabling an account on a full
// disk fails; the administrator is told the disk is full and that nothing
// was done, the account is still active, and the failure is audited with
// the cause.
func TestDisableOnFullDisk(t *testing.T) {
	f, fault := faultFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe"}); err != nil {
		t.Fatal(err)
	}
	invalidated := f.invalidated
	fault.Fail(storefault.DiskFull(t), "SetStatus")
	_, err := f.svc.Disable(ctx, testWho, "john.q.doe")
	wantUnavailable(t, err, store.CauseDiskFull)
	if !strings.Contains(err.Error(), "disk is full") {
		t.Errorf("message %q", err)
	}
	if a, err := f.store.AccountByUsername(ctx, "john.q.doe"); err != nil || a.Status != store.StatusActive {
		t.Fatalf("account after the failed disable: %+v %v", a, err)
	}
	if f.invalidated != invalidated {
		t.Error("caches dropped for a change that was not made")
	}
	e := f.last(t, EventAccountDisabled)
	if e["outcome"] != audit.Failure || e["reason"] != "unavailable" || e["cause"] != store.CauseDiskFull || e["username"] != "john.q.doe" {
		t.Errorf("audit %v", e)
	}
}

// TestOperationsUnavailable: every operation names the database's failure,
// reads and writes alike, and the changes are audited with it.
func TestOperationsUnavailable(t *testing.T) {
	f, fault := faultFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fail  error
		cause string
	}{
		{storefault.DiskFull(t), store.CauseDiskFull},
		{storefault.ReadOnly(t), store.CauseReadOnly},
		{storefault.Closed(t), store.CauseUnreachable},
	} {
		fault.Fail(c.fail)
		ops := map[string]func() error{
			"show":   func() error { _, err := f.svc.Show(ctx, "john.q.doe"); return err },
			"search": func() error { _, err := f.svc.Search(ctx, AccountSearch{}); return err },
			"groups": func() error { _, err := f.svc.Groups(ctx); return err },
			"create": func() error {
				_, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith"})
				return err
			},
			"approve": func() error { _, err := f.svc.Approve(ctx, testWho, "john.q.doe"); return err },
			"enable":  func() error { _, err := f.svc.Enable(ctx, testWho, "john.q.doe"); return err },
			"unlock":  func() error { _, err := f.svc.Unlock(ctx, testWho, "john.q.doe"); return err },
			"add groups": func() error {
				_, err := f.svc.AddGroups(ctx, testWho, "john.q.doe", []string{"ops"})
				return err
			},
			"unlink": func() error { return f.svc.UnlinkCard(ctx, testWho, "john.q.doe", strings.Repeat("ab", 32)) },
			"import": func() error {
				_, err := f.svc.Import(ctx, testWho, strings.NewReader("username,edipi\njane.smith,1234567891\n"), "fail", "test.csv")
				return err
			},
			"export": func() error { _, err := f.svc.Export(ctx, testWho, &bytes.Buffer{}); return err },
		}
		for name, op := range ops {
			t.Run(c.cause+"/"+name, func(t *testing.T) { wantUnavailable(t, op(), c.cause) })
		}
		for _, event := range []string{EventAccountCreated, EventAccountApproved, EventAccountEnabled, EventAccountUnlocked,
			EventGroupsAdded, EventCardUnlinked, EventImport, EventExport} {
			if e := f.last(t, event); e["reason"] != "unavailable" || e["cause"] != c.cause {
				t.Errorf("%s audit %v", event, e)
			}
		}
	}
	fault.Heal()
	if _, err := f.svc.Show(ctx, "john.q.doe"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AccountByUsername(ctx, "jane.smith"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("jane.smith: %v", err)
	}
}

// TestChangeMadeThenUnreadable: a change that was made is reported as
// made even when the account cannot be read back afterwards (the database
// failing in between): never "not carried out" for what was.
func TestChangeMadeThenUnreadable(t *testing.T) {
	f, fault := faultFixture(t)
	ctx := context.Background()
	fault.Fail(storefault.Closed(t), "AccountByUsername")
	acct, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe", Groups: []string{"ops"}})
	if err != nil || acct.Username != "john.q.doe" || acct.Status != "active" || len(acct.Groups) != 1 {
		t.Fatalf("create: %+v %v", acct, err)
	}
	if e := f.last(t, EventAccountCreated); e["outcome"] != audit.Success {
		t.Errorf("audit %v", e)
	}
	fault.Heal()
	if _, err := f.store.AccountByUsername(ctx, "john.q.doe"); err != nil {
		t.Fatalf("the account was not created: %v", err)
	}
}
