package caddymodule

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/storefault"
	"github.com/cacgate/cacgate/internal/testpki"
)

// When the account database cannot serve (the fault run of issue 18: two
// nodes on one PostgreSQL, SQLite on a full disk), every path that needs
// it answers 503 with Retry-After, people get their form again, programs
// JSON, administrators the cause, and the audit trail one entry per card,
// client address and minute.

// pageRequest is a request of the gateway's pages as Caddy hands it to the
// handler, from card c with its banner accepted.
func (p *hotPath) pageRequest(t *testing.T, c *testpki.Card, method, path string, form url.Values) *http.Request {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "https://localhost"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	tok, err := p.h.app.tokens.Issue(fingerprint(c), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", consent.CookieName+"="+tok)
	req.TLS = verifiedState(c, testPKI(t))
	ctx := context.WithValue(req.Context(), caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.7"})
	req = req.WithContext(ctx)
	return req.WithContext(context.WithValue(ctx, caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(req)))
}

// serve runs the handler as Caddy would: an error here would be Caddy's
// empty 500.
func (p *hotPath) serve(t *testing.T, r *http.Request) (*httptest.ResponseRecorder, string) {
	t.Helper()
	w := httptest.NewRecorder()
	if err := p.h.ServeHTTP(w, r, p.next); err != nil {
		t.Fatalf("%s %s: the handler failed (Caddy answers an empty 500): %v", r.Method, r.URL.Path, err)
	}
	return w, w.Body.String()
}

// TestEnrollmentOnFullDisk: the issue's SQLite case through the handler.
// The final enrollment post meets a full disk: not an empty 500 but 503
// with Retry-After and the questions form again (the questions picked, no
// answers); no account; one audit entry however often it is sent again;
// and once the disk has room the form on the page creates the account.
func TestEnrollmentOnFullDisk(t *testing.T) {
	p := newHotPath(t, "off")
	app := p.h.app
	core, audits := observer.New(zapcore.InfoLevel)
	app.audit = audit.New(zap.New(core), "node-a")
	app.audit.Source = requestSource
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	app.audit.CollapseRepeats(ctx, time.Hour)

	rosterFile := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterFile, []byte(testRoster), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := roster.OpenCSV(rosterFile, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := selfservice.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	fault := storefault.New(app.store)
	svc, err := selfservice.New(selfservice.Config{}, selfservice.Deps{
		Roster: src, Accounts: fault, Throttle: fault, States: fault, Sealer: sealer,
		Hasher: credential.NewHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, 1),
		Audit:  app.auditSelfService, AuditRepeatable: app.auditSelfServiceRepeatable, OnChange: app.invalidate,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.h.enrollFlow, err = portal.NewPages(svc); err != nil {
		t.Fatal(err)
	}
	if err := p.h.provisionPortal(); err != nil {
		t.Fatal(err)
	}

	smith := card(t, "smith.jane")
	_, page := p.serve(t, p.pageRequest(t, smith, "GET", "/.cacgate/enroll/new", nil))
	_, page = p.serve(t, p.pageRequest(t, smith, "POST", "/.cacgate/enroll/new", url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {"900-11-1891"}, "dob": {"1985-03-22"}}))
	_, page = p.serve(t, p.pageRequest(t, smith, "POST", "/.cacgate/enroll/profile", url.Values{
		"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")},
		"email": {"jane@example.com"}, "organization": {"USN"}, "location": {"Europe"},
		"password": {"Correct.Horse~Bat9"}, "confirm": {"Correct.Horse~Bat9"}}))
	if !strings.Contains(page, `name="question-1"`) {
		t.Fatalf("no questions form:\n%s", page)
	}
	qs := credential.Questions()
	questions := func(page string) url.Values {
		form := url.Values{"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")}}
		for i := 1; i <= 3; i++ {
			n := fmt.Sprint(i)
			form.Set("question-"+n, qs[i].ID)
			form.Set("answer-"+n, "answer number "+n)
			form.Set("confirm-"+n, "answer number "+n)
		}
		return form
	}

	fault.Fail(storefault.DiskFull(t), "Enroll")
	const tries = 5
	for i := range tries {
		w, next := p.serve(t, p.pageRequest(t, smith, "POST", "/.cacgate/enroll/questions", questions(page)))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "30" ||
			!strings.Contains(next, "No account was created.") || !strings.Contains(next, `<option value="`+qs[2].ID+`" selected>`) {
			t.Fatalf("post %d on a full disk: HTTP %d %v\n%s", i+1, w.Code, w.Header(), next)
		}
		if strings.Contains(next, "answer number") || strings.Contains(next, "disk") {
			t.Fatalf("post %d: the page shows an answer or the database's error:\n%s", i+1, next)
		}
		page = next
	}
	if _, err := app.store.AccountByFingerprint(context.Background(), fingerprint(smith)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("account on a full disk: %v", err)
	}
	entries := audits.FilterMessage("enroll.completed").All()
	if len(entries) != 1 {
		t.Fatalf("%d enroll.completed entries for %d refusals, want 1", len(entries), tries)
	}
	if e := entries[0].ContextMap(); e["outcome"] != "unavailable" || e["reason"] != "account_service_unavailable" ||
		e["cause"] != store.CauseDiskFull || e["source_ip"] != "192.0.2.7" || e["card"] != fingerprint(smith) {
		t.Errorf("entry %v", e)
	}

	fault.Heal()
	w, done := p.serve(t, p.pageRequest(t, smith, "POST", "/.cacgate/enroll/questions", questions(page)))
	if w.Code != http.StatusOK || !strings.Contains(done, "jane.smith") {
		t.Fatalf("once the disk has room: HTTP %d\n%s", w.Code, done)
	}
	// The window ends: the repeats are written as one count.
	stop()
	deadline := time.Now().Add(60 * time.Second)
	for audits.FilterMessage("enroll.completed").FilterField(zap.Int("repeats", tries-1)).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no count of the repeats: %v", audits.FilterMessage("enroll.completed").All())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// switchProxy forwards loopback connections to a server, or, while down,
