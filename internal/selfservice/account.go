package selfservice

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
)

// The signed-in card holder's account: clearing a card's registration,
// changing the password, changing the security answers. The gateway has
// found the account active before any of these runs.

func (s *Service) auditAccount(ctx context.Context, card *cacid.Identity, acct *store.Account, event, outcome string, extra map[string]string) {
	fields := map[string]string{"username": acct.Username}
	for k, v := range extra {
		fields[k] = v
	}
	s.audit(ctx, card, event, outcome, fields)
}

// reload reads the account again after a change, to show it. The change
// is made and must be reported as made: when the account cannot be read
// (the database failing since), it is shown as it was, with changed
// applied to it.
func (s *Service) reload(ctx context.Context, acct *store.Account, changed func(*store.Account)) *store.Account {
	fresh, err := s.deps.Accounts.AccountByUsername(ctx, acct.Username)
	if err == nil {
		return fresh
	}
	s.deps.Logger.Warn("reading an account after a change: showing it as it was", zap.String("username", acct.Username), zap.Error(err))
	shown := *acct
	shown.Cards = append([]store.Card(nil), acct.Cards...)
	if changed != nil {
		changed(&shown)
	}
	return &shown
}

// ClearCardResult is the outcome of ClearCard.
type ClearCardResult struct {
	Outcome
	Account *store.Account // as it is now (Done)
	Cleared *store.Card    // the card whose registration was cleared (Done)
	Current bool           // it was the card in use
}

// ClearCard clears the registration of the account's card with the SHA-256
// fingerprint fp. The card in use cannot be cleared when it is the only
// one. Outcomes: Done (also when it was cleared meanwhile), Refused
// (not_on_account, only_card), Unavailable (Account is acct, to show
// again).
func (s *Service) ClearCard(ctx context.Context, card *cacid.Identity, acct *store.Account, fp string) (ClearCardResult, error) {
	const event = "card.unlinked"
	fp = strings.ToLower(strings.TrimSpace(fp))
	var target *store.Card
	for i := range acct.Cards {
		if acct.Cards[i].Fingerprint == fp {
			target = &acct.Cards[i]
		}
	}
	if target == nil {
		s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"via": "holder", "reason": "not_on_account"})
		return ClearCardResult{Outcome: refused("not_on_account")}, nil
	}
	current := fp == card.FingerprintHex
	if current && len(acct.Cards) < 2 {
		s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"via": "holder", "reason": "only_card", "cleared": fp})
		o := refused("only_card")
		o.Errors.Add("", "The card you are using is the only card registered to your account, so its registration cannot be cleared. Register another card first.")
		return ClearCardResult{Outcome: o, Account: acct}, nil
	}
	err := s.deps.Accounts.UnlinkCard(ctx, acct.Username, fp)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// cleared meanwhile (another tab, an administrator)
	case err != nil:
		o := s.unavailableOutcome(ctx, card, accountsFailed("unlinking card", err), event,
			map[string]string{"username": acct.Username, "via": "holder", "cleared": fp})
		return ClearCardResult{Outcome: o, Account: acct}, nil
	default:
		s.auditAccount(ctx, card, acct, event, "success", map[string]string{"via": "holder", "cleared": fp})
		s.deps.OnChange()
	}
	fresh := s.reload(ctx, acct, func(a *store.Account) {
		a.Cards = slices.DeleteFunc(a.Cards, func(c store.Card) bool { return c.Fingerprint == fp })
	})
	return ClearCardResult{Account: fresh, Cleared: target, Current: current}, nil
}

// PasswordForm is what the change-password form shows.
type PasswordForm struct {
	HasCurrent bool // the account has a password, which the form asks for
	Rules      []string
}

// PasswordForm returns what the change-password form shows for acct, as
// its credentials are now.
func (s *Service) PasswordForm(ctx context.Context, acct *store.Account) (PasswordForm, error) {
	creds, err := s.credentials(ctx, acct)
	if err != nil {
		return PasswordForm{}, err
	}
	return s.passwordForm(creds.PasswordHash != ""), nil
}

