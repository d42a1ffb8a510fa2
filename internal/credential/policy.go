package credential

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Specials is the set of special characters a password may contain, and must
// contain at least one of. It is the list Defense Connect Online shows on its
// registration page, so people who already have a DoD password are not
// surprised by a different set.
const Specials = "!@$%^&*_+=.~"

// Default password lengths, from the DCO and AKO registration rules.
const (
	defaultMinLength = 15
	defaultMaxLength = 20
)

// PasswordPolicy describes an acceptable password: MinLength to MaxLength
// characters with at least one uppercase letter, one lowercase letter and one
// character from [Specials]; digits allowed, and required when RequireDigit
// is set; nothing but ASCII letters, digits and those specials (so no
// spaces); and none of the person's names or username inside it.
//
// The zero value is the DoD portals' policy. A zero or negative MinLength or
// MaxLength means the default (15 and 20); a MaxLength below MinLength is
// raised to MinLength rather than making every password unacceptable.
type PasswordPolicy struct {
	MinLength, MaxLength int
	RequireDigit         bool
}

// passwordRule is one rule as the form shows it, with the test a password
// must pass to satisfy it. Check and Rules share the list so the sentence
// that reports a broken rule is always one the page already displayed.
type passwordRule struct {
	sentence string
	ok       func(password string, c composition) bool
}

// composition summarises which classes of character a password uses. It is
// computed in one pass so hostile input costs linear time.
type composition struct {
	length                       int // in characters (runes), as the person counts them
	upper, lower, digit, special bool
	other                        bool // any character outside the allowed set
}

func compose(password string) composition {
	var c composition
	for _, r := range password {
		c.length++
		switch {
		case 'A' <= r && r <= 'Z':
			c.upper = true
		case 'a' <= r && r <= 'z':
			c.lower = true
		case '0' <= r && r <= '9':
			c.digit = true
		case r < utf8.RuneSelf && strings.ContainsRune(Specials, r):
			c.special = true
		default:
			// Spaces, other punctuation, non-ASCII letters and invalid
			// UTF-8 (decoded as U+FFFD) all land here.
			c.other = true
		}
	}
	return c
}

// Check returns the sentence of every rule the password breaks, in the order
// Rules lists them, or nil when the password is acceptable. No sentence
// repeats the password or any part of it.
//
// forbidden holds the username and the person's names. The password may not
// contain, ignoring case, any of them whole or any piece of 3 or more
// characters between separators (dots, spaces, hyphens; an apostrophe joins,
// so "O'Brien" forbids "obrien"): "john.q.doe13" forbids itself, "john" and
// "doe13", but not "q".
func (p PasswordPolicy) Check(password string, forbidden ...string) []string {
	c := compose(password)
	var broken []string
	for _, rule := range p.rules(forbidden) {
		if !rule.ok(password, c) {
			broken = append(broken, rule.sentence)
		}
	}
	return broken
}

// Rules returns every rule as a sentence, for the page that asks for a
// password.
func (p PasswordPolicy) Rules() []string {
	rules := p.rules(nil)
	sentences := make([]string, len(rules))
	for i, rule := range rules {
		sentences[i] = rule.sentence
	}
	return sentences
}

func (p PasswordPolicy) rules(forbidden []string) []passwordRule {
	minLen, maxLen := p.lengths()
	specials := spacedSpecials()
	rules := []passwordRule{
		{lengthSentence(minLen, maxLen), func(_ string, c composition) bool {
			return minLen <= c.length && c.length <= maxLen
		}},
		{"Use at least one uppercase letter (A–Z).", func(_ string, c composition) bool { return c.upper }},
		{"Use at least one lowercase letter (a–z).", func(_ string, c composition) bool { return c.lower }},
		{"Use at least one special character (" + specials + ").", func(_ string, c composition) bool { return c.special }},
	}
	if p.RequireDigit {
		rules = append(rules, passwordRule{"Use at least one digit (0–9).", func(_ string, c composition) bool { return c.digit }})
	}
	parts := forbiddenParts(forbidden)
	return append(rules,
		passwordRule{"Use only letters, digits and the special characters " + specials + " (no spaces).",
			func(_ string, c composition) bool { return !c.other }},
		passwordRule{"Do not include your username or your name.",
			func(password string, _ composition) bool { return !containsAny(password, parts) }},
	)
}

// lengths applies the documented defaults to MinLength and MaxLength.
func (p PasswordPolicy) lengths() (minLen, maxLen int) {
	minLen, maxLen = p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = defaultMinLength
	}
	if maxLen <= 0 {
		maxLen = defaultMaxLength
	}
	return minLen, max(minLen, maxLen)
}

func lengthSentence(minLen, maxLen int) string {
	if minLen == maxLen {
		return "Use exactly " + strconv.Itoa(minLen) + " characters."
	}
	return "Use " + strconv.Itoa(minLen) + " to " + strconv.Itoa(maxLen) + " characters."
}

// spacedSpecials returns Specials with a space between characters, the way
// the DCO page prints them, so "." and "~" read as characters rather than
// punctuation of the sentence.
func spacedSpecials() string {
	return strings.Join(strings.Split(Specials, ""), " ")
}
