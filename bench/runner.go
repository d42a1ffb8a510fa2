package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runner holds a run's state: options, PKI, processes, results.
type runner struct {
	opts    options
	workDir string
	outDir  string
	caddy   string

	pki         *benchPKI
	backend     *proc
	backendAddr string
	servers     []*server
	scenarios   []*scenario
	// floodCookies are the flood card's consent cookie per gateway.
	floodCookies map[*server]string

	seeds   map[int]seedReport
	lookups map[int]lookupLatency
	results []*cellResult
	started time.Time
}

// sizeLabel names a store size compactly: 1000 -> "1k", 1000000 -> "1M".
func sizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// setup builds the binary, makes the PKI and the stores, starts the
// backend and the servers, and obtains the consent cookies.
func (r *runner) setup(ctx context.Context) error {
	logf("work directory %s", r.workDir)
	if err := r.buildCaddy(ctx); err != nil {
		return err
	}
	start := time.Now()
	var err error
	if r.pki, err = makePKI(r.workDir, r.opts.cards); err != nil {
		return fmt.Errorf("making the PKI: %w", err)
	}
	logf("minted %d client cards in %s", r.opts.cards, time.Since(start).Round(time.Millisecond))

	consentKey := make([]byte, 32)
	if _, err := rand.Read(consentKey); err != nil {
		return err
	}
	sizes := append([]int{r.opts.accounts}, r.opts.scale...)
	r.seeds, r.lookups = map[int]seedReport{}, map[int]lookupLatency{}
	templates := map[int]string{}
	for _, n := range sizes {
		if _, done := templates[n]; done {
			continue
		}
		path := filepath.Join(r.workDir, "stores", fmt.Sprintf("accounts-%d.db", n))
		l := newLayout(n, r.opts.cards)
		rep, err := seedStore(ctx, path, l, r.pki.cards, consentKey)
		if err != nil {
			return fmt.Errorf("seeding %d accounts: %w", n, err)
		}
		r.seeds[n] = rep
		logf("seeded %d accounts (%d cards) in %s", rep.Accounts, rep.Cards, rep.Took.Round(time.Millisecond))
		lat, err := measureLookups(ctx, path, l, r.pki.cards, r.opts.lookups)
		if err != nil {
			return fmt.Errorf("timing lookups in %d accounts: %w", n, err)
		}
		r.lookups[n] = lat
		logf("cache-miss lookup in %d accounts: p50 %s p99 %s (%d lookups)", n, lat.P50, lat.P99, lat.Lookups)
		templates[n] = path
	}
	rosterPath := filepath.Join(r.workDir, "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(floodRosterCSV), 0o600); err != nil {
		return err
	}

	if r.backend, r.backendAddr, err = startBackendProc(r.workDir); err != nil {
		return err
	}
	return r.startScenarios(ctx, templates, rosterPath)
}

