package caddymodule

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/cacgate/cacgate/internal/testpki"
)

// ocspResponder is a real OCSP responder for the test CA, answering from a
// list of revoked serials. It counts the requests it gets.
type ocspResponder struct {
	url      string
	requests atomic.Int64
	// silent makes it never answer: each request waits until its client
	// gives up.
	silent  bool
	mu      sync.Mutex
	revoked map[string]bool // serial (hex)
}

func startOCSPResponder(t testing.TB, ca *testpki.Authority, revoked ...*testpki.Card) *ocspResponder {
	t.Helper()
	o := &ocspResponder{revoked: map[string]bool{}}
	for _, c := range revoked {
		o.revoked[c.Cert.SerialNumber.Text(16)] = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		if o.silent {
			<-r.Context().Done()
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		isRevoked := o.revoked[req.SerialNumber.Text(16)]
		o.mu.Unlock()
		now := time.Now()
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
		if isRevoked {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, now.Add(-time.Hour), ocsp.KeyCompromise
		}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func jsonProblem(t *testing.T, body string) string {
	t.Helper()
	var p struct{ Error string }
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("not a JSON problem: %q", body)
	}
	return p.Error
}

var apiClient = http.Header{"Accept": {"application/json"}}

func TestRevokedCardFromCRL(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567899", "ronald.revoked")
	c := g.client(card(t, "revoked.ronald"))

	resp, body := request(t, c, "GET", g.url("main", "/"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Your certificate has been revoked") || !strings.Contains(body, "RAPIDS") {
		t.Fatalf("revoked card, browser: HTTP %d\n%s", resp.StatusCode, body)
	}
	resp, body = request(t, c, "GET", g.url("main", "/"), apiClient, nil)
	if resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != "certificate_revoked" {
		t.Fatalf("revoked card, API: HTTP %d %s", resp.StatusCode, body)
	}
	// Not even the banner: a revoked card cannot consent.
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/consent"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked card on the banner page: HTTP %d", resp.StatusCode)
	}
	if g.backend.count() != 0 {
		t.Fatal("a revoked card reached the backend")
	}
	// The same CA's good card passes.
	if resp, _ := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good card: HTTP %d", resp.StatusCode)
	}
}

func TestRevocationByOCSP(t *testing.T) {
	p := testPKI(t)
	responder := startOCSPResponder(t, p.Intermediate, card(t, "revoked.ronald"))
	g := startGateway(t, fmt.Sprintf(`revocation {
			mode ocsp
			ocsp_responder %s
		}`, responder.url), "")
	g.createAccount("1234567890", "john.q.doe")

	if resp, body := request(t, g.client(card(t, "revoked.ronald")), "GET", g.url("main", "/"), apiClient, nil); resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != "certificate_revoked" {
		t.Fatalf("revoked by OCSP: HTTP %d %s", resp.StatusCode, body)
	}

	// Concurrent first requests for one card make one OCSP request, and
	// later requests none: the verdict is cached with the account.
	doe := g.client(card(t, "doe.john.quincy"))
	before := responder.requests.Load()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", g.url("main", "/"), nil)
			req.Header.Set("Accept", "text/html")
			if resp, err := doe.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := responder.requests.Load() - before; n != 1 {
		t.Fatalf("16 concurrent first requests made %d OCSP requests, want 1", n)
	}
	g.accept(t, doe, "main")
	for i := 0; i < 5; i++ {
		if resp, _ := request(t, doe, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("good card: HTTP %d", resp.StatusCode)
		}
	}
	if n := responder.requests.Load() - before; n != 1 {
		t.Fatalf("cached verdict: %d OCSP requests in all, want 1", n)
	}
}

