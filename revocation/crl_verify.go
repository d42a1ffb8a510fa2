package revocation

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// unknownIssuerError says a CRL is well formed but no CA certificate with
// its issuer's name is known yet, so it cannot be verified.
type unknownIssuerError struct {
	name []byte // DER
}

func (e *unknownIssuerError) Error() string {
	return "no certificate of its issuer " + displayName(e.name) + " to verify it against (add it to the CRL issuers, or it is used once a card of that CA is checked)"
}

// indexCRL parses one DER CRL, verifies it against a known CA named as its
// issuer (or against fetchedFor, the CA whose certificate named the URL),
// and builds its index.
func (c *Checker) indexCRL(der []byte, source string, fetchedFor *issuer, now time.Time) (*crlIndex, error) {
	h, err := parseCRLHeader(der)
	if err != nil {
		return nil, err
	}
	candidates := c.issuers.withSubject(h.issuer)
	if fetchedFor != nil && bytes.Equal(fetchedFor.cert.RawSubject, h.issuer) && !containsIssuer(candidates, fetchedFor) {
		candidates = append(candidates, fetchedFor)
	}
	if len(candidates) == 0 {
		return nil, &unknownIssuerError{name: bytes.Clone(h.issuer)}
	}
	iss, err := verifyCRLSignature(h, candidates)
	if err != nil {
		return nil, err
	}
	if h.thisUpdate.After(now.Add(c.cfg.ClockSkew)) {
		return nil, fmt.Errorf("CRL is not valid yet: thisUpdate is %s", h.thisUpdate.UTC().Format(time.RFC3339))
	}
	index, err := buildIndex(h)
	if err != nil {
		return nil, err
	}
	index.source = source
	index.issuer = iss
	index.issuerName = cacid.DistinguishedName(iss.cert.RawSubject, iss.cert.Subject)
	return index, nil
}

// verifyCRLSignature returns the candidate whose key signed the CRL, with
// the constraints crypto/x509's RevocationList.CheckSignatureFrom applies:
// the signer must be a CA allowed to sign CRLs.
func verifyCRLSignature(h *crlHeader, candidates []*issuer) (*issuer, error) {
	var errs []error
	for _, iss := range candidates {
		cert := iss.cert
		switch {
		case cert.Version == 3 && !cert.BasicConstraintsValid || cert.BasicConstraintsValid && !cert.IsCA:
			errs = append(errs, errors.New("issuer certificate is not a CA"))
		case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCRLSign == 0:
			errs = append(errs, errors.New("issuer certificate may not sign CRLs"))
		default:
			err := cert.CheckSignature(h.sigAlg, h.tbs, h.signature)
			if err == nil {
				return iss, nil
			}
			errs = append(errs, err)
		}
	}
	return nil, fmt.Errorf("bad CRL signature (checked against %d certificate(s) of %s): %w",
		len(candidates), displayName(h.issuer), errors.Join(errs...))
}

func containsIssuer(list []*issuer, iss *issuer) bool {
	for _, candidate := range list {
		if candidate.id == iss.id {
			return true
		}
	}
	return false
}

// displayName renders a DER name for logs and errors.
func displayName(der []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) != 0 {
		return "(unreadable name)"
	}
	var name pkix.Name
	name.FillFromRDNSequence(&rdns)
	return cacid.DistinguishedName(der, name)
}
