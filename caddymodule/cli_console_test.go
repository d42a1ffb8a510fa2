package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/admin"
)

// announcementsCLI runs `caddy cacgate announcements <args>` in-process.
func announcementsCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := announcementsCommand()
	cmd.SilenceUsage = true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// The CLI's console operations on the database: a disable with a reason
// lands in the audit log and in the security-event history, which
// `accounts events` reads back; announcements are added, listed, removed.
func TestCLIConsoleCommands(t *testing.T) {
	dir := t.TempDir()
	db, auditPath := filepath.Join(dir, "cacgate.db"), filepath.Join(dir, "audit.log")
	cfg := []string{"--config", cliSite(t, dir, db, auditPath)}
	run := func(args ...string) string { t.Helper(); return mustCLI(t, append(args, cfg...)...) }
	run("create", "--edipi", "1234567891", "--username", "jane.smith", "--create-db")
	if out := run("disable", "jane.smith", "--reason", "ticket 7"); !strings.Contains(out, "Disabled jane.smith") {
		t.Fatalf("disable: %s", out)
	}
	if e := lastAudit(t, auditPath, admin.EventAccountDisabled); e["comment"] != "ticket 7" {
		t.Errorf("disable audit: %v", e)
	}
	var events []admin.Event
	if err := json.Unmarshal([]byte(run("events", "jane.smith", "--json")), &events); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Event != admin.EventAccountDisabled || events[0].Fields["comment"] != "ticket 7" ||
		!strings.HasPrefix(events[0].Fields["admin"].(string), "cli:") {
		t.Fatalf("events: %+v", events)
	}
	if out := run("events", "jane.smith"); !strings.Contains(out, "admin.account.created") {
		t.Errorf("events table:\n%s", out)
	}
	if _, _, err := cli(t, "", append([]string{"require-password-reset", "jane.smith"}, cfg...)...); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("require-password-reset without a password: %v", err)
	}

	out, err := announcementsCLI(t, append([]string{"add", "Reports down <today>", "--severity", "outage", "--for", "2h"}, cfg...)...)
	if err != nil || !strings.Contains(out, "Announcement 1 (outage)") {
		t.Fatalf("add: %v %s", err, out)
	}
	if _, err := announcementsCLI(t, append([]string{"add", "no end"}, cfg...)...); err == nil {
		t.Error("an announcement without an end was accepted")
	}
	out, err = announcementsCLI(t, append([]string{"list"}, cfg...)...)
	if err != nil || !strings.Contains(out, "Reports down <today>") || !strings.Contains(out, "yes") {
		t.Fatalf("list: %v %s", err, out)
	}
	if e := lastAudit(t, auditPath, admin.EventAnnouncementCreated); e["severity"] != "outage" {
		t.Errorf("create audit: %v", e)
	}
	if _, err := announcementsCLI(t, append([]string{"rm", "1"}, cfg...)...); err != nil {
		t.Fatal(err)
	}
	if out, _ := announcementsCLI(t, append([]string{"list", "--json"}, cfg...)...); strings.TrimSpace(out) != "[]" {
		t.Errorf("after rm: %s", out)
	}
}
