package caddymodule

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	dto "github.com/prometheus/client_model/go"

	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/internal/trustbundle"
)

// startBundleGateway runs two sites trusting DISA-style bundles:
//
//	request  client_auth mode request; cacgate verifies chains itself
//	         against trust_pool cacgate_bundle <dir>/bundle/dod.zip,
//	         checked every second
//	given    client_auth verify_if_given with trust_pool cacgate_bundle
//	         <dir>/bundle/dod.der.p7b (Caddy's handshake verifies)
//
// Revocation is off: the rogue CA has no CRL, and revocation is not what
// these tests are about.
func startBundleGateway(t *testing.T) *testGateway {
	g, _ := startBundleGatewayReloadable(t)
	return g
}

// startBundleGatewayReloadable is startBundleGateway, also returning a
// function that reloads the same config (as `caddy reload` does).
func startBundleGatewayReloadable(t *testing.T) (*testGateway, func()) {
	t.Helper()
	p := testPKI(t)
	g := &testGateway{t: t, dir: t.TempDir(), ports: map[string]int{}, backend: startBackend(t)}
	disa, err := testpki.DISAFiles([]*x509.Certificate{p.Root.Cert, p.Intermediate.Cert})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(g.dir, "bundle"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"server.pem":         pemChain(p.Server.Chain),
		"server-key.pem":     keyPEM(t, p.Server),
		"bundle/dod.zip":     disa[testpki.DISAZip],
		"bundle/dod.der.p7b": disa[testpki.DISADERFile],
	} {
		if err := os.WriteFile(filepath.Join(g.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.roots = x509.NewCertPool()
	g.roots.AddCert(p.Root.Cert)
	render := func() string {
		ports := freePorts(t, 3)
		g.ports["request"], g.ports["given"] = ports[0], ports[1]
		g.admin = fmt.Sprintf("127.0.0.1:%d", ports[2])
		cfg := fmt.Sprintf(`{
	admin %[1]s
	auto_https off
	log {
		output file %[2]s/caddy.log
		level INFO
	}
	persist_config off
	storage file_system %[2]s/storage
	cacgate {
		store sqlite %[2]s/cacgate.db
		revocation off
	}
}

https://localhost:%[3]d {
	tls %[2]s/server.pem %[2]s/server-key.pem {
		client_auth {
			mode request
		}
	}
	cacgate {
		contact "Bundle Help Desk"
		trust_pool cacgate_bundle %[2]s/bundle/dod.zip {
			refresh_interval 1s
		}
	}
	reverse_proxy %[5]s
}

https://localhost:%[4]d {
	tls %[2]s/server.pem %[2]s/server-key.pem {
		client_auth {
			mode verify_if_given
			trust_pool cacgate_bundle %[2]s/bundle/dod.der.p7b {
				refresh_interval 1s
			}
		}
	}
	cacgate
	reverse_proxy %[5]s
}
`, g.admin, g.dir, g.ports["request"], g.ports["given"], g.backend.addr)
		return cfg
	}
	cfgJSON := g.loadCaddyfile(t, render)
	reload := func() {
		t.Helper()
		if err := caddy.Load(cfgJSON, true); err != nil {
			t.Fatalf("reloading: %v", err)
		}
	}
	return g, reload
}

// swapFile swaps a file's contents in one rename, as operators should.
func swapFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// refusalCode is the "error" of a JSON answer ("" for an admitted one).
func refusalCode(t *testing.T, g *testGateway, site string, c *testpki.Card) string {
	t.Helper()
	resp, body := request(t, g.client(c), "GET", g.url(site, "/"), http.Header{"Accept": {"application/json"}}, nil)
	if resp.StatusCode < 400 {
		return ""
	}
	var p struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("HTTP %d, not a JSON problem: %s", resp.StatusCode, body)
	}
	return p.Error
}

// waitFor polls cond until it holds, failing after a generous deadline
// (the bundle is checked every second; the machine may be busy).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 90s for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logHas(g *testGateway, s string) bool {
	log, _ := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
	return strings.Contains(string(log), s)
}

// TestBundleReloadsWithoutConfigReload: the DISA archive loads as the
// site's trust pool; a broken replacement is refused and the last good
// bundle stays; a valid one that swaps the CAs takes effect without a
// config reload, for cards already admitted and cached too.
func TestBundleReloadsWithoutConfigReload(t *testing.T) {
	g := startBundleGateway(t)
	p := testPKI(t)
	doe, rogue := card(t, "doe.john.quincy"), card(t, "rogue.john.quincy")
	if code := refusalCode(t, g, "request", doe); code != "consent_required" {
		t.Fatalf("card of the bundle's CA: %q, want consent_required (certificate accepted)", code)
	}
	if code := refusalCode(t, g, "request", rogue); code != "certificate_untrusted" {
		t.Fatalf("card of another CA: %q, want certificate_untrusted", code)
	}
	if !logHas(g, `"trust.bundle_loaded"`) {
		t.Error("the load was not audited")
	}

	zipPath := filepath.Join(g.dir, "bundle", "dod.zip")
	swapFile(t, zipPath, []byte("PK\x03\x04 half a download"))
	waitFor(t, "the broken bundle to be refused", func() bool { return logHas(g, "trust bundle change refused") })
	if !logHas(g, `"trust.bundle_refused"`) {
		t.Error("the refused change was not audited")
	}
	if code := refusalCode(t, g, "request", doe); code != "consent_required" {
		t.Fatalf("after a broken bundle: %q, want the last good bundle kept", code)
	}

	rogueDISA, err := testpki.DISAFiles([]*x509.Certificate{p.RogueRoot.Cert, p.RogueIntermediate.Cert})
	if err != nil {
		t.Fatal(err)
	}
	swapFile(t, zipPath, rogueDISA[testpki.DISAZip])
	waitFor(t, "the new bundle to be used", func() bool { return refusalCode(t, g, "request", rogue) == "consent_required" })
	if code := refusalCode(t, g, "request", doe); code != "certificate_untrusted" {
		t.Fatalf("card of the CA the new bundle dropped: %q, want certificate_untrusted", code)
	}
	if !logHas(g, `"trust.bundle_changed"`) {
		t.Error("the change was not audited")
	}
}

// TestCertificatesPage: the public page offers the bundle the site trusts
// (its own trust_pool, or client_auth's cacgate_bundle) as PEM and
// PKCS#7, without a card; the no-card page links it.
func TestCertificatesPage(t *testing.T) {
	g := startBundleGateway(t)
	p := testPKI(t)
	want := []*x509.Certificate{p.Intermediate.Cert, p.Root.Cert}
	for _, site := range []string{"request", "given"} {
		t.Run(site, func(t *testing.T) {
			c := g.client(nil)
			resp, body := request(t, c, "GET", g.url(site, "/.cacgate/certificates"), browser, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("page: HTTP %d: %s", resp.StatusCode, body)
			}
			for _, s := range []string{"TEST DOD ID CA-70", "Test DoD Root CA 3", colonFingerprint(p.Root.Cert), "/.cacgate/certificates/dod-certificates.p7b", "Windows", "macOS", "Firefox"} {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			resp, body = request(t, c, "GET", g.url(site, "/.cacgate/certificates/dod-certificates.p7b"), nil, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkcs7-mime; smime-type=certs-only" ||
				resp.Header.Get("Content-Disposition") != `attachment; filename="dod-certificates.p7b"` {
				t.Fatalf("p7b: HTTP %d, %v", resp.StatusCode, resp.Header)
			}
			got, err := trustbundle.ParsePKCS7([]byte(body))
			if err != nil || len(got) != 2 || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
				t.Fatalf("p7b holds %d certificates (%v)", len(got), err)
			}
			resp, body = request(t, c, "GET", g.url(site, "/.cacgate/certificates/dod-certificates.pem"), nil, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-pem-file" ||
				string(trustbundle.EncodePEM(want)) != body {
				t.Fatalf("pem: HTTP %d, %v", resp.StatusCode, resp.Header)
			}
			resp, _ = request(t, c, "POST", g.url(site, "/.cacgate/certificates"), nil, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST: HTTP %d", resp.StatusCode)
			}
			// The no-card page points there.
			resp, body = request(t, c, "GET", g.url(site, "/"), browser, nil)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `href="/.cacgate/certificates"`) {
				t.Errorf("no-card page: HTTP %d, no link to the certificates page", resp.StatusCode)
			}
		})
	}
	// The untrusted-card page too.
	resp, body := request(t, g.client(card(t, "rogue.john.quincy")), "GET", g.url("request", "/"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `href="/.cacgate/certificates"`) {
		t.Errorf("untrusted-card page: HTTP %d, no link to the certificates page", resp.StatusCode)
	}
}

func colonFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := fmt.Sprintf("%X", sum[:])
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestBundlePoolCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		files   []string
		every   caddy.Duration
	}{
		{in: `cacgate_bundle /a.zip /b`, files: []string{"/a.zip", "/b"}},
		{in: "cacgate_bundle /a.zip {\n file /c.p7b /d\n file /e\n refresh_interval 5m\n}", files: []string{"/a.zip", "/c.p7b", "/d", "/e"}, every: caddy.Duration(5 * time.Minute)},
		{in: "cacgate_bundle /a {\n refresh_interval off\n}", files: []string{"/a"}, every: -1},
		{in: `cacgate_bundle`, err: "no files"},
		{in: "cacgate_bundle /a {\n refresh_interval 10ms\n}", err: "at least 1s"},
		{in: "cacgate_bundle /a {\n refresh_interval 1m\n refresh_interval 2m\n}", err: "given twice"},
		{in: "cacgate_bundle /a {\n system_roots\n}", err: "unrecognized"},
		{in: "cacgate_bundle /a {\n file\n}", err: "argument"},
	} {
		var got BundlePool
		err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got.Files, " ") != strings.Join(tc.files, " ") || got.RefreshInterval != tc.every {
			t.Errorf("%q: files %v, refresh %v, %v; want %v, %v", tc.in, got.Files, got.RefreshInterval, err, tc.files, tc.every)
		}
	}
}

