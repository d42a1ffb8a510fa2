package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/npe"
	"github.com/cacgate/cacgate/internal/store"
)

// Utility (non-person) accounts: created by an administrator, sponsored by
// an active person's account (disabled with it), with an expiry; DoD
// non-person-entity certificates registered to them reach the backend as
// the account, without the banner.

// Audit events of utility accounts.
const (
	EventUtilityCreated  = "admin.utility.created"
	EventNPERegistered   = "admin.npe.registered"
	EventNPEUnregistered = "admin.npe.unregistered"
	EventUtilityRenewed  = "admin.utility.renewed"
)

// RenewUtilityRequest is the body of POST /cacgate/accounts/{username}/renew.
type RenewUtilityRequest struct {
	Sponsor   string    `json:"sponsor,omitempty"` // "" keeps the current sponsor
	ExpiresAt time.Time `json:"expires_at"`
}

// Kinds of NPE registration.
const (
	MatchFingerprint = "fingerprint" // this certificate only
	MatchSubject     = "subject"     // any certificate with its subject from its issuer (renewals)
)

// MaxUtilityLifetime bounds a utility account's expiry: a sponsor vouches
// for a system a year at a time.
const MaxUtilityLifetime = 366 * 24 * time.Hour

// NewUtilityRequest is the body of POST /cacgate/utility.
type NewUtilityRequest struct {
	Username    string    `json:"username"`
	Name        string    `json:"name"`
	Email       string    `json:"email,omitempty"`
	Affiliation string    `json:"affiliation,omitempty"`
	Sponsor     string    `json:"sponsor"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// NPERequest is the body of the .../npe routes: the system's certificate
// (PEM) and how to match it.
type NPERequest struct {
	Certificate string `json:"certificate"`
	Match       string `json:"match,omitempty"` // fingerprint (default) or subject
}

// NPECert is one registration as the admin API shows it.
type NPECert struct {
	Match     string    `json:"match"`
	SHA256    string    `json:"sha256,omitempty"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	CreatedAt time.Time `json:"created_at"`
}

// UtilityStore is the store's side of utility accounts.
type UtilityStore interface {
	CreateUtilityAccount(ctx context.Context, u store.UtilityAccount) (*store.Account, error)
	RenewUtilityAccount(ctx context.Context, username, sponsor string, expiresAt time.Time) (*store.Account, error)
	RegisterNPE(ctx context.Context, username string, c store.NPECert) error
	UnregisterNPE(ctx context.Context, username, matchKey string) error
	NPECerts(ctx context.Context, username string) ([]store.NPECert, error)
}

var _ UtilityStore = (*store.SQLStore)(nil)

func (s *Service) utilityStore() (UtilityStore, error) {
	us, ok := s.Store.(UtilityStore)
	if !ok {
		return nil, Errorf(http.StatusNotImplemented, "this account database does not keep utility accounts")
	}
	return us, nil
}

func (r NewUtilityRequest) validate(now time.Time) error {
	switch {
	case !store.ValidUsername(r.Username):
		return errors.New("username must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter")
	case strings.TrimSpace(r.Name) == "" || len(r.Name) > 200:
		return errors.New("name (what the system is) is required, at most 200 characters")
	case !store.ValidUsername(r.Sponsor):
		return errors.New("sponsor must be the username of an active person's account")
	case r.ExpiresAt.IsZero():
		return errors.New("expires_at is required: a utility account always ends")
	case !r.ExpiresAt.After(now):
		return errors.New("expires_at must be in the future")
	case r.ExpiresAt.Sub(now) > MaxUtilityLifetime:
		return errors.New("expires_at must be within a year")
	case len(r.Affiliation) > 100:
		return errors.New("affiliation is at most 100 characters")
	}
	if r.Email != "" {
		if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email || len(r.Email) > 254 {
			return errors.New("email must be a plain address such as team@example.mil")
		}
	}
	return nil
}

