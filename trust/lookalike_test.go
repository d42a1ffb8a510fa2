package trust

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

// TestVerifyBoundsIntermediates: a card sent with more CA certificates than
// a CAC chain has is refused without a path search.
func rootPool(p *testpki.PKI) *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	return roots
}

func TestVerifyBoundsIntermediates(t *testing.T) {
	p := pki(t)
	leaf, inters, err := p.LookAlikeChain(90)
	if err != nil {
		t.Fatal(err)
	}
	pol := Policy{Roots: rootPool(p)}
	if err := pol.Compile(); err != nil {
		t.Fatal(err)
	}
	chain, rej := pol.Verify(leaf, inters, time.Now())
	if chain != nil || rej == nil || rej.Code != CodeUntrusted {
		t.Fatalf("look-alike chain: %v %v", chain, rej)
	}
	// Within the bound, look-alikes are searched and refused as untrusted.
	if chain, rej := pol.Verify(leaf, inters[:MaxIntermediates], time.Now()); chain != nil || rej == nil || rej.Code != CodeUntrusted {
		t.Fatalf("%d look-alikes: %v %v", MaxIntermediates, chain, rej)
	}
	// A real card with its intermediate still verifies.
	doe := p.Card("doe.john.quincy")
	if _, rej := pol.Verify(doe.Cert, doe.Chain[1:], time.Now()); rej != nil {
		t.Fatalf("real card: %v", rej)
	}
}

// BenchmarkVerifyLookAlike is the CPU a look-alike chain costs a site that
// verifies chains itself (trust_pool): 90 look-alikes (refused unsearched)
// and MaxIntermediates of them (searched).
func BenchmarkVerifyLookAlike(b *testing.B) {
	p, err := testPKI()
	if err != nil {
		b.Fatal(err)
	}
	leaf, inters, err := p.LookAlikeChain(90)
	if err != nil {
		b.Fatal(err)
	}
	pol := Policy{Roots: rootPool(p)}
	if err := pol.Compile(); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{90, MaxIntermediates} {
		b.Run(map[int]string{90: "90", MaxIntermediates: "bound"}[n], func(b *testing.B) {
			for b.Loop() {
				if _, rej := pol.Verify(leaf, inters[:n], time.Now()); rej == nil {
					b.Fatal("verified")
				}
			}
		})
	}
}
