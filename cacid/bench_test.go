package cacid_test

import (
	"testing"

	"github.com/cacgate/cacgate/cacid"
)

// BenchmarkParse measures Parse on a realistic card. The gateway parses a
// card once per site cache entry (a cache miss), not per request.
func BenchmarkParse(b *testing.B) {
	cert := testPKI(b).Card("doe.john.quincy.piv").Cert
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cacid.Parse(cert); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCards is Parse across the card layouts of the test PKI:
// the standard CAC, the PIV layout (UPN and card UUID), a suffix, and an
// RSA contractor card with a multi-word given name.
func BenchmarkParseCards(b *testing.B) {
	for _, name := range []string{"doe.john.quincy", "doe.john.quincy.piv", "johnson.robert.e.jr", "obrien-smith.mary.ann.k"} {
		b.Run(name, func(b *testing.B) {
			cert := testPKI(b).Card(name).Cert
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cacid.Parse(cert); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFingerprint is the card's identity in the store: the lowercase
// hex SHA-256 of its DER (Parse computes it; the request path keys its
// cache by the DER itself and never hashes per request).
func BenchmarkFingerprint(b *testing.B) {
	der := testPKI(b).Card("doe.john.quincy").Cert.Raw
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	for b.Loop() {
		if cacid.Fingerprint(der) == "" {
			b.Fatal("empty")
		}
	}
}
