package cacid

import (
	"crypto/sha256"
	"crypto/x509"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the sort of credential a certificate is, which decides what its
// issuer vouches for and so what names the holder:
//
//   - KindCAC, a DoD Common Access Card or DoD PIV authentication
//     certificate: the EDIPI (DoD ID number), the same on every card the
//     person is ever issued;
//   - KindPIV, a federal PIV authentication certificate of another agency
//     (FIPS 201): the card UUID, the same for every certificate on that
//     card, a new one with each card;
//   - KindPIVI, a PIV-Interoperable card (a non-federal issuer
//     cross-certified with the Federal Bridge): the card UUID, likewise;
//   - KindECA, a DoD External Certification Authority certificate (and
//     other approved PKIs without a card identifier): the issuer and
//     subject names, or a subject alternative name the site chooses.
type Kind string

// The credential kinds. The values are what the X-Cac-Credential header,
// the assertion's "credential" claim and the account store carry.
const (
	KindCAC  Kind = "cac"
	KindPIV  Kind = "piv"
	KindPIVI Kind = "piv-i"
	KindECA  Kind = "eca"
	// KindNPE is a DoD non-person entity's (a server's or device's)
	// certificate, which names no person: it is known only by an
	// administrator's registration to a utility account (by fingerprint,
	// or subject and issuer), never read by ParseAs, and not in Kinds.
	KindNPE Kind = "npe"
)

// Kinds lists every kind, in the order a certificate is classified (see
// trust.Classify): the most specific issuer first.
var Kinds = []Kind{KindCAC, KindPIVI, KindECA, KindPIV}

// ParseKind returns the Kind named s ("cac", "piv", "piv-i", "eca").
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// KeySource is where an ECA (or other approved PKI's) certificate's stable
// key comes from.
type KeySource string

const (
	// KeyIssuerSubject (the default): the issuer and subject names
	// together, hashed (SHA-256, hex): an ECA registers each subscriber
	// under a distinguished name unique within the CA.
	KeyIssuerSubject KeySource = "issuer_subject"
	// KeyEmail: the first rfc822Name subject alternative name, lower case.
	KeyEmail KeySource = "email"
	// KeyUPN: the User Principal Name otherName, lower case.
	KeyUPN KeySource = "upn"
)

// ParseKeySource returns the KeySource named s; "" is KeyIssuerSubject.
func ParseKeySource(s string) (KeySource, bool) {
	switch KeySource(s) {
	case "", KeyIssuerSubject:
		return KeyIssuerSubject, true
	case KeyEmail, KeyUPN:
		return KeySource(s), true
	}
	return "", false
}

// Options tune ParseAs.
type Options struct {
	// ECAKey is where an ECA certificate's key comes from (default
	// KeyIssuerSubject).
	ECAKey KeySource
}

// maxDisplayNameLen bounds a non-DoD common name: FPKI profiles allow 64
// characters; the bound leaves room and keeps hostile values small.
const maxDisplayNameLen = 128

// ParseAs reads the holder's identity from a certificate of the given
// kind (decided by the caller from the certificate's issuer and policies,
// see trust.Classify). KindCAC is Parse. The other kinds have no DoD name
// format: the common name is shown as it is (and split into given and
// family names where it plainly is "GIVEN [MIDDLE...] FAMILY"), and the
// key is the card UUID (PIV, PIV-I: a certificate without one is refused)
// or, for ECA, what opts.ECAKey names. EDIPI is empty for every kind but
// KindCAC: only DoD vouches for it.
func ParseAs(cert *x509.Certificate, kind Kind, opts Options) (*Identity, error) {
	switch kind {
	case KindCAC:
		return Parse(cert)
	case KindPIV, KindPIVI, KindECA:
	default:
		return nil, reject("the certificate is of no credential kind this site knows")
	}
	if cert == nil || len(cert.Raw) == 0 {
		return nil, reject("no certificate was presented")
	}
	cn, cnIndex, err := commonName(cert.Subject.Names)
	if err != nil {
		return nil, err
	}
	if err := checkDisplayName(cn); err != nil {
		return nil, err
	}
	id, err := certificateFacts(cert, cnIndex, singleUPN)
	if err != nil {
		return nil, err
	}
	id.Kind, id.CommonName = kind, cn
	upn, email, cardUUID := id.UPN, id.Email, id.CardUUID
	id.GivenName, id.MiddleName, id.FamilyName = splitDisplayName(cn)
	switch kind {
	case KindPIV, KindPIVI:
		if cardUUID == "" {
			return nil, reject("the certificate carries no card UUID, which every PIV authentication certificate must")
		}
		id.Key = cardUUID
	case KindECA:
		switch opts.ECAKey {
		case KeyEmail:
			if email == "" {
				return nil, reject("the certificate carries no email address, which this site identifies its holder by")
			}
			id.Key = strings.ToLower(email)
		case KeyUPN:
			if upn == "" {
				return nil, reject("the certificate carries no User Principal Name, which this site identifies its holder by")
			}
			id.Key = strings.ToLower(upn)
		default:
			id.Key = IssuerSubjectKey(id.Issuer, id.Subject)
		}
	}
	return id, nil
}

// IssuerSubjectKey is the key of a certificate identified by its issuer
// and subject names (RFC 2253 form, as Identity carries them): the hex
// SHA-256 of both, so that the key has one length however long the names
// are, and two names that only differ in their string encoding (one CA's
// PrintableString, another's UTF8String) give one key.
func IssuerSubjectKey(issuer, subject string) string {
	h := sha256.New()
	h.Write([]byte(issuer))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	var sum [sha256.Size]byte
	return fingerprintHex([sha256.Size]byte(h.Sum(sum[:0])))
}

// ValidKey reports whether key can be a stable key of the kind: an EDIPI
// for KindCAC, a lower-case canonical UUID for PIV and PIV-I, and for ECA
// a 64-digit lower-case hex hash or a lower-case address.
func ValidKey(kind Kind, key string) bool {
	switch kind {
	case KindCAC:
		return isEDIPI(key)
	case KindPIV, KindPIVI:
		u, ok := canonicalUUID(key)
		return ok && u == key
	case KindECA:
		if len(key) == 64 && strings.Trim(key, "0123456789abcdef") == "" {
			return true
		}
		local, domain, found := strings.Cut(key, "@")
		return found && local != "" && len(key) <= maxEmailLen && isDNSName(domain) &&
			strings.ToLower(key) == key && strings.IndexFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }) < 0
	}
	return false
}

