package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/testpki"
)

// A cluster: two gateway processes (the built binary) sharing one real
// PostgreSQL database, as several nodes behind a load balancer would.
//
// The card cache TTL is ten minutes, far longer than the test: every
// change seen on the other node within the test's few-second bound got
// there through PostgreSQL's LISTEN/NOTIFY, not through the cache expiring.

// clusterCacheTTL is the nodes' cache_ttl unless a test sets its own.
const clusterCacheTTL = "10m"

// propagationBound is how long a change made on one node may take to
// apply on the other: NOTIFY delivery plus one request, normally
// milliseconds. It is a minute because a busy machine can leave a node
// without a CPU for seconds, and still far below clusterCacheTTL, so a
// change seen within it came through NOTIFY.
const propagationBound = time.Minute

// requestTimeout bounds every request a test sends: it turns a hung node
// into a failure, and is not a budget (on a busy machine one enrollment
// step, three argon2id hashes back to back with the hasher's rests
// between them, takes many seconds).
const requestTimeout = 2 * time.Minute

// pollInterval is how often waitFor checks its condition.
const pollInterval = 50 * time.Millisecond

// clusterOptions are what a test may choose about its cluster; the zero
// value is what the cluster tests use.
type clusterOptions struct {
	// namesakes: see clusterRoster.
	namesakes int
	// dsn is the database the nodes share; default a fresh one on the
	// test binary's shared server (pgtest.NewDatabase). A test that stops
	// and starts the database passes one on a server of its own
	// (pgtest.NewServer).
	dsn string
	// sqlite makes the nodes use one SQLite file in the cluster's
	// directory instead of PostgreSQL (several processes on one host).
	sqlite bool
	// nodes is how many nodes to start; default 2.
	nodes int
	// cacheTTL is the nodes' cache_ttl; default clusterCacheTTL.
	cacheTTL string
	// site is added to the site's cacgate block.
	site string
}

type cluster struct {
	dir   string
	dsn   string
	opts  clusterOptions
	pki   *testpki.PKI
	roots *x509.CertPool
	nodes []*node

	// taken are the ports handed to the cluster's nodes: the nodes start
	// at the same time, and a port one picked (and let go of, to give it
	// to Caddy) is free again for the kernel to hand the other before the
	// first has bound it.
	mu    sync.Mutex
	taken map[string]bool
}

// ports returns n free ports no other node of the cluster was given.
func (c *cluster) ports(t *testing.T, n int) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken == nil {
		c.taken = map[string]bool{}
	}
	for range 100 {
		ports := freePorts(t, n)
		clash := false
		for _, p := range ports {
			clash = clash || c.taken[p]
		}
		if !clash {
			for _, p := range ports {
				c.taken[p] = true
			}
			return ports
		}
	}
	t.Fatal("no free ports apart from the other nodes'")
	return nil
}

type node struct {
	name  string
	site  string // host:port of the gateway site
	admin string // host:port of the admin API
	file  string // its Caddyfile
	log   string // Caddy's output, if it failed to start
	proc  *caddyProc
}

// clusterRoster is the personnel roster both nodes check enrollments
// against: the namesakes of TestClusterConcurrentEnrollment and the person
// of TestCluster.
func clusterRoster(namesakes int) string {
	var b strings.Builder
	b.WriteString("edipi,ssn,fin,dob,pebd,last,first,middle,category,organization\n")
	b.WriteString("1234567801,900-33-0001,,1981-02-03,,TANAKA,KEN,R,Active Navy,USS Example\n")
	for i := range namesakes {
		fmt.Fprintf(&b, "%d,900-44-%04d,,1990-01-01,,GARCIA,LUIS,A,Active Air Force,\n", 1234568000+i, i+1)
	}
	return b.String()
}

func startCluster(t *testing.T, namesakes int) *cluster {
	t.Helper()
	return startClusterWith(t, clusterOptions{namesakes: namesakes})
}

