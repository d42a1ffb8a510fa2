package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/testpki"
)

// TestMain points Caddy's data and config directories at a temporary
// directory, so tests never touch the developer's own Caddy state.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cacgate-test-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	os.Setenv("HOME", dir)
	code := m.Run()
	caddy.Stop()
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// requestTimeout bounds every request a test sends. It is there to turn a
// hung gateway into a failure, not to time the gateway: on a busy machine
// one enrollment step (three security answers hashed back to back with
// argon2id, the hasher's slot resting three times a hash's duration after
// each) takes well over the 15s this once was.
const requestTimeout = 2 * time.Minute

// sharedPKI is generated once per test binary: key generation is the slow
// part and every test can share the same cards.
var sharedPKI = sync.OnceValues(func() (*testpki.PKI, error) { return testpki.Generate(testpki.Options{}) })

func testPKI(t testing.TB) *testpki.PKI {
	t.Helper()
	p, err := sharedPKI()
	if err != nil {
		t.Fatalf("generating test PKI: %v", err)
	}
	return p
}

func card(t testing.TB, name string) *testpki.Card {
	t.Helper()
	c := testPKI(t).Card(name)
	if c == nil {
		t.Fatalf("test PKI has no card %q", name)
	}
	return c
}

// backend is the "legacy app": it records the headers of every request.
type backend struct {
	addr     string
	mu       sync.Mutex
	seen     []http.Header
	trailers []http.Header
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body to its end: that is when trailers arrive.
		io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, r.Header.Clone())
		b.trailers = append(b.trailers, r.Trailer.Clone())
		b.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "legacy app: %s %s\n", r.Method, r.URL.RequestURI())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// last returns the headers of the most recent request the backend saw.
func (b *backend) last(t *testing.T) http.Header {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("backend saw no request")
	}
	return b.seen[len(b.seen)-1]
}

// lastTrailer returns the trailers of the most recent request the backend
// saw (nil if none).
func (b *backend) lastTrailer(t *testing.T) http.Header {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.trailers) == 0 {
		t.Fatal("backend saw no request")
	}
	return b.trailers[len(b.trailers)-1]
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

// gateway is a running Caddy with cacgate, configured from a Caddyfile.
type testGateway struct {
	t       *testing.T
	dir     string
	ports   map[string]int // site name -> port
	admin   string
	backend *backend
	roots   *x509.CertPool
}

// freePorts returns n distinct free loopback ports. All listeners stay
// open until every port is chosen, so no two of them can be the same.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func freePort(t testing.TB) int { return freePorts(t, 1)[0] }

