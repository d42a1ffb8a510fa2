package cacid

import (
	"crypto/x509/pkix"
	"strings"
)

// maxAffiliationLen bounds the affiliation OU for the same reason
// maxNamePartLen bounds name parts.
const maxAffiliationLen = 64

// commonName returns the subject's only common name and its index in names,
// the subject attributes in DER order. More than one common name is
// rejected: which one "the" name is would depend on the reader.
func commonName(names []pkix.AttributeTypeAndValue) (cn string, index int, err error) {
	index = -1
	for i, atv := range names {
		if !atv.Type.Equal(oidCommonName) {
			continue
		}
		if index >= 0 {
			return "", -1, reject("the certificate has more than one common name")
		}
		value, ok := atv.Value.(string)
		if !ok {
			return "", -1, reject("the certificate's common name is not text")
		}
		cn, index = value, i
	}
	if index < 0 {
		return "", -1, reject("the certificate has no common name")
	}
	return cn, index, nil
}

// findAffiliation returns the organizational unit nearest the common name,
// skipping the DoD PKI's own "PKI" and "DoD" units. DoD subjects are encoded
// most general first (C, O, OU=DoD, OU=PKI, OU=USA, CN), so the units before
// the common name are searched first, nearest first; the units after it are
// only consulted for issuers that encode names in reverse.
func findAffiliation(names []pkix.AttributeTypeAndValue, cnIndex int) (string, error) {
	for i := cnIndex - 1; i >= 0; i-- {
		if ou, ok := affiliationCandidate(names[i]); ok {
			return checkAffiliation(ou)
		}
	}
	for i := cnIndex + 1; i < len(names); i++ {
		if ou, ok := affiliationCandidate(names[i]); ok {
			return checkAffiliation(ou)
		}
	}
	return "", nil
}

// affiliationCandidate reports whether atv is an organizational unit other
// than PKI or DoD. Non-text values are returned as candidates (as "") so
// that checkAffiliation rejects them rather than silently skipping them.
func affiliationCandidate(atv pkix.AttributeTypeAndValue) (string, bool) {
	if !atv.Type.Equal(oidOrganizationalUnit) {
		return "", false
	}
	ou, _ := atv.Value.(string)
	if strings.EqualFold(ou, "PKI") || strings.EqualFold(ou, "DoD") {
		return "", false
	}
	return ou, true
}

// checkAffiliation accepts printable ASCII organization names: letters,
// digits, spaces and the punctuation agency names use ("DoD civilian",
// "NGA-HQ", "DHA (J-6)", "A&M"). The value ends up in headers and pages, so
// anything else is refused.
func checkAffiliation(ou string) (string, error) {
	if ou == "" || len(ou) > maxAffiliationLen || strings.TrimSpace(ou) != ou {
		return "", reject("the certificate's organizational unit is empty, too long or padded")
	}
	for i := 0; i < len(ou); i++ {
		c := ou[i]
		if !isASCIILetter(c) && !('0' <= c && c <= '9') && !strings.ContainsRune(" -.'&()/,", rune(c)) {
			return "", reject("the certificate's organizational unit contains characters that are not allowed")
		}
	}
	return ou, nil
}
