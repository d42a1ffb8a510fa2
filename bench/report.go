package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ratio is a per-round paired ratio (this scenario over another, same mode,
// same round), summarized over the rounds.
type ratio struct {
	Against string  `json:"against"`
	Median  float64 `json:"median"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Rounds  int     `json:"rounds"`
}

// summary is a scenario in one mode over all rounds (medians).
type summary struct {
	Scenario  string        `json:"scenario"`
	Title     string        `json:"title"`
	Mode      mode          `json:"mode"`
	Rounds    int           `json:"rounds"`
	Invalid   int           `json:"invalid_rounds"`
	RPS       float64       `json:"rps"`
	RPSMin    float64       `json:"rps_min"`
	RPSMax    float64       `json:"rps_max"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	ServerCPU time.Duration `json:"server_cpu_per_req_ns"`
	ClientCPU time.Duration `json:"client_cpu_per_req_ns"`
	PeakRSS   int64         `json:"peak_rss_bytes"`
	RPSRatio  []ratio       `json:"rps_ratio"`
	CPURatio  []ratio       `json:"cpu_ratio"`
	MissRate  float64       `json:"cache_miss_rate"`
	LookupP50 float64       `json:"lookup_p50_le_s,omitempty"`
	LookupP99 float64       `json:"lookup_p99_le_s,omitempty"`
	FloodRPS  float64       `json:"flood_posts_per_s,omitempty"`
	Resumed   float64       `json:"resumed_share"`
	GCPer1k   float64       `json:"gc_cycles_per_1k_requests"`
	HeapInuse int64         `json:"heap_inuse_bytes"`
}

// targetResult is one of the targets, judged on the summaries, with what
// it takes to judge the verdict: the value in every round and the run's
// own noise (the A/A pair b2/b) beside it.
type targetResult struct {
	Name     string    `json:"name"`
	Value    float64   `json:"value"`
	Range    string    `json:"range,omitempty"`
	PerRound []float64 `json:"per_round,omitempty"`
	Limit    string    `json:"limit"`
	Pass     bool      `json:"pass"`
	AA       string    `json:"aa,omitempty"`
	Note     string    `json:"note,omitempty"`
	Absent   bool      `json:"absent,omitempty"`
}

type machineInfo struct {
	CPU        string    `json:"cpu"`
	Cores      int       `json:"cores"`
	MemoryMB   int64     `json:"memory_mb"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	Caddy      string    `json:"caddy"`
	LoadBefore string    `json:"loadavg_before"`
	LoadAfter  string    `json:"loadavg_after"`
	LoadDuring string    `json:"loadavg_1m_during,omitempty"`
	Started    time.Time `json:"started"`
	Took       string    `json:"took"`
}

type report struct {
	Machine   machineInfo           `json:"machine"`
	Options   map[string]any        `json:"options"`
	Seeds     map[int]seedReport    `json:"seeds"`
	Lookups   map[int]lookupLatency `json:"lookups"`
	Summaries []*summary            `json:"summaries"`
	Targets   []targetResult        `json:"targets"`
	Cells     []*cellResult         `json:"cells"`
}

func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize aggregates the cells of every scenario and mode.
func (r *runner) summarize() []*summary {
	cell := map[string]*cellResult{}
	key := func(id string, m mode, round int) string { return fmt.Sprintf("%s|%s|%d", id, m, round) }
	for _, c := range r.results {
		cell[key(c.Scenario, c.Mode, c.Round)] = c
	}
	var out []*summary
	for _, m := range r.opts.modes {
		for _, sc := range r.scenarios {
			if !sc.hasMode(m) {
				continue
			}
			s := &summary{Scenario: sc.id, Title: sc.title, Mode: m}
			var rps, miss, lp50, lp99, flood, resumed, gc []float64
			var p50, p99, cpu, ccpu []time.Duration
			for round := 1; round <= r.opts.rounds; round++ {
				c := cell[key(sc.id, m, round)]
				if c == nil {
					continue
				}
				s.Rounds++
				if !c.valid() {
					s.Invalid++
					continue
				}
				rps, resumed = append(rps, c.RPS), append(resumed, c.Resumed)
				p50, p99 = append(p50, c.P50), append(p99, c.P99)
				cpu, ccpu = append(cpu, c.ServerCPU), append(ccpu, c.ClientCPU)
				s.PeakRSS = max(s.PeakRSS, c.ServerRSS)
				s.HeapInuse = max(s.HeapInuse, c.HeapInuse)
				if c.GCPer1k > 0 {
					gc = append(gc, c.GCPer1k)
				}
				if t := c.CacheHits + c.CacheMisses; t > 0 {
					miss = append(miss, c.CacheMisses/t)
				}
				if c.LookupP99 > 0 {
					lp50, lp99 = append(lp50, c.LookupP50), append(lp99, c.LookupP99)
				}
				if sc.flood {
					flood = append(flood, c.FloodRPS)
				}
			}
			if len(rps) > 0 {
				s.RPS, s.RPSMin, s.RPSMax = median(rps), slices.Min(rps), slices.Max(rps)
			}
			s.P50, s.P99, s.ServerCPU, s.ClientCPU = median(p50), median(p99), median(cpu), median(ccpu)
			s.MissRate, s.LookupP50, s.LookupP99, s.FloodRPS = median(miss), median(lp50), median(lp99), median(flood)
			s.Resumed, s.GCPer1k = median(resumed), median(gc)
			for _, against := range sc.compare {
				var rr, cr []float64
				for round := 1; round <= r.opts.rounds; round++ {
					a, b := cell[key(sc.id, m, round)], cell[key(against, m, round)]
					if a == nil || b == nil || !a.valid() || !b.valid() || b.RPS == 0 || b.ServerCPU == 0 {
						continue
					}
					rr = append(rr, a.RPS/b.RPS)
					cr = append(cr, float64(a.ServerCPU)/float64(b.ServerCPU))
				}
				if len(rr) > 0 {
					s.RPSRatio = append(s.RPSRatio, ratio{against, median(rr), slices.Min(rr), slices.Max(rr), len(rr)})
					s.CPURatio = append(s.CPURatio, ratio{against, median(cr), slices.Min(cr), slices.Max(cr), len(cr)})
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// perRound is f of scenario id's cell and against's, round by round, for
// the rounds where both are valid.
func (r *runner) perRound(id, against string, m mode, f func(a, b *cellResult) float64) []float64 {
	cell := map[string]*cellResult{}
	for _, c := range r.results {
		if c.Mode == m {
			cell[fmt.Sprintf("%s|%d", c.Scenario, c.Round)] = c
		}
	}
	var out []float64
	for round := 1; round <= r.opts.rounds; round++ {
		a, b := cell[fmt.Sprintf("%s|%d", id, round)], cell[fmt.Sprintf("%s|%d", against, round)]
		if a != nil && b != nil && a.valid() && b.valid() && b.RPS > 0 && b.ServerCPU > 0 {
			out = append(out, f(a, b))
		}
	}
	return out
}

// measures reports whether the run has scenario id in mode m.
func (r *runner) measures(id string, m mode) bool {
	for _, sc := range r.scenarios {
		if sc.id == id {
			return sc.hasMode(m) && slices.Contains(r.opts.modes, m)
		}
	}
	return false
}

func rpsRatio(a, b *cellResult) float64 { return a.RPS / b.RPS }
func cpuRatio(a, b *cellResult) float64 { return float64(a.ServerCPU) / float64(b.ServerCPU) }

// cpuExtraMicros is how much more server CPU per request a takes than b, in µs.
func cpuExtraMicros(a, b *cellResult) float64 {
	return float64(a.ServerCPU-b.ServerCPU) / float64(time.Microsecond)
}

// judgeTargets checks the targets. Every ratio is taken round by round
// against its baseline measured in the same round; each row carries its
// per-round values and the A/A pair (b2 against b, same mode, same
// measure) beside it: a margin smaller than the A/A spread is not a
// result.
func (r *runner) judgeTargets(sums []*summary) []targetResult {
	var out []targetResult
	judge := func(name, id, against string, m mode, f func(a, b *cellResult) float64, atMost bool, limit float64, format string) {
		t := targetResult{Name: name}
		if atMost {
			t.Limit = "≤ " + fmt.Sprintf(format, limit)
		} else {
			t.Limit = "≥ " + fmt.Sprintf(format, limit)
		}
		if !r.measures(id, m) {
			return // not part of this run (-only, or -quick's fewer modes)
		}
		vals := r.perRound(id, against, m, f)
		if len(vals) == 0 {
			t.Absent = true
			out = append(out, t)
			return
		}
		t.Value, t.PerRound = median(vals), vals
		t.Range = fmt.Sprintf("%s–%s over %d rounds", fmt.Sprintf(format, slices.Min(vals)), fmt.Sprintf(format, slices.Max(vals)), len(vals))
		if atMost {
			t.Pass = t.Value <= limit
		} else {
			t.Pass = t.Value >= limit
		}
		if aa := r.perRound("b2", "b", m, f); len(aa) > 0 {
			t.AA = fmt.Sprintf("%s (%s–%s)", fmt.Sprintf(format, median(aa)), fmt.Sprintf(format, slices.Min(aa)), fmt.Sprintf(format, slices.Max(aa)))
			// The A/A pair's distance from "no difference" (1 for a
			// ratio, 0 for an extra) bounds what the run can tell apart.
			same := 1.0
			if format == microsFormat {
				same = 0
			}
			spread := max(math.Abs(slices.Min(aa)-same), math.Abs(slices.Max(aa)-same))
			if math.Abs(t.Value-limit) < spread {
				t.Note = "the margin is within the A/A spread"
			}
		}
		out = append(out, t)
	}
	ratio := func(name, id, against string, m mode, cpu bool, limit float64) {
		if cpu {
			judge(name, id, against, m, cpuRatio, true, limit, ratioFormat)
		} else {
			judge(name, id, against, m, rpsRatio, false, limit, ratioFormat)
		}
	}
	counts := r.opts.cardCounts
	for _, n := range counts {
		l := sizeLabel(n)
		ratio(fmt.Sprintf("(d-%s) req/s vs (b-%s): %d cards, bare Caddy with the same connections, keep-alive", l, l, n), "d-"+l, "b-"+l, modeKeepAlive, false, 0.90)
	}
	most := sizeLabel(counts[len(counts)-1])
	ratio(fmt.Sprintf("(d-%s) req/s vs (b-hdr-%s): the same connections, bare Caddy forwarding the same headers (informational: cacgate's own share)", most, most), "d-"+most, "b-hdr-"+most, modeKeepAlive, false, 0.90)
	ratio("(c) req/s vs (b-hdr): bare Caddy forwarding the same headers, keep-alive", "c", "b-hdr", modeKeepAlive, false, 0.95)
	ratio("(c-all) req/s vs (b-hdr-all): the same with the assertion, keep-alive", "c-all", "b-hdr-all", modeKeepAlive, false, 0.95)
	few := sizeLabel(counts[0])
	judge(fmt.Sprintf("cache miss: (d-miss) server CPU/req over (d-%s)'s, every request a miss against every card cached", few), "d-miss", "d-"+few, modeKeepAlive, cpuExtraMicros, true, 150, microsFormat)
	for _, m := range []mode{modeKeepAlive, modeNewConn} {
		ratio(fmt.Sprintf("(c) req/s vs (b), %s", m), "c", "b", m, false, 0.97)
		ratio(fmt.Sprintf("(c) server CPU/req vs (b), %s", m), "c", "b", m, true, 1.03)
	}
	ratio(fmt.Sprintf("(d-%s) req/s vs (b), new-conn", most), "d-"+most, "b", modeNewConn, false, 0.90)
	big := 0
	for _, n := range r.opts.scale {
		big = max(big, n)
	}
	if big > 0 {
		label := sizeLabel(big)
		ratio(fmt.Sprintf("hot path with %s accounts: (c@%s) server CPU/req vs (c)", label, label), "c@"+label, "c", modeKeepAlive, true, 1.03)
		t := targetResult{Name: fmt.Sprintf("cache-miss account lookup p99 with %s accounts (in-process)", label), Limit: "≤ 1 ms"}
		if l, ok := r.lookups[big]; ok {
			t.Value = float64(l.P99) / float64(time.Millisecond)
			t.Range = fmt.Sprintf("p50 %s, p99 %s, max %s over %d lookups", l.P50, l.P99, l.Max, l.Lookups)
			t.Pass = l.P99 <= time.Millisecond
		} else {
			t.Absent = true
		}
		out = append(out, t)
	}
	ratio("proxied req/s during an enrollment flood vs without", "c-flood", "c", modeKeepAlive, false, 0.80)
	return out
}

// How targets print their values: ratios, and CPU extras in µs.
const (
	ratioFormat  = "%.3f"
	microsFormat = "%.0f µs"
)

// machine describes where the run happened.
func (r *runner) machine(ctx context.Context, loadBefore string) machineInfo {
	mi := machineInfo{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadBefore, LoadAfter: loadavg(), Started: r.started}
	mi.Took = time.Since(r.started).Round(time.Second).String()
	var loads []float64
	for _, c := range r.results {
		if c.Load1 > 0 {
			loads = append(loads, c.Load1)
		}
	}
	if len(loads) > 0 {
		mi.LoadDuring = fmt.Sprintf("median %.1f (%.1f–%.1f)", median(loads), slices.Min(loads), slices.Max(loads))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				mi.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
				mi.MemoryMB = kb >> 10
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		mi.Kernel = strings.TrimSpace(string(b))
	}
	if r.caddy != "" {
		if out, err := exec.CommandContext(ctx, r.caddy, "version").Output(); err == nil {
			mi.Caddy = strings.TrimSpace(string(out))
		}
	}
	return mi
}

// load1 is the 1-minute load average, or 0 when unknown.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ---- markdown ----

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func fmtRatio(r *ratio) string {
	if r == nil {
		return "–"
	}
	if r.Rounds == 1 {
		return fmt.Sprintf("%.3f", r.Median)
	}
	return fmt.Sprintf("%.3f (%.3f–%.3f)", r.Median, r.Min, r.Max)
}

func fmtMB(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
}

func fmtLE(s float64) string {
	switch {
	case s == 0:
		return "–"
	case s >= 1e9:
		return "> last bucket"
	}
	return "≤ " + fmtDur(time.Duration(s*float64(time.Second)))
}

// markdown renders the README-ready tables.
func (rep *report) markdown(opts options) string {
	var b strings.Builder
	mi := rep.Machine
	fmt.Fprintf(&b, "Machine: %s, %d cores, %d MB RAM, Linux %s, %s. Caddy %s.\n", mi.CPU, mi.Cores, mi.MemoryMB, mi.Kernel, mi.Go, firstLine(mi.Caddy))
	fmt.Fprintf(&b, "Load average before/after: %s / %s", mi.LoadBefore, mi.LoadAfter)
	if mi.LoadDuring != "" {
		fmt.Fprintf(&b, "; 1-minute load at the end of each measured phase (the run's own processes included): %s", mi.LoadDuring)
	}
	fmt.Fprintf(&b, ". Run took %s.\n\n", mi.Took)
	fmt.Fprintf(&b, "%d interleaved rounds, each scenario %s warm-up + %s measured per round; %d workers keep-alive, %d per-request-connection; HTTP/1.1, TLS 1.3, client cards ECDSA P-256; loopback. ",
		opts.rounds, opts.warm, opts.measure, opts.concurrency, opts.connConcurrency)
	if opts.quietProxyLog {
		b.WriteString("Every server's reverse_proxy logger routed nowhere (`-quiet-proxy-log`). ")
	}
	b.WriteString("Figures are medians over the rounds; ratios are per round against the baseline measured in the same round (median, and min–max). Server CPU is the Caddy process's utime+stime (from /proc) per answered request; the backend and the load generator are separate processes.\n")
	for _, m := range opts.modes {
		var rows []*summary
		for _, s := range rep.Summaries {
			if s.Mode == m {
				rows = append(rows, s)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**%s** (%s)\n\n", m, modeDescription(m))
		if m == modeResumed && rows[0].Resumed == 0 {
			b.WriteString("No connection was resumed: Caddy turns TLS session tickets off for every site with `client_auth` (caddytls connpolicy.go), so with mTLS each new connection is a full handshake and keep-alive is what spreads its cost.\n\n")
		}
		b.WriteString("| Scenario | req/s | p50 | p99 | server CPU/req | req/s ratio | CPU/req ratio | peak RSS | notes |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |\n")
		for _, s := range rows {
			var against string
			var rr, cr *ratio
			if len(s.RPSRatio) > 0 {
				rr, cr = &s.RPSRatio[0], &s.CPURatio[0]
				against = " vs " + rr.Against
			}
			var notes []string
			if s.MissRate > 0 {
				notes = append(notes, fmt.Sprintf("cache misses %.0f%%", 100*s.MissRate))
			}
			if s.LookupP99 > 0 {
				notes = append(notes, fmt.Sprintf("lookup p50 %s, p99 %s", fmtLE(s.LookupP50), fmtLE(s.LookupP99)))
			}
			if s.FloodRPS > 0 {
				notes = append(notes, fmt.Sprintf("flood %.1f posts/s", s.FloodRPS))
			}
			if m == modeResumed {
				notes = append(notes, fmt.Sprintf("%.0f%% of connections resumed", 100*s.Resumed))
			}
			if s.GCPer1k > 0 {
				notes = append(notes, fmt.Sprintf("GC %.2f cycles/1k req, heap %s", s.GCPer1k, fmtMB(s.HeapInuse)))
			}
			for i := 1; i < len(s.RPSRatio); i++ {
				notes = append(notes, fmt.Sprintf("vs %s: req/s %s, CPU %s", s.RPSRatio[i].Against, fmtRatio(&s.RPSRatio[i]), fmtRatio(&s.CPURatio[i])))
			}
			if s.Invalid > 0 {
				notes = append(notes, fmt.Sprintf("**%d invalid round(s)**", s.Invalid))
			}
			name := "(" + s.Scenario + ") " + s.Title
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n",
				name, s.RPS, fmtDur(s.P50), fmtDur(s.P99), fmtDur(s.ServerCPU),
				prefixed(against, fmtRatio(rr)), prefixed(against, fmtRatio(cr)), fmtMB(s.PeakRSS), strings.Join(notes, "; "))
		}
	}
	if len(rep.Seeds) > 0 {
		b.WriteString("\n**Account stores** (seeded with one bulk import; cache-miss lookup = `AccountByFingerprint` for random accounts, in-process, nothing else running)\n\n")
		b.WriteString("| Accounts | Cards | Seeded in | Lookup p50 | Lookup p99 | Lookup max |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		sizes := make([]int, 0, len(rep.Seeds))
		for n := range rep.Seeds {
			sizes = append(sizes, n)
		}
		slices.Sort(sizes)
		for _, n := range sizes {
			s, l := rep.Seeds[n], rep.Lookups[n]
			fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s |\n", s.Accounts, s.Cards, s.Took.Round(10*time.Millisecond), fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.Max))
		}
	}
	b.WriteString("\n**Targets** (each value the median over the rounds of the per-round figure; A/A: the same figure for b2 against b, the run's own noise)\n\n")
	b.WriteString("| Target | Value | Limit | Result | Per round | A/A (b2 vs b) |\n| --- | ---: | --- | --- | --- | --- |\n")
	for _, t := range rep.Targets {
		if t.Absent {
			fmt.Fprintf(&b, "| %s | – | %s | not measured | | |\n", t.Name, t.Limit)
			continue
		}
		verdict := "met"
		if !t.Pass {
			verdict = "**missed**"
		}
		if t.Note != "" {
			verdict += " (" + t.Note + ")"
		}
		format := ratioFormat
		if strings.HasSuffix(t.Limit, "µs") {
			format = microsFormat
		}
		detail := t.Range
		if len(t.PerRound) > 0 {
			vals := make([]string, len(t.PerRound))
			for i, v := range t.PerRound {
				vals[i] = fmt.Sprintf(format, v)
			}
			detail = strings.Join(vals, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.Name, fmt.Sprintf(format, t.Value), t.Limit, verdict, detail, t.AA)
	}
	return b.String()
}

func prefixed(against, v string) string {
	if v == "–" {
		return v
	}
	return v + against
}

func modeDescription(m mode) string {
	switch m {
	case modeKeepAlive:
		return "connections reused"
	case modeNewConn:
		return "a new connection per request, no session resumption: a full handshake each"
	case modeResumed:
		return "a new connection per request, TLS 1.3 session resumption"
	}
	return ""
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
