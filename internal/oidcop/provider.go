// Package oidcop is cacgate's OpenID Provider: a web layer over the
// gateway's sign-in and the account store, built on zitadel/oidc's
// certified op package. The library speaks the protocol (discovery,
// authorization and token endpoints, PKCE, client authentication, ID
// token signing); this package decides who signs in (the gateway, through
// a Gate), what each client may learn (claims.go), and keeps every piece
// of state in the database all nodes share: single-use codes, refresh
// tokens bound to the account's state, signing keys rotated with overlap.
package oidcop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"go.uber.org/zap"
	"golang.org/x/text/language"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
	"github.com/cacgate/cacgate/revocation"
)

// Paths. The endpoints live under the gateway's own prefix, where no
// backend page can be; discovery where OpenID Connect puts it; the end of
// a session is the gateway's own sign-out page.
const (
	PathPrefix    = "/.cacgate/oidc/"
	PathAuthorize = PathPrefix + "authorize"
	PathToken     = PathPrefix + "token"
	PathUserinfo  = PathPrefix + "userinfo"
	PathKeys      = PathPrefix + "keys"
	PathRevoke    = PathPrefix + "revoke"
	PathDiscovery = "/.well-known/openid-configuration"
	PathLogout    = "/.cacgate/logout"
)

// DefaultCodeTTL is how long an authorization code may wait for its
// exchange.
const DefaultCodeTTL = time.Minute

// Config is one provider's (one site's) configuration.
type Config struct {
	// Issuer is the provider's issuer URL (https, no trailing slash); ""
	// takes it from each request's host.
	Issuer string
	Store  Store
	// Revocation re-checks a card's chain at each refresh; nil: no check.
	Revocation *revocation.Checker
	// Access re-applies the site's access rules at each refresh (the
	// account as it is now, the card's chain as verified at sign-in); it
	// reports the refusal's reason code, or "" to allow. Nil: none.
	Access func(acct *store.Account, chain []*x509.Certificate) (refused string)
	Audit  *audit.Log
	Logger *zap.Logger
	// Clients are the configured relying parties; others are read from
	// the store (registered through the admin API). A configured client
	// hides a registered one of the same ID.
	Clients []*Client
	// Subject is how sub is derived (SubjectOpaque by default).
	Subject string
	// KeyRotation is the signing keys' rotation period.
	KeyRotation time.Duration
	// CodeTTL bounds the wait between authorization and code exchange.
	CodeTTL time.Duration
	// Contact is shown on the provider's error pages.
	Contact string
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Secret names in the store's secrets table (shared by every node).
const (
	secretTokenKey   = "oidc-token-key"
	secretSubjectKey = "oidc-subject-key"
)

// Provider is a running OpenID Provider.
type Provider struct {
	cfg        Config
	op         *op.Provider
	storage    *storage
	keys       *keyring
	static     map[string]*Client
	subjectKey []byte
}

// New returns a provider for cfg; ctx bounds the loading of its keys.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, errors.New("oidc: incomplete configuration")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Subject == "" {
		cfg.Subject = SubjectOpaque
	}
	switch cfg.Subject {
	case SubjectOpaque, SubjectUsername, SubjectEDIPI:
	default:
		return nil, fmt.Errorf("oidc: subject must be %s, %s or %s, got %q", SubjectOpaque, SubjectUsername, SubjectEDIPI, cfg.Subject)
	}
	if cfg.KeyRotation == 0 {
		cfg.KeyRotation = DefaultKeyRotation
	}
	if cfg.KeyRotation < time.Hour {
		return nil, errors.New("oidc: key_rotation must be at least 1h")
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	if cfg.CodeTTL < 10*time.Second || cfg.CodeTTL > 10*time.Minute {
		return nil, errors.New("oidc: code_ttl must be between 10s and 10m")
	}
	p := &Provider{cfg: cfg, static: map[string]*Client{}}
	for _, c := range cfg.Clients {
		if _, dup := p.static[c.GetID()]; dup {
			return nil, fmt.Errorf("oidc: client %s is configured twice", c.GetID())
		}
		// Tokens outlive no key: a key is published for a period after
		// it stops signing.
		if c.idTTL > cfg.KeyRotation || c.accessTTL > cfg.KeyRotation {
			return nil, fmt.Errorf("oidc: client %s: token lifetimes must not exceed key_rotation", c.GetID())
		}
		p.static[c.GetID()] = c
	}
	random32 := func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := randRead(b)
		return b, err
	}
	tokenKey, err := cfg.Store.EnsureSecret(ctx, secretTokenKey, random32)
	if err != nil {
		return nil, fmt.Errorf("oidc: token key: %w", err)
	}
	if p.subjectKey, err = cfg.Store.EnsureSecret(ctx, secretSubjectKey, random32); err != nil {
		return nil, fmt.Errorf("oidc: subject key: %w", err)
	}
	p.keys = newKeyring(cfg.Store, cfg.KeyRotation, cfg.Now)
	// Load (or create) the published keys now: the first token request
	// should not pay for RSA key generation.
	if _, err := p.keys.published(ctx); err != nil {
		return nil, err
	}
	p.storage = &storage{p: p}
	opCfg := &op.Config{
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		AuthMethodPrivateKeyJWT:  true,
		GrantTypeRefreshToken:    true,
		DefaultLogoutRedirectURI: PathLogout,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes:          KnownScopes,
		SupportedClaims:          supportedClaims(),
	}
	copy(opCfg.CryptoKey[:], tokenKey)
	issuer := op.IssuerFromHost("")
	if cfg.Issuer != "" {
		issuer = op.StaticIssuer(cfg.Issuer)
	}
	p.op, err = op.NewProvider(opCfg, p.storage, issuer,
		op.WithCustomAuthEndpoint(op.NewEndpoint(PathAuthorize)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(PathToken)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(PathUserinfo)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(PathKeys)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(PathRevoke)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(PathLogout)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(PathPrefix+"introspect")),
		op.WithCustomDeviceAuthorizationEndpoint(op.NewEndpoint(PathPrefix+"device_authorization")),
		// Relying parties' servers call the token endpoint; browsers
		// need no cross-origin access to any of this.
		op.WithCORSOptions(nil),
	)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	return p, nil
}

