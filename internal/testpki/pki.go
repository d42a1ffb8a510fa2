package testpki

import (
	"crypto/x509"
	"fmt"
	"time"
)

const year = 365 * 24 * time.Hour

// Options configures Generate.
type Options struct {
	// Now anchors every validity window; zero means time.Now(). Tests pin it
	// to check expiry handling deterministically.
	Now time.Time

	// Dir is not used by Generate. It lets callers carry the output
	// directory they will pass to WriteDir alongside the other options.
	Dir string
}

// PKI is a generated test PKI.
type PKI struct {
	// Root and Intermediate are the trusted CAs, "Test DoD Root CA 3" and
	// "TEST DOD ID CA-70".
	Root, Intermediate *Authority

	// RogueRoot and RogueIntermediate copy the trusted CAs' names exactly
	// but have their own keys: a forger's PKI. Nothing should trust them.
	RogueRoot, RogueIntermediate *Authority

	// Server is the localhost server certificate, issued by Intermediate.
	Server *Card

	// Cards is the default card set, in the order Generate lists it.
	Cards []*Card

	// CRL is Intermediate's certificate revocation list (DER), listing the
	// cards of the default set that are meant to be revoked.
	CRL []byte
}

// CRLFile is where WriteDir puts PKI.CRL.
const CRLFile = "crl/test-dod-id-ca-70.crl"

// validity is how long generated certificates last from Options.Now.
type validity struct {
	ca, server, card time.Duration
	crl              time.Duration // thisUpdate to nextUpdate of the CRL
}

// testValidity suits a PKI generated afresh for each test run.
var testValidity = validity{ca: 10 * year, server: year, card: defaultCardValidity, crl: 30 * 24 * time.Hour}

// Generate creates a fresh test PKI with fresh keys. Its cards, by name
// (fake EDIPIs):
//
//	doe.john.quincy          DOE.JOHN.QUINCY.1234567890, USA: the standard card
//	doe.john.quincy.piv      same EDIPI, PIV style: UPN 1234567890123456@mil, card UUID
//	smith.jane               SMITH.JANE.1234567891, USN: no middle name
//	johnson.robert.e.jr      JOHNSON.ROBERT.E.JR.1234567892, USMC: suffix
//	obrien-smith.mary.ann.k  O'BRIEN-SMITH.MARY ANN.K.1234567895, CONTRACTOR, RSA key
//	garcia.luis.a            GARCIA.LUIS.A.1234567896, USAF: spare valid card
//	expired.edward           EXPIRED.EDWARD.1234567893: expired a day before Now
//	noeku.nancy              NOEKU.NANCY.1234567894: emailProtection EKU only
//	rogue.john.quincy        DOE.JOHN.QUINCY.1234567890 issued by RogueIntermediate
//
// Cards are valid from Now-1h for three years, CAs for ten years and the
// server certificate for one; WriteDemo uses longer windows.
func Generate(opts Options) (*PKI, error) {
	return generate(opts, testValidity)
}

func generate(opts Options, v validity) (*PKI, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	p := &PKI{}
	var err error
	if p.Root, p.Intermediate, err = newHierarchy(now, v.ca); err != nil {
		return nil, err
	}
	if p.RogueRoot, p.RogueIntermediate, err = newHierarchy(now, v.ca); err != nil {
		return nil, err
	}
	if p.Server, err = p.Intermediate.issueServer(v.server); err != nil {
		return nil, fmt.Errorf("testpki: server certificate: %w", err)
	}
	var revoked []*x509.Certificate
	for _, dc := range defaultCards(now, v.card) {
		issuer := p.Intermediate
		if dc.rogue {
			issuer = p.RogueIntermediate
		}
		card, err := issuer.IssueCard(dc.spec)
		if err != nil {
			return nil, err
		}
		p.Cards = append(p.Cards, card)
		if dc.revoked {
			revoked = append(revoked, card.Cert)
		}
	}
	if p.CRL, err = p.Intermediate.CRL(revoked, now.Add(-time.Hour), now.Add(v.crl), 1); err != nil {
		return nil, fmt.Errorf("testpki: CRL: %w", err)
	}
	return p, nil
}

// newHierarchy creates a root and its issuing CA with the DoD-style names.
// Called twice it yields two PKIs whose names match byte for byte.
func newHierarchy(now time.Time, validity time.Duration) (root, intermediate *Authority, err error) {
	root, err = newRoot(rootCommonName, now, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: root CA: %w", err)
	}
	intermediate, err = root.newIntermediate(intermediateCommonName, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: intermediate CA: %w", err)
	}
	return root, intermediate, nil
}

// Card returns the card with the given name, or nil if there is none.
func (p *PKI) Card(name string) *Card {
	for _, card := range p.Cards {
		if card.Name == name {
			return card
		}
	}
	return nil
}
