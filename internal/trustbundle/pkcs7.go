package trustbundle

// PKCS#7 is read and written with github.com/smallstep/pkcs7, not a
// reader of our own: it is already in the module graph (Caddy's ACME and
// PKI code depends on it, so it adds no new code to the binary), it is the
// maintained fork of mozilla/pkcs7 that step-ca parses client PKCS#7 with,
// and it converts BER (indefinite lengths, constructed strings, which
// Windows-exported .p7b files use) to DER before encoding/asn1 sees it.
// What this file adds is the framing: PEM or DER, and the bounds every
// input gets here.

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// pemTypesPKCS7 are the PEM labels PKCS#7 certificate bundles are found
// under: OpenSSL writes "PKCS7" (DISA's .pem.p7b files), RFC 7468 names
// "CMS", and older tools wrote "PKCS #7 SIGNED DATA".
var pemTypesPKCS7 = map[string]bool{"PKCS7": true, "CMS": true, "PKCS #7 SIGNED DATA": true}

// ParsePKCS7 returns the certificates of a certs-only PKCS#7 SignedData,
// DER (or BER) or PEM. Signatures and content, if any, are ignored: a
// bundle's certificates are judged one by one, never by who packed them.
func ParsePKCS7(data []byte) ([]*x509.Certificate, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileSize)
	}
	if block, _ := pem.Decode(data); block != nil {
		if !pemTypesPKCS7[block.Type] {
			return nil, fmt.Errorf("PEM block %q is not PKCS#7", block.Type)
		}
		data = block.Bytes
	} else if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		return nil, errors.New("malformed PEM")
	}
	p7, err := parsePKCS7(data)
	if err != nil {
		return nil, err
	}
	if len(p7.Certificates) == 0 {
		return nil, errors.New("PKCS#7 holds no certificates")
	}
	return p7.Certificates, nil
}

// parsePKCS7 parses DER/BER PKCS#7, turning a panic of the parser on
// hostile input into an error (defence in depth: the fuzz target found
// none, but a trust file is operator-supplied and a panic here would take
// the server down at provision).
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("malformed PKCS#7 (%v)", r)
		}
	}()
	p7, err = pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("not PKCS#7: %w", err)
	}
	return p7, nil
}

// EncodePKCS7 returns a certs-only ("degenerate") PKCS#7 SignedData in
// DER holding certs, as DISA's .der.p7b files and `openssl crl2pkcs7
// -nocrl` are: what Windows and macOS import as a certificate bundle.
func EncodePKCS7(certs []*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("trustbundle: no certificates to encode")
	}
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	return pkcs7.DegenerateCertificate(raw)
}

// EncodePKCS7PEM is EncodePKCS7 in PEM ("-----BEGIN PKCS7-----"), as
// DISA's .pem.p7b files are.
func EncodePKCS7PEM(certs []*x509.Certificate) ([]byte, error) {
	der, err := EncodePKCS7(certs)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der}), nil
}

// EncodePEM returns certs as concatenated PEM CERTIFICATE blocks.
func EncodePEM(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}
