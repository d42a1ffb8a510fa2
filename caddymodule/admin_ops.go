package caddymodule

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// adminOps is account administration as both the admin API and the CLI
// offer it: every input validated, every change audited with who made it,
// and this process's card cache dropped after it. The API runs it on the
// running app's store; the CLI on a store it opens itself from the config.
type adminOps struct {
	store store.Store
	audit *audit.Log
	log   *zap.Logger
	// invalidate drops this process's cached card mappings after a change
	// (the running app's invalidate); nil for the CLI, which has no cache.
	// Other nodes learn of the change from the store's change feed, or
	// within cache_ttl.
	invalidate func()
}

// adminOps returns the running app's admin operations.
func (a *App) adminOps() *adminOps {
	return &adminOps{store: a.store, audit: a.audit, log: a.logger, invalidate: a.invalidate}
}

// adminActor is who asked for an admin change, for the audit trail.
type adminActor struct {
	// identity: the admin client certificate's subject (remote admin
	// with mTLS), "local" (the local admin endpoint, which has no
	// identity of its own), or "cli:<OS user>@<host>".
	identity string
	// source is where the request came from: the admin client's address,
	// or for the CLI the host it ran on.
	source string
	// certSHA256 is the admin client certificate's fingerprint, if any.
	certSHA256 string
	// sudoUser is who ran the CLI through sudo, if anyone did.
	sudoUser string
}

// apiActor identifies the client of an admin API request.
func apiActor(r *http.Request) adminActor {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		return adminActor{
			identity:   cacid.DistinguishedName(c.RawSubject, c.Subject),
			source:     r.RemoteAddr,
			certSHA256: cacid.Fingerprint(c.Raw),
		}
	}
	source := r.RemoteAddr
	if source == "" || source == "@" {
		source = "unix socket"
	}
	return adminActor{identity: "local", source: source}
}

func (a adminActor) fields() []zap.Field {
	f := []zap.Field{zap.String("admin", a.identity), zap.String("admin_source", a.source)}
	if a.certSHA256 != "" {
		f = append(f, zap.String("admin_cert_sha256", a.certSHA256))
	}
	if a.sudoUser != "" {
		f = append(f, zap.String("admin_sudo_user", a.sudoUser))
	}
	return f
}

// record writes one audit event for an admin action.
func (o *adminOps) record(who adminActor, event, outcome string, fields ...zap.Field) {
	o.audit.Write(event, outcome, append(fields, who.fields()...)...)
}

// fail audits a refused or failed change and returns err, which says why.
func (o *adminOps) fail(who adminActor, event string, err error, fields ...zap.Field) error {
	o.record(who, event, audit.Failure, append(fields, zap.String("reason", reasonOf(err)))...)
	return err
}

// changed runs after every successful change.
func (o *adminOps) changed() {
	if o.invalidate != nil {
		o.invalidate()
	}
}

// Errors of admin operations are caddy.APIErrors: the API answers with
// their status, the CLI prints their message.
func badRequest(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
}

func unprocessable(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusUnprocessableEntity, Err: err}
}

func notFound(format string, args ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf(format, args...)}
}

func conflict(format string, args ...any) error {
	return caddy.APIError{HTTPStatus: http.StatusConflict, Err: fmt.Errorf(format, args...)}
}

// reasonOf is the audit reason for an admin operation's error: a short
// code, never the error text, which may carry input.
func reasonOf(err error) string {
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) {
		return "error"
	}
	switch apiErr.HTTPStatus {
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

// storeError turns a store error into one that names what is wrong without
// the database's internals, which go to the log instead.
func (o *adminOps) storeError(err error, username string) error {
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
		return badRequest(errors.New(msg))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the account database did not answer in time")}
	}
	o.log.Error("account database error", zap.Error(err))
	return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: errors.New("account database error (details in the log)")}
}

// checkUsername validates a username named in a path or argument before
// it reaches the store or the audit log.
func checkUsername(username string) error {
	if !store.ValidUsername(username) {
		return badRequest(fmt.Errorf("%q is not a username: 1-64 characters, lowercase letters, digits, '.', '_' or '-', starting with a letter", clip(username, 70)))
	}
	return nil
}

