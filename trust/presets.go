package trust

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"

	"github.com/cacgate/cacgate/cacid"
)

// A Preset names a credential kind's certificate policies, as the
// published certificate policies define them, so that a site writes
// "accept dod piv eca" rather than OIDs. A certificate is of the preset's
// kind when it asserts one of Policies. Only policies of certificates a
// person proves possession of with a PIN on a hardware token are listed:
// card authentication certificates (id-fpki-common-cardAuth,
// id-fpki-certpcy-pivi-cardAuth, id-eca-cardAuth-pivi) need no PIN and
// content-signing and device policies name no person, so none of those
// signs anyone in.
//
// The issuer sets are the site's trust pool (or the TLS handshake's): a
// preset only says what kind a certificate a trusted CA issued is, never
// which CAs to trust, and no preset reaches for the system roots. Restrict
// a kind to some of the trusted CAs with its accept rule's issuers.
type Preset struct {
	// Name is the Caddyfile word ("dod", "piv", "piv-i", "eca").
	Name string
	Kind cacid.Kind
	// Title is what pages call the credential.
	Title    string
	Policies []NamedOID
}

// NamedOID is a certificate policy with its name in the defining policy.
type NamedOID struct {
	Name string
	OID  asn1.ObjectIdentifier
}

func oid(arcs ...int) asn1.ObjectIdentifier { return arcs }

// Presets, in classification order (cacid.Kinds): DoD before the federal
// PIV policy, because DoD PIV authentication certificates may also map to
// or assert the federal common policies.
var Presets = []Preset{
	{
		// X.509 Certificate Policy for the United States Department of
		// Defense, id-US-dod arc 2.16.840.1.101.2.1.11: the hardware
		// (CAC) policies and the PIV authentication policies.
		Name: "dod", Kind: cacid.KindCAC, Title: "DoD CAC",
		Policies: []NamedOID{
			{"id-US-dod-mediumHardware", oid(2, 16, 840, 1, 101, 2, 1, 11, 9)},
			{"id-US-dod-PIV-Auth", oid(2, 16, 840, 1, 101, 2, 1, 11, 10)},
			{"id-US-dod-mediumHardware-2048", oid(2, 16, 840, 1, 101, 2, 1, 11, 19)},
			{"id-US-dod-PIV-Auth-2048", oid(2, 16, 840, 1, 101, 2, 1, 11, 20)},
			{"id-US-dod-mediumHardware-112", oid(2, 16, 840, 1, 101, 2, 1, 11, 42)},
			{"id-US-dod-mediumHardware-128", oid(2, 16, 840, 1, 101, 2, 1, 11, 43)},
		},
	},
	{
		// X.509 Certificate Policy for the Federal PKI Common Policy
		// Framework, PIV-I policies (csor-certpolicy 3.18).
		Name: "piv-i", Kind: cacid.KindPIVI, Title: "PIV-I card",
		Policies: []NamedOID{
			{"id-fpki-certpcy-pivi-hardware", oid(2, 16, 840, 1, 101, 3, 2, 1, 3, 18)},
		},
	},
	{
		// External Certification Authority (ECA) Certificate Policy,
		// id-eca arc 2.16.840.1.101.3.2.1.12: the person certificates.
		Name: "eca", Kind: cacid.KindECA, Title: "ECA certificate",
		Policies: []NamedOID{
			{"id-eca-medium", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 1)},
			{"id-eca-medium-hardware", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 2)},
			{"id-eca-medium-token", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 3)},
			{"id-eca-medium-sha256", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 4)},
			{"id-eca-medium-token-sha256", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 5)},
			{"id-eca-medium-hardware-pivi", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 6)},
			{"id-eca-medium-hardware-sha256", oid(2, 16, 840, 1, 101, 3, 2, 1, 12, 10)},
		},
	},
	{
		// Federal PKI Common Policy: the PIV authentication certificate
		// (FIPS 201) of every agency under the Federal Common Policy CA.
		Name: "piv", Kind: cacid.KindPIV, Title: "federal PIV card",
		Policies: []NamedOID{
			{"id-fpki-common-authentication", oid(2, 16, 840, 1, 101, 3, 2, 1, 3, 13)},
		},
	},
}

// PresetByName returns the preset named s; "cac" is "dod".
func PresetByName(s string) (Preset, bool) {
	if s == "cac" {
		s = "dod"
	}
	for _, p := range Presets {
		if p.Name == s {
			return p, true
		}
	}
	return Preset{}, false
}

// presetFor returns the preset of a kind.
func presetFor(kind cacid.Kind) Preset {
	for _, p := range Presets {
		if p.Kind == kind {
			return p
		}
	}
	return Preset{}
}

// Classify returns the kind of credential a certificate is by the
// policies it asserts: the first preset (in Presets order) one of whose
// policies it carries. ok is false when it carries none.
func Classify(cert *x509.Certificate) (kind cacid.Kind, ok bool) {
	for _, p := range Presets {
		if assertsAny(cert, p.Policies) {
			return p.Kind, true
		}
	}
	return "", false
}

func assertsAny(cert *x509.Certificate, policies []NamedOID) bool {
	for _, got := range cert.PolicyIdentifiers {
		for _, want := range policies {
			if got.Equal(want.OID) {
				return true
			}
		}
	}
	return false
}