// startGateway runs Caddy in-process with the test sites:
//
//	main    client_auth verify_if_given (the recommended setup)
//	strict  mode request + the gateway's own trust pool, issuer and policy rules
//	bare    mode request and no trust pool: nothing verifies chains
//	pinned  mode request + trust pool, issuers pinned to a CA that is not ours
//	handshake  verify_if_given + the cacgate TLS verifier (policy, revocation)
//
// globalExtra and mainExtra are added to the global cacgate block and the
// main site's cacgate block.
func startGateway(t *testing.T, globalExtra, mainExtra string) *testGateway {
	t.Helper()
	p := testPKI(t)
	g := &testGateway{t: t, dir: t.TempDir(), ports: map[string]int{}, backend: startBackend(t)}
	os.Mkdir(filepath.Join(g.dir, "crl"), 0o700)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"root.pem", p.Root.CertPEM},
		{"intermediate.pem", p.Intermediate.CertPEM},
		{"server.pem", pemChain(p.Server.Chain)},
		{"server-key.pem", keyPEM(t, p.Server)},
		{"crl/intermediate.crl", p.CRL},
	} {
		if err := os.WriteFile(filepath.Join(g.dir, f.name), f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.roots = x509.NewCertPool()
	g.roots.AddCert(p.Root.Cert)
	// Ports are picked free, but another test process can take one before
	// Caddy binds it: then loadCaddyfile renders again with new ones.
	render := func() string {
		sites := []string{"main", "strict", "bare", "pinned", "handshake"}
		ports := freePorts(t, len(sites)+1)
		for i, site := range sites {
			g.ports[site] = ports[i]
		}
		g.admin = fmt.Sprintf("127.0.0.1:%d", ports[len(sites)])
		// As an operator would paste it: openssl x509 -noout -subject -nameopt RFC2253
		intermediateDN := "CN=TEST DOD ID CA-70, OU=PKI, OU=DoD, O=U.S. Government, C=US"
		bogusPin := strings.Repeat("ab", 32)
		if !strings.Contains(globalExtra, "hash_wait") {
			// A hash waits for the hasher's slot as long as the gateway
			// allows rather than the default 10s: on a busy machine the
			// rests between an enrollment's back-to-back hashes outlast
			// that, and the gateway answers 503 (its right answer to
			// overload, but not what these tests are about).
			globalExtra += "\nhash_wait 5m"
		}
		if !strings.Contains(globalExtra, "hash_concurrency") {
			// Four hashing slots rather than one: after each hash its slot
			// rests three times the hash's duration (the gateway's flood
			// protection), so a test's back-to-back hashes (an enrollment's
			// four, a sign-in after it) wait out the rests on one slot, and
			// on a busy machine, where hashes take many times longer, the
			// rests grow with them (one run of this package took 430s on a
			// loaded machine, 195s with four slots: -count=3 would overrun
			// go test's 10-minute timeout). The flows under test are the
			// same; the slot and its rest are the credential package's
			// tests' subject, and the e2e cluster runs the default.
			globalExtra += "\nhash_concurrency 4"
		}
		if !strings.Contains(globalExtra, "revocation") {
			// Revocation is on and fails closed by default, and the test cards
			// name no OCSP responder: give the gateway the test CA's CRL.
			globalExtra += fmt.Sprintf(`
			revocation {
				mode crl
				crl_files %[1]s/crl
				crl_issuers %[1]s/intermediate.pem
			}`, g.dir)
		}

		tlsBlock := func(mode string, extra ...string) string {
			pool := ""
			if mode == "verify_if_given" {
				pool = "trust_pool file " + filepath.Join(g.dir, "root.pem")
			}
			return fmt.Sprintf(`tls %s %s {
			client_auth {
				mode %s
				%s
				%s
			}
		}`, filepath.Join(g.dir, "server.pem"), filepath.Join(g.dir, "server-key.pem"), mode, pool, strings.Join(extra, "\n"))
		}
		cfg := fmt.Sprintf(`{
		admin %[1]s
		auto_https off
		log {
			output file %[2]s/caddy.log
			level DEBUG
			%[17]s
		}
		persist_config off
		storage file_system %[2]s/storage
		cacgate {
			store sqlite %[2]s/cacgate.db
			%[3]s
		}
	}

	https://localhost:%[4]d {
		%[5]s
		cacgate {
			%[18]s
			exempt /healthz /static/*
			%[6]s
		}
		request_header X-From-Placeholder "{http.auth.user.id}/{http.auth.user.edipi}"
		reverse_proxy %[7]s
		%[16]s
	}

	https://localhost:%[8]d {
		%[9]s
		cacgate {
			trust_pool file %[2]s/root.pem
			allowed_issuers "%[10]s"
			required_policies all 2.16.840.1.101.2.1.11.42 2.16.840.1.101.3.2.1.3.13
			required_eku clientAuth smartcardLogon
			max_chain_depth 3
		}
		reverse_proxy %[7]s
	}

	https://localhost:%[11]d {
		%[9]s
		cacgate
		reverse_proxy %[7]s
	}

	https://localhost:%[14]d {
		%[15]s
		cacgate
		reverse_proxy %[7]s
	}

	https://localhost:%[12]d {
		%[9]s
		cacgate {
			trust_pool file %[2]s/root.pem
			allowed_issuers %[13]s
		}
		reverse_proxy %[7]s
	}
	`, g.admin, g.dir, globalExtra, g.ports["main"], tlsBlock("verify_if_given"), mainExtra, g.backend.addr,
			g.ports["strict"], tlsBlock("request"), intermediateDN, g.ports["bare"], g.ports["pinned"], bogusPin,
			g.ports["handshake"], tlsBlock("verify_if_given", `verifier cacgate {
					required_policies 2.16.840.1.101.2.1.11.42
					revocation on
				}`), mainSiteExtra(mainExtra), logFormat(globalExtra), defaultContact(mainExtra))

		return cfg
	}
	g.loadCaddyfile(t, render)
	return g
}

// loadCaddyfile loads the Caddyfile render returns, rendering it again
// (with new free ports) when a port was taken meanwhile, at most three
// times, and unloads it when the test ends (to an empty config, so the next
// test starts clean and the databases are closed before t.TempDir is
// removed), showing the end of Caddy's log if the test failed. It returns
// the loaded JSON.
func (g *testGateway) loadCaddyfile(t *testing.T, render func() string) []byte {
	t.Helper()
	var cfgJSON []byte
	for attempt := 1; ; attempt++ {
		cfg := render()
		var err error
		// (Adapt's warnings are only "not formatted" notes about the
		// generated text.)
		if cfgJSON, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"}); err != nil {
			t.Fatalf("adapting test Caddyfile: %v\n%s", err, cfg)
		}
		err = caddy.Load(cfgJSON, true)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("loading config: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true); err != nil {
			t.Errorf("unloading config: %v", err)
		}
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(g.dir, "caddy.log")); err == nil {
				t.Logf("caddy log:\n%s", tail(log, 40))
			}
		}
	})
	return cfgJSON
}