// startScenarios starts every server and defines the scenarios on them.
func (r *runner) startScenarios(ctx context.Context, templates map[int]string, rosterPath string) error {
	main := r.opts.accounts
	start := func(cfg serverConfig, accounts int) (*server, error) {
		cfg.quietProxyLog = r.opts.quietProxyLog
		// A card's mapping is kept for the whole run: with the default
		// minute, the entries one warm-up pass made expire together a
		// minute later, which a later cell can fall on (10,000 misses in
		// a row). d-N measures cached cards; d-miss measures misses.
		cfg.cacheTTL = time.Hour
		if cfg.gate {
			cfg.db = filepath.Join(r.workDir, "servers", cfg.name, "cacgate.db")
			if err := os.MkdirAll(filepath.Dir(cfg.db), 0o700); err != nil {
				return nil, err
			}
			if err := copyFile(templates[accounts], cfg.db); err != nil {
				return nil, err
			}
		}
		s, err := startServer(ctx, r.caddy, r.workDir, cfg, r.pki, r.backendAddr)
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, s)
		return s, nil
	}
	want := func(id string) bool { return r.opts.only == nil || r.opts.only.MatchString(id) }

	all := []mode{modeKeepAlive, modeNewConn, modeResumed}
	one := r.pki.cards[:1]
	type def struct {
		id, title string
		cfg       *serverConfig // nil: backend direct
		accounts  int
		cards     []*benchCard
		modes     []mode
		flood     bool
		compare   []string
	}
	counts := r.opts.cardCounts
	few, most := counts[0], counts[len(counts)-1]
	defs := []def{
		{"a", "backend direct (plain HTTP, no Caddy)", nil, 0, nil, []mode{modeKeepAlive, modeNewConn}, false, []string{"b"}},
		{"b", "bare Caddy: mTLS + reverse_proxy", &serverConfig{name: "bare"}, 0, one, all, false, nil},
		{"b2", "bare Caddy again, own process (A/A: the noise)", &serverConfig{name: "bare2"}, 0, one, []mode{modeKeepAlive, modeNewConn}, false, []string{"b"}},
		{"b-hdr", "bare Caddy, the client sending the eight identity headers cacgate adds by default: what forwarding them costs", &serverConfig{name: "bare-hdr"}, 0, one, []mode{modeKeepAlive}, false, []string{"b"}},
		{"b-hdr-all", "bare Caddy, the client sending the eight and the signed assertion", &serverConfig{name: "bare-hdr-all"}, 0, one, []mode{modeKeepAlive}, false, []string{"b"}},
		{"b-rsa", "bare Caddy, RSA-2048 server key", &serverConfig{name: "bare-rsa", rsa: true}, 0, one, []mode{modeNewConn}, false, []string{"b"}},
		{"c", "cacgate: enrolled card, valid consent cookie (the eight default headers)", &serverConfig{name: "gate", gate: true}, main, one, all, false, []string{"b", "b-hdr"}},
		{"c-all", "c with the signed assertion too (`header assertion on`)", &serverConfig{name: "gate-all", gate: true, headers: headersAll}, main, one, []mode{modeKeepAlive}, false, []string{"b", "b-hdr-all", "c"}},
		{"c-user", "c sending the backend X-Remote-User only (`header … off` for the rest)", &serverConfig{name: "gate-user", gate: true, headers: headersUserOnly}, main, one, []mode{modeKeepAlive}, false, []string{"b", "c"}},
		// Its own server (with the roster self-enrollment needs), so the
		// flood's 46 MiB hashes do not change c's heap and GC.
		{"c-flood", fmt.Sprintf("c during an enrollment flood (%d clients posting passwords)", r.opts.floodWorkers), &serverConfig{name: "gate-flood", gate: true, roster: rosterPath}, main, one, []mode{modeKeepAlive}, true, []string{"c", "b"}},
		{"c-rsa", "cacgate, RSA-2048 server key", &serverConfig{name: "gate-rsa", gate: true, rsa: true}, main, one, []mode{modeNewConn}, false, []string{"b-rsa", "b"}},
	}
	// Every card count gets its own bare and cacgate processes, so that no
	// server holds the connections (and GC work) of another count.
	for _, n := range counts {
		label := sizeLabel(n)
		modes := []mode{modeKeepAlive}
		if n == most && !r.opts.quick {
			modes = append(modes, modeNewConn)
		}
		compare := []string{"b-" + label, "b"}
		defs = append(defs, def{"b-" + label, fmt.Sprintf("bare Caddy, %d cards round-robin", n), &serverConfig{name: "bare-" + label}, 0, r.pki.cards[:n], []mode{modeKeepAlive}, false, []string{"b"}})
		if n == most {
			// What Caddy alone costs with these connections and the
			// headers cacgate adds: d against it is cacgate's own share.
			defs = append(defs, def{"b-hdr-" + label, fmt.Sprintf("bare Caddy, %d cards round-robin, the clients sending the eight identity headers", n), &serverConfig{name: "bare-hdr-" + label}, 0, r.pki.cards[:n], []mode{modeKeepAlive}, false, []string{"b-" + label, "b"}})
			compare = append(compare, "b-hdr-"+label)
		}
		defs = append(defs, def{"d-" + label, fmt.Sprintf("cacgate, %d cards round-robin, cache_size %d (every card cached)", n, n), &serverConfig{name: "gate-" + label + "-cards", gate: true, cacheSize: n}, main, r.pki.cards[:n], modes, false, compare})
	}
	// Misses at the smallest count: every request misses either way, and
	// fewer connections leave more of the CPU to the misses.
	defs = append(defs, def{"d-miss", fmt.Sprintf("cacgate, %d cards round-robin, cache_size %d (beyond capacity: every request misses)", few, max(few/2, 1)),
		&serverConfig{name: "gate-miss", gate: true, cacheSize: max(few/2, 1)}, main, r.pki.cards[:few], []mode{modeKeepAlive}, false, []string{"d-" + sizeLabel(few), "b-" + sizeLabel(few)}})
	for _, size := range r.opts.scale {
		label := sizeLabel(size)
		// A store smaller than the card set enrolls only its first cards:
		// those are the ones its clients present.
		cards := r.pki.cards[:min(size, few)]
		defs = append(defs,
			def{"c@" + label, fmt.Sprintf("c with %d accounts in the store", size), &serverConfig{name: "gate-" + label, gate: true}, size, one, []mode{modeKeepAlive}, false, []string{"b", "c"}},
			def{"d-miss@" + label, fmt.Sprintf("%d cards round-robin, cache_size %d, %d accounts in the store", len(cards), max(len(cards)/2, 1), size),
				&serverConfig{name: "gate-miss-" + label, gate: true, cacheSize: max(len(cards)/2, 1)}, size, cards, []mode{modeKeepAlive}, false, []string{"b", "d-miss"}},
		)
	}

	byID := map[string]*scenario{}
	for _, d := range defs {
		if !want(d.id) {
			continue
		}
		sc := &scenario{id: d.id, title: d.title, modes: d.modes, flood: d.flood, compare: d.compare, accounts: d.accounts}
		switch {
		case d.cfg == nil:
			sc.target = target{base: "http://" + r.backendAddr}
		default:
			s, err := start(*d.cfg, d.accounts)
			if err != nil {
				return err
			}
			sc.server = s
			sc.target = target{base: s.baseURL(), cards: d.cards, wantUser: d.cfg.gate}
			if strings.HasPrefix(d.id, "b-hdr") {
				if sc.target.extra, err = identityHeaders(r.pki.cards[0], d.id == "b-hdr-all"); err != nil {
					return err
				}
				sc.target.wantUser = true // bare Caddy forwards them
			}
		}
		byID[sc.id] = sc
		r.scenarios = append(r.scenarios, sc)
	}
	logf("started %d servers", len(r.servers))
	return r.getCookies(ctx)
}

