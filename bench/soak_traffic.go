package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The soak's traffic: what each kind sends and what it expects back. A
// flow stops at its first unexpected answer (recorded with its detail) and
// starts over with its next cycle.

// soakCard is an enrolled card as the steady (cached) traffic uses it: its
// own kept-alive client and the request headers with its consent cookie.
type soakCard struct {
	username string
	client   *http.Client
	hdr      http.Header // read-only once built
}

func newSoakCard(p *benchPKI, c *benchCard, username, cookie string) *soakCard {
	tr := &http.Transport{
		DialContext:        loopbackDial,
		DisableCompression: true,
		// One connection per node, as long as the soak: a card's
		// requests rarely meet (32 workers, 1,000 cards), and a second
		// connection opened when they did would grow the gateways'
		// memory over the run for the client's sake.
		MaxConnsPerHost:       1,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       time.Hour,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		TLSClientConfig: &tls.Config{
			RootCAs:      p.roots,
			ServerName:   "localhost",
			Certificates: []tls.Certificate{c.tls},
		},
	}
	return &soakCard{
		username: username,
		client: &http.Client{
			Transport:     tr,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hdr: http.Header{
			"Accept":          {browserAccept},
			"User-Agent":      {browserAgent},
			"Accept-Language": {browserLang},
			"Cookie":          {"theme=dark; " + consentCookie + "=" + cookie + "; lang=en"},
		},
	}
}

// answer is a response as the flows judge it.
type answer struct {
	status   int
	body     string
	hdr      http.Header
	location string
}

// user is the identity the backend received, "" for none.
func (a answer) user() string {
	if u := a.hdr.Get(echoHeader); u != noUser[0] {
		return u
	}
	return ""
}

// browser is one person's browser in a flow: a card (or none), a cookie
// jar shared by every node (they answer to one host name, as behind a
// load balancer), no redirects followed (each hop is checked).
type browser struct {
	s   *soak
	jar *cookiejar.Jar
	// client keeps cookies in the jar; raw sends only what it is given
	// (to replay cookies the browser no longer has).
	client, raw *http.Client
	rng         *rand.Rand
}

func (s *soak) newBrowser(card *benchCard, rng *rand.Rand) *browser {
	cfg := &tls.Config{RootCAs: s.pki.roots, ServerName: "localhost"}
	if card != nil {
		cfg.Certificates = []tls.Certificate{card.tls}
	}
	tr := &http.Transport{
		DialContext:           loopbackDial,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       time.Minute,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		TLSClientConfig:       cfg,
	}
	jar, _ := cookiejar.New(nil) // never fails without options
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{
		s:      s,
		jar:    jar,
		client: &http.Client{Transport: tr, Jar: jar, Timeout: 40 * time.Second, CheckRedirect: noRedirect},
		raw:    &http.Client{Transport: tr, Timeout: 40 * time.Second, CheckRedirect: noRedirect},
		rng:    rng,
	}
}

func (b *browser) close() { closeClient(b.client) }

// node picks the node for the next request: any, as a load balancer would.
func (b *browser) node() int { return b.rng.IntN(len(b.s.nodes)) }

// jarURL is where the browser's cookies live: every node's address.
var jarURL = &url.URL{Scheme: "https", Host: "localhost", Path: "/"}

// setCookie gives the browser a cookie, as if a node had set it.
func (b *browser) setCookie(name, value string) {
	b.jar.SetCookies(jarURL, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true}})
}

