package cacid

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"

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
	if s, ok := rdnString(sequence); ok {
		return s
	}
	return sequence.String()
}

// rdnString is pkix.RDNSequence.String for the names certificates carry
// (attributes of the types it has names for, string values), in one
// buffer: the standard one formats each attribute type's OID to look its
// name up and concatenates string by string, a third of a new card's
// parse. It reports false for any other name, which the standard one
// renders.
func rdnString(r pkix.RDNSequence) (string, bool) {
	var b strings.Builder
	for i := len(r) - 1; i >= 0; i-- {
		if i < len(r)-1 {
			b.WriteByte(',')
		}
		for j, tv := range r[i] {
			name := attributeTypeName(tv.Type)
			value, ok := tv.Value.(string)
			if name == "" || !ok {
				return "", false
			}
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(name)
			b.WriteByte('=')
			// The standard escaping, rune by rune (an invalid byte
			// becomes U+FFFD there as here).
			for k, c := range value {
				switch c {
				case ',', '+', '"', '\\', '<', '>', ';':
					b.WriteByte('\\')
				case ' ':
					if k == 0 || k == len(value)-1 {
						b.WriteByte('\\')
					}
				case '#':
					if k == 0 {
						b.WriteByte('\\')
					}
				}
				b.WriteRune(c)
			}
		}
	}
	return b.String(), true
}

// attributeTypes are the attribute types pkix.RDNSequence.String names,
// with their names.
var attributeTypes = [...]struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{2, 5, 4, 6}, "C"},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, "O"},
	{asn1.ObjectIdentifier{2, 5, 4, 11}, "OU"},
	{asn1.ObjectIdentifier{2, 5, 4, 3}, "CN"},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, "SERIALNUMBER"},
	{asn1.ObjectIdentifier{2, 5, 4, 7}, "L"},
	{asn1.ObjectIdentifier{2, 5, 4, 8}, "ST"},
	{asn1.ObjectIdentifier{2, 5, 4, 9}, "STREET"},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, "POSTALCODE"},
}

// attributeTypeName is the name pkix.RDNSequence.String gives oid, "" if
// none.
func attributeTypeName(oid asn1.ObjectIdentifier) string {
	for _, t := range attributeTypes {
		if oid.Equal(t.oid) {
			return t.name
		}
	}
	return ""
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
