package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// soakSample is one interval of a soak: the traffic's counts and
// latencies over it, and each gateway's memory at its end.
type soakSample struct {
	At         time.Duration `json:"at_ns"` // end of the interval, since the traffic started
	Seconds    float64       `json:"seconds"`
	Requests   int64         `json:"requests"`
	Unexpected int64         `json:"unexpected"`
	RPS        float64       `json:"rps"`
	// The cached traffic's latency, and the 99th percentile of every
	// other page (banner, enrollment, sign-in and sign-out steps).
	CachedP50 time.Duration `json:"cached_p50_ns"`
	CachedP99 time.Duration `json:"cached_p99_ns"`
	FlowP99   time.Duration `json:"flow_p99_ns"`
	Nodes     []nodeSample  `json:"nodes"`
	Load      string        `json:"loadavg"`
}

// nodeSample is a gateway process's memory: VmRSS from /proc, and the Go
// heap allocated just after a garbage collection (the live heap, which a
// leak grows) and the goroutines from its /metrics (0 when the admin API
// did not answer, as it may while a reload replaces the admin server).
type nodeSample struct {
	Node       string `json:"node"`
	RSS        int64  `json:"rss_bytes"`
	Heap       int64  `json:"heap_after_gc_bytes"`
	Goroutines int64  `json:"goroutines"`
}

// sampleLoop takes a sample at the end of every interval until the
// traffic ends, and a last one then (unless that interval is too short to
// say anything).
func (s *soak) sampleLoop(ctx, traffic context.Context) {
	last := s.start
	for k := 1; ; k++ {
		end := sleepUntil(traffic, s.start.Add(time.Duration(k)*s.opts.soakInterval)) != nil
		if end && time.Since(last) < s.opts.soakInterval/4 {
			return
		}
		last = time.Now()
		s.takeSample(ctx)
		if end {
			return
		}
	}
}

func (s *soak) takeSample(ctx context.Context) {
	ks := s.stats.takeInterval()
	var prev time.Duration
	if n := len(s.samples); n > 0 {
		prev = s.samples[n-1].At
	}
	sm := soakSample{At: time.Since(s.start)}
	sm.Seconds = (sm.At - prev).Seconds()
	var flows hist
	for _, k := range soakKinds {
		st := ks[k]
		sm.Requests += st.Requests
		sm.Unexpected += st.Unexpected
		if k != kindCached && k != kindReload {
			flows.merge(&st.lat)
		}
	}
	sm.RPS = float64(sm.Requests) / sm.Seconds
	sm.CachedP50, sm.CachedP99 = ks[kindCached].lat.quantile(0.50), ks[kindCached].lat.quantile(0.99)
	sm.FlowP99 = flows.quantile(0.99)
	for _, srv := range s.nodes {
		ns := nodeSample{Node: srv.cfg.node}
		ns.RSS, _, _ = memory(srv.proc.pid())
		// A reload replaces the admin server: a scrape that meets the
		// switch is tried again. Asking for a heap profile with gc=1
		// collects garbage first, so the heap allocated afterwards is
		// what the gateway holds; the profile is kept, for a pprof
		// -base comparison of what grew.
		for try := 0; try < 5; try++ {
			status, profile, err := adminDo(ctx, http.MethodGet, srv.adminURL()+"/debug/pprof/heap?gc=1", "", "")
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("heap profile: HTTP %d", status)
			}
			var m []sample
			if err == nil {
				s.keepProfile(srv, sm.At, profile)
				m, err = scrape(ctx, srv)
			}
			if err == nil {
				ns.Heap = int64(sum(m, "go_memstats_heap_alloc_bytes", nil))
				ns.Goroutines = int64(sum(m, "go_goroutines", nil))
				break
			}
			if sleepCtx(ctx, 200*time.Millisecond) != nil {
				break
			}
		}
		sm.Nodes = append(sm.Nodes, ns)
	}
	if f := strings.Fields(loadavg()); len(f) > 0 {
		sm.Load = f[0]
	}
	s.samples = append(s.samples, sm)
	var mem []string
	for _, ns := range sm.Nodes {
		mem = append(mem, fmt.Sprintf("%s: RSS %s live heap %s %d goroutines", ns.Node, fmtMB(ns.RSS), fmtMB(ns.Heap), ns.Goroutines))
	}
	logf("+%-6s %6.0f req/s  unexpected %d  cached p50 %s p99 %s  flows p99 %s  %s  load %s",
		sm.At.Round(time.Second), sm.RPS, sm.Unexpected, fmtLat(sm.CachedP50), fmtLat(sm.CachedP99), fmtLat(sm.FlowP99), strings.Join(mem, "; "), sm.Load)
}