// usernameField names the account of a request refused before its username
// was checked: only a valid username goes into the audit trail.
func usernameField(username string) zap.Field {
	if !store.ValidUsername(username) {
		return zap.Skip()
	}
	return zap.String("username", username)
}

// clip shortens hostile input quoted back in an error.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Show returns one account.
func (o *adminOps) Show(ctx context.Context, username string) (AccountJSON, error) {
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, err
	}
	acct, err := o.store.AccountByUsername(ctx, username)
	if err != nil {
		return AccountJSON{}, o.storeError(err, username)
	}
	return accountJSON(acct), nil
}

// Create provisions an account.
func (o *adminOps) Create(ctx context.Context, who adminActor, req NewAccountRequest) (AccountJSON, error) {
	const event = "admin.account.created"
	if err := req.validate(); err != nil {
		return AccountJSON{}, o.fail(who, event, badRequest(err))
	}
	acct := req.account()
	ids := []zap.Field{zap.String("username", acct.Username), zap.String("edipi", acct.EDIPI)}
	if err := o.store.CreateAccount(ctx, acct); err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, acct.Username), ids...)
	}
	o.changed()
	o.record(who, event, audit.Success, append(ids, zap.String("status", string(acct.Status)), zap.Strings("groups", acct.Groups))...)
	created, err := o.store.AccountByUsername(ctx, acct.Username)
	if err != nil {
		return AccountJSON{}, o.storeError(err, acct.Username)
	}
	return accountJSON(created), nil
}

// Approve lets a pending account in. Only a pending account can be
// approved, atomically, so approving cannot re-enable a disabled account.
func (o *adminOps) Approve(ctx context.Context, who adminActor, username string) (AccountJSON, error) {
	const event = "admin.account.approved"
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, o.fail(who, event, err)
	}
	acct, err := o.store.TransitionStatus(ctx, username, store.StatusPending, store.StatusActive)
	if errors.Is(err, store.ErrStatusConflict) {
		return AccountJSON{}, o.fail(who, event, conflict("account %q is not pending approval", username), zap.String("username", username))
	}
	if err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), zap.String("username", username))
	}
	o.changed()
	o.record(who, event, audit.Success, zap.String("username", username), zap.String("edipi", acct.EDIPI), zap.String("status", string(acct.Status)))
	return accountJSON(acct), nil
}

// Disable refuses an account sign-in from now on, whatever its status;
// its cards stay registered to it.
func (o *adminOps) Disable(ctx context.Context, who adminActor, username string) (AccountJSON, error) {
	const event = "admin.account.disabled"
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, o.fail(who, event, err)
	}
	acct, err := o.store.SetStatus(ctx, username, store.StatusDisabled)
	if err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), zap.String("username", username))
	}
	o.changed()
	o.record(who, event, audit.Success, zap.String("username", username), zap.String("edipi", acct.EDIPI), zap.String("status", string(acct.Status)))
	return accountJSON(acct), nil
}

// Enable lets a disabled account in again. A pending account is refused:
// it is let in by approving it, so that approval is what the audit trail
// shows. Enabling an active account changes nothing and succeeds.
func (o *adminOps) Enable(ctx context.Context, who adminActor, username string) (AccountJSON, error) {
	const event = "admin.account.enabled"
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, o.fail(who, event, err)
	}
	acct, err := o.store.TransitionStatus(ctx, username, store.StatusDisabled, store.StatusActive)
	switch {
	case errors.Is(err, store.ErrStatusConflict) && acct == nil:
		// TransitionStatus does not return the account on a conflict:
		// read it to say why.
		cur, rerr := o.store.AccountByUsername(ctx, username)
		if rerr != nil {
			return AccountJSON{}, o.fail(who, event, o.storeError(rerr, username), zap.String("username", username))
		}
		if cur.Status == store.StatusActive {
			o.record(who, event, audit.Success, zap.String("username", username), zap.String("edipi", cur.EDIPI),
				zap.String("status", string(cur.Status)), zap.Bool("changed", false))
			return accountJSON(cur), nil
		}
		return AccountJSON{}, o.fail(who, event, conflict("account %q is %s: approve it instead", username, cur.Status),
			zap.String("username", username), zap.String("edipi", cur.EDIPI))
	case err != nil:
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), zap.String("username", username))
	}
	o.changed()
	o.record(who, event, audit.Success, zap.String("username", username), zap.String("edipi", acct.EDIPI),
		zap.String("status", string(acct.Status)), zap.Bool("changed", true))
	return accountJSON(acct), nil
}

