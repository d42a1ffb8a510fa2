package revocation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// validateOCSPResponse parses an OCSP response for leaf and accepts it only
// if the issuer vouches for it and it is current.
//
// ocsp.ParseResponseForCert does the parsing and checks the signature, but
// leaves gaps this closes:
//   - a certificate embedded in the response is only checked to be signed
//     by the issuer; RFC 6960 section 4.2.2.2 also requires the OCSP-signing
//     usage, or any certificate the CA ever issued, a card included, could
//     sign responses;
//   - the response is matched to the certificate by serial alone; the
//     CertID's issuer hashes must match too, or a response about another
//     CA's certificate with the same serial would do;
//   - responseExtensions, where RFC 8954 puts the nonce, are not parsed.
func validateOCSPResponse(der []byte, leaf, issuer *x509.Certificate, nonce []byte, now time.Time, skew time.Duration) (*ocsp.Response, error) {
	// With a nil issuer x/crypto verifies the signature against the
	// embedded certificate, if any, and leaves authorising it to us.
	resp, err := ocsp.ParseResponseForCert(der, leaf, nil)
	if err != nil {
		var status ocsp.ResponseError
		if errors.As(err, &status) {
			return nil, fmt.Errorf("responder answered %q", status.Status.String())
		}
		return nil, fmt.Errorf("malformed OCSP response: %w", err)
	}
	if err := authorizeSigner(resp, issuer, now, skew); err != nil {
		return nil, err
	}
	extras, err := readResponseExtras(der, leaf.SerialNumber)
	if err != nil {
		return nil, err
	}
	if !extras.certID.matches(issuer) {
		return nil, errors.New("OCSP response is about a certificate of another CA")
	}
	for _, ext := range extras.responseExtensions {
		if ext.critical && !ext.is(extOCSPNonce) {
			return nil, errors.New("OCSP response has an unsupported critical extension " + ext.name())
		}
	}
	if nonce != nil && !hasNonce(nonce, extras.responseExtensions, resp) {
		return nil, errors.New("OCSP response does not echo the request's nonce")
	}

	switch {
	case resp.ThisUpdate.After(now.Add(skew)):
		return nil, fmt.Errorf("OCSP response is not valid yet: thisUpdate is %s", resp.ThisUpdate.UTC().Format(time.RFC3339))
	case !resp.NextUpdate.IsZero() && resp.NextUpdate.Before(resp.ThisUpdate):
		return nil, errors.New("malformed OCSP response: nextUpdate before thisUpdate")
	case !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate.Add(skew)):
		return nil, fmt.Errorf("OCSP response is stale: nextUpdate was %s", resp.NextUpdate.UTC().Format(time.RFC3339))
	case resp.NextUpdate.IsZero() && now.Sub(resp.ThisUpdate) > noNextUpdateMaxAge(skew):
		// Without nextUpdate nothing else bounds the response's age, and
		// without a nonce a captured "good" could be replayed for ever.
		// Such responses come from responders that sign on demand, so a
		// current one is minutes old at most.
		return nil, fmt.Errorf("OCSP response without nextUpdate is too old: thisUpdate was %s, more than %v ago",
			resp.ThisUpdate.UTC().Format(time.RFC3339), noNextUpdateMaxAge(skew))
	}
	return resp, nil
}

// noNextUpdateMaxAge is how old thisUpdate may be in an OCSP response
// without nextUpdate: as long as such a verdict is reused
// (noNextUpdateCacheAge), plus the clock-skew allowance.
func noNextUpdateMaxAge(skew time.Duration) time.Duration {
	return noNextUpdateCacheAge + skew
}

// authorizeSigner accepts a response signed by the issuing CA itself, or
// by a responder certificate the CA issued for OCSP signing (RFC 6960
// section 4.2.2.2).
func authorizeSigner(resp *ocsp.Response, issuer *x509.Certificate, now time.Time, skew time.Duration) error {
	signer := resp.Certificate
	switch {
	case signer == nil:
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("bad OCSP response signature: %w", err)
		}
		return nil
	case bytes.Equal(signer.Raw, issuer.Raw):
		return nil // the CA sent its own certificate; x/crypto checked the signature with it
	case !bytes.Equal(signer.RawIssuer, issuer.RawSubject):
		return errors.New("OCSP responder certificate was not issued by the certificate's CA")
	}
	if err := signer.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("OCSP responder certificate not signed by the certificate's CA: %w", err)
	}
	if !slices.Contains(signer.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return errors.New("OCSP responder certificate lacks the OCSP signing usage")
	}
	if now.Add(skew).Before(signer.NotBefore) || now.Add(-skew).After(signer.NotAfter) {
		return errors.New("OCSP responder certificate is outside its validity period")
	}
	return nil
}

func hasNonce(nonce []byte, responseExtensions []extension, resp *ocsp.Response) bool {
	for _, ext := range responseExtensions {
		if ext.is(extOCSPNonce) && nonceMatches(ext.value, nonce) {
			return true
		}
	}
	// Some responders put it in the single response's extensions instead.
	for _, ext := range resp.Extensions {
		if ext.Id.Equal(oidOCSPNonce) && nonceMatches(ext.Value, nonce) {
			return true
		}
	}
	return false
}

// certID is the identifier of the certificate a single response is about.
type certID struct {
	hash                    crypto.Hash
	nameHash, issuerKeyHash []byte
}

