// Command bench measures what cacgate costs over bare Caddy, side by side,
// in one run on one machine.
//
// From the repository root:
//
//	go run ./bench                # the full run (about 25 minutes)
//	go run ./bench -quick         # a smaller, shorter run (about 7 minutes), for CI
//	go run ./bench -h             # every option
//	go run ./bench -soak 10m      # the soak instead (soak.go): mixed traffic on one node, then two
//
// It builds the binary with ./xcaddy.sh, starts a tiny echo backend (its own
// process), and starts Caddy servers from generated Caddyfiles: bare Caddy
// doing mTLS + reverse_proxy, and the same binary with cacgate in front of
// reverse_proxy, each with a copy of an account store seeded in one bulk
// import. A load generator in this process presents client certificates
// and measures, in interleaved rounds (every scenario once per round, the
// order rotated each round):
//
//	a        the backend directly (plain HTTP)
//	b, b2    bare Caddy, twice: b2/b is the A/A noise of the run
//	b-1k, b-10k  bare Caddy with 1,000 / 10,000 cards round-robin (one
//	         connection each)
//	b-hdr    bare Caddy, the client sending the identity headers cacgate
//	         adds by default (what forwarding them costs Caddy, without
//	         the gateway)
//	b-hdr-all  the same with the signed assertion too
//	b-rsa    bare Caddy with an RSA-2048 server key
//	c        cacgate, one enrolled card with a valid consent cookie
//	c-all    c with the signed assertion on (header assertion on)
//	c-user   c sending the backend X-Remote-User only
//	c-flood  c while other clients flood self-enrollment (argon2id hashing)
//	c-rsa    c with an RSA-2048 server key
//	d-1k, d-10k  cacgate, 1,000 / 10,000 enrolled cards round-robin,
//	         cache_size the same (every card cached)
//	d-miss   1,000 cards, cache_size 500: every request misses the cache
//	c@1k, d-miss@1k, c@1M, d-miss@1M   the same with 1,000 and 1,000,000 accounts
//
// in three modes: keep-alive, new-conn (a connection per request, no session
// resumption: a full handshake each) and resumed (a connection per request
// offering TLS 1.3 session resumption, which Caddy declines on sites with
// client_auth: the run shows the share of resumed connections). For each it reports requests/s, p50/p99
// latency, the server's CPU time per request (utime+stime from /proc: on a
// small shared machine the steadier figure), the peak RSS of the server,
// and ratios to bare Caddy measured in the same round. It also times
// cache-miss account lookups in each store.
//
// Output: progress on stderr, the markdown tables on stdout, and
// results.json and results.md in the -out directory.
//
// Only loopback is used; every phase is bounded in time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	caddy           string
	out             string
	keep            bool
	quick           bool
	rounds          int
	warm, measure   time.Duration
	warmExtra       time.Duration
	concurrency     int
	connConcurrency int
	// cardCounts are the round-robin scenarios' card counts (b-N, d-N),
	// ascending; cards is the largest, minted once for all of them.
	cardCounts     []int
	cards          int
	accounts       int
	scale          []int
	floodWorkers   int
	acceptParallel int
	lookups        int
	modes          []mode
	only           *regexp.Regexp
	pprof          *regexp.Regexp
	quietProxyLog  bool

	// The soak (see soak.go); soak == 0 runs the comparison instead.
	soak             time.Duration
	soakNodes        []int
	soakNodesSet     bool // -soak-nodes given: a missing PostgreSQL is an error, not a skip
	soakCards        int
	soakRate         int
	soakWorkers      int
	soakInterval     time.Duration
	soakEnroll       time.Duration
	soakPassword     time.Duration
	soakSignout      int
	soakReload       time.Duration
	soakSettle       time.Duration
	soakPause        time.Duration // between a sign-out loop's cycles
	soakRevokedEvery time.Duration // between the revoked card's requests
	soakCRLRefresh   time.Duration // the gateways' CRL file polling
	// command is how the run was started, for the report.
	command string
}

