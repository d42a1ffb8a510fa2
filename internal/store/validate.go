package store

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidAccount: an account record breaks the rules ImportAccounts
// checks (see validateAccount). The wrapping error says which rule, never
// the offending value.
var ErrInvalidAccount = errors.New("invalid account")

// MaxUsernameLen is the longest username: the admin API, the CLI, imports
// and enrollment all hold to it.
const MaxUsernameLen = 64

// ValidUsername reports whether name is a username the store accepts from
// administrators and imports: 1 to 64 characters, lowercase ASCII letters,
// digits, '.', '_' or '-', starting with a letter. Enrollment's generated
// names ("john.b.smith13") follow the same rule, and Enroll checks them.
func ValidUsername(name string) bool {
	if len(name) == 0 || len(name) > MaxUsernameLen || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ReservedUsername reports whether name is one no account may have: the
// literal path segments under the admin API's /cacgate/accounts/ ("import"
// and "export"), which would hide such an account from the API. Every way
// an account is created refuses them.
func ReservedUsername(name string) bool {
	return name == "import" || name == "export"
}

// errReservedUsername is why a reserved username is refused.
var errReservedUsername = invalid(`usernames "import" and "export" are reserved: they are admin API paths`)

// checkNewUsername checks the username of an account about to be created.
func checkNewUsername(name string) error {
	if !ValidUsername(name) {
		return invalid("username must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter")
	}
	if ReservedUsername(name) {
		return errReservedUsername
	}
	return nil
}

// checkCategories accepts roster categories an export can write and an
// import read back as they are: at most maxCategories, each printable text
// of at most maxCategoryRunes characters, not empty and without surrounding
// spaces. A ';' is fine; the CSV format escapes it. Imports and enrollment
// check them; CreateAccount trusts its callers (the admin API sets none).
func checkCategories(categories []string) error {
	if len(categories) > maxCategories {
		return invalid(fmt.Sprintf("at most %d categories", maxCategories))
	}
	for _, c := range categories {
		switch {
		case c == "":
			return invalid("a category is empty")
		case strings.TrimSpace(c) != c:
			return invalid("a category has surrounding spaces")
		}
		if err := checkText("categories", c, maxCategoryRunes); err != nil {
			return err
		}
	}
	return nil
}

// ValidEDIPI reports whether s is a DoD ID number: exactly 10 digits.
func ValidEDIPI(s string) bool {
	return len(s) == 10 && allBytes(s, isDigit)
}

// ValidKey reports whether s can be a non-DoD account's credential key:
// 1 to 254 printable ASCII characters (a card UUID, a hash, an address).
// cacid.ValidKey knows each kind's exact form.
func ValidKey(s string) bool {
	return len(s) >= 1 && len(s) <= 254 && allBytes(s, func(c byte) bool { return c > ' ' && c < 0x7f })
}

// ValidFingerprint reports whether s is a card fingerprint as the store
// keeps it: 64 lowercase hex digits (a SHA-256).
func ValidFingerprint(s string) bool {
	return len(s) == 64 && allBytes(s, func(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' })
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// Bounds on what an imported account may hold. The names and affiliation
// match what the admin API accepts; the rest are generous for what the
// personnel roster puts there.
const (
	maxNameRunes       = 64
	maxEmailBytes      = 254
	maxProfileRunes    = 256 // organization, location, work address
	maxPhoneRunes      = 64
	maxCategories      = 32
	maxCategoryRunes   = 128
	maxCardsPerAccount = 32
	maxCardTextRunes   = 1024 // subject, issuer
	maxSerialRunes     = 128
)

// validateAccount checks an account record from an import and returns the
// name of the offending field with the error. An empty status is taken as
// StatusActive by the caller, before this check.
func validateAccount(a *Account) (field string, err error) {
	if err := checkNewUsername(a.Username); err != nil {
		return "username", err
	}
	if field, err := checkIdentity(a); err != nil {
		return field, err
	}
	switch a.Status {
	case StatusActive, StatusDisabled, StatusPending:
	default:
		return "status", invalid(`status must be "active", "disabled" or "pending"`)
	}
	texts := []struct {
		field string
		value string
		max   int
	}{
		{"given_name", a.GivenName, maxNameRunes},
		{"middle_name", a.MiddleName, maxNameRunes},
		{"family_name", a.FamilyName, maxNameRunes},
		{"suffix", a.Suffix, maxNameRunes},
		{"affiliation", a.Affiliation, maxNameRunes},
		{"organization", a.Organization, maxProfileRunes},
		{"location", a.Location, maxProfileRunes},
		{"work_address", a.WorkAddress, maxProfileRunes},
		{"phone", a.Phone, maxPhoneRunes},
	}
	for _, t := range texts {
		if err := checkText(t.field, t.value, t.max); err != nil {
			return t.field, err
		}
	}
	if a.Email != "" {
		if len(a.Email) > maxEmailBytes {
			return "email", invalid("email is too long")
		}
		addr, err := mail.ParseAddress(a.Email)
		if err != nil || addr.Address != a.Email {
			return "email", invalid("email must be a plain address like name@example.mil")
		}
	}
	if err := checkCategories(a.Categories); err != nil {
		return "categories", err
	}
	if _, err := normalizeGroups(a.Groups); err != nil {
		return "groups", fmt.Errorf("%w: %w", ErrInvalidAccount, err)
	}
	if len(a.Cards) > maxCardsPerAccount {
		return "cards", invalid(fmt.Sprintf("at most %d cards", maxCardsPerAccount))
	}
	for _, c := range a.Cards {
		if !ValidFingerprint(c.Fingerprint) {
			return "card_sha256", invalid("a card fingerprint must be 64 lowercase hex digits (SHA-256)")
		}
		for _, t := range []struct {
			field, value string
			max          int
		}{{"card_subject", c.Subject, maxCardTextRunes}, {"card_issuer", c.Issuer, maxCardTextRunes}, {"card_serial", c.Serial, maxSerialRunes}} {
			if err := checkText(t.field, t.value, t.max); err != nil {
				return t.field, err
			}
		}
	}
	return "", nil
}

func invalid(msg string) error {
	return fmt.Errorf("%w: %s", ErrInvalidAccount, msg)
}

// checkText accepts valid UTF-8 of at most max characters without control
// or other non-printable characters, which have no place in a name and
// could forge lines in logs and headers.
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > max {
		return invalid(fmt.Sprintf("%s must be valid text of at most %d characters", field, max))
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return invalid(field + " contains a control or non-printable character")
		}
	}
	return nil
}

// checkIdentity checks an account's credential kind, key and EDIPI agree:
// a DoD account has an EDIPI and is keyed by it, no other has one. An
// empty Kind is a DoD account's (set here).
func checkIdentity(a *Account) (field string, err error) {
	if a.Kind == "" {
		a.Kind, a.Key = KindCAC, a.EDIPI
	}
	switch a.Kind {
	case KindCAC:
		if !ValidEDIPI(a.EDIPI) {
			return "edipi", invalid("edipi must be the 10-digit DoD ID number")
		}
		if a.Key != a.EDIPI {
			return "key", invalid("a DoD account's key is its edipi")
		}
	case KindPIV, KindPIVI, KindECA:
		if a.EDIPI != "" {
			return "edipi", invalid("only a DoD account has an edipi")
		}
		if !ValidKey(a.Key) {
			return "key", invalid("key must be 1 to 254 printable ASCII characters")
		}
	default:
		return "kind", invalid(`kind must be "cac", "piv", "piv-i" or "eca"`)
	}
	return "", nil
}
