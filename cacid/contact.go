package cacid

import (
	"net/url"
	"strings"
)

// maxEmailLen is the longest address SMTP can carry (RFC 5321).
const maxEmailLen = 254

// firstEmail returns the first rfc822Name, checked to be a plain
// local@domain address. crypto/x509 only guarantees ASCII, which still
// allows control characters and spaces.
func firstEmail(emails []string) (string, error) {
	if len(emails) == 0 {
		return "", nil
	}
	email := emails[0]
	local, domain, found := strings.Cut(email, "@")
	if !found || local == "" || len(email) > maxEmailLen || !isDNSName(domain) {
		return "", reject("the certificate's email address is malformed")
	}
	for i := 0; i < len(local); i++ {
		// The printable ASCII range, excluding space and the characters
		// that would need quoting or escaping in an address.
		if c := local[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),:;<>@[\]`, c) >= 0 {
			return "", reject("the certificate's email address is malformed")
		}
	}
	return email, nil
}

// findCardUUID returns the UUID from the certificate's "urn:uuid:" URIs, in
// lower-case canonical form. URIs of other kinds are ignored; a malformed
// UUID, or two different ones, is refused.
func findCardUUID(uris []*url.URL) (string, error) {
	var found string
	for _, uri := range uris {
		if uri == nil || !strings.EqualFold(uri.Scheme, "urn") {
			continue
		}
		nid, nss, ok := strings.Cut(uri.Opaque, ":")
		if !ok || !strings.EqualFold(nid, "uuid") {
			continue
		}
		uuid, ok := canonicalUUID(nss)
		if !ok {
			return "", reject("the certificate's card UUID is malformed")
		}
		if found != "" && found != uuid {
			return "", reject("the certificate carries more than one card UUID and they differ")
		}
		found = uuid
	}
	return found, nil
}

// canonicalUUID accepts the 8-4-4-4-12 hex form in either case and returns
// it in lower case.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !('0' <= c && c <= '9') && !('a' <= c && c <= 'f') && !('A' <= c && c <= 'F') {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}
