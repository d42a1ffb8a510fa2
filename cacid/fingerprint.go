package cacid

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint is the lower-case hex SHA-256 of a certificate's DER bytes:
// the one name of a card (or CA certificate) in the account database,
// audit entries, headers and caches.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
