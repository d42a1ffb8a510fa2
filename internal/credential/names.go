package credential

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// minForbiddenLen is the shortest name part a password may not contain.
// Initials and two-letter names ("Q", "Jo", "Li") occur inside so many
// ordinary words that refusing them would reject most passwords while
// protecting nothing; DCO and AKO draw the line at three as well.
const minForbiddenLen = 3

// forbiddenParts returns, lowercased, the strings a password must not
// contain: each forbidden value whole (the username "j.q.doe" even though its
// pieces are short) and each piece of it between separators, where anything
// but a letter or digit separates, so "john.q.doe13" yields "john" and
// "doe13" and "Obrien-Smith" yields "obrien" and "smith". Apostrophes join
// rather than separate, so "O'Brien" yields "obrien", the way people type the
// name when a field refuses the apostrophe. Values and pieces shorter than
// minForbiddenLen characters are dropped.
func forbiddenParts(values []string) []string {
	var parts []string
	add := func(s string) {
		if utf8.RuneCountInString(s) >= minForbiddenLen {
			parts = append(parts, s)
		}
	}
	for _, v := range values {
		v = strings.ToLower(strings.TrimSpace(v))
		add(v)
		joined := strings.NewReplacer("'", "", "’", "").Replace(v)
		for _, piece := range strings.FieldsFunc(joined, isNameSeparator) {
			add(piece)
		}
	}
	return parts
}

func isNameSeparator(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// containsAny reports whether s contains any of the lowercase parts,
// ignoring case.
func containsAny(s string, parts []string) bool {
	if len(parts) == 0 {
		return false
	}
	s = strings.ToLower(s)
	for _, part := range parts {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}