// keepProfile writes a node's heap profile taken at a sample into the
// output directory: heap/<nodes>node-<node>-<t>.pb.gz. A profile that
// cannot be written is only logged: the figures do not need it.
func (s *soak) keepProfile(srv *server, at time.Duration, profile string) {
	dir := filepath.Join(s.out, "heap")
	name := fmt.Sprintf("%dnode-%s-%s.pb.gz", len(s.nodes), srv.cfg.node, fmtAt(at))
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), []byte(profile), 0o644)
	}
	if err != nil {
		logf("keeping a heap profile: %v", err)
	}
}

// soakResult is one topology's soak.
type soakResult struct {
	Nodes      int    `json:"nodes"`
	Store      string `json:"store"`
	Skipped    string `json:"skipped,omitempty"`
	Duration   string `json:"duration"`
	Traffic    string `json:"traffic"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`

	Samples    []soakSample     `json:"samples"`
	Kinds      []kindSummary    `json:"kinds"`
	Unexpected int64            `json:"unexpected"`
	Problems   []soakProblem    `json:"problems"`
	Causes     map[string]int64 `json:"unexpected_by_cause"`
	Events     []soakEvent      `json:"events"`
	PeakRSS    map[string]int   `json:"peak_rss_mb"`

	Enrolled        int64                    `json:"enrolled"`
	Signouts        int64                    `json:"card_signouts"`
	PasswordSignins int64                    `json:"password_signins"`
	Reloads         int64                    `json:"reloads"`
	EnrollSeen      lagSummary               `json:"enrollment_seen_by_other_node"`
	SessionEnded    lagSummary               `json:"session_end_seen_by_other_node"`
	CRLPickedUp     map[string]time.Duration `json:"crl_picked_up_after_ns"`

	Verdict []string `json:"verdict"`
	// Flat is the verdict's conclusion: no unexpected answer, memory and
	// the cached p99 flat.
	Flat bool `json:"flat"`
}

