package roster

import (
	"context"
	"strconv"
)

// Record is what the roster says about one personnel record, minus the
// identifying secrets (the gateway never needs to see those).
type Record struct {
	EDIPI    string // the 10-digit DoD ID the record belongs to
	Category string // e.g. "Active Army", "Army Reserve", "DA Civilian", "Contractor"

	Last, First, Middle string
	Organization        string
}

// Claim is what the card holder typed, plus the DoD ID read from their card.
type Claim struct {
	EDIPI string // from the verified card, not typed
	SSN   string // either SSN or FIN is set
	FIN   string
	DOB   string // YYYY-MM-DD
	PEBD  string // YYYY-MM-DD, or "" when the form did not ask for it
}

// Result of a verification. Match false means no account may be issued.
type Result struct {
	Match bool
	// Records holds every record of the EDIPI that the claim matched: two
	// for a dual account (say Army Retired and DA Civilian). Empty when
	// Match is false.
	Records []Record
}

// Source is an authoritative personnel roster.
type Source interface {
	// Verify reports whether the claim matches the roster's records of
	// the claim's EDIPI. A claim that does not match, whatever the reason,
	// is Result{Match: false} and a nil error: the card holder is never told
	// which value was wrong. An error wrapping ErrUnavailable means the
	// roster could not answer (the caller says "try again later" and
	// issues nothing); an *InputError or ErrInvalidEDIPI means the claim
	// failed ValidateClaim, which callers should run first.
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
	_ Source = (*CSV)(nil)
	_ Source = (*HTTP)(nil)
)