func supportedClaims() []string {
	claims := []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash", "sid"}
	for c := range claimScope {
		claims = append(claims, c)
	}
	slices.Sort(claims[13:])
	return claims
}

func (p *Provider) now() time.Time { return p.cfg.Now() }

// client returns the client id: a configured one, else a registered one.
func (p *Provider) client(ctx context.Context, id string) (*Client, error) {
	if c, ok := p.static[id]; ok {
		return c, nil
	}
	rec, err := p.cfg.Store.OIDCClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRefused{"unknown_client"}
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	cfg, err := DecodeClient(rec.Config)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return cfg.Compile()
}

// Configured reports whether client id is in the configuration (and so
// cannot be managed through the admin API).
func (p *Provider) Configured(id string) bool {
	_, ok := p.static[id]
	return ok
}

// Handles reports whether path is one of the provider's (the
// authorization endpoint excepted: see Authorize).
func Handles(path string) bool {
	return path == PathDiscovery || strings.HasPrefix(path, PathPrefix)
}

// ServeHTTP serves discovery, the token, userinfo, keys and revocation
// endpoints: the ones relying parties' servers call, with no card.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = withRequest(r)
	switch r.URL.Path {
	case PathDiscovery:
		p.serveDiscovery(w, r)
	case PathToken:
		p.serveToken(w, r)
	case PathUserinfo, PathKeys, PathRevoke:
		p.op.ServeHTTP(w, r)
	default:
		_ = ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Not found",
			Detail: "There is no such OpenID Connect endpoint here.", Contact: p.cfg.Contact})
	}
}

