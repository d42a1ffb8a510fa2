package cacid

import (
	"crypto/x509/pkix"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DistinguishedName renders a certificate name in RFC 2253 form, keeping
// its RDN structure. pkix.Name.String cannot be used: it regroups all OUs
// into one multi-valued RDN, turning the DoD's
// "OU=USA,OU=PKI,OU=DoD" into "OU=DoD+OU=PKI+OU=USA", which matches
// neither the certificate nor what OpenSSL or Windows display.
//
// raw is the DER name and parsed the result of crypto/x509 parsing it; the
// values come from parsed, which has already validated and decoded them, and
// only the RDN boundaries are read from raw.
func DistinguishedName(raw []byte, parsed pkix.Name) string {
	sizes, ok := rdnSizes(raw)
	names := parsed.Names
	total := 0
	for _, size := range sizes {
		total += size
	}
	if !ok || total != len(names) {
		return parsed.String()
	}
	sequence := make(pkix.RDNSequence, 0, len(sizes))
	for _, size := range sizes {
		sequence = append(sequence, names[:size:size])
		names = names[size:]
	}
	return sequence.String()
}

// rdnSizes returns how many attributes each RDN of a DER-encoded name
// holds.
func rdnSizes(raw cryptobyte.String) ([]int, bool) {
	var rdns cryptobyte.String
	if !raw.ReadASN1(&rdns, cryptobyteasn1.SEQUENCE) || !raw.Empty() {
		return nil, false
	}
	var sizes []int
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cryptobyteasn1.SET) {
			return nil, false
		}
		size := 0
		for ; !set.Empty(); size++ {
			if !set.SkipASN1(cryptobyteasn1.SEQUENCE) {
				return nil, false
			}
		}
		sizes = append(sizes, size)
	}
	return sizes, true
}
