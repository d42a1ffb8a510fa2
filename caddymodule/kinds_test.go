package caddymodule

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/testpki"
)

var sharedFederal = sync.OnceValues(func() (*testpki.Federal, error) { return testpki.GenerateFederal(time.Time{}) })

func federalPKI(t testing.TB) *testpki.Federal {
	t.Helper()
	f, err := sharedFederal()
	if err != nil {
		t.Fatalf("generating federal test PKI: %v", err)
	}
	return f
}

// startKindsGateway runs three sites over real mTLS, both verifying chains
// in the handshake against the DoD and the federal test roots:
//
//	all      accept dod piv piv-i eca
//	dodpiv   accept dod piv (PIV-I and ECA refused)
//	legacy   no accept rules: every certificate read as a DoD CAC
func startKindsGateway(t *testing.T, globalExtra, allExtra string) *testGateway {
	t.Helper()
	p, f := testPKI(t), federalPKI(t)
	g := &testGateway{t: t, dir: t.TempDir(), ports: map[string]int{}, backend: startBackend(t)}
	roots := append([]byte{}, p.Root.CertPEM...)
	for _, r := range f.Roots() {
		roots = append(roots, r.CertPEM...)
	}
	for _, fl := range []struct {
		name string
		data []byte
	}{
		{"roots.pem", roots},
		{"server.pem", pemChain(p.Server.Chain)},
		{"server-key.pem", keyPEM(t, p.Server)},
	} {
		if err := os.WriteFile(filepath.Join(g.dir, fl.name), fl.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.roots = x509.NewCertPool()
	g.roots.AddCert(p.Root.Cert)
	render := func() string {
		sites := []string{"all", "dodpiv", "legacy"}
		ports := freePorts(t, len(sites)+1)
		for i, site := range sites {
			g.ports[site] = ports[i]
		}
		g.admin = fmt.Sprintf("127.0.0.1:%d", ports[len(sites)])
		tlsBlock := fmt.Sprintf(`tls %[1]s/server.pem %[1]s/server-key.pem {
			client_auth {
				mode verify_if_given
				trust_pool file %[1]s/roots.pem
			}
		}`, g.dir)
		return fmt.Sprintf(`{
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
			revocation off
			hash_wait 5m
			hash_concurrency 4
			%[3]s
		}
	}

	https://localhost:%[4]d {
		%[5]s
		cacgate {
			accept dod piv piv-i
			accept eca
			%[9]s
		}
		request_header X-From-Placeholder "{http.auth.user.credential}"
		reverse_proxy %[6]s
	}

	https://localhost:%[7]d {
		%[5]s
		cacgate {
			accept dod piv
		}
		reverse_proxy %[6]s
	}

	https://localhost:%[8]d {
		%[5]s
		cacgate
		reverse_proxy %[6]s
	}
	`, g.admin, g.dir, globalExtra, g.ports["all"], tlsBlock, g.backend.addr, g.ports["dodpiv"], g.ports["legacy"], allExtra)
	}
	g.loadCaddyfile(t, render)
	return g
}

// createKindAccount creates an account of a non-DoD credential through
// the admin API.
func createKindAccount(t *testing.T, g *testGateway, username string, kind cacid.Kind, key string) {
	t.Helper()
	var a AccountJSON
	body := map[string]string{"username": username, "credential": string(kind), "key": key}
	if code := g.adminDo("POST", "/cacgate/accounts", body, &a); code != http.StatusCreated || a.Credential != string(kind) || a.Key != key || a.EDIPI != "" {
		t.Fatalf("creating %s account %s: HTTP %d %+v", kind, username, code, a)
	}
	// An EDIPI beside a non-DoD credential is refused.
	body["username"], body["edipi"] = username+"x", "1234567899"
	if code := g.adminDo("POST", "/cacgate/accounts", body, nil); code != http.StatusBadRequest {
		t.Errorf("non-DoD account with an EDIPI: HTTP %d, want 400", code)
	}
}

// TestCredentialKindsOverMTLS: each kind is admitted where the site
// accepts it, with the headers saying which kind signed in (and an EDIPI
// only for a DoD card), and refused where it does not.
func TestCredentialKindsOverMTLS(t *testing.T) {
	f := federalPKI(t)
	g := startKindsGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	createKindAccount(t, g, "jane.federal", cacid.KindPIV, testpki.FederalPIVUUID)
	createKindAccount(t, g, "pat.partner", cacid.KindPIVI, testpki.FederalPIVIUUID)
	eca, err := cacid.ParseAs(f.ECA.Cert, cacid.KindECA, cacid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	createKindAccount(t, g, "carl.contractor", cacid.KindECA, eca.Key)

	for _, c := range []struct {
		card       *testpki.Card
		user, kind string
		edipi      string
	}{
		{card(t, "doe.john.quincy"), "john.q.doe", "cac", "1234567890"},
		{f.PIV, "jane.federal", "piv", ""},
		{f.PIVI, "pat.partner", "piv-i", ""},
		{f.ECA, "carl.contractor", "eca", ""},
	} {
		cl := g.client(c.card)
		g.accept(t, cl, "all")
		resp, body := request(t, cl, "GET", g.url("all", "/app"), nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s on site all: HTTP %d: %s", c.kind, resp.StatusCode, body)
		}
		h := g.backend.last(t)
		if got := h.Get("X-Remote-User"); got != c.user {
			t.Errorf("%s: X-Remote-User = %q, want %q", c.kind, got, c.user)
		}
		if got := h.Get("X-Cac-Credential"); got != c.kind {
			t.Errorf("%s: X-Cac-Credential = %q", c.kind, got)
		}
		if got := h.Get("X-From-Placeholder"); got != c.kind {
			t.Errorf("%s: {http.auth.user.credential} = %q", c.kind, got)
		}
		if got, ok := h["X-Cac-Edipi"]; (c.edipi == "" && ok) || (c.edipi != "" && (len(got) != 1 || got[0] != c.edipi)) {
			t.Errorf("%s: X-Cac-Edipi = %q, want %q (absent when empty)", c.kind, got, c.edipi)
		}
	}

	// The DoD+PIV site refuses PIV-I and ECA, saying what it accepts.
	for _, c := range []*testpki.Card{f.PIVI, f.ECA} {
		resp, body := request(t, g.client(c), "GET", g.url("dodpiv", "/app"), browser, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not accept") {
			t.Errorf("%s on site dodpiv: HTTP %d, want 403 saying it does not accept it:\n%s", c.Name, resp.StatusCode, body)
		}
	}
	// ... and admits PIV.
	cl := g.client(f.PIV)
	g.accept(t, cl, "dodpiv")
	if resp, body := request(t, cl, "GET", g.url("dodpiv", "/app"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("PIV on site dodpiv: HTTP %d: %s", resp.StatusCode, body)
	}
	// A site without accept rules reads every certificate as a CAC, as
	// before kinds: a PIV card without a DoD name is refused.
	if resp, body := request(t, g.client(f.PIV), "GET", g.url("legacy", "/app"), browser, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "DoD CAC") {
		t.Errorf("PIV on the legacy site: HTTP %d:\n%s", resp.StatusCode, body)
	}
	// There every card is a CAC: X-Cac-Credential is not sent (nor a
	// client's copy of it), and a person's request has no
	// X-Cac-Account-Type either.
	cl = g.client(card(t, "doe.john.quincy"))
	g.accept(t, cl, "legacy")
	if resp, body := request(t, cl, "GET", g.url("legacy", "/app"), http.Header{"X-Cac-Credential": {"eca"}}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("CAC on the legacy site: HTTP %d: %s", resp.StatusCode, body)
	}
	h := g.backend.last(t)
	if got, ok := h["X-Cac-Credential"]; ok {
		t.Errorf("legacy site: X-Cac-Credential = %q, want none", got)
	}
	if got, ok := h["X-Cac-Account-Type"]; ok {
		t.Errorf("legacy site: X-Cac-Account-Type = %q for a person, want none", got)
	}
	if h.Get("X-Remote-User") != "john.q.doe" || h.Get("X-Cac-Edipi") != "1234567890" {
		t.Errorf("legacy site: identity headers %v", h)
	}
}

// TestCredentialKindRenewal: a PIV card's other certificate (same card
// UUID) links itself to the account; a renewed card (new UUID) does not,
// and is refused as unregistered until its holder registers it.
func TestCredentialKindRenewal(t *testing.T) {
	f := federalPKI(t)
	g := startKindsGateway(t, "", "")
	createKindAccount(t, g, "jane.federal", cacid.KindPIV, testpki.FederalPIVUUID)
	cl := g.client(f.PIV)
	g.accept(t, cl, "all")
	if resp, body := request(t, cl, "GET", g.url("all", "/app"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("PIV card: HTTP %d: %s", resp.StatusCode, body)
	}
	acct, err := g.openStore(t).AccountByUsername(context.Background(), "jane.federal")
	if err != nil || len(acct.Cards) != 1 || acct.Cards[0].Fingerprint != fingerprint(f.PIV) || acct.Cards[0].Kind != "piv" {
		t.Fatalf("after first use: %+v, %v", acct, err)
	}
	linked := g.auditEntries(t, "card.linked")
	if len(linked) != 1 || linked[0]["credential"] != "piv" || linked[0]["credential_key"] != testpki.FederalPIVUUID || linked[0]["username"] != "jane.federal" {
		t.Errorf("card.linked audit entries: %v", linked)
	}
	renewed := g.client(f.PIVRenewed)
	g.accept(t, renewed, "all")
	resp, body := request(t, renewed, "GET", g.url("all", "/app"), nil, nil)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("renewed PIV card (new UUID) admitted without registration: %s", body)
	}
	acct, _ = g.openStore(t).AccountByUsername(context.Background(), "jane.federal")
	if len(acct.Cards) != 1 {
		t.Errorf("renewed card linked itself: %+v", acct.Cards)
	}
}

// sponsorSteps enrolls the client's non-DoD card on site all: no
// identity form (no personnel record covers it), straight to the
// profile, then the security questions.
func sponsorSteps(t *testing.T, g *testGateway, c *http.Client) (*http.Response, string) {
	t.Helper()
	resp, page := request(t, c, "GET", g.url("all", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		return resp, page
	}
	return profileAndQuestions(t, g, c, "all", page)
}

// TestCredentialKindEnrollment: a federal PIV holder and an ECA contractor
// enroll on a site in sponsor mode (same pages, no identity form), wait
// pending, are approved, and sign in as their kind; the PIV holder's
// renewed card is then registered with the password.
func TestCredentialKindEnrollment(t *testing.T) {
	f := federalPKI(t)
	rosterPath := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(testRoster+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startKindsGateway(t, "roster csv "+rosterPath, "enroll {\n sponsor\n }")
	for _, c := range []struct {
		card     *testpki.Card
		username string
		kind     string
	}{
		{f.PIV, "jane.q.federal", "piv"},
		{f.ECA, "carl.contractor", "eca"},
	} {
		cl := g.client(c.card)
		g.accept(t, cl, "all")
		resp, page := sponsorSteps(t, g, cl)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, c.username) {
			t.Fatalf("%s enrollment: HTTP %d\n%s", c.kind, resp.StatusCode, page)
		}
		var acct AccountJSON
		if code := g.adminDo("GET", "/cacgate/accounts/"+c.username, nil, &acct); code != http.StatusOK || acct.Status != "pending" || acct.EDIPI != "" || len(acct.Cards) != 1 {
			t.Fatalf("%s account: HTTP %d %+v", c.kind, code, acct)
		}
		if resp, _ := request(t, cl, "GET", g.url("all", "/app"), browser, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s pending account: HTTP %d, want 403", c.kind, resp.StatusCode)
		}
		if code := g.adminDo("POST", "/cacgate/accounts/"+c.username+"/approve", nil, nil); code != http.StatusOK {
			t.Fatalf("approving %s: HTTP %d", c.username, code)
		}
		if resp, body := request(t, cl, "GET", g.url("all", "/app"), nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s approved: HTTP %d %s", c.kind, resp.StatusCode, body)
		}
		if h := g.backend.last(t); h.Get("X-Remote-User") != c.username || h.Get("X-Cac-Credential") != c.kind || h.Get("X-Cac-Edipi") != "" {
			t.Errorf("%s headers: %v", c.kind, h)
		}
	}
	// The renewed PIV card (a new card UUID) does not link itself; its
	// holder registers it with the account's password.
	renewed := g.client(f.PIVRenewed)
	g.accept(t, renewed, "all")
	linkURL := g.url("all", "/.cacgate/enroll/link")
	_, page := request(t, renewed, "GET", linkURL, browser, nil)
	resp, page := post(t, renewed, linkURL, url.Values{"csrf": {formValue(t, page, "csrf")}, "username": {"jane.q.federal"}, "password": {"Correct.Horse~Bat9"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "now registered") {
		t.Fatalf("registering the renewed PIV card: HTTP %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := request(t, renewed, "GET", g.url("all", "/app"), nil, nil); resp.StatusCode != http.StatusOK || g.backend.last(t).Get("X-Remote-User") != "jane.q.federal" {
		t.Fatalf("renewed card after registration: HTTP %d", resp.StatusCode)
	}
}

// TestCredentialKindNeedsSponsor: without sponsor (or approval) mode, a non-DoD card
// cannot enroll itself; the page says whom to ask.
func TestCredentialKindNeedsSponsor(t *testing.T) {
	f := federalPKI(t)
	rosterPath := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(testRoster+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startKindsGateway(t, "roster csv "+rosterPath, "")
	cl := g.client(f.ECA)
	g.accept(t, cl, "all")
	resp, page := request(t, cl, "GET", g.url("all", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "ECA certificate") || strings.Contains(page, `name="password"`) {
		t.Fatalf("ECA enrollment without sponsor mode: HTTP %d\n%s", resp.StatusCode, page)
	}
}
