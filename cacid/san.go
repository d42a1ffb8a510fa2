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
	if len(upns)+len(emails)+len(uris) == 0 {
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
	if cert == nil {
		return nil, reject("no certificate was presented")
	}
	var upns []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		found, err := upnsInSubjectAltName(ext.Value)
		if err != nil {
			return nil, err
		}
		upns = append(upns, found...)
	}
	return upns, nil
}

func upnsInSubjectAltName(der cryptobyte.String) ([]string, error) {
	malformed := reject("the certificate's subject alternative names are malformed")
	var names cryptobyte.String
	if !der.ReadASN1(&names, cryptobyteasn1.SEQUENCE) || !der.Empty() {
		return nil, malformed
	}
	var upns []string
	for !names.Empty() {
		var name cryptobyte.String
		var tag cryptobyteasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return nil, malformed
		}
		if tag != tagOtherName {
			continue
		}
		upn, isUPN, ok := parseOtherName(name)
		if !ok {
			return nil, malformed
		}
		if isUPN {
			upns = append(upns, upn)
		}
	}
	return upns, nil
}

// parseOtherName reads the body of an otherName,
//
//	OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
//
// and returns its value when the type is a UPN. ok is false when the
// otherName is malformed, or is a UPN whose value is not a UTF8String of
// valid UTF-8.
func parseOtherName(body cryptobyte.String) (upn string, isUPN, ok bool) {
	var typeID asn1.ObjectIdentifier
	var value cryptobyte.String
	if !body.ReadASN1ObjectIdentifier(&typeID) ||
		!body.ReadASN1(&value, tagOtherNameValue) || !body.Empty() {
		return "", false, false
	}
	if !typeID.Equal(OIDUPN) {
		return "", false, true
	}
	var utf8String cryptobyte.String
	if !value.ReadASN1(&utf8String, cryptobyteasn1.UTF8String) || !value.Empty() || !utf8.Valid(utf8String) {
		return "", true, false
	}
	return string(utf8String), true, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