// cookie is the value of the browser's cookie name, "" if it has none.
func (b *browser) cookie(name string) string {
	for _, c := range b.jar.Cookies(jarURL) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// check judges an answer: the outcome and, when unexpected, why.
type check func(a answer) (outcome, string)

// step sends one request of a flow to node n (with the browser's jar, or
// with raw and the Cookie header given), records it under kind, and
// reports whether the flow may go on. A transport error or a 5xx is
// always unexpected; anything else is what check says. A request cut
// short because the soak is ending is not counted.
func (b *browser) step(ctx context.Context, kind soakKind, n int, method, path string, form url.Values, cookie string, want check) (answer, bool) {
	srv := b.s.nodes[n]
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.baseURL()+path, body)
	if err != nil {
		b.s.stats.record(kind, srv.cfg.node, 0, outcomeUnexpected, "soak: bad request", err.Error())
		return answer{}, false
	}
	req.Header.Set("Accept", browserAccept)
	req.Header.Set("User-Agent", browserAgent)
	req.Header.Set("Accept-Language", browserLang)
	if form != nil {
		req.Header.Set("Content-Type", formContent)
		req.Header.Set("Origin", srv.baseURL())
	}
	c := b.client
	if cookie != "" {
		c = b.raw
		req.Header.Set("Cookie", cookie)
	}
	start := time.Now()
	resp, err := c.Do(req)
	var a answer
	if err == nil {
		var raw []byte
		raw, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		a = answer{status: resp.StatusCode, body: string(raw), hdr: resp.Header, location: resp.Header.Get("Location")}
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		return a, false
	}
	o, why := outcomeUnexpected, ""
	switch {
	case err != nil:
		why = describe(method, path, 0, "", "", err)
	case a.status >= 500:
		why = describe(method, path, a.status, a.location, a.body, nil)
	default:
		if o, why = want(a); o == outcomeUnexpected {
			why = describe(method, path, a.status, a.location, a.body, nil) + ": " + why
		}
	}
	cause := ""
	if o == outcomeUnexpected {
		cause = b.s.causeOf(n, start, a.status, err) + " on " + method + " " + pathOnly(path)
	}
	b.s.stats.record(kind, srv.cfg.node, took, o, cause, why)
	return a, o != outcomeUnexpected
}

// Checks.

func wantUser(user string) check {
	return func(a answer) (outcome, string) {
		if a.status == http.StatusOK && a.user() == user {
			return outcomeOK, ""
		}
		return outcomeUnexpected, fmt.Sprintf("want the application as %s (got identity %q)", user, a.user())
	}
}

func wantPage(marker string) check {
	return func(a answer) (outcome, string) {
		if a.status == http.StatusOK && strings.Contains(a.body, marker) {
			return outcomeOK, ""
		}
		return outcomeUnexpected, fmt.Sprintf("want a page with %q", marker)
	}
}

func wantRedirect(prefix string, o outcome) check {
	return func(a answer) (outcome, string) {
		if a.status == http.StatusSeeOther && strings.HasPrefix(a.location, prefix) {
			return o, ""
		}
		return outcomeUnexpected, "want a redirect to " + prefix
	}
}

func wantStatus(status int, o outcome) check {
	return func(a answer) (outcome, string) {
		if a.status == status {
			return o, ""
		}
		return outcomeUnexpected, fmt.Sprintf("want HTTP %d", status)
	}
}

// acceptBanner follows a redirect to the banner (location) and selects
// "I Accept" on a node of its own: the consent cookie comes back, and the
// redirect to where the person was going.
func (b *browser) acceptBanner(ctx context.Context, location string) bool {
	a, ok := b.step(ctx, kindConsent, b.node(), http.MethodGet, location, nil, "", wantPage(`name="csrf"`))
	if !ok {
		return false
	}
	csrf, _ := formValue(a.body, "csrf")
	next, err := formValue(a.body, "next")
	if err != nil {
		next = "/"
	}
	_, ok = b.step(ctx, kindConsent, b.node(), http.MethodPost, "/.cacgate/consent", url.Values{"csrf": {csrf}, "next": {next}}, "",
		func(a answer) (outcome, string) {
			// From a card's second logon on, the gateway shows the last
			// sign-in notice first, which links on to next.
			if a.status != http.StatusSeeOther || (a.location != next && a.location != "/.cacgate/last-signin?next="+url.QueryEscape(next)) {
				return outcomeUnexpected, "want a redirect to " + next + " (or the last sign-in notice before it)"
			}
			if !strings.Contains(strings.Join(a.hdr["Set-Cookie"], "\n"), consentCookie+"=") {
				return outcomeUnexpected, "no consent cookie set"
			}
			return outcomeOK, ""
		})
	return ok
}

