package selfservice

import (
	"context"
	"errors"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
)

// Password sign-in, for people without a card reader ("I don't have a
// CAC/PIV"), where the site turns it on.

// SignInInput is the sign-in form as sent. Address is the client's
// address, counted against attempts_per_ip.
type SignInInput struct {
	Username, Password string
	Address            string
}

// SignInResult is the outcome of SignIn.
type SignInResult struct {
	Outcome
	Username string         // as looked up, for the form
	Account  *store.Account // Done: whom to sign in
}

// SignIn checks a password sign-in (for people without a card reader):
// under the client address's limit (a correct sign-in is given back: the
// gateway calls SignedIn once the session started) and the account's
// lock. A disabled account, one waiting for approval, or an expired
// password is refused. Outcomes: Done, Invalid, Wrong, Locked, Limited
// (the address), Unavailable (the account database: the address's count,
// the account or its lock; audited, the address's attempt given back),
// Refused (disabled, pending, password_expired). Username is the one
// typed, for the form, whatever the outcome.
func (s *Service) SignIn(ctx context.Context, in SignInInput) (SignInResult, error) {
	res, err := s.signIn(ctx, in)
	if errors.Is(err, ErrUnavailable) {
		// Nothing was checked: the address's attempt goes back, as for
		// a busy hasher.
		s.giveBackAddress(ctx, in.Address)
		res, err = SignInResult{Outcome: s.unavailableOutcome(ctx, nil, err, eventSignIn, nil)}, nil
	}
	res.Username = normUsername(in.Username)
	return res, err
}

// eventSignIn is the audit event of a password sign-in.
const eventSignIn = "signin.password"

func (s *Service) signIn(ctx context.Context, in SignInInput) (SignInResult, error) {
	const event = eventSignIn
	res := SignInResult{Username: normUsername(in.Username)}
	if res.Username == "" || len(res.Username) > maxUsernameLen {
		res.Errors.Add("username", "Enter your username.")
	}
	if in.Password == "" || len(in.Password) > maxPasswordLen {
		res.Errors.Add("password", "Enter your password.")
	}
	if res.Errors.Any() {
		res.Status = Invalid
		return res, nil
	}
	// Each account locks after three wrong passwords; this bounds trying
	// one password on many accounts from one address.
	if err := s.guard.TakeAddress(ctx, in.Address); err != nil {
		if !isLimited(err) {
			// Nothing was counted: nothing to give back.
			res.Outcome = s.unavailableOutcome(ctx, nil, err, event, nil)
			return res, nil
		}
		res.Outcome = limitOutcome(err)
		s.deps.Audit(ctx, event, "failure", map[string]string{"reason": ReasonAddressLimited})
		return res, nil
	}
	acct, hash, err := s.lookup(ctx, res.Username)
	if err != nil {
		return SignInResult{}, err
	}
	// An unknown username is checked against the dummy hash under its
	// decoy's count: the same answers, count, lock and time as an
	// account's with a wrong password.
	login, err := s.checkPassword(ctx, acct, res.Username, hash, in.Password, true)
	if errors.Is(err, credential.ErrBusy) {
		// The hasher turned the check away: nothing was tried, so the
		// address's attempt goes back as the account's did.
		if rerr := s.guard.RefundAddress(ctx, in.Address); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return SignInResult{}, err
	}
	fields := map[string]string{}
	if acct != nil {
		// Only a known username is recorded: someone may type a
		// password into the username field.
		fields["username"] = acct.Username
	}
	fail := func(o Outcome) (SignInResult, error) {
		o.Errors = res.Errors // the messages added for the form
		res.Outcome = o
		fields["reason"] = o.Reason
		s.deps.Audit(ctx, event, "failure", fields)
		return res, nil
	}
	if !login.OK {
		o := secretOutcome(login)
		switch {
		case acct == nil:
			// Only the audit log tells an unknown username apart.
			o.Reason = "unknown_username"
		case o.Status == Locked:
			o.Reason = "locked"
		default:
			o.Reason = "bad_password"
		}
		if o.Status == Locked {
			res.Errors.Add("password", "Too many wrong passwords were entered for this account. It is locked until "+FormatTime(login.State.LockedUntil)+".")
		} else {
			res.Errors.Add("password", WrongSecret("The username or password is not correct.", o))
		}
		return fail(o)
	}
	// Only a correct password may tell the account's state.
	switch acct.Status {
	case store.StatusDisabled:
		res.Errors.Add("", "This account is disabled. Contact the site's administrators.")
		return fail(refused("disabled"))
	case store.StatusPending:
		// No session: every page would refuse it anyway.
		res.Errors.Add("", "This account is waiting for approval by the site's administrators. You can sign in once it is approved.")
		return fail(refused("pending"))
	}
	// Only someone who knows the password learns that it expired.
	if expires, expired := s.PasswordExpiry(acct, s.deps.Now()); expired {
		o := refused("password_expired")
		o.Expires = expires
		return fail(o)
	}
	s.deps.Audit(ctx, event, "success", fields)
	res.Account = acct
	return res, nil
}

// SignedIn gives back the client address's attempt of a sign-in that
// started a session: a correct password is not an attempt against the
// per-address limit, since people behind one NAT sign in all day.
func (s *Service) SignedIn(ctx context.Context, address string) error {
	return s.guard.RefundAddress(ctx, address)
}

// SessionUnavailable audits a sign-in whose password was right but whose
// session could not be recorded in the account database (session_limit
// needs the record), so no session was started: signin.password, outcome
// unavailable, with the username and err's cause, repeatable as the other
// refusals for an unavailable database. It returns the outcome to answer
// with.
func (s *Service) SessionUnavailable(ctx context.Context, username string, err error) Outcome {
	return s.unavailableOutcome(ctx, nil, accountsFailed("recording the session", err), eventSignIn,
		map[string]string{"username": username, "step": "session"})
}