// getCookies accepts the banner once per card on one gateway (every store
// shares the consent key, as a cluster's nodes do), checks that the cookies
// work on every gateway, and falls back to accepting on a gateway whose
// store did not take the shared key.
func (r *runner) getCookies(ctx context.Context) error {
	// Accept on the gateway whose scenario uses the most cards (d's), so
	// that no other gateway holds state for cards it is not measured with
	// (10,000 cached cards and the garbage of 10,000 handshakes would make
	// c's heap, and its garbage collection, unlike bare Caddy's); the flood
	// card on its own gateway.
	var first, floodServer *server
	most := 0
	for _, sc := range r.scenarios {
		if sc.server == nil || !sc.server.cfg.gate {
			continue
		}
		if sc.flood {
			floodServer = sc.server
		}
		if len(sc.target.cards) > most {
			first, most = sc.server, len(sc.target.cards)
		}
	}
	if floodServer == nil {
		floodServer = first
	}
	shared := make([]string, len(r.pki.cards))
	var floodShared string
	r.floodCookies = map[*server]string{}
	if first != nil {
		start := time.Now()
		cookies, err := acceptAll(ctx, r.pki, first.baseURL(), r.pki.cards, r.opts.acceptParallel)
		if err != nil {
			return fmt.Errorf("accepting the banner on %s: %w", first.cfg.name, err)
		}
		shared = cookies
		logf("accepted the banner for %d cards in %s", len(cookies), time.Since(start).Round(time.Millisecond))
		c := browserClient(r.pki, r.pki.flood)
		floodShared, err = acceptBanner(ctx, c, floodServer.baseURL())
		closeClient(c)
		if err != nil {
			return fmt.Errorf("accepting the banner for the flood card: %w", err)
		}
	}
	perServer := map[*server][]string{}
	for _, s := range r.servers {
		if !s.cfg.gate {
			continue
		}
		if err := checkCookie(ctx, r.pki, s, shared[0]); err == nil {
			perServer[s] = shared
			r.floodCookies[s] = floodShared
			continue
		} else {
			logf("%s: shared consent cookie refused (%v); accepting the banner there", s.cfg.name, err)
		}
		cookies, err := acceptAll(ctx, r.pki, s.baseURL(), r.pki.cards, r.opts.acceptParallel)
		if err != nil {
			return fmt.Errorf("accepting the banner on %s: %w", s.cfg.name, err)
		}
		perServer[s] = cookies
		c := browserClient(r.pki, r.pki.flood)
		flood, err := acceptBanner(ctx, c, s.baseURL())
		closeClient(c)
		if err != nil {
			return fmt.Errorf("accepting the banner for the flood card on %s: %w", s.cfg.name, err)
		}
		r.floodCookies[s] = flood
	}
	for _, sc := range r.scenarios {
		if sc.server != nil && sc.server.cfg.gate {
			sc.target.cookies = perServer[sc.server]
		} else {
			// Same request bytes for the baselines.
			sc.target.cookies = shared
		}
	}
	return nil
}