// ---- cached cards ----

// cachedWorker sends the steady traffic: an enrolled card with its consent
// cookie asks any node for an application page, at period intervals
// (worker w of workers, evenly staggered), and must get it as its
// account. It never catches up in a burst after falling behind.
func (s *soak) cachedWorker(ctx context.Context, w, workers int, period time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(s.start.UnixNano())))
	next := s.start.Add(period * time.Duration(w) / time.Duration(workers))
	for {
		if err := sleepUntil(ctx, next); err != nil {
			return
		}
		c := s.pool[rng.IntN(len(s.pool))]
		n := rng.IntN(len(s.nodes))
		s.cachedRequest(ctx, c, n)
		next = next.Add(period)
		if now := time.Now(); now.Sub(next) > period {
			next = now
		}
	}
}

func (s *soak) cachedRequest(ctx context.Context, c *soakCard, n int) {
	srv := s.nodes[n]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.baseURL()+benchPath, nil)
	if err != nil {
		s.stats.record(kindCached, srv.cfg.node, 0, outcomeUnexpected, "soak: bad request", err.Error())
		return
	}
	req.Header = c.hdr
	start := time.Now()
	resp, err := c.client.Do(req)
	var a answer
	if err == nil {
		raw, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		err = rerr
		a = answer{status: resp.StatusCode, body: string(raw), hdr: resp.Header, location: resp.Header.Get("Location")}
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		return
	}
	switch {
	case err != nil:
		s.stats.record(kindCached, srv.cfg.node, took, outcomeUnexpected, s.causeOf(n, start, 0, err), describe("GET", benchPath, 0, "", "", err)+" (card "+c.username+")")
	case a.status != http.StatusOK || a.user() != c.username:
		// The banner again without a sign-out, a refusal, another
		// identity: all wrong for an enrolled card with its cookie.
		s.stats.record(kindCached, srv.cfg.node, took, outcomeUnexpected, s.causeOf(n, start, a.status, nil),
			describe("GET", benchPath, a.status, a.location, a.body, nil)+fmt.Sprintf(" (card %s, backend got %q)", c.username, a.user()))
	default:
		s.stats.record(kindCached, srv.cfg.node, took, outcomeOK, "", "")
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	return sleepCtx(ctx, d)
}

// ---- card sign-outs ----

// signoutCard is a card that signs out and back in, over and over.
type signoutCard struct {
	username string
	b        *browser
	// unaccepted: the last cycle ended without the banner accepted again
	// (an answer lost to a config reload, which is tolerated): the next
	// cycle accepts it first instead of counting every later request of
	// the card as unexpected.
	unaccepted bool
}

// signoutLoop takes its cards in turn through a sign-out and back: the
// application, the sign-out page and its post, the banner again (an
// expected redirect: the consent cookie is gone), "I Accept", and the
// application again.
func (s *soak) signoutLoop(ctx context.Context, cards []*signoutCard) {
	for i := 0; ctx.Err() == nil; i++ {
		c := cards[i%len(cards)]
		if s.signoutCycle(ctx, c) {
			s.signouts.Add(1)
		}
		if sleepCtx(ctx, s.opts.soakPause) != nil {
			return
		}
	}
}

