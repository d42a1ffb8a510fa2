package trust

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
)

// IssuerPattern is one issuing-CA entry in the syntax allowed_issuers
// uses: a distinguished name (as `openssl x509 -noout -issuer -nameopt
// RFC2253` prints it, spaces after commas allowed, compared without regard
// to case) or the hex SHA-256 of the CA certificate (colons allowed). Other
// packages (access rules) parse issuers with it so the syntax is the same
// everywhere.
type IssuerPattern struct {
	dn     string // normalized; empty for a hash pattern
	hash   string // the CA's cacid.Fingerprint; empty for a name pattern
	isHash bool
}

// ParseIssuer parses a distinguished name or a CA certificate's SHA-256.
func ParseIssuer(s string) (IssuerPattern, error) {
	s = strings.TrimSpace(s)
	if h, err := hex.DecodeString(strings.ReplaceAll(s, ":", "")); err == nil && len(h) == sha256.Size {
		return IssuerPattern{hash: hex.EncodeToString(h), isHash: true}, nil
	}
	if strings.HasPrefix(s, "/") {
		return IssuerPattern{}, fmt.Errorf("%q is in OpenSSL's /C=.../CN=... form: give the name as `openssl x509 -noout -issuer -nameopt RFC2253` prints it, or the CA's SHA-256", s)
	}
	dn := normalizeDN(s)
	rdns := SplitDN(dn)
	for _, rdn := range rdns {
		typ, value, ok := strings.Cut(rdn, "=")
		if !ok || typ == "" || value == "" {
			return IssuerPattern{}, fmt.Errorf("%q is neither a distinguished name nor a SHA-256 fingerprint", s)
		}
	}
	// A name that can never equal a card's issuer must not load quietly:
	// as a deny rule it would deny nothing.
	switch {
	case len(rdns) == 1:
		return IssuerPattern{}, fmt.Errorf("%q names one attribute only: give the CA's whole distinguished name (`openssl x509 -noout -issuer -nameopt RFC2253`, e.g. CN=DOD ID CA-59, OU=PKI, OU=DoD, O=U.S. Government, C=US) or its SHA-256", s)
	case strings.EqualFold(rdnType(rdns[0]), "C"):
		return IssuerPattern{}, fmt.Errorf("%q lists the country first (OpenSSL's default order): give the name as `openssl x509 -noout -issuer -nameopt RFC2253` prints it, most specific first (CN=..., ..., C=US)", s)
	}
	return IssuerPattern{dn: dn}, nil
}

// SplitDN splits a distinguished name into its RDNs at the commas that
// are not escaped with a backslash, leaving spaces as they are.
func SplitDN(dn string) []string {
	var rdns []string
	start := 0
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',':
			rdns = append(rdns, dn[start:i])
			start = i + 1
		}
	}
	return append(rdns, dn[start:])
}

func rdnType(rdn string) string {
	typ, _, _ := strings.Cut(rdn, "=")
	return typ
}

// IsHash reports whether the pattern pins the CA certificate's SHA-256
// rather than naming the CA.
func (p IssuerPattern) IsHash() bool { return p.isHash }

// DN is the normalized distinguished name ("" for a hash pattern).
func (p IssuerPattern) DN() string { return p.dn }

// Match reports whether a card whose issuer name is issuerDN (as
// cacid.DistinguishedName prints it) and whose verified issuing CA
// certificate's fingerprint is caFingerprint (cacid.Fingerprint; "" when
// no verified chain is at hand) is from this CA. A hash pattern never
// matches without the fingerprint.
func (p IssuerPattern) Match(issuerDN, caFingerprint string) bool {
	if p.isHash {
		return caFingerprint != "" && caFingerprint == p.hash
	}
	return strings.EqualFold(normalizeDN(issuerDN), p.dn)
}

// ParseOID parses a dotted certificate policy OID ("2.16.840.1.101.2.1.11.42")
// the way required_policies does: at least two arcs, decimal, no leading
// zeros or signs.
func ParseOID(s string) (asn1.ObjectIdentifier, error) { return parseOID(s) }