// logFormat is the log's format: the README's filter that keeps the
// assertion out of DEBUG logs, when globalExtra asks for it with a
// "# filter-assertion" line.
func logFormat(globalExtra string) string {
	if !strings.Contains(globalExtra, "# filter-assertion") {
		return ""
	}
	return `format filter {
				wrap json
				fields {
					request>headers>X-Cac-Assertion delete
				}
			}`
}

// defaultContact is the main site's contact line, unless mainExtra sets
// its own.
func defaultContact(mainExtra string) string {
	if strings.Contains(mainExtra, "contact ") {
		return ""
	}
	return `contact "Test Help Desk"`
}

// mainSiteExtra is what the main site gets besides its cacgate block: a
// handle_errors route when the block hands refusals to it.
func mainSiteExtra(mainExtra string) string {
	if !strings.Contains(mainExtra, "refusals handle_errors") {
		return ""
	}
	return `handle_errors {
			respond "restyled {http.error.message}: {cacgate.refusal.title} ({cacgate.refusal.detail})" {http.error.status_code}
		}`
}

// client returns an HTTP client presenting c (nil: no certificate) that
// keeps cookies and does not follow redirects, so tests see every hop.
func (g *testGateway) client(c *testpki.Card) *http.Client {
	tlsCfg := &tls.Config{RootCAs: g.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if c != nil {
		tlsCfg.Certificates = []tls.Certificate{c.TLS}
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: requestTimeout,
		Transport: &http.Transport{
			TLSClientConfig: tlsCfg,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				// No dial timeout of its own: requestTimeout bounds the dial.
				return (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+port)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (g *testGateway) url(site, path string) string {
	return fmt.Sprintf("https://localhost:%d%s", g.ports[site], path)
}

// request sends one request and returns the response with its body read.
func request(t *testing.T, c *http.Client, method, url string, hdr http.Header, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var browser = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

// adminDo calls the admin API and decodes a JSON answer into out (if non-nil).
func (g *testGateway) adminDo(method, path string, body any, out any) int {
	g.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+g.admin+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			g.t.Fatalf("admin %s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// createAccount provisions an account through the admin API.
func (g *testGateway) createAccount(edipi, username string) AccountJSON {
	g.t.Helper()
	var a AccountJSON
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": edipi, "username": username}, &a); code != http.StatusCreated {
		g.t.Fatalf("creating account %s: HTTP %d", username, code)
	}
	return a
}

// accept walks the consent banner for the client's card on site and
// returns after the acceptance cookie is set.
func (g *testGateway) accept(t *testing.T, c *http.Client, site string) {
	t.Helper()
	resp, body := request(t, c, "GET", g.url(site, "/.cacgate/consent?next=/"), browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent page: HTTP %d: %s", resp.StatusCode, body)
	}
	csrf := formValue(t, body, "csrf")
	form := strings.NewReader("csrf=" + csrf + "&next=%2F&accept=yes")
	resp, body = request(t, c, "POST", g.url(site, "/.cacgate/consent"), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"},
	}, form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accepting consent: HTTP %d: %s", resp.StatusCode, body)
	}
}

// formValue extracts the value of a hidden input from a rendered page.
func formValue(t *testing.T, page, name string) string {
	t.Helper()
	marker := `name="` + name + `" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		t.Fatalf("page has no %s field:\n%s", name, page)
	}
	rest := page[i+len(marker):]
	return html.UnescapeString(rest[:strings.IndexByte(rest, '"')])
}

func pemChain(chain []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range chain {
		buf.Write(pemEncode("CERTIFICATE", c.Raw))
	}
	return buf.Bytes()
}

func keyPEM(t testing.TB, c *testpki.Card) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("PRIVATE KEY", der)
}

func fingerprint(c *testpki.Card) string {
	sum := sha256.Sum256(c.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// tail returns the last n lines of a log.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
