// Package e2e tests the gateway as users meet it: the caddy binary built by
// ./xcaddy.sh, its CLI, and the demo Caddyfile, over real TLS with the
// committed test cards.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	// Not used directly: it makes this package's test cache depend on the
	// gateway's code, which the binary built in TestMain is made of.
	_ "github.com/cacgate/cacgate"
	"github.com/cacgate/cacgate/internal/pgtest"
)

// caddyBin is the binary built once for the whole package by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cacgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	// Build exactly as the README says, through the script's fallback path
	// (xcaddy is not installable everywhere).
	cmd := exec.Command("bash", filepath.Join(repoRoot(), "xcaddy.sh"))
	cmd.Env = append(os.Environ(), "CACGATE_NO_XCADDY=1", "CADDY_OUTPUT="+caddyBin)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "./xcaddy.sh failed: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	// The cluster tests' PostgreSQL server, if they started one.
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// caddy runs the built binary with a temporary HOME, so it never touches the
// developer's Caddy data or config.
func caddy(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, args...)
	cmd.Dir = dir
	cmd.Env = caddyEnv(dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func caddyEnv(dir string) []string {
	return append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
}

func TestListModules(t *testing.T) {
	out, err := caddy(t, t.TempDir(), "list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	for _, mod := range []string{"cacgate", "http.handlers.cacgate", "admin.api.cacgate", "cacgate.stores.sqlite", "tls.client_auth.verifier.cacgate", "tls.ca_pool.source.cacgate_bundle"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(mod) + `$`).MatchString(out) {
			t.Errorf("list-modules does not list %s", mod)
		}
	}
}

// demo is the repository's demo Caddyfile running from a temporary copy,
// with its ports moved to free ones.
type demo struct {
	dir                          string
	gateway, explain, app, admin string // host:port
	roots                        *x509.CertPool
}

