package enroll

import (
	"strings"
	"unicode"
)

// UsernameBase returns the DoD-style username base "first.m.last"
// (lowercase; "first.last" without a middle initial), before the database
// appends a number to make it unique (john.b.smith, john.b.smith1, …).
//
// Name parts come from the card or roster in any case. Letters and digits
// are kept, a hyphen inside a name is kept ("obrien-smith"), spaces and
// apostrophes are dropped ("Mary Ann" → "maryann", "O'Brien" → "obrien").
// It returns "" when the given or family name has nothing usable, so the
// caller can refuse instead of inventing a username.
func UsernameBase(given, middle, family string) string {
	first, last := usernamePart(given), usernamePart(family)
	if first == "" || last == "" {
		return ""
	}
	if m := usernamePart(middle); m != "" {
		return first + "." + m[:1] + "." + last
	}
	return first + "." + last
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