// checkCookie sends one request with card 0 and its cookie and expects the
// backend's answer with an identity.
func checkCookie(ctx context.Context, p *benchPKI, s *server, cookie string) error {
	c := browserClient(p, p.cards[0])
	defer closeClient(c)
	status, _, hdr, err := do(ctx, c, http.MethodGet, s.baseURL()+benchPath, http.Header{
		"Accept": {browserAccept}, "Cookie": {consentCookie + "=" + cookie},
	}, "")
	switch {
	case err != nil:
		return err
	case status != http.StatusOK:
		return fmt.Errorf("HTTP %d", status)
	case hdr.Get(echoHeader) == "" || hdr.Get(echoHeader) == noUser[0]:
		return errors.New("the backend received no identity")
	}
	return nil
}

// buildCaddy builds the gateway binary with ./xcaddy.sh (xcaddy when
// installed, else go build of ./cmd/caddy), unless -caddy names one.
func (r *runner) buildCaddy(ctx context.Context) error {
	if r.opts.caddy != "" {
		r.caddy = r.opts.caddy
		return nil
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	r.caddy = filepath.Join(r.workDir, "caddy")
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "xcaddy.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CADDY_OUTPUT="+r.caddy)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building caddy: %v\n%s", err, out)
	}
	logf("built %s in %s", r.caddy, time.Since(start).Round(time.Millisecond))
	return nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the cacgate module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// run measures every scenario in every mode, in interleaved rounds: each
// round measures all of them once, starting at a different one each round,
// so slow drifts of the machine spread over all scenarios alike.
func (r *runner) run(ctx context.Context) error {
	r.started = time.Now()
	var cells int
	for _, m := range r.opts.modes {
		for _, sc := range r.scenarios {
			if sc.hasMode(m) {
				cells++
			}
		}
	}
	logf("%d scenarios × modes, %d rounds, %s warm + %s measured each", cells, r.opts.rounds, r.opts.warm, r.opts.measure)
	done := 0
	for round := 1; round <= r.opts.rounds; round++ {
		for _, m := range r.opts.modes {
			var list []*scenario
			for _, sc := range r.scenarios {
				if sc.hasMode(m) {
					list = append(list, sc)
				}
			}
			if len(list) == 0 {
				continue
			}
			shift := (round - 1) % len(list)
			list = append(list[shift:], list[:shift]...)
			for _, sc := range list {
				profile := round == r.opts.rounds && r.opts.pprof != nil && r.opts.pprof.MatchString(sc.id)
				res, err := r.runCell(ctx, sc, m, round, profile)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, m, sc.id, err)
				}
				r.results = append(r.results, res)
				done++
				logf("[%d/%d] round %d %-10s %-12s %8.0f req/s  p50 %-9s p99 %-9s server %s/req%s",
					done, cells*r.opts.rounds, round, m, sc.id, res.RPS, res.P50.Round(time.Microsecond),
					res.P99.Round(time.Microsecond), res.ServerCPU.Round(100*time.Nanosecond), cellNote(res))
			}
		}
	}
	return nil
}

func cellNote(res *cellResult) string {
	var notes []string
	if res.CacheMisses > 0 {
		notes = append(notes, fmt.Sprintf("misses %.0f%%", 100*res.CacheMisses/(res.CacheHits+res.CacheMisses)))
	}
	if res.FloodPosts > 0 {
		notes = append(notes, fmt.Sprintf("flood %.1f posts/s", res.FloodRPS))
	}
	if !res.valid() {
		notes = append(notes, fmt.Sprintf("INVALID: %d bad, %d errors: %s", res.Bad, res.Errors, res.Problem))
	}
	if len(notes) == 0 {
		return ""
	}
	return "  (" + strings.Join(notes, ", ") + ")"
}

// shutdown stops every process the run started.
func (r *runner) shutdown() {
	for _, s := range r.servers {
		s.proc.stop(10 * time.Second)
	}
	if r.backend != nil {
		r.backend.stop(5 * time.Second)
	}
}

func copyFile(src, dst string) error {
	for _, suffix := range []string{"", "-wal"} {
		in, err := os.Open(src + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst+suffix, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err := errors.Join(err, out.Close()); err != nil {
			return err
		}
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
