package caddymodule

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/trust"
)

// TestNonconformingCardsRefused: cards a trusted CA signed and Go's path
// validation accepts, but that are no end-entity authentication
// certificates (RFC 5280), are refused in every verification mode: by the
// handler after the handshake verified the chain (main), by the handler
// verifying the chain itself (strict: client_auth request + trust_pool),
// each with its page, JSON and audit entry, and by the TLS verifier in the
// handshake (audited at stage tls_handshake).
func TestNonconformingCardsRefused(t *testing.T) {
	g := startGateway(t, "", "")
	cards, err := testPKI(t).Intermediate.IssueNonconforming()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ca-true.carl":    trust.CodeIsCA,
		"keycertsign.kim": trust.CodeCAUsage,
		"crlsign.chris":   trust.CodeCAUsage,
		"rsa1024.ray":     trust.CodeWeakKey,
		"p224.pat":        trust.CodeWeakKey,
		"serial0.zed":     trust.CodeBadSerial,
	}
	for _, c := range cards {
		t.Run(c.Name, func(t *testing.T) {
			code := want[c.Name]
			client := func() *http.Client {
				hc := g.client(c)
				if pub, ok := c.Cert.PublicKey.(*ecdsa.PublicKey); ok && pub.Curve.Params().BitSize < 256 {
					// TLS 1.3 signature schemes name their curve, and
					// none is P-224; TLS 1.2's ECDSA schemes take any.
					hc.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
				}
				return hc
			}
			hc := client()
			for _, site := range []string{"main", "strict"} {
				resp, body := request(t, hc, "GET", g.url(site, "/"), apiClient, nil)
				if resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != code {
					t.Fatalf("%s, API client: HTTP %d %s; want 403 %s", site, resp.StatusCode, body, code)
				}
				resp, page := request(t, hc, "GET", g.url(site, "/"), browser, nil)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "cannot be used here") || !strings.Contains(page, code) {
					t.Fatalf("%s, browser: HTTP %d\n%s", site, resp.StatusCode, page)
				}
				// The refusal is the certificate's cached verdict: asked
				// again, on a new connection, the answer is the same.
				if resp, body := request(t, client(), "GET", g.url(site, "/app"), apiClient, nil); resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != code {
					t.Fatalf("%s, again: HTTP %d %s", site, resp.StatusCode, body)
				}
			}
			audited := 0
			for _, e := range g.auditEntries(t, "access.denied") {
				if e["reason"] == code && e["edipi"] == c.EDIPI && e["stage"] == nil {
					audited++
				}
			}
			if audited == 0 { // the repeats (both sites) are collapsed into it
				t.Errorf("no access.denied audit entry with reason %s for %s", code, c.EDIPI)
			}

			if _, err := client().Get(g.url("handshake", "/")); err == nil {
				t.Fatal("the TLS verifier let the handshake through")
			}
			var atHandshake map[string]any
			for _, e := range g.auditEntries(t, "access.denied") {
				if e["stage"] == "tls_handshake" && strings.Contains(fmt.Sprint(e["cert_subject"]), c.EDIPI) {
					atHandshake = e
				}
			}
			if atHandshake == nil || atHandshake["reason"] != code || atHandshake["cert_serial"] != c.Cert.SerialNumber.Text(16) {
				t.Errorf("handshake refusal audit: %v, want reason %s", atHandshake, code)
			}
		})
	}
	if g.backend.count() != 0 {
		t.Fatal("a nonconforming card reached the backend")
	}
	// A conforming card of the same CA passes the same sites.
	good := g.client(card(t, "doe.john.quincy"))
	for _, site := range []string{"main", "strict", "handshake"} {
		if resp, _ := request(t, good, "GET", g.url(site, "/"), browser, nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("good card on %s: HTTP %d, want the banner", site, resp.StatusCode)
		}
	}
}

// crlGateway starts the gateway with the test CA's CRL file holding crl
// (written as given, however bad) and the failure mode, and returns it
// with the CRL file's path.
func crlGateway(t *testing.T, crl []byte, failMode string) (*testGateway, string) {
	t.Helper()
	p := testPKI(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "intermediate.pem"), p.Intermediate.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "crl"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "crl", "ca-70.crl")
	if err := os.WriteFile(path, crl, 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, fmt.Sprintf(`revocation {
				mode crl
				%s
				crl_files %[2]s/crl
				crl_issuers %[2]s/intermediate.pem
				fetch_crls off
				refresh_interval 100ms
			}`, failMode, dir), "")
	return g, path
}

// revocationCLI runs `caddy cacgate revocation` against the gateway's
// admin API and returns what it printed.
func revocationCLI(t *testing.T, g *testGateway) string {
	t.Helper()
	cmd := revocationCommand()
	cmd.SilenceUsage = true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--address", g.admin})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("caddy cacgate revocation: %v\n%s", err, errOut.String())
	}
	return out.String()
}

