package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Answer is one security question and the hash of its answer.
type Answer struct {
	// QuestionID names the question among the caller's set.
	QuestionID string
	// Hash is the caller's hash of the answer (a PHC string); the store
	// never sees the answer itself.
	Hash string
}

// Enrollment is a new account as self-enrollment creates it.
type Enrollment struct {
	// Account holds the person's details: EDIPI, names, email,
	// affiliation, categories, organization, location, work address and
	// phone, and Status, which must be StatusActive or StatusPending.
	// Enroll chooses the username and sets the times, so it ignores
	// Username, ID, Cards and the fields the store maintains.
	Account Account
	// UsernameBase is the username the person would have without a
	// namesake, e.g. "john.b.smith". The caller builds and normalises it.
	UsernameBase string
	// Card is the card being enrolled.
	Card Card
	// PasswordHash is the caller's hash of the new password (a PHC
	// string); it is required.
	PasswordHash string
	// Answers are the three security questions, which must differ, and
	// the hashes of their answers.
	Answers [3]Answer
}

// check rejects enrollments that the schema would accept but that make no
// sense: an account nobody can sign in to, or one disabled from birth; and
// accounts the admin API or an import could not handle: a username base
// that is no username, names or categories an import would refuse. Errors
// about the account wrap ErrInvalidAccount.
func (e *Enrollment) check() error {
	switch {
	case e.UsernameBase == "":
		return fmt.Errorf("%w: empty username base", ErrInvalidAccount)
	case e.PasswordHash == "":
		return errors.New("a password hash is required")
	case e.Account.Status != StatusActive && e.Account.Status != StatusPending:
		return fmt.Errorf("status %q: an enrolled account is %q or %q", e.Account.Status, StatusActive, StatusPending)
	}
	if acct := e.Account; true {
		// (a copy: an empty Kind is read as a DoD account's, and Enroll
		// leaves its argument as it was)
		if _, err := checkIdentity(&acct); err != nil {
			return err
		}
	}
	if err := checkNewUsername(e.UsernameBase); err != nil {
		return fmt.Errorf("username base: %w", err)
	}
	a := &e.Account
	for _, t := range []struct{ field, value string }{
		{"given_name", a.GivenName}, {"middle_name", a.MiddleName}, {"family_name", a.FamilyName}, {"suffix", a.Suffix},
	} {
		if err := checkText(t.field, t.value, maxNameRunes); err != nil {
			return err
		}
	}
	return checkCategories(a.Categories)
}

// maxUsernameAttempts bounds Enroll's retries on username conflicts. A
// conflict needs another node to take the very name chosen, between this
// node's query and its insert, so a handful would do; the bound only
// guarantees that Enroll ends.
const maxUsernameAttempts = 50

// usernameSuffixesFunc returns the suffixes (0 for the base itself) of the
// usernames taken in base's family.
type usernameSuffixesFunc func(ctx context.Context, ex executor, base string) (map[int]bool, error)

// enroll is Enroll with the lookup of taken usernames as a parameter, so
// that tests can make it miss names and exercise the retries that only
// concurrent nodes of a server database would otherwise cause.
func (s *SQLStore) enroll(ctx context.Context, e *Enrollment, takenSuffixes usernameSuffixesFunc) (*Account, error) {
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("store: enroll: %w", err)
	}
	// least is the smallest suffix not yet found taken by a failed insert.
	// Raising it after each conflict guarantees progress even when the
	// lookup cannot see a name, as a concurrent transaction's uncommitted
	// insert is invisible on a server database.
	least := 0
	for range maxUsernameAttempts {
		var (
			a      *Account
			suffix int
		)
		err := s.inWriteTx(ctx, func(ex executor) error {
			// The lookup runs inside the transaction: on SQLite, whose
			// write transactions exclude one another across processes,
			// its answer stays true until the commit.
			taken, err := takenSuffixes(ctx, ex, e.UsernameBase)
			if err != nil {
				return err
			}
			suffix = least
			for taken[suffix] {
				suffix++
			}
			username := usernameWithSuffix(e.UsernameBase, suffix)
			if !ValidUsername(username) {
				// Checked before any row is written; the transaction
				// is rolled back all the same.
				return fmt.Errorf("%w: no username of at most %d characters is free for this base (the next is %d characters)",
					ErrInvalidAccount, MaxUsernameLen, len(username))
			}
			if a, err = enrollAs(ctx, ex, e, username, now()); err != nil {
				return err
			}
			return s.announce(ctx, ex, changeOf(a))
		})
		err = s.dialect.translate(err)
		if errors.Is(err, ErrUsernameTaken) {
			least = suffix + 1
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: enroll: %w", err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("store: enroll: no free username for %q in %d attempts: %w",
		e.UsernameBase, maxUsernameAttempts, ErrUsernameTaken)
}

