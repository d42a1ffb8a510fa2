package selfservice

import (
	"strconv"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// Status says how a use case ended.
type Status int

// Statuses of an Outcome.
const (
	// Done: the use case did what was asked.
	Done Status = iota
	// Invalid: the input has problems (Outcome.Errors); nothing was
	// checked or changed.
	Invalid
	// Wrong: a secret (identity facts, password, answers) did not check
	// out; Outcome.Login.Remaining tries are left when Outcome.Known.
	Wrong
	// Locked: the account is locked until Outcome.Login.LockedUntil.
	Locked
	// Limited: this card (or client address) has used up its attempts.
	Limited
	// Unavailable: the account database cannot be read or written (the
	// attempt counts, or the accounts: Outcome.Cause says why), so the
	// request was refused and nothing was changed; the person may send
	// it again once the database is back. It has been audited.
	Unavailable
	// RosterUnavailable: the personnel roster cannot be reached.
	RosterUnavailable
	// Refused: a rule refuses the request (Outcome.Reason).
	Refused
	// Restart: the sealed state of a multi-step form is missing, expired,
	// altered or stale: the person starts that form over.
	Restart
	// Replayed: the sealed state was already used (a form sent again, or
	// a copy of it): nothing was done, and the person starts over.
	Replayed
)

// Outcome is how a use case ended, beyond its result data.
type Outcome struct {
	Status Status
	// Errors are the input's problems (Invalid, Wrong, and some Refused
	// answered on the form).
	Errors FieldErrors
	// Login is the account's sign-in state after the attempt (Wrong,
	// Locked).
	Login store.LoginState
	// Known is true when a Wrong secret counted against a lock: an
	// account's, or the decoy that stands for an unknown username (so
	// that the answer does not tell them apart); Login.Remaining means
	// something.
	Known bool
	// Reason is the machine-readable reason of a Refused outcome, as
	// audited.
	Reason string
	// Expires is when the password expired, for Reason
	// "password_expired" (zero when unknown).
	Expires time.Time
	// Cause is why the database could not serve an Unavailable request:
	// store.Cause's name (disk_full, unreachable …), or "error".
	Cause string
}

func outcome(st Status) Outcome { return Outcome{Status: st} }

// refused is a Refused outcome for reason.
func refused(reason string) Outcome { return Outcome{Status: Refused, Reason: reason} }

// limitOutcome turns a guard refusal (ErrLimited, or a count failure) into
// an outcome.
func limitOutcome(err error) Outcome {
	if isLimited(err) {
		return outcome(Limited)
	}
	return outcome(Unavailable)
}

// ReasonAddressLimited is the Reason of a Limited outcome that the client
// address's attempts_per_ip refused (rather than the card's own count).
const ReasonAddressLimited = "too_many_attempts_from_address"

// FieldError is one problem on a form: Field is the id of the input it
// belongs to ("" for a problem with the whole form).
type FieldError struct {
	Field, Message string
}

// FieldErrors collects a form's problems in form order.
type FieldErrors struct {
	List []FieldError
	By   map[string]string
}

// Add records message for field; a field's first problem wins.
func (e *FieldErrors) Add(field, message string) {
	if e.By == nil {
		e.By = map[string]string{}
	}
	if field != "" {
		if _, dup := e.By[field]; dup {
			return
		}
		e.By[field] = message
	}
	e.List = append(e.List, FieldError{field, message})
}

// Any reports whether there are problems.
func (e *FieldErrors) Any() bool { return len(e.List) > 0 }

// WrongSecret is the message for a secret that did not verify, saying how
// many tries remain when known.
func WrongSecret(lead string, o Outcome) string {
	if !o.Known {
		return lead
	}
	switch o.Login.Remaining {
	case 1:
		return lead + " You have 1 try remaining before the account is locked."
	default:
		return lead + " You have " + strconv.Itoa(o.Login.Remaining) + " tries remaining before the account is locked."
	}
}
