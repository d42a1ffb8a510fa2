package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
)

// Store is what the provider needs of the account database.
type Store interface {
	SecretStore
	AccountByUsername(ctx context.Context, username string) (*store.Account, error)
	SessionEnded(ctx context.Context, id string) (bool, error)
	UseState(ctx context.Context, id string, expires time.Time) (bool, error)

	OIDCClient(ctx context.Context, id string) (*store.OIDCClientRecord, error)
	SaveOIDCRequest(ctx context.Context, r store.OIDCRequest) error
	SetOIDCCode(ctx context.Context, id, codeHash string) error
	OIDCRequestByID(ctx context.Context, id string) (*store.OIDCRequest, error)
	UseOIDCCode(ctx context.Context, codeHash string, at time.Time) (*store.OIDCRequest, error)
	InsertOIDCRefresh(ctx context.Context, t store.OIDCRefresh) error
	OIDCRefreshToken(ctx context.Context, id string) (*store.OIDCRefresh, error)
	RotateOIDCRefresh(ctx context.Context, old string, next store.OIDCRefresh, at time.Time) error
	RevokeOIDCGrant(ctx context.Context, grantID string) (int64, error)
	DeleteOIDCRefresh(ctx context.Context, id string) (int64, error)
	PruneOIDC(ctx context.Context, before time.Time) (int64, error)
}

var _ Store = (*store.SQLStore)(nil)

// storage implements op.Storage over the account database: the library
// speaks the protocol, storage decides who gets what.
type storage struct {
	p *Provider
}

// errRefused is a refusal the audit log names by its reason.
type errRefused struct{ reason string }

func (e errRefused) Error() string { return "refused: " + e.reason }

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// identityKey is the context key of the sign-in Authorize completed.
type identityKey struct{}

// CreateAuthRequest implements op.AuthStorage. The provider calls it only
// from Authorize, with the gateway's sign-in in ctx; anything else is
// refused (fail closed).
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	g, ok := ctx.Value(identityKey{}).(*grant)
	if !ok || g == nil {
		return nil, errors.New("no sign-in")
	}
	return g, nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.p.cfg.Store.OIDCRequestByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return decodeGrant(r.Request)
}

func decodeGrant(b []byte) (*grant, error) {
	var g grant
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("stored grant: %w", err)
	}
	return &g, nil
}

// AuthRequestByCode implements op.AuthStorage: it spends the code, once
// across the cluster. A code presented again revokes every refresh token
// the first exchange gave (RFC 6749 section 4.1.2).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	now := s.p.now()
	r, err := s.p.cfg.Store.UseOIDCCode(ctx, hashToken(code), now)
	if errors.Is(err, store.ErrOIDCReplayed) {
		n, rerr := s.p.cfg.Store.RevokeOIDCGrant(ctx, r.ID)
		s.p.auditWrite(ctx, "oidc.code_replayed", audit.Failure, zap.String("client_id", r.ClientID),
			zap.String("grant", r.ID), zap.Int64("refresh_tokens_revoked", n), zap.NamedError("revoke_error", rerr))
		return nil, errRefused{"code_replayed"}
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errRefused{"code_unknown_or_expired"}
		}
		return nil, err
	}
	g, err := decodeGrant(r.Request)
	if err != nil {
		return nil, err
	}
	if err := s.p.checkGrant(ctx, g); err != nil {
		s.p.auditWrite(ctx, "oidc.token", audit.Failure, zap.String("client_id", g.ClientID),
			zap.String("username", g.Snapshot.Username), zap.String("grant_type", "authorization_code"), zap.String("reason", reasonOf(err)))
		return nil, err
	}
	return g, nil
}

// SaveAuthCode implements op.AuthStorage: the code's hash only.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.cfg.Store.SetOIDCCode(ctx, id, hashToken(code))
}

// DeleteAuthRequest implements op.AuthStorage. The spent code's row is
// kept until it expires, so that a replay is recognised as one.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// accessToken is what an opaque access token says, encrypted with the
// key every node shares (op.Crypto): no node needs a database row to read
// it, and every node checks the account behind it at the userinfo
// endpoint.
type accessToken struct {
	Grant       string   `json:"g"`
	Client      string   `json:"c"`
	AccountID   int64    `json:"a"`
	Username    string   `json:"u"`
	Kind        string   `json:"k"`
	SessionID   string   `json:"s,omitempty"`
	Fingerprint string   `json:"f,omitempty"`
	Scopes      []string `json:"sc"`
	Expires     int64    `json:"x"`
}

