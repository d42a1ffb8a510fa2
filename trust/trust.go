// Package trust decides whether a client certificate is acceptable to the
// gateway beyond what the TLS handshake checked: validity period, chain to
// a trusted root (when the gateway verifies chains itself), the RFC 5280
// end-entity profile (no CA certificate, no CA key usage, no weak key, a
// positive serial), extended key usage, issuing CA, and certificate
// policies. Every rejection carries a
// stable code and a reason fit to show the card holder.
package trust

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// Rejection codes, also used as the "error" value of JSON responses.
const (
	CodeNotYetValid   = "certificate_not_yet_valid"
	CodeExpired       = "certificate_expired"
	CodeUntrusted     = "certificate_untrusted"
	CodeNotVerified   = "certificate_not_verified"
	CodeUsage         = "certificate_usage"
	CodeIssuer        = "certificate_issuer"
	CodePolicy        = "certificate_policy"
	CodeInvalidFormat = "certificate_invalid"
)

// Rejection explains why a certificate is refused.
type Rejection struct {
	Code   string
	Reason string // for the card holder; no internals
}

func (r *Rejection) Error() string { return r.Reason }

// Policy is a site's certificate acceptance policy.
type Policy struct {
	// Roots, when set, are the CAs the gateway verifies chains against
	// itself (for client_auth mode "request"); nil means the TLS handshake
	// must have verified the chain.
	Roots *x509.CertPool
	// AllowedIssuers, when non-empty, restricts the issuing CA to these:
	// each is a distinguished name (as printed by
	// `openssl x509 -noout -issuer -nameopt RFC2253`) or the hex SHA-256 of
	// the CA certificate.
	AllowedIssuers []string
	// RequiredPolicies, when non-empty, are certificate policy OIDs the
	// card must carry: all of them, or any one when AnyPolicy is set.
	RequiredPolicies []string
	AnyPolicy        bool
	// RequiredEKU are extended key usages the card must carry, all of them:
	// names from EKUNames or dotted OIDs. Empty means clientAuth (which
	// anyExtendedKeyUsage also satisfies).
	RequiredEKU []string
	// MaxChainDepth, when positive, bounds the verified chain's length
	// counted in certificates, leaf and root included (DoD: root,
	// intermediate, card = 3).
	MaxChainDepth int

	issuerDNs    []string
	issuerHashes []string // cacid.Fingerprint of allowed CA certificates
	policies     []asn1.ObjectIdentifier
	ekus         []requiredEKU
}

// requiredEKU is one compiled RequiredEKU entry.
type requiredEKU struct {
	name string
	oid  asn1.ObjectIdentifier
}

// EKUNames are the extended key usages RequiredEKU accepts by name.
var EKUNames = map[string]asn1.ObjectIdentifier{
	"clientAuth":          {1, 3, 6, 1, 5, 5, 7, 3, 2},
	"smartcardLogon":      {1, 3, 6, 1, 4, 1, 311, 20, 2, 2},
	"emailProtection":     {1, 3, 6, 1, 5, 5, 7, 3, 4},
	"pivAuth":             {2, 16, 840, 1, 101, 3, 6, 8}, // id-PIV-cardAuth
	"anyExtendedKeyUsage": {2, 5, 29, 37, 0},
}