func startClusterWith(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	if opts.nodes == 0 {
		opts.nodes = 2
	}
	if opts.cacheTTL == "" {
		opts.cacheTTL = clusterCacheTTL
	}
	c := &cluster{dir: t.TempDir(), dsn: opts.dsn, opts: opts, nodes: make([]*node, opts.nodes)}
	if c.dsn == "" && !opts.sqlite {
		c.dsn = pgtest.NewDatabase(t)
	}
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.pki = p
	if err := p.WriteDir(filepath.Join(c.dir, "pki"), "x"); err != nil {
		t.Fatal(err)
	}
	c.roots = x509.NewCertPool()
	c.roots.AddCert(p.Root.Cert)
	if err := os.WriteFile(filepath.Join(c.dir, "roster.csv"), []byte(clusterRoster(opts.namesakes)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The nodes start at the same time, as after a deploy: their
	// migrations race and must take turns.
	var wg sync.WaitGroup
	for i := range c.nodes {
		name := string(rune('a' + i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.nodes[i] = c.startNode(t, name)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return c
}

const nodeCaddyfile = `{
	admin 127.0.0.1:{ADMIN}
	auto_https off
	storage file_system {DIR}/data-{NODE}
	cacgate {
		node {NODE}
		{STORE}
		cache_ttl {TTL}
		# A hash waits for the hasher's slot as long as the gateway allows,
		# not the default 10s: many enrollments at once on a busy machine
		# wait longer than that, and a 503 is not what the tests are about.
		hash_wait 5m
		revocation off
		roster csv {DIR}/roster.csv
	}
	log cacgate_audit {
		include http.handlers.cacgate.audit
		output file {DIR}/audit-{NODE}.log
		format json
	}
}

https://localhost:{PORT} {
	tls {DIR}/pki/server.pem {DIR}/pki/server-key.pem {
		client_auth {
			mode verify_if_given
			trust_pool file {DIR}/pki/root.pem
		}
	}
	# Two cacgate blocks compose: every request passes the outer one, and
	# /ops/* must also pass the inner one's access rule.
	route /ops/* {
		cacgate {
			allow group ops
		}
		respond "ops user={http.auth.user.id} node={NODE}" 200
	}
	cacgate {
		password_login on
		{SITE}
	}
	respond "user={http.auth.user.id} node={NODE}" 200
}
`

// startNode runs one gateway process on fresh ports (retrying when another
// process takes a port first) and waits for its admin API.
func (c *cluster) startNode(t *testing.T, name string) *node {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n, ok := c.tryNode(t, name)
		if ok {
			return n
		}
		if attempt == 3 {
			t.Errorf("node %s did not come up:\n%s", name, lastLines(n.log, 40))
			return nil
		}
	}
}

func (c *cluster) tryNode(t *testing.T, name string) (*node, bool) {
	ports := c.ports(t, 2)
	n := &node{name: name, site: "localhost:" + ports[0], admin: "127.0.0.1:" + ports[1], file: filepath.Join(c.dir, "Caddyfile-"+name)}
	c.writeConfig(t, n, c.opts.site)
	// Each probe may take long on a busy machine; startCaddy bounds the wait.
	hc := &http.Client{Timeout: 10 * time.Second}
	n.proc, n.log = startCaddyProc(t, c.dir, n.file, "node "+name, c.env(), func() bool {
		resp, err := hc.Get("http://" + n.admin + "/cacgate/accounts")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return n, n.proc != nil
}

// env is the environment the nodes (and the CLI on their database) run
// with.
func (c *cluster) env() []string {
	return []string{"CACGATE_PG_DSN=" + c.dsn}
}

// writeConfig writes node n's Caddyfile, with site added to the site's
// cacgate block.
func (c *cluster) writeConfig(t *testing.T, n *node, site string) {
	t.Helper()
	_, sitePort, _ := strings.Cut(n.site, ":")
	_, adminPort, _ := strings.Cut(n.admin, ":")
	storeLine := "store postgres {env.CACGATE_PG_DSN}"
	if c.opts.sqlite {
		storeLine = "store sqlite " + c.sqlitePath()
	}
	cfg := strings.NewReplacer("{ADMIN}", adminPort, "{PORT}", sitePort, "{DIR}", c.dir, "{NODE}", n.name,
		"{TTL}", c.opts.cacheTTL, "{STORE}", storeLine, "{SITE}", site).Replace(nodeCaddyfile)
	if err := os.WriteFile(n.file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sqlitePath is the nodes' database file with clusterOptions.sqlite.
func (c *cluster) sqlitePath() string {
	return filepath.Join(c.dir, "accounts.db")
}

// restartNode starts node i again (on fresh ports) after it was killed or
// stopped, and returns it.
func (c *cluster) restartNode(t *testing.T, i int) *node {
	t.Helper()
	if old := c.nodes[i]; !old.proc.Exited() {
		old.proc.stop()
	}
	n := c.startNode(t, c.nodes[i].name)
	if n == nil {
		t.FailNow()
	}
	c.nodes[i] = n
	return n
}

// browser is a person's browser with one card: it keeps cookies across the
// nodes (they share the host name, as behind a load balancer) and does not
// follow redirects.
func (c *cluster) browser(t *testing.T, card *testpki.Card) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: requestTimeout,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: c.roots, ServerName: "localhost", Certificates: []tls.Certificate{card.TLS},
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// enroll walks a card through self-enrollment on node n (banner, identity,
// profile and password, questions) and returns the completion page.
func enroll(t *testing.T, b *http.Client, n *node, ssn, dob string) string {
	t.Helper()
	// A banner accepted on the other node counts here too (the nodes
	// share the consent key); otherwise accept it now.
	resp, page := get(t, b, "https://"+n.site+"/", "text/html")
	if strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/consent") {
		resp, page = acceptBanner(t, b, n.site, "/")
	}
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/enroll") {
		t.Fatalf("node %s: unregistered card after the banner: HTTP %d, Location %q\n%s", n.name, resp.StatusCode, resp.Header.Get("Location"), page)
	}
	page = enrollSteps(t, b, n, ssn, dob)
	if !createdUsername.MatchString(page) || !strings.Contains(page, "HTTP 200") {
		t.Fatalf("node %s: enrollment did not complete:\n%s", n.name, page)
	}
	return page
}

var createdUsername = regexp.MustCompile(`[a-z]+\.[a-z]\.[a-z]+[0-9]*`)

// TestCluster: enroll through node A, get in through node B; disable
// through node B's admin API, refused on node A within the bound.
func TestCluster(t *testing.T) {
	c := startCluster(t, 0)
	a, b := c.nodes[0], c.nodes[1]
	card, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{Name: "tanaka", Family: "TANAKA", Given: "KEN", Middle: "R", EDIPI: "1234567801", Affiliation: "USN"})
	if err != nil {
		t.Fatal(err)
	}
	br := c.browser(t, card)

	// Node B sees the card first and caches "not registered".
	if resp, _ := acceptBanner(t, br, b.site, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("node b before enrollment: HTTP %d", resp.StatusCode)
	}

	page := enroll(t, br, a, "900-33-0001", "1981-02-03")
	if !strings.Contains(page, "ken.r.tanaka") {
		t.Fatalf("enrollment on node a did not complete:\n%s", page)
	}

	// Node B admits the card at once: its cached "not registered" was
	// dropped by the change node A announced.
	start := time.Now()
	waitFor(t, "node b admits the enrolled card", func() (bool, string) {
		resp, body := get(t, br, "https://"+b.site+"/", "text/html")
		return resp.StatusCode == http.StatusOK && body == "user=ken.r.tanaka node=b", fmt.Sprintf("HTTP %d %q", resp.StatusCode, body)
	})
	t.Logf("enrollment on node a took effect on node b after %v (cache_ttl %s)", time.Since(start).Round(time.Millisecond), c.opts.cacheTTL)
	if resp, body := get(t, br, "https://"+a.site+"/", "text/html"); resp.StatusCode != http.StatusOK || body != "user=ken.r.tanaka node=a" {
		t.Fatalf("node a after enrollment: HTTP %d %q", resp.StatusCode, body)
	}

	// Disabled through node B's admin API: refused on node A.
	adminPost(t, b, "/cacgate/accounts/ken.r.tanaka/disable")
	start = time.Now()
	waitFor(t, "node a refuses the disabled account", func() (bool, string) {
		resp, body := get(t, br, "https://"+a.site+"/", "text/html")
		return resp.StatusCode == http.StatusForbidden && strings.Contains(body, "disabled"), fmt.Sprintf("HTTP %d", resp.StatusCode)
	})
	t.Logf("disable on node b took effect on node a after %v", time.Since(start).Round(time.Millisecond))

	// Enabled again through node A, admitted on node B; the card unlinked
	// through node A goes back to enrollment on node B.
	adminPost(t, a, "/cacgate/accounts/ken.r.tanaka/enable")
	waitFor(t, "node b admits the re-enabled account", func() (bool, string) {
		resp, _ := get(t, br, "https://"+b.site+"/", "text/html")
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("HTTP %d", resp.StatusCode)
	})
	fp := fmt.Sprintf("%x", sha256.Sum256(card.Cert.Raw))
	adminDelete(t, a, "/cacgate/accounts/ken.r.tanaka/cards/"+fp)
	waitFor(t, "node b no longer admits the unlinked card", func() (bool, string) {
		resp, _ := get(t, br, "https://"+b.site+"/", "text/html")
		return resp.StatusCode == http.StatusSeeOther, fmt.Sprintf("HTTP %d", resp.StatusCode)
	})

	// Each node wrote its own audit trail, naming itself: the banner was
	// accepted on node b, the enrollment completed on node a, and no SSN
	// is in either.
	wantEvents := map[string]string{"a": "enroll.completed", "b": "consent.accepted"}
	for _, n := range c.nodes {
		data, err := os.ReadFile(filepath.Join(c.dir, "audit-"+n.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"event":"`+wantEvents[n.name]+`"`)) || bytes.Contains(data, []byte("900-33-0001")) ||
			!bytes.Contains(data, []byte(`"node":"`+n.name+`"`)) {
			t.Errorf("node %s audit log: %s missing, node not named, or SSN present:\n%s", n.name, wantEvents[n.name], data)
		}
	}
}

// TestClusterConcurrentEnrollment: namesakes enrolling at once through both
// nodes get distinct usernames, and one card enrolling on both nodes at
// once gets exactly one account.
func TestClusterConcurrentEnrollment(t *testing.T) {
	const people = 6
	c := startCluster(t, people)
	cards := make([]*testpki.Card, people)
	for i := range cards {
		var err error
		cards[i], err = c.pki.Intermediate.IssueCard(testpki.CardSpec{
			Name: fmt.Sprintf("garcia%d", i), Family: "GARCIA", Given: "LUIS", Middle: "A", EDIPI: fmt.Sprint(1234568000 + i), Affiliation: "USAF",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Person 0 enrolls on both nodes at once, with two browsers; the
	// others alternate nodes. All at the same time.
	type attempt struct {
		person int
		node   *node
	}
	attempts := []attempt{{0, c.nodes[0]}, {0, c.nodes[1]}}
	for i := 1; i < people; i++ {
		attempts = append(attempts, attempt{i, c.nodes[i%2]})
	}
	pages := make([]string, len(attempts))
	var wg sync.WaitGroup
	for k, at := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pages[k] = tryEnroll(t, c.browser(t, cards[at.person]), at.node, fmt.Sprintf("900-44-%04d", at.person+1), "1990-01-01")
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The database holds exactly one account per person, with distinct
	// usernames luis.a.garcia, luis.a.garcia1, ...
	conn, err := pgx.Connect(context.Background(), c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT username, edipi FROM accounts ORDER BY username`)
	if err != nil {
		t.Fatal(err)
	}
	usernames := map[string]bool{}
	edipis := map[string]bool{}
	for rows.Next() {
		var u, e string
		if err := rows.Scan(&u, &e); err != nil {
			t.Fatal(err)
		}
		if usernames[u] || edipis[e] {
			t.Errorf("duplicate account: %s %s", u, e)
		}
		usernames[u], edipis[e] = true, true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(usernames) != people {
		t.Fatalf("%d accounts for %d people: %v\npages:\n%s", len(usernames), people, usernames, strings.Join(pages, "\n----\n"))
	}
	for i := range people {
		want := "luis.a.garcia"
		if i > 0 {
			want += fmt.Sprint(i)
		}
		if !usernames[want] {
			t.Errorf("username %s missing: %v", want, usernames)
		}
	}
	// Person 0's second attempt lost the race and was told the card (or
	// DoD ID) is already registered, not given a second account.
	completed := 0
	for k := range 2 {
		if strings.Contains(pages[k], "luis.a.garcia") && createdUsername.MatchString(pages[k]) {
			completed++
		}
	}
	if completed == 0 {
		t.Errorf("neither of person 0's enrollments completed:\n%s\n----\n%s", pages[0], pages[1])
	}
}

// tryEnroll is enroll for racing attempts: it returns the last page
// reached instead of failing when a step does not lead on (the loser of a
// race for one card is told the card is registered).
func tryEnroll(t *testing.T, b *http.Client, n *node, ssn, dob string) string {
	t.Helper()
	acceptBanner(t, b, n.site, "/")
	return enrollSteps(t, b, n, ssn, dob)
}

// enrollSteps submits the enrollment forms (identity, profile and
// password, security questions) on node n and returns the last page
// reached, prefixed with its HTTP status.
func enrollSteps(t *testing.T, b *http.Client, n *node, ssn, dob string) string {
	t.Helper()
	base := "https://" + n.site + "/.cacgate/enroll"
	resp, page := get(t, b, base+"/new", "text/html")
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("identity form: HTTP %d", resp.StatusCode)
	}
	steps := []struct {
		path, next string
		fields     url.Values
	}{
		{"/new", `name="password"`, url.Values{"idtype": {"ssn"}, "ssn": {ssn}, "dob": {dob}}},
		{"/profile", `name="question-1"`, url.Values{"email": {"person@example.mil"}, "organization": {"USN"}, "location": {"North America"},
			"password": {"Correct.Horse~Bat9"}, "confirm": {"Correct.Horse~Bat9"}}},
	}
	for _, s := range steps {
		page = postFormAny(t, b, base+s.path, page, s.fields)
		if !strings.Contains(page, s.next) {
			return page
		}
	}
	qs := credential.Questions()
	form := url.Values{}
	for i := 1; i <= 3; i++ {
		k := fmt.Sprint(i)
		form.Set("question-"+k, qs[i].ID)
		form.Set("answer-"+k, "answer number "+k)
		form.Set("confirm-"+k, "answer number "+k)
	}
	return postFormAny(t, b, base+"/questions", page, form)
}

// postFormAny is postForm that returns the page whatever its status.
func postFormAny(t *testing.T, c *http.Client, u, page string, fields url.Values) string {
	t.Helper()
	form := url.Values{}
	for _, name := range []string{"csrf", "state"} {
		if m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page); m != nil {
			form.Set(name, html.UnescapeString(m[1]))
		}
	}
	for k, v := range fields {
		form[k] = v
	}
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Errorf("POST %s: %v", u, err)
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return fmt.Sprintf("<!-- HTTP %d -->\n%s", resp.StatusCode, b)
}

// waitFor polls cond until it holds, failing the test after
// propagationBound (and at most as many tries as fit in it).
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(propagationBound)
	var last string
	for range int(propagationBound/pollInterval) + 1 {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, propagationBound, last)
}

func adminPost(t *testing.T, n *node, path string) {
	t.Helper()
	adminCall(t, n, "POST", path)
}

func adminDelete(t *testing.T, n *node, path string) {
	t.Helper()
	adminCall(t, n, "DELETE", path)
}

func adminCall(t *testing.T, n *node, method, path string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.admin+path, nil)
	resp, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("node %s admin %s %s: HTTP %d %s", n.name, method, path, resp.StatusCode, body)
	}
	var v any
	if len(body) > 0 && json.Unmarshal(body, &v) != nil {
		t.Fatalf("node %s admin %s %s: not JSON: %s", n.name, method, path, body)
	}
}

// nodeCLI runs `caddy cacgate accounts ...` straight against the cluster's
// database (no server involved), with node n's Caddyfile.
func (c *cluster) nodeCLI(t *testing.T, n *node, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, append(append([]string{"cacgate", "accounts"}, args...), "--config", filepath.Join(c.dir, "Caddyfile-"+n.name), "--adapter", "caddyfile")...)
	cmd.Dir = c.dir
	cmd.Env = append(caddyEnv(c.dir), c.env()...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("caddy cacgate accounts %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), lastLines(stderr.String(), 20))
	}
	return stdout.String()
}

// scrapeNode returns node n's cacgate_* metric samples from its admin API.
func scrapeNode(t *testing.T, n *node) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: requestTimeout}).Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	samples := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "cacgate_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			samples[line[:i]] = v
		}
	}
	return samples
}

