package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/cacgate/cacgate/internal/access"
)

// startAccessGateway runs Caddy with one app (one store) and sites whose
// policies differ, the way an operator composes them:
//
//	routes  handle /admin* → a cacgate block for group ops-admins;
//	        handle          → a cacgate block for everyone
//	        both deny the DoD IDs in banned.txt
//	navy    one cacgate block: Navy affiliation and a policy OID required
//
// banned.txt starts with a comment only; g.dir holds it.
func startAccessGateway(t *testing.T) *testGateway {
	t.Helper()
	p := testPKI(t)
	g := &testGateway{t: t, dir: t.TempDir(), ports: map[string]int{}, backend: startBackend(t)}
	os.Mkdir(filepath.Join(g.dir, "crl"), 0o700)
	for name, data := range map[string][]byte{
		"root.pem":             p.Root.CertPEM,
		"intermediate.pem":     p.Intermediate.CertPEM,
		"server.pem":           pemChain(p.Server.Chain),
		"server-key.pem":       keyPEM(t, p.Server),
		"crl/intermediate.crl": p.CRL,
		"banned.txt":           []byte("# nobody yet\n"),
	} {
		if err := os.WriteFile(filepath.Join(g.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.roots = x509.NewCertPool()
	g.roots.AddCert(p.Root.Cert)
	old := accessFileCheckInterval
	accessFileCheckInterval = 20 * time.Millisecond
	t.Cleanup(func() { accessFileCheckInterval = old })

	render := func() string {
		ports := freePorts(t, 3)
		g.ports["routes"], g.ports["navy"] = ports[0], ports[1]
		g.admin = fmt.Sprintf("127.0.0.1:%d", ports[2])
		tlsBlock := fmt.Sprintf(`tls %[1]s/server.pem %[1]s/server-key.pem {
			client_auth {
				mode verify_if_given
				trust_pool file %[1]s/root.pem
			}
		}`, g.dir)
		cfg := fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	log {
		output file %[2]s/caddy.log
		level DEBUG
	}
	persist_config off
	storage file_system %[2]s/storage
	cacgate {
		store sqlite %[2]s/cacgate.db
		revocation {
			mode crl
			crl_files %[2]s/crl
			crl_issuers %[2]s/intermediate.pem
		}
	}
}

https://localhost:%[3]d {
	%[4]s
	handle /admin* {
		cacgate {
			contact "Ops Help Desk"
			allow group ops-admins
			deny edipi_file %[2]s/banned.txt
		}
		reverse_proxy %[5]s
	}
	handle {
		cacgate {
			contact "Ops Help Desk"
			deny edipi_file %[2]s/banned.txt
		}
		reverse_proxy %[5]s
	}
}

https://localhost:%[6]d {
	%[4]s
	cacgate {
		allow affiliation Navy
		require policy 2.16.840.1.101.2.1.11.42
	}
	reverse_proxy %[5]s
}
`, g.admin, g.dir, g.ports["routes"], tlsBlock, g.backend.addr, g.ports["navy"])
		return cfg
	}
	g.loadCaddyfile(t, render)
	return g
}

// problem is an API client's view of a refusal.
type problem struct {
	Error   string   `json:"error"`
	Reason  string   `json:"reason"`
	Message string   `json:"message"`
	Missing []string `json:"missing"`
	Steps   []string `json:"steps"`
	Contact string   `json:"contact"`
}

func getProblem(t *testing.T, c *http.Client, url string) (int, problem) {
	t.Helper()
	resp, body := request(t, c, "GET", url, http.Header{"Accept": {"application/json"}}, nil)
	var p problem
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("GET %s: HTTP %d, body %q is not JSON: %v", url, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode, p
}

// auditEntries returns the audit log's entries for event, oldest first.
func (g *testGateway) auditEntries(t *testing.T, event string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && e["logger"] == auditLogName && e["event"] == event {
			out = append(out, e)
		}
	}
	return out
}

// TestAccessRoutesShareOneApp: two cacgate blocks on two routes of one site
// decide differently over one store and one consent; a group granted
// through the admin API admits at once on this node.
func TestAccessRoutesShareOneApp(t *testing.T) {
	g := startAccessGateway(t)
	g.createAccount("1234567890", "john.q.doe")
	doe := g.client(card(t, "doe.john.quincy"))
	// The banner, accepted once through the catch-all route's block...
	g.accept(t, doe, "routes")
	if resp, body := request(t, doe, "GET", g.url("routes", "/reports"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("open route: HTTP %d\n%s", resp.StatusCode, body)
	}
	// ...holds for the admin route's block too: it refuses on the policy,
	// not for consent.
	resp, page := request(t, doe, "GET", g.url("routes", "/admin/users"), browser, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("admin route without the group: HTTP %d\n%s", resp.StatusCode, page)
	}
	// The route's own index too (a pattern of /admin/* would miss it).
	if resp, _ := request(t, doe, "GET", g.url("routes", "/admin"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/admin without the group: HTTP %d", resp.StatusCode)
	}
	for _, want := range []string{
		"You do not have access to this page",
		"This site is limited to: members of group ops-admins.",
		"You are signed in as john.q.doe.",
		"Ops Help Desk",
		"<code>access_denied</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("403 page lacks %q:\n%s", want, page)
		}
	}
	for _, leak := range []string{g.dir, "banned", "edipi_file", "1234567890"} {
		if strings.Contains(page, leak) {
			t.Errorf("403 page shows %q", leak)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("403 page headers: %v", resp.Header)
	}

	status, p := getProblem(t, doe, g.url("routes", "/admin/users"))
	if status != http.StatusForbidden || p.Error != "access_denied" || p.Reason != access.ReasonGroup ||
		!slices.Equal(p.Missing, []string{"members of group ops-admins"}) || p.Contact != "Ops Help Desk" ||
		p.Message != "This site is limited to: members of group ops-admins." {
		t.Fatalf("JSON refusal: HTTP %d %+v", status, p)
	}
	if n := g.backend.count(); n != 1 {
		t.Fatalf("backend saw %d requests, want only the open route's", n)
	}

	// Granted through the admin API: admitted on the next request.
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", map[string][]string{"groups": {"ops-admins"}}, nil); code != http.StatusOK {
		t.Fatalf("adding the group: HTTP %d", code)
	}
	if resp, body := request(t, doe, "GET", g.url("routes", "/admin/users"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin route with the group: HTTP %d\n%s", resp.StatusCode, body)
	}
	if got := g.backend.last(t).Get("X-Remote-User"); got != "john.q.doe" {
		t.Errorf("backend X-Remote-User %q", got)
	}
	// And taken away again.
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/groups", map[string][]string{"groups": {"ops-admins"}}, nil); code != http.StatusOK {
		t.Fatalf("removing the group: HTTP %d", code)
	}
	if status, _ := getProblem(t, doe, g.url("routes", "/admin/users")); status != http.StatusForbidden {
		t.Fatalf("admin route after the group was removed: HTTP %d", status)
	}

	// Every refusal is audited with its reason, rules and path.
	denied := g.auditEntries(t, "access.denied")
	if len(denied) < 3 {
		t.Fatalf("%d access.denied entries, want 3", len(denied))
	}
	e := denied[0]
	if e["reason"] != "group" || e["username"] != "john.q.doe" || e["edipi"] != "1234567890" || e["path"] != "/admin/users" ||
		e["auth_method"] != "cac" || e["outcome"] != "failure" || e["cert_sha256"] != fingerprint(card(t, "doe.john.quincy")) {
		t.Errorf("audit entry %v", e)
	}
	if rules, _ := e["rules"].([]any); len(rules) != 1 || rules[0] != "allow group ops-admins" {
		t.Errorf("audit rules %v", e["rules"])
	}
}

// TestAccessEDIPIFileReload: adding a DoD ID to a deny file shuts that
// person out within the check interval, on both routes and the account
// page; taking it out lets them back in.
func TestAccessEDIPIFileReload(t *testing.T) {
	g := startAccessGateway(t)
	g.createAccount("1234567891", "jane.smith")
	smith := g.client(card(t, "smith.jane"))
	g.accept(t, smith, "routes")
	if resp, _ := request(t, smith, "GET", g.url("routes", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the ban: HTTP %d", resp.StatusCode)
	}
	banned := filepath.Join(g.dir, "banned.txt")
	writeList := func(content string, step int) {
		t.Helper()
		replaceFile(t, banned, content, time.Now().Add(time.Duration(step)*time.Second))
	}
	waitStatus := func(path string, want int) problem {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			status, p := getProblem(t, smith, g.url("routes", path))
			if status == want {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still HTTP %d after a minute, want %d", path, status, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	writeList("# after the review\n1234567891\n", 1)
	p := waitStatus("/", http.StatusForbidden)
	if p.Reason != access.ReasonDenied || p.Message != "An access rule of this site excludes your account." || len(p.Missing) != 0 {
		t.Errorf("ban refusal %+v", p)
	}
	if status, p := getProblem(t, smith, g.url("routes", "/admin/x")); status != http.StatusForbidden || p.Reason != access.ReasonDenied {
		t.Errorf("admin route during the ban: HTTP %d %+v", status, p)
	}
	// The gateway's own account page follows the deny rules too.
	if status, p := getProblem(t, smith, g.url("routes", "/.cacgate/account")); status != http.StatusForbidden || p.Error != "access_denied" {
		t.Errorf("account page during the ban: HTTP %d %+v", status, p)
	}

	// A broken file keeps the ban in place.
	writeList("1234567891\nnot a DoD ID\n", 2)
	// Wait for the watcher to have tried (and failed) to reload it: the
	// log says so. Polled, not slept: the machine may be busy.
	deadline := time.Now().Add(time.Minute)
	for {
		log, _ := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
		if bytes.Contains(log, []byte("edipi_file reload failed")) {
			if !bytes.Contains(log, []byte("line 2")) {
				t.Error("the failed reload is not logged with its reason")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed reload was never logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := getProblem(t, smith, g.url("routes", "/")); status != http.StatusForbidden {
		t.Fatalf("after a bad reload: HTTP %d, want the old list to hold", status)
	}

	writeList("# lifted\n", 3)
	waitStatus("/", http.StatusOK)

	var entry map[string]any
	for _, e := range g.auditEntries(t, "access.denied") {
		if e["reason"] == access.ReasonDenied {
			entry = e
			break
		}
	}
	if entry == nil {
		t.Fatal("no access.denied entry for the ban")
	}
	if rules, _ := entry["rules"].([]any); len(rules) != 1 || rules[0] != "deny edipi_file "+banned {
		t.Errorf("audit rules %v", entry["rules"])
	}
}

// TestAccessSiteWithAffiliationAndPolicy: a second site's own rules over
// the same app.
func TestAccessSiteWithAffiliationAndPolicy(t *testing.T) {
	g := startAccessGateway(t)
	g.createAccount("1234567890", "john.q.doe")
	g.createAccount("1234567891", "jane.smith")
	smith := g.client(card(t, "smith.jane"))
	g.accept(t, smith, "navy")
	if resp, body := request(t, smith, "GET", g.url("navy", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("Navy card holder: HTTP %d\n%s", resp.StatusCode, body)
	}
	doe := g.client(card(t, "doe.john.quincy"))
	g.accept(t, doe, "navy")
	status, p := getProblem(t, doe, g.url("navy", "/"))
	if status != http.StatusForbidden || p.Reason != access.ReasonAffiliation || !slices.Equal(p.Missing, []string{"Navy affiliation"}) {
		t.Fatalf("Army card holder: HTTP %d %+v", status, p)
	}
}

func TestAccessCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"cacgate {\nallow\n}", "wrong argument count"},
		{"cacgate {\nallow group\n}", "needs at least one value"},
		{"cacgate {\npermit group a\n}", "unrecognized cacgate subdirective"},
		{"cacgate {\ndeny role admin\n}", `unknown kind "role"`},
	} {
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
	h := new(Handler)
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("cacgate {\nallow group a b\nallow group c\nrequire policy 1.2.3\ndeny edipi 1234567890\n}")); err != nil {
		t.Fatal(err)
	}
	want := []access.Rule{
		{Effect: "allow", Kind: "group", Values: []string{"a", "b"}},
		{Effect: "allow", Kind: "group", Values: []string{"c"}},
		{Effect: "require", Kind: "policy", Values: []string{"1.2.3"}},
		{Effect: "deny", Kind: "edipi", Values: []string{"1234567890"}},
	}
	if fmt.Sprint(h.Access) != fmt.Sprint(want) {
		t.Errorf("rules %v", h.Access)
	}
}

// TestAccessProvisionErrors: a bad rule stops the config from loading with
// an error that names it.
func TestAccessProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		rule access.Rule
		want string
	}{
		{access.Rule{Effect: "allow", Kind: "group", Values: []string{"Ops Admins"}}, "not a valid group name"},
		{access.Rule{Effect: "require", Kind: "policy", Values: []string{"2.16.x"}}, "not a dotted OID"},
		{access.Rule{Effect: "deny", Kind: "edipi_file", Values: []string{filepath.Join(dir, "missing.txt")}}, "no such file"},
		{access.Rule{Effect: "allow", Kind: "affiliation"}, "at least one value"},
		{access.Rule{Effect: "allow", Kind: "rank", Values: []string{"O-6"}}, `unknown kind "rank"`},
	} {
		h := &Handler{Access: []access.Rule{tc.rule}}
		_, err := h.provisionAccess()
		h.Cleanup()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "access rule 1") {
			t.Errorf("%v: error %v, want %q", tc.rule, err, tc.want)
		}
	}
}

// TestAccessEnrollmentAndPasswordSessions: allow and require rules do not
// stop enrollment (a group can only be granted to an account that exists),
// deny rules do; a password sign-in cannot meet a certificate rule and is
// told to use a card.
func TestAccessEnrollmentAndPasswordSessions(t *testing.T) {
	g := startEnrollGateway(t, `password_login on
		require policy 2.16.840.1.101.2.1.11.42
		require group ops
		allow category "DOD  civilian"
		deny edipi 1234567896`)

	johnson := g.client(card(t, "johnson.robert.e.jr"))
	g.accept(t, johnson, "main")
	if _, page := enrollSteps(t, g, johnson, "900-11-1892", "1975-04-12"); !strings.Contains(page, "robert.e.johnson") {
		t.Fatalf("enrolling while the rules are not met:\n%s", page)
	}
	status, p := getProblem(t, johnson, g.url("main", "/app"))
	if status != http.StatusForbidden || p.Reason != access.ReasonGroup || !slices.Equal(p.Missing, []string{"members of group ops"}) {
		t.Fatalf("card without the group: HTTP %d %+v", status, p)
	}
	// The account page is the gateway's: reachable without the group.
	if resp, body := request(t, johnson, "GET", g.url("main", "/.cacgate/account"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("account page: HTTP %d\n%s", resp.StatusCode, body)
	}

	pw := g.client(nil)
	if resp, _ := signIn(t, g, pw, "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password sign-in: HTTP %d", resp.StatusCode)
	}
	_, page := request(t, pw, "GET", g.url("main", "/.cacgate/consent?next=/app"), browser, nil)
	if resp, _ := post(t, pw, g.url("main", "/.cacgate/consent"), url.Values{"csrf": {formValue(t, page, "csrf")}, "next": {"/app"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password user's banner: HTTP %d", resp.StatusCode)
	}
	checkPassword := func(wantMissing int) {
		t.Helper()
		status, p := getProblem(t, pw, g.url("main", "/app"))
		if status != http.StatusForbidden || p.Reason != access.ReasonPolicy || len(p.Missing) != wantMissing ||
			!strings.Contains(p.Missing[0], "a password sign-in cannot meet this") ||
			!slices.Contains(p.Steps, "Sign in with your CAC or PIV card instead of a password.") {
			t.Fatalf("password session: HTTP %d %+v", status, p)
		}
	}
	checkPassword(2) // the policy and the group

	if code := g.adminDo("POST", "/cacgate/accounts/robert.e.johnson/groups", map[string][]string{"groups": {"ops"}}, nil); code != http.StatusOK {
		t.Fatalf("adding the group: HTTP %d", code)
	}
	// With the group, the card passes: its policy, the group, and the
	// roster category "DoD Civilian" (the only allow rule).
	if resp, body := request(t, johnson, "GET", g.url("main", "/app"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("card with the group: HTTP %d\n%s", resp.StatusCode, body)
	}
	checkPassword(1) // still no certificate
	var pwDenied bool
	for _, e := range g.auditEntries(t, "access.denied") {
		if e["auth_method"] == "password" && e["reason"] == "policy" && e["username"] == "robert.e.johnson" && e["edipi"] == "1234567892" {
			pwDenied = true
		}
	}
	if !pwDenied {
		t.Error("no access.denied audit entry for the password session")
	}

	// A card a deny rule names cannot enroll.
	garcia := g.client(card(t, "garcia.luis.a"))
	g.accept(t, garcia, "main")
	for _, path := range []string{"/.cacgate/enroll", "/.cacgate/enroll/new"} {
		status, p := getProblem(t, garcia, g.url("main", path))
		if status != http.StatusForbidden || p.Error != "access_denied" || p.Reason != access.ReasonDenied {
			t.Errorf("%s for a denied card: HTTP %d %+v", path, status, p)
		}
	}
	resp, page := request(t, garcia, "GET", g.url("main", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "An access rule of this site excludes your account.") || strings.Contains(page, "1234567896") {
		t.Errorf("enrollment page for a denied card: HTTP %d\n%s", resp.StatusCode, page)
	}
}

// TestAccessListsSharedAcrossBlocks: blocks naming one file share one list
// (and watcher); a block provisioned while the file is broken fails even
// though the list is already loaded; the last Cleanup releases it.
func TestAccessListsSharedAcrossBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "banned.txt")
	if err := os.WriteFile(path, []byte("1234567890\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := []access.Rule{{Effect: "deny", Kind: "edipi_file", Values: []string{path}}}
	a, b := &Handler{Access: rules}, &Handler{Access: rules}
	var pa, pb *access.Policy
	for _, x := range []struct {
		h *Handler
		p **access.Policy
	}{{a, &pa}, {b, &pb}} {
		var err error
		if *x.p, err = x.h.provisionAccess(); err != nil {
			t.Fatal(err)
		}
	}
	if pa.Lists()[0] != pb.Lists()[0] {
		t.Fatal("two blocks naming one file hold two lists")
	}
	if refs, ok := accessLists.References(path); !ok || refs != 2 {
		t.Fatalf("references %d %v", refs, ok)
	}

	replaceFile(t, path, "1234567890\nbroken\n", time.Now().Add(time.Second))
	c := &Handler{Access: rules}
	_, err := c.provisionAccess()
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a new block on a broken file: %v", err)
	}
	c.Cleanup() // as Caddy does after a failed Provision
	// The running blocks keep the list they had.
	if !pa.Lists()[0].Contains("1234567890") {
		t.Fatal("the old list was dropped")
	}

	a.Cleanup()
	b.Cleanup()
	if _, ok := accessLists.References(path); ok {
		t.Fatal("the list outlived its last block")
	}
}

// replaceFile replaces path's content with a new file moved over it, as
// the README tells operators to, dated mtime (forward, so the change is
// seen even with coarse file times). Written in place, a watcher could
// read the file between its truncation and its write (a busy machine makes
// that likely) and load an empty list: a ban lifted, or the list a test
// expects to hold dropped.
func replaceFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	next := path + ".new"
	if err := os.WriteFile(next, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(next, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
}