// serveDiscovery is the library's document, trimmed to what is offered.
func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.op.IssuerFromRequest(r))
	d := op.CreateDiscoveryConfig(ctx, p.op, p.storage)
	d.IntrospectionEndpoint = ""
	d.DeviceAuthorizationEndpoint = ""
	d.CheckSessionIframe = ""
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{"query", "form_post"}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodPrivateKeyJWT, oidc.AuthMethodNone}
	d.ACRValuesSupported = []string{ACRCard, ACRPassword}
	d.RequestParameterSupported = false
	d.RequestURIParameterSupported = false
	w.Header().Set("Cache-Control", "public, max-age=300")
	op.Discover(w, d)
}

// serveToken is the library's token endpoint, with every refusal audited
// (successes are audited where the tokens are made, knowing whose).
func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	rec := &errorRecorder{ResponseWriter: w}
	// Parsed here, bounded, so that the form is at hand for the audit.
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	if a := r.PostForm.Get("client_assertion"); a != "" {
		if reason := p.spendAssertion(r.Context(), a); reason != "" {
			p.cfg.Audit.Request(r, "oidc.token", audit.Failure, audit.Text("client_id", r.PostForm.Get("client_id")),
				audit.Text("grant_type", r.PostForm.Get("grant_type")), zap.String("reason", reason))
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"client assertion refused: ` + reason + `"}`))
			return
		}
	}
	p.op.ServeHTTP(rec, r)
	if rec.status < 400 {
		return
	}
	clientID, _, _ := r.BasicAuth()
	if clientID == "" && r.PostForm != nil {
		clientID = r.PostForm.Get("client_id")
	}
	grantType := ""
	if r.PostForm != nil {
		grantType = r.PostForm.Get("grant_type")
	}
	p.cfg.Audit.Request(r, "oidc.token", audit.Failure, audit.Text("client_id", clientID), audit.Text("grant_type", grantType),
		zap.Int("status", rec.status), audit.Text("error", rec.errorCode()))
}

// errorRecorder keeps a response's status and the start of an error body.
type errorRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (e *errorRecorder) WriteHeader(code int) {
	if e.status == 0 {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorRecorder) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	if e.status >= 400 && e.body.Len() < 512 {
		e.body.Write(b[:min(len(b), 512-e.body.Len())])
	}
	return e.ResponseWriter.Write(b)
}

func (e *errorRecorder) errorCode() string {
	s := e.body.String()
	i := strings.Index(s, `"error":"`)
	if i < 0 {
		return ""
	}
	s = s[i+len(`"error":"`):]
	if j := strings.IndexByte(s, '"'); j >= 0 {
		return s[:j]
	}
	return ""
}

// auditWrite writes an audit event for the request in ctx, if any.
func (p *Provider) auditWrite(ctx context.Context, event, outcome string, fields ...zap.Field) {
	if r, ok := ctx.Value(requestKey{}).(*http.Request); ok {
		p.cfg.Audit.Request(r, event, outcome, fields...)
		return
	}
	p.cfg.Audit.Write(event, outcome, fields...)
}

type requestKey struct{}

// WithRequest makes r the audited request of the provider's storage calls.
func withRequest(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), requestKey{}, r))
}

// Identity is a sign-in the gateway admitted.
type Identity struct {
	Account  *store.Account // active, allowed by the site's access rules
	Kind     string         // KindCAC (or another card kind) or KindPassword
	AuthTime time.Time
	// The password session (Kind password).
	SessionID  string
	SessionEnd time.Time
	// The card (other kinds): its fingerprint and chain (leaf first, DER).
	Fingerprint string
	Chain       [][]byte
	// Values are what the gateway derived for the backend (account
	// first, card second).
	Snapshot Snapshot
}

// Gate signs a person in through the gateway: every check a protected
// page gets. With interactive true it may answer the request itself (the
// banner, enrollment, a refusal page) and then reports answered; with
// interactive false (prompt=none) it never writes, and a nil identity
// means nobody is signed in.
type Gate func(w http.ResponseWriter, r *http.Request, interactive bool) (id *Identity, answered bool)