// AcceptRule admits one credential kind: a preset's name ("dod", "piv",
// "piv-i", "eca"), optionally narrowed to some issuing CAs and widened with
// more policy OIDs (another approved PKI whose certificates should count
// as this kind).
type AcceptRule struct {
	Kind string `json:"kind"`
	// Issuers, when set, are the only CAs whose certificates of this kind
	// are admitted: distinguished names or SHA-256 fingerprints, as in
	// allowed_issuers.
	Issuers []string `json:"issuers,omitempty"`
	// Policies are more certificate policy OIDs that make a certificate
	// this kind, beside the preset's.
	Policies []string `json:"policies,omitempty"`
}

// Acceptance is a site's compiled accept rules: which credential kinds it
// admits, and how it tells them apart. The zero value (no rules) is not
// used: a site without accept rules reads every certificate as a CAC.
type Acceptance struct {
	rules []acceptRule
}

type acceptRule struct {
	preset   Preset
	issuers  []IssuerPattern
	policies []NamedOID // the preset's and the rule's own
}

// CompileAcceptance validates accept rules. A kind named twice is an
// error; so is an empty list.
func CompileAcceptance(rules []AcceptRule) (*Acceptance, error) {
	if len(rules) == 0 {
		return nil, fmt.Errorf("accept names no credential kind")
	}
	a := &Acceptance{}
	seen := map[cacid.Kind]bool{}
	for _, r := range rules {
		p, ok := PresetByName(r.Kind)
		if !ok {
			return nil, fmt.Errorf("accept: unknown credential kind %q (want dod, piv, piv-i or eca)", r.Kind)
		}
		if seen[p.Kind] {
			return nil, fmt.Errorf("accept: %s named more than once", r.Kind)
		}
		seen[p.Kind] = true
		ar := acceptRule{preset: p, policies: slices.Clone(p.Policies)}
		for _, s := range r.Issuers {
			pat, err := ParseIssuer(s)
			if err != nil {
				return nil, fmt.Errorf("accept %s: issuer %w", r.Kind, err)
			}
			ar.issuers = append(ar.issuers, pat)
		}
		for _, s := range r.Policies {
			o, err := parseOID(s)
			if err != nil {
				return nil, fmt.Errorf("accept %s: policy %q: %w", r.Kind, s, err)
			}
			ar.policies = append(ar.policies, NamedOID{Name: s, OID: o})
		}
		a.rules = append(a.rules, ar)
	}
	// Classification order is the presets' whatever the rules' order.
	slices.SortFunc(a.rules, func(x, y acceptRule) int {
		return slices.Index(cacid.Kinds, x.preset.Kind) - slices.Index(cacid.Kinds, y.preset.Kind)
	})
	return a, nil
}

// Kinds are the kinds the site admits, in classification order.
func (a *Acceptance) Kinds() []cacid.Kind {
	kinds := make([]cacid.Kind, len(a.rules))
	for i, r := range a.rules {
		kinds[i] = r.preset.Kind
	}
	return kinds
}

// Classify decides a certificate's kind and whether the site admits it.
// issuer is the verified issuing CA (nil if none; then only issuer DNs can
// match). The kind is the first, in classification order, whose policies
// (a preset's, or an accept rule's own) the certificate asserts, whether
// the site admits it or not: a DoD card does not become a federal PIV
// card because a site admits only PIV. Refused: a certificate of no kind,
// of a kind the site does not accept, or from a CA the kind's rule does
// not name.
func (a *Acceptance) Classify(leaf, issuer *x509.Certificate) (cacid.Kind, *Rejection) {
	var kind cacid.Kind
	known := false
	for _, p := range Presets {
		policies := p.Policies
		if r := a.rule(p.Kind); r != nil {
			policies = r.policies
		}
		if assertsAny(leaf, policies) {
			kind, known = p.Kind, true
			break
		}
	}
	if !known {
		return "", &Rejection{CodePolicy, "Your certificate is not one this site accepts: it asserts none of the certificate policies of " + a.titles() + "."}
	}
	r := a.rule(kind)
	if r == nil {
		return kind, &Rejection{CodePolicy, "This site does not accept a " + presetFor(kind).Title + " certificate. It accepts " + a.titles() + "."}
	}
	if len(r.issuers) > 0 {
		dn := cacid.DistinguishedName(leaf.RawIssuer, leaf.Issuer)
		fp := ""
		if issuer != nil {
			fp = cacid.Fingerprint(issuer.Raw)
		}
		if !slices.ContainsFunc(r.issuers, func(p IssuerPattern) bool { return p.Match(dn, fp) }) {
			return kind, &Rejection{CodeIssuer, "Your " + r.preset.Title + " certificate was issued by a certificate authority this site does not accept for " + r.preset.Title + "s."}
		}
	}
	return kind, nil
}

func (a *Acceptance) rule(kind cacid.Kind) *acceptRule {
	for i := range a.rules {
		if a.rules[i].preset.Kind == kind {
			return &a.rules[i]
		}
	}
	return nil
}

// titles lists what the site accepts, for refusal pages.
func (a *Acceptance) titles() string {
	t := make([]string, len(a.rules))
	for i, r := range a.rules {
		t[i] = r.preset.Title + "s"
	}
	switch len(t) {
	case 1:
		return t[0]
	case 2:
		return t[0] + " and " + t[1]
	}
	return strings.Join(t[:len(t)-1], ", ") + " and " + t[len(t)-1]
}
