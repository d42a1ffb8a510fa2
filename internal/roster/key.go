package roster

import (
	"errors"
	"strings"
)

// maxEmailBytes is the longest e-mail address a key may be (RFC 5321's
// limit on a path, less its brackets).
const maxEmailBytes = 254

// ErrInvalidKey is returned for a claim whose key is missing, not well
// formed, or given more than once (an EDIPI and a card UUID, say). The key
// comes from a verified certificate, so this is a caller bug rather than
// something to show next to a form field.
var ErrInvalidKey = errors.New("roster: the claim needs exactly one well-formed key: an EDIPI, a card UUID or an e-mail address")

// key returns the claim's key in canonical form, or ErrInvalidEDIPI (no
// key at all, or an EDIPI that is not one) or ErrInvalidKey.
func (c Claim) key() (KeyKind, string, error) {
	set := 0
	for _, v := range []string{c.EDIPI, c.CardUUID, c.Email} {
		if v != "" {
			set++
		}
	}
	switch {
	case set == 0:
		return "", "", ErrInvalidEDIPI // a DoD claim without its EDIPI, as before keys
	case set > 1:
		return "", "", ErrInvalidKey
	case c.EDIPI != "":
		if !isEDIPI(c.EDIPI) {
			return "", "", ErrInvalidEDIPI
		}
		return KeyEDIPI, c.EDIPI, nil
	case c.CardUUID != "":
		u, ok := normalizeKey(KeyCardUUID, c.CardUUID)
		if !ok {
			return "", "", ErrInvalidKey
		}
		return KeyCardUUID, u, nil
	default:
		e, ok := normalizeKey(KeyEmail, c.Email)
		if !ok {
			return "", "", ErrInvalidKey
		}
		return KeyEmail, e, nil
	}
}

// normalizeKey returns value in the canonical form of kind, or false when
// it is not one: an EDIPI as is, a card UUID as 36 lower-case characters
// (8-4-4-4-12 hex digits), an e-mail address in lower case. Lower case is
// how cacid keys these credentials, and how an export may not have
// written them. An address may hold printable ASCII other than blanks,
// quotes, backslashes, commas and angle brackets, one "@" with text on
// both sides: enough for every address a certificate authority puts in a
// certificate, and no character that needs escaping in JSON or quoting in
// CSV.
func normalizeKey(kind KeyKind, value string) (string, bool) {
	switch kind {
	case KeyEDIPI:
		return value, isEDIPI(value)
	case KeyCardUUID:
		if len(value) != 36 {
			return "", false
		}
		for i := range len(value) {
			c := value[i]
			switch {
			case i == 8 || i == 13 || i == 18 || i == 23:
				if c != '-' {
					return "", false
				}
			case isDigit(c), 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
			default:
				return "", false
			}
		}
		return strings.ToLower(value), true
	case KeyEmail:
		if len(value) > maxEmailBytes {
			return "", false
		}
		for i := range len(value) {
			if c := value[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"\,<>;`, c) >= 0 {
				return "", false
			}
		}
		local, domain, found := strings.Cut(value, "@")
		if !found || local == "" || domain == "" || strings.Contains(domain, "@") {
			return "", false
		}
		return strings.ToLower(value), true
	}
	return "", false
}
