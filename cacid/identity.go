package cacid

import (
	"crypto/sha256"
	"crypto/x509"
	"time"
)

// Identity is the card holder as named by an authentication certificate.
type Identity struct {
	// Kind is the sort of credential (KindCAC for Parse; see ParseAs),
	// and Key its stable key: the EDIPI for KindCAC, the card UUID for
	// PIV and PIV-I, for ECA the issuer and subject (IssuerSubjectKey) or
	// the address Options.ECAKey names. An account is unique per kind and
	// key.
	Kind Kind
	Key  string

	// EDIPI is the 10-digit DoD ID number: the stable key for the person.
	// Only a DoD credential (KindCAC) has one.
	EDIPI string

	// CommonName is the subject common name of a non-DoD credential as it
	// is (the holder's display name); empty for KindCAC, whose name parts
	// below are read from the DoD format.
	CommonName string

	// Name parts as on the card (DoD issues them in upper case); absent
	// parts are empty. Suffix is a generational qualifier such as JR or III.
	FamilyName string
	GivenName  string
	MiddleName string
	Suffix     string

	// Affiliation is the organizational unit nearest the common name that
	// is not the DoD PKI's own "PKI" or "DoD", e.g. USA, USN, USAF, USMC,
	// USCG or CONTRACTOR; empty if the subject has none.
	Affiliation string

	// UPN is the full User Principal Name, e.g. "1234567890@mil" or, on a
	// PIV authentication certificate, "1234567890123456@mil"; empty if the
	// certificate has none.
	UPN string

	// Email is the first rfc822Name subject alternative name; empty if none.
	Email string

	// CardUUID is the lower-case canonical UUID from a "urn:uuid:" URI
	// subject alternative name; empty if none.
	CardUUID string

	// FASCN is the 32 digits of the FASC-N otherName (agency, system,
	// credential number, series, issue, person identifier, ...), empty if
	// none.
	FASCN string

	// Fingerprint is the SHA-256 of the certificate's DER encoding, and
	// FingerprintHex its lower-case hex form, the certificate's
	// Fingerprint. It identifies this certificate, not the person: a
	// holder's certificates change with every new card.
	Fingerprint    [32]byte
	FingerprintHex string

	// Subject and Issuer are the names in RFC 2253 form, most specific
	// first with one RDN per comma, as "openssl x509 -nameopt RFC2253"
	// prints them:
	// "CN=DOE.JOHN.QUINCY.1234567890,OU=USA,OU=PKI,OU=DoD,O=U.S. Government,C=US".
	Subject string
	Issuer  string

	Serial string // lower-case hex of the serial number

	NotBefore, NotAfter time.Time
}

// Parse reads the card holder's identity from a CAC authentication
// certificate as returned by x509.ParseCertificate (for example the leaf of
// a verified TLS client chain).
//
// The subject must carry exactly one common name of the form
// LAST.FIRST[.MIDDLE][.SUFFIX].EDIPI (see ParseCommonName). A UPN is
// optional, but when present its user part must be the EDIPI or a 16-digit
// value starting with it, and a certificate whose UPN and common name name
// different people is rejected. Every rejection is an *Error.
//
// Parse does not verify the certificate: check its chain, validity and key
// usage first.
func Parse(cert *x509.Certificate) (*Identity, error) {
	if cert == nil || len(cert.Raw) == 0 {
		return nil, reject("no certificate was presented")
	}
	cn, cnIndex, err := commonName(cert.Subject.Names)
	if err != nil {
		return nil, err
	}
	family, given, middle, suffix, edipi, err := ParseCommonName(cn)
	if err != nil {
		return nil, err
	}
	id, err := certificateFacts(cert, cnIndex, func(upns []string) (string, error) { return upnFor(upns, edipi) })
	if err != nil {
		return nil, err
	}
	id.Kind, id.Key, id.EDIPI = KindCAC, edipi, edipi
	id.FamilyName, id.GivenName, id.MiddleName, id.Suffix = family, given, middle, suffix
	return id, nil
}

// certificateFacts reads what every kind of credential takes from its
// certificate beyond the common name, which the caller has checked: the
// affiliation, the SAN's UPN (read by upnOf, whose rule is the kind's),
// e-mail, card UUID and FASC-N, the serial, fingerprint, names and
// validity. The checks run in this order for every kind, so a certificate
// bad in several ways is refused for the same reason whatever its kind.
func certificateFacts(cert *x509.Certificate, cnIndex int, upnOf func([]string) (string, error)) (*Identity, error) {
	affiliation, err := findAffiliation(cert.Subject.Names, cnIndex)
	if err != nil {
		return nil, err
	}
	names, err := sanOtherNames(cert)
	if err != nil {
		return nil, err
	}
	upn, err := upnOf(names.upns)
	if err != nil {
		return nil, err
	}
	email, err := firstEmail(cert.EmailAddresses)
	if err != nil {
		return nil, err
	}
	cardUUID, err := findCardUUID(cert.URIs)
	if err != nil {
		return nil, err
	}
	serial, err := serialHex(cert)
	if err != nil {
		return nil, err
	}
	fingerprint := sha256.Sum256(cert.Raw)
	return &Identity{
		Affiliation:    affiliation,
		UPN:            upn,
		Email:          email,
		CardUUID:       cardUUID,
		FASCN:          names.fascn,
		Fingerprint:    fingerprint,
		FingerprintHex: fingerprintHex(fingerprint),
		Subject:        DistinguishedName(cert.RawSubject, cert.Subject),
		Issuer:         DistinguishedName(cert.RawIssuer, cert.Issuer),
		Serial:         serial,
		NotBefore:      cert.NotBefore,
		NotAfter:       cert.NotAfter,
	}, nil
}

// serialHex refuses missing and negative serial numbers: RFC 5280 requires a
// positive serial, and a negative one would print with a sign that breaks
// anything keyed on the hex form.
func serialHex(cert *x509.Certificate) (string, error) {
	if cert.SerialNumber == nil || cert.SerialNumber.Sign() < 0 {
		return "", reject("the certificate's serial number is missing or negative")
	}
	return cert.SerialNumber.Text(16), nil
}