func TestRevocationUnavailable(t *testing.T) {
	// A responder address nothing listens on.
	down := "http://127.0.0.1:" + fmt.Sprint(freePort(t))

	t.Run("fail closed", func(t *testing.T) {
		g := startGateway(t, fmt.Sprintf(`revocation {
			mode ocsp
			ocsp_responder %s
			ocsp_timeout 2s
		}`, down), "")
		c := g.client(card(t, "doe.john.quincy"))
		resp, body := request(t, c, "GET", g.url("main", "/"), browser, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "status service") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("responder down, fail closed: HTTP %d\n%s", resp.StatusCode, body)
		}
		if resp, body := request(t, c, "GET", g.url("main", "/"), apiClient, nil); jsonProblem(t, body) != "revocation_unavailable" {
			t.Fatalf("API: HTTP %d %s", resp.StatusCode, body)
		}
	})
	t.Run("fail open", func(t *testing.T) {
		g := startGateway(t, fmt.Sprintf(`revocation {
			mode ocsp
			ocsp_responder %s
			ocsp_timeout 2s
			fail_open
		}`, down), "")
		g.createAccount("1234567890", "john.q.doe")
		c := g.client(card(t, "doe.john.quincy"))
		g.accept(t, c, "main")
		if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("responder down, fail open: HTTP %d", resp.StatusCode)
		}
	})
	t.Run("slow responder times out", func(t *testing.T) {
		// The responder never answers, so the gateway answering at all
		// is its timeout's doing (how long that took is not asserted: a
		// busy machine stretches it), and the answer fails closed.
		p := testPKI(t)
		slow := startOCSPResponder(t, p.Intermediate)
		slow.silent = true
		g := startGateway(t, fmt.Sprintf(`revocation {
			mode ocsp
			ocsp_responder %s
			ocsp_timeout 1s
		}`, slow.url), "")
		resp, _ := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("main", "/"), browser, nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("slow responder: HTTP %d", resp.StatusCode)
		}
		if n := slow.requests.Load(); n < 1 {
			t.Fatalf("the responder was asked %d times, want the request that timed out", n)
		}
	})
}

func TestRevocationOff(t *testing.T) {
	g := startGateway(t, "revocation off", "")
	g.createAccount("1234567899", "ronald.revoked")
	c := g.client(card(t, "revoked.ronald"))
	g.accept(t, c, "main")
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation off: HTTP %d", resp.StatusCode)
	}
}