// Unlock lifts an account's password lockout and clears its failed
// sign-ins.
func (o *adminOps) Unlock(ctx context.Context, who adminActor, username string) (AccountJSON, error) {
	const event = "admin.account.unlocked"
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, o.fail(who, event, err)
	}
	acct, err := o.store.AccountByUsername(ctx, username)
	if err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), zap.String("username", username))
	}
	if err := o.store.Unlock(ctx, acct.ID); err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), zap.String("username", username), zap.String("edipi", acct.EDIPI))
	}
	o.changed()
	fields := []zap.Field{zap.String("username", username), zap.String("edipi", acct.EDIPI)}
	if !acct.LockedUntil.IsZero() {
		fields = append(fields, zap.Time("was_locked_until", acct.LockedUntil.UTC()))
	}
	o.record(who, event, audit.Success, fields...)
	if acct, err = o.store.AccountByUsername(ctx, username); err != nil {
		return AccountJSON{}, o.storeError(err, username)
	}
	return accountJSON(acct), nil
}

// maxPEM bounds a certificate given to LinkCard.
const maxPEM = 16 << 10

// LinkCard registers a card, given as its PEM certificate, to an account.
// The card must carry the account's DoD ID: the CA vouches for that, the
// administrator does not.
func (o *adminOps) LinkCard(ctx context.Context, who adminActor, username, certPEM string) (AccountJSON, error) {
	const event = "admin.card.linked"
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, o.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username)}
	if len(certPEM) > maxPEM {
		return AccountJSON{}, o.fail(who, event, badRequest(errors.New("certificate is too large")), fields...)
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return AccountJSON{}, o.fail(who, event, badRequest(errors.New("certificate must be a PEM-encoded certificate")), fields...)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return AccountJSON{}, o.fail(who, event, badRequest(fmt.Errorf("parsing certificate: %w", err)), fields...)
	}
	id, err := cacid.Parse(cert)
	if err != nil {
		return AccountJSON{}, o.fail(who, event, badRequest(err), fields...)
	}
	fields = append(fields, audit.Card(id)...)
	acct, err := o.store.AccountByUsername(ctx, username)
	if err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), fields...)
	}
	if acct.EDIPI != id.EDIPI {
		// edipi in fields is the card's; the account's is named here.
		return AccountJSON{}, o.fail(who, event, badRequest(fmt.Errorf("the certificate's DoD ID %s is not the account's (%s)", id.EDIPI, acct.EDIPI)),
			append(fields, zap.String("account_edipi", acct.EDIPI))...)
	}
	err = o.store.LinkCard(ctx, acct.ID, store.Card{
		Fingerprint: id.FingerprintHex, Subject: id.Subject, Issuer: id.Issuer, Serial: id.Serial, NotAfter: id.NotAfter,
	})
	if err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), fields...)
	}
	o.changed()
	o.record(who, event, audit.Success, fields...)
	if acct, err = o.store.AccountByUsername(ctx, username); err != nil {
		return AccountJSON{}, o.storeError(err, username)
	}
	return accountJSON(acct), nil
}

// UnlinkCard clears a card's registration; link_by_edipi will not link it
// again, only an explicit LinkCard.
func (o *adminOps) UnlinkCard(ctx context.Context, who adminActor, username, fingerprint string) error {
	const event = "admin.card.unlinked"
	if err := checkUsername(username); err != nil {
		return o.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username)}
	if !store.ValidFingerprint(fingerprint) {
		return o.fail(who, event, badRequest(errors.New("card must be identified by the lowercase hex SHA-256 of its certificate")), fields...)
	}
	fields = append(fields, zap.String("cert_sha256", fingerprint))
	if err := o.store.UnlinkCard(ctx, username, fingerprint); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return o.fail(who, event, notFound("account %q has no card %s", username, fingerprint), fields...)
		}
		return o.fail(who, event, o.storeError(err, username), fields...)
	}
	o.changed()
	o.record(who, event, audit.Success, fields...)
	return nil
}