// Authorize serves the authorization endpoint: the request is checked
// (client, exact redirect URI, scopes, PKCE) before anyone signs in, then
// the gateway signs the person in, and the code goes back to the client.
func (p *Provider) Authorize(w http.ResponseWriter, r *http.Request, gate Gate) {
	r = withRequest(r.WithContext(op.ContextWithIssuer(r.Context(), p.op.IssuerFromRequest(r))))
	ctx := r.Context()
	refuse := func(authReq op.ErrAuthRequest, reason, clientID string, err error) {
		p.cfg.Audit.Request(r, "oidc.authorize", audit.Failure, audit.Text("client_id", clientID), zap.String("reason", reason))
		if authReq == nil {
			p.problem(w, r, err)
			return
		}
		op.AuthRequestError(NavigationWriter(w, r), r, authReq, err, p.op)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	authReq, err := op.ParseAuthorizeRequest(r, p.op.Decoder())
	if err != nil {
		refuse(nil, "malformed_request", "", err)
		return
	}
	client, err := p.client(ctx, authReq.ClientID)
	if err != nil {
		refuse(nil, "unknown_client", authReq.ClientID, oidc.ErrInvalidRequest().WithDescription("unknown client"))
		return
	}
	if _, err := op.ValidateAuthRequestClient(ctx, authReq, client, p.op.IDTokenHintVerifier(ctx)); err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.InvalidRequest && strings.Contains(oe.Description, "redirect_uri") || !slices.Contains(client.RedirectURIs(), authReq.RedirectURI) {
			// Never send anything to a redirect URI that is not the
			// client's, exactly.
			refuse(nil, "redirect_uri_mismatch", client.GetID(), oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not registered for this client"))
			return
		}
		refuse(authReq, "invalid_request", client.GetID(), err)
		return
	}
	if !slices.Contains(client.RedirectURIs(), authReq.RedirectURI) {
		refuse(nil, "redirect_uri_mismatch", client.GetID(), oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not registered for this client"))
		return
	}
	if authReq.RequestParam != "" {
		refuse(authReq, "request_object", client.GetID(), oidc.ErrRequestNotSupported())
		return
	}
	if authReq.ResponseMode != "" && authReq.ResponseMode != "query" && authReq.ResponseMode != "form_post" {
		refuse(authReq, "response_mode", client.GetID(), oidc.ErrInvalidRequest().WithDescription("response_mode must be query or form_post"))
		return
	}
	if !slices.Contains(authReq.Scopes, oidc.ScopeOpenID) {
		refuse(authReq, "no_openid_scope", client.GetID(), oidc.ErrInvalidScope().WithDescription("the openid scope is required"))
		return
	}
	switch {
	case authReq.CodeChallenge == "" && client.Public():
		refuse(authReq, "pkce_required", client.GetID(), oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge, S256) is required for this client"))
		return
	case authReq.CodeChallenge != "" && authReq.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		refuse(authReq, "pkce_method", client.GetID(), oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256"))
		return
	}
	interactive := !slices.Contains(authReq.Prompt, oidc.PromptNone)
	id, answered := gate(w, r, interactive)
	if answered {
		return
	}
	if id == nil {
		refuse(authReq, "login_required", client.GetID(), oidc.ErrLoginRequired())
		return
	}
	if id.Kind == KindPassword {
		if !client.AllowPassword() {
			refuse(authReq, "password_not_allowed", client.GetID(), oidc.ErrAccessDenied().WithDescription("this application accepts CAC/PIV sign-in only"))
			return
		}
		fresh := !slices.Contains(authReq.Prompt, oidc.PromptLogin) &&
			(authReq.MaxAge == nil || p.now().Sub(id.AuthTime) <= time.Duration(*authReq.MaxAge)*time.Second)
		if !fresh {
			// A card proves itself on every connection; a password
			// session cannot be made fresh here.
			refuse(authReq, "login_required", client.GetID(), oidc.ErrLoginRequired().WithDescription("sign in again with your username and password"))
			return
		}
	}
	g := &grant{
		ID: newGrantID(), ClientID: client.GetID(), RedirectURI: authReq.RedirectURI, State: authReq.State, Nonce: authReq.Nonce,
		Scopes: client.allowScopes(authReq.Scopes), ResponseMode: authReq.ResponseMode,
		AccountID: id.Account.ID, Subject: subjectOf(p.cfg.Subject, p.subjectKey, id.Account), Kind: id.Kind,
		AuthTime: id.AuthTime.UTC().Truncate(time.Second), Snapshot: id.Snapshot, SessionID: id.SessionID, SessionEnd: id.SessionEnd,
		Fingerprint: id.Fingerprint, Chain: id.Chain,
	}
	if authReq.CodeChallenge != "" {
		g.CodeChallenge = &oidc.CodeChallenge{Challenge: authReq.CodeChallenge, Method: authReq.CodeChallengeMethod}
	}
	if client.refreshTTL <= 0 {
		g.Scopes = slices.DeleteFunc(g.Scopes, func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	body, err := jsonMarshal(g)
	if err == nil {
		err = p.cfg.Store.SaveOIDCRequest(ctx, store.OIDCRequest{ID: g.ID, ClientID: g.ClientID, AccountID: g.AccountID, Request: body, Expires: p.now().Add(p.cfg.CodeTTL)})
	}
	if err != nil {
		p.cfg.Logger.Error("storing an OpenID Connect sign-in", zap.Error(err))
		refuse(authReq, "store_unavailable", client.GetID(), oidc.ErrServerError().WithDescription("the account database did not answer; try again"))
		return
	}
	p.cfg.Audit.Request(r, "oidc.authorize", audit.Success, zap.String("client_id", client.GetID()), zap.String("username", id.Account.Username),
		zap.String("credential_kind", id.Kind), zap.String("grant", g.ID), zap.Strings("scopes", g.Scopes))
	op.AuthResponse(g, p.op, NavigationWriter(w, r), r.WithContext(context.WithValue(ctx, identityKey{}, g)))
}

// AllowPassword reports whether the client takes password sign-ins.
func (c *Client) AllowPassword() bool { return c.cfg.AllowPassword }

// problem shows a refusal that must not go back to the client as a page.
func (p *Provider) problem(w http.ResponseWriter, r *http.Request, err error) {
	detail := "The application sent an invalid sign-in request."
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.Description != "" {
		detail += " " + oe.Description + "."
	}
	_ = ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "invalid_oidc_request", Title: "Sign-in request refused",
		Detail: detail, Contact: p.cfg.Contact})
}

// LogoutRequest is a validated RP-initiated logout.
type LogoutRequest struct {
	// Redirect is where the browser goes after signing out: the client's
	// registered post-logout URI (with state), or "" for the gateway's
	// own signed-out page.
	Redirect string
	ClientID string
	// Grant is the sign-in the id_token_hint named (its sid), if any.
	Grant string
}

// IsLogout reports whether r carries RP-initiated logout parameters.
func IsLogout(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("id_token_hint") || q.Has("post_logout_redirect_uri") || q.Has("client_id")
}

// ParseLogout validates an RP-initiated logout request (its query).
func (p *Provider) ParseLogout(r *http.Request) (*LogoutRequest, error) {
	ctx := op.ContextWithIssuer(r.Context(), p.op.IssuerFromRequest(r))
	q := r.URL.Query()
	req := &oidc.EndSessionRequest{IdTokenHint: q.Get("id_token_hint"), ClientID: q.Get("client_id"),
		PostLogoutRedirectURI: q.Get("post_logout_redirect_uri"), State: q.Get("state"), LogoutHint: q.Get("logout_hint")}
	if req.ClientID != "" {
		if _, err := p.client(ctx, req.ClientID); err != nil {
			return nil, errors.New("unknown client")
		}
	}
	if req.PostLogoutRedirectURI != "" && req.ClientID == "" && req.IdTokenHint == "" {
		return nil, errors.New("post_logout_redirect_uri needs client_id or id_token_hint")
	}
	sess, err := op.ValidateEndSessionRequest(ctx, req, p.op)
	if err != nil {
		return nil, err
	}
	lr := &LogoutRequest{ClientID: sess.ClientID}
	if sess.RedirectURI != PathLogout && !strings.HasPrefix(sess.RedirectURI, PathLogout+"?") {
		lr.Redirect = sess.RedirectURI
	}
	if sess.IDTokenHintClaims != nil {
		if sid, ok := sess.IDTokenHintClaims.Claims["sid"].(string); ok {
			lr.Grant = sid
		}
	}
	return lr, nil
}

// EndGrant revokes the refresh tokens of the sign-in a logout named.
func (p *Provider) EndGrant(r *http.Request, lr *LogoutRequest) {
	var n int64
	var err error
	if lr.Grant != "" {
		n, err = p.cfg.Store.RevokeOIDCGrant(r.Context(), lr.Grant)
	}
	outcome := audit.Success
	if err != nil {
		outcome = audit.Failure
	}
	p.cfg.Audit.Request(r, "oidc.logout", outcome, zap.String("client_id", lr.ClientID), zap.String("grant", lr.Grant),
		zap.Int64("refresh_tokens_revoked", n), zap.NamedError("error", err))
}

// LogoutQuery re-encodes a logout's parameters, for the sign-out form.
func LogoutQuery(r *http.Request) string {
	q := r.URL.Query()
	keep := url.Values{}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	return keep.Encode()
}

// Prune deletes expired codes and refresh tokens every interval until ctx
// is done.
func (p *Provider) Prune(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if _, err := p.cfg.Store.PruneOIDC(pctx, p.now()); err != nil && ctx.Err() == nil {
				p.cfg.Logger.Warn("pruning expired OpenID Connect codes and tokens", zap.Error(err))
			}
			cancel()
		}
	}
}

func randRead(b []byte) (int, error) { return rand.Read(b) }

// newGrantID is a sign-in's random ID (also its sid claim).
func newGrantID() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func jsonMarshal(g *grant) ([]byte, error) { return json.Marshal(g) }

// DecodeClient reads a client's stored JSON, refusing unknown fields.
func DecodeClient(b []byte) (ClientConfig, error) {
	var c ClientConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return ClientConfig{}, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

// maxAssertionLife bounds how long a client assertion's jti is kept.
const maxAssertionLife = time.Hour

// spendAssertion records a private_key_jwt client assertion's jti (per
// client) in the database every node shares, so that an assertion is
// accepted once, on one node, within its lifetime (RFC 7523 section 3,
// OIDC Core 9). It runs before the library verifies the signature: a
// forged assertion can only spend a jti the real client will never reuse
// anyway. It returns a refusal reason, or "".
func (p *Provider) spendAssertion(ctx context.Context, assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "malformed"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "malformed"
	}
	var claims struct {
		Issuer string `json:"iss"`
		ID     string `json:"jti"`
		Expiry int64  `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "malformed"
	}
	if claims.ID == "" {
		return "no_jti"
	}
	now := p.now()
	exp := time.Unix(claims.Expiry, 0)
	if !exp.After(now) {
		return "expired"
	}
	if exp.After(now.Add(maxAssertionLife)) {
		return "lifetime_too_long"
	}
	sum := sha256.Sum256([]byte("oidc-client-assertion\x00" + claims.Issuer + "\x00" + claims.ID))
	fresh, err := p.cfg.Store.UseState(ctx, hex.EncodeToString(sum[:]), exp)
	switch {
	case err != nil:
		p.cfg.Logger.Error("recording a client assertion", zap.Error(err))
		return "store_unavailable"
	case !fresh:
		return "replayed"
	}
	return ""
}
