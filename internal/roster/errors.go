package roster

import (
	"errors"
	"fmt"
)

// ErrUnavailable is wrapped by every error that means the roster could not
// answer: file source closed, service down, slow or replying nonsense. The
// caller shows "try again later" and issues nothing.
var ErrUnavailable = errors.New("roster: unavailable")

// ErrInvalidEDIPI is returned for a claim whose EDIPI is not a 10-digit DoD
// ID. The EDIPI comes from a verified card, so this is a caller bug rather
// than something to show next to a form field.
var ErrInvalidEDIPI = errors.New("roster: the claim's EDIPI is not a 10-digit DoD ID")

// InputError reports a typed value that is not even well formed, so the
// form can show Message next to Field ("ssn", "fin", "dob" or "pebd").
// Message is written for the card holder and never repeats the value.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return "roster: " + e.Field + ": " + e.Message }

// FileError reports a roster file whose content is malformed. Problem
// names the column and what is wrong with it, never the cell's value: the
// cell may hold a Social Security Number, and this error ends up in logs.
type FileError struct {
	Path    string
	Line    int // 1-based; 0 when the problem is not on one line
	Problem string
}

func (e *FileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("roster: %s: %s", e.Path, e.Problem)
	}
	return fmt.Sprintf("roster: %s line %d: %s", e.Path, e.Line, e.Problem)
}

// unavailable builds an error wrapping ErrUnavailable and, when not nil,
// cause. Callers pass only facts that cannot carry a secret: status codes,
// sizes, names from the protocol, and errors of the network stack.
func unavailable(reason string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %s", ErrUnavailable, reason)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, reason, cause)
}
