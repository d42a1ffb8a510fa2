package roster

import (
	"context"
	"strconv"
)

// Record is what the roster says about one personnel record, minus the
// identifying secrets (the gateway never needs to see those).
type Record struct {
	EDIPI    string // the 10-digit DoD ID the record belongs to; "" for a record keyed otherwise
	Category string // e.g. "Active Army", "Army Reserve", "DA Civilian", "Contractor"

	// CardUUID (lower-case canonical) and Email (lower case) are the
	// record's keys for non-DoD credentials: a federal PIV or PIV-I card's
	// UUID, an ECA certificate's e-mail address. Either may be empty.
	CardUUID string
	Email    string

	Last, First, Middle string
	Organization        string
}

// Claim is what the card holder typed, plus the key read from their
// verified certificate: exactly one of EDIPI (a DoD card), CardUUID (a
// federal PIV or PIV-I card) and Email (an ECA certificate) is set. None of
// them is ever typed.
type Claim struct {
	EDIPI    string
	CardUUID string // lower-case canonical UUID of the card's urn:uuid SAN
	Email    string // the certificate's rfc822Name SAN, lower case
	SSN      string // either SSN or FIN is set
	FIN      string
	DOB      string // YYYY-MM-DD
	PEBD     string // YYYY-MM-DD, or "" when the form did not ask for it
}

// Result of a verification. Match false means no account may be issued.
type Result struct {
	Match bool
	// Records holds every record of the EDIPI that the claim matched: two
	// for a dual account (say Army Retired and DA Civilian). Empty when
	// Match is false.
	Records []Record
	// NoRecord: no match because the roster holds no record of the
	// claim's card UUID or e-mail at all (the HTTP service said so with
	// "known":false). Only for those keys, never for an EDIPI; the caller
	// may then offer sponsorship instead.
	NoRecord bool
}

// KeyKind names what a roster record is looked up by.
type KeyKind string

// The keys a roster may be looked up by, and the CSV columns and JSON
// fields that carry them.
const (
	KeyEDIPI    KeyKind = "edipi"     // DoD CAC: the 10-digit DoD ID
	KeyCardUUID KeyKind = "card_uuid" // federal PIV, PIV-I: the card UUID
	KeyEmail    KeyKind = "email"     // ECA: the certificate's e-mail address
)

// ParseKeyKind returns the KeyKind named s.
func ParseKeyKind(s string) (KeyKind, bool) {
	switch k := KeyKind(s); k {
	case KeyEDIPI, KeyCardUUID, KeyEmail:
		return k, true
	}
	return "", false
}

// Presence is what a roster says, before any secret is typed, about the
// records of a card UUID or e-mail address.
type Presence struct {
	// Known: the roster may hold records of the key, so the identity form
	// is shown; false sends the holder to sponsorship (or refuses them).
	Known bool
	// PEBD is what the form asks about the pay entry base date, as
	// NeedsPEBD answers for an EDIPI.
	PEBD PEBDNeed
}

// KeyedSource is a Source that also holds records keyed by the card UUID
// or e-mail address of non-DoD credentials. Verify then accepts claims
// carrying those keys.
type KeyedSource interface {
	Source
	// Lookup reports whether the roster may hold records of the key, and
	// what the form asks about the PEBD. Only the verified holder of the
	// credential asks, about their own key: this tells a person whether
	// the roster knows them, and nobody else.
	Lookup(ctx context.Context, kind KeyKind, value string) (Presence, error)
}

// Source is an authoritative personnel roster.
type Source interface {
	// Verify reports whether the claim matches the roster's records of
	// the claim's key (its EDIPI; for a KeyedSource also a card UUID or
	// e-mail address). A claim that does not match, whatever the reason,
	// is Result{Match: false} and a nil error: the card holder is never told
	// which value was wrong. An error wrapping ErrUnavailable means the
	// roster could not answer (the caller says "try again later" and
	// issues nothing); an *InputError, ErrInvalidEDIPI or ErrInvalidKey
	// means the claim failed ValidateClaim, which callers should run
	// first (ErrInvalidKey also: a key this source does not answer for).
	Verify(ctx context.Context, c Claim) (Result, error)

	// NeedsPEBD reports whether the enrollment form asks for the pay entry
	// base date for this EDIPI, and whether it must be given. See the
	// package documentation for what each source answers and why.
	NeedsPEBD(ctx context.Context, edipi string) (PEBDNeed, error)
}

// PEBDNeed is whether the enrollment form asks for the pay entry base date.
type PEBDNeed int

const (
	// PEBDNotAsked: the form does not ask; the claim carries no PEBD.
	PEBDNotAsked PEBDNeed = iota
	// PEBDOptional: the form asks for it "if you have one" and accepts
	// an empty field; the source decides whether the claim needs it.
	PEBDOptional
	// PEBDRequired: the form asks for it and refuses an empty field, for
	// the record has one and the claim cannot match without it.
	PEBDRequired
)

// Asked reports whether the form shows the PEBD field.
func (n PEBDNeed) Asked() bool { return n == PEBDOptional || n == PEBDRequired }

func (n PEBDNeed) String() string {
	switch n {
	case PEBDNotAsked:
		return "not asked"
	case PEBDOptional:
		return "optional"
	case PEBDRequired:
		return "required"
	}
	return "PEBDNeed(" + strconv.Itoa(int(n)) + ")"
}

// Both sources answer for the same interface; a compile-time reminder.
var (
	_ KeyedSource = (*CSV)(nil)
	_ KeyedSource = (*HTTP)(nil)
)