// takes them and closes them at once, having cut those open when it went
// down: the server, as its clients see it, refuses them.
type switchProxy struct {
	addr, target string
	mu           sync.Mutex
	isDown       bool
	open         []net.Conn
}

func startSwitchProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{addr: ln.Addr().String(), target: target}
	t.Cleanup(func() { ln.Close(); p.down() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p
}

func (p *switchProxy) handle(c net.Conn) {
	p.mu.Lock()
	down := p.isDown
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.isDown {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.open = append(p.open, c, up)
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (p *switchProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isDown = true
	for _, c := range p.open {
		c.Close()
	}
	p.open = nil
}

func (p *switchProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isDown = false
}

// startPostgresGateway runs Caddy in-process with one site, "main", on the
// PostgreSQL database dsn, with the test roster and the test CA's CRL.
func startPostgresGateway(t *testing.T, dsn string) *testGateway {
	t.Helper()
	p := testPKI(t)
	g := &testGateway{t: t, dir: t.TempDir(), ports: map[string]int{}, backend: startBackend(t)}
	os.Mkdir(filepath.Join(g.dir, "crl"), 0o700)
	for name, data := range map[string][]byte{
		"root.pem": p.Root.CertPEM, "intermediate.pem": p.Intermediate.CertPEM, "server.pem": pemChain(p.Server.Chain),
		"server-key.pem": keyPEM(t, p.Server), "crl/intermediate.crl": p.CRL, "roster.csv": []byte(testRoster),
	} {
		if err := os.WriteFile(filepath.Join(g.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.roots = x509.NewCertPool()
	g.roots.AddCert(p.Root.Cert)
	render := func() string {
		ports := freePorts(t, 2)
		g.ports["main"], g.admin = ports[0], fmt.Sprintf("127.0.0.1:%d", ports[1])
		cfg := fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	log {
		output file %[2]s/caddy.log
	}
	persist_config off
	storage file_system %[2]s/storage
	cacgate {
		store postgres %[3]q {
			max_conns 4
			connect_timeout 5s
		}
		cache_ttl 10m
		roster csv %[2]s/roster.csv
		revocation {
			mode crl
			crl_files %[2]s/crl
			crl_issuers %[2]s/intermediate.pem
		}
	}
}

https://localhost:%[4]d {
	tls %[2]s/server.pem %[2]s/server-key.pem {
		client_auth {
			mode verify_if_given
			trust_pool file %[2]s/root.pem
		}
	}
	cacgate {
		contact "Test Help Desk"
	}
	reverse_proxy %[5]s
}
`, g.admin, g.dir, dsn, g.ports["main"], g.backend.addr)
		return cfg
	}
	g.loadCaddyfile(t, render)
	return g
}

// TestPostgresOutage: the issue's cluster case on a real PostgreSQL that
// stops taking connections under a running node. The final enrollment post
// is 503 with the form again, and goes through once the database is back;
// an uncached card is refused 503 and audited once however often it
// retries; the admin API answers 503 with Retry-After and the cause (not
// "500 error"), and so does the CLI, with an error exit; nothing is
// half-written.
func TestPostgresOutage(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startSwitchProxy(t, u.Host)
	u.Host = proxy.addr
	g := startPostgresGateway(t, u.String())
	// The node drops its card cache when its change feed has connected
	// (changes may have been missed before): wait for that, so the cards
	// cached below stay cached through the outage, as they would on a
	// node that has been up a while.
	g.waitForResync(t)
	g.createAccount("1234567890", "john.q.doe")

	// Robert E. Johnson walks to the last enrollment step.
	johnson := g.client(card(t, "johnson.robert.e.jr"))
	g.accept(t, johnson, "main")
	_, page := request(t, johnson, "GET", g.url("main", "/.cacgate/enroll/new"), browser, nil)
	_, page = post(t, johnson, g.url("main", "/.cacgate/enroll/new"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {"900-11-1892"}, "dob": {"1975-04-12"}})
	_, page = post(t, johnson, g.url("main", "/.cacgate/enroll/profile"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")},
		"email": {"person@example.com"}, "organization": {"USMC"}, "location": {"North America"},
		"password": {"Correct.Horse~Bat9"}, "confirm": {"Correct.Horse~Bat9"}})
	if !strings.Contains(page, `name="question-1"`) {
		t.Fatalf("no questions form:\n%s", page)
	}
	qs := credential.Questions()
	questions := func(page string) url.Values {
		form := url.Values{"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")}}
		for i := 1; i <= 3; i++ {
			n := fmt.Sprint(i)
			form.Set("question-"+n, qs[i].ID)
			form.Set("answer-"+n, "answer number "+n)
			form.Set("confirm-"+n, "answer number "+n)
		}
		return form
	}

	proxy.down()

	// The final post: the form again, every time.
	for i := range 3 {
		resp, next := post(t, johnson, g.url("main", "/.cacgate/enroll/questions"), questions(page))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" ||
			!strings.Contains(next, "No account was created.") || !strings.Contains(next, `<option value="`+qs[1].ID+`" selected>`) {
			t.Fatalf("post %d with the database down: HTTP %d %v\n%s", i+1, resp.StatusCode, resp.Header, next)
		}
		if strings.Contains(next, "answer number") || strings.Contains(next, "127.0.0.1") {
			t.Fatalf("the page shows an answer or the database's address:\n%s", next)
		}
		page = next
	}

	// An uncached card, retrying: 503 each time, audited once.
	smith := g.client(card(t, "smith.jane"))
	for i := range 5 {
		resp, body := request(t, smith, "GET", g.url("main", "/reports"), browser, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" || !strings.Contains(body, "temporarily unavailable") {
			t.Fatalf("request %d: HTTP %d\n%s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := request(t, smith, "GET", g.url("main", "/reports"), http.Header{"Accept": {"application/json"}}, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || jsonProblem(t, body) != "account_service_unavailable" {
		t.Fatalf("API client: HTTP %d %s", resp.StatusCode, body)
	}
	var denied []map[string]any
	for _, e := range g.auditEntries(t, "access.denied") {
		if e["reason"] == "account_service_unavailable" {
			denied = append(denied, e)
		}
	}
	if len(denied) != 1 || denied[0]["cause"] != store.CauseUnreachable || denied[0]["cert_sha256"] != fingerprint(card(t, "smith.jane")) {
		t.Fatalf("access.denied entries for 6 refusals: %v", denied)
	}
	if got := g.auditEntries(t, "enroll.questions"); len(got) != 1 || got[0]["outcome"] != "unavailable" || got[0]["cause"] != store.CauseUnreachable {
		t.Fatalf("enroll.questions entries for 3 refusals: %v", got)
	}

	// The admin API: 503, Retry-After, the cause, and audited.
	code, hdr, answer := g.adminRaw("POST", "/cacgate/accounts/john.q.doe/disable", "", nil)
	var unavailable struct{ Error, Reason, Cause string }
	if err := json.Unmarshal(answer, &unavailable); err != nil || code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "30" ||
		unavailable.Reason != "unavailable" || unavailable.Cause != store.CauseUnreachable || !strings.Contains(unavailable.Error, "cannot be reached") {
		t.Fatalf("disable with the database down: HTTP %d %v %s", code, hdr, answer)
	}
	if e := lastAudit(t, filepath.Join(g.dir, "caddy.log"), "admin.account.disabled"); e["outcome"] != audit.Failure ||
		e["reason"] != "unavailable" || e["cause"] != store.CauseUnreachable {
		t.Fatalf("audit %v", e)
	}
	if code, _, answer := g.adminRaw("GET", "/cacgate/accounts/export", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(string(answer), `"cause"`) {
		t.Fatalf("export: HTTP %d %s", code, answer)
	}

	// The CLI, through the server and on the database: a clear message and
	// an error (the command exits 1).
	if _, _, err := cli(t, "", "disable", "john.q.doe", "--address", g.admin); err == nil ||
		!strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "cannot be reached (unreachable)") {
		t.Fatalf("CLI through the API: %v", err)
	}
	cf := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cf, []byte(fmt.Sprintf("{\n\tadmin off\n\tcacgate {\n\t\tstore postgres %q {\n\t\t\tconnect_timeout 5s\n\t\t}\n\t}\n}\n", u.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, "", "disable", "john.q.doe", "--config", cf); err == nil || !strings.Contains(err.Error(), "cannot be reached (unreachable)") {
		t.Fatalf("CLI on the database: %v", err)
	}

	// Back: the form on the page goes through, the account is complete,
	// and the disable that failed had changed nothing.
	proxy.up()
	var acct AccountJSON
	deadline := time.Now().Add(60 * time.Second)
	for g.adminDo("GET", "/cacgate/accounts/john.q.doe", nil, &acct) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the database did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if acct.Status != "active" {
		t.Fatalf("john.q.doe after the failed disable: %+v", acct)
	}
	resp, page = post(t, johnson, g.url("main", "/.cacgate/enroll/questions"), questions(page))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "robert.e.johnson") {
		t.Fatalf("once the database is back: HTTP %d\n%s", resp.StatusCode, page)
	}
	if code := g.adminDo("GET", "/cacgate/accounts/robert.e.johnson", nil, &acct); code != http.StatusOK || len(acct.Cards) != 1 || !acct.HasPassword {
		t.Fatalf("enrolled account: HTTP %d %+v", code, acct)
	}
}

// waitForResync waits until the node's change feed listens (and so has
// dropped the card cache once): cacgate_change_feed_connected is 1.
func (g *testGateway) waitForResync(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + g.admin + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if line == "cacgate_change_feed_connected 1" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change feed did not connect: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