func (s *soak) signoutCycle(ctx context.Context, c *signoutCard) bool {
	b := c.b
	if c.unaccepted {
		a, ok := b.step(ctx, kindSignout, b.node(), http.MethodGet, benchPath, nil, "", wantRedirect("/.cacgate/consent?", outcomeRefused))
		if !ok || !b.acceptBanner(ctx, a.location) {
			return false
		}
		c.unaccepted = false
	}
	if _, ok := b.step(ctx, kindSignout, b.node(), http.MethodGet, benchPath, nil, "", wantUser(c.username)); !ok {
		return false
	}
	if _, ok := b.step(ctx, kindSignout, b.node(), http.MethodGet, "/.cacgate/logout", nil, "", wantPage(`action="/.cacgate/logout"`)); !ok {
		return false
	}
	if _, ok := b.step(ctx, kindSignout, b.node(), http.MethodPost, "/.cacgate/logout", url.Values{}, "", func(a answer) (outcome, string) {
		if a.status != http.StatusSeeOther || a.location != "/.cacgate/logout" {
			return outcomeUnexpected, "want a redirect to /.cacgate/logout"
		}
		if !strings.Contains(strings.Join(a.hdr["Set-Cookie"], "\n"), consentCookie+"=;") {
			return outcomeUnexpected, "the consent cookie was not deleted"
		}
		return outcomeOK, ""
	}); !ok {
		return false
	}
	if b.cookie(consentCookie) != "" {
		b.s.stats.record(kindSignout, "-", 0, outcomeUnexpected, "consent cookie kept after sign-out", "the browser kept its consent cookie after signing out")
		return false
	}
	if _, ok := b.step(ctx, kindSignout, b.node(), http.MethodGet, "/.cacgate/logout", nil, "", wantPage("You have signed out")); !ok {
		return false
	}
	a, ok := b.step(ctx, kindSignout, b.node(), http.MethodGet, benchPath, nil, "", wantRedirect("/.cacgate/consent?", outcomeRefused))
	if !ok || !b.acceptBanner(ctx, a.location) {
		c.unaccepted = true
		return false
	}
	_, ok = b.step(ctx, kindSignout, b.node(), http.MethodGet, benchPath, nil, "", wantUser(c.username))
	return ok
}

// ---- first-time cards ----

// newcomer is a card with no account yet, and a roster record.
type newcomer struct {
	card     *benchCard
	family   string // as the card and the roster spell it
	ssn, dob string
	password string
}

// enrolledAccount is an account made during the soak, for the password
// sign-ins.
type enrolledAccount struct {
	username, password string
}

// enrollLoop enrolls the newcomers one after the other, starting one at
// most every soakEnroll (on the slots of outOfStep), until the soak ends
// or they run out.
func (s *soak) enrollLoop(ctx context.Context) {
	rng := rand.New(rand.NewPCG(7, uint64(s.start.UnixNano())))
	for _, nc := range s.newcomers {
		if err := sleepUntil(ctx, s.outOfStep(s.opts.soakEnroll)); err != nil {
			return
		}
		s.enroll(ctx, nc, rng)
	}
	if ctx.Err() == nil {
		s.event("all %d first-time cards enrolled or tried: no more enrollments", len(s.newcomers))
	}
}

var usernameRE = regexp.MustCompile(`<dt>Username</dt><dd>([^<]+)</dd>`)

