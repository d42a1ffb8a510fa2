package trust

import (
	"strings"
	"testing"
)

// TestParseIssuerSpellings: names an operator may paste either match the
// card's issuer or are refused at load, never accepted and silently
// unmatched (a deny rule that denies nothing).
func TestParseIssuerSpellings(t *testing.T) {
	const card = "CN=DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US"
	for _, ok := range []string{
		"CN=DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US",
		"CN=DOD ID CA-59, OU=PKI, OU=DoD, O=U.S. Government, C=US",
		"cn=dod id ca-59, ou=pki, ou=dod, o=u.s. government, c=us",
		"CN = DOD ID CA-59, OU = PKI, OU = DoD, O = U.S. Government, C = US",
	} {
		p, err := ParseIssuer(ok)
		if err != nil {
			t.Errorf("%q refused: %v", ok, err)
			continue
		}
		if !p.Match(card, "") {
			t.Errorf("%q does not match the card's issuer", ok)
		}
	}
	for bad, why := range map[string]string{
		"C = US, O = U.S. Government, OU = DoD, OU = PKI, CN = DOD ID CA-59": "country first",
		"/C=US/O=U.S. Government/OU=DoD/OU=PKI/CN=DOD ID CA-59":              "/C=.../CN=... form",
		"CN=DOD ID CA-59": "one attribute only",
		"DOD ID CA-59":    "neither",
		"CN=,OU=PKI":      "neither",
	} {
		if _, err := ParseIssuer(bad); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: error %v, want one saying %q", bad, err, why)
		}
	}
}
