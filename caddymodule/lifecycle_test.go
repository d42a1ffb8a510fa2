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
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/mailtest"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// npeCard issues a DoD non-person (device) certificate: a host name, no
// DoD ID, no UPN, clientAuth and serverAuth.
func npeCard(t *testing.T, name, cn string) *testpki.Card {
	t.Helper()
	c, err := testPKI(t).Intermediate.IssueCard(testpki.CardSpec{Name: name, CommonName: cn, UPN: "-", Email: "-",
		NoSmartcardLogon: true, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mailGateway starts the gateway with a mail relay (an in-process SMTP
// server with STARTTLS and authentication).
func mailGateway(t *testing.T, globalExtra string) (*testGateway, *mailtest.Server) {
	t.Helper()
	relay := mailtest.Start(t, testPKI(t).Server.TLS, "gate", "relay-secret")
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	writeFile(t, root, testPKI(t).Root.CertPEM)
	t.Setenv("CACGATE_TEST_SMTP_PASSWORD", "relay-secret")
	rosterPath := filepath.Join(dir, "roster.csv")
	writeFile(t, rosterPath, []byte(testRoster+"\n"))
	g := startGateway(t, fmt.Sprintf(`roster csv %s
			mail {
				smtp 127.0.0.1 %d
				username gate
				password {env.CACGATE_TEST_SMTP_PASSWORD}
				from "cacgate@example.mil"
				ca_file %s
				site "Test Gateway"
				contact "Test Help Desk"
				interval 1s
				admin_notices isso@example.mil
			}
			%s`, rosterPath, relay.Port(), root, globalExtra), "")
	return g, relay
}

// TestNPEReachesBackendAsUtilityAccount: a system's DoD certificate
// registered to a utility account reaches the backend as that account,
// with no banner and X-Cac-Account-Type utility; unregistered it is
// refused as before; a person's card is never taken for one; the utility
// account goes with its sponsor.
//
// It runs at a site without accept rules and at one that accepts only DoD
// persons' credentials: an NPE certificate asserts none of their
// policies, and its registration, not the accept rules, admits it.
func TestNPEReachesBackendAsUtilityAccount(t *testing.T) {
	for _, site := range []struct{ name, extra string }{{"no-accept", ""}, {"accept-dod", "accept dod"}} {
		t.Run(site.name, func(t *testing.T) { testNPEReachesBackend(t, site.extra) })
	}
}

func testNPEReachesBackend(t *testing.T, mainExtra string) {
	g := startGateway(t, "", mainExtra)
	device := npeCard(t, "npe.logistics", "logistics.example.mil")
	c := g.client(device)

	// Not registered: refused as "not a CAC identity", as before.
	resp, body := request(t, c, "GET", g.url("main", "/api/feed"), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "certificate_invalid") {
		t.Fatalf("unregistered NPE: HTTP %d %s", resp.StatusCode, body)
	}

	g.createAccount("1234567891", "jane.smith")
	var acct AccountJSON
	exp := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	if code := g.adminDo("POST", "/cacgate/utility", map[string]any{"username": "svc.logistics", "name": "Logistics feed",
		"sponsor": "jane.smith", "expires_at": exp}, &acct); code != http.StatusCreated || acct.Type != "utility" || acct.EDIPI != "" {
		t.Fatalf("creating the utility account: HTTP %d %+v", code, acct)
	}
	certPEM := string(pemEncode("CERTIFICATE", device.Cert.Raw))
	if code := g.adminDo("POST", "/cacgate/accounts/svc.logistics/npe", map[string]string{"certificate": certPEM}, nil); code != http.StatusCreated {
		t.Fatalf("registering the NPE certificate: HTTP %d", code)
	}
	// A person's card cannot be registered as a system's.
	doe := card(t, "doe.john.quincy")
	if code := g.adminDo("POST", "/cacgate/accounts/svc.logistics/npe", map[string]string{"certificate": string(pemEncode("CERTIFICATE", doe.Cert.Raw))}, nil); code != http.StatusBadRequest {
		t.Fatalf("registering a person's card as NPE: HTTP %d", code)
	}

	// No banner, the utility account's identity.
	for _, accept := range []string{"application/json", "text/html"} {
		resp, body = request(t, c, "GET", g.url("main", "/api/feed"), http.Header{"Accept": {accept}}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("registered NPE (%s): HTTP %d %s", accept, resp.StatusCode, body)
		}
		h := g.backend.last(t)
		if h.Get("X-Remote-User") != "svc.logistics" || h.Get("X-Cac-Account-Type") != "utility" || h.Get("X-Cac-Auth-Method") != "npe" || h.Get("X-Cac-Edipi") != "" {
			t.Fatalf("backend headers for the NPE: %v", h)
		}
	}
	// The gateway's pages are for people.
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/account"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("NPE on the account page: HTTP %d", resp.StatusCode)
	}

	// A person signing in is a person.
	pc := g.client(card(t, "smith.jane"))
	g.accept(t, pc, "main")
	if resp, _ := request(t, pc, "GET", g.url("main", "/app"), nil, nil); resp.StatusCode != http.StatusOK || g.backend.last(t)["X-Cac-Account-Type"] != nil {
		t.Fatalf("person: HTTP %d, type %q (want no header)", resp.StatusCode, g.backend.last(t)["X-Cac-Account-Type"])
	}

	// The sponsor disabled: the utility account with it, at once.
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/disable", nil, nil); code != http.StatusOK {
		t.Fatalf("disabling the sponsor: HTTP %d", code)
	}
	resp, body = request(t, c, "GET", g.url("main", "/api/feed"), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "account_disabled") {
		t.Fatalf("NPE with its sponsor disabled: HTTP %d %s", resp.StatusCode, body)
	}
}

// TestPersonCardNeverNPE: a person's certificate that is not a valid CAC
// identity (a UPN with a DoD ID, a common name without one) stays refused
// even when its fingerprint is registered to a utility account behind the
// admin service's back.
func TestPersonCardNeverNPE(t *testing.T) {
	g := startGateway(t, "", "")
	odd, err := testPKI(t).Intermediate.IssueCard(testpki.CardSpec{Name: "odd.person", CommonName: "SOMEONE.WITHOUT.ID", EDIPI: "1234567899"})
	if err != nil {
		t.Fatal(err)
	}
	g.createAccount("1234567891", "jane.smith")
	if code := g.adminDo("POST", "/cacgate/utility", map[string]any{"username": "svc.odd", "name": "Odd",
		"sponsor": "jane.smith", "expires_at": time.Now().Add(24 * time.Hour)}, nil); code != http.StatusCreated {
		t.Fatalf("creating the utility account: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/svc.odd/npe", map[string]string{"certificate": string(pemEncode("CERTIFICATE", odd.Cert.Raw))}, nil); code != http.StatusBadRequest {
		t.Fatalf("admin registered a UPN-bearing certificate: HTTP %d", code)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(g.dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.RegisterNPE(context.Background(), "svc.odd", store.NPECert{Fingerprint: fingerprint(odd)}); err != nil {
		t.Fatal(err)
	}
	resp, body := request(t, g.client(odd), "GET", g.url("main", "/api/feed"), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "certificate_invalid") {
		t.Fatalf("person's certificate registered as NPE: HTTP %d %s", resp.StatusCode, body)
	}
}

// TestMailNoticesAndLastSignIn: notices reach a real SMTP server through
// the running gateway (account created, card registered by an admin, the
// mail test route), and the second banner acceptance shows the last
// sign-in notice.
func TestMailNoticesAndLastSignIn(t *testing.T) {
	g, relay := mailGateway(t, "inactive_after 35d")
	var a AccountJSON
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567890", "username": "john.q.doe",
		"given_name": "John", "email": "john.doe@example.mil"}, &a); code != http.StatusCreated {
		t.Fatalf("creating account: HTTP %d", code)
	}
	msgs := relay.WaitFor(t, 2, 2*time.Minute)
	if msgs[1].To[0] != "isso@example.mil" || !strings.Contains(msgs[1].Header("Subject"), "[admin copy: john.q.doe]") {
		t.Fatalf("administrators' copy: %+v", msgs[1])
	}
	if msgs[0].To[0] != "john.doe@example.mil" || msgs[0].Header("X-Cacgate-Notice") != "account_created" ||
		!strings.Contains(msgs[0].Header("Subject"), "Test Gateway") || !strings.Contains(msgs[0].Data, "Test Help Desk") {
		t.Fatalf("account created notice: %+v", msgs[0])
	}
	if code := g.adminDo("POST", "/cacgate/mail/test", map[string]string{"to": "ops@example.mil"}, nil); code != http.StatusOK {
		t.Fatalf("mail test: HTTP %d", code)
	}
	msgs = relay.WaitFor(t, 3, 2*time.Minute)
	if msgs[2].To[0] != "ops@example.mil" || msgs[2].Header("X-Cacgate-Notice") != "test" {
		t.Fatalf("test message: %+v", msgs[2])
	}
	if code := g.adminDo("POST", "/cacgate/mail/test", map[string]string{"to": "not an address"}, nil); code == http.StatusOK {
		t.Fatal("mail test to a bad address succeeded")
	}

	// First logon: straight on. Second (after signing out): the notice.
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	c2 := g.client(card(t, "doe.john.quincy")) // a new browser session
	resp, page := request(t, c2, "GET", g.url("main", "/.cacgate/consent?next=/app"), browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("banner: HTTP %d", resp.StatusCode)
	}
	resp, _ = request(t, c2, "POST", g.url("main", "/.cacgate/consent"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}},
		strings.NewReader(url.Values{"csrf": {formValue(t, page, "csrf")}, "next": {"/app"}}.Encode()))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/.cacgate/last-signin?next=%2Fapp" {
		t.Fatalf("second acceptance: HTTP %d Location %q", resp.StatusCode, loc)
	}
	resp, page = request(t, c2, "GET", g.url("main", "/.cacgate/last-signin?next=%2Fapp"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Previous successful sign-in") || !strings.Contains(page, "127.0.0.1") ||
		!strings.Contains(page, time.Now().UTC().Format("2006-01-02")) || !strings.Contains(page, `href="/app"`) {
		t.Fatalf("last sign-in page: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = request(t, c2, "GET", g.url("main", "/.cacgate/account"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Previous sign-in") || !strings.Contains(page, "E-mail notices") {
		t.Fatalf("account page: HTTP %d\n%s", resp.StatusCode, page)
	}
	// Turning an optional notice off.
	resp, page = request(t, c2, "POST", g.url("main", "/.cacgate/account/notices"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}},
		strings.NewReader(url.Values{"csrf": {formValue(t, page, "csrf")}, "notice": {"account_approved"}}.Encode()))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "choices were saved") {
		t.Fatalf("saving notice choices: HTTP %d\n%s", resp.StatusCode, page)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(g.dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := st.AccountByUsername(context.Background(), "john.q.doe")
	if err != nil || strings.Join(acct.MailOptOut, ",") != "account_pending,inactive_warning,password_expiring" {
		t.Fatalf("opt-outs stored: %v, %v", acct.MailOptOut, err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLifecycleProvisionErrors: settings that cannot work stop the config.
func TestLifecycleProvisionErrors(t *testing.T) {
	for name, a := range map[string]*App{
		"inactive_after under a day":   {InactiveAfter: caddy.Duration(time.Hour)},
		"warning not before":           {InactiveAfter: caddy.Duration(35 * 24 * time.Hour), InactiveWarning: caddy.Duration(40 * 24 * time.Hour)},
		"plain text to a remote relay": {Mail: &MailConfig{Host: "relay.example.mil", TLS: "off", From: "a@example.mil"}},
		"unknown tls mode":             {Mail: &MailConfig{Host: "relay.example.mil", TLS: "maybe", From: "a@example.mil"}},
		"missing ca file":              {Mail: &MailConfig{Host: "relay.example.mil", From: "a@example.mil", CAFile: "/nonexistent/ca.pem"}},
		"unset password placeholder":   {Mail: &MailConfig{Host: "relay.example.mil", From: "a@example.mil", Username: "u", Password: "{env.CACGATE_TEST_UNSET_VAR}"}},
	} {
		a.logger = zap.NewNop()
		if err := a.provisionLifecycle(caddy.Context{}); err == nil {
			t.Errorf("%s: provisioned", name)
		}
	}
}

// TestRestoreInactiveAccount: an account disabled for inactivity is
// refused with a way back; its holder restores it by confirming who they
// are against the roster (a wrong answer restores nothing), and an account
// an administrator disabled cannot be restored that way.
func TestRestoreInactiveAccount(t *testing.T) {
	dir := t.TempDir()
	rosterPath := filepath.Join(dir, "roster.csv")
	writeFile(t, rosterPath, []byte(testRoster+"\n"))
	g := startGateway(t, "roster csv "+rosterPath, "")
	g.createAccount("1234567891", "jane.smith")
	g.createAccount("1234567896", "luis.a.garcia")
	st, err := store.OpenSQLite(context.Background(), filepath.Join(g.dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// 40 days on, with inactive_after 35d: both disabled.
	events, _, err := st.Sweep(context.Background(), store.SweepPolicy{Now: time.Now().Add(40 * 24 * time.Hour), InactiveAfter: 35 * 24 * time.Hour}, 100, nil)
	if err != nil || len(events) != 2 {
		t.Fatalf("sweep: %v, %v", events, err)
	}
	g.adminDo("POST", "/cacgate/accounts/luis.a.garcia/disable", nil, nil) // now disabled by an administrator

	c := g.client(card(t, "smith.jane"))
	g.accept(t, c, "main")
	resp, page := request(t, c, "GET", g.url("main", "/app"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "nobody signed in with it") || !strings.Contains(page, `href="/.cacgate/restore"`) {
		t.Fatalf("inactive account: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = request(t, c, "GET", g.url("main", "/.cacgate/restore"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "jane.smith") {
		t.Fatalf("restore page: HTTP %d\n%s", resp.StatusCode, page)
	}
	post := func(c *http.Client, page, ssn, dob string) (*http.Response, string) {
		return request(t, c, "POST", g.url("main", "/.cacgate/restore"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}},
			strings.NewReader(url.Values{"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {ssn}, "dob": {dob}}.Encode()))
	}
	if resp, body := post(c, page, "900-11-1891", "1985-03-23"); resp.StatusCode != http.StatusForbidden || strings.Contains(body, "1985-03-23") {
		t.Fatalf("wrong date of birth: HTTP %d", resp.StatusCode)
	}
	if a, _ := st.AccountByUsername(context.Background(), "jane.smith"); a.Status != store.StatusDisabled {
		t.Fatal("restored on a wrong answer")
	}
	if resp, _ = post(c, page, "900-11-1891", "1985-03-22"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right answers: HTTP %d", resp.StatusCode)
	}
	if resp, _ = request(t, c, "GET", g.url("main", "/app"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("restored account: HTTP %d", resp.StatusCode)
	}

	lc := g.client(card(t, "garcia.luis.a"))
	g.accept(t, lc, "main")
	resp, page = request(t, lc, "GET", g.url("main", "/.cacgate/restore"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not_restorable") && !strings.Contains(page, "Nothing to restore") {
		t.Fatalf("administrator-disabled account on the restore page: HTTP %d\n%s", resp.StatusCode, page)
	}
}
