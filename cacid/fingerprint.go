package cacid

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint is a certificate's fingerprint: the lower-case hex SHA-256 of
// its DER encoding (64 characters, no colons). It is how cacgate names a
// certificate everywhere: cards in the account store, in audit entries and
// in the admin API; CA certificates in allowed_issuers and access rules;
// verdicts in the revocation cache. Identity.FingerprintHex is the card's.
func Fingerprint(der []byte) string {
	return fingerprintHex(sha256.Sum256(der))
}

// fingerprintHex is the text form of a fingerprint already hashed.
func fingerprintHex(sum [sha256.Size]byte) string {
	return hex.EncodeToString(sum[:])
}