// CreateAccessToken implements op.AuthStorage.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, ok := req.(*grant)
	if !ok {
		return "", time.Time{}, errors.New("unsupported token request")
	}
	client, err := s.p.client(ctx, g.ClientID)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := s.p.now().Add(client.accessTTL)
	b, err := json.Marshal(accessToken{Grant: g.ID, Client: g.ClientID, AccountID: g.AccountID, Username: g.Snapshot.Username,
		Kind: g.Kind, SessionID: g.SessionID, Fingerprint: g.Fingerprint, Scopes: g.GetScopes(), Expires: exp.Unix()})
	if err != nil {
		return "", time.Time{}, err
	}
	s.p.auditWrite(ctx, "oidc.token", audit.Success, zap.String("client_id", g.ClientID), zap.String("username", g.Snapshot.Username),
		zap.String("grant", g.ID), zap.String("credential_kind", g.Kind), zap.Bool("refresh_token", false))
	return base64.RawURLEncoding.EncodeToString(b), exp, nil
}

// CreateAccessAndRefreshTokens implements op.AuthStorage: a new refresh
// token for a code exchange with offline_access, or the next one of a
// refresh (the presented token is spent, once across the cluster).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, ok := req.(*grant)
	if !ok {
		return "", "", time.Time{}, errors.New("unsupported token request")
	}
	client, err := s.p.client(ctx, g.ClientID)
	if err != nil {
		return "", "", time.Time{}, err
	}
	if client.refreshTTL <= 0 {
		return "", "", time.Time{}, oidc.ErrUnauthorizedClient().WithDescription("refresh tokens are off for this client")
	}
	tok, err := randomToken()
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.p.now()
	exp := now.Add(client.refreshTTL)
	if g.Kind == KindPassword && !g.SessionEnd.IsZero() && g.SessionEnd.Before(exp) {
		// A refresh token never outlives the session it came from.
		exp = g.SessionEnd
	}
	stored := *g
	stored.currentScopes = nil
	body, err := json.Marshal(&stored)
	if err != nil {
		return "", "", time.Time{}, err
	}
	rec := store.OIDCRefresh{ID: hashToken(tok), GrantID: g.ID, ClientID: g.ClientID, AccountID: g.AccountID,
		Username: g.Snapshot.Username, SessionID: g.SessionID, Fingerprint: g.Fingerprint, Request: body, Created: now, Expires: exp}
	if current == "" {
		err = s.p.cfg.Store.InsertOIDCRefresh(ctx, rec)
	} else {
		err = s.p.cfg.Store.RotateOIDCRefresh(ctx, hashToken(current), rec, now)
	}
	if errors.Is(err, store.ErrOIDCReplayed) {
		// Lost a race with another refresh of the same token: whoever
		// holds both is not one well-behaved client.
		n, rerr := s.p.cfg.Store.RevokeOIDCGrant(ctx, g.ID)
		s.p.auditWrite(ctx, "oidc.refresh_replayed", audit.Failure, zap.String("client_id", g.ClientID), zap.String("username", g.Snapshot.Username),
			zap.String("grant", g.ID), zap.Int64("refresh_tokens_revoked", n), zap.NamedError("revoke_error", rerr))
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	if err != nil {
		return "", "", time.Time{}, err
	}
	id, accessExp, err := s.CreateAccessToken(ctx, g)
	if err != nil {
		return "", "", time.Time{}, err
	}
	grantType := "authorization_code"
	if current != "" {
		grantType = "refresh_token"
	}
	s.p.auditWrite(ctx, "oidc.refresh_token", audit.Success, zap.String("client_id", g.ClientID), zap.String("username", g.Snapshot.Username),
		zap.String("grant", g.ID), zap.String("grant_type", grantType), zap.Time("expires", exp.UTC()))
	return id, tok, accessExp, nil
}

