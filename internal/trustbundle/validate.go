package trustbundle

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"
)

// MinRSABits is the smallest RSA modulus a trusted CA may have: NIST SP
// 800-131A has disallowed smaller keys for signatures since 2013, and
// every current DoD CA is RSA-2048 or larger.
const MinRSABits = 2048

// Refuse returns why c cannot be a trusted CA for cards as of now, or ""
// if it can: it must be a CA (basicConstraints CA:TRUE, and key usage, if
// present, allowing certificate signing), unexpired, with a strong key. A
// CA not valid yet is kept: chain verification checks validity anyway, and
// DISA may ship a CA days before it starts issuing.
func Refuse(c *x509.Certificate, now time.Time) string {
	if !c.BasicConstraintsValid || !c.IsCA {
		return "not a CA certificate (no basicConstraints CA:TRUE)"
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return "its key usage does not allow signing certificates"
	}
	if now.After(c.NotAfter) {
		return "expired on " + c.NotAfter.UTC().Format(time.DateOnly)
	}
	return weakKey(c)
}

// weakKey names a key too weak to anchor trust, "" if it is not.
func weakKey(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return fmt.Sprintf("weak key: RSA %d bits (at least %d required)", n, MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize < 256 {
			return fmt.Sprintf("weak key: EC %s (P-256 or larger required)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		// DSA above all, which FIPS 186-5 no longer approves.
		return fmt.Sprintf("unsupported key type %T", k)
	}
	return ""
}
