package access

import (
	"strings"

	"github.com/cacgate/cacgate/trust"
)

// phrase says what an allow or require rule asks for, in words for the
// person refused. It names groups, affiliations, categories, CAs and
// policy OIDs as configured (the person needs them to ask for access) but
// never DoD IDs or file paths. noCard adds why a password sign-in cannot
// meet it.
func (r *rule) phrase(noCard bool) string {
	var s string
	switch r.kind {
	case KindGroup:
		s = "members of group " + orList(r.shown)
	case KindAffiliation:
		s = orList(r.shown) + " affiliation"
	case KindCategory:
		s = "roster category " + orList(r.shown)
	case KindEDIPI, KindEDIPIFile:
		s = "people on this site's list of approved DoD ID numbers"
	case KindIssuer:
		s = "cards issued by " + issuerNames(r)
	case KindPolicy:
		s = "a card certificate with policy " + orList(r.shown)
	}
	if noCard {
		s += " (sign in with your CAC or PIV card: a password sign-in cannot meet this)"
	}
	return s
}

// issuerNames names the CAs by their common names where the patterns are
// names ("DOD ID CA-70 or DOD ID CA-71"); a hash pin cannot be named.
func issuerNames(r *rule) string {
	names := make([]string, 0, len(r.issuers))
	for _, pat := range r.issuers {
		if pat.IsHash() {
			return "a certificate authority this site accepts"
		}
		names = append(names, commonName(pat.DN()))
	}
	return orList(names)
}

// commonName is the CN of a DN, or the whole DN if it has none.
func commonName(dn string) string {
	for _, part := range trust.SplitDN(dn) {
		if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(strings.TrimSpace(k), "CN") {
			return strings.ReplaceAll(strings.TrimSpace(v), `\`, "")
		}
	}
	return dn
}

// orList joins "a", "a or b", "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
