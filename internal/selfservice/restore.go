package selfservice

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
)

// Restoring an account the gateway disabled for inactivity: its holder,
// with the account's card (or one carrying its DoD ID), confirms who they
// are against the personnel roster, as at enrollment, under the same
// attempt limits; a match enables the account. An account an
// administrator disabled is not restored this way.

// Restorer is the store's side of restoring (store.SQLStore has it).
type Restorer interface {
	RestoreInactive(ctx context.Context, accountID int64) (*store.Account, error)
}

// Restorable reports whether acct is one its holder may restore with card.
func Restorable(card *cacid.Identity, acct *store.Account) bool {
	return card != nil && acct != nil && acct.Type != store.TypeUtility && acct.Status == store.StatusDisabled &&
		acct.DisabledReason == store.DisabledInactive && acct.EDIPI != "" && acct.EDIPI == card.EDIPI
}

// RestoreForm says what the restore form asks.
func (s *Service) RestoreForm(ctx context.Context, card *cacid.Identity) (IdentityForm, error) {
	need, err := s.needsPEBD(ctx, card)
	if err != nil {
		return IdentityForm{}, err
	}
	return IdentityForm{AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional}, nil
}

// RestoreResult is the outcome of Restore.
type RestoreResult struct {
	Outcome
	Form    IdentityForm
	IDType  string
	Account *store.Account // Done: the account as enabled
}

// Restore re-validates the holder of card against the roster and, on a
// match, enables acct. Outcomes: Done, Invalid (the form), Wrong (no
// match), Limited, Unavailable, Refused (not restorable),
// RosterUnavailable.
func (s *Service) Restore(ctx context.Context, card *cacid.Identity, acct *store.Account, in IdentityInput) (RestoreResult, error) {
	const event = "account.restored"
	res := RestoreResult{IDType: idType(in.IDType)}
	restorer, ok := s.deps.Accounts.(Restorer)
	if !Restorable(card, acct) || !ok {
		res.Outcome = refused("not_restorable")
		s.audit(ctx, card, event, "failure", map[string]string{"reason": "not_restorable"})
		return res, nil
	}
	fields := map[string]string{"username": acct.Username}
	if o, ok := s.countAddress(ctx, card, in.Address, event, fields); !ok {
		res.Outcome = o
		return res, nil
	}
	limit := identityLimit(card)
	if err := s.guard.Check(ctx, limit); err != nil {
		res.Outcome = s.refusal(ctx, card, err, event, fields)
		return res, nil
	}
	need, err := s.needsPEBD(ctx, card)
	if err != nil {
		o, err := s.rosterError(ctx, card, err)
		res.Outcome = o
		return res, err
	}
	res.Form = IdentityForm{AskPEBD: need.Asked(), PEBDOptional: need == roster.PEBDOptional}
	claim := roster.Claim{EDIPI: card.EDIPI, DOB: strings.TrimSpace(in.DOB)}
	switch in.IDType {
	case "fin":
		claim.FIN = in.FIN
	default:
		claim.SSN = in.SSN
	}
	if need.Asked() {
		claim.PEBD = strings.TrimSpace(in.PEBD)
	}
	if err := roster.ValidateClaim(claim); err != nil {
		var bad *roster.InputError
		if !errors.As(err, &bad) {
			return res, fmt.Errorf("restore: validating claim: %w", err)
		}
		res.Errors.Add(bad.Field, bad.Message)
	} else if need == roster.PEBDRequired && claim.PEBD == "" {
		res.Errors.Add("pebd", "Enter your pay entry base date.")
	}
	if res.Errors.Any() {
		res.Status = Invalid
		s.giveBackAddress(ctx, in.Address)
		return res, nil
	}
	var match roster.Result
	_, err = s.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		match, err = s.deps.Roster.Verify(ctx, claim)
		return match.Match, err
	})
	claim = roster.Claim{}
	switch {
	case isGuardRefusal(err):
		res.Outcome = s.refusal(ctx, card, err, event, fields)
		return res, nil
	case err != nil:
		res.Outcome, err = s.rosterError(ctx, card, err)
		return res, err
	}
	if !match.Match {
		fields["reason"] = "no_match"
		s.audit(ctx, card, event, "failure", fields)
		res.Status = Wrong
		res.Errors.Add("", "The information you entered does not match the personnel records for your DoD ID. Check it and try again.")
		return res, nil
	}
	restored, err := restorer.RestoreInactive(ctx, acct.ID)
	if errors.Is(err, store.ErrStatusConflict) {
		// enabled or disabled by an administrator meanwhile
		res.Outcome = refused("not_restorable")
		fields["reason"] = "not_restorable"
		s.audit(ctx, card, event, "failure", fields)
		return res, nil
	}
	if err != nil {
		res.Outcome = s.unavailableOutcome(ctx, card, accountsFailed("restoring account", err), event, fields)
		return res, nil
	}
	s.audit(ctx, card, event, "success", fields)
	if s.deps.OnChange != nil {
		s.deps.OnChange()
	}
	res.Status, res.Account = Done, restored
	return res, nil
}
