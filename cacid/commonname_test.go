package cacid_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/cacid"
)

func TestParseCommonNameAccepts(t *testing.T) {
	tests := []struct {
		cn                                   string
		family, given, middle, suffix, edipi string
	}{
		{"DOE.JOHN.QUINCY.1234567890", "DOE", "JOHN", "QUINCY", "", "1234567890"},
		{"SMITH.JANE.1234567891", "SMITH", "JANE", "", "", "1234567891"},
		{"JOHNSON.ROBERT.E.JR.1234567892", "JOHNSON", "ROBERT", "E", "JR", "1234567892"},
		{"O'BRIEN-SMITH.MARY ANN.K.1234567895", "O'BRIEN-SMITH", "MARY ANN", "K", "", "1234567895"},
		{"DOE.JOHN.JR.1234567890", "DOE", "JOHN", "", "JR", "1234567890"},
		{"DOE.JOHN.SR.1234567890", "DOE", "JOHN", "", "SR", "1234567890"},
		{"DOE.JOHN.III.1234567890", "DOE", "JOHN", "", "III", "1234567890"},
		{"DOE.JOHN.IV.1234567890", "DOE", "JOHN", "", "IV", "1234567890"},
		// Single-letter roman numerals are read as middle initials; see
		// threePartSuffixes.
		{"DOE.JOHN.V.1234567890", "DOE", "JOHN", "V", "", "1234567890"},
		{"DOE.JOHN.I.1234567890", "DOE", "JOHN", "I", "", "1234567890"},
		// With four name parts the position decides, whatever the suffix.
		{"DOE.JOHN.QUINCY.SR.1234567890", "DOE", "JOHN", "QUINCY", "SR", "1234567890"},
		{"DOE.JOHN.Q.V.1234567890", "DOE", "JOHN", "Q", "V", "1234567890"},
		{"MADONNA.FNU.0000000000", "MADONNA", "FNU", "", "", "0000000000"},
		{"doe.john.1234567890", "doe", "john", "", "", "1234567890"},
		{strings.Repeat("A", 64) + ".B.1234567890", strings.Repeat("A", 64), "B", "", "", "1234567890"},
	}
	for _, tt := range tests {
		t.Run(tt.cn, func(t *testing.T) {
			family, given, middle, suffix, edipi, err := cacid.ParseCommonName(tt.cn)
			if err != nil {
				t.Fatalf("ParseCommonName: %v", err)
			}
			got := []string{family, given, middle, suffix, edipi}
			want := []string{tt.family, tt.given, tt.middle, tt.suffix, tt.edipi}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("ParseCommonName = %q, want %q", got, want)
			}
		})
	}
}

func TestParseCommonNameRejects(t *testing.T) {
	tests := []struct {
		name, cn, reason string
	}{
		{"empty", "", "no common name"},
		{"EDIPI only", "1234567890", "both a last and a first name"},
		{"last name only", "DOE.1234567890", "both a last and a first name"},
		{"no EDIPI", "DOE.JOHN.QUINCY", "10-digit DoD ID"},
		{"nine digits", "DOE.JOHN.123456789", "10-digit DoD ID"},
		{"eleven digits", "DOE.JOHN.12345678901", "10-digit DoD ID"},
		{"non-ASCII digit", "DOE.JOHN.123456789\uff10", "10-digit DoD ID"},
		{"padded EDIPI", "DOE.JOHN.1234567890 ", "10-digit DoD ID"},
		{"signed EDIPI", "DOE.JOHN.+123456789", "10-digit DoD ID"},
		{"trailing dot", "DOE.JOHN.1234567890.", "10-digit DoD ID"},
		{"empty middle part", "DOE..JOHN.1234567890", "empty name part"},
		{"empty first part", ".DOE.JOHN.1234567890", "empty name part"},
		{"five name parts", "A.B.C.D.E.1234567890", "more name parts"},
		{"NUL", "DOE.JOHN\x00.1234567890", "not allowed"},
		{"newline", "DOE.JO\nHN.1234567890", "not allowed"},
		{"markup", "DOE.JO<b>HN.1234567890", "not allowed"},
		{"accented", "DOE.JOSÉ.1234567890", "not allowed"},
		{"leading space", " DOE.JOHN.1234567890", "not allowed"},
		{"trailing hyphen", "DOE.JOHN-.1234567890", "not allowed"},
		{"double space", "DOE.MARY  ANN.1234567890", "not allowed"},
		{"double apostrophe", "O''BRIEN.JOHN.1234567890", "not allowed"},
		{"digit in name", "DOE.J0HN.1234567890", "not allowed"},
		{"invalid UTF-8", "DOE.\xff.1234567890", "UTF-8"},
		{"part too long", strings.Repeat("A", 65) + ".B.1234567890", "too long"},
		{"name too long", strings.Repeat("A.", 10000) + "1234567890", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, _, _, err := cacid.ParseCommonName(tt.cn)
			assertRejected(t, err, tt.reason)
		})
	}
}

// assertRejected checks that err is a *cacid.Error whose reason mentions
// want.
func assertRejected(t *testing.T, err error, want string) {
	t.Helper()
	var rejection *cacid.Error
	if !errors.As(err, &rejection) {
		t.Fatalf("error = %v (%T), want *cacid.Error", err, err)
	}
	if !strings.Contains(rejection.Reason, want) {
		t.Errorf("reason = %q, want it to mention %q", rejection.Reason, want)
	}
	if rejection.Error() != "cacid: "+rejection.Reason {
		t.Errorf("Error() = %q", rejection.Error())
	}
}
