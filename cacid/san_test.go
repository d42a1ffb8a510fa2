package cacid_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"net/url"
	"slices"
	"testing"

	"github.com/cacgate/cacgate/cacid"
)

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMarshalSubjectAltNameEncoding pins the DER of a UPN otherName, worked
// out by hand from RFC 5280 and Microsoft's UPN definition:
//
//	30 17                          GeneralNames
//	  a0 15                        [0] otherName
//	    06 0a 2b0601040182371402 03  type-id 1.3.6.1.4.1.311.20.2.3
//	    a0 07                      [0] EXPLICIT
//	      0c 05 31406d696c         UTF8String "1@mil"
func TestMarshalSubjectAltNameEncoding(t *testing.T) {
	ext, err := cacid.MarshalSubjectAltName([]string{"1@mil"}, []string{"a@b"}, []*url.URL{{Scheme: "urn", Opaque: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "3023" + "a015060a2b060104018237140203a0070c0531406d696c" + "8103614062" + "860575726e3a78"
	if got := hex.EncodeToString(ext.Value); got != want {
		t.Errorf("DER = %s\nwant  %s", got, want)
	}
	if !ext.Id.Equal(oidSAN) || ext.Critical {
		t.Errorf("extension %v critical=%v, want non-critical %v", ext.Id, ext.Critical, oidSAN)
	}
}

func TestMarshalSubjectAltNameRoundTrip(t *testing.T) {
	upns := []string{"1234567890@mil", "1234567890123456@mil"}
	emails := []string{"john.doe@mail.mil", "jd@example.com"}
	uris := []*url.URL{{Scheme: "urn", Opaque: "uuid:a6c3b0e2-5f4d-4e8a-9b71-2c0d8e6f1a34"}, {Scheme: "https", Host: "example.com", Path: "/x"}}
	ext, err := cacid.MarshalSubjectAltName(upns, emails, uris)
	if err != nil {
		t.Fatal(err)
	}
	cert := issueRaw(t, cacSubject(nil, "DOE.JOHN.1234567890"), ext)

	gotUPNs, err := cacid.UPNs(cert)
	if err != nil {
		t.Fatalf("UPNs: %v", err)
	}
	if !slices.Equal(gotUPNs, upns) {
		t.Errorf("UPNs = %q, want %q", gotUPNs, upns)
	}
	if !slices.Equal(cert.EmailAddresses, emails) {
		t.Errorf("crypto/x509 read emails %q, want %q", cert.EmailAddresses, emails)
	}
	if len(cert.URIs) != len(uris) || cert.URIs[0].String() != uris[0].String() || cert.URIs[1].String() != uris[1].String() {
		t.Errorf("crypto/x509 read URIs %v, want %v", cert.URIs, uris)
	}
}

func TestMarshalSubjectAltNameRejects(t *testing.T) {
	tests := []struct {
		name   string
		upns   []string
		emails []string
		uris   []*url.URL
	}{
		{name: "no names"},
		{name: "empty UPN", upns: []string{""}},
		{name: "invalid UTF-8 UPN", upns: []string{"\xff@mil"}},
		{name: "empty email", emails: []string{""}},
		{name: "non-ASCII email", emails: []string{"jösé@mail.mil"}},
		{name: "nil URI", uris: []*url.URL{nil}},
		{name: "empty URI", uris: []*url.URL{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cacid.MarshalSubjectAltName(tt.upns, tt.emails, tt.uris); err == nil {
				t.Error("MarshalSubjectAltName succeeded")
			}
		})
	}
}

func TestUPNs(t *testing.T) {
	tests := []struct {
		name   string
		san    string // hex of the extension value
		want   []string
		reason string // non-empty if UPNs must fail
	}{
		{name: "one UPN", san: "3017a015060a2b060104018237140203a0070c0531406d696c", want: []string{"1@mil"}},
		{name: "other names only", san: "30058103614062"},
		{name: "empty GeneralNames", san: "3000"},
		{name: "other otherName type is skipped", san: "3012a010060a2b060104018237140204a0020500"},
		{name: "not a sequence", san: "0400", reason: "malformed"},
		{name: "trailing bytes", san: "30000000", reason: "malformed"},
		{name: "truncated", san: "3017a015060a2b06", reason: "malformed"},
		{name: "otherName without type-id", san: "3009a007a0050c03314040", reason: "malformed"},
		{name: "otherName without value", san: "300ea00c060a2b060104018237140203", reason: "malformed"},
		{name: "UPN as IA5String", san: "3017a015060a2b060104018237140203a007160531406d696c", reason: "malformed"},
		{name: "UPN with invalid UTF-8", san: "3017a015060a2b060104018237140203a0070c05ff406d696c", reason: "malformed"},
		{name: "UPN with trailing value", san: "3019a017060a2b060104018237140203a0090c0531406d696c0500", reason: "malformed"},
		{name: "otherName with trailing field", san: "3019a017060a2b060104018237140203a0070c0531406d696c0500", reason: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := &x509.Certificate{Extensions: []pkix.Extension{{Id: oidSAN, Value: mustHex(t, tt.san)}}}
			got, err := cacid.UPNs(cert)
			if tt.reason != "" {
				assertRejected(t, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("UPNs: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("UPNs = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := cacid.UPNs(nil); err == nil {
		t.Error("UPNs(nil) succeeded")
	}
}
