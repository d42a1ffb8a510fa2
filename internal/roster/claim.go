package roster

import (
	"bytes"
	"errors"
	"time"
)

// earliestDate bounds the dates a card holder may type: nobody holding a
// CAC today was born, or entered pay status, before it.
const earliestDate = "1900-01-01"

// Messages shown next to the form's fields. They describe the expected
// form and never repeat what was typed.
const (
	msgIDMissing  = "Enter your Social Security Number or, if you have none, your Foreign Identification Number."
	msgIDBoth     = "Enter either a Social Security Number or a Foreign Identification Number, not both."
	msgSSNFormat  = "Enter the 9 digits of your Social Security Number."
	msgSSNInvalid = "That is not a valid Social Security Number."
	msgFINFormat  = "Enter your Foreign Identification Number: 1 to 12 letters and digits."
	msgDOBMissing = "Enter your date of birth."
	msgDOBFormat  = "Enter your date of birth as YYYY-MM-DD."
	msgDOBRange   = "Enter a date of birth between 1900-01-01 and today."
	msgPEBDFormat = "Enter your pay entry base date as YYYY-MM-DD."
	msgPEBDRange  = "Enter a pay entry base date between 1900-01-01 and today."
)

// inputError returns a fresh error each time, so a caller that edits one
// (to translate it, say) cannot change what others see.
func inputError(field, message string) *InputError {
	return &InputError{Field: field, Message: message}
}

// ValidateClaim checks the form of a claim without consulting any roster:
// the claim has one well-formed key (an EDIPI, card UUID or e-mail address
// from the certificate), exactly one of SSN and FIN is given and well
// formed, the DOB is a real date from 1900-01-01 to today, and the PEBD,
// when given, too. It returns ErrInvalidEDIPI, ErrInvalidKey or an *InputError for the
// first problem in form order, so the form can show it next to its field.
func ValidateClaim(c Claim) error {
	var n normalizedClaim
	defer n.wipe()
	return n.parse(c, time.Now())
}

// idKind says which identifier a claim carries.
type idKind int

const (
	idSSN idKind = iota + 1
	idFIN
)

// normalizedClaim is a claim's secrets in their canonical forms, held only
// while a verification runs; wipe erases them.
type normalizedClaim struct {
	keyKind   KeyKind
	keyValue  string // an EDIPI, card UUID or e-mail address: not a secret
	kind      idKind
	id        secret
	dob, pebd secret
}

func (n *normalizedClaim) wipe() {
	n.id.wipe()
	n.dob.wipe()
	n.pebd.wipe()
}

// parse validates c as ValidateClaim does and fills n. On error n may hold
// part of the claim; the caller wipes it either way.
func (n *normalizedClaim) parse(c Claim, now time.Time) error {
	var err error
	if n.keyKind, n.keyValue, err = c.key(); err != nil {
		return err
	}
	hasSSN, hasFIN := len(trimBlanks(c.SSN)) > 0, len(trimBlanks(c.FIN)) > 0
	switch {
	case hasSSN && hasFIN:
		return inputError("fin", msgIDBoth)
	case hasSSN:
		n.kind = idSSN
		if err := parseSSN(c.SSN, &n.id); errors.Is(err, errSSNNeverIssued) {
			return inputError("ssn", msgSSNInvalid)
		} else if err != nil {
			return inputError("ssn", msgSSNFormat)
		}
	case hasFIN:
		n.kind = idFIN
		if parseFIN(c.FIN, &n.id) != nil {
			return inputError("fin", msgFINFormat)
		}
	default:
		return inputError("ssn", msgIDMissing)
	}

	latest := latestToday(now)
	if len(trimBlanks(c.DOB)) == 0 {
		return inputError("dob", msgDOBMissing)
	}
	if parseDate(c.DOB, &n.dob) != nil {
		return inputError("dob", msgDOBFormat)
	}
	if !inRange(n.dob.bytes(), latest) {
		return inputError("dob", msgDOBRange)
	}
	if len(trimBlanks(c.PEBD)) == 0 {
		return nil
	}
	if parseDate(c.PEBD, &n.pebd) != nil {
		return inputError("pebd", msgPEBDFormat)
	}
	if !inRange(n.pebd.bytes(), latest) {
		return inputError("pebd", msgPEBDRange)
	}
	return nil
}

// latestToday is today's date where the calendar is furthest ahead
// (UTC+14), so nobody is refused a date that is today where they are.
func latestToday(now time.Time) []byte {
	return now.UTC().Add(14*time.Hour).AppendFormat(nil, time.DateOnly)
}

// inRange reports whether a canonical date lies from earliestDate to latest.
func inRange(date, latest []byte) bool {
	return bytes.Compare(date, []byte(earliestDate)) >= 0 && bytes.Compare(date, latest) <= 0
}
