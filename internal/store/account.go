package store

import "time"

// Status is where an account stands in its life cycle.
type Status string

const (
	// StatusActive accounts may sign in.
	StatusActive Status = "active"
	// StatusDisabled accounts are refused sign-in but kept, with their
	// cards, so that the DoD ID and the cards cannot be re-registered to a
	// fresh account behind an administrator's back.
	StatusDisabled Status = "disabled"
	// StatusPending accounts await an administrator's approval.
	StatusPending Status = "pending"
)

// Account is one person known to cacgate.
type Account struct {
	ID       int64
	Username string // unique, compared exactly as stored
	EDIPI    string // DoD ID number; unique, so one person holds one account

	GivenName, MiddleName, FamilyName, Suffix string

	Email       string
	Affiliation string
	Status      Status

	// Categories are the person's categories in the personnel roster, in
	// its words ("Active Army", "DA Civilian"): more than one for a dual
	// account. Nil if none.
	Categories []string
	// Groups are the access groups an administrator put the account in
	// ("ops", "finance.readers"), which access policies decide on: sorted,
	// each a ValidGroupName, no repeats. Nil if none. Set with AddGroups
	// and RemoveGroups; CreateAccount and ImportAccounts store them too.
	Groups       []string
	Organization string
	Location     string // geographic location, e.g. "North America"
	WorkAddress  string
	Phone        string

	// CreatedAt and UpdatedAt are set by the store. UpdatedAt moves when
	// the account row itself changes, not when cards are linked or used,
	// nor with the password, answers and failed sign-ins, which keep times
	// of their own.
	CreatedAt, UpdatedAt time.Time
	LastLoginAt          time.Time // zero if never

	// HasPassword, PasswordChangedAt and LockedUntil are filled by the
	// Account* getters and the List* methods, and ignored by CreateAccount:
	// passwords are set by Enroll and SetPassword, locks by
	// TakeLoginAttempt, RecordLoginFailure and Unlock. The password hash itself is never part
	// of an Account; see Credentials.
	HasPassword       bool
	PasswordChangedAt time.Time // zero if never
	// LockedUntil is when the account's latest password lockout ends or
	// ended: it is locked while LockedUntil is after the current time.
	// Zero if it was never locked or has been unlocked.
	LockedUntil time.Time
	// PasswordResetRequiredAt is when an administrator required a new
	// password at the next sign-in (RequirePasswordReset); zero if not
	// required. Setting a password clears it.
	PasswordResetRequiredAt time.Time

	// Cards is filled by the Account* getters and ListAccounts, oldest
	// first, and inserted along with the account by CreateAccount.
	Cards []Card
}

// Card is a CAC certificate linked to an account.
type Card struct {
	// Fingerprint is the lowercase hex SHA-256 of the certificate's DER
	// encoding (64 characters). It is unique across all accounts, so a
	// card identifies at most one person.
	Fingerprint string
	AccountID   int64

	Subject, Issuer, Serial string

	NotAfter   time.Time
	CreatedAt  time.Time // set by the store
	LastUsedAt time.Time // zero if never
}
