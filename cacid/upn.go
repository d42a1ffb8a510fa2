package cacid

import (
	"fmt"
	"strings"
)

const (
	// pivUPNLocalLen is the length of the user part of a PIV authentication
	// certificate's UPN: the EDIPI followed by six more digits.
	pivUPNLocalLen = 16

	// maxUPNLen keeps hostile UPNs out of error messages and sessions; real
	// ones are about 20 bytes.
	maxUPNLen = 128
)

// upnFor returns the certificate's UPN after checking that it names the
// same person as the common name's EDIPI. Several identical UPNs count as
// one; differing ones are refused, because picking one would let the issuer's
// encoding order decide who signs in.
func upnFor(upns []string, edipi string) (string, error) {
	if len(upns) == 0 {
		return "", nil
	}
	upn := upns[0]
	for _, other := range upns[1:] {
		if other != upn {
			return "", reject("the certificate carries more than one UPN and they differ")
		}
	}
	if err := checkUPN(upn, edipi); err != nil {
		return "", err
	}
	return upn, nil
}

// checkUPN accepts DIGITS@domain where DIGITS is the EDIPI, or 16 digits
// that start with it, and domain is a plain DNS name (DoD uses "mil").
func checkUPN(upn, edipi string) error {
	if len(upn) > maxUPNLen {
		return reject("the certificate's UPN is too long")
	}
	local, domain, found := strings.Cut(upn, "@")
	if !found || !isDNSName(domain) {
		return reject("the certificate's UPN is not of the form ID@domain")
	}
	if !isDigits(local) || (len(local) != edipiLen && len(local) != pivUPNLocalLen) {
		return reject("the certificate's UPN is neither a 10-digit DoD ID nor a 16-digit ID starting with one")
	}
	if local[:edipiLen] != edipi {
		// Both values passed validation above, so they are safe to show.
		return reject(fmt.Sprintf("the UPN (%s) and the common name (DoD ID %s) disagree on the DoD ID", upn, edipi))
	}
	return nil
}

// isDNSName accepts dot-separated labels of ASCII letters, digits and inner
// hyphens: enough for UPN and email domains, and nothing that needs escaping.
func isDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isASCIILetter(c) && !('0' <= c && c <= '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