// TestHandshakeVerifier: with the verifier module in client_auth, revoked
// and non-compliant cards are refused in the TLS handshake itself.
func TestHandshakeVerifier(t *testing.T) {
	g := startGateway(t, "", "")
	for _, name := range []string{"revoked.ronald"} {
		if _, err := g.client(card(t, name)).Get(g.url("handshake", "/")); err == nil {
			t.Errorf("%s: handshake succeeded", name)
		}
	}
	noPolicy, err := testPKI(t).Intermediate.IssueCard(testpki.CardSpec{
		Name: "nopolicy.nora", Family: "NOPOLICY", Given: "NORA", EDIPI: "1234567802", Policies: []asn1.ObjectIdentifier{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.client(noPolicy).Get(g.url("handshake", "/")); err == nil {
		t.Error("card without the required policy: handshake succeeded")
	}
	// A good card completes the handshake and meets the banner.
	resp, _ := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("handshake", "/"), browser, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good card: HTTP %d", resp.StatusCode)
	}
}

func TestAdminRevocationStats(t *testing.T) {
	g := startGateway(t, "", "")
	var st RevocationStatsJSON
	if code := g.adminDo("GET", "/cacgate/revocation", nil, &st); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	if st.Mode != "crl" || st.CRLs != 1 || st.Entries != 1 || st.IndexBytes <= 0 || st.StaleCRLs != 0 || len(st.Sources) != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if c := st.Sources[0].CRLs; len(c) != 1 || !strings.Contains(c[0].Issuer, "TEST DOD ID CA-70") || c[0].Stale {
		t.Fatalf("CRL stats: %+v", st.Sources[0])
	}
}

// TestRevokedIntermediate: with intermediates on, a card whose issuing CA
// is on the root's CRL is refused (page, JSON, audit, TLS verifier); an
// empty root CRL admits it; without the root's CRL the card's status is
// unknown and the gateway fails closed; with intermediates off (the
// default) the CA's status is not asked.
func TestRevokedIntermediate(t *testing.T) {
	p := testPKI(t)
	now := time.Now()
	revokedCA, err := p.Root.CRL([]*x509.Certificate{p.Intermediate.Cert}, now.Add(-time.Hour), now.Add(24*time.Hour), 7)
	if err != nil {
		t.Fatal(err)
	}
	emptyRootCRL, err := p.Root.CRL(nil, now.Add(-time.Hour), now.Add(24*time.Hour), 8)
	if err != nil {
		t.Fatal(err)
	}
	// revocationWith writes the CA-70 CRL, the root CRL given (if any) and
	// both CA certificates to a directory and returns the revocation block.
	revocationWith := func(t *testing.T, rootCRL []byte, intermediates string) string {
		dir := t.TempDir()
		files := map[string][]byte{
			"crl/ca-70.crl":    p.CRL,
			"intermediate.pem": p.Intermediate.CertPEM,
			"root.pem":         p.Root.CertPEM,
		}
		if rootCRL != nil {
			files["crl/root.crl"] = rootCRL
		}
		os.Mkdir(filepath.Join(dir, "crl"), 0o700)
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return fmt.Sprintf(`revocation {
				mode crl
				crl_files %[1]s/crl
				crl_issuers %[1]s/intermediate.pem %[1]s/root.pem
				fetch_crls off
				%[2]s
			}`, dir, intermediates)
	}

	t.Run("CA revoked", func(t *testing.T) {
		g := startGateway(t, revocationWith(t, revokedCA, "intermediates on"), "")
		g.createAccount("1234567890", "john.q.doe")
		c := g.client(card(t, "doe.john.quincy"))
		resp, page := request(t, c, "GET", g.url("main", "/"), browser, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "TEST DOD ID CA-70") || !strings.Contains(page, "RAPIDS") {
			t.Fatalf("card of a revoked CA, browser: HTTP %d\n%s", resp.StatusCode, page)
		}
		if resp, body := request(t, c, "GET", g.url("main", "/"), apiClient, nil); resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != "ca_revoked" {
			t.Fatalf("card of a revoked CA, API: HTTP %d %s", resp.StatusCode, body)
		}
		if g.backend.count() != 0 {
			t.Fatal("a card of a revoked CA reached the backend")
		}
		entries := g.auditEntries(t, "access.denied")
		if len(entries) == 0 {
			t.Fatal("no access.denied audit entry")
		}
		e := entries[0]
		if e["reason"] != "ca_revoked" || !strings.Contains(fmt.Sprint(e["ca_subject"]), "CN=TEST DOD ID CA-70") ||
			e["ca_serial"] != p.Intermediate.Cert.SerialNumber.Text(16) || e["edipi"] != "1234567890" {
			t.Fatalf("audit entry %v", e)
		}
		// The TLS verifier refuses the handshake, and says which CA.
		if _, err := c.Get(g.url("handshake", "/")); err == nil {
			t.Error("handshake of a revoked CA's card succeeded")
		}
		var atHandshake map[string]any
		for _, e := range g.auditEntries(t, "access.denied") {
			if e["stage"] == "tls_handshake" {
				atHandshake = e
			}
		}
		if atHandshake == nil || atHandshake["reason"] != "ca_revoked" || !strings.Contains(fmt.Sprint(atHandshake["ca_subject"]), "CN=TEST DOD ID CA-70") {
			t.Errorf("handshake refusal audit: %v", atHandshake)
		}
	})
	t.Run("CA good", func(t *testing.T) {
		g := startGateway(t, revocationWith(t, emptyRootCRL, "intermediates on"), "")
		g.createAccount("1234567890", "john.q.doe")
		c := g.client(card(t, "doe.john.quincy"))
		g.accept(t, c, "main")
		if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("card of a good CA: HTTP %d", resp.StatusCode)
		}
		// The card itself is still checked.
		if resp, body := request(t, g.client(card(t, "revoked.ronald")), "GET", g.url("main", "/"), apiClient, nil); jsonProblem(t, body) != "certificate_revoked" {
			t.Fatalf("revoked card under a good CA: HTTP %d %s", resp.StatusCode, body)
		}
	})
	t.Run("root CRL missing, fail closed", func(t *testing.T) {
		g := startGateway(t, revocationWith(t, nil, "intermediates on"), "")
		g.createAccount("1234567890", "john.q.doe")
		resp, body := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("main", "/"), apiClient, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || jsonProblem(t, body) != "revocation_unavailable" {
			t.Fatalf("no status for the CA: HTTP %d %s", resp.StatusCode, body)
		}
		if e := g.auditEntries(t, "access.denied"); len(e) == 0 || e[0]["reason"] != "revocation_unavailable" || e[0]["ca_subject"] == nil {
			t.Fatalf("audit entries %v", e)
		}
	})
	t.Run("intermediates off", func(t *testing.T) {
		g := startGateway(t, revocationWith(t, revokedCA, ""), "")
		g.createAccount("1234567890", "john.q.doe")
		c := g.client(card(t, "doe.john.quincy"))
		if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("intermediates off, CA on the root's CRL: HTTP %d", resp.StatusCode)
		}
	})
}
