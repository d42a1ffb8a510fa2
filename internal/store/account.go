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

// Credential kinds, as the store keeps them (cacid.Kind's values; the
// store does not import cacid).
const (
	KindCAC  = "cac"
	KindPIV  = "piv"
	KindPIVI = "piv-i"
	KindECA  = "eca"
	// KindUtility keys a utility account (TypeUtility) by its username:
	// it belongs to no credential holder, and no credential of a person
	// can be keyed like it (checkIdentity refuses it for CreateAccount).
	KindUtility = "utility"
)

// AccountType says whom an account belongs to.
type AccountType string

const (
	// TypePerson accounts belong to one card holder (the default).
	TypePerson AccountType = "person"
	// TypeUtility accounts belong to no single person: a system that
	// presents a DoD non-person-entity certificate, answered for by a
	// sponsor (a person's account). They have no DoD ID.
	TypeUtility AccountType = "utility"
)

// Reasons the gateway itself disabled an account (Account.DisabledReason).
const (
	DisabledInactive = "inactive" // no sign-in for inactive_after
	DisabledExpired  = "expired"  // a utility account past its ExpiresAt
	DisabledSponsor  = "sponsor"  // a utility account whose sponsor is not active
)

// Account is one person (or, TypeUtility, one system) known to cacgate.
type Account struct {
	ID       int64
	Username string // unique, compared exactly as stored
	// EDIPI is the DoD ID number: unique, so one person holds one
	// account. Only DoD accounts (Kind KindCAC) have one; "" for others.
	EDIPI string
	// Kind is the account's credential kind (KindCAC, KindPIV, KindPIVI,
	// KindECA) and Key its stable key: the EDIPI for KindCAC, the card
	// UUID for PIV and PIV-I, the ECA key (cacid.Identity.Key) for ECA.
	// Unique per kind and key. CreateAccount and Enroll take an empty
	// Kind as KindCAC with Key the EDIPI.
	Kind, Key string

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

	// Type is TypeUtility or, for a person, empty (TypePerson is how the
	// database and the admin API spell it).
	// SponsorID and ExpiresAt are a utility account's sponsor and end
	// (zero: none); see CreateUtilityAccount.
	Type      AccountType
	SponsorID int64
	ExpiresAt time.Time
	// DisabledReason is why the gateway disabled the account (Disabled*),
	// "" when it is not disabled or an administrator did it.
	DisabledReason string
	// MailOptOut are the optional e-mail notices the person turned off.
	MailOptOut []string
	// LogonAt and LogonFrom are the latest recorded logon (the banner
	// accepted) and the client address; PrevLogonAt, PrevLogonFrom the
	// logon before it and PrevFailed the failed sign-in attempts between
	// the two: what the last sign-in notice shows. See RecordLogon.
	LogonAt, PrevLogonAt     time.Time
	LogonFrom, PrevLogonFrom string
	PrevFailed               int

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

	// Kind and Key are what the card was registered as (see Account);
	// an empty Kind is stored as KindCAC. Informational: an account is
	// found by its own kind and key, or by a card's fingerprint.
	Kind, Key string

	NotAfter   time.Time
	CreatedAt  time.Time // set by the store
	LastUsedAt time.Time // zero if never
}