// enrollAs writes e's rows with the given username and returns the account
// as stored.
func enrollAs(ctx context.Context, ex executor, e *Enrollment, username string, at time.Time) (*Account, error) {
	a := e.Account
	a.Username = username
	a.LastLoginAt = time.Time{}
	id, err := insertAccount(ctx, ex, &a, e.PasswordHash, at)
	if err != nil {
		return nil, err
	}
	card := e.Card
	if card.Kind == "" {
		card.Kind, card.Key = a.Kind, a.Key
	}
	if err := insertCard(ctx, ex, id, card, at); err != nil {
		return nil, err
	}
	// Enrolling a card is as explicit a registration as LinkCard, and
	// lifts an earlier clearing the same way.
	if _, err := ex.exec(ctx, unclearCardSQL, e.Card.Fingerprint); err != nil {
		return nil, err
	}
	if err := insertAnswers(ctx, ex, id, e.Answers); err != nil {
		return nil, err
	}
	return oneAccount(ctx, ex, accountByUsernameSQL, username)
}

// The usernames from base up to, not including, base+":" are exactly those
// that begin with base followed by nothing or by a character before ':',
// which includes the ten digits; the range is one scan of the username
// index. It relies on text comparing bytewise, as SQLite's BINARY
// collation does; a server database compares the column with a bytewise
// ("C") collation to match. Were it ever to miss a name, the UNIQUE
// constraint would still catch the conflict and Enroll try the next one.
const usernamesFromSQL = `SELECT username FROM accounts WHERE username >= ? AND username < ?`

// takenUsernameSuffixes finds, in one query, which of base, base1, base2,
// ... are taken.
func takenUsernameSuffixes(ctx context.Context, ex executor, base string) (map[int]bool, error) {
	rows, err := ex.query(ctx, usernamesFromSQL, base, base+":")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	taken := make(map[int]bool)
	for rows.Next() {
		var username string
		if err := rows.Scan(&username); err != nil {
			return nil, err
		}
		if n, ok := usernameSuffix(username, base); ok {
			taken[n] = true
		}
	}
	return taken, rows.Err()
}

// usernameWithSuffix is base's n'th username: base itself for 0, then
// base1, base2, ...
func usernameWithSuffix(base string, n int) string {
	if n == 0 {
		return base
	}
	return base + strconv.Itoa(n)
}

// usernameSuffix reports whether username is usernameWithSuffix(base, n)
// for some n, and which. "john.b.smithson", "john.b.smith1x" and
// "john.b.smith01" are not in the family of "john.b.smith": only the forms
// Enroll generates are, so that none is mistaken for one it could choose.
func usernameSuffix(username, base string) (int, bool) {
	digits, ok := strings.CutPrefix(username, base)
	if !ok {
		return 0, false
	}
	if digits == "" {
		return 0, true
	}
	if digits[0] == '0' {
		return 0, false
	}
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false // too many digits to be a suffix Enroll would reach
	}
	return n, true
}