// TokenRequestByRefreshToken implements op.AuthStorage: the grant behind
// a refresh token, provided the account, card and session it came from
// are all still good, read from the database now (so a change made on
// any node stops the next refresh everywhere).
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rec, err := s.p.cfg.Store.OIDCRefreshToken(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		s.p.auditWrite(ctx, "oidc.token", audit.Failure, zap.String("grant_type", "refresh_token"), zap.String("reason", "refresh_token_unknown"))
		return nil, errRefused{"refresh_token_unknown"}
	}
	if err != nil {
		return nil, err
	}
	if rec.Used {
		n, rerr := s.p.cfg.Store.RevokeOIDCGrant(ctx, rec.GrantID)
		s.p.auditWrite(ctx, "oidc.refresh_replayed", audit.Failure, zap.String("client_id", rec.ClientID), zap.String("username", rec.Username),
			zap.String("grant", rec.GrantID), zap.Int64("refresh_tokens_revoked", n), zap.NamedError("revoke_error", rerr))
		return nil, errRefused{"refresh_token_replayed"}
	}
	if !s.p.now().Before(rec.Expires) {
		return nil, errRefused{"refresh_token_expired"}
	}
	g, err := decodeGrant(rec.Request)
	if err != nil {
		return nil, err
	}
	if err := s.p.checkGrant(ctx, g); err != nil {
		s.p.auditWrite(ctx, "oidc.token", audit.Failure, zap.String("client_id", g.ClientID), zap.String("username", g.Snapshot.Username),
			zap.String("grant_type", "refresh_token"), zap.String("reason", reasonOf(err)))
		return nil, err
	}
	return g, nil
}

// TerminateSession implements op.AuthStorage; logout goes through
// Provider.EndSession instead.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken implements op.AuthStorage (RFC 7009). Access tokens are
// short-lived and stateless, so only refresh tokens are revoked.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if userID != "" {
		return nil
	}
	rec, err := s.p.cfg.Store.OIDCRefreshToken(ctx, hashToken(tokenOrID))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if rec.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	n, err := s.p.cfg.Store.RevokeOIDCGrant(ctx, rec.GrantID)
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	s.p.auditWrite(ctx, "oidc.revoke", audit.Success, zap.String("client_id", clientID), zap.String("username", rec.Username),
		zap.String("grant", rec.GrantID), zap.Int64("refresh_tokens_revoked", n))
	return nil
}

// GetRefreshTokenInfo implements op.AuthStorage.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rec, err := s.p.cfg.Store.OIDCRefreshToken(ctx, hashToken(token))
	if err != nil || rec.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rec.Username, rec.ID, nil
}

// SigningKey implements op.AuthStorage.
func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	return s.p.keys.signing(ctx)
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.AuthStorage.
func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	return s.p.keys.published(ctx)
}

// GetClientByClientID implements op.OPStorage.
func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.OPStorage.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.p.client(ctx, id)
	if err != nil {
		return err
	}
	if !c.CheckSecret(secret) {
		return errRefused{"wrong_client_secret"}
	}
	return nil
}

// SetUserinfoFromScopes implements op.OPStorage (deprecated: see
// SetUserinfoFromRequest).
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID
// token's claims, as the client may have them.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, u *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	g, ok := req.(*grant)
	if !ok {
		return errors.New("unsupported token request")
	}
	client, err := s.p.client(ctx, g.ClientID)
	if err != nil {
		return err
	}
	client.fillUserinfo(u, g.Subject, g.Kind, &g.Snapshot, scopes)
	u.AppendClaims("sid", g.ID)
	return nil
}

