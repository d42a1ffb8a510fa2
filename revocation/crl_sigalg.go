package revocation

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The CRL is parsed with cryptobyte rather than crypto/x509, so the
// signature AlgorithmIdentifier has to be mapped to an
// x509.SignatureAlgorithm here; x509.Certificate.CheckSignature then does
// the cryptography.

var (
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}

	oidSHA1WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidECDSAWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}

	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// signatureAlgorithm maps a DER AlgorithmIdentifier to the algorithm
// crypto/x509 verifies. The parameters are checked as strictly as
// crypto/x509 checks them, so an algorithm is never verified under different
// parameters than the signer declared.
func signatureAlgorithm(algorithmIdentifier []byte) (x509.SignatureAlgorithm, error) {
	input := cryptobyte.String(algorithmIdentifier)
	var body cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !input.ReadASN1(&body, cryptobyteasn1.SEQUENCE) || !input.Empty() || !body.ReadASN1ObjectIdentifier(&oid) {
		return x509.UnknownSignatureAlgorithm, errors.New("malformed signature algorithm")
	}
	params := body // what is left: the parameters, if any

	rsa := []struct {
		oid asn1.ObjectIdentifier
		alg x509.SignatureAlgorithm
	}{
		{oidSHA256WithRSA, x509.SHA256WithRSA},
		{oidSHA384WithRSA, x509.SHA384WithRSA},
		{oidSHA512WithRSA, x509.SHA512WithRSA},
	}
	for _, a := range rsa {
		if oid.Equal(a.oid) {
			// RFC 4055 says NULL; absent parameters are common enough to allow.
			if !params.Empty() && !isNULL(params) {
				return x509.UnknownSignatureAlgorithm, fmt.Errorf("signature algorithm %v has unexpected parameters", oid)
			}
			return a.alg, nil
		}
	}

	noParams := []struct {
		oid asn1.ObjectIdentifier
		alg x509.SignatureAlgorithm
	}{
		{oidECDSAWithSHA256, x509.ECDSAWithSHA256},
		{oidECDSAWithSHA384, x509.ECDSAWithSHA384},
		{oidECDSAWithSHA512, x509.ECDSAWithSHA512},
		{oidEd25519, x509.PureEd25519},
	}
	for _, a := range noParams {
		if oid.Equal(a.oid) {
			if !params.Empty() {
				return x509.UnknownSignatureAlgorithm, fmt.Errorf("signature algorithm %v must not have parameters", oid)
			}
			return a.alg, nil
		}
	}

	switch {
	case oid.Equal(oidRSASSAPSS):
		return pssAlgorithm(params)
	case oid.Equal(oidSHA1WithRSA), oid.Equal(oidECDSAWithSHA1):
		return x509.UnknownSignatureAlgorithm, errors.New("SHA-1 signatures are not accepted")
	}
	return x509.UnknownSignatureAlgorithm, fmt.Errorf("unsupported signature algorithm %v", oid)
}

// pssAlgorithm accepts the RSASSA-PSS parameters crypto/x509 can verify:
// SHA-256/384/512 for both the message and MGF1, and a salt as long as the
// hash (RFC 4055 section 3.1).
func pssAlgorithm(params cryptobyte.String) (x509.SignatureAlgorithm, error) {
	fail := func(why string) (x509.SignatureAlgorithm, error) {
		return x509.UnknownSignatureAlgorithm, errors.New("RSASSA-PSS parameters: " + why)
	}
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cryptobyteasn1.SEQUENCE) || !params.Empty() {
		return fail("malformed")
	}
	var hashAlg, mgf cryptobyte.String
	var hashPresent, mgfPresent bool
	var saltLength, trailer int64
	if !seq.ReadOptionalASN1(&hashAlg, &hashPresent, cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) ||
		!seq.ReadOptionalASN1(&mgf, &mgfPresent, cryptobyteasn1.Tag(1).Constructed().ContextSpecific()) ||
		!seq.ReadOptionalASN1Integer(&saltLength, cryptobyteasn1.Tag(2).Constructed().ContextSpecific(), int64(20)) ||
		!seq.ReadOptionalASN1Integer(&trailer, cryptobyteasn1.Tag(3).Constructed().ContextSpecific(), int64(1)) ||
		!seq.Empty() {
		return fail("malformed")
	}
	if !hashPresent || !mgfPresent {
		return fail("SHA-1 defaults are not accepted")
	}
	hash, ok := readHashAlgorithm(&hashAlg)
	if !ok || !hashAlg.Empty() {
		return fail("unsupported hash")
	}
	var mgfBody cryptobyte.String
	var mgfOID asn1.ObjectIdentifier
	if !mgf.ReadASN1(&mgfBody, cryptobyteasn1.SEQUENCE) || !mgf.Empty() || !mgfBody.ReadASN1ObjectIdentifier(&mgfOID) || !mgfOID.Equal(oidMGF1) {
		return fail("mask generation function is not MGF1")
	}
	mgfHash, ok := readHashAlgorithm(&mgfBody)
	if !ok || !mgfBody.Empty() || !mgfHash.Equal(hash) {
		return fail("MGF1 hash differs from the message hash")
	}
	if trailer != 1 {
		return fail("trailer field is not 1")
	}
	switch {
	case hash.Equal(oidSHA256) && saltLength == 32:
		return x509.SHA256WithRSAPSS, nil
	case hash.Equal(oidSHA384) && saltLength == 48:
		return x509.SHA384WithRSAPSS, nil
	case hash.Equal(oidSHA512) && saltLength == 64:
		return x509.SHA512WithRSAPSS, nil
	}
	return fail("salt length does not match the hash")
}

// readHashAlgorithm reads a hash AlgorithmIdentifier (SHA-256/384/512, with
// NULL or absent parameters).
func readHashAlgorithm(s *cryptobyte.String) (asn1.ObjectIdentifier, bool) {
	var body cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&body, cryptobyteasn1.SEQUENCE) || !body.ReadASN1ObjectIdentifier(&oid) {
		return nil, false
	}
	if !body.Empty() && !isNULL(body) {
		return nil, false
	}
	if !oid.Equal(oidSHA256) && !oid.Equal(oidSHA384) && !oid.Equal(oidSHA512) {
		return nil, false
	}
	return oid, true
}

func isNULL(s cryptobyte.String) bool {
	var null cryptobyte.String
	return s.ReadASN1(&null, cryptobyteasn1.NULL) && null.Empty() && s.Empty()
}
