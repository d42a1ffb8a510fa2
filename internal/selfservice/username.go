package selfservice

import (
	"strings"
	"unicode"

	"github.com/cacgate/cacgate/internal/store"
)

// maxUsernameBaseLen is the longest base UsernameBase returns: short enough
// for the store's 64-character usernames with a suffix of up to four
// digits (john.b.smith9999), far more namesakes than any site has.
const maxUsernameBaseLen = store.MaxUsernameLen - 4

// UsernameBase returns the DoD-style username base "first.m.last"
// (lowercase; "first.last" without a middle initial), before the database
// appends a number to make it unique (john.b.smith, john.b.smith1, …).
//
// Name parts come from the card or roster in any case. Letters and digits
// are kept, a hyphen inside a name is kept ("obrien-smith"), spaces and
// apostrophes are dropped ("Mary Ann" → "maryann", "O'Brien" → "obrien").
// A base longer than maxUsernameBaseLen keeps the first name and middle
// initial and cuts the last name, down to half the room; only then is the
// first name cut too. A cut never leaves a '-' at the end of a part.
// It returns "" when the given or family name has nothing usable, or the
// result would not be a valid username (one must start with a letter), so
// the caller can refuse instead of inventing a username.
func UsernameBase(given, middle, family string) string {
	first, last := usernamePart(given), usernamePart(family)
	if first == "" || last == "" {
		return ""
	}
	initial := ""
	if m := usernamePart(middle); m != "" {
		initial = m[:1] + "."
	}
	// room is what first and last may take together, besides the dots.
	room := maxUsernameBaseLen - len(".") - len(initial)
	if len(first)+len(last) > room {
		keepLast := max(room-len(first), min(len(last), room/2))
		first, last = cutPart(first, room-keepLast), cutPart(last, keepLast)
	}
	base := first + "." + initial + last
	if !store.ValidUsername(base) {
		return ""
	}
	return base
}

// cutPart shortens a usernamePart to at most n bytes (it is ASCII) without
// leaving a hyphen at its end. The part starts with a letter or digit, so
// something is always left for n >= 1.
func cutPart(part string, n int) string {
	if len(part) <= n {
		return part
	}
	return strings.TrimRight(part[:n], "-")
}

// usernamePart lowercases a name to ASCII letters, digits and inner
// hyphens. Names outside ASCII yield nothing for their non-ASCII letters,
// which is what the DoD's own usernames do.
func usernamePart(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		case r == '-' && b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), "-")
}
