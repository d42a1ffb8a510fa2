package selfservice

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
)

// dummyHash is a hash of a random secret, verified against when there is
// no real hash to verify (an unknown username, an account without a
// password), so the response takes as long as for a real account. It is
// made on first use with the hasher's current parameters.
type dummyHash struct {
	once sync.Once
	hash string
	err  error
}

func (d *dummyHash) get(ctx context.Context, h *credential.Hasher) (string, error) {
	d.once.Do(func() {
		d.hash, d.err = h.Hash(ctx, rand.Text())
	})
	return d.hash, d.err
}

// lookup returns the account with username and its stored password hash;
// nil and "" for an unknown username.
func (s *Service) lookup(ctx context.Context, username string) (*store.Account, string, error) {
	acct, err := s.deps.Accounts.AccountByUsername(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, "", nil
	case err != nil:
		return nil, "", fmt.Errorf("selfservice: looking up account: %w", err)
	}
	creds, err := s.credentials(ctx, acct)
	if err != nil {
		return nil, "", err
	}
	return acct, creds.PasswordHash, nil
}

func (s *Service) credentials(ctx context.Context, acct *store.Account) (*store.Credentials, error) {
	creds, err := s.deps.Accounts.Credentials(ctx, acct.ID)
	if err != nil {
		return nil, fmt.Errorf("selfservice: reading credentials: %w", err)
	}
	return creds, nil
}

// checkPassword verifies password against hash, the stored hash of acct
// (nil for an unknown username; hash "" for an account without a
// password, which never matches), through the guard's account lock
// (Guard.Account). With rehash, a correct password whose hash was made
// with other parameters than the hasher's is stored again with them;
// callers about to replace the password pass false.
func (s *Service) checkPassword(ctx context.Context, acct *store.Account, hash, password string, rehash bool) (LoginResult, error) {
	verify := func(ctx context.Context) (bool, error) {
		if hash == "" {
			dummy, err := s.dummy.get(ctx, s.deps.Hasher)
			if err != nil {
				return false, fmt.Errorf("selfservice: dummy hash: %w", err)
			}
			if _, err := s.deps.Hasher.Verify(ctx, password, dummy); err != nil {
				return false, fmt.Errorf("selfservice: verifying password: %w", err)
			}
			return false, nil
		}
		ok, err := s.deps.Hasher.Verify(ctx, password, hash)
		if err != nil {
			return false, fmt.Errorf("selfservice: verifying password: %w", err)
		}
		return ok, nil
	}
	if acct == nil {
		_, err := verify(ctx)
		return LoginResult{}, err
	}
	res, err := s.guard.Account(ctx, acct, verify)
	if err != nil || !res.OK {
		return res, err
	}
	if rehash {
		s.rehash(ctx, acct.ID, hash, password)
	}
	return res, nil
}

// rehash replaces a correct password's stored hash by one made with the
// hasher's current algorithm and parameters when they differ (a site that
// moved to password_hash pbkdf2, or raised the cost): the password is at
// hand only now. It costs this one sign-in a second hash. A failure
// changes nothing for the sign-in, which has succeeded; the next one tries
// again.
func (s *Service) rehash(ctx context.Context, accountID int64, stored, password string) {
	if !credential.NeedsRehash(stored, s.deps.Hasher.Params()) {
		return
	}
	fresh, err := s.deps.Hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	_, _ = s.deps.Accounts.RehashPassword(ctx, accountID, stored, fresh)
}

// secretOutcome is the outcome of a password or answers that did not
// check out (res.OK false): Locked or Wrong.
func secretOutcome(res LoginResult, known bool) Outcome {
	if res.State.Locked() {
		return Outcome{Status: Locked, Login: res.State}
	}
	return Outcome{Status: Wrong, Login: res.State, Known: known}
}

// normUsername is a typed username as looked up: usernames are stored
// lowercase.
func normUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// checkUsername adds the username's problems to errs.
func checkUsername(errs *FieldErrors, username string) {
	switch {
	case username == "":
		errs.Add("username", "Enter your username.")
	case len(username) > maxUsernameLen || !isCleanText(username):
		errs.Add("username", "Enter a username of at most 64 characters.")
	}
}

// ---- "I already have an account: register this card" ----

// LinkInput is the registration form as sent.
type LinkInput struct {
	Username, Password string
}

// LinkResult is the outcome of LinkCard.
type LinkResult struct {
	Outcome
	Username string         // as looked up, for the form
	Account  *store.Account // the account (Done; Refused when known)
}

