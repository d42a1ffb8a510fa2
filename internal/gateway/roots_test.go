package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/cacgate/cacgate/trust"
)

// TestSetRootsRejudgesVerdicts: a site verifying chains itself takes a
// new trust pool at once (a watched bundle changed): a card of a CA the
// new pool lacks is refused on its next request, though it was admitted
// and cached, and admitted again when its CA comes back; a refused chain
// remembered under the old pool is judged afresh.
func TestSetRootsRejudgesVerdicts(t *testing.T) {
	p, err := sharedPKI()
	if err != nil {
		t.Fatal(err)
	}
	withRoot := x509.NewCertPool()
	withRoot.AddCert(p.Root.Cert)
	other := x509.NewCertPool()
	other.AddCert(p.RogueRoot.Cert)
	pol := trust.Policy{Roots: withRoot}
	if err := pol.Compile(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, SiteConfig{Policy: pol})
	doe := testCard(t, "doe.john.quincy")
	cs := &tls.ConnectionState{PeerCertificates: doe.Chain}
	now := time.Now()
	if _, rej := h.site.Certificate(cs, now); rej != nil {
		t.Fatalf("card of the pool's CA: %v", rej)
	}
	h.site.SetRoots(other)
	if _, rej := h.site.Certificate(cs, now); rej == nil || rej.Code != trust.CodeUntrusted {
		t.Fatalf("after its CA left the pool: %v, want %s", rej, trust.CodeUntrusted)
	}
	h.site.SetRoots(withRoot)
	if _, rej := h.site.Certificate(cs, now); rej != nil {
		t.Fatalf("after its CA came back: %v", rej)
	}

	// A site leaving chains to the handshake has no pool to replace.
	hs := newHarness(t, SiteConfig{})
	hs.site.SetRoots(other)
	if got := hs.site.roots.Load(); got != nil {
		t.Error("SetRoots gave a handshake-verified site a pool")
	}
}
