package selfservice

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cacgate/cacgate/internal/ui"
)

// The keys the flow counts attempts under. A card's fingerprint is
// lowercase hex; a decoy username is only ever stored as its tag.
func identityKey(card Card) string { return "identity:" + card.Identity.FingerprintHex }
func linkKey(card Card) string     { return "link:" + card.Identity.FingerprintHex }
func resetKey(card Card) string    { return "reset:" + card.Identity.FingerprintHex }

// decoyKey counts the wrong answers given for a username that cannot be
// reset, per card and username (case folded, as usernames are looked up).
func (f *Flow) decoyKey(cardFingerprint, username string) string {
	return "reset-decoy:" + cardFingerprint + ":" + f.deps.Sealer.tag(strings.ToLower(username))
}

// errThrottle marks a Throttle failure, which the handlers answer with
// throttleUnavailable rather than as an internal error.
var errThrottle = errors.New("enroll: attempt counts unavailable")

// throttleError wraps a Throttle failure so that it matches errThrottle and
// still carries the cause.
type throttleError struct{ err error }

func (e throttleError) Error() string        { return errThrottle.Error() + ": " + e.err.Error() }
func (e throttleError) Is(target error) bool { return target == errThrottle }
func (e throttleError) Unwrap() error        { return e.err }

// refundTimeout bounds a refund, which runs even when the request that
// owes it was cancelled: otherwise a person who gives up on a slow page
// loses an attempt that never failed.
const refundTimeout = 5 * time.Second

// checkKeyLen fails closed on a key longer than promised, which a card
// fingerprint of the wrong form would make: counting it under a shortened
// or rejected name would fail open, or not at all.
func checkKeyLen(key string) error {
	if len(key) > MaxThrottleKeyLen {
		return throttleError{errors.New("key too long")}
	}
	return nil
}

// blocked reports whether key has used up its max attempts in the window.
func (f *Flow) blocked(ctx context.Context, key string, now time.Time, window time.Duration, max int) (bool, error) {
	n, _, err := f.failures(ctx, key, now, window)
	return n >= max, err
}

// failures returns key's attempts in the window at now and when the window
// began.
func (f *Flow) failures(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	if err := checkKeyLen(key); err != nil {
		return 0, time.Time{}, err
	}
	n, since, err := f.deps.Throttle.Failures(ctx, key, now, window)
	if err != nil {
		return 0, time.Time{}, throttleError{err}
	}
	return n, since, nil
}

// take counts an attempt for key in advance; false means no attempts are
// left. An error never allows the attempt.
func (f *Flow) take(ctx context.Context, key string, now time.Time, window time.Duration, max int) (bool, error) {
	if err := checkKeyLen(key); err != nil {
		return false, err
	}
	ok, err := f.deps.Throttle.Take(ctx, key, now, window, max)
	if err != nil {
		return false, throttleError{err}
	}
	return ok, nil
}

// refund takes back an attempt counted by take.
func (f *Flow) refund(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundTimeout)
	defer cancel()
	if err := f.deps.Throttle.Refund(ctx, key); err != nil {
		return throttleError{err}
	}
	return nil
}

// throttleUnavailable answers an attempt the throttle could not count:
// fail closed, with the flow's "try again later" page. nothing says what
// was left undone ("No account was created."). The caller audits.
func (f *Flow) throttleUnavailable(w http.ResponseWriter, r *http.Request, nothing string) error {
	w.Header().Set("Retry-After", "60")
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusServiceUnavailable, Code: "attempts_unavailable",
		Title: "Try again later", Detail: "Your attempt cannot be checked right now. " + nothing,
		Steps: []string{"Wait a minute and try again."}, Contact: f.cfg.Contact, Retry: true})
}

// throttleUnavailableReason is the audit reason of throttleUnavailable.
const throttleUnavailableReason = "throttle_unavailable"