// PasswordFormAsKnown is PasswordForm without reading the database: as the
// gateway last read acct, for the form shown again when the database
// fails.
func (s *Service) PasswordFormAsKnown(acct *store.Account) PasswordForm {
	return s.passwordForm(acct.HasPassword)
}

func (s *Service) passwordForm(hasCurrent bool) PasswordForm {
	f := PasswordForm{HasCurrent: hasCurrent, Rules: s.cfg.Password.Rules()}
	if f.HasCurrent {
		f.Rules = append(f.Rules, credential.ChangeRule)
	}
	return f
}

// checkCurrent checks the current password typed on an account form
// through the guard's account lock. It returns nil when the form may go
// on, else its Locked or Wrong outcome (audited as event).
func (s *Service) checkCurrent(ctx context.Context, card *cacid.Identity, acct *store.Account, hash, password, event string) (*Outcome, error) {
	// A password about to be replaced is not worth rehashing.
	res, err := s.checkPassword(ctx, acct, acct.Username, hash, password, event != "password.changed")
	if err != nil || res.OK {
		return nil, err
	}
	o := secretOutcome(res)
	if o.Status == Locked {
		s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"reason": "locked"})
		return &o, nil
	}
	s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"reason": "bad_password"})
	o.Errors.Add("current", WrongSecret("The current password is not correct.", o))
	return &o, nil
}

// ChangePasswordInput is the change-password form as sent.
type ChangePasswordInput struct {
	Current, Password, Confirm string
	// Address is the client's address, counted against attempts_per_ip
	// before anything is hashed.
	Address string
}

// AccountResult is the outcome of a change on the account pages.
type AccountResult struct {
	Outcome
	Account *store.Account // as it is now (Done)
}

// ChangePassword changes acct's password, given the current one (when it
// has one): not sooner than the minimum age after the last change, under
// the account's lock, following the policy, far enough from the current
// one, not one of the recent ones. Outcomes: Done, Invalid, Wrong, Locked,
// Limited, Unavailable (nothing changed; audited).
func (s *Service) ChangePassword(ctx context.Context, card *cacid.Identity, acct *store.Account, in ChangePasswordInput) (AccountResult, error) {
	const event = "password.changed"
	res, err := s.changePassword(ctx, card, acct, in)
	if errors.Is(err, ErrUnavailable) {
		return AccountResult{Outcome: s.unavailableOutcome(ctx, card, err, event, map[string]string{"username": acct.Username})}, nil
	}
	return res, err
}