// CreateUtility creates a utility account.
func (s *Service) CreateUtility(ctx context.Context, who Actor, req NewUtilityRequest) (Account, error) {
	const event = EventUtilityCreated
	if err := req.validate(time.Now()); err != nil {
		return Account{}, s.fail(who, event, BadRequest(err))
	}
	us, err := s.utilityStore()
	if err != nil {
		return Account{}, s.fail(who, event, err)
	}
	ids := []zap.Field{zap.String("username", req.Username), zap.String("sponsor", req.Sponsor), zap.Time("expires_at", req.ExpiresAt.UTC())}
	acct, err := us.CreateUtilityAccount(ctx, store.UtilityAccount{Username: req.Username, Name: strings.TrimSpace(req.Name),
		Email: req.Email, Affiliation: req.Affiliation, Sponsor: req.Sponsor, ExpiresAt: req.ExpiresAt})
	switch {
	case errors.Is(err, store.ErrSponsorInactive):
		return Account{}, s.fail(who, event, unprocessable(fmt.Errorf("sponsor %q is not an active person's account", req.Sponsor)), ids...)
	case errors.Is(err, store.ErrNotFound):
		return Account{}, s.fail(who, event, notFound("no sponsor account %q", req.Sponsor), ids...)
	case err != nil:
		return Account{}, s.fail(who, event, s.storeError(err, req.Username), ids...)
	}
	s.changed()
	s.record(who, event, audit.Success, ids...)
	return accountOf(acct), nil
}

// RenewUtility gives a utility account a new expiry (and sponsor); it
// stays disabled if it was: enable it after.
func (s *Service) RenewUtility(ctx context.Context, who Actor, username string, req RenewUtilityRequest) (Account, error) {
	const event = EventUtilityRenewed
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	now := time.Now()
	switch {
	case req.Sponsor != "" && !store.ValidUsername(req.Sponsor):
		return Account{}, s.fail(who, event, BadRequest(errors.New("sponsor must be the username of an active person's account")), zap.String("username", username))
	case !req.ExpiresAt.After(now) || req.ExpiresAt.Sub(now) > MaxUtilityLifetime:
		return Account{}, s.fail(who, event, BadRequest(errors.New("expires_at must be in the future and within a year")), zap.String("username", username))
	}
	us, err := s.utilityStore()
	if err != nil {
		return Account{}, s.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username), zap.String("sponsor", req.Sponsor), zap.Time("expires_at", req.ExpiresAt.UTC())}
	acct, err := us.RenewUtilityAccount(ctx, username, req.Sponsor, req.ExpiresAt)
	switch {
	case errors.Is(err, store.ErrNotUtility):
		return Account{}, s.fail(who, event, unprocessable(fmt.Errorf("account %q is not a utility account", username)), fields...)
	case errors.Is(err, store.ErrSponsorInactive):
		return Account{}, s.fail(who, event, unprocessable(fmt.Errorf("sponsor %q is not an active person's account", req.Sponsor)), fields...)
	case err != nil:
		return Account{}, s.fail(who, event, s.storeError(err, username), fields...)
	}
	s.changed()
	s.record(who, event, audit.Success, fields...)
	return accountOf(acct), nil
}

// npeCert reads the certificate of an NPE request and refuses a person's.
func npeCert(req NPERequest) (store.NPECert, error) {
	if len(req.Certificate) > MaxPEM {
		return store.NPECert{}, BadRequest(errors.New("certificate is too large"))
	}
	block, _ := pem.Decode([]byte(req.Certificate))
	if block == nil || block.Type != "CERTIFICATE" {
		return store.NPECert{}, BadRequest(errors.New("certificate must be a PEM-encoded certificate"))
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return store.NPECert{}, BadRequest(fmt.Errorf("parsing certificate: %w", err))
	}
	id := npe.Identity(cert)
	if id == nil {
		return store.NPECert{}, BadRequest(errors.New("this is a person's certificate (it carries a DoD ID, UPN, FASC-N or card UUID): only non-person certificates can be registered to a utility account"))
	}
	c := store.NPECert{Subject: id.Subject, Issuer: id.Issuer}
	switch req.Match {
	case "", MatchFingerprint:
		c.Fingerprint = id.FingerprintHex
	case MatchSubject:
	default:
		return store.NPECert{}, BadRequest(fmt.Errorf("match must be %q or %q", MatchFingerprint, MatchSubject))
	}
	return c, nil
}

func npeFields(username string, c store.NPECert) []zap.Field {
	f := []zap.Field{zap.String("username", username), zap.String("subject", c.Subject), zap.String("issuer", c.Issuer)}
	if c.Fingerprint != "" {
		f = append(f, zap.String("cert_sha256", c.Fingerprint), zap.String("match", MatchFingerprint))
	} else {
		f = append(f, zap.String("match", MatchSubject))
	}
	return f
}