// LinkCard registers the card to the holder's existing account, given its
// username and password: under the card's attempt limit (only a wrong
// password counts) and the account's lock. Outcomes: Done, Invalid,
// Wrong, Locked, Limited, Unavailable, Refused (password_expired,
// disabled, edipi_mismatch, too_many_cards, card_taken, account_gone).
func (s *Service) LinkCard(ctx context.Context, card Card, in LinkInput) (LinkResult, error) {
	const event = "card.linked"
	via := map[string]string{"via": "holder"}
	limit := linkLimit(card)
	if err := s.guard.Check(ctx, limit); err != nil {
		return LinkResult{Outcome: s.refusal(ctx, card, err, event, via)}, nil
	}
	res := LinkResult{Username: normUsername(in.Username)}
	checkUsername(&res.Errors, res.Username)
	switch {
	case in.Password == "":
		res.Errors.Add("password", "Enter your password.")
	case len(in.Password) > maxPasswordLen:
		res.Errors.Add("password", "Enter a password of at most 256 characters.")
	}
	if res.Errors.Any() {
		res.Status = Invalid
		return res, nil
	}
	acct, hash, err := s.lookup(ctx, res.Username)
	if err != nil {
		return LinkResult{}, err
	}
	// If the count cannot be given back, the right password is not acted
	// on: no card is linked on a count that cannot be trusted.
	var login LoginResult
	_, err = s.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		login, err = s.checkPassword(ctx, acct, hash, in.Password, true)
		return login.OK, err
	})
	switch {
	case isGuardRefusal(err):
		res.Outcome = s.refusal(ctx, card, err, event, via)
		return res, nil
	case err != nil:
		return LinkResult{}, err
	}
	if !login.OK {
		res.Outcome = secretOutcome(login, acct != nil)
		fields := map[string]string{"via": "holder", "reason": "bad_password"}
		switch {
		case res.Status == Locked:
			fields["username"], fields["reason"] = acct.Username, "locked"
		case acct != nil:
			fields["username"] = acct.Username
		default:
			// The typed username is not recorded: it may be a
			// password typed in the wrong field.
			fields["reason"] = "unknown_username"
		}
		s.audit(ctx, card, event, "failure", fields)
		if res.Status == Wrong {
			res.Errors.Add("", WrongSecret("The username or password is not correct.", res.Outcome))
		}
		return res, nil
	}
	res.Account = acct
	refuse := func(reason string) (LinkResult, error) {
		s.audit(ctx, card, event, "failure", map[string]string{"via": "holder", "username": acct.Username, "reason": reason})
		res.Outcome = refused(reason)
		return res, nil
	}
	expires, expired := s.PasswordExpiry(acct, s.deps.Now())
	switch {
	case expired:
		res, err := refuse("password_expired")
		res.Expires = expires
		return res, err
	case acct.Status == store.StatusDisabled:
		return refuse("disabled")
	case acct.EDIPI != card.Identity.EDIPI:
		return refuse("edipi_mismatch")
	case len(acct.Cards) >= s.cfg.MaxCards:
		return refuse("too_many_cards")
	}
	err = s.deps.Accounts.LinkCard(ctx, acct.ID, card.storeCard())
	switch {
	case errors.Is(err, store.ErrCardTaken):
		return refuse("card_taken")
	case errors.Is(err, store.ErrNotFound):
		return refuse("account_gone")
	case err != nil:
		return LinkResult{}, fmt.Errorf("selfservice: linking card: %w", err)
	}
	s.deps.OnChange()
	s.audit(ctx, card, event, "success", map[string]string{"via": "holder", "username": acct.Username})
	return res, nil
}

// ---- password sign-in ----

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
// (the address), Unavailable (the address's count), Refused (disabled,
// pending, password_expired).
func (s *Service) SignIn(ctx context.Context, in SignInInput) (SignInResult, error) {
	const event = "signin.password"
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
		res.Outcome = limitOutcome(err)
		if res.Status == Limited {
			s.deps.Audit(ctx, event, "failure", map[string]string{"reason": "too_many_attempts_from_address"})
		}
		return res, nil
	}
	acct, hash, err := s.lookup(ctx, res.Username)
	if err != nil {
		return SignInResult{}, err
	}
	login, err := s.checkPassword(ctx, acct, hash, in.Password, true)
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
	switch {
	case login.State.Locked():
		o := secretOutcome(login, true)
		o.Reason = "locked"
		res.Errors.Add("password", "Too many wrong passwords were entered for this account. It is locked until "+FormatTime(login.State.LockedUntil)+".")
		return fail(o)
	case !login.OK:
		o := secretOutcome(login, acct != nil)
		res.Errors.Add("password", WrongSecret("The username or password is not correct.", o))
		o.Reason = "bad_password"
		return fail(o)
	}
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
