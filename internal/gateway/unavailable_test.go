package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/storefault"
)

// faultHarness is the core over a store that fails on demand, with its
// audit log observed and collapsing repeats as the gateway's does.
type faultHarness struct {
	*harness
	fault  *storefault.Store
	audits *observer.ObservedLogs
	logs   *observer.ObservedLogs
	stop   context.CancelFunc // ends the collapse window, writing the counts
}

func newFaultHarness(t *testing.T) *faultHarness {
	t.Helper()
	auditCore, audits := observer.New(zapcore.InfoLevel)
	log := audit.New(zap.New(auditCore), "node-a")
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	log.CollapseRepeats(ctx, time.Hour)
	logCore, logs := observer.New(zapcore.InfoLevel)
	var fault *storefault.Store
	h := newHarnessWith(t, SiteConfig{ConsentTTL: time.Hour, Logger: zap.New(logCore)}, func(c *Config, _ *SiteConfig) {
		fault = storefault.New(c.Store.(*store.SQLStore))
		c.Store, c.Audit, c.Logger = fault, log, zap.New(logCore)
	})
	return &faultHarness{harness: h, fault: fault, audits: audits, logs: logs, stop: stop}
}

func (h *faultHarness) denied() []map[string]any {
	var out []map[string]any
	for _, e := range h.audits.FilterMessage("access.denied").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

// TestStoreUnavailableRefusalAudited: while the account database cannot
// answer, every request of a card it has not cached is refused with 503
// and Retry-After; each refusal is audited as access.denied, reason
// account_service_unavailable with the cause, once per card, client
// address and window in full and then as a count, so an outage (a
// thousand retries) cannot flood the trail; the log names the cause too.
func TestStoreUnavailableRefusalAudited(t *testing.T) {
	h := newFaultHarness(t)
	h.enrollDoe(t)
	h.fault.Fail(storefault.DiskFull(t))
	doe, smith := testCard(t, "doe.john.quincy"), testCard(t, "smith.jane")
	const retries = 50
	for i := range retries {
		for _, c := range []struct {
			card string
			ip   string
		}{{"doe", "192.0.2.1:1000"}, {"smith", "192.0.2.2:1000"}} {
			card := doe
			if c.card == "smith" {
				card = smith
			}
			r := h.request(t, card, true)
			r.RemoteAddr = c.ip
			d := h.site.Admit(r, time.Now())
			if d.Outcome != StoreUnavailable {
				t.Fatalf("request %d of %s: outcome %v", i+1, c.card, d.Outcome)
			}
			ref := h.site.Refuse(r, d)
			if ref.Problem.Status != http.StatusServiceUnavailable || ref.Problem.Code != "account_service_unavailable" || ref.RetryAfter != "30" {
				t.Fatalf("refusal %+v", ref)
			}
		}
	}
	got := h.denied()
	if len(got) != 2 {
		t.Fatalf("%d access.denied entries for %d refusals, want one per card: %v", len(got), 2*retries, got)
	}
	for _, e := range got {
		if e["reason"] != "account_service_unavailable" || e["cause"] != store.CauseDiskFull || e["outcome"] != audit.Failure ||
			e["cert_sha256"] == nil || e["edipi"] == nil || e["source_ip"] == nil {
			t.Errorf("entry %v", e)
		}
	}
	if n := h.logs.FilterField(zap.String("cause", store.CauseDiskFull)).Len(); n == 0 {
		t.Error("the log does not name the cause")
	}
	// The window ends: one more entry per card counts the rest.
	h.stop()
	deadline := time.Now().Add(60 * time.Second)
	for len(h.denied()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got = h.denied()
	if len(got) != 4 {
		t.Fatalf("after the window: %d entries, want 4: %v", len(got), got)
	}
	for _, e := range got[2:] {
		if e["repeats"] != int64(retries-1) || e["cause"] != store.CauseDiskFull {
			t.Errorf("count entry %v, want %d repeats", e, retries-1)
		}
	}

	// Once the database answers again, the card is let in.
	h.fault.Heal()
	if d := h.site.Admit(h.request(t, doe, true), time.Now()); d.Outcome != Admitted {
		t.Fatalf("after the outage: %v %v", d.Outcome, d.Err)
	}
}

// TestStoreUnavailablePasswordUser: a password session whose account
// cannot be read is refused the same way, audited with its username.
func TestStoreUnavailablePasswordUser(t *testing.T) {
	h := newFaultHarness(t)
	h.enrollDoe(t)
	h.fault.Fail(storefault.Closed(t))
	r := h.request(t, testCard(t, "doe.john.quincy"), false)
	r.TLS = nil
	d, _ := h.site.AdmitUser(r, "john.q.doe", time.Now(), time.Now())
	if d.Outcome != StoreUnavailable {
		t.Fatalf("outcome %v", d.Outcome)
	}
	if ref := h.site.Refuse(r, d); ref.Problem.Status != http.StatusServiceUnavailable {
		t.Fatalf("refusal %+v", ref)
	}
	got := h.denied()
	if len(got) != 1 || got[0]["username"] != "john.q.doe" || got[0]["cause"] != store.CauseUnreachable || got[0]["auth_method"] != AuthPassword {
		t.Fatalf("entries %v", got)
	}
}

// TestStoreUnavailableClientGone: a request whose client went away is not
// answered 503 nor audited as refused: nobody was.
func TestStoreUnavailableClientGone(t *testing.T) {
	h := newFaultHarness(t)
	h.fault.Fail(storefault.Closed(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := h.request(t, testCard(t, "doe.john.quincy"), true).WithContext(ctx)
	d := h.site.Admit(r, time.Now())
	if ref := h.site.Refuse(r, d); ref.Problem.Status != 499 || len(h.denied()) != 0 {
		t.Fatalf("refusal %d, entries %v", ref.Problem.Status, h.denied())
	}
}
