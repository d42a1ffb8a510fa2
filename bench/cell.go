package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// scenario is one thing measured: a server (or the backend alone), the
// cards the clients present, and the modes it is measured in.
type scenario struct {
	id    string // short name used in tables and ratios: "b", "c", "d-miss@1M", ...
	title string
	// server is the Caddy measured; nil measures the backend directly.
	server *server
	target target
	modes  []mode
	// flood runs an enrollment flood against server during the cell.
	flood bool
	// compare lists the scenarios this one's ratios are taken against, in
	// the same round and mode; the first is the headline ratio.
	compare []string
	// accounts is the size of the gateway's store (0 for no gateway).
	accounts int
}

func (s *scenario) hasMode(m mode) bool {
	for _, x := range s.modes {
		if x == m {
			return true
		}
	}
	return false
}

// cellResult is one scenario in one mode in one round.
type cellResult struct {
	Scenario string `json:"scenario"`
	Mode     mode   `json:"mode"`
	Round    int    `json:"round"`

	Requests     int64   `json:"requests"` // answered correctly in the measured phase
	Bad          int64   `json:"bad"`      // wrong status or missing identity
	Errors       int64   `json:"errors"`   // transport errors
	Problem      string  `json:"problem,omitempty"`
	Seconds      float64 `json:"seconds"`
	RPS          float64 `json:"rps"`
	WarmRequests uint64  `json:"warm_requests"`
	WarmSeconds  float64 `json:"warm_seconds"`
	// Resumed is the share of answers on a resumed TLS session.
	Resumed float64 `json:"resumed_share"`

	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	Mean time.Duration `json:"mean_ns"`
	Max  time.Duration `json:"max_ns"`

	// CPU time per answered request, from /proc utime+stime deltas.
	ServerCPU  time.Duration `json:"server_cpu_per_req_ns"`
	BackendCPU time.Duration `json:"backend_cpu_per_req_ns"`
	ClientCPU  time.Duration `json:"client_cpu_per_req_ns"`
	// ServerRSS is the largest VmRSS sampled during the measured phase.
	ServerRSS int64 `json:"server_rss_bytes"`
	// GCPer1k is the server's garbage collection cycles per thousand
	// answered requests; HeapInuse its Go heap in use at the end.
	GCPer1k   float64 `json:"gc_cycles_per_1k_requests"`
	HeapInuse int64   `json:"heap_inuse_bytes"`
	// Load1 is the machine's 1-minute load average at the end of the
	// measured phase (the run itself included).
	Load1 float64 `json:"loadavg_1m"`

	// From the gateway's /metrics, over the measured phase.
	CacheHits   float64 `json:"cache_hits,omitempty"`
	CacheMisses float64 `json:"cache_misses,omitempty"`
	// Bucket upper bounds (seconds) holding the median and 99th
	// percentile account lookup by fingerprint.
	LookupP50 float64 `json:"lookup_p50_le_s,omitempty"`
	LookupP99 float64 `json:"lookup_p99_le_s,omitempty"`

	FloodPosts int64   `json:"flood_posts,omitempty"`
	FloodRPS   float64 `json:"flood_rps,omitempty"`
	FloodBad   int64   `json:"flood_bad,omitempty"`

	Profile string `json:"profile,omitempty"` // CPU profile file, if taken
}

// valid reports whether the cell measured what it should: answers came,
// and (almost) all were right. A few errors are tolerated in new-connection
// modes, where the kernel may refuse a connection under load.
func (c *cellResult) valid() bool {
	total := c.Requests + c.Bad + c.Errors
	return c.Requests > 0 && c.Bad == 0 && float64(c.Errors) <= 0.001*float64(total)
}

