package console

import (
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/store"
)

func TestRoles(t *testing.T) {
	c := &Console{cfg: Config{AdminGroup: "helpdesk", ReadGroup: "auditors"}}
	for groups, want := range map[string]role{"helpdesk": roleAdmin, "auditors": roleRead, "auditors,helpdesk": roleAdmin, "ops": roleNone, "": roleNone} {
		var g []string
		if groups != "" {
			g = strings.Split(groups, ",")
		}
		if got := c.roleOf(&store.Account{Groups: g}); got != want {
			t.Errorf("groups %q: role %d, want %d", groups, got, want)
		}
	}
	if c.roleOf(nil) != roleNone {
		t.Error("no account has a role")
	}
	if _, err := New(Config{Service: &admin.Service{}}); err == nil {
		t.Error("a console without groups was built")
	}
}

func TestDoneMessagesNeverReflect(t *testing.T) {
	if doneMessage("approved") == "" {
		t.Error("approved has no message")
	}
	if got := doneMessage("<script>alert(1)</script>"); got != "" {
		t.Errorf("an unknown code shows %q", got)
	}
}

func TestEventRows(t *testing.T) {
	rows := eventRows([]admin.Event{{
		Time: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC), Event: "admin.account.disabled", Outcome: "failure", SourceIP: "192.0.2.1", Node: "a",
		Fields: map[string]any{"event": "x", "time": "t", "comment": "why", "admin": "CN=X", "big": strings.Repeat("y", 2000)},
	}})
	if len(rows) != 1 {
		t.Fatal(len(rows))
	}
	r := rows[0]
	if r.Time != "2026-12-07 01:02:03 UTC" || !r.Failure || strings.Contains(r.Details, "event:") || !strings.HasPrefix(r.Details, "admin: CN=X; big: yyy") {
		t.Errorf("row: %+v", r)
	}
	if len(r.Details) > maxDetails+10 {
		t.Errorf("details not bounded: %d bytes", len(r.Details))
	}
}