// enroll takes a first-time card from its first request through the
// banner and self-enrollment (identity, profile and password, security
// questions) to the application, each page from any node; then every node
// must admit it: the node that completed the enrollment at once, the
// others once the change has reached them (within soakSettle).
func (s *soak) enroll(ctx context.Context, nc *newcomer, rng *rand.Rand) {
	b := s.newBrowser(nc.card, rng)
	defer b.close()
	a, ok := b.step(ctx, kindEnroll, b.node(), http.MethodGet, benchPath, nil, "", wantRedirect("/.cacgate/consent?", outcomeOK))
	if !ok || !b.acceptBanner(ctx, a.location) {
		return
	}
	if a, ok = b.step(ctx, kindEnroll, b.node(), http.MethodGet, benchPath, nil, "", wantRedirect("/.cacgate/enroll?", outcomeOK)); !ok {
		return
	}
	if _, ok = b.step(ctx, kindEnroll, b.node(), http.MethodGet, a.location, nil, "", wantPage("/.cacgate/enroll/new")); !ok {
		return
	}
	if a, ok = b.step(ctx, kindEnroll, b.node(), http.MethodGet, "/.cacgate/enroll/new", nil, "", wantPage(`name="csrf"`)); !ok {
		return
	}
	form := url.Values{"csrf": {hidden(a.body, "csrf")}, "idtype": {"ssn"}, "ssn": {nc.ssn}, "dob": {nc.dob}}
	if a, ok = b.step(ctx, kindEnroll, b.node(), http.MethodPost, "/.cacgate/enroll/new", form, "", wantPage(`name="password"`)); !ok {
		return
	}
	form = url.Values{
		"csrf": {hidden(a.body, "csrf")}, "state": {hidden(a.body, "state")},
		"email": {"soak.newcomer@example.com"}, "organization": {"USA"}, "location": {"North America"},
		"password": {nc.password}, "confirm": {nc.password},
	}
	if a, ok = b.step(ctx, kindEnroll, b.node(), http.MethodPost, "/.cacgate/enroll/profile", form, "", wantPage(`name="answer-1"`)); !ok {
		return
	}
	form = url.Values{"csrf": {hidden(a.body, "csrf")}, "state": {hidden(a.body, "state")}}
	for i, q := range []string{"favorite-teacher", "first-pet", "childhood-street"} {
		n := fmt.Sprint(i + 1)
		form.Set("question-"+n, q)
		form.Set("answer-"+n, "soak answer "+n)
		form.Set("confirm-"+n, "soak answer "+n)
	}
	done := b.node()
	var username string
	if _, ok = b.step(ctx, kindEnroll, done, http.MethodPost, "/.cacgate/enroll/questions", form, "", func(a answer) (outcome, string) {
		m := usernameRE.FindStringSubmatch(a.body)
		if a.status != http.StatusOK || !strings.Contains(a.body, "Account registration complete") || m == nil {
			return outcomeUnexpected, "want the registration-complete page with the username"
		}
		username = html.UnescapeString(m[1])
		return outcomeOK, ""
	}); !ok {
		return
	}
	if _, ok = b.step(ctx, kindEnroll, done, http.MethodGet, benchPath, nil, "", wantUser(username)); !ok {
		return
	}
	for n := range s.nodes {
		if n == done {
			continue
		}
		// Another node may still hold "not registered" for the card
		// from an earlier step, until the change reaches it.
		if !s.settle(ctx, b, kindEnroll, n, "", s.enrollSeen, wantUser(username), wantRedirect("/.cacgate/enroll?", outcomeOK)) {
			return
		}
	}
	// The card is not added to the cached traffic: its connections would
	// grow the gateways' memory with the enrollments, and the soak looks
	// for memory that grows by itself.
	s.enrolled.Add(1)
	s.accMu.Lock()
	s.accounts = append(s.accounts, enrolledAccount{username: username, password: nc.password})
	s.accMu.Unlock()
}

// hidden is a hidden field of a page, "" when it has none (the step that
// posts it then fails visibly).
func hidden(page, name string) string {
	v, _ := formValue(page, name)
	return v
}

// settle asks node n for the application page until it answers as final
// says, while it answers as meanwhile says, for at most soakSettle:
// what another node sees once a change made on one node has reached it.
// The time it took goes into lag.
func (s *soak) settle(ctx context.Context, b *browser, kind soakKind, n int, cookie string, lag *lagStat, final, meanwhile check) bool {
	start := time.Now()
	for try := 0; ; try++ {
		deadline := time.Since(start) > s.opts.soakSettle
		a, ok := b.step(ctx, kind, n, http.MethodGet, benchPath, nil, cookie, func(a answer) (outcome, string) {
			if o, _ := final(a); o != outcomeUnexpected {
				return o, ""
			}
			if o, _ := meanwhile(a); o != outcomeUnexpected && !deadline {
				return outcomeOK, ""
			}
			_, why := final(a)
			return outcomeUnexpected, fmt.Sprintf("%s, still not after %s (%d tries)", why, time.Since(start).Round(time.Millisecond), try+1)
		})
		if !ok {
			return false
		}
		if o, _ := final(a); o != outcomeUnexpected {
			lag.add(time.Since(start))
			return true
		}
		if sleepCtx(ctx, 20*time.Millisecond) != nil {
			return false
		}
	}
}

