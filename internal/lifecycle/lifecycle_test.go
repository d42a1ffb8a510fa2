package lifecycle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/lifecycle"
	"github.com/cacgate/cacgate/internal/mail"
	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) Sync() error                 { return nil }

// events returns the audit entries written, by event name.
func (s *syncBuf) events(t *testing.T) map[string][]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]map[string]any{}
	for _, line := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		out[m["event"].(string)] = append(out[m["event"].(string)], m)
	}
	return out
}

func auditTo(buf *syncBuf, node string) *audit.Log {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), buf, zap.InfoLevel)
	return audit.New(zap.New(core), node)
}

func person(i int) *store.Account {
	return &store.Account{Username: fmt.Sprintf("user%02d", i), EDIPI: fmt.Sprintf("10000000%02d", i), GivenName: "Given",
		FamilyName: "Family", Email: fmt.Sprintf("user%02d@example.mil", i), Affiliation: "USA", Status: store.StatusActive}
}

// TestInactivityOnceAcrossNodes: two nodes sweeping one PostgreSQL
// database at the same time warn each idle account once, then disable
// each once (one account.disabled audit entry, one queued e-mail), and a
// utility account sponsored by a disabled person goes with it.
func TestInactivityOnceAcrossNodes(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	open := func() *store.SQLStore {
		st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	nodes := []*store.SQLStore{open(), open()}
	const n = 25
	for i := range n {
		if err := nodes[0].CreateAccount(ctx, person(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nodes[0].CreateUtilityAccount(ctx, store.UtilityAccount{Username: "svc.logistics", Name: "Logistics feed",
		Sponsor: "user00", ExpiresAt: time.Now().Add(365 * 24 * time.Hour), Email: "team@example.mil"}); err != nil {
		t.Fatal(err)
	}
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	sweep := func(at time.Time) {
		var wg sync.WaitGroup
		for i, st := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sw := &lifecycle.Sweeper{Store: st, InactiveAfter: 35 * 24 * time.Hour, WarnBefore: 7 * 24 * time.Hour,
					Notifier: &mail.Notifier{Outbox: st, Templates: tpl, Site: "gate"}, Audit: auditTo(&buf, fmt.Sprint("node", i)),
					Now: func() time.Time { return at }}
				for range 3 {
					if _, err := sw.Once(ctx); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	now := time.Now()
	sweep(now.Add(30 * 24 * time.Hour)) // within the warning period
	ev := buf.events(t)
	if got := len(ev["account.inactivity_warning"]); got != n {
		t.Fatalf("%d warnings, want %d (one per account)", got, n)
	}
	if got := len(ev["account.disabled"]); got != 0 {
		t.Fatalf("%d disabled during the warning period", got)
	}
	sweep(now.Add(40 * 24 * time.Hour))
	ev = buf.events(t)
	seen := map[string]int{}
	for _, e := range ev["account.disabled"] {
		seen[e["username"].(string)+"/"+e["reason"].(string)]++
	}
	// The utility account is disabled with its sponsor, in the sponsor's
	// transaction, and audited once.
	if len(ev["account.disabled"]) != n+1 || len(seen) != n+1 || seen["svc.logistics/sponsor"] != 1 {
		t.Errorf("disabled: %v", seen)
	}
	for i := range n {
		if seen[fmt.Sprintf("user%02d/inactive", i)] != 1 {
			t.Errorf("user%02d disabled %d times", i, seen[fmt.Sprintf("user%02d/inactive", i)])
		}
	}
	for i := range n {
		a, err := nodes[1].AccountByUsername(ctx, fmt.Sprintf("user%02d", i))
		if err != nil || a.Status != store.StatusDisabled || a.DisabledReason != store.DisabledInactive {
			t.Fatalf("user%02d: %+v, %v", i, a, err)
		}
	}
	svc, _ := nodes[1].AccountByUsername(ctx, "svc.logistics")
	if svc.Status != store.StatusDisabled || svc.Type != store.TypeUtility || svc.EDIPI != "" {
		t.Errorf("utility account with a disabled sponsor: %+v", svc)
	}
	stats, _ := nodes[0].MailOutboxStats(ctx)
	// n warnings + n disablings (+1 for the utility account's team if
	// the sponsor step disabled it)
	if stats.Queued < 2*n || stats.Queued > 2*n+1 {
		t.Errorf("%d mails queued, want %d warnings and %d disablings, once each", stats.Queued, n, n)
	}

	// Re-enabled by an administrator: not disabled again by the next
	// sweep, which counts from the re-enabling.
	if _, err := nodes[0].SetStatus(ctx, "user03", store.StatusActive); err != nil {
		t.Fatal(err)
	}
	sweep(time.Now().Add(10 * 24 * time.Hour))
	if a, _ := nodes[0].AccountByUsername(ctx, "user03"); a.Status != store.StatusActive || a.DisabledReason != "" {
		t.Errorf("re-enabled account after a sweep: %s %q", a.Status, a.DisabledReason)
	}
}

// TestUtilityExpiryAndSponsor (SQLite): a utility account is disabled at
// its expiry, and at once when its sponsor is disabled.
func TestUtilityExpiryAndSponsor(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 2 {
		if err := st.CreateAccount(ctx, person(i)); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(48 * time.Hour)
	for _, u := range []store.UtilityAccount{
		{Username: "svc.a", Name: "A", Sponsor: "user00", ExpiresAt: exp},
		{Username: "svc.b", Name: "B", Sponsor: "user01", ExpiresAt: exp.Add(24 * time.Hour)},
	} {
		if _, err := st.CreateUtilityAccount(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateUtilityAccount(ctx, store.UtilityAccount{Username: "svc.c", Name: "C", Sponsor: "svc.a", ExpiresAt: exp}); err == nil {
		t.Error("a utility account sponsored another")
	}
	if _, err := st.SetStatus(ctx, "user01", store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if b, _ := st.AccountByUsername(ctx, "svc.b"); b.Status != store.StatusDisabled || b.DisabledReason != store.DisabledSponsor {
		t.Errorf("svc.b with a disabled sponsor: %s %q", b.Status, b.DisabledReason)
	}
	var buf syncBuf
	sw := &lifecycle.Sweeper{Store: st, Audit: auditTo(&buf, "n"), Now: func() time.Time { return exp.Add(time.Minute) }}
	if _, err := sw.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := st.AccountByUsername(ctx, "svc.a"); a.Status != store.StatusDisabled || a.DisabledReason != store.DisabledExpired {
		t.Errorf("svc.a past its expiry: %s %q", a.Status, a.DisabledReason)
	}
	if got := buf.events(t)["account.disabled"]; len(got) != 1 || got[0]["reason"] != "expired" {
		t.Errorf("audit: %v", got)
	}
	if p, _ := st.AccountByUsername(ctx, "user00"); p.Status != store.StatusActive {
		t.Error("inactivity off, yet a person was disabled")
	}

	// Renewed with a new expiry and enabled: the next sweep leaves it.
	later := exp.Add(90 * 24 * time.Hour)
	if _, err := st.RenewUtilityAccount(ctx, "svc.a", "", later); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RenewUtilityAccount(ctx, "svc.b", "user01", later); err == nil {
		t.Error("renewed with a disabled sponsor")
	}
	if _, err := st.RenewUtilityAccount(ctx, "user00", "", later); err == nil {
		t.Error("renewed a person's account as a utility account")
	}
	if _, err := st.SetStatus(ctx, "svc.a", store.StatusActive); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := st.AccountByUsername(ctx, "svc.a"); a.Status != store.StatusActive || !a.ExpiresAt.Equal(later.Truncate(time.Second)) {
		t.Errorf("renewed svc.a after a sweep: %s, expires %v", a.Status, a.ExpiresAt)
	}
}
