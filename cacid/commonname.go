package cacid

import (
	"strings"
	"unicode/utf8"
)

const (
	// edipiLen is the length of a DoD ID number (EDIPI).
	edipiLen = 10

	// maxNamePartLen bounds each name part. DEERS name fields are far
	// shorter; the bound exists so hostile input cannot make us carry
	// arbitrarily long strings into logs, sessions and pages.
	maxNamePartLen = 64

	// maxNameParts is LAST, FIRST, MIDDLE and SUFFIX.
	maxNameParts = 4

	// minNameParts is LAST and FIRST. DEERS always records a first name
	// (using "FNU", first name unknown, when a person has none), so a common
	// name without one is not a card's.
	minNameParts = 2

	// maxCommonNameLen is the longest common name that can possibly pass:
	// four maximal name parts, the EDIPI and the dots between them. Checking
	// it first keeps hostile input from costing more than a few hundred bytes
	// of work.
	maxCommonNameLen = maxNameParts*maxNamePartLen + edipiLen + maxNameParts
)

// threePartSuffixes lists the generational qualifiers recognised when a
// common name has exactly three name parts. LAST.FIRST.X.EDIPI is ambiguous:
// X is a middle name or a suffix and the card does not say which. Four-part
// names are unambiguous (LAST.FIRST.MIDDLE.SUFFIX), so the list only settles
// the three-part case.
//
// The single letters I, V and X are deliberately absent: on a card with no
// middle name they are far more likely to be middle initials (Ivan, Victor,
// Xavier) than a bare generational qualifier. A wrong guess only changes how
// the name is displayed; the holder's identity is the EDIPI either way.
var threePartSuffixes = map[string]bool{
	"JR": true, "SR": true,
	"II": true, "III": true, "IV": true,
	"VI": true, "VII": true, "VIII": true, "IX": true,
}

// ParseCommonName splits a CAC subject common name,
// LAST.FIRST[.MIDDLE][.SUFFIX].EDIPI, into its parts. Parts are returned as
// they appear on the card (DoD issues them in upper case); absent parts are
// empty.
//
// The name is split from the right: the last part must be the 10-digit EDIPI
// and the two before it are the family and given names. Each name part may
// contain only ASCII letters, with single spaces, hyphens or apostrophes
// between letters ("O'BRIEN-SMITH", "MARY ANN"); everything else is rejected
// with an *Error.
func ParseCommonName(cn string) (family, given, middle, suffix, edipi string, err error) {
	switch {
	case cn == "":
		return "", "", "", "", "", reject("the certificate has no common name")
	case !utf8.ValidString(cn):
		return "", "", "", "", "", reject("the certificate's common name is not valid UTF-8")
	case len(cn) > maxCommonNameLen:
		return "", "", "", "", "", reject("the certificate's common name is too long to be a DoD name")
	}

	parts := strings.Split(cn, ".")
	edipi = parts[len(parts)-1]
	if !isEDIPI(edipi) {
		return "", "", "", "", "", reject("the certificate's common name does not end in a 10-digit DoD ID number")
	}
	names := parts[:len(parts)-1]
	switch {
	case len(names) < minNameParts:
		return "", "", "", "", "", reject("the certificate's common name does not contain both a last and a first name")
	case len(names) > maxNameParts:
		return "", "", "", "", "", reject("the certificate's common name has more name parts than LAST.FIRST.MIDDLE.SUFFIX")
	}
	for _, name := range names {
		if err := checkNamePart(name); err != nil {
			return "", "", "", "", "", err
		}
	}

	family, given = names[0], names[1]
	switch len(names) {
	case 3:
		if threePartSuffixes[names[2]] {
			suffix = names[2]
		} else {
			middle = names[2]
		}
	case 4:
		middle, suffix = names[2], names[3]
	}
	return family, given, middle, suffix, edipi, nil
}

// isEDIPI reports whether s is exactly ten ASCII digits.
func isEDIPI(s string) bool {
	return len(s) == edipiLen && isDigits(s)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkNamePart accepts ASCII letters joined by single spaces, hyphens or
// apostrophes. Requiring a letter at both ends and between separators rules
// out padding, control characters and punctuation-only parts without
// rejecting real names such as "O'BRIEN-SMITH" or "MARY ANN".
func checkNamePart(name string) error {
	switch {
	case name == "":
		return reject("the certificate's common name has an empty name part")
	case len(name) > maxNamePartLen:
		return reject("the certificate's common name has a name part that is too long")
	}
	const badCharacters = "the certificate's common name contains characters that are not allowed in a name"
	if !isASCIILetter(name[0]) || !isASCIILetter(name[len(name)-1]) {
		return reject(badCharacters)
	}
	for i := 1; i < len(name)-1; i++ {
		c := name[i]
		if isASCIILetter(c) {
			continue
		}
		if !isNameSeparator(c) || isNameSeparator(name[i-1]) {
			return reject(badCharacters)
		}
	}
	return nil
}

func isASCIILetter(c byte) bool {
	return ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z')
}

func isNameSeparator(c byte) bool {
	return c == ' ' || c == '-' || c == '\''
}