// SetUserinfoFromToken implements op.OPStorage: the userinfo endpoint.
// The account is read now, so a disabled account, an unlinked card or an
// ended session gets nothing more, on any node.
func (s *storage) SetUserinfoFromToken(ctx context.Context, u *oidc.UserInfo, tokenID, subject, _ string) error {
	b, err := base64.RawURLEncoding.DecodeString(tokenID)
	if err != nil {
		return oidc.ErrAccessDenied()
	}
	var at accessToken
	if err := json.Unmarshal(b, &at); err != nil {
		return oidc.ErrAccessDenied()
	}
	if s.p.now().Unix() >= at.Expires {
		return oidc.ErrAccessDenied().WithDescription("access token expired")
	}
	client, err := s.p.client(ctx, at.Client)
	if err != nil {
		return oidc.ErrAccessDenied()
	}
	g := &grant{ID: at.Grant, ClientID: at.Client, AccountID: at.AccountID, Kind: at.Kind, SessionID: at.SessionID,
		Fingerprint: at.Fingerprint, Snapshot: Snapshot{Username: at.Username}}
	acct, err := s.p.checkAccount(ctx, g)
	if err != nil {
		s.p.auditWrite(ctx, "oidc.userinfo", audit.Failure, zap.String("client_id", at.Client), zap.String("username", at.Username), zap.String("reason", reasonOf(err)))
		return oidc.ErrAccessDenied().WithDescription("%s", reasonOf(err))
	}
	g.Snapshot.refreshFrom(acct)
	sub := subjectOf(s.p.cfg.Subject, s.p.subjectKey, acct)
	if sub != subject {
		return oidc.ErrAccessDenied()
	}
	client.fillUserinfo(u, sub, at.Kind, &g.Snapshot, at.Scopes)
	return nil
}

// SetIntrospectionFromToken implements op.OPStorage: introspection is not
// offered.
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return oidc.ErrAccessDenied().WithDescription("introspection is not offered")
}

// GetPrivateClaimsFromScopes implements op.OPStorage.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.OPStorage: a private_key_jwt
// client's public key.
func (s *storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	c, err := s.p.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c.cfg.AuthMethod != AuthPrivateKeyJWT {
		return nil, errRefused{"client_has_no_keys"}
	}
	for i := range c.jwks {
		if c.jwks[i].KeyID == keyID || (keyID == "" && len(c.jwks) == 1) {
			k := c.jwks[i]
			return &k, nil
		}
	}
	return nil, errRefused{"unknown_client_key"}
}

// ValidateJWTProfileScopes implements op.OPStorage: the JWT profile grant
// is not offered.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

// checkGrant refuses a grant whose account, card or session is no longer
// good, and refreshes its snapshot from the account.
func (p *Provider) checkGrant(ctx context.Context, g *grant) error {
	acct, err := p.checkAccount(ctx, g)
	if err != nil {
		return err
	}
	if g.Kind == KindPassword && g.AuthTime.Before(acct.PasswordChangedAt.Truncate(time.Second)) {
		return errRefused{"password_changed"}
	}
	var chain []*x509.Certificate
	if g.Kind != KindPassword {
		for _, der := range g.Chain {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return errRefused{"card_unreadable"}
			}
			chain = append(chain, c)
		}
		if len(chain) > 0 && p.cfg.Revocation != nil {
			if v := p.cfg.Revocation.CheckChain(ctx, chain); v.Status != revocation.StatusGood {
				return errRefused{"card_" + v.Status.String()}
			}
		}
	}
	if p.cfg.Access != nil {
		if reason := p.cfg.Access(acct, chain); reason != "" {
			return errRefused{"access_" + reason}
		}
	}
	g.Snapshot.refreshFrom(acct)
	return nil
}

// checkAccount reads the grant's account now: it must exist (the same
// one), be active, still hold the card (for a card sign-in), and the
// password session must not have ended.
func (p *Provider) checkAccount(ctx context.Context, g *grant) (*store.Account, error) {
	acct, err := p.cfg.Store.AccountByUsername(ctx, g.Snapshot.Username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRefused{"account_gone"}
	}
	if err != nil {
		return nil, err
	}
	switch {
	case acct.ID != g.AccountID:
		return nil, errRefused{"account_gone"}
	case acct.Status != store.StatusActive:
		return nil, errRefused{"account_" + string(acct.Status)}
	}
	switch g.Kind {
	case KindPassword:
		ended, err := p.cfg.Store.SessionEnded(ctx, g.SessionID)
		if err != nil {
			return nil, err
		}
		if ended {
			return nil, errRefused{"session_ended"}
		}
		if !g.SessionEnd.IsZero() && !p.now().Before(g.SessionEnd) {
			return nil, errRefused{"session_expired"}
		}
	default:
		if !slices.ContainsFunc(acct.Cards, func(c store.Card) bool { return c.Fingerprint == g.Fingerprint }) {
			return nil, errRefused{"card_unlinked"}
		}
	}
	return acct, nil
}

func reasonOf(err error) string {
	var r errRefused
	if errors.As(err, &r) {
		return r.reason
	}
	return "error"
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)