// freePorts returns n distinct free loopback ports; all listeners stay open
// until every port is chosen, so no two can be the same.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]string, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func startDemo(t *testing.T) *demo {
	t.Helper()
	d := &demo{dir: t.TempDir()}
	root := repoRoot()
	if err := os.CopyFS(filepath.Join(d.dir, "testdata"), os.DirFS(filepath.Join(root, "testdata"))); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(root, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Ports are picked free, but another test process can take one before
	// Caddy binds it; Caddy then exits at once, and the demo is started
	// again on fresh ports (bounded).
	for attempt := 1; ; attempt++ {
		up, log := d.run(t, string(cfg))
		if up {
			break
		}
		if attempt == 3 {
			t.Fatalf("demo did not come up:\n%s", lastLines(log, 40))
		}
	}
	rootPEM, err := os.ReadFile(filepath.Join(d.dir, "testdata/pki/root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	d.roots = x509.NewCertPool()
	d.roots.AppendCertsFromPEM(rootPEM)
	return d
}

// run starts the demo Caddyfile on fresh ports and waits until its admin
// API answers; false if Caddy exited first (or did not answer in time).
func (d *demo) run(t *testing.T, cfg string) (bool, string) {
	t.Helper()
	ports := freePorts(t, 4)
	gw, ex, app, admin := ports[0], ports[1], ports[2], ports[3]
	d.gateway, d.explain, d.app, d.admin = "localhost:"+gw, "localhost:"+ex, "127.0.0.1:"+app, "localhost:"+admin
	s := strings.NewReplacer(":8443", ":"+gw, ":8444", ":"+ex, ":9080", ":"+app, "localhost:2019", d.admin).Replace(cfg)
	if strings.Count(s, ":"+gw) < 2 || strings.Count(s, ":"+app) < 2 || !strings.Contains(s, d.admin) {
		t.Fatal("demo Caddyfile no longer uses the ports this test moves")
	}
	if err := os.WriteFile(filepath.Join(d.dir, "Caddyfile"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := caddy(t, d.dir, "validate", "--config", "Caddyfile", "--adapter", "caddyfile"); err != nil {
		t.Fatalf("demo Caddyfile does not validate: %v\n%s", err, out)
	}

	return startCaddy(t, d.dir, "Caddyfile", "caddy", nil, func() bool {
		out, err := caddy(t, d.dir, "cacgate", "accounts", "list", "--address", d.admin, "--json")
		return err == nil && strings.HasPrefix(strings.TrimSpace(out), "{")
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// client presents one of the committed demo cards (none for ""), keeps
// cookies and does not follow redirects.
func (d *demo) client(t *testing.T, cardName string) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: d.roots, ServerName: "localhost"}
	if cardName != "" {
		dir := filepath.Join(d.dir, "testdata/pki/cards")
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, cardName+".pem"), filepath.Join(dir, cardName+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: requestTimeout,
		Transport:     &http.Transport{TLSClientConfig: cfg},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, c *http.Client, u string, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b)
}

// acceptBanner walks the banner like a browser and returns the response at
// the address it sends the browser back to.
func acceptBanner(t *testing.T, c *http.Client, host, path string) (*http.Response, string) {
	t.Helper()
	resp, _ := get(t, c, "https://"+host+path, "text/html")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first visit: HTTP %d, want the banner redirect", resp.StatusCode)
	}
	resp, page := get(t, c, "https://"+host+resp.Header.Get("Location"), "text/html")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "I Accept") {
		t.Fatalf("banner: HTTP %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{}
	for _, name := range []string{"csrf", "next"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("banner has no %s field", name)
		}
		form.Set(name, html.UnescapeString(m[1]))
	}
	resp, err := c.PostForm("https://"+host+"/.cacgate/consent", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: HTTP %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/.cacgate/last-signin?") {
		// A repeat logon: the last sign-in notice, then on with Continue.
		notice, page := get(t, c, "https://"+host+loc, "text/html")
		if notice.StatusCode != http.StatusOK || !strings.Contains(page, "Previous successful sign-in") {
			t.Fatalf("last sign-in notice: HTTP %d\n%s", notice.StatusCode, page)
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		loc = u.Query().Get("next")
	}
	return get(t, c, "https://"+host+loc, "text/html")
}

// TestDemo walks the README's demo: an account created with the CLI, a card
// through the banner to the legacy app, which renders the identity headers,
// then the CLI's disable/enable/unlink/link taking effect at once.
func TestDemo(t *testing.T) {
	d := startDemo(t)
	admin := []string{"--address", d.admin, "--json"}
	cli := func(args ...string) string {
		t.Helper()
		out, err := caddy(t, d.dir, append(append([]string{"cacgate", "accounts"}, args...), admin...)...)
		if err != nil {
			t.Fatalf("caddy cacgate accounts %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	cli("create", "--edipi", "1234567890", "--username", "john.q.doe", "--given-name", "John", "--family-name", "Doe", "--email", "john.q.doe@mail.mil", "--affiliation", "USA")
	if out, err := caddy(t, d.dir, append([]string{"cacgate", "accounts", "create", "--edipi", "1234567890", "--username", "someone.else"}, admin...)...); err == nil || !strings.Contains(out, "409") {
		t.Errorf("duplicate EDIPI through the CLI: %v\n%s", err, out)
	}

	c := d.client(t, "doe.john.quincy")
	resp, page := acceptBanner(t, c, d.gateway, "/records?id=7")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("legacy app: HTTP %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{"Hello, <strong>john.q.doe</strong>", "X-Cac-Edipi", "1234567890", "X-Cac-Assertion", "GET /records?id=7"} {
		if !strings.Contains(page, want) {
			t.Errorf("legacy app page lacks %q:\n%s", want, page)
		}
	}

	var acct struct {
		Username string
		Status   string
		Cards    []struct{ Sha256 string }
	}
	if err := json.Unmarshal([]byte(cli("show", "john.q.doe")), &acct); err != nil || len(acct.Cards) != 1 {
		t.Fatalf("show: %v %+v", err, acct)
	}
	cli("disable", "john.q.doe")
	if resp, page := get(t, c, "https://"+d.gateway+"/records", "text/html"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "disabled") {
		t.Fatalf("after disable: HTTP %d", resp.StatusCode)
	}
	cli("enable", "john.q.doe")
	if resp, _ := get(t, c, "https://"+d.gateway+"/records", "text/html"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after enable: HTTP %d", resp.StatusCode)
	}
	cli("unlink", "john.q.doe", filepath.Join(d.dir, "testdata/pki/cards/doe.john.quincy.pem"))
	if resp, _ := get(t, c, "https://"+d.gateway+"/records", "text/html"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after unlink: HTTP %d", resp.StatusCode)
	}
	cli("link", "john.q.doe", filepath.Join(d.dir, "testdata/pki/cards/doe.john.quincy.pem"))
	if resp, _ := get(t, c, "https://"+d.gateway+"/records", "text/html"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after link: HTTP %d", resp.StatusCode)
	}
	var list struct {
		Accounts []json.RawMessage
		Total    int
	}
	if err := json.Unmarshal([]byte(cli("list")), &list); err != nil || len(list.Accounts) != 1 || list.Total != 1 {
		t.Fatalf("list: %v %d", err, list.Total)
	}

	// A pending account, approved through the CLI.
	cli("create", "--edipi", "1234567896", "--username", "luis.a.garcia", "--status", "pending")
	if err := json.Unmarshal([]byte(cli("list", "--status", "pending")), &list); err != nil || list.Total != 1 {
		t.Fatalf("list --status pending: %v %d", err, list.Total)
	}
	luis := d.client(t, "garcia.luis.a")
	if resp, _ := acceptBanner(t, luis, d.gateway, "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("pending account: HTTP %d", resp.StatusCode)
	}
	cli("approve", "luis.a.garcia")
	if resp, _ := get(t, luis, "https://"+d.gateway+"/", "text/html"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after approve: HTTP %d", resp.StatusCode)
	}

	// The CLI on the database itself, next to the running server: the
	// change is audited as the OS user and seen through the admin API.
	out, err := caddy(t, d.dir, "cacgate", "accounts", "groups", "add", "luis.a.garcia", "pilots", "--config", "Caddyfile")
	if err != nil || !strings.Contains(out, "luis.a.garcia is in [pilots].") || !strings.Contains(out, `"admin":"cli:`) || !strings.Contains(out, "cache_ttl") {
		t.Fatalf("groups add on the database: %v\n%s", err, out)
	}
	var luisAcct struct{ Groups []string }
	if err := json.Unmarshal([]byte(cli("show", "luis.a.garcia")), &luisAcct); err != nil || len(luisAcct.Groups) != 1 || luisAcct.Groups[0] != "pilots" {
		t.Fatalf("group added on the database, seen through the API: %v %+v", err, luisAcct)
	}
	exported := filepath.Join(t.TempDir(), "accounts.csv")
	if out, err := caddy(t, d.dir, "cacgate", "accounts", "export", "--output", exported); err != nil || !strings.Contains(out, "Exported 2 accounts") {
		t.Fatalf("export on the database (./Caddyfile): %v\n%s", err, out)
	}
	if data, err := os.ReadFile(exported); err != nil || !strings.HasPrefix(string(data), "username,edipi,") || !strings.Contains(string(data), "luis.a.garcia,1234567896,") {
		t.Fatalf("export file: %v\n%s", err, data)
	}

	// The demo's CRL is loaded and fresh.
	out, err = caddy(t, d.dir, "cacgate", "revocation", "--address", d.admin)
	var rev struct {
		CRLs, Entries, StaleCRLs int
		IndexBytes               int64 `json:"index_bytes"`
	}
	if err != nil || json.Unmarshal([]byte(out), &rev) != nil || rev.CRLs != 1 || rev.Entries != 1 || rev.IndexBytes <= 0 {
		t.Fatalf("caddy cacgate revocation: %v\n%s", err, out)
	}

	if resp, page := get(t, d.client(t, ""), "https://"+d.gateway+"/", "text/html"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Insert your CAC") {
		t.Fatalf("no card: HTTP %d", resp.StatusCode)
	}
	if resp, _ := get(t, d.client(t, ""), "https://"+d.gateway+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("health check: HTTP %d", resp.StatusCode)
	}
}

// TestDemoExplainingSite checks that the demo's second site turns bad cards
// into pages that say why, where the recommended site refuses the handshake.
func TestDemoExplainingSite(t *testing.T) {
	d := startDemo(t)
	for card, reason := range map[string]string{
		"expired.edward":    "expired",
		"noeku.nancy":       "not meant for signing in",
		"rogue.john.quincy": "not issued by a certificate authority this site trusts",
		"revoked.ronald":    "has been revoked",
	} {
		resp, page := get(t, d.client(t, card), "https://"+d.explain+"/", "text/html")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, reason) {
			t.Errorf("%s: HTTP %d, page lacks %q", card, resp.StatusCode, reason)
		}
		if card == "revoked.ronald" {
			// Revocation is not a chain property: the recommended site
			// completes the handshake and refuses with the same page.
			resp, page := get(t, d.client(t, card), "https://"+d.gateway+"/", "text/html")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, reason) {
				t.Errorf("%s on the recommended site: HTTP %d, page lacks %q", card, resp.StatusCode, reason)
			}
			continue
		}
		if _, err := d.client(t, card).Get("https://" + d.gateway + "/"); err == nil {
			t.Errorf("%s: handshake with the recommended site succeeded", card)
		}
	}
	// The explaining site trusts the committed DISA-style bundle and offers
	// it, without a card, on its certificates page.
	if resp, page := get(t, d.client(t, ""), "https://"+d.explain+"/.cacgate/certificates", "text/html"); resp.StatusCode != http.StatusOK ||
		!strings.Contains(page, "TEST DOD ID CA-70") || !strings.Contains(page, "dod-certificates.p7b") {
		t.Errorf("certificates page: HTTP %d\n%s", resp.StatusCode, page)
	}
	// An unregistered card goes through the banner to self-enrollment and,
	// with the facts in the demo roster, gets an account and into the app.
	c := d.client(t, "johnson.robert.e.jr")
	resp, _ := acceptBanner(t, c, d.gateway, "/")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/.cacgate/enroll") {
		t.Fatalf("unregistered card: HTTP %d %q", resp.StatusCode, loc)
	}
	resp, page := get(t, c, "https://"+d.gateway+resp.Header.Get("Location"), "text/html")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "/.cacgate/enroll/new") {
		t.Fatalf("enrollment choice: HTTP %d\n%s", resp.StatusCode, page)
	}
	_, page = get(t, c, "https://"+d.gateway+"/.cacgate/enroll/new", "text/html")
	if !strings.Contains(page, `name="pebd"`) {
		t.Fatalf("the demo asks for the PEBD when the roster has one:\n%s", page)
	}
	page = postForm(t, c, "https://"+d.gateway+"/.cacgate/enroll/new", page, url.Values{
		"idtype": {"ssn"}, "ssn": {"900-11-1892"}, "dob": {"1975-04-12"}, "pebd": {"1995-06-01"}})
	page = postForm(t, c, "https://"+d.gateway+"/.cacgate/enroll/profile", page, url.Values{
		"email": {"robert.johnson@example.com"}, "organization": {"USMC"}, "location": {"North America"},
		"password": {"Semper.Fi~Always7"}, "confirm": {"Semper.Fi~Always7"}})
	form := url.Values{}
	for i, q := range []string{"favorite-teacher", "first-pet", "childhood-street"} {
		n := fmt.Sprint(i + 1)
		form.Set("question-"+n, q)
		form.Set("answer-"+n, "demo answer "+n)
		form.Set("confirm-"+n, "demo answer "+n)
	}
	page = postForm(t, c, "https://"+d.gateway+"/.cacgate/enroll/questions", page, form)
	if !strings.Contains(page, "robert.e.johnson") {
		t.Fatalf("confirmation page lacks the username:\n%s", page)
	}
	if resp, page := get(t, c, "https://"+d.gateway+"/", "text/html"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Hello, <strong>robert.e.johnson</strong>") {
		t.Fatalf("after enrollment: HTTP %d", resp.StatusCode)
	}
}

// postForm submits a step of a multi-page form: it copies the csrf and
// state hidden fields from the page that holds the form, adds fields, and
// returns the next page (which must be a 200).
func postForm(t *testing.T, c *http.Client, u, page string, fields url.Values) string {
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
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d\n%s", u, resp.StatusCode, b)
	}
	return string(b)
}