var hashByOID = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{oidSHA256, crypto.SHA256},
	{oidSHA384, crypto.SHA384},
	{oidSHA512, crypto.SHA512},
}

// matches reports whether id names issuer (RFC 6960 section 4.1.1): the
// hash of its DER subject and of its public key's BIT STRING content.
func (id certID) matches(issuer *x509.Certificate) bool {
	if !id.hash.Available() {
		return false
	}
	spki := cryptobyte.String(issuer.RawSubjectPublicKeyInfo)
	var body cryptobyte.String
	var key asn1.BitString
	if !spki.ReadASN1(&body, cryptobyteasn1.SEQUENCE) || !body.SkipASN1(cryptobyteasn1.SEQUENCE) || !body.ReadASN1BitString(&key) {
		return false
	}
	h := id.hash.New()
	h.Write(issuer.RawSubject)
	if !bytes.Equal(h.Sum(nil), id.nameHash) {
		return false
	}
	h.Reset()
	h.Write(key.RightAlign())
	return bytes.Equal(h.Sum(nil), id.issuerKeyHash)
}

// responseExtras is what x/crypto's parser does not expose.
type responseExtras struct {
	certID             certID // of the single response ParseResponseForCert chose
	responseExtensions []extension
}

// readResponseExtras walks an OCSP response that ocsp.ParseResponseForCert
// has accepted, to the first single response about serial (the one x/crypto
// returns) and to the response extensions.
//
//	OCSPResponse      ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes }
//	ResponseBytes     ::= SEQUENCE { responseType OID, response OCTET STRING }
//	BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, ... }
//	ResponseData      ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, responderID CHOICE { [1], [2] },
//	                                 producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
//	                                 responseExtensions [1] EXPLICIT Extensions OPTIONAL }
//	SingleResponse    ::= SEQUENCE { certID CertID, ... }
//	CertID            ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
//	                                 issuerKeyHash OCTET STRING, serialNumber INTEGER }
func readResponseExtras(der []byte, serial *big.Int) (responseExtras, error) {
	fail := func(what string) (responseExtras, error) {
		return responseExtras{}, errors.New("malformed OCSP response: " + what)
	}
	input := cryptobyte.String(der)
	var response, wrapper, responseBytes, basic, basicBody, data cryptobyte.String
	if !input.ReadASN1(&response, cryptobyteasn1.SEQUENCE) ||
		!response.SkipASN1(cryptobyteasn1.ENUM) ||
		!response.ReadASN1(&wrapper, cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) ||
		!wrapper.ReadASN1(&responseBytes, cryptobyteasn1.SEQUENCE) ||
		!responseBytes.SkipASN1(cryptobyteasn1.OBJECT_IDENTIFIER) ||
		!responseBytes.ReadASN1(&basic, cryptobyteasn1.OCTET_STRING) ||
		!basic.ReadASN1(&basicBody, cryptobyteasn1.SEQUENCE) ||
		!basicBody.ReadASN1(&data, cryptobyteasn1.SEQUENCE) {
		return fail("bad structure")
	}
	var responderID cryptobyte.String
	var responderTag cryptobyteasn1.Tag
	var responses cryptobyte.String
	if !data.SkipOptionalASN1(cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) ||
		!data.ReadAnyASN1(&responderID, &responderTag) ||
		!data.SkipASN1(cryptobyteasn1.GeneralizedTime) ||
		!data.ReadASN1(&responses, cryptobyteasn1.SEQUENCE) {
		return fail("bad response data")
	}

	var extras responseExtras
	if data.PeekASN1Tag(cryptobyteasn1.Tag(1).Constructed().ContextSpecific()) {
		var extWrapper, list cryptobyte.String
		if !data.ReadASN1(&extWrapper, cryptobyteasn1.Tag(1).Constructed().ContextSpecific()) ||
			!extWrapper.ReadASN1(&list, cryptobyteasn1.SEQUENCE) {
			return fail("bad response extensions")
		}
		err := readExtensionList(list, func(ext extension) error {
			extras.responseExtensions = append(extras.responseExtensions, ext)
			return nil
		})
		if err != nil {
			return fail("bad response extensions")
		}
	}

	for !responses.Empty() {
		var single, id, algorithm cryptobyte.String
		var algorithmOID asn1.ObjectIdentifier
		var nameHash, keyHash []byte
		got := new(big.Int)
		if !responses.ReadASN1(&single, cryptobyteasn1.SEQUENCE) ||
			!single.ReadASN1(&id, cryptobyteasn1.SEQUENCE) ||
			!id.ReadASN1(&algorithm, cryptobyteasn1.SEQUENCE) ||
			!algorithm.ReadASN1ObjectIdentifier(&algorithmOID) ||
			!id.ReadASN1Bytes(&nameHash, cryptobyteasn1.OCTET_STRING) ||
			!id.ReadASN1Bytes(&keyHash, cryptobyteasn1.OCTET_STRING) ||
			!id.ReadASN1Integer(got) {
			return fail("bad CertID")
		}
		if got.Cmp(serial) != 0 {
			continue
		}
		extras.certID = certID{nameHash: nameHash, issuerKeyHash: keyHash}
		for _, h := range hashByOID {
			if algorithmOID.Equal(h.oid) {
				extras.certID.hash = h.hash
			}
		}
		if extras.certID.hash == 0 {
			return fail("unsupported CertID hash algorithm")
		}
		return extras, nil
	}
	return fail("no single response for the certificate")
}