// ---- password sign-ins ----

// outOfStep is the next slot, from now, of a flow repeating every period:
// the slots are half a period and a little more out of step with the
// soak's start, so that the flow's hashes (each holding a 46 MiB argon2id
// buffer for a moment) stay off the samples, taken every whole interval
// from the start. In step, a sign-in's hash was in flight at nearly every
// sample, and the live heap read a buffer high all along.
func (s *soak) outOfStep(period time.Duration) time.Time {
	first := s.start.Add(period/2 + 137*time.Millisecond)
	now := time.Now()
	if now.Before(first) {
		return first
	}
	return first.Add((now.Sub(first)/period + 1) * period)
}

// passwordLoop signs in with the accounts enrolled so far, in turn, one
// cycle at most every soakPassword (on the slots of outOfStep).
func (s *soak) passwordLoop(ctx context.Context) {
	rng := rand.New(rand.NewPCG(11, uint64(s.start.UnixNano())))
	for i := 0; ; {
		if err := sleepUntil(ctx, s.outOfStep(s.opts.soakPassword)); err != nil {
			return
		}
		s.accMu.Lock()
		var acct enrolledAccount
		have := len(s.accounts) > 0
		if have {
			acct = s.accounts[i%len(s.accounts)]
		}
		s.accMu.Unlock()
		if !have {
			// None enrolled yet: look again at the next slot.
			continue
		}
		i++
		if s.passwordCycle(ctx, acct, rng) {
			s.passwordSignins.Add(1)
		}
	}
}

// passwordCycle is a person without a card reader: the no-card page, the
// sign-in, the banner (bound to the user), the application on any node,
// the sign-out; then the ended session's cookies, replayed, must be
// refused: at once by the node that ended it, by the others once the end
// has reached them.
func (s *soak) passwordCycle(ctx context.Context, acct enrolledAccount, rng *rand.Rand) bool {
	b := s.newBrowser(nil, rng)
	defer b.close()
	if _, ok := b.step(ctx, kindPassword, b.node(), http.MethodGet, benchPath, nil, "", wantStatus(http.StatusUnauthorized, outcomeOK)); !ok {
		return false
	}
	next := benchPath
	a, ok := b.step(ctx, kindPassword, b.node(), http.MethodGet, "/.cacgate/login?next="+url.QueryEscape(next), nil, "", wantPage(`name="csrf"`))
	if !ok {
		return false
	}
	form := url.Values{"csrf": {hidden(a.body, "csrf")}, "next": {next}, "username": {acct.username}, "password": {acct.password}}
	if _, ok := b.step(ctx, kindPassword, b.node(), http.MethodPost, "/.cacgate/login", form, "", wantRedirect(next, outcomeOK)); !ok {
		return false
	}
	if b.cookie(sessionCookie) == "" {
		s.stats.record(kindPassword, "-", 0, outcomeUnexpected, "no session cookie after sign-in", "signed in as "+acct.username+" but no session cookie was set")
		return false
	}
	a, ok = b.step(ctx, kindPassword, b.node(), http.MethodGet, benchPath, nil, "", wantRedirect("/.cacgate/consent?", outcomeOK))
	if !ok || !b.acceptBanner(ctx, a.location) {
		return false
	}
	for range 3 {
		if _, ok := b.step(ctx, kindPassword, b.node(), http.MethodGet, benchPath, nil, "", wantUser(acct.username)); !ok {
			return false
		}
	}
	replay := sessionCookie + "=" + b.cookie(sessionCookie) + "; " + consentCookie + "=" + b.cookie(consentCookie)
	ended := b.node()
	if _, ok := b.step(ctx, kindPassword, ended, http.MethodPost, "/.cacgate/logout", url.Values{}, "", wantRedirect("/.cacgate/logout", outcomeOK)); !ok {
		return false
	}
	if _, ok := b.step(ctx, kindPassword, ended, http.MethodGet, benchPath, nil, replay, wantStatus(http.StatusUnauthorized, outcomeRefused)); !ok {
		return false
	}
	for n := range s.nodes {
		if n != ended && !s.settle(ctx, b, kindPassword, n, replay, s.sessionEnded, wantStatus(http.StatusUnauthorized, outcomeRefused), wantUser(acct.username)) {
			return false
		}
	}
	return true
}

