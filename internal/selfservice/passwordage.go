package selfservice

import (
	"strconv"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// Password lifetimes (Config.PasswordMinAge and PasswordMaxAge) apply to
// the passwords self-service knows: a holder may not change the password again
// within the minimum age (ASD STIG V-222544, 24 hours), and a password older
// than the maximum age no longer signs in or registers a card (60 days in
// the STIG) until it is changed on the account page (with the card) or
// reset with the security answers. Resets are exempt from the minimum age:
// someone who forgot a password must not wait a day.

// PasswordExpiry returns when acct's password expires (zero when it never
// does, or there is none) and whether it already has at now. A password
// whose change time is unknown counts as expired: fail closed.
//
// A password an administrator required to be reset (from the help-desk
// console, the admin API or the CLI) has expired when that was required,
// whatever the maximum age.
func (s *Service) PasswordExpiry(acct *store.Account, now time.Time) (expires time.Time, expired bool) {
	if acct != nil && acct.HasPassword && !acct.PasswordResetRequiredAt.IsZero() {
		return acct.PasswordResetRequiredAt, true
	}
	if s.cfg.PasswordMaxAge <= 0 || acct == nil || !acct.HasPassword {
		return time.Time{}, false
	}
	if acct.PasswordChangedAt.IsZero() {
		return time.Time{}, true
	}
	expires = acct.PasswordChangedAt.Add(s.cfg.PasswordMaxAge)
	return expires, !now.Before(expires)
}

// passwordChangeAllowedAt returns when the holder may next change acct's
// password (zero: now).
func (s *Service) passwordChangeAllowedAt(acct *store.Account, now time.Time) time.Time {
	if s.cfg.PasswordMinAge <= 0 || !acct.HasPassword || acct.PasswordChangedAt.IsZero() {
		return time.Time{}
	}
	if at := acct.PasswordChangedAt.Add(s.cfg.PasswordMinAge); now.Before(at) {
		return at
	}
	return time.Time{}
}

// PasswordSummary is the account page's line about the password.
func (s *Service) PasswordSummary(acct *store.Account, now time.Time) string {
	if !acct.HasPassword {
		return "none set"
	}
	line := "changed " + FormatTime(acct.PasswordChangedAt)
	switch expires, expired := s.PasswordExpiry(acct, now); {
	case expired:
		line += "; expired: change it to sign in with it again"
	case !expires.IsZero():
		line += "; expires " + FormatTime(expires)
	}
	return line
}

// ExpiredSentence says that a password expired, and when if known.
func ExpiredSentence(expires time.Time) string {
	if expires.IsZero() {
		return "Your password has expired."
	}
	return "Your password expired on " + FormatTime(expires) + "."
}

// formatAge renders a lifetime the way people say it: "24 hours", "60 days".
func formatAge(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d%time.Hour == 0 && d >= 2*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	case d%time.Minute == 0 && d >= 2*time.Minute:
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	}
	return d.String()
}
