package trust_test

import (
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/trust"
)

func TestAcceptanceClassifies(t *testing.T) {
	f, err := testpki.GenerateFederal(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cac := p.Card("doe.john.quincy")
	all, err := trust.CompileAcceptance([]trust.AcceptRule{{Kind: "eca"}, {Kind: "dod"}, {Kind: "piv"}, {Kind: "piv-i"}})
	if err != nil {
		t.Fatal(err)
	}
	dodOnly, err := trust.CompileAcceptance([]trust.AcceptRule{{Kind: "dod"}})
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := trust.CompileAcceptance([]trust.AcceptRule{{Kind: "piv", Issuers: []string{cacid.Fingerprint(f.PIVICA.Cert.Raw)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		a      *trust.Acceptance
		card   *testpki.Card
		issuer *testpki.Authority
		want   cacid.Kind
		code   string
	}{
		{"cac", all, cac, p.Intermediate, cacid.KindCAC, ""},
		{"piv", all, f.PIV, f.PIVCA, cacid.KindPIV, ""},
		{"piv-i", all, f.PIVI, f.PIVICA, cacid.KindPIVI, ""},
		{"eca", all, f.ECA, f.ECACA, cacid.KindECA, ""},
		{"piv at a DoD-only site", dodOnly, f.PIV, f.PIVCA, cacid.KindPIV, trust.CodePolicy},
		{"eca at a DoD-only site", dodOnly, f.ECA, f.ECACA, cacid.KindECA, trust.CodePolicy},
		{"piv from a CA the rule does not name", pinned, f.PIV, f.PIVCA, cacid.KindPIV, trust.CodeIssuer},
	} {
		kind, rej := c.a.Classify(c.card.Cert, c.issuer.Cert)
		code := ""
		if rej != nil {
			code = rej.Code
		}
		if kind != c.want || code != c.code {
			t.Errorf("%s: Classify = %q, %v; want %q, %q", c.name, kind, rej, c.want, c.code)
		}
	}
	if _, err := trust.CompileAcceptance([]trust.AcceptRule{{Kind: "dod"}, {Kind: "cac"}}); err == nil {
		t.Error("dod and cac (the same kind) accepted twice")
	}
	if _, err := trust.CompileAcceptance([]trust.AcceptRule{{Kind: "twic"}}); err == nil {
		t.Error("unknown kind accepted")
	}
}
