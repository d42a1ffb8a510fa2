package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// checkUsername validates a username named in a path or argument before
// it reaches the store or the audit log.
func checkUsername(username string) error {
	if !store.ValidUsername(username) {
		return BadRequest(fmt.Errorf("%q is not a username: 1-64 characters, lowercase letters, digits, '.', '_' or '-', starting with a letter", Clip(username, 70)))
	}
	return nil
}

// Show returns one account.
func (s *Service) Show(ctx context.Context, username string) (Account, error) {
	if err := checkUsername(username); err != nil {
		return Account{}, err
	}
	acct, err := s.Store.AccountByUsername(ctx, username)
	if err != nil {
		return Account{}, s.storeError(err, username)
	}
	return accountOf(acct), nil
}

// Create provisions an account.
func (s *Service) Create(ctx context.Context, who Actor, req NewAccountRequest) (Account, error) {
	const event = EventAccountCreated
	if err := req.validate(); err != nil {
		return Account{}, s.fail(who, event, BadRequest(err))
	}
	acct := req.account()
	ids := []zap.Field{zap.String("username", acct.Username), zap.String("edipi", acct.EDIPI)}
	if err := s.Store.CreateAccount(ctx, acct); err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, acct.Username), ids...)
	}
	s.changed()
	s.record(who, event, audit.Success, append(ids, zap.String("status", string(acct.Status)), zap.Strings("groups", acct.Groups))...)
	s.notify(ctx, "account_created", acct, "")
	return s.reread(ctx, acct, nil), nil
}

// reread reads an account again after a change made to it, to answer
// with. The change is made and must be reported as made: when the account
// cannot be read (the database failing since), the answer is the account
// as known before, with changed applied to it.
func (s *Service) reread(ctx context.Context, known *store.Account, changed func(*store.Account)) Account {
	fresh, err := s.Store.AccountByUsername(ctx, known.Username)
	if err == nil {
		return accountOf(fresh)
	}
	s.logger().Warn("reading an account after a change: answering with it as it was known", zap.String("username", known.Username),
		zap.String("cause", store.Cause(err)), zap.Error(err))
	shown := *known
	shown.Cards = append([]store.Card(nil), known.Cards...)
	if changed != nil {
		changed(&shown)
	}
	return accountOf(&shown)
}

// Approve lets a pending account in. Only a pending account can be
// approved, atomically, so approving cannot re-enable a disabled account.
func (s *Service) Approve(ctx context.Context, who Actor, username string) (Account, error) {
	const event = EventAccountApproved
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	acct, err := s.Store.TransitionStatus(ctx, username, store.StatusPending, store.StatusActive)
	if errors.Is(err, store.ErrStatusConflict) {
		return Account{}, s.fail(who, event, conflict("account %q is not pending approval", username), zap.String("username", username))
	}
	if err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), zap.String("username", username))
	}
	s.changed()
	s.record(who, event, audit.Success, zap.String("username", username), zap.String("edipi", acct.EDIPI), zap.String("status", string(acct.Status)))
	s.notify(ctx, "account_approved", acct, "")
	return accountOf(acct), nil
}

// notify queues a notice through Notify, if set.
func (s *Service) notify(ctx context.Context, kind string, acct *store.Account, detail string) {
	if s.Notify != nil && acct != nil {
		s.Notify(ctx, kind, acct, detail)
	}
}

// Disable refuses an account sign-in from now on, whatever its status;
// its cards stay registered to it.
func (s *Service) Disable(ctx context.Context, who Actor, username string) (Account, error) {
	return s.disable(ctx, who, username, nil)
}

func (s *Service) disable(ctx context.Context, who Actor, username string, extra []zap.Field) (Account, error) {
	const event = EventAccountDisabled
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	acct, err := s.Store.SetStatus(ctx, username, store.StatusDisabled)
	if err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), append(extra, zap.String("username", username))...)
	}
	s.changed()
	s.record(who, event, audit.Success, append(extra, zap.String("username", username), zap.String("edipi", acct.EDIPI), zap.String("status", string(acct.Status)))...)
	return accountOf(acct), nil
}

// Enable lets a disabled account in again. A pending account is refused:
// it is let in by approving it, so that approval is what the audit trail
// shows. Enabling an active account changes nothing and succeeds.
func (s *Service) Enable(ctx context.Context, who Actor, username string) (Account, error) {
	return s.enable(ctx, who, username, nil)
}

