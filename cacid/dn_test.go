package cacid

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// rdnCases are names of every shape rdnString must render as
// pkix.RDNSequence.String does.
func rdnCases() []pkix.RDNSequence {
	oid := func(n ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(append([]int{2, 5, 4}, n...)) }
	one := func(o asn1.ObjectIdentifier, v any) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: o, Value: v}}
	}
	var cases []pkix.RDNSequence
	for _, v := range []string{
		"DOE.JOHN.QUINCY.1234567890", "", " ", "  ", " lead", "trail ", "#hash", "a#b", `a,b+c"d\e<f>g;h`,
		"O'Brien-Smith", "Müller", "日本", "bad\xffutf8", "\xff", "tab\tand\nnewline", "x ",
	} {
		cases = append(cases, pkix.RDNSequence{
			one(oid(6), "US"), one(oid(10), "U.S. Government"), one(oid(11), "DoD"), one(oid(11), v), one(oid(3), v),
		})
	}
	every := pkix.RDNSequence{}
	for _, n := range []int{6, 10, 11, 3, 5, 7, 8, 9, 17} {
		every = append(every, one(oid(n), "v"))
	}
	cases = append(cases, every,
		pkix.RDNSequence{{{Type: oid(11), Value: "A"}, {Type: oid(11), Value: "B+"}}, one(oid(3), "x")}, // multi-valued
		pkix.RDNSequence{{}, one(oid(3), "after an empty RDN")},
		pkix.RDNSequence{},
	)
	return cases
}

func TestRDNStringMatchesStandard(t *testing.T) {
	for _, seq := range rdnCases() {
		got, ok := rdnString(seq)
		if want := seq.String(); !ok || got != want {
			t.Errorf("rdnString = %q, %v; pkix = %q", got, ok, want)
		}
	}
	// Names it does not render itself: the standard form is used.
	for name, seq := range map[string]pkix.RDNSequence{
		"unnamed type":     {{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "mil"}}},
		"non-string value": {{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: 42}}},
	} {
		if _, ok := rdnString(seq); ok {
			t.Errorf("%s: rendered", name)
		}
	}
}

func FuzzRDNString(f *testing.F) {
	f.Add("DOE.JOHN.1234567890", "USA")
	f.Add(" #,+\"\\<>; ", "\xff\xfe")
	f.Fuzz(func(t *testing.T, cn, ou string) {
		seq := pkix.RDNSequence{
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: ou}},
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: cn}, {Type: asn1.ObjectIdentifier{2, 5, 4, 5}, Value: ou}},
		}
		if got, ok := rdnString(seq); !ok || got != seq.String() {
			t.Fatalf("rdnString = %q, %v; pkix = %q", got, ok, seq.String())
		}
	})
}
