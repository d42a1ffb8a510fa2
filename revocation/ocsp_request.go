package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// oidOCSPNonce is id-pkix-ocsp-nonce (RFC 8954).
var oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// nonceLength is what RFC 8954 section 2.1 tells clients to send.
const nonceLength = 32

// buildOCSPRequest makes a DER OCSP request for leaf, with a SHA-1 CertID
// (the hash responders, the DoD's included, expect) and, when nonce is not
// nil, a nonce extension.
func buildOCSPRequest(leaf, issuer *x509.Certificate, nonce []byte) ([]byte, error) {
	plain, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil || nonce == nil {
		return plain, err
	}
	return addNonce(plain, nonce)
}

// addNonce rebuilds a request made by ocsp.CreateRequest with
// requestExtensions holding the nonce; x/crypto's Request cannot carry
// extensions. The CertID is reused as ocsp.CreateRequest encoded it.
//
//	OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, ... }
//	TBSRequest  ::= SEQUENCE {
//	    version           [0] EXPLICIT Version DEFAULT v1,
//	    requestorName     [1] EXPLICIT GeneralName OPTIONAL,
//	    requestList           SEQUENCE OF Request,
//	    requestExtensions [2] EXPLICIT Extensions OPTIONAL }
func addNonce(plain, nonce []byte) ([]byte, error) {
	input := cryptobyte.String(plain)
	var request, tbs, requestList cryptobyte.String
	if !input.ReadASN1(&request, cryptobyteasn1.SEQUENCE) || !input.Empty() ||
		!request.ReadASN1(&tbs, cryptobyteasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipOptionalASN1(cryptobyteasn1.Tag(1).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1Element(&requestList, cryptobyteasn1.SEQUENCE) || !tbs.Empty() {
		return nil, errors.New("cannot add a nonce: unexpected OCSP request encoding")
	}
	var b cryptobyte.Builder
	b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddBytes(requestList)
			b.AddASN1(cryptobyteasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extensions
					b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extension
						b.AddASN1ObjectIdentifier(oidOCSPNonce)
						b.AddASN1(cryptobyteasn1.OCTET_STRING, func(b *cryptobyte.Builder) { // extnValue
							b.AddASN1OctetString(nonce) // Nonce ::= OCTET STRING
						})
					})
				})
			})
		})
	})
	return b.Bytes()
}

// nonceMatches reports whether an extension value carries nonce. RFC 8954
// wraps the nonce in an OCTET STRING inside extnValue; some responders,
// following RFC 2560's looser text, put the bare nonce there. Either way
// the signed value must equal the random bytes sent.
func nonceMatches(value, nonce []byte) bool {
	s := cryptobyte.String(value)
	var inner cryptobyte.String
	if s.ReadASN1(&inner, cryptobyteasn1.OCTET_STRING) && s.Empty() && bytes.Equal(inner, nonce) {
		return true
	}
	return bytes.Equal(value, nonce)
}
