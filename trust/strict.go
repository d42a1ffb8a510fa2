package trust

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
)

// Rejection codes of CheckProfile: RFC 5280 and DoD rules on the card
// certificate itself that crypto/x509's path validation does not apply.
const (
	CodeIsCA      = "certificate_is_ca"
	CodeCAUsage   = "certificate_ca_key_usage"
	CodeWeakKey   = "certificate_weak_key"
	CodeBadSerial = "certificate_bad_serial"
)

// MinRSABits is the smallest RSA modulus accepted in a card certificate
// (NIST SP 800-131A, DoD PKI: 2048).
const MinRSABits = 2048

// CheckProfile refuses a client certificate that is not an end-entity
// certificate fit to authenticate with, although a trusted CA signed it
// and crypto/x509 verifies its chain:
//
//   - basicConstraints cA TRUE: a CA certificate is not a person's
//     credential (RFC 5280 section 4.2.1.9); Go verifies it as a leaf;
//   - keyCertSign or cRLSign key usage: a key that may sign certificates
//     or CRLs belongs to a CA (section 4.2.1.3), and using it to sign in
//     mixes the roles;
//   - an RSA key under MinRSABits or an EC key on a curve under P-256
//     (NIST SP 800-131A, DoD/STIG minimums); Go accepts RSA from 1024 bits;
//   - serial number zero: section 4.1.2.2 requires a positive serial (Go
//     parses zero; negative serials it already refuses).
//
// It applies to the leaf only: CA certificates in the chain keep Go's rules.
func CheckProfile(leaf *x509.Certificate) *Rejection {
	if leaf.BasicConstraintsValid && leaf.IsCA {
		return &Rejection{CodeIsCA, "This is a certificate authority's certificate, not a personal certificate, so it cannot be used to sign in. Choose your CAC's authentication certificate when the browser asks."}
	}
	if leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return &Rejection{CodeCAUsage, "This certificate's key is allowed to sign certificates or revocation lists, as only a certificate authority's may be, so it cannot be used to sign in. Choose your CAC's authentication certificate when the browser asks."}
	}
	if !strongKey(leaf.PublicKey) {
		return &Rejection{CodeWeakKey, "This certificate's key is too weak to be accepted (RSA keys must be at least 2048 bits, elliptic-curve keys P-256 or stronger). Use a current CAC or PIV card."}
	}
	if leaf.SerialNumber == nil || leaf.SerialNumber.Sign() <= 0 {
		return &Rejection{CodeBadSerial, "This certificate's serial number is not valid (it must be a positive number), so it cannot be trusted to identify you. Use a certificate issued by your CAC's certificate authority."}
	}
	return nil
}

// strongKey reports whether a certificate's public key meets the minimums.
// Key types crypto/tls cannot authenticate with are refused too.
func strongKey(pub any) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return true
		}
		return false
	case ed25519.PublicKey:
		return true // 128-bit security, as P-256
	}
	return false
}