// TestClusterOperations: what ops do to a running cluster, through real
// processes on real PostgreSQL — a legacy app's users imported with the CLI
// straight into the database, a group granted through one node's admin API
// and revoked with the CLI, an access rule on a route enforced by the other
// node at once; the audit trail names the administrators, and the metrics
// show the remote invalidations.
func TestClusterOperations(t *testing.T) {
	c := startCluster(t, 0)
	a, b := c.nodes[0], c.nodes[1]
	card, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{Name: "legacy", Family: "NGUYEN", Given: "ANH", EDIPI: "1234567855", Affiliation: "USN"})
	if err != nil {
		t.Fatal(err)
	}
	fp := fmt.Sprintf("%x", sha256.Sum256(card.Cert.Raw))
	br := c.browser(t, card)

	// Node A meets the card before the import: it caches "not registered".
	if resp, _ := acceptBanner(t, br, a.site, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("node a before the import: HTTP %d", resp.StatusCode)
	}

	// The legacy app's users, imported through node B's config.
	csv := "username,edipi,given_name,family_name,email,status,groups,card_sha256\n" +
		"anh.nguyen,1234567855,Anh,Nguyen,anh.nguyen@mail.mil,active,," + fp + "\n" +
		"old.user,1234567856,Old,User,old.user@mail.mil,disabled,ops,\n"
	out := c.nodeCLI(t, b, csv, "import", "-")
	if !strings.Contains(out, "2") {
		t.Fatalf("import output: %s", out)
	}
	waitFor(t, "node a admits the imported card", func() (bool, string) {
		resp, body := get(t, br, "https://"+a.site+"/", "text/html")
		return resp.StatusCode == http.StatusOK && body == "user=anh.nguyen node=a", fmt.Sprintf("HTTP %d %q", resp.StatusCode, body)
	})

	// /ops/ needs group ops: refused, granted through node B's admin API,
	// admitted on node A at once; taken away with the CLI, refused again.
	if resp, body := get(t, br, "https://"+a.site+"/ops/panel", "text/html"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "ops") {
		t.Fatalf("ops route without the group: HTTP %d\n%s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", "http://"+b.admin+"/cacgate/accounts/anh.nguyen/groups", strings.NewReader(`{"groups":["ops"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("adding group through node b: HTTP %d %s", resp.StatusCode, body)
	}
	waitFor(t, "node a admits the ops member", func() (bool, string) {
		resp, body := get(t, br, "https://"+a.site+"/ops/panel", "text/html")
		return resp.StatusCode == http.StatusOK && body == "ops user=anh.nguyen node=a", fmt.Sprintf("HTTP %d %q", resp.StatusCode, body)
	})
	c.nodeCLI(t, a, "", "groups", "rm", "anh.nguyen", "ops")
	waitFor(t, "node b refuses the former ops member", func() (bool, string) {
		resp, _ := get(t, br, "https://"+b.site+"/ops/panel", "text/html")
		return resp.StatusCode == http.StatusForbidden, fmt.Sprintf("HTTP %d", resp.StatusCode)
	})
	if resp, _ := get(t, br, "https://"+b.site+"/", "text/html"); resp.StatusCode != http.StatusOK {
		t.Fatalf("rest of the site after the group went: HTTP %d", resp.StatusCode)
	}

	// Export round-trips the import (no card subject is known for imported
	// cards, only the fingerprint).
	export := c.nodeCLI(t, a, "", "export")
	for _, want := range []string{"anh.nguyen", "old.user", fp} {
		if !strings.Contains(export, want) {
			t.Errorf("export lacks %s:\n%s", want, export)
		}
	}

	// Audit: node B names the local admin API, node A's config the CLI.
	auditB, _ := os.ReadFile(filepath.Join(c.dir, "audit-b.log"))
	auditA, _ := os.ReadFile(filepath.Join(c.dir, "audit-a.log"))
	for _, check := range []struct {
		log  []byte
		want []string
	}{
		{auditB, []string{`"event":"admin.groups.added"`, `"admin":"local"`, `"event":"admin.import"`}},
		{auditA, []string{`"event":"admin.groups.removed"`, `"admin":"cli:`, `"event":"access.denied"`}},
	} {
		for _, w := range check.want {
			if !bytes.Contains(check.log, []byte(w)) {
				t.Errorf("audit log lacks %s:\n%s", w, lastLines(string(check.log), 15))
			}
		}
	}

	// Metrics: node A saw remote invalidations and knows the accounts.
	m := scrapeNode(t, a)
	if m[`cacgate_cache_invalidations_total{origin="remote"}`] < 1 {
		t.Errorf("node a counted no remote invalidations: %v", m)
	}
	if m[`cacgate_accounts{status="active"}`] != 1 || m[`cacgate_accounts{status="disabled"}`] != 1 {
		t.Errorf("node a accounts gauge: active %v disabled %v", m[`cacgate_accounts{status="active"}`], m[`cacgate_accounts{status="disabled"}`])
	}
	if m[`cacgate_requests_total{outcome="granted",reason=""}`] < 2 {
		t.Errorf("node a granted requests: %v", m[`cacgate_requests_total{outcome="granted",reason=""}`])
	}
}
