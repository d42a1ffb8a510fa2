package cacid_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cacgate/cacgate/cacid"
)

// FuzzParseCommonName checks that every accepted common name splits back
// into exactly the input, with a 10-digit EDIPI and both required names, and
// that every refusal is an *Error.
func FuzzParseCommonName(f *testing.F) {
	for _, seed := range []string{
		"DOE.JOHN.QUINCY.1234567890",
		"SMITH.JANE.1234567891",
		"JOHNSON.ROBERT.E.JR.1234567892",
		"O'BRIEN-SMITH.MARY ANN.K.1234567895",
		"DOE.JOHN.V.1234567890",
		"A.B.C.D.E.1234567890",
		"DOE..JOHN.1234567890",
		"DOE.\xff.1234567890",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cn string) {
		family, given, middle, suffix, edipi, err := cacid.ParseCommonName(cn)
		if err != nil {
			requireCacidError(t, err)
			return
		}
		if len(edipi) != 10 || strings.Trim(edipi, "0123456789") != "" {
			t.Fatalf("accepted EDIPI %q", edipi)
		}
		if family == "" || given == "" {
			t.Fatalf("accepted %q without a family or given name", cn)
		}
		var parts []string
		for _, part := range []string{family, given, middle, suffix, edipi} {
			if part != "" {
				parts = append(parts, part)
			}
		}
		if rebuilt := strings.Join(parts, "."); rebuilt != cn {
			t.Fatalf("parts %q rebuild %q, not %q", parts, rebuilt, cn)
		}
	})
}

// FuzzParse feeds arbitrary DER to Parse: whatever crypto/x509 accepts,
// Parse must either reject with an *Error or return an identity whose
// fields hold what the package promises.
func FuzzParse(f *testing.F) {
	p := testPKI(f)
	for _, card := range p.Cards {
		f.Add(card.Cert.Raw)
	}
	f.Add(p.Server.Cert.Raw)
	f.Add(p.Root.Cert.Raw)
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := cacid.Parse(cert)
		if err != nil {
			requireCacidError(t, err)
			return
		}
		if _, _, _, _, edipi, err := cacid.ParseCommonName(cert.Subject.CommonName); err != nil || edipi != id.EDIPI {
			t.Fatalf("identity EDIPI %q disagrees with the common name %q (%v)", id.EDIPI, cert.Subject.CommonName, err)
		}
		if id.UPN != "" && !strings.HasPrefix(id.UPN, id.EDIPI) {
			t.Fatalf("accepted UPN %q for EDIPI %q", id.UPN, id.EDIPI)
		}
		for _, field := range []string{id.Affiliation, id.UPN, id.Email, id.CardUUID} {
			if !utf8.ValidString(field) || strings.ContainsFunc(field, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("accepted unsafe field %q", field)
			}
		}
	})
}

// FuzzUPNs feeds arbitrary subject alternative name extensions to UPNs.
func FuzzUPNs(f *testing.F) {
	for _, card := range testPKI(f).Cards {
		for _, ext := range card.Cert.Extensions {
			if ext.Id.Equal(oidSAN) {
				f.Add(ext.Value)
			}
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		cert := &x509.Certificate{Extensions: []pkix.Extension{{Id: oidSAN, Value: value}}}
		upns, err := cacid.UPNs(cert)
		if err != nil {
			requireCacidError(t, err)
			return
		}
		for _, upn := range upns {
			if !utf8.ValidString(upn) {
				t.Fatalf("returned invalid UTF-8 UPN %q", upn)
			}
		}
	})
}

func requireCacidError(t *testing.T, err error) {
	t.Helper()
	var rejection *cacid.Error
	if !errors.As(err, &rejection) || rejection.Reason == "" {
		t.Fatalf("error %v (%T) is not a *cacid.Error with a reason", err, err)
	}
}