// TestBundlePoolProvision: a bundle without a usable CA fails the config,
// naming the refused certificate; a usable one loads with its refusals
// logged, and Refresh keeps the last good bundle through a bad change and
// counts it.
func TestBundlePoolProvision(t *testing.T) {
	p := testPKI(t)
	dir := t.TempDir()
	leafOnly := filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(leafOnly, trustbundle.EncodePEM([]*x509.Certificate{card(t, "doe.john.quincy").Cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	bad := &BundlePool{Files: []string{leafOnly}, RefreshInterval: -1}
	if err := bad.Provision(ctx); err == nil || !strings.Contains(err.Error(), "DOE.JOHN.QUINCY") || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("Provision with no CA: %v", err)
	}

	good := filepath.Join(dir, "dod.pem")
	if err := os.WriteFile(good, trustbundle.EncodePEM([]*x509.Certificate{p.Root.Cert, p.Intermediate.Cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &BundlePool{Files: []string{good, leafOnly}, RefreshInterval: -1}
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Cleanup()
	first := b.CertPool()
	if len(b.Certificates()) != 2 || first == nil {
		t.Fatalf("%d CAs", len(b.Certificates()))
	}
	var told int
	b.OnChange(func(*trustbundle.Bundle) { told++ })
	if b.Refresh(time.Now()) {
		t.Error("unchanged files reported as a change")
	}
	if err := os.WriteFile(good, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b.Refresh(time.Now()) || b.CertPool() != first {
		t.Error("a bundle without CAs replaced the good one")
	}
	if got := counterValue(t, b, "refused"); got != 1 {
		t.Errorf("refused changes counted %v, want 1", got)
	}
	if err := os.WriteFile(good, trustbundle.EncodePEM([]*x509.Certificate{p.Root.Cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	if !b.Refresh(time.Now()) || told != 1 || len(b.Certificates()) != 1 {
		t.Errorf("valid change: told %d times, %d CAs", told, len(b.Certificates()))
	}
	// The certificates page finds the handshake's pool by the bundle that
	// made it: the provision-time one, whatever changed since.
	if got := liveBundles.certificatesOf(first); len(got) != 2 {
		t.Errorf("registry: %d CAs for the provision-time pool", len(got))
	}
}

func counterValue(t *testing.T, b *BundlePool, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := b.reloads.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestBundleInClientAuthFollowsConfigReload: Caddy's handshake keeps the
// pool it was built with when the files change (as documented); the
// next config reload takes the new bundle.
func TestBundleInClientAuthFollowsConfigReload(t *testing.T) {
	g, reload := startBundleGatewayReloadable(t)
	p := testPKI(t)
	doe, rogue := card(t, "doe.john.quincy"), card(t, "rogue.john.quincy")
	if code := refusalCode(t, g, "given", doe); code != "consent_required" {
		t.Fatalf("card of the bundle's CA: %q", code)
	}
	handshakeFails := func(c *testpki.Card) bool {
		_, err := g.client(c).Get(g.url("given", "/"))
		return err != nil
	}
	if !handshakeFails(rogue) {
		t.Fatal("a card of another CA passed the handshake")
	}
	rogueDISA, err := testpki.DISAFiles([]*x509.Certificate{p.RogueRoot.Cert, p.RogueIntermediate.Cert})
	if err != nil {
		t.Fatal(err)
	}
	swapFile(t, filepath.Join(g.dir, "bundle", "dod.der.p7b"), rogueDISA[testpki.DISADERFile])
	waitFor(t, "the module to see the change", func() bool { return logHas(g, "Caddy's client_auth pool at the next config reload") })
	if !handshakeFails(rogue) || refusalCode(t, g, "given", doe) != "consent_required" {
		t.Fatal("the handshake pool changed without a config reload")
	}
	reload()
	if code := refusalCode(t, g, "given", rogue); code != "consent_required" {
		t.Fatalf("after the reload, card of the new bundle's CA: %q", code)
	}
	if !handshakeFails(doe) {
		t.Error("after the reload, a card of the dropped CA passed the handshake")
	}
}
