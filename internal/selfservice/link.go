package selfservice

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cacgate/cacgate/cacid"
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
		return nil, "", accountsFailed("looking up account", err)
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
		return nil, accountsFailed("reading credentials", err)
	}
	return creds, nil
}

// checkPassword verifies password against hash, the stored hash of acct
// (hash "" for an account without a password, which never matches),
// through the guard's account lock (Guard.Account). For an unknown
// username (acct nil) it verifies against the dummy hash, which never
// matches, through the guard's decoy for username (Guard.Decoy): the
// answer, its count of tries, its lock and the time it takes are an
// account's. With rehash, a correct password whose hash was made with
// other parameters than the hasher's is stored again with them; callers
// about to replace the password pass false.
func (s *Service) checkPassword(ctx context.Context, acct *store.Account, username, hash, password string, rehash bool) (LoginResult, error) {
	verify := func(ctx context.Context) (bool, error) {
		if hash == "" {
			return false, s.verifyDummy(ctx, password)
		}
		ok, err := s.deps.Hasher.Verify(ctx, password, hash)
		if err != nil {
			return false, fmt.Errorf("selfservice: verifying password: %w", err)
		}
		return ok, nil
	}
	if acct == nil {
		return s.guard.Decoy(ctx, s.decoyKey(username), func(ctx context.Context) error {
			return s.verifyDummy(ctx, password)
		})
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

// verifyDummy verifies password against the dummy hash, as long as a real
// password takes; it never matches.
func (s *Service) verifyDummy(ctx context.Context, password string) error {
	dummy, err := s.dummy.get(ctx, s.deps.Hasher)
	if err != nil {
		return fmt.Errorf("selfservice: dummy hash: %w", err)
	}
	if _, err := s.deps.Hasher.Verify(ctx, password, dummy); err != nil {
		return fmt.Errorf("selfservice: verifying password: %w", err)
	}
	return nil
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
// check out (res.OK false): Locked or Wrong, with the tries remaining of
// the account's lock, or of the decoy's for a username without one, which
// counts alike.
func secretOutcome(res LoginResult) Outcome {
	if res.State.Locked() {
		return Outcome{Status: Locked, Login: res.State}
	}
	return Outcome{Status: Wrong, Login: res.State, Known: true}
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
	// Address is the client's address, counted against attempts_per_ip
	// before anything else.
	Address string
}

// LinkResult is the outcome of LinkCard.
type LinkResult struct {
	Outcome
	Username string         // as looked up, for the form
	Account  *store.Account // the account (Done; Refused when known)
}

// LinkCard registers the card to the holder's existing account, given its
// username and password: under the client address's attempts_per_ip
// (every attempt counts), the card's attempt limit (only a wrong password
// counts) and the account's lock. Outcomes: Done, Invalid, Wrong, Locked,
// Limited (Reason ReasonAddressLimited for the address's limit),
// Unavailable (the address's attempt given back), Refused
// (password_expired, disabled, edipi_mismatch, too_many_cards,
// card_taken, account_gone). Username is the one typed, for the form,
// whatever the outcome.
func (s *Service) LinkCard(ctx context.Context, card *cacid.Identity, in LinkInput) (LinkResult, error) {
	const event = "card.linked"
	via := map[string]string{"via": "holder"}
	if o, ok := s.countAddress(ctx, card, in.Address, event, via); !ok {
		return LinkResult{Outcome: o, Username: normUsername(in.Username)}, nil
	}
	res, err := s.linkCard(ctx, card, in)
	if errors.Is(err, ErrUnavailable) {
		res, err = LinkResult{Outcome: s.unavailableOutcome(ctx, card, err, event, via)}, nil
	}
	if res.Status == Unavailable {
		res.Username = normUsername(in.Username)
		s.giveBackAddress(ctx, in.Address)
	}
	return res, err
}

func (s *Service) linkCard(ctx context.Context, card *cacid.Identity, in LinkInput) (LinkResult, error) {
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
		login, err = s.checkPassword(ctx, acct, res.Username, hash, in.Password, true)
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
		// An unknown username is answered as an account with a wrong
		// password (its decoy counts down and locks); only the audit
		// log tells them apart.
		res.Outcome = secretOutcome(login)
		fields := map[string]string{"via": "holder", "reason": "bad_password"}
		switch {
		case acct == nil:
			// The typed username is not recorded: it may be a
			// password typed in the wrong field.
			fields["reason"] = "unknown_username"
		case res.Status == Locked:
			fields["username"], fields["reason"] = acct.Username, "locked"
		default:
			fields["username"] = acct.Username
		}
		s.audit(ctx, card, event, "failure", fields)
		if res.Status == Wrong {
			res.Errors.Add("", WrongSecret("The username or password is not correct.", res.Outcome))
		}
		return res, nil
	}
	res.Account = acct
	o, err := s.link(ctx, card, acct)
	if err != nil {
		return LinkResult{}, err
	}
	if o.Status == Refused {
		s.audit(ctx, card, event, "failure", map[string]string{"via": "holder", "username": acct.Username, "reason": o.Reason})
		res.Outcome = o
		return res, nil
	}
	s.deps.OnChange()
	s.audit(ctx, card, event, "success", map[string]string{"via": "holder", "username": acct.Username})
	return res, nil
}

// link registers the card to acct, whose password checked out, unless a
// rule refuses it (Refused, with its reason).
func (s *Service) link(ctx context.Context, card *cacid.Identity, acct *store.Account) (Outcome, error) {
	expires, expired := s.PasswordExpiry(acct, s.deps.Now())
	switch {
	case expired:
		o := refused("password_expired")
		o.Expires = expires
		return o, nil
	case acct.Status == store.StatusDisabled:
		return refused("disabled"), nil
	case acct.EDIPI != card.EDIPI:
		return refused("edipi_mismatch"), nil
	case len(acct.Cards) >= s.cfg.MaxCards:
		return refused("too_many_cards"), nil
	}
	err := s.deps.Accounts.LinkCard(ctx, acct.ID, storeCard(card))
	switch {
	case errors.Is(err, store.ErrCardTaken):
		return refused("card_taken"), nil
	case errors.Is(err, store.ErrNotFound):
		return refused("account_gone"), nil
	case err != nil:
		return Outcome{}, accountsFailed("linking card", err)
	}
	return Outcome{}, nil
}