// ---- the card the CRL refresh revokes ----

// revokedLoop keeps asking for the application with the card that the CRL
// refresh revokes, on the nodes in turn. Before the new CRL is written it
// must be admitted; after, each node may admit it until it has picked the
// CRL up (its first refusal), and never after; a node that has not refused
// it by the deadline is wrong too. The loop outlives the rest of the
// traffic (stop closed) until every node has refused the card or the
// deadline has passed, so a short soak still sees the refresh through.
func (s *soak) revokedLoop(ctx context.Context, stop <-chan struct{}) {
	b := s.newBrowser(s.revokedCard, rand.New(rand.NewPCG(13, 1)))
	defer b.close()
	b.setCookie(consentCookie, s.revokedCookie)
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-stop:
			if s.crlSettled() {
				return
			}
		default:
		}
		n := i % len(s.nodes)
		sent := time.Now()
		b.step(ctx, kindRevoked, n, http.MethodGet, benchPath, nil, "", func(a answer) (outcome, string) {
			return s.judgeRevoked(n, sent, a)
		})
		if sleepCtx(ctx, s.opts.soakRevokedEvery) != nil {
			return
		}
	}
}

func (s *soak) judgeRevoked(n int, sent time.Time, a answer) (outcome, string) {
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	written := !s.crlWritten.IsZero() && sent.After(s.crlWritten)
	refused := a.status == http.StatusForbidden && strings.Contains(a.body, "has been revoked")
	admitted := a.status == http.StatusOK && a.user() == s.revokedUser
	switch {
	case refused && written:
		if _, seen := s.crlPickedUp[n]; !seen {
			s.crlPickedUp[n] = time.Since(s.crlWritten)
			s.event("node %s refuses the revoked card %s after the CRL was written", s.nodes[n].cfg.node, s.crlPickedUp[n].Round(time.Millisecond))
		}
		return outcomeRefused, ""
	case admitted && !written:
		return outcomeOK, ""
	case admitted:
		if at, seen := s.crlPickedUp[n]; seen {
			return outcomeUnexpected, fmt.Sprintf("revoked card %s admitted again after node %s refused it (from %s after the CRL was written)", s.revokedUser, s.nodes[n].cfg.node, at.Round(time.Millisecond))
		}
		if time.Since(s.crlWritten) > s.crlBound {
			return outcomeUnexpected, fmt.Sprintf("revoked card %s still admitted %s after the CRL was written (bound %s)", s.revokedUser, time.Since(s.crlWritten).Round(time.Millisecond), s.crlBound)
		}
		return outcomeOK, ""
	case refused:
		return outcomeUnexpected, "card refused as revoked before the CRL revoking it was written"
	}
	return outcomeUnexpected, "want the application as " + s.revokedUser + " or the revoked page"
}

// crlSettled: every node has refused the revoked card, or the deadline
// for it has passed (the loop's last requests then count the failure), or
// the CRL was never written.
func (s *soak) crlSettled() bool {
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	return s.crlWritten.IsZero() || len(s.crlPickedUp) == len(s.nodes) || time.Since(s.crlWritten) > s.crlBound+time.Second
}