// checkDisplayName accepts a printable common name: letters of any
// script, digits, spaces and the punctuation names and agency titles use.
// It ends up in headers and pages, so anything else is refused.
func checkDisplayName(cn string) error {
	switch {
	case cn == "" || strings.TrimSpace(cn) != cn:
		return reject("the certificate's common name is empty or padded")
	case !utf8.ValidString(cn):
		return reject("the certificate's common name is not valid UTF-8")
	case len(cn) > maxDisplayNameLen:
		return reject("the certificate's common name is too long")
	}
	for _, r := range cn {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" -.'&(),/", r) {
			continue
		}
		return reject("the certificate's common name contains characters that are not allowed in a name")
	}
	return nil
}

// splitDisplayName reads "GIVEN [MIDDLE...] FAMILY" (FPKI profiles write
// people's names in that order) when every word is a plain name part
// (ASCII letters, inner hyphens and apostrophes, an initial's period);
// anything else (digits, agency suffixes, one word) gives no parts, and
// the holder is shown by the whole common name.
func splitDisplayName(cn string) (given, middle, family string) {
	words := strings.Fields(cn)
	if len(words) < 2 || len(words) > maxNameParts+1 {
		return "", "", ""
	}
	for i, w := range words {
		w = strings.TrimSuffix(w, ".")
		if checkNamePart(w) != nil || strings.ContainsRune(w, ' ') {
			return "", "", ""
		}
		words[i] = w
	}
	return words[0], strings.Join(words[1:len(words)-1], " "), words[len(words)-1]
}

// singleUPN is the certificate's UPN when it has one (several identical
// ones count as one; differing ones are refused), checked to be a plain
// local@domain of bounded length.
func singleUPN(upns []string) (string, error) {
	if len(upns) == 0 {
		return "", nil
	}
	upn := upns[0]
	for _, other := range upns[1:] {
		if other != upn {
			return "", reject("the certificate carries more than one UPN and they differ")
		}
	}
	if len(upn) > maxUPNLen {
		return "", reject("the certificate's UPN is too long")
	}
	if _, err := firstEmail([]string{upn}); err != nil {
		return "", reject("the certificate's UPN is not of the form name@domain")
	}
	return upn, nil
}
