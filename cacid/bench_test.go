package cacid_test

import (
	"testing"

	"github.com/cacgate/cacgate/cacid"
)

// BenchmarkParse measures Parse on a realistic card, since it runs on
// every request that presents a client certificate.
func BenchmarkParse(b *testing.B) {
	cert := testPKI(b).Card("doe.john.quincy.piv").Cert
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cacid.Parse(cert); err != nil {
			b.Fatal(err)
		}
	}
}