// RegisterNPE registers a non-person certificate to a utility account.
func (s *Service) RegisterNPE(ctx context.Context, who Actor, username string, req NPERequest) ([]NPECert, error) {
	const event = EventNPERegistered
	if err := checkUsername(username); err != nil {
		return nil, s.fail(who, event, err)
	}
	c, err := npeCert(req)
	if err != nil {
		return nil, s.fail(who, event, err, zap.String("username", username))
	}
	us, err := s.utilityStore()
	if err != nil {
		return nil, s.fail(who, event, err)
	}
	fields := npeFields(username, c)
	err = us.RegisterNPE(ctx, username, c)
	switch {
	case errors.Is(err, store.ErrNotUtility):
		return nil, s.fail(who, event, unprocessable(fmt.Errorf("account %q is not a utility account", username)), fields...)
	case errors.Is(err, store.ErrCardTaken):
		return nil, s.fail(who, event, conflict("this certificate (or subject) is already registered"), fields...)
	case err != nil:
		return nil, s.fail(who, event, s.storeError(err, username), fields...)
	}
	s.changed()
	s.record(who, event, audit.Success, fields...)
	return s.NPECerts(ctx, username)
}

// UnregisterNPE removes a registration.
func (s *Service) UnregisterNPE(ctx context.Context, who Actor, username string, req NPERequest) error {
	const event = EventNPEUnregistered
	if err := checkUsername(username); err != nil {
		return s.fail(who, event, err)
	}
	c, err := npeCert(req)
	if err != nil {
		return s.fail(who, event, err, zap.String("username", username))
	}
	us, err := s.utilityStore()
	if err != nil {
		return s.fail(who, event, err)
	}
	fields := npeFields(username, c)
	if err := us.UnregisterNPE(ctx, username, c.MatchKey()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return s.fail(who, event, notFound("account %q has no such registration", username), fields...)
		}
		return s.fail(who, event, s.storeError(err, username), fields...)
	}
	s.changed()
	s.record(who, event, audit.Success, fields...)
	return nil
}

// NPECerts lists a utility account's registrations.
func (s *Service) NPECerts(ctx context.Context, username string) ([]NPECert, error) {
	if err := checkUsername(username); err != nil {
		return nil, err
	}
	us, err := s.utilityStore()
	if err != nil {
		return nil, err
	}
	certs, err := us.NPECerts(ctx, username)
	if err != nil {
		return nil, s.storeError(err, username)
	}
	out := []NPECert{}
	for _, c := range certs {
		m := MatchSubject
		if c.Fingerprint != "" {
			m = MatchFingerprint
		}
		out = append(out, NPECert{Match: m, SHA256: c.Fingerprint, Subject: c.Subject, Issuer: c.Issuer, CreatedAt: c.CreatedAt.UTC()})
	}
	return out, nil
}

// CreateUtility implements Backend.
func (c *Client) CreateUtility(ctx context.Context, _ Actor, req NewUtilityRequest) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, "/cacgate/utility", req, "", &acct)
	return acct, err
}

// RenewUtility implements Backend.
func (c *Client) RenewUtility(ctx context.Context, _ Actor, username string, req RenewUtilityRequest) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, userPath(username)+"/renew", req, "", &acct)
	return acct, err
}

// RegisterNPE implements Backend.
func (c *Client) RegisterNPE(ctx context.Context, _ Actor, username string, req NPERequest) ([]NPECert, error) {
	var out []NPECert
	err := c.call(ctx, http.MethodPost, userPath(username)+"/npe", req, "", &out)
	return out, err
}

// UnregisterNPE implements Backend.
func (c *Client) UnregisterNPE(ctx context.Context, _ Actor, username string, req NPERequest) error {
	return c.call(ctx, http.MethodDelete, userPath(username)+"/npe", req, "", nil)
}

// NPECerts implements Backend.
func (c *Client) NPECerts(ctx context.Context, username string) ([]NPECert, error) {
	var out []NPECert
	err := c.call(ctx, http.MethodGet, userPath(username)+"/npe", nil, "", &out)
	return out, err
}

// MailTest has the server send a test message (POST /cacgate/mail/test).
func (c *Client) MailTest(ctx context.Context, to string) error {
	return c.call(ctx, http.MethodPost, "/cacgate/mail/test", map[string]string{"to": to}, "", nil)
}
