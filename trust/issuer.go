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
	hash   [sha256.Size]byte
	isHash bool
}

// ParseIssuer parses a distinguished name or a CA certificate's SHA-256.
func ParseIssuer(s string) (IssuerPattern, error) {
	s = strings.TrimSpace(s)
	if h, err := hex.DecodeString(strings.ReplaceAll(s, ":", "")); err == nil && len(h) == sha256.Size {
		return IssuerPattern{hash: [sha256.Size]byte(h), isHash: true}, nil
	}
	dn := normalizeDN(s)
	if !strings.Contains(dn, "=") {
		return IssuerPattern{}, fmt.Errorf("%q is neither a distinguished name nor a SHA-256 fingerprint", s)
	}
	return IssuerPattern{dn: dn}, nil
}

// IsHash reports whether the pattern pins the CA certificate's SHA-256
// rather than naming the CA.
func (p IssuerPattern) IsHash() bool { return p.isHash }

// DN is the normalized distinguished name ("" for a hash pattern).
func (p IssuerPattern) DN() string { return p.dn }

// Match reports whether a card whose issuer name is issuerDN (as
// cacid.DistinguishedName prints it) and whose verified issuing CA
// certificate hashes to caSHA256 (nil when no verified chain is at hand)
// is from this CA. A hash pattern never matches without the hash.
func (p IssuerPattern) Match(issuerDN string, caSHA256 *[sha256.Size]byte) bool {
	if p.isHash {
		return caSHA256 != nil && *caSHA256 == p.hash
	}
	return strings.EqualFold(normalizeDN(issuerDN), p.dn)
}

// ParseOID parses a dotted certificate policy OID ("2.16.840.1.101.2.1.11.42")
// the way required_policies does: at least two arcs, decimal, no leading
// zeros or signs.
func ParseOID(s string) (asn1.ObjectIdentifier, error) { return parseOID(s) }
