package store

import (
	"database/sql"
	"errors"
)

// Errors the store returns, wrapped, for conditions callers act on. Test for
// them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrUsernameTaken = errors.New("username already taken")
	ErrEDIPITaken    = errors.New("an account already exists for this DoD ID")
	ErrCardTaken     = errors.New("card already registered")
	// ErrStatusConflict: TransitionStatus found the account in another status.
	ErrStatusConflict = errors.New("account is not in the expected status")
	// ErrCardCleared: AutoLinkCard refused a card whose registration was
	// cleared; only an explicit LinkCard may register it again.
	ErrCardCleared = errors.New("card registration was cleared")
	// ErrQuestionRepeated: the same security question was answered twice.
	ErrQuestionRepeated = errors.New("security questions must differ")
)

// errorForUnique maps a violated UNIQUE or PRIMARY KEY constraint, named
// "table.column" whatever the dialect ("table.a, table.b" for one over
// several columns), to the error that explains it.
var errorForUnique = map[string]error{
	"accounts.username": ErrUsernameTaken,
	"accounts.edipi":    ErrEDIPITaken,
	"cards.fingerprint": ErrCardTaken,

	"security_answers.account_id, security_answers.question_id": ErrQuestionRepeated,
}

// translate turns the driver errors that mean something to callers into the
// package's sentinel errors and passes every other error through unchanged.
func (d dialect) translate(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if constraint, ok := d.uniqueViolation(err); ok {
		if mapped, ok := errorForUnique[constraint]; ok {
			return mapped
		}
	}
	return err
}
