package cacid_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/cacgate/cacgate/cacid"
)

// TestFingerprint: the lower-case hex SHA-256 of the DER, the same value
// Parse puts in Identity.FingerprintHex.
func TestFingerprint(t *testing.T) {
	if got, want := cacid.Fingerprint([]byte("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Fingerprint(abc) = %s, want %s", got, want)
	}
	cert := testPKI(t).Card("doe.john.quincy").Cert
	sum := sha256.Sum256(cert.Raw)
	got := cacid.Fingerprint(cert.Raw)
	if got != hex.EncodeToString(sum[:]) {
		t.Errorf("Fingerprint = %s, want the hex SHA-256 of the DER", got)
	}
	id, err := cacid.Parse(cert)
	if err != nil {
		t.Fatal(err)
	}
	if id.FingerprintHex != got || id.Fingerprint != sum {
		t.Errorf("Identity fingerprint %s (%x), Fingerprint %s", id.FingerprintHex, id.Fingerprint, got)
	}
}