func main() {
	if os.Getenv(backendEnv) == "1" {
		if err := runBackend(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	measure := run
	if opts.soak > 0 {
		measure = runSoak
	}
	md, err := measure(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Print(md)
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var cardCounts, scale, modes, only, pprof, soakNodes string
	o.command = strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
	fs.StringVar(&o.caddy, "caddy", "", "use this caddy binary instead of building one with ./xcaddy.sh")
	fs.StringVar(&o.out, "out", "", "directory for results.json, results.md and profiles (default: a new temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (stores, Caddyfiles, logs)")
	fs.BoolVar(&o.quick, "quick", false, "shorter: stores of 1k and 100k, 1s+2s cells, 10,000 cards in keep-alive only (about 7 minutes)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (each scenario measured once per round)")
	fs.DurationVar(&o.warm, "warm", 5*time.Second, "warm-up per cell")
	fs.DurationVar(&o.measure, "measure", 10*time.Second, "measured time per cell")
	fs.DurationVar(&o.warmExtra, "warm-extra", 3*time.Minute, "bound on the extra warm-up until every card has been used once")
	fs.IntVar(&o.concurrency, "c", 16, "load workers in keep-alive mode")
	fs.IntVar(&o.connConcurrency, "cn", 8, "load workers in the connection-per-request modes")
	fs.StringVar(&cardCounts, "cards", "1000,10000", "comma-separated card counts for the round-robin scenarios b-N and d-N (d-miss uses the smallest)")
	fs.IntVar(&o.accounts, "accounts", 0, "accounts in the main store (default: the largest -cards)")
	fs.StringVar(&scale, "scale", "1000,1000000", "comma-separated store sizes for the scale scenarios (empty for none)")
	fs.IntVar(&o.floodWorkers, "flood", 8, "enrollment-flood clients in c-flood")
	fs.IntVar(&o.acceptParallel, "accept-parallel", 8, "banner acceptances in parallel during setup")
	fs.IntVar(&o.lookups, "lookups", 20000, "timed cache-miss lookups per store")
	fs.StringVar(&modes, "modes", "keep-alive,new-conn,resumed", "modes to measure")
	fs.StringVar(&only, "only", "", "regexp: measure only the scenarios whose id matches (ratios need their baselines: b, c)")
	fs.BoolVar(&o.quietProxyLog, "quiet-proxy-log", false, "route reverse_proxy's own logger nowhere in every server (log default { exclude http.handlers.reverse_proxy }): Caddy then skips serializing each proxied request into it")
	fs.StringVar(&pprof, "pprof", "", "regexp: take a CPU profile of the matching scenarios' servers in the last round")
	fs.DurationVar(&o.soak, "soak", 0, "run the soak instead for this long per topology (e.g. 10m): mixed traffic, unexpected answers, p99 and RSS over time")
	fs.StringVar(&soakNodes, "soak-nodes", "1,2", "soak topologies: 1 (SQLite), 2 (two nodes on one PostgreSQL), or both one after the other")
	fs.IntVar(&o.soakCards, "soak-cards", 1000, "soak: enrolled cards with an accepted banner in the steady traffic")
	fs.IntVar(&o.soakRate, "soak-rate", 1000, "soak: requests per second of the steady traffic, over all nodes")
	fs.IntVar(&o.soakWorkers, "soak-workers", 32, "soak: workers sending the steady traffic")
	fs.DurationVar(&o.soakInterval, "soak-interval", time.Minute, "soak: sampling interval")
	fs.DurationVar(&o.soakEnroll, "soak-enroll", 3*time.Second, "soak: at most one first-time card's enrollment started per this")
	fs.DurationVar(&o.soakPassword, "soak-password", 5*time.Second, "soak: at most one password sign-in cycle started per this")
	fs.IntVar(&o.soakSignout, "soak-signout", 2, "soak: card sign-out loops")
	fs.DurationVar(&o.soakReload, "soak-reload", time.Minute, "soak: config reload interval (every node, one after the other)")
	fs.DurationVar(&o.soakSettle, "soak-settle", 10*time.Second, "soak: bound for a change made on one node to show on the other")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.soakPause, o.soakRevokedEvery, o.soakCRLRefresh = time.Second, 250*time.Millisecond, 5*time.Second
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("scale", func() { scale = "1000,100000" })
		def("warm", func() { o.warm = time.Second })
		def("measure", func() { o.measure = 2 * time.Second })
		def("lookups", func() { o.lookups = 2000 })
	}
	var err error
	if o.cardCounts, err = parseCounts(cardCounts, "-cards", 2); err != nil {
		return o, err
	}
	slices.Sort(o.cardCounts)
	o.cardCounts = slices.Compact(o.cardCounts)
	if len(o.cardCounts) > 0 {
		o.cards = o.cardCounts[len(o.cardCounts)-1]
	}
	if o.accounts == 0 {
		o.accounts = o.cards
	}
	switch {
	case o.rounds < 1, len(o.cardCounts) == 0, o.accounts < 1, o.concurrency < 1, o.connConcurrency < 1, o.floodWorkers < 1, o.acceptParallel < 1, o.lookups < 1:
		return o, errors.New("rounds, cards, accounts, workers, flood, accept-parallel and lookups must be positive")
	case o.warm <= 0 || o.measure <= 0:
		return o, errors.New("warm and measure must be positive")
	}
	fs.Visit(func(f *flag.Flag) { o.soakNodesSet = o.soakNodesSet || f.Name == "soak-nodes" })
	for _, f := range strings.Split(soakNodes, ",") {
		switch f = strings.TrimSpace(f); f {
		case "1", "2":
			o.soakNodes = append(o.soakNodes, int(f[0]-'0'))
		case "":
		default:
			return o, fmt.Errorf("bad -soak-nodes %q: 1, 2 or 1,2", f)
		}
	}
	if o.soak < 0 || (o.soak > 0 && (len(o.soakNodes) == 0 || o.soakCards < 1 || o.soakRate < 1 || o.soakWorkers < 1 || o.soakSignout < 1 ||
		o.soakInterval <= 0 || o.soakEnroll <= 0 || o.soakPassword <= 0 || o.soakReload <= 0 || o.soakSettle <= 0)) {
		return o, errors.New("soak: duration, nodes, cards, rate, workers, sign-out loops and every interval must be positive")
	}
	if o.scale, err = parseCounts(scale, "-scale", 1); err != nil {
		return o, err
	}
	for _, f := range strings.Split(modes, ",") {
		switch m := mode(strings.TrimSpace(f)); m {
		case modeKeepAlive, modeNewConn, modeResumed:
			o.modes = append(o.modes, m)
		case "":
		default:
			return o, fmt.Errorf("unknown mode %q", f)
		}
	}
	if only != "" {
		if o.only, err = regexp.Compile("^(" + only + ")$"); err != nil {
			return o, err
		}
	}
	if pprof != "" {
		if o.pprof, err = regexp.Compile("^(" + pprof + ")$"); err != nil {
			return o, err
		}
	}
	return o, nil
}

// parseCounts reads a comma-separated list of numbers, each at least least
// ("1000,10_000"; empty entries are skipped).
func parseCounts(list, flagName string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < least {
			return nil, fmt.Errorf("bad %s entry %q: a number of at least %d", flagName, f, least)
		}
		out = append(out, n)
	}
	return out, nil
}

// newRunner makes a runner with a new work directory (removed by cleanup
// unless -keep) and the results directory (-out, else a new one), both
// named after prefix.
func newRunner(opts options, prefix string) (r *runner, cleanup func(), err error) {
	work, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() {
		if !opts.keep {
			os.RemoveAll(work)
		}
	}
	out := opts.out
	if out == "" {
		if out, err = os.MkdirTemp("", prefix+"results-"); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		cleanup()
		return nil, nil, err
	}
	return &runner{opts: opts, workDir: work, outDir: out}, cleanup, nil
}

// run does a whole run and returns the markdown report.
func run(ctx context.Context, opts options) (string, error) {
	loadBefore := loadavg()
	r, cleanup, err := newRunner(opts, "cacgate-bench-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	work, out := r.workDir, r.outDir
	defer r.shutdown()
	if err := r.setup(ctx); err != nil {
		return "", err
	}
	if err := r.run(ctx); err != nil {
		return "", err
	}
	// Peak RSS over the servers' whole life, before they stop.
	sums := r.summarize()
	rep := &report{
		Machine:   r.machine(ctx, loadBefore),
		Options:   optionsJSON(opts),
		Seeds:     r.seeds,
		Lookups:   r.lookups,
		Summaries: sums,
		Targets:   r.judgeTargets(sums),
		Cells:     r.results,
	}
	md := rep.markdown(opts)
	if err := writeJSON(filepath.Join(out, "results.json"), rep); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(md), 0o644); err != nil {
		return "", err
	}
	logf("results in %s (results.json, results.md)", out)
	if opts.keep {
		logf("work directory kept: %s", work)
	}
	return md, nil
}

func optionsJSON(o options) map[string]any {
	m := map[string]any{
		"rounds": o.rounds, "warm": o.warm.String(), "measure": o.measure.String(),
		"workers_keepalive": o.concurrency, "workers_per_connection": o.connConcurrency,
		"cards": o.cardCounts, "accounts": o.accounts, "scale": o.scale, "flood_workers": o.floodWorkers,
		"modes": o.modes, "quick": o.quick, "lookups": o.lookups, "quiet_proxy_log": o.quietProxyLog,
	}
	if o.only != nil {
		m["only"] = o.only.String()
	}
	return m
}
