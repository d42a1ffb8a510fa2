package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
)

// Error is the error of an admin operation: the HTTP status the admin API
// answers with, and the message it gives (as {"error": message}) and the
// CLI prints. Any other error from an operation is an internal one (500).
type Error struct {
	Status int
	Err    error
	// Cause is why the account database could not serve the operation
	// (store.Cause: disk_full, read_only, unreachable …), for a 503 of
	// an unavailable database; "" otherwise. The admin API answers it
	// with Retry-After, and the audit entry carries it.
	Cause string
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Reason is the audit reason code of the error's status.
func (e *Error) Reason() string {
	switch e.Status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnprocessableEntity:
		return "invalid_records"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "error"
}

// Errorf returns an *Error with status and a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// BadRequest wraps err as a 400 error.
func BadRequest(err error) error { return &Error{Status: http.StatusBadRequest, Err: err} }

func unprocessable(err error) error { return &Error{Status: http.StatusUnprocessableEntity, Err: err} }

func notFound(format string, args ...any) error { return Errorf(http.StatusNotFound, format, args...) }

func conflict(format string, args ...any) error { return Errorf(http.StatusConflict, format, args...) }

// ReasonOf is the audit reason for an admin operation's error: a short
// code, never the error text, which may carry input.
func ReasonOf(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return "error"
	}
	return e.Reason()
}

// CauseOf is why the account database could not serve an operation that
// failed with err (Error.Cause), or "".
func CauseOf(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return ""
	}
	return e.Cause
}

// Unavailable is the error of an operation the account database could not
// serve, for cause (a store.Cause name): 503, saying why in words and that
// the operation was not carried out, so that an administrator disabling
// someone on a full disk learns that the account is as it was, and why.
func Unavailable(cause string) error {
	return &Error{Status: http.StatusServiceUnavailable, Cause: cause,
		Err: fmt.Errorf("%s (%s): the request was not carried out; try again once that is fixed", store.Explain(cause), cause)}
}

// storeError turns a store error into one that names what is wrong without
// the database's internals, which go to the log instead.
func (s *Service) storeError(err error, username string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("no account %q", username)
	case errors.Is(err, store.ErrUsernameTaken):
		return conflict("username %q is already taken", username)
	case errors.Is(err, store.ErrEDIPITaken):
		return conflict("an account already exists for this DoD ID")
	case errors.Is(err, store.ErrCardTaken):
		return conflict("the card is already registered")
	case errors.Is(err, store.ErrStatusConflict):
		return conflict("account %q is not in the expected status", username)
	case errors.Is(err, store.ErrInvalidAccount):
		// The store's rule, in its words, which never quote the value.
		msg := err.Error()
		if i := strings.Index(msg, store.ErrInvalidAccount.Error()); i >= 0 {
			msg = msg[i:]
		}
		return BadRequest(errors.New(msg))
	case store.Unavailable(err):
		cause := store.Cause(err)
		s.logger().Error("account database unavailable", zap.String("cause", cause), zap.Error(err))
		return Unavailable(cause)
	}
	s.logger().Error("account database error", zap.Error(err))
	return &Error{Status: http.StatusInternalServerError, Err: errors.New("account database error (details in the log)")}
}

// Clip shortens hostile input quoted back in an error.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
