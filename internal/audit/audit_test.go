package audit

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func observed() (*Log, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return New(zap.New(core), "node-1"), logs
}

func TestTextIsBounded(t *testing.T) {
	long := strings.Repeat("CN=é", 1000)
	f := Text("cert_subject", long)
	if len(f.String) > MaxText+len("…[truncated]") || !strings.HasSuffix(f.String, "…[truncated]") {
		t.Fatalf("%d bytes: %q", len(f.String), f.String[len(f.String)-20:])
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(f.String, "…[truncated]")) {
		t.Error("not a prefix (cut inside a character?)")
	}
	if short := Text("k", "CN=DOE.JOHN"); short.String != "CN=DOE.JOHN" {
		t.Errorf("short text changed: %q", short.String)
	}
}

// TestRepeatsCollapse: a refusal repeated by one client within the window
// is written once in full and once more with the count; another client or
// another key is a series of its own; nothing is lost at shutdown.
func TestRepeatsCollapse(t *testing.T) {
	l, logs := observed()
	ctx, cancel := context.WithCancel(context.Background())
	l.CollapseRepeats(ctx, time.Hour)
	r := httptest.NewRequest("GET", "https://site/app", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for range 50 {
		l.RequestRepeatable(r, "untrusted\x00ab", "access.denied", Failure, zap.String("reason", "certificate_untrusted"))
	}
	other := httptest.NewRequest("GET", "https://site/app", nil)
	other.RemoteAddr = "192.0.2.2:1234"
	l.RequestRepeatable(other, "untrusted\x00ab", "access.denied", Failure, zap.String("reason", "certificate_untrusted"))
	l.RequestRepeatable(r, "untrusted\x00cd", "access.denied", Failure, zap.String("reason", "certificate_untrusted"))
	if n := logs.Len(); n != 3 {
		t.Fatalf("%d entries before the window ends, want 3 (one per series)", n)
	}
	first := logs.All()[0].ContextMap()
	if first["reason"] != "certificate_untrusted" || first["source_ip"] != "192.0.2.1:1234" || first["path"] != "/app" {
		t.Errorf("first entry not in full: %v", first)
	}
	cancel()
	deadline := time.Now().Add(time.Minute)
	for logs.Len() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	all := logs.All()
	if len(all) != 4 {
		t.Fatalf("%d entries after shutdown, want 4", len(all))
	}
	sum := all[3].ContextMap()
	if sum["repeats"] != int64(49) || sum["source_ip"] != "192.0.2.1:1234" || sum["reason"] != "certificate_untrusted" || sum["first_time"] == nil {
		t.Errorf("summary %v", sum)
	}
}

// TestRepeatsWrittenInFullWithoutCollapsing: a Log that does not collapse
// (the CLI's, tests') writes every refusal.
func TestRepeatsWrittenInFullWithoutCollapsing(t *testing.T) {
	l, logs := observed()
	r := httptest.NewRequest("GET", "https://site/app", nil)
	for range 3 {
		l.RequestRepeatable(r, "k", "access.denied", Failure)
	}
	if logs.Len() != 3 {
		t.Fatalf("%d entries", logs.Len())
	}
}
