package cacid

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// GeneralName tags (RFC 5280, section 4.2.1.6). otherName is constructed
// because its IMPLICIT tag replaces a SEQUENCE; the string forms are
// primitive because they replace an IA5String.
var (
	tagOtherName  = cryptobyteasn1.Tag(0).ContextSpecific().Constructed()
	tagRFC822Name = cryptobyteasn1.Tag(1).ContextSpecific()
	tagURI        = cryptobyteasn1.Tag(6).ContextSpecific()
)

// tagOtherNameValue wraps the value inside an otherName, "[0] EXPLICIT": the
// same tag number as the otherName itself, one level further in.
var tagOtherNameValue = cryptobyteasn1.Tag(0).ContextSpecific().Constructed()

// MarshalSubjectAltName builds a subject alternative name extension holding
// UPN otherNames, then rfc822Names, then URIs, in the order given. It exists
// because crypto/x509 cannot emit otherName entries: put the result in
// x509.Certificate.ExtraExtensions and leave the template's EmailAddresses
// and URIs empty (crypto/x509 then uses this extension as is).
//
// The extension is not critical, as RFC 5280 requires when the subject is
// not empty.
func MarshalSubjectAltName(upns []string, emails []string, uris []*url.URL) (pkix.Extension, error) {
	return SubjectAltNames{UPNs: upns, Emails: emails, URIs: uris}.Marshal()
}

// SubjectAltNames are the names MarshalSubjectAltName and Marshal encode.
type SubjectAltNames struct {
	UPNs   []string
	Emails []string
	URIs   []*url.URL
	// FASCN, when set, is a FASC-N's 25 bytes (see EncodeFASCN), encoded
	// as the pivFASC-N otherName after the UPNs.
	FASCN []byte
}

// Marshal builds the subject alternative name extension: UPN otherNames,
// the FASC-N otherName, rfc822Names, then URIs.
func (n SubjectAltNames) Marshal() (pkix.Extension, error) {
	upns, emails, uris := n.UPNs, n.Emails, n.URIs
	if len(upns)+len(emails)+len(uris)+len(n.FASCN) == 0 {
		return pkix.Extension{}, errors.New("cacid: a subject alternative name extension needs at least one name")
	}
	var b cryptobyte.Builder
	b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, upn := range upns {
			if upn == "" || !utf8.ValidString(upn) {
				b.SetError(fmt.Errorf("cacid: UPN %q is empty or not valid UTF-8", upn))
				return
			}
			b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDUPN)
				b.AddASN1(tagOtherNameValue, func(b *cryptobyte.Builder) {
					b.AddASN1(cryptobyteasn1.UTF8String, func(b *cryptobyte.Builder) {
						b.AddBytes([]byte(upn))
					})
				})
			})
		}
		if len(n.FASCN) > 0 {
			b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDFASCN)
				b.AddASN1(tagOtherNameValue, func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(n.FASCN)
				})
			})
		}
		for _, email := range emails {
			if email == "" || !isASCII(email) {
				b.SetError(fmt.Errorf("cacid: email address %q is empty or not ASCII", email))
				return
			}
			b.AddASN1(tagRFC822Name, func(b *cryptobyte.Builder) {
				b.AddBytes([]byte(email))
			})
		}
		for _, uri := range uris {
			if uri == nil {
				b.SetError(errors.New("cacid: nil URI"))
				return
			}
			s := uri.String()
			if s == "" || !isASCII(s) {
				b.SetError(fmt.Errorf("cacid: URI %q is empty or not ASCII", s))
				return
			}
			b.AddASN1(tagURI, func(b *cryptobyte.Builder) {
				b.AddBytes([]byte(s))
			})
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSubjectAltName, Value: der}, nil
}

// UPNs returns the User Principal Names in the certificate's subject
// alternative names, in certificate order. crypto/x509 skips otherName
// entries, so they are read from the raw extension here.
//
// A malformed subject alternative name extension, or a UPN that is not a
// valid UTF8String, is an *Error. A certificate without UPNs returns none
// and no error.
func UPNs(cert *x509.Certificate) ([]string, error) {
	names, err := sanOtherNames(cert)
	if err != nil {
		return nil, err
	}
	return names.upns, nil
}

// otherNames are the otherName entries this package reads.
type otherNames struct {
	upns []string
	// fascn is the FASC-N's 32 digits, "" if none.
	fascn string
}

// sanOtherNames reads the UPNs and the FASC-N from the certificate's
// subject alternative names. Two different FASC-Ns are refused.
func sanOtherNames(cert *x509.Certificate) (otherNames, error) {
	var names otherNames
	if cert == nil {
		return names, reject("no certificate was presented")
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		if err := names.read(ext.Value); err != nil {
			return otherNames{}, err
		}
	}
	return names, nil
}

func (names *otherNames) read(der cryptobyte.String) error {
	malformed := reject("the certificate's subject alternative names are malformed")
	var seq cryptobyte.String
	if !der.ReadASN1(&seq, cryptobyteasn1.SEQUENCE) || !der.Empty() {
		return malformed
	}
	for !seq.Empty() {
		var name cryptobyte.String
		var tag cryptobyteasn1.Tag
		if !seq.ReadAnyASN1(&name, &tag) {
			return malformed
		}
		if tag != tagOtherName {
			continue
		}
		var typeID asn1.ObjectIdentifier
		var value cryptobyte.String
		if !name.ReadASN1ObjectIdentifier(&typeID) || !name.ReadASN1(&value, tagOtherNameValue) || !name.Empty() {
			return malformed
		}
		switch {
		case typeID.Equal(OIDUPN):
			var utf8String cryptobyte.String
			if !value.ReadASN1(&utf8String, cryptobyteasn1.UTF8String) || !value.Empty() || !utf8.Valid(utf8String) {
				return malformed
			}
			names.upns = append(names.upns, string(utf8String))
		case typeID.Equal(OIDFASCN):
			var octets cryptobyte.String
			if !value.ReadASN1(&octets, cryptobyteasn1.OCTET_STRING) || !value.Empty() {
				return malformed
			}
			fascn, err := DecodeFASCN(octets)
			if err != nil {
				return reject("the certificate's FASC-N is malformed")
			}
			if names.fascn != "" && names.fascn != fascn {
				return reject("the certificate carries more than one FASC-N and they differ")
			}
			names.fascn = fascn
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