// wantCRLRefused checks that the CRL file was refused for why, in every
// place an operator looks: the log, the metrics, `caddy cacgate revocation`.
func wantCRLRefused(t *testing.T, g *testGateway, path, why string) {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("CRL file refused at start-up")) || !bytes.Contains(log, []byte(why)) {
		t.Errorf("the log does not say the CRL file was refused (%q):\n%s", why, tail(log, 20))
	}
	m := g.scrape(t)
	if m[`cacgate_crl_errors_total{origin="file"}`] < 1 || m["cacgate_crl_sources_failing"] != 1 {
		t.Errorf("metrics: crl_errors_total{file} %v, crl_sources_failing %v", m[`cacgate_crl_errors_total{origin="file"}`], m["cacgate_crl_sources_failing"])
	}
	out := revocationCLI(t, g)
	if !strings.Contains(out, `"failing_sources": 1`) || !strings.Contains(out, path) || !strings.Contains(out, why) {
		t.Errorf("caddy cacgate revocation does not report the refused file:\n%s", out)
	}
}

// TestNonconformingCRLNotUsed: a CRL without a CRL number, or with a
// critical one (RFC 5280 section 5.2.3), is not used, and the gateway still
// starts: the CA's cards are refused failing closed, admitted and audited
// failing open.
func TestNonconformingCRLNotUsed(t *testing.T) {
	p := testPKI(t)
	now := time.Now()
	criticalNumber, err := testpki.CRLNumberExtension(9, true)
	if err != nil {
		t.Fatal(err)
	}
	noNumber, err := p.Intermediate.RawCRL(now.Add(-time.Hour), now.Add(24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	critical, err := p.Intermediate.RawCRL(now.Add(-time.Hour), now.Add(24*time.Hour), []pkix.Extension{criticalNumber})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		crl  []byte
		why  string
	}{
		{"no CRL number", noNumber, "no CRL number"},
		{"critical CRL number", critical, "CRL number extension is marked critical"},
	} {
		t.Run(tc.name+", fail closed", func(t *testing.T) {
			g, path := crlGateway(t, tc.crl, "fail_closed")
			wantCRLRefused(t, g, path, tc.why)
			g.createAccount("1234567890", "john.q.doe")
			resp, body := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("main", "/"), apiClient, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || jsonProblem(t, body) != "revocation_unavailable" {
				t.Fatalf("card of the CA: HTTP %d %s, want 503 revocation_unavailable", resp.StatusCode, body)
			}
			if g.backend.count() != 0 {
				t.Fatal("the card reached the backend")
			}
		})
		t.Run(tc.name+", fail open", func(t *testing.T) {
			g, path := crlGateway(t, tc.crl, "fail_open")
			wantCRLRefused(t, g, path, tc.why)
			g.createAccount("1234567890", "john.q.doe")
			c := g.client(card(t, "doe.john.quincy"))
			g.accept(t, c, "main")
			if resp, body := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("card of the CA, failing open: HTTP %d %s", resp.StatusCode, body)
			}
			// Even the card the refused CRL might have listed: nothing
			// vouches either way, which the audit trail says.
			entries := g.auditEntries(t, "revocation.failed_open")
			if len(entries) == 0 || entries[0]["edipi"] != "1234567890" {
				t.Fatalf("revocation.failed_open audit entries: %v", entries)
			}
		})
	}
}

// TestMalformedCRLAtStartUp: a malformed CRL file no longer keeps the
// gateway from starting; the CA's cards are refused (fail closed) until a
// good CRL replaces the file, and then follow it.
func TestMalformedCRLAtStartUp(t *testing.T) {
	p := testPKI(t)
	g, path := crlGateway(t, []byte("<html>proxy error</html>"), "fail_closed")
	wantCRLRefused(t, g, path, "malformed CRL")
	g.createAccount("1234567890", "john.q.doe")
	g.createAccount("1234567899", "ronald.revoked")
	doe := g.client(card(t, "doe.john.quincy"))
	if resp, body := request(t, doe, "GET", g.url("main", "/"), apiClient, nil); resp.StatusCode != http.StatusServiceUnavailable || jsonProblem(t, body) != "revocation_unavailable" {
		t.Fatalf("card of the CA before a good CRL: HTTP %d %s", resp.StatusCode, body)
	}

	replaceFile(t, path, string(p.CRL), time.Now()) // lists revoked.ronald
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st RevocationStatsJSON
		if code := g.adminDo("GET", "/cacgate/revocation", nil, &st); code == http.StatusOK && st.FailingSources == 0 && st.CRLs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the good CRL was not loaded in time")
		}
		time.Sleep(50 * time.Millisecond) // polling the admin API, not standing in for it
	}
	// A card first seen now is judged by the good CRL at once.
	if resp, body := request(t, g.client(card(t, "revoked.ronald")), "GET", g.url("main", "/"), apiClient, nil); resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != "certificate_revoked" {
		t.Fatalf("revoked card after the good CRL: HTTP %d %s", resp.StatusCode, body)
	}
	// The card refused while there was none is let through (to the
	// banner) once its "unavailable" verdict is retried, within 30 seconds.
	for {
		resp, _ := request(t, doe, "GET", g.url("main", "/"), browser, nil)
		if resp.StatusCode == http.StatusSeeOther {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("good card after the good CRL: HTTP %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond) // polling the gateway, not standing in for it
	}
	g.accept(t, doe, "main")
	if resp, _ := request(t, doe, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("good card after the good CRL and consent: HTTP %d", resp.StatusCode)
	}
	if m := g.scrape(t); m["cacgate_crl_sources_failing"] != 0 {
		t.Errorf("crl_sources_failing %v after the good CRL", m["cacgate_crl_sources_failing"])
	}
}
