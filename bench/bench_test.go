package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/pgtest"
)

// TestMain lets the test binary be the echo backend, as the bench program
// is: the run starts its own executable with backendEnv set.
func TestMain(m *testing.M) {
	if os.Getenv(backendEnv) == "1" {
		if err := runBackend(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole tool at toy size (a few cards, one round of
// sub-second cells, a 50-account scale store) and checks that it produces
// sane output: every scenario measured in each of its modes with only
// correct answers, CPU and memory read, the tables and the JSON written.
// It asserts nothing about timing. (The flood's cell measures until one
// of its posts is answered, however long a loaded machine makes that.)
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	opts, err := parseFlags([]string{
		"-cards", "6,12", "-scale", "50", "-rounds", "1", "-warm", "150ms", "-measure", "1s",
		"-c", "4", "-cn", "2", "-flood", "2", "-accept-parallel", "4", "-lookups", "50",
		"-warm-extra", "20s", "-out", t.TempDir(), "-pprof", "c",
	})
	if err != nil {
		t.Fatal(err)
	}
	// A hang detector, not a budget: it covers a cold build of the
	// gateway (minutes on a loaded machine) as well as the run.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	md, err := run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**keep-alive**", "**new-conn**", "**resumed**", "| Scenario | req/s |", "**Targets**", "| A/A (b2 vs b) |", "**Account stores**", "(d-miss@50)", "(c-flood)", "(d-12) req/s vs (b-12)", "cache miss: (d-miss) server CPU/req over (d-6)'s"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	b, err := os.ReadFile(filepath.Join(opts.out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	wantCells := map[string]bool{}
	for _, id := range []string{"a", "b", "b2", "b-6", "b-12", "b-hdr-12", "b-hdr", "b-hdr-all", "c", "c-all", "c-user", "c-flood", "d-6", "d-12", "d-miss", "c@50", "d-miss@50"} {
		wantCells[id+"|keep-alive"] = true
	}
	for _, id := range []string{"a", "b", "b2", "b-rsa", "c", "c-rsa", "d-12"} {
		wantCells[id+"|new-conn"] = true
	}
	for _, id := range []string{"b", "c"} {
		wantCells[id+"|resumed"] = true
	}
	for _, c := range rep.Cells {
		key := c.Scenario + "|" + string(c.Mode)
		if !wantCells[key] {
			t.Errorf("unexpected cell %s", key)
			continue
		}
		delete(wantCells, key)
		if !c.valid() {
			t.Errorf("%s: %d answered, %d bad, %d errors: %s", key, c.Requests, c.Bad, c.Errors, c.Problem)
		}
		if c.RPS <= 0 || c.P50 <= 0 || c.P99 < c.P50 || c.ServerRSS <= 0 {
			t.Errorf("%s: implausible figures: %+v", key, c)
		}
		if c.Scenario == "c-flood" && c.FloodPosts == 0 {
			t.Errorf("%s: the flood posted nothing", key)
		}
		if c.Scenario == "c-flood" && c.FloodBad > 0 {
			// A replayed state or a limit would answer 409 or 429
			// without hashing: the flood would not be one.
			t.Errorf("%s: %d flood posts refused", key, c.FloodBad)
		}
		if strings.HasPrefix(c.Scenario, "d-miss") && c.CacheMisses == 0 {
			t.Errorf("%s: no cache misses beyond capacity", key)
		}
		if c.Scenario == "c" && c.Mode == modeKeepAlive && c.Profile == "" {
			t.Errorf("%s: no CPU profile taken", key)
		}
	}
	for key := range wantCells {
		t.Errorf("cell %s missing", key)
	}
	for _, n := range []int{12, 50} {
		if rep.Seeds[n].Accounts != n || rep.Lookups[n].P99 <= 0 {
			t.Errorf("store of %d: seeded %+v, lookups %+v", n, rep.Seeds[n], rep.Lookups[n])
		}
	}
	if len(rep.Targets) == 0 || rep.Machine.Cores == 0 || rep.Machine.Caddy == "" {
		t.Errorf("targets or machine missing: %+v %+v", rep.Targets, rep.Machine)
	}
	for _, tr := range rep.Targets {
		if !tr.Absent && strings.Contains(tr.Name, " vs ") && (len(tr.PerRound) != 1 || tr.AA == "") {
			t.Errorf("target %q: per-round values %v, A/A %q", tr.Name, tr.PerRound, tr.AA)
		}
	}
}

// TestSoak runs the soak for a few seconds at toy scale, on one node and
// (when PostgreSQL is installed; under CI it must be) on two, and checks
// that every kind of traffic ran and got the answers it expects: the only
// unexpected answers allowed are those to requests in flight during a
// config reload (Caddy resets the connections queued on the old
// configuration's socket, and bare Caddy does the same; see README,
// Soak), which are logged. It also checks that every node refused the
// card the CRL refresh revoked, that the samples were taken and the
// report written. It asserts nothing about timing.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway binary")
	}
	// A hang detector, not a budget (a cold build and two soaks).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	build := &runner{workDir: t.TempDir()}
	if err := build.buildCaddy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, nodes := range []int{1, 2} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			opts, err := parseFlags([]string{
				"-caddy", build.caddy, "-soak", "12s", "-soak-nodes", fmt.Sprint(nodes), "-soak-interval", "3s",
				"-soak-cards", "12", "-soak-rate", "60", "-soak-workers", "4", "-soak-signout", "1",
				"-soak-enroll", "500ms", "-soak-password", "500ms", "-soak-reload", "4s", "-accept-parallel", "4",
				"-out", t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			opts.soakPause, opts.soakCRLRefresh = 100*time.Millisecond, time.Second
			md, err := runSoak(ctx, opts)
			if nodes > 1 && errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv("CI") == "" {
				t.Skipf("PostgreSQL not installed: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(opts.out, "soak.json"))
			if err != nil {
				t.Fatal(err)
			}
			var rep soakReport
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 1 || rep.Results[0].Nodes != nodes {
				t.Fatalf("results: %+v", rep.Results)
			}
			res := rep.Results[0]
			var inReload int64
			for cause, n := range res.Causes {
				if strings.Contains(cause, duringReload) {
					inReload += n
					t.Logf("%d unexpected: %s", n, cause)
				} else {
					t.Errorf("%d unexpected: %s", n, cause)
				}
			}
			if res.Unexpected != inReload {
				t.Errorf("%d unexpected answers, %d of them during reloads:\n%s", res.Unexpected, inReload, md)
			}
			for _, k := range res.Kinds {
				if k.Requests == 0 {
					t.Errorf("no %s traffic", k.Kind)
				}
				if (k.Kind == kindSignout || k.Kind == kindPassword || k.Kind == kindRevoked) && k.Refused == 0 {
					t.Errorf("%s traffic saw no expected refusal", k.Kind)
				}
			}
			if res.Enrolled == 0 || res.Signouts == 0 || res.PasswordSignins == 0 || res.Reloads < int64(nodes) {
				t.Errorf("enrolled %d, signed out %d, password sign-ins %d, reloads %d", res.Enrolled, res.Signouts, res.PasswordSignins, res.Reloads)
			}
			if len(res.CRLPickedUp) != nodes {
				t.Errorf("the revoked card was refused by %d of %d nodes: %v", len(res.CRLPickedUp), nodes, res.CRLPickedUp)
			}
			if nodes > 1 && (res.EnrollSeen.Count == 0 || res.SessionEnded.Count == 0) {
				t.Errorf("no cross-node check: enrollments %+v, sign-outs %+v", res.EnrollSeen, res.SessionEnded)
			}
			if len(res.Samples) < 2 {
				t.Fatalf("%d samples", len(res.Samples))
			}
			for _, sm := range res.Samples {
				if len(sm.Nodes) != nodes || sm.Requests == 0 {
					t.Errorf("sample at %s: %+v", sm.At, sm)
				}
				for _, ns := range sm.Nodes {
					if ns.RSS <= 0 {
						t.Errorf("sample at %s: no RSS for node %s", sm.At, ns.Node)
					}
				}
			}
			profiles, err := filepath.Glob(filepath.Join(opts.out, "heap", fmt.Sprintf("%dnode-a-*.pb.gz", nodes)))
			if err != nil || len(profiles) < len(res.Samples) {
				t.Errorf("%d heap profiles kept for %d samples (%v)", len(profiles), len(res.Samples), err)
			}
			for _, want := range []string{"| t | req/s | unexpected |", "| Traffic | requests |", "Verdict:"} {
				if !strings.Contains(md, want) {
					t.Errorf("report lacks %q:\n%s", want, md)
				}
			}
		})
	}
}

// TestLayout checks how cards are dealt to accounts: one each, while
// they last.
func TestLayout(t *testing.T) {
	for _, tc := range []struct{ accounts, cards, enrolled int }{{1000, 10000, 1000}, {10000, 10000, 10000}, {1000000, 10000, 10000}} {
		l := newLayout(tc.accounts, tc.cards)
		seen := 0
		for j := range tc.accounts {
			first, end := l.cardsOf(j)
			if end-first > 1 || (first < end && first != j) {
				t.Fatalf("account %d holds cards [%d, %d)", j, first, end)
			}
			seen += end - first
		}
		if seen != tc.enrolled || l.enrolled() != tc.enrolled {
			t.Errorf("%d accounts, %d cards: %d enrolled (%d), want %d", tc.accounts, tc.cards, seen, l.enrolled(), tc.enrolled)
		}
	}
}

// TestHist checks the latency histogram's percentiles against exact ones.
func TestHist(t *testing.T) {
	var h hist
	for i := 1; i <= 100000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.99} {
		want := time.Duration(q*100000) * time.Microsecond
		got := h.quantile(q)
		if d := float64(got-want) / float64(want); d < -0.02 || d > 0.02 {
			t.Errorf("q%.2f = %s, want %s ± 2%%", q, got, want)
		}
	}
	if h.max != 100*time.Millisecond || h.n != 100000 {
		t.Errorf("max %s, n %d", h.max, h.n)
	}
}

// TestParseMetrics checks the Prometheus text parsing and the histogram
// quantile between two scrapes.
func TestParseMetrics(t *testing.T) {
	const before = `# HELP x
cacgate_card_cache_lookups_total{result="hit"} 10
cacgate_store_operation_duration_seconds_bucket{operation="account_by_fingerprint",result="ok",le="0.0001"} 0
cacgate_store_operation_duration_seconds_bucket{operation="account_by_fingerprint",result="ok",le="0.001"} 0
cacgate_store_operation_duration_seconds_bucket{operation="account_by_fingerprint",result="ok",le="+Inf"} 0
`
	const after = `cacgate_card_cache_lookups_total{result="hit"} 25
cacgate_store_operation_duration_seconds_bucket{operation="account_by_fingerprint",result="ok",le="0.0001"} 60
cacgate_store_operation_duration_seconds_bucket{operation="account_by_fingerprint",result="ok",le="0.001"} 99
cacgate_store_operation_duration_seconds_bucket{operation="account_by_fingerprint",result="ok",le="+Inf"} 100
`
	b, err := parseMetrics(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseMetrics(strings.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	hit := map[string]string{"result": "hit"}
	if d := sum(a, "cacgate_card_cache_lookups_total", hit) - sum(b, "cacgate_card_cache_lookups_total", hit); d != 15 {
		t.Errorf("hits %v, want 15", d)
	}
	lookup := map[string]string{"operation": "account_by_fingerprint"}
	b0, b1 := bucketCounts(b, "cacgate_store_operation_duration_seconds", lookup), bucketCounts(a, "cacgate_store_operation_duration_seconds", lookup)
	if q := histQuantile(b0, b1, 0.5); q != 0.0001 {
		t.Errorf("p50 bound %v, want 0.0001", q)
	}
	if q := histQuantile(b0, b1, 0.99); q != 0.001 {
		t.Errorf("p99 bound %v, want 0.001", q)
	}
}

// TestProcReaders checks the /proc readers on this process.
func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if _, err := cpuTime(pid); err != nil {
		t.Fatal(err)
	}
	rss, hwm, err := memory(pid)
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("rss %d, hwm %d, %v", rss, hwm, err)
	}
}