// ekuOIDs maps every extended key usage crypto/x509 parses into an
// ExtKeyUsage value back to its OID, so a required OID can be compared
// with every usage a certificate carries, named or not.
var ekuOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageAny:                            {2, 5, 29, 37, 0},
	x509.ExtKeyUsageServerAuth:                     {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:                     {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:                    {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection:                {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageIPSECEndSystem:                 {1, 3, 6, 1, 5, 5, 7, 3, 5},
	x509.ExtKeyUsageIPSECTunnel:                    {1, 3, 6, 1, 5, 5, 7, 3, 6},
	x509.ExtKeyUsageIPSECUser:                      {1, 3, 6, 1, 5, 5, 7, 3, 7},
	x509.ExtKeyUsageTimeStamping:                   {1, 3, 6, 1, 5, 5, 7, 3, 8},
	x509.ExtKeyUsageOCSPSigning:                    {1, 3, 6, 1, 5, 5, 7, 3, 9},
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     {1, 3, 6, 1, 4, 1, 311, 10, 3, 3},
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      {2, 16, 840, 1, 113730, 4, 1},
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: {1, 3, 6, 1, 4, 1, 311, 2, 1, 22},
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     {1, 3, 6, 1, 4, 1, 311, 61, 1, 1},
}

// Compile validates the policy's lists and prepares them for matching.
func (p *Policy) Compile() error {
	p.issuerDNs, p.issuerHashes, p.policies = nil, nil, nil
	for _, iss := range p.AllowedIssuers {
		pat, err := ParseIssuer(iss)
		if err != nil {
			return fmt.Errorf("allowed issuer %w", err)
		}
		if pat.isHash {
			p.issuerHashes = append(p.issuerHashes, pat.hash)
			continue
		}
		p.issuerDNs = append(p.issuerDNs, pat.dn)
	}
	for _, s := range p.RequiredPolicies {
		oid, err := parseOID(s)
		if err != nil {
			return fmt.Errorf("required policy %q: %w", s, err)
		}
		p.policies = append(p.policies, oid)
	}
	p.ekus = nil
	for _, s := range p.RequiredEKU {
		oid, ok := EKUNames[s]
		if !ok {
			var err error
			if oid, err = parseOID(s); err != nil {
				return fmt.Errorf("required EKU %q is neither a known name nor an OID", s)
			}
		}
		p.ekus = append(p.ekus, requiredEKU{name: s, oid: oid})
	}
	if p.MaxChainDepth < 0 {
		return fmt.Errorf("max chain depth must not be negative")
	}
	return nil
}

// CheckValidity rejects a certificate outside its validity period. It is
// cheap and runs on every request, because a cached verdict cannot know
// that a card expired since.
func CheckValidity(cert *x509.Certificate, now time.Time) *Rejection {
	if now.Before(cert.NotBefore) {
		return &Rejection{CodeNotYetValid, "Your certificate is not valid yet (it becomes valid on " + cert.NotBefore.UTC().Format("2 January 2006 15:04 MST") + "). Check your computer's date and time."}
	}
	if now.After(cert.NotAfter) {
		return &Rejection{CodeExpired, "Your certificate expired on " + cert.NotAfter.UTC().Format("2 January 2006") + ". Renew your CAC at a RAPIDS/ID card office, or use a card with a current certificate."}
	}
	return nil
}

// Verify builds and verifies a chain from leaf to one of the policy's Roots,
// using intermediates as sent by the client, for client authentication as
// crypto/tls does: a CA whose extended key usage excludes clientAuth cannot
// vouch for a card (EKU nesting). Such a chain is refused with CodeUsage.
// A card whose own usage excludes clientAuth is left to Check (CheckUsage),
// which gives the holder the precise reason.
func (p *Policy) Verify(leaf *x509.Certificate, intermediates []*x509.Certificate, now time.Time) ([]*x509.Certificate, *Rejection) {
	if p.Roots == nil {
		return nil, &Rejection{CodeNotVerified, "Your certificate was not verified against this site's trusted certificate authorities."}
	}
	if len(intermediates) > MaxIntermediates {
		// Path building tries every candidate issuer a client sends, so
		// dozens of look-alike CA certificates cost seconds of CPU per
		// handshake. DoD chains have one or two CAs below the root.
		return nil, &Rejection{CodeUntrusted, "Your browser sent more certificate authority certificates than a CAC chain has, so this site did not try to verify them."}
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	// One path search, for any usage; the usage is judged on the chains
	// it found, so a refusal can say whether usage was the only problem
	// without searching a second time.
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         p.Roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, &Rejection{CodeUntrusted, "Your certificate was not issued by a certificate authority this site trusts. Use your CAC's authentication (PIV/ID) certificate, not an email or third-party certificate."}
	}
	for _, chain := range chains {
		if chainAllowsClientAuth(chain) {
			return chain, nil
		}
	}
	if !allowsClientAuth(leaf) {
		return chains[0], nil // Check refuses it, with the card's own reason
	}
	return nil, &Rejection{CodeUsage, "Your certificate was issued by a certificate authority that is not allowed to issue certificates for signing in (its extended key usage excludes client authentication). Use your CAC's authentication (PIV/ID) certificate."}
}

// MaxIntermediates is the most CA certificates a client may send with its
// certificate for Verify to consider (a DoD chain sends one or two).
const MaxIntermediates = 4

// chainAllowsClientAuth applies crypto/x509's extended key usage nesting to
// a verified chain, as its Verify does with KeyUsages [clientAuth]: every
// certificate, anchor included, must permit client authentication (no EKU
// extension, clientAuth or anyExtendedKeyUsage).
func chainAllowsClientAuth(chain []*x509.Certificate) bool {
	for _, c := range chain {
		if !allowsClientAuth(c) {
			return false
		}
	}
	return true
}

// allowsClientAuth reports whether the certificate's own extended key
// usage permits client authentication as crypto/x509 judges it: no EKU
// extension, clientAuth or anyExtendedKeyUsage.
func allowsClientAuth(cert *x509.Certificate) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// Check applies the end-entity profile (CheckProfile) and the policy's
// usage, issuer and certificate-policy rules. issuer is the verified
// issuing CA certificate (chain[1]); it may be nil when no chain is at
// hand, in which case hash-pinned issuers cannot match. Callers run it
// once per certificate and cache the verdict: it is not on the hot path.
func (p *Policy) Check(leaf, issuer *x509.Certificate) *Rejection {
	if r := CheckProfile(leaf); r != nil {
		return r
	}
	if r := CheckUsage(leaf); r != nil {
		return r
	}
	for _, want := range p.ekus {
		if !hasEKU(leaf, want) {
			return &Rejection{CodeUsage, "This certificate lacks a key usage this site requires (" + want.name + "). Choose your CAC's authentication certificate when the browser asks."}
		}
	}
	if len(p.issuerDNs)+len(p.issuerHashes) > 0 && !p.issuerAllowed(leaf, issuer) {
		return &Rejection{CodeIssuer, "Your certificate was issued by a certificate authority that is not accepted by this site."}
	}
	if len(p.policies) > 0 && !p.policiesMet(leaf) {
		return &Rejection{CodePolicy, "Your certificate does not carry the certificate policy this site requires (for example, a hardware-token CAC authentication certificate)."}
	}
	return nil
}

// CheckChainDepth enforces MaxChainDepth on a verified chain of depth
// certificates.
func (p *Policy) CheckChainDepth(depth int) *Rejection {
	if p.MaxChainDepth > 0 && depth > p.MaxChainDepth {
		return &Rejection{CodeUntrusted, "Your certificate's chain of certificate authorities is longer than this site allows."}
	}
	return nil
}

// hasEKU reports whether the certificate carries the usage's OID, whether
// crypto/x509 parsed it into ExtKeyUsage or left it in UnknownExtKeyUsage.
// The match is exact: anyExtendedKeyUsage stands only for itself here.
func hasEKU(leaf *x509.Certificate, want requiredEKU) bool {
	for _, u := range leaf.ExtKeyUsage {
		if oid, ok := ekuOIDs[u]; ok && oid.Equal(want.oid) {
			return true
		}
	}
	for _, oid := range leaf.UnknownExtKeyUsage {
		if oid.Equal(want.oid) {
			return true
		}
	}
	return false
}

// CheckUsage requires the client-authentication extended key usage (or
// anyExtendedKeyUsage) and, when a key usage is present, digitalSignature.
func CheckUsage(leaf *x509.Certificate) *Rejection {
	ok := false
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			ok = true
			break
		}
	}
	if !ok {
		return &Rejection{CodeUsage, "This certificate is not meant for signing in (it lacks the client authentication usage). Choose your CAC's authentication certificate when the browser asks."}
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return &Rejection{CodeUsage, "This certificate's key is not allowed to sign, so it cannot be used to sign in. Choose your CAC's authentication certificate."}
	}
	return nil
}

func (p *Policy) issuerAllowed(leaf, issuer *x509.Certificate) bool {
	dn := normalizeDN(cacid.DistinguishedName(leaf.RawIssuer, leaf.Issuer))
	for _, want := range p.issuerDNs {
		if strings.EqualFold(dn, want) {
			return true
		}
	}
	if issuer != nil && len(p.issuerHashes) > 0 {
		fingerprint := cacid.Fingerprint(issuer.Raw)
		for _, want := range p.issuerHashes {
			if fingerprint == want {
				return true
			}
		}
	}
	return false
}

func (p *Policy) policiesMet(leaf *x509.Certificate) bool {
	has := func(want asn1.ObjectIdentifier) bool {
		for _, got := range leaf.PolicyIdentifiers {
			if got.Equal(want) {
				return true
			}
		}
		return false
	}
	if p.AnyPolicy {
		return slices.ContainsFunc(p.policies, has)
	}
	for _, want := range p.policies {
		if !has(want) {
			return false
		}
	}
	return true
}

// normalizeDN drops the spaces people put after RDN separators, so
// "CN=X, O=Y" matches Go's "CN=X,O=Y". Escaped commas are kept.
func normalizeDN(dn string) string {
	parts := SplitDN(dn)
	for i, p := range parts {
		p = strings.TrimSpace(p)
		// "CN = X" (OpenSSL's default spacing) is "CN=X".
		if typ, value, ok := strings.Cut(p, "="); ok {
			p = strings.TrimSpace(typ) + "=" + strings.TrimSpace(value)
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	fields := strings.Split(strings.TrimSpace(s), ".")
	if len(fields) < 2 {
		return nil, errors.New("not a dotted OID")
	}
	oid := make(asn1.ObjectIdentifier, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || (i > 0 && f != strconv.Itoa(n)) {
			return nil, errors.New("not a dotted OID")
		}
		oid[i] = n
	}
	return oid, nil
}