func (s *Service) changePassword(ctx context.Context, card *cacid.Identity, acct *store.Account, in ChangePasswordInput) (AccountResult, error) {
	const event = "password.changed"
	creds, err := s.credentials(ctx, acct)
	if err != nil {
		return AccountResult{}, err
	}
	var errs FieldErrors
	invalid := func() (AccountResult, error) {
		return AccountResult{Outcome: Outcome{Status: Invalid, Errors: errs}}, nil
	}
	hasCurrent := creds.PasswordHash != ""
	if at := s.passwordChangeAllowedAt(acct, s.deps.Now()); hasCurrent && !at.IsZero() {
		s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"reason": "too_soon"})
		errs.Add("password", "Your password was changed less than "+formatAge(s.cfg.PasswordMinAge)+" ago. You can change it again after "+FormatTime(at)+
			". If you think someone else knows it, contact the site's administrators.")
		return invalid()
	}
	if hasCurrent && in.Current == "" {
		errs.Add("current", "Enter your current password.")
	} else if len(in.Current) > maxPasswordLen {
		errs.Add("current", "Enter a password of at most 256 characters.")
	}
	id := card
	if broken := s.cfg.Password.Check(in.Password, acct.Username, UsernameBase(acct.GivenName, acct.MiddleName, acct.FamilyName),
		acct.GivenName, acct.MiddleName, acct.FamilyName, acct.Suffix, id.GivenName, id.MiddleName, id.FamilyName); len(broken) > 0 {
		errs.Add("password", "Choose a password that follows the rules: "+strings.Join(broken, " "))
	} else if in.Confirm != in.Password {
		errs.Add("confirm", "The two passwords do not match.")
	}
	if errs.Any() {
		return invalid()
	}
	var res AccountResult
	stop, err := s.accountStep(ctx, card, in.Address, event, func(ctx context.Context) (bool, error) {
		if hasCurrent {
			if o, err := s.checkCurrent(ctx, card, acct, creds.PasswordHash, in.Current, event); o != nil || err != nil {
				if o != nil {
					res.Outcome = *o
				}
				return false, err
			}
			// Only a holder who typed the current password can be held to
			// changing enough of it; a reset by the security answers cannot.
			if credential.CharactersChanged(in.Current, in.Password) < credential.MinCharactersChanged {
				s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"reason": "too_similar"})
				errs.Add("password", "Choose a password further from your current one. "+credential.ChangeRule)
				res.Outcome = Outcome{Status: Invalid, Errors: errs}
				return false, nil
			}
		}
		// Checking the new password against the last ones and hashing
		// it wait behind people signing in: nobody is let in by them.
		ctx = credential.WithPriority(ctx, credential.Enrollment)
		reused, err := s.reusedPassword(ctx, creds, in.Password)
		if err != nil {
			return false, err
		}
		if reused {
			s.auditAccount(ctx, card, acct, event, "failure", map[string]string{"reason": "reused"})
			errs.Add("password", reusedMessage)
			res.Outcome = Outcome{Status: Invalid, Errors: errs}
			return false, nil
		}
		return true, s.setPassword(ctx, acct, in.Password)
	})
	switch {
	case err != nil:
		return AccountResult{}, err
	case stop != nil:
		return AccountResult{Outcome: *stop}, nil
	case res.Status != Done:
		return res, nil
	}
	s.auditAccount(ctx, card, acct, event, "success", map[string]string{"via": "holder"})
	return AccountResult{Account: s.reload(ctx, acct, func(a *store.Account) {
		a.HasPassword, a.PasswordChangedAt = true, s.deps.Now().UTC().Truncate(time.Second)
	})}, nil
}

// AnswersForm is what the change-answers form shows.
type AnswersForm struct {
	HasCurrent bool                                 // the form asks for the current password
	Chosen     [credential.QuestionsRequired]string // the account's questions
}

// AnswersForm returns what the change-answers form shows for acct.
func (s *Service) AnswersForm(ctx context.Context, acct *store.Account) (AnswersForm, error) {
	creds, err := s.credentials(ctx, acct)
	if err != nil {
		return AnswersForm{}, err
	}
	f := AnswersForm{HasCurrent: creds.PasswordHash != ""}
	for i, a := range creds.Answers {
		f.Chosen[i] = a.QuestionID
	}
	return f, nil
}

// ChangeAnswersInput is the change-answers form as sent.
type ChangeAnswersInput struct {
	Current string
	Picks   [credential.QuestionsRequired]credential.AnswerPick
	// Address is the client's address, counted against attempts_per_ip
	// before anything is hashed.
	Address string
}

// ChangeAnswers replaces acct's security questions and answers, given the
// current password (when it has one), under the account's lock, its
// hashes counted first (accountStep). Outcomes: Done, Invalid, Wrong,
// Locked, Limited, Unavailable (nothing changed; audited).
func (s *Service) ChangeAnswers(ctx context.Context, card *cacid.Identity, acct *store.Account, in ChangeAnswersInput) (AccountResult, error) {
	const event = "answers.changed"
	res, err := s.changeAnswers(ctx, card, acct, in)
	if errors.Is(err, ErrUnavailable) {
		return AccountResult{Outcome: s.unavailableOutcome(ctx, card, err, event, map[string]string{"username": acct.Username})}, nil
	}
	return res, err
}

