package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// newKey returns an ECDSA P-256 key, or RSA-2048 when rsaKey is set. P-256
// is the default because generating it is instant; RSA exists because real
// CACs still carry RSA keys and TLS stacks treat the two differently.
func newKey(rsaKey bool) (crypto.Signer, error) {
	if rsaKey {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// serialLimit makes serials 127 random bits: positive, unpredictable and
// well inside RFC 5280's 20-octet limit.
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 127)

func randomSerial() (*big.Int, error) {
	for {
		serial, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			return nil, err
		}
		if serial.Sign() > 0 {
			return serial, nil
		}
	}
}

// subjectKeyID derives a key identifier with RFC 7093 section 2 method 1:
// the leftmost 160 bits of the SHA-256 of the subjectPublicKey bit string.
// crypto/x509 only fills SubjectKeyId in for CA certificates; real CAC leaf
// certificates carry one too.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	input := cryptobyte.String(spki)
	var body, algorithm cryptobyte.String
	var publicKey asn1.BitString
	if !input.ReadASN1(&body, cryptobyteasn1.SEQUENCE) ||
		!body.ReadASN1(&algorithm, cryptobyteasn1.SEQUENCE) ||
		!body.ReadASN1BitString(&publicKey) {
		return nil, errors.New("testpki: cannot parse the public key encoding")
	}
	sum := sha256.Sum256(publicKey.Bytes)
	return sum[:20], nil
}