func (s *Service) enable(ctx context.Context, who Actor, username string, extra []zap.Field) (Account, error) {
	const event = EventAccountEnabled
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	acct, err := s.Store.TransitionStatus(ctx, username, store.StatusDisabled, store.StatusActive)
	switch {
	case errors.Is(err, store.ErrStatusConflict) && acct == nil:
		// TransitionStatus does not return the account on a conflict:
		// read it to say why.
		cur, rerr := s.Store.AccountByUsername(ctx, username)
		if rerr != nil {
			return Account{}, s.fail(who, event, s.storeError(rerr, username), zap.String("username", username))
		}
		if cur.Status == store.StatusActive {
			s.record(who, event, audit.Success, append(extra, zap.String("username", username), zap.String("edipi", cur.EDIPI),
				zap.String("status", string(cur.Status)), zap.Bool("changed", false))...)
			return accountOf(cur), nil
		}
		return Account{}, s.fail(who, event, conflict("account %q is %s: approve it instead", username, cur.Status),
			zap.String("username", username), zap.String("edipi", cur.EDIPI))
	case err != nil:
		return Account{}, s.fail(who, event, s.storeError(err, username), zap.String("username", username))
	}
	s.changed()
	s.record(who, event, audit.Success, append(extra, zap.String("username", username), zap.String("edipi", acct.EDIPI),
		zap.String("status", string(acct.Status)), zap.Bool("changed", true))...)
	return accountOf(acct), nil
}

// Unlock lifts an account's password lockout and clears its failed
// sign-ins.
func (s *Service) Unlock(ctx context.Context, who Actor, username string) (Account, error) {
	const event = EventAccountUnlocked
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	acct, err := s.Store.AccountByUsername(ctx, username)
	if err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), zap.String("username", username))
	}
	if err := s.Store.Unlock(ctx, acct.ID); err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), zap.String("username", username), zap.String("edipi", acct.EDIPI))
	}
	s.changed()
	fields := []zap.Field{zap.String("username", username), zap.String("edipi", acct.EDIPI)}
	if !acct.LockedUntil.IsZero() {
		fields = append(fields, zap.Time("was_locked_until", acct.LockedUntil.UTC()))
	}
	s.record(who, event, audit.Success, fields...)
	return s.reread(ctx, acct, func(a *store.Account) { a.LockedUntil = time.Time{} }), nil
}

// MaxPEM bounds a certificate given to LinkCard (and the file the CLI reads it from).
const MaxPEM = 16 << 10

// LinkCard registers a card, given as its PEM certificate, to an account.
// The card must carry the account's DoD ID: the CA vouches for that, the
// administrator does not.
func (s *Service) LinkCard(ctx context.Context, who Actor, username, certPEM string) (Account, error) {
	const event = EventCardLinked
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username)}
	if len(certPEM) > MaxPEM {
		return Account{}, s.fail(who, event, BadRequest(errors.New("certificate is too large")), fields...)
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return Account{}, s.fail(who, event, BadRequest(errors.New("certificate must be a PEM-encoded certificate")), fields...)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Account{}, s.fail(who, event, BadRequest(fmt.Errorf("parsing certificate: %w", err)), fields...)
	}
	id, err := cacid.Parse(cert)
	if err != nil {
		return Account{}, s.fail(who, event, BadRequest(err), fields...)
	}
	fields = append(fields, audit.Card(id)...)
	acct, err := s.Store.AccountByUsername(ctx, username)
	if err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), fields...)
	}
	if acct.EDIPI != id.EDIPI {
		// edipi in fields is the card's; the account's is named here.
		return Account{}, s.fail(who, event, BadRequest(fmt.Errorf("the certificate's DoD ID %s is not the account's (%s)", id.EDIPI, acct.EDIPI)),
			append(fields, zap.String("account_edipi", acct.EDIPI))...)
	}
	card := store.Card{
		Fingerprint: id.FingerprintHex, Subject: id.Subject, Issuer: id.Issuer, Serial: id.Serial, NotAfter: id.NotAfter,
	}
	if err := s.Store.LinkCard(ctx, acct.ID, card); err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), fields...)
	}
	s.changed()
	s.record(who, event, audit.Success, fields...)
	s.notify(ctx, "card_registered", acct, id.Subject)
	return s.reread(ctx, acct, func(a *store.Account) { a.Cards = append(a.Cards, card) }), nil
}

// UnlinkCard clears a card's registration; link_by_edipi will not link it
// again, only an explicit LinkCard.
func (s *Service) UnlinkCard(ctx context.Context, who Actor, username, fingerprint string) error {
	const event = EventCardUnlinked
	if err := checkUsername(username); err != nil {
		return s.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username)}
	if !store.ValidFingerprint(fingerprint) {
		return s.fail(who, event, BadRequest(errors.New("card must be identified by the lowercase hex SHA-256 of its certificate")), fields...)
	}
	fields = append(fields, zap.String("cert_sha256", fingerprint))
	if err := s.Store.UnlinkCard(ctx, username, fingerprint); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return s.fail(who, event, notFound("account %q has no card %s", username, fingerprint), fields...)
		}
		return s.fail(who, event, s.storeError(err, username), fields...)
	}
	s.changed()
	s.record(who, event, audit.Success, fields...)
	return nil
}