func (s *Service) changeAnswers(ctx context.Context, card *cacid.Identity, acct *store.Account, in ChangeAnswersInput) (AccountResult, error) {
	const event = "answers.changed"
	creds, err := s.credentials(ctx, acct)
	if err != nil {
		return AccountResult{}, err
	}
	hasCurrent := creds.PasswordHash != ""
	var errs FieldErrors
	if hasCurrent && in.Current == "" {
		errs.Add("current", "Enter your current password.")
	} else if len(in.Current) > maxPasswordLen {
		errs.Add("current", "Enter a password of at most 256 characters.")
	}
	_, pickErrs := checkPicks(in.Picks)
	for _, e := range pickErrs.List {
		errs.Add(e.Field, e.Message)
	}
	if errs.Any() {
		return AccountResult{Outcome: Outcome{Status: Invalid, Errors: errs}}, nil
	}
	var res AccountResult
	stop, err := s.accountStep(ctx, card, in.Address, event, func(ctx context.Context) (bool, error) {
		if hasCurrent {
			if o, err := s.checkCurrent(ctx, card, acct, creds.PasswordHash, in.Current, event); o != nil || err != nil {
				if o != nil {
					res.Outcome = *o
				}
				return false, err
			}
		}
		// The new secrets' hashes wait behind people signing in.
		answers, err := s.hashAnswers(credential.WithPriority(ctx, credential.Enrollment), in.Picks)
		if err != nil {
			return false, err
		}
		if err := s.deps.Accounts.SetAnswers(ctx, acct.ID, answers); err != nil {
			return false, accountsFailed("setting answers", err)
		}
		return true, nil
	})
	switch {
	case err != nil:
		return AccountResult{}, err
	case stop != nil:
		return AccountResult{Outcome: *stop}, nil
	case res.Status != Done:
		return res, nil
	}
	s.auditAccount(ctx, card, acct, event, "success", map[string]string{"via": "holder"})
	return AccountResult{Account: acct}, nil
}

// accountLimit is the per-card count of the account pages' changes that
// hash (password, security answers): AccountChangesMax per FailureWindow,
// whatever their outcome.
func accountLimit(card *cacid.Identity) Limit {
	return Limit{Key: "account:" + card.FingerprintHex, Window: FailureWindow, Max: AccountChangesMax}
}

// AccountChangesMax is how many changes that hash (password, security
// answers) one card may send from the account pages per FailureWindow:
// enough for a person trying a few new passwords the policy refuses.
const AccountChangesMax = 10

// accountStep runs change, the part of an account page's change that
// checks the current password and hashes (done reports that the change
// went through), under two counts taken before it runs: the client
// address's attempts_per_ip, given back when the change went through (as
// a correct sign-in's is), and the card's accountLimit, ten changes that
// hash per 15 minutes, whatever their outcome. Both are given back when
// the hasher turned a hash away (credential.ErrBusy) or the account
// database failed (ErrUnavailable): nothing was changed. It returns the
// guard's refusal (Limited, Unavailable; audited as event), or change's
// error.
func (s *Service) accountStep(ctx context.Context, card *cacid.Identity, address, event string, change func(context.Context) (bool, error)) (*Outcome, error) {
	if err := s.guard.TakeAddress(ctx, address); err != nil {
		if !isLimited(err) {
			o := s.unavailableOutcome(ctx, card, err, event, nil)
			return &o, nil
		}
		o := limitOutcome(err)
		s.audit(ctx, card, event, "failure", map[string]string{"reason": ReasonAddressLimited})
		return &o, nil
	}
	limit := accountLimit(card)
	allowed, err := s.guard.take(ctx, limit.Key, limit.Window, limit.Max)
	if err == nil && !allowed {
		err = ErrLimited
	}
	if err != nil {
		_ = s.guard.RefundAddress(ctx, address) // nothing was tried
		o := s.refusal(ctx, card, err, event, nil)
		return &o, nil
	}
	done, err := change(ctx)
	if errors.Is(err, credential.ErrBusy) || errors.Is(err, ErrUnavailable) {
		_ = s.guard.refund(ctx, limit.Key)
		done = true
	}
	if done {
		_ = s.guard.RefundAddress(ctx, address)
	}
	return nil, err
}
