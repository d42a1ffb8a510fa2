package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// The soak (go run ./bench -soak 10m): the gateway under mixed traffic for
// a long while, on one node (SQLite) and on two (one PostgreSQL database),
// to see that nothing goes wrong (every answer is the one its scenario
// expects) and that nothing drifts (latency and memory stay flat). See
// README, Performance, "Soak".

// sessionCookie is the password sign-in's cookie.
const sessionCookie = "__Host-cacgate-session"

// signoutCardsPerLoop is how many cards each sign-out loop takes in turn.
const signoutCardsPerLoop = 4

// soak is one soak run on one topology.
type soak struct {
	opts        options
	caddy       string
	dir         string // work directory: PKI, roster, database, servers
	out         string // results: the heap profiles
	pki         *benchPKI
	nodes       []*server
	backend     *proc
	backendAddr string
	pg          *pgtest.Server
	stats       *soakStats
	start       time.Time

	// pool is the cached traffic's cards.
	pool []*soakCard

	signoutLoops [][]*signoutCard
	newcomers    []*newcomer
	accMu        sync.Mutex
	accounts     []enrolledAccount

	revokedCard   *benchCard
	revokedUser   string
	revokedCookie string

	// The CRL refresh: when the new CRL was written, and how long after
	// that each node (by index) first refused the card.
	crlMu       sync.Mutex
	crlWritten  time.Time
	crlPickedUp map[int]time.Duration
	crlBound    time.Duration

	eventsMu sync.Mutex
	events   []soakEvent

	// reloading is each node's last config reload, to tell the transport
	// errors a reload causes from others.
	reloading []*reloadWindow

	// How long a change on one node took to show on the others.
	enrollSeen, sessionEnded *lagStat

	signouts, enrolled, passwordSignins, reloads atomic.Int64
	samples                                      []soakSample
}

// soakEvent is something that happened once, for the report.
type soakEvent struct {
	At   time.Duration `json:"at_ns"`
	What string        `json:"what"`
}

func (s *soak) event(format string, args ...any) {
	e := soakEvent{At: time.Since(s.start), What: fmt.Sprintf(format, args...)}
	logf("+%s %s", e.At.Round(time.Second), e.What)
	s.eventsMu.Lock()
	s.events = append(s.events, e)
	s.eventsMu.Unlock()
}

// lagStat is how long changes took to reach another node.
type lagStat struct {
	mu  sync.Mutex
	n   int
	sum time.Duration
	max time.Duration
}

func (l *lagStat) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.sum += d
	l.max = max(l.max, d)
}

func (l *lagStat) summary() lagSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := lagSummary{Count: l.n, Max: l.max}
	if l.n > 0 {
		s.Mean = l.sum / time.Duration(l.n)
	}
	return s
}