// kindSummary is one kind of traffic over the whole soak.
type kindSummary struct {
	Kind       soakKind      `json:"kind"`
	Requests   int64         `json:"requests"`
	Refused    int64         `json:"expected_refusals"`
	Unexpected int64         `json:"unexpected"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
}

func (s *soak) result(loadBefore string) *soakResult {
	res := &soakResult{
		Nodes: len(s.nodes), Store: "SQLite", Duration: s.opts.soak.String(),
		Traffic: fmt.Sprintf("%d enrolled cards at %d req/s (%d workers), %d sign-out loops of %d cards, an enrollment at most every %s, a password sign-in at most every %s, a config reload of every node every %s, a CRL refresh at +%s (CRL files polled every %s)",
			s.opts.soakCards, s.opts.soakRate, s.opts.soakWorkers, len(s.signoutLoops), signoutCardsPerLoop, s.opts.soakEnroll, s.opts.soakPassword, s.opts.soakReload, s.crlAt(), s.opts.soakCRLRefresh),
		LoadBefore: loadBefore, LoadAfter: loadavg(),
		Samples: s.samples, Events: s.events,
		Enrolled: s.enrolled.Load(), Signouts: s.signouts.Load(), PasswordSignins: s.passwordSignins.Load(), Reloads: s.reloads.Load(),
		EnrollSeen: s.enrollSeen.summary(), SessionEnded: s.sessionEnded.summary(),
		PeakRSS: map[string]int{}, CRLPickedUp: map[string]time.Duration{},
	}
	if s.pg != nil {
		res.Store = "PostgreSQL"
	}
	totals, problems, causes := s.stats.totals()
	res.Problems, res.Causes = problems, causes
	for _, k := range soakKinds {
		t := totals[k]
		res.Unexpected += t.Unexpected
		res.Kinds = append(res.Kinds, kindSummary{Kind: k, Requests: t.Requests, Refused: t.Refused, Unexpected: t.Unexpected,
			P50: t.lat.quantile(0.50), P99: t.lat.quantile(0.99), Max: t.lat.max})
	}
	for _, srv := range s.nodes {
		if _, hwm, err := memory(srv.proc.pid()); err == nil {
			res.PeakRSS[srv.cfg.node] = int(hwm >> 20)
		}
	}
	s.crlMu.Lock()
	for n, d := range s.crlPickedUp {
		res.CRLPickedUp[s.nodes[n].cfg.node] = d
	}
	s.crlMu.Unlock()
	res.Verdict, res.Flat = verdict(res)
	return res
}

// Flatness thresholds. The machine is shared and small: a run's p99 moves
// by tens of percent with the neighbours' load. Memory moves with the
// hashing: an argon2id hash holds a 46 MiB buffer, which a sample may
// catch in use (the live heap then reads one buffer higher: the samples
// split into a floor and the floor plus a buffer), and which, once
// freed, the Go runtime gives back to the kernel only gradually (RSS
// wanders by a buffer or two). So the live heap is judged on its floor,
// which a leak lifts and a hash in flight does not, and RSS on its
// median, loosely: only clear drifts count.
const (
	flatMemoryShare = 0.10     // the live heap's floor and RSS may grow by 10 % ...
	flatHeapBytes   = 16 << 20 // ... or the floor by 16 MB,
	flatRSSBytes    = 96 << 20 // ... and RSS by two argon2id buffers, whichever is more
	flatP99Ratio    = 1.5      // the later half's median cached p99 over the earlier half's
)

// verdict judges the samples for drift: the later half of the intervals
// against the earlier half, leaving out the first interval (connections
// opening, caches filling): medians for RSS and p99 (one interval can
// catch a neighbour's burst), the floor for the live heap.
func verdict(res *soakResult) ([]string, bool) {
	var lines []string
	flat := res.Unexpected == 0
	var inReload int64
	for c, n := range res.Causes {
		if strings.Contains(c, duringReload) {
			inReload += n
		}
	}
	lines = append(lines, fmt.Sprintf("unexpected answers: %d (goal 0), %d of them to requests in flight during a config reload", res.Unexpected, inReload))
	var steady []soakSample
	for i, sm := range res.Samples {
		// The first interval, and a last one cut short, say little.
		if i > 0 && sm.Seconds >= 0.75*res.Samples[0].Seconds {
			steady = append(steady, sm)
		}
	}
	if len(steady) < 2 {
		return append(lines, "too few intervals to judge drift"), flat
	}
	early, late := steady[:len(steady)/2], steady[len(steady)/2:]
	span := "intervals ending " + fmtSpan(late) + " against " + fmtSpan(early)
	for i := range steady[0].Nodes {
		node := steady[0].Nodes[i].Node
		rss := func(n nodeSample) int64 { return n.RSS }
		a, b := medianOf(early, i, rss), medianOf(late, i, rss)
		if a > 0 && b > 0 {
			ok := b-a <= max(int64(flatMemoryShare*float64(a)), flatRSSBytes)
			flat = flat && ok
			lo, hi := rangeOf(steady, i, rss)
			lines = append(lines, fmt.Sprintf("node %s RSS: median %s, then %s (%+.1f %%; %s; %s–%s over the intervals after the first; fitted %+.1f MB/min): %s",
				node, fmtMB(a), fmtMB(b), 100*float64(b-a)/float64(a), span, fmtMB(lo), fmtMB(hi), slopeMBPerMin(steady, i, rss), flatWord(ok)))
		}
		heap := func(n nodeSample) int64 { return n.Heap }
		a, _ = rangeOf(early, i, heap)
		b, _ = rangeOf(late, i, heap)
		if a > 0 && b > 0 {
			ok := b-a <= max(int64(flatMemoryShare*float64(a)), flatHeapBytes)
			flat = flat && ok
			lo, hi := rangeOf(steady, i, heap)
			lines = append(lines, fmt.Sprintf("node %s live heap (after GC): floor %s, then %s (%+.1f %%; %s–%s over the intervals after the first): %s",
				node, fmtMB(a), fmtMB(b), 100*float64(b-a)/float64(a), fmtMB(lo), fmtMB(hi), flatWord(ok)))
		}
		gor := func(n nodeSample) int64 { return n.Goroutines }
		if a, b := medianOf(early, i, gor), medianOf(late, i, gor); a > 0 && b > 0 {
			ok := float64(b) <= 1.2*float64(a)+50
			flat = flat && ok
			lines = append(lines, fmt.Sprintf("node %s goroutines: median %d, then %d: %s", node, a, b, flatWord(ok)))
		}
	}
	p99 := func(sm soakSample) time.Duration { return sm.CachedP99 }
	a, b := median(durations(early, p99)), median(durations(late, p99))
	if a > 0 && b > 0 {
		lo, hi := slices.Min(durations(steady, p99)), slices.Max(durations(steady, p99))
		r := float64(b) / float64(a)
		ok := r <= flatP99Ratio
		flat = flat && ok
		lines = append(lines, fmt.Sprintf("cached p99: median %s, then %s (×%.2f; %s; %s–%s over the intervals after the first): %s",
			fmtLat(a), fmtLat(b), r, span, fmtLat(lo), fmtLat(hi), flatWord(ok)))
	}
	return lines, flat
}

// fmtSpan names the intervals of samples by their ends: +2m–5m.
func fmtSpan(samples []soakSample) string {
	first, last := fmtAt(samples[0].At), fmtAt(samples[len(samples)-1].At)
	if first == last {
		return "+" + first
	}
	return "+" + first + "–" + last
}

// medianOf is the median of a node figure over samples, leaving out the
// samples that lack it (a failed scrape).
func medianOf(samples []soakSample, node int, get func(nodeSample) int64) int64 {
	var v []int64
	for _, sm := range samples {
		if x := get(sm.Nodes[node]); x > 0 {
			v = append(v, x)
		}
	}
	return median(v)
}

// rangeOf is the least and the greatest of a node figure over samples,
// leaving out the samples that lack it.
func rangeOf(samples []soakSample, node int, get func(nodeSample) int64) (lo, hi int64) {
	for _, sm := range samples {
		x := get(sm.Nodes[node])
		if x > 0 && (lo == 0 || x < lo) {
			lo = x
		}
		hi = max(hi, x)
	}
	return lo, hi
}

func durations(samples []soakSample, get func(soakSample) time.Duration) []time.Duration {
	v := make([]time.Duration, 0, len(samples))
	for _, sm := range samples {
		v = append(v, get(sm))
	}
	return v
}

func flatWord(ok bool) string {
	if ok {
		return "flat"
	}
	return "**grew**"
}

// slopeMBPerMin is the least-squares slope of a memory figure of node i
// over the samples, in MB per minute.
func slopeMBPerMin(samples []soakSample, i int, get func(nodeSample) int64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, sm := range samples {
		v := get(sm.Nodes[i])
		if v == 0 {
			continue
		}
		x, y := sm.At.Minutes(), float64(v)/(1<<20)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / d
}

// soakReport is the whole soak run.
type soakReport struct {
	Command string        `json:"command"`
	Machine machineInfo   `json:"machine"`
	Results []*soakResult `json:"results"`
}

func (rep *soakReport) markdown() string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "## Soak\n\n`%s` on %s, %d cores, %d MB RAM, Linux %s, %s; %s\n\n",
		rep.Command, m.CPU, m.Cores, m.MemoryMB, m.Kernel, m.Go, firstLine(m.Caddy))
	for _, res := range rep.Results {
		topology := fmt.Sprintf("%d node, %s", res.Nodes, res.Store)
		if res.Nodes > 1 {
			topology = fmt.Sprintf("%d nodes, one %s database", res.Nodes, res.Store)
		}
		if res.Skipped != "" {
			fmt.Fprintf(&b, "### %d nodes: skipped\n\n%s\n\n", res.Nodes, res.Skipped)
			continue
		}
		fmt.Fprintf(&b, "### %s, %s\n\n", topology, res.Duration)
		fmt.Fprintf(&b, "Traffic: %s. Load average (1, 5, 15 min) before %s, after %s.\n\n", res.Traffic, res.LoadBefore, res.LoadAfter)
		b.WriteString("| t | req/s | unexpected | cached p50 | cached p99 | other pages p99 |")
		for _, ns := range res.Samples[0].Nodes {
			fmt.Fprintf(&b, " %s: RSS | live heap | goroutines |", ns.Node)
		}
		b.WriteString(" load |\n| ---: | ---: | ---: | ---: | ---: | ---: |")
		for range res.Samples[0].Nodes {
			b.WriteString(" ---: | ---: | ---: |")
		}
		b.WriteString(" ---: |\n")
		for _, sm := range res.Samples {
			fmt.Fprintf(&b, "| %s | %.0f | %d | %s | %s | %s |", fmtAt(sm.At), sm.RPS, sm.Unexpected, fmtLat(sm.CachedP50), fmtLat(sm.CachedP99), fmtLat(sm.FlowP99))
			for _, ns := range sm.Nodes {
				fmt.Fprintf(&b, " %s | %s | %d |", fmtMB(ns.RSS), fmtMB(ns.Heap), ns.Goroutines)
			}
			fmt.Fprintf(&b, " %s |\n", sm.Load)
		}
		b.WriteString("\n| Traffic | requests | expected refusals | unexpected | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, k := range res.Kinds {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s |\n", k.Kind, k.Requests, k.Refused, k.Unexpected, fmtLat(k.P50), fmtLat(k.P99), fmtLat(k.Max))
		}
		fmt.Fprintf(&b, "\n%d enrollments, %d card sign-outs, %d password sign-ins, %d config reloads", res.Enrolled, res.Signouts, res.PasswordSignins, res.Reloads)
		if res.Nodes > 1 {
			fmt.Fprintf(&b, "; an enrollment reached the other node in %s on average (%s at most, %d times), a password sign-out in %s (%s at most, %d times)",
				fmtLat(res.EnrollSeen.Mean), fmtLat(res.EnrollSeen.Max), res.EnrollSeen.Count, fmtLat(res.SessionEnded.Mean), fmtLat(res.SessionEnded.Max), res.SessionEnded.Count)
		}
		var peaks []string
		for _, ns := range res.Samples[0].Nodes {
			peaks = append(peaks, fmt.Sprintf("%s %d MB", ns.Node, res.PeakRSS[ns.Node]))
		}
		fmt.Fprintf(&b, "; peak RSS %s.\n\n", strings.Join(peaks, ", "))
		if len(res.Events) > 0 {
			b.WriteString("Events:\n\n")
			for _, e := range res.Events {
				fmt.Fprintf(&b, "- +%s %s\n", e.At.Round(time.Second), e.What)
			}
			b.WriteString("\n")
		}
		b.WriteString("Verdict:\n\n")
		for _, l := range res.Verdict {
			fmt.Fprintf(&b, "- %s\n", l)
		}
		b.WriteString("\n")
		if len(res.Causes) > 0 {
			causes := make([]string, 0, len(res.Causes))
			for c := range res.Causes {
				causes = append(causes, c)
			}
			slices.Sort(causes)
			b.WriteString("Unexpected answers by cause:\n\n")
			for _, c := range causes {
				fmt.Fprintf(&b, "- %s: %d\n", c, res.Causes[c])
			}
			b.WriteString("\n")
		}
		if len(res.Problems) > 0 {
			fmt.Fprintf(&b, "First unexpected answers (%d of %d):\n\n", len(res.Problems), res.Unexpected)
			for _, p := range res.Problems {
				fmt.Fprintf(&b, "- +%s %s, node %s: %s\n", p.At.Round(time.Millisecond), p.Kind, p.Node, p.Detail)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// fmtAt is a time into the soak: 30s, 1m, 1m30s.
func fmtAt(d time.Duration) string {
	d = d.Round(time.Second)
	m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case m == 0:
		return fmt.Sprintf("%ds", s)
	case s == 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}

func writeJSONValue(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// fmtLat is a latency as the soak tables show it.
func fmtLat(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