// runCell measures one scenario in one mode: warm-up (at least warm, and
// until every card has been used once, so that every connection is open and
// every cache entry fresh), then the measured phase.
func (r *runner) runCell(ctx context.Context, sc *scenario, m mode, round int, profile bool) (*cellResult, error) {
	workers := r.opts.concurrency
	if m != modeKeepAlive {
		workers = r.opts.connConcurrency
	}
	res := &cellResult{Scenario: sc.id, Mode: m, Round: round}
	serverPID := r.backend.pid()
	if sc.server != nil {
		serverPID = sc.server.proc.pid()
		if sc.server.proc.exited() {
			return nil, fmt.Errorf("server %s has exited: %s", sc.server.cfg.name, sc.server.proc.logTail(5))
		}
	}

	var flood *floodRun
	if sc.flood {
		c := browserClientVia(r.pki, r.pki.flood, loopbackDialFrom(floodSource(round, r.opts.floodWorkers)))
		form, err := prepareFlood(ctx, c, sc.server.baseURL(), r.floodCookies[sc.server])
		closeClient(c)
		if err != nil {
			return nil, fmt.Errorf("preparing the enrollment flood: %w", err)
		}
		flood = startFlood(ctx, r.pki, sc.server.baseURL(), r.floodCookies[sc.server], form, r.opts.floodWorkers, round)
		defer flood.stop()
	}

	lc := newLoadClients(r.pki, sc.target, m, workers)
	defer lc.close()
	lr := startLoad(ctx, lc, sc.target.wantUser, workers)
	defer lr.stop()

	warmStart := time.Now()
	cards := uint64(len(lc.clients))
	warmLimit := r.opts.warm + r.opts.warmExtra
	// Every card once before measuring: in keep-alive mode so that every
	// connection is open; in every mode so that every card is cached (a
	// full pass of new connections takes about half a minute for 10,000
	// cards).
	for time.Since(warmStart) < r.opts.warm || (lr.sent.Load() < cards && time.Since(warmStart) < warmLimit) {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
	res.WarmRequests, res.WarmSeconds = lr.sent.Load(), time.Since(warmStart).Seconds()

	var before []sample
	if sc.server != nil {
		before, _ = scrape(ctx, sc.server)
	}
	rss := startRSSSampler(serverPID)
	var prof sync.WaitGroup
	if profile && sc.server != nil {
		res.Profile = filepath.Join(r.outDir, "pprof", fmt.Sprintf("%s.%s.pb.gz", safeName(sc.id), m))
		prof.Add(1)
		go func() {
			defer prof.Done()
			if err := fetchProfile(ctx, sc.server, r.opts.measure, res.Profile); err != nil {
				fmt.Fprintf(os.Stderr, "profile of %s: %v\n", sc.id, err)
				res.Profile = ""
			}
		}()
	}

	srv0, err1 := cpuTime(serverPID)
	back0, err2 := cpuTime(r.backend.pid())
	self0, err3 := cpuTime(os.Getpid())
	t0 := time.Now()
	lr.phase.Store(phaseMeasure)
	if flood != nil {
		flood.measuring.Store(true)
	}
	sleepErr := sleepCtx(ctx, r.opts.measure)
	// A flood cell measures on until a flood post has been answered in
	// the phase (bounded by warm-extra): one post is an argon2id hash
	// behind its slot's rest, which on a loaded machine can outlast a
	// short phase, and the flood would read as having posted nothing.
	for sleepErr == nil && flood != nil && flood.ok.Load()+flood.bad.Load() == 0 && time.Since(t0) < r.opts.measure+r.opts.warmExtra {
		sleepErr = sleepCtx(ctx, 20*time.Millisecond)
	}
	lr.phase.Store(phaseStop)
	if flood != nil {
		flood.endMeasure()
	}
	elapsed := time.Since(t0)
	srv1, err4 := cpuTime(serverPID)
	back1, err5 := cpuTime(r.backend.pid())
	self1, err6 := cpuTime(os.Getpid())
	res.ServerRSS = rss.stop()
	if sleepErr != nil {
		return nil, sleepErr
	}
	for _, err := range []error{err1, err2, err3, err4, err5, err6} {
		if err != nil {
			return nil, fmt.Errorf("reading CPU time: %w", err)
		}
	}
	lr.stop()
	prof.Wait()

	h, ok, bad, errs, resumed, problem := lr.totals()
	res.Requests, res.Bad, res.Errors, res.Problem = ok, bad, errs, problem
	if ok > 0 {
		res.Resumed = float64(resumed) / float64(ok)
	}
	res.Seconds = elapsed.Seconds()
	res.Load1 = load1()
	res.RPS = float64(ok) / res.Seconds
	res.P50, res.P99, res.Mean, res.Max = h.quantile(0.50), h.quantile(0.99), h.mean(), h.max
	if ok > 0 {
		res.ServerCPU = (srv1 - srv0) / time.Duration(ok)
		res.BackendCPU = (back1 - back0) / time.Duration(ok)
		res.ClientCPU = (self1 - self0) / time.Duration(ok)
	}
	if before != nil {
		after, err := scrape(ctx, sc.server)
		if err == nil && ok > 0 {
			// Garbage collection: cycles per thousand requests, and the
			// heap in use at the end (Go's own metrics, every server).
			res.GCPer1k = 1000 * (sum(after, "go_gc_duration_seconds_count", nil) - sum(before, "go_gc_duration_seconds_count", nil)) / float64(ok)
			res.HeapInuse = int64(sum(after, "go_memstats_heap_inuse_bytes", nil))
		}
		if err == nil && sc.server.cfg.gate {
			hit := map[string]string{"result": "hit"}
			miss := map[string]string{"result": "miss"}
			res.CacheHits = sum(after, "cacgate_card_cache_lookups_total", hit) - sum(before, "cacgate_card_cache_lookups_total", hit)
			res.CacheMisses = sum(after, "cacgate_card_cache_lookups_total", miss) - sum(before, "cacgate_card_cache_lookups_total", miss)
			lookup := map[string]string{"operation": "account_by_fingerprint"}
			b0 := bucketCounts(before, "cacgate_store_operation_duration_seconds", lookup)
			b1 := bucketCounts(after, "cacgate_store_operation_duration_seconds", lookup)
			res.LookupP50, res.LookupP99 = finite(histQuantile(b0, b1, 0.50)), finite(histQuantile(b0, b1, 0.99))
		}
	}
	if flood != nil {
		res.FloodPosts, res.FloodBad = flood.ok.Load(), flood.bad.Load()
		res.FloodRPS = float64(res.FloodPosts) / res.Seconds
		if p := flood.problem.Load(); p != nil && res.Problem == "" && res.FloodPosts == 0 {
			res.Problem = *p
		}
	}
	return res, nil
}

// finite maps NaN (nothing observed) to 0 for JSON, and keeps +Inf as a
// large sentinel.
func finite(v float64) float64 {
	switch {
	case v != v:
		return 0
	case v > 1e300:
		return 1e9
	}
	return v
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rssSampler records the largest VmRSS of a process while it runs.
type rssSampler struct {
	stopCh chan struct{}
	done   chan int64
}

func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{stopCh: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := memory(pid); err == nil {
				peak = max(peak, rss)
			}
			select {
			case <-s.stopCh:
				s.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.stopCh)
	return <-s.done
}

// fetchProfile saves a CPU profile of the server over the measured phase,
// from Caddy's admin /debug/pprof.
func fetchProfile(ctx context.Context, s *server, d time.Duration, path string) error {
	secs := max(int(d.Seconds())-1, 1)
	if err := fetchPprof(ctx, s, fmt.Sprintf("profile?seconds=%d", secs), d+30*time.Second, path); err != nil {
		return err
	}
	// Then the live heap (after a collection): what the server keeps.
	return fetchPprof(ctx, s, "heap?gc=1", 30*time.Second, strings.TrimSuffix(path, ".pb.gz")+".heap.pb.gz")
}

// fetchPprof saves the server's /debug/pprof/<what> in path.
func fetchPprof(ctx context.Context, s *server, what string, timeout time.Duration, path string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.adminURL()+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