type lagSummary struct {
	Count int           `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	Max   time.Duration `json:"max_ns"`
}

// runSoak soaks each topology asked for, one after the other, and returns
// the markdown report.
func runSoak(ctx context.Context, opts options) (string, error) {
	loadBefore := loadavg()
	r, cleanup, err := newRunner(opts, "cacgate-soak-")
	if err != nil {
		return "", err
	}
	defer cleanup()
	work, out := r.workDir, r.outDir
	if err := r.buildCaddy(ctx); err != nil {
		return "", err
	}
	r.started = time.Now()
	rep := &soakReport{Command: opts.command}
	for _, nodes := range opts.soakNodes {
		res, err := soakTopology(ctx, opts, r.caddy, filepath.Join(work, fmt.Sprintf("soak-%d", nodes)), out, nodes)
		if nodes > 1 && errors.Is(err, pgtest.ErrNotInstalled) && !opts.soakNodesSet {
			logf("two-node soak skipped: %v", err)
			res, err = &soakResult{Nodes: nodes, Skipped: err.Error()}, nil
		}
		if err != nil {
			return "", fmt.Errorf("%d-node soak: %w", nodes, err)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.Machine = r.machine(ctx, loadBefore)
	md := rep.markdown()
	if err := writeJSONValue(filepath.Join(out, "soak.json"), rep); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "soak.md"), []byte(md), 0o644); err != nil {
		return "", err
	}
	logf("results in %s (soak.json, soak.md)", out)
	if opts.keep {
		logf("work directory kept: %s", work)
	}
	return md, nil
}

// soakTopology runs the soak on nodes gateways, in dir, and returns its
// result; the heap profiles go to out.
func soakTopology(ctx context.Context, opts options, caddyBin, dir, out string, nodes int) (*soakResult, error) {
	s := &soak{
		opts: opts, caddy: caddyBin, dir: dir, out: out, stats: newSoakStats(),
		crlPickedUp: map[int]time.Duration{}, enrollSeen: &lagStat{}, sessionEnded: &lagStat{},
	}
	defer s.shutdown()
	logf("soak on %d node(s): setting up in %s", nodes, dir)
	if err := s.setup(ctx, nodes); err != nil {
		return nil, err
	}
	loadBefore := loadavg()
	s.run(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.result(loadBefore), nil
}

// setup makes the PKI, the roster and the account database, starts the
// backend and the gateways, and accepts the banner for every seeded card.
func (s *soak) setup(ctx context.Context, nodes int) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	// The seeded cards: the cached ones, the sign-out loops' and, last,
	// the one the CRL refresh revokes.
	seeded := s.opts.soakCards + s.opts.soakSignout*signoutCardsPerLoop + 1
	start := time.Now()
	var err error
	if s.pki, err = makePKI(s.dir, seeded); err != nil {
		return fmt.Errorf("making the PKI: %w", err)
	}
	if err := s.makeNewcomers(); err != nil {
		return err
	}
	logf("minted %d enrolled and %d first-time cards in %s", seeded, len(s.newcomers), time.Since(start).Round(time.Millisecond))
	rosterPath := filepath.Join(s.dir, "roster.csv")
	if err := os.WriteFile(rosterPath, s.roster(), 0o600); err != nil {
		return err
	}

	consentKey := make([]byte, 32)
	if _, err := rand.Read(consentKey); err != nil {
		return err
	}
	cfg := serverConfig{
		gate: true, roster: rosterPath, passwordLogin: true,
		crlRefresh: s.opts.soakCRLRefresh, maxCacheAge: time.Minute, contact: "bench soak",
	}
	var st *store.SQLStore
	if nodes == 1 {
		cfg.db = filepath.Join(s.dir, "cacgate.db")
		st, err = store.OpenSQLite(ctx, cfg.db)
	} else {
		if s.pg, err = pgtest.StartServer(); err != nil {
			return err
		}
		if cfg.pgDSN, err = s.pg.CreateDatabase("cacgate_soak"); err != nil {
			return err
		}
		st, err = store.OpenPostgres(ctx, cfg.pgDSN, store.PostgresOptions{})
	}
	if err != nil {
		return fmt.Errorf("opening the account database: %w", err)
	}
	seed, err := seedInto(ctx, st, newLayout(seeded, seeded), s.pki.cards, consentKey)
	st.Close()
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	logf("seeded %d accounts in %s", seed.Accounts, seed.Took.Round(time.Millisecond))

	if s.backend, s.backendAddr, err = startBackendProc(s.dir); err != nil {
		return err
	}
	for i := range nodes {
		c := cfg
		c.node = string(rune('a' + i))
		c.name = "node-" + c.node
		srv, err := startServer(ctx, s.caddy, s.dir, c, s.pki, s.backendAddr)
		if err != nil {
			return err
		}
		s.nodes = append(s.nodes, srv)
		s.reloading = append(s.reloading, &reloadWindow{})
	}
	logf("started %d gateway(s)", nodes)

	start = time.Now()
	cookies, err := acceptAll(ctx, s.pki, s.nodes[0].baseURL(), s.pki.cards, s.opts.acceptParallel)
	if err != nil {
		return fmt.Errorf("accepting the banner: %w", err)
	}
	for _, srv := range s.nodes {
		if err := checkCookie(ctx, s.pki, srv, cookies[0]); err != nil {
			return fmt.Errorf("node %s refuses a consent cookie from node %s: %w", srv.cfg.node, s.nodes[0].cfg.node, err)
		}
	}
	logf("accepted the banner for %d cards in %s", len(cookies), time.Since(start).Round(time.Millisecond))

	for i := range s.opts.soakCards {
		s.pool = append(s.pool, newSoakCard(s.pki, s.pki.cards[i], benchUsername(i), cookies[i]))
	}
	rng := mrand.New(mrand.NewPCG(3, uint64(time.Now().UnixNano())))
	i := s.opts.soakCards
	for range s.opts.soakSignout {
		var loop []*signoutCard
		for range signoutCardsPerLoop {
			b := s.newBrowser(s.pki.cards[i], mrand.New(mrand.NewPCG(rng.Uint64(), rng.Uint64())))
			b.setCookie(consentCookie, cookies[i])
			loop = append(loop, &signoutCard{username: benchUsername(i), b: b})
			i++
		}
		s.signoutLoops = append(s.signoutLoops, loop)
	}
	s.revokedCard, s.revokedUser, s.revokedCookie = s.pki.cards[i], benchUsername(i), cookies[i]
	s.crlBound = s.opts.soakCRLRefresh + time.Minute + 15*time.Second
	return nil
}

// makeNewcomers mints the first-time cards: enough for one enrollment per
// soakEnroll over the whole soak, each with a roster record and a name of
// its own (namesakes would make the usernames' numbering, not the soak,
// the subject).
func (s *soak) makeNewcomers() error {
	n := min(int(s.opts.soak/s.opts.soakEnroll)+5, 5000)
	letters := mrand.New(mrand.NewPCG(5, uint64(time.Now().UnixNano())))
	for i := range n {
		card, err := mintCard(s.pki.pki.Intermediate, testpki.CardSpec{
			Name: fmt.Sprintf("newcomer%05d", i), Family: "ENROLLEE" + alpha(i), Given: "WINIFRED", Middle: "Q",
			EDIPI: fmt.Sprintf("4%09d", i),
		})
		if err != nil {
			return err
		}
		// 16 characters: upper and lower case, a digit and specials, none
		// of the name's letters in a row.
		pw := make([]byte, 0, 16)
		pw = append(pw, "Xy7.~"...)
		for len(pw) < 16 {
			pw = append(pw, "XYZxyz0123456789"[letters.IntN(16)])
		}
		s.newcomers = append(s.newcomers, &newcomer{card: card, family: "ENROLLEE" + alpha(i), ssn: fmt.Sprintf("900-77-%04d", i+1), dob: "1985-05-05", password: string(pw)})
	}
	return nil
}

// alpha spells i in letters (0 A, 25 Z, 26 BA, ...): names take no digits.
func alpha(i int) string {
	s := string(rune('A' + i%26))
	for i /= 26; i > 0; i /= 26 {
		s = string(rune('A'+i%26)) + s
	}
	return s
}

func (s *soak) roster() []byte {
	var b strings.Builder
	b.WriteString("edipi,ssn,fin,dob,pebd,last,first,middle,category,organization\n")
	for _, nc := range s.newcomers {
		fmt.Fprintf(&b, "%s,%s,,%s,,%s,WINIFRED,Q,Active Army,Soak Division\n", nc.card.edipi, nc.ssn, nc.dob, nc.family)
	}
	return []byte(b.String())
}

// run sends the mixed traffic for the soak's duration and samples the
// gateways every interval.
func (s *soak) run(ctx context.Context) {
	s.start = time.Now()
	s.stats.start = s.start
	traffic, cancel := context.WithTimeout(ctx, s.opts.soak)
	defer cancel()
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	workers := s.opts.soakWorkers
	period := time.Duration(float64(time.Second) * float64(workers) / float64(s.opts.soakRate))
	logf("soak on %d node(s) for %s: %d cached cards at %d req/s (%d workers), %d sign-out loops, an enrollment every %s, a password sign-in every %s, a config reload every %s, a CRL refresh at +%s",
		len(s.nodes), s.opts.soak, s.opts.soakCards, s.opts.soakRate, workers, len(s.signoutLoops), s.opts.soakEnroll, s.opts.soakPassword, s.opts.soakReload, s.crlAt())
	for w := range workers {
		spawn(func() { s.cachedWorker(traffic, w, workers, period) })
	}
	for _, loop := range s.signoutLoops {
		spawn(func() { s.signoutLoop(traffic, loop) })
	}
	spawn(func() { s.enrollLoop(traffic) })
	spawn(func() { s.passwordLoop(traffic) })
	spawn(func() { s.reloadLoop(traffic) })
	spawn(func() { s.refreshCRL(traffic) })
	stop := make(chan struct{})
	revoked := make(chan struct{})
	go func() {
		defer close(revoked)
		s.revokedLoop(ctx, stop)
	}()

	s.sampleLoop(ctx, traffic)
	wg.Wait()
	close(stop)
	<-revoked
	s.crlMu.Lock()
	if !s.crlWritten.IsZero() && len(s.crlPickedUp) < len(s.nodes) {
		s.stats.record(kindRevoked, "-", 0, outcomeUnexpected, "revoked card still admitted", fmt.Sprintf("only %d of %d nodes refused the revoked card within %s of the CRL refresh", len(s.crlPickedUp), len(s.nodes), s.crlBound))
	}
	s.crlMu.Unlock()
	for _, c := range s.pool {
		closeClient(c.client)
	}
	for _, loop := range s.signoutLoops {
		for _, c := range loop {
			c.b.close()
		}
	}
}

func (s *soak) crlAt() time.Duration { return (s.opts.soak / 3).Round(time.Second) }

// refreshCRL writes, a third of the way in, a new CRL that also revokes
// one enrolled card, by renaming it over the file the gateways read (as a
// cron job fetching CRLs would): they poll it every crlRefresh.
func (s *soak) refreshCRL(ctx context.Context) {
	if sleepUntil(ctx, s.start.Add(s.crlAt())) != nil {
		return
	}
	old, err := x509.ParseRevocationList(s.pki.pki.CRL)
	if err != nil {
		s.stats.record(kindRevoked, "-", 0, outcomeUnexpected, "soak: CRL refresh failed", "reading the first CRL: "+err.Error())
		return
	}
	revoked := []*x509.Certificate{s.revokedCard.cert}
	for _, e := range old.RevokedCertificateEntries {
		revoked = append(revoked, &x509.Certificate{SerialNumber: e.SerialNumber})
	}
	now := time.Now()
	der, err := s.pki.pki.Intermediate.CRL(revoked, now, now.Add(30*24*time.Hour), old.Number.Int64()+1)
	if err == nil {
		err = os.WriteFile(s.pki.crlFile+".new", der, 0o600)
	}
	if err != nil {
		s.stats.record(kindRevoked, "-", 0, outcomeUnexpected, "soak: CRL refresh failed", "making the new CRL: "+err.Error())
		return
	}
	// Written is set before the rename: a refusal of a request sent
	// before it would be a refusal with no CRL to justify it.
	s.crlMu.Lock()
	s.crlWritten = time.Now()
	s.crlMu.Unlock()
	if err := os.Rename(s.pki.crlFile+".new", s.pki.crlFile); err != nil {
		s.stats.record(kindRevoked, "-", 0, outcomeUnexpected, "soak: CRL refresh failed", "replacing the CRL: "+err.Error())
		return
	}
	s.event("new CRL written (number %d, %d entries): it revokes card %s", old.Number.Int64()+1, len(revoked), s.revokedUser)
}

// reloadLoop reloads every node's configuration every soakReload, half
// an interval in (so that reloads fall between the samples), one node
// after the other (a rolling change), through the admin API as `caddy
// reload` does: each time with another contact line, so the config really
// changes, and checks that the node runs the new one.
func (s *soak) reloadLoop(ctx context.Context) {
	for gen := 1; ; gen++ {
		at := s.start.Add(s.opts.soakReload/2 + time.Duration(gen-1)*s.opts.soakReload)
		if sleepUntil(ctx, at) != nil {
			return
		}
		for n, srv := range s.nodes {
			if ctx.Err() != nil {
				return
			}
			s.reloading[n].begin()
			s.reload(ctx, srv, gen)
			s.reloading[n].finish()
		}
	}
}

// adminClient talks to the admin API on a new connection each time: a
// reload replaces the admin server, closing its connections.
var adminClient = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

func (s *soak) reload(ctx context.Context, srv *server, gen int) {
	srv.cfg.contact = fmt.Sprintf("bench soak, config %d", gen)
	body := srv.caddyfile(s.pki, s.backendAddr)
	start := time.Now()
	status, page, err := adminDo(ctx, http.MethodPost, srv.adminURL()+"/load", "text/caddyfile", body)
	took := time.Since(start)
	if ctx.Err() != nil {
		return
	}
	if err == nil && status == http.StatusOK {
		// The node must now run the new config.
		var cfg string
		status, cfg, err = adminDo(ctx, http.MethodGet, srv.adminURL()+"/config/", "", "")
		if err == nil && status == http.StatusOK && !strings.Contains(cfg, srv.cfg.contact) {
			err = fmt.Errorf("after the reload the node's config lacks %q", srv.cfg.contact)
		}
		page = ""
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil || status != http.StatusOK {
		s.stats.record(kindReload, srv.cfg.node, took, outcomeUnexpected, causeOf(status, err), describe("POST", "/load", status, "", page, err))
		return
	}
	s.reloads.Add(1)
	s.stats.record(kindReload, srv.cfg.node, took, outcomeOK, "", "")
}

// causeOf is causeOf for a request to node n sent at sent: a transport
// error or a 5xx to one that was in flight while the node's config was
// being reloaded is told apart. A wrong answer is never put down to a
// reload (a revoked card admitted is wrong whenever it happens).
func (s *soak) causeOf(n int, sent time.Time, status int, err error) string {
	if (err != nil || status >= 500) && s.reloading[n].overlaps(sent, time.Now()) {
		return causeOf(status, err) + duringReload
	}
	return causeOf(status, err)
}

// duringReload ends the cause of an unexpected answer to a request that
// was in flight during a config reload.
const duringReload = " during a config reload"

func adminDo(ctx context.Context, method, u, contentType, body string) (int, string, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// shutdown stops what setup started.
func (s *soak) shutdown() {
	for _, srv := range s.nodes {
		srv.proc.stop(10 * time.Second)
	}
	if s.backend != nil {
		s.backend.stop(5 * time.Second)
	}
	if s.pg != nil {
		if err := s.pg.Close(); err != nil {
			logf("stopping PostgreSQL: %v", err)
		}
	}
}
