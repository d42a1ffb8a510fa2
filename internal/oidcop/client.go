package oidcop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Duration is a time.Duration that reads "15m" or a number of nanoseconds
// from JSON (as Caddy's durations do) and writes the former.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: %w", b, err)
	}
	*d = Duration(n)
	return nil
}

// String is the duration as time.Duration writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// The client authentication methods of the token endpoint.
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none" // a public client: PKCE required
)

// Client lifetimes' defaults and bounds.
const (
	DefaultAccessTokenTTL = 10 * time.Minute
	DefaultIDTokenTTL     = 10 * time.Minute
	MaxTokenTTL           = 24 * time.Hour
	MaxRefreshTTL         = 90 * 24 * time.Hour
	// MinSecretLen is the shortest client secret accepted: secrets are
	// kept as SHA-256 hashes, which is sound only for secrets too long to
	// guess.
	MinSecretLen = 32
	maxURIs      = 32
	maxURILen    = 2048
)

// ClientConfig is a relying party, as configured in the Caddyfile/JSON or
// registered through the admin API (where it is stored as this JSON, with
// the secret only as its hash).
type ClientConfig struct {
	// ID is the client_id.
	ID string `json:"client_id"`
	// Name is shown to people and written to the audit log.
	Name string `json:"name,omitempty"`
	// Secret is the client secret in clear (Caddyfile; may be a
	// placeholder such as {env.GRAFANA_OIDC_SECRET}). Never stored:
	// Compile keeps only its hash.
	Secret string `json:"secret,omitempty"`
	// SecretHash is "sha256:<64 hex digits>" of the secret.
	SecretHash string `json:"secret_hash,omitempty"`
	// JWKS are the client's public keys for private_key_jwt.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// AuthMethod is how the client authenticates at the token endpoint:
	// client_secret_basic (default with a secret), client_secret_post,
	// private_key_jwt (default with JWKS) or none (a public client, which
	// must use PKCE).
	AuthMethod string `json:"auth_method,omitempty"`
	// RedirectURIs are compared exactly.
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// Scopes the client may request (default openid profile email; openid
	// is always allowed). offline_access needs RefreshTTL.
	Scopes []string `json:"scopes,omitempty"`
	// Claims the client may receive, on top of sub, acr, amr, auth_time
	// and credential_kind (default: every claim its scopes give, except
	// edipi, which must be listed).
	Claims []string `json:"claims,omitempty"`
	// AllowPassword lets a password session (where the site has
	// password_login on) sign in to this client; default: cards only.
	AllowPassword bool `json:"allow_password,omitempty"`
	// AccessTokenTTL and IDTokenTTL default to 10 minutes.
	AccessTokenTTL Duration `json:"access_token_ttl,omitempty"`
	IDTokenTTL     Duration `json:"id_token_ttl,omitempty"`
	// RefreshTTL turns refresh tokens on (offline_access): how long one
	// lasts unused. 0: no refresh tokens.
	RefreshTTL Duration `json:"refresh_ttl,omitempty"`
}

// Compile checks c and returns the client the provider uses. The secret in
// clear is dropped (only its hash is kept).
func (c ClientConfig) Compile() (*Client, error) {
	if c.ID == "" || len(c.ID) > 128 || strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ':' }) {
		return nil, fmt.Errorf("client_id %q must be 1 to 128 printable characters without spaces or colons", c.ID)
	}
	if len(c.Name) > 200 {
		return nil, fmt.Errorf("client %s: name is longer than 200 characters", c.ID)
	}
	cl := &Client{cfg: c}
	cl.cfg.Secret = ""
	switch {
	case c.Secret != "" && c.SecretHash != "":
		return nil, fmt.Errorf("client %s: set secret or secret_hash, not both", c.ID)
	case c.Secret != "":
		if len(c.Secret) < MinSecretLen {
			return nil, fmt.Errorf("client %s: secret must be at least %d characters", c.ID, MinSecretLen)
		}
		cl.cfg.SecretHash = HashSecret(c.Secret)
	case c.SecretHash != "":
		if _, err := parseSecretHash(c.SecretHash); err != nil {
			return nil, fmt.Errorf("client %s: %w", c.ID, err)
		}
	}
	if cl.cfg.SecretHash != "" {
		h, _ := parseSecretHash(cl.cfg.SecretHash)
		cl.secretHash = h
	}
	if len(c.JWKS) > 0 {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return nil, fmt.Errorf("client %s: jwks: %w", c.ID, err)
		}
		if len(set.Keys) == 0 || len(set.Keys) > 16 {
			return nil, fmt.Errorf("client %s: jwks must hold 1 to 16 keys", c.ID)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || !k.Valid() {
				return nil, fmt.Errorf("client %s: jwks key %q is not a valid public key", c.ID, k.KeyID)
			}
		}
		cl.jwks = set.Keys
	}
	method := c.AuthMethod
	if method == "" {
		switch {
		case cl.secretHash != nil:
			method = AuthSecretBasic
		case cl.jwks != nil:
			method = AuthPrivateKeyJWT
		default:
			method = AuthNone
		}
	}
	switch method {
	case AuthSecretBasic, AuthSecretPost:
		if cl.secretHash == nil {
			return nil, fmt.Errorf("client %s: auth_method %s needs a secret", c.ID, method)
		}
	case AuthPrivateKeyJWT:
		if cl.jwks == nil {
			return nil, fmt.Errorf("client %s: auth_method private_key_jwt needs jwks", c.ID)
		}
	case AuthNone:
		if cl.secretHash != nil || cl.jwks != nil {
			return nil, fmt.Errorf("client %s: a public client (auth_method none) has no secret or keys", c.ID)
		}
	default:
		return nil, fmt.Errorf("client %s: unknown auth_method %q (want %s, %s, %s or %s)", c.ID, method, AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone)
	}
	cl.cfg.AuthMethod = method
	if len(c.RedirectURIs) == 0 {
		return nil, fmt.Errorf("client %s: at least one redirect URI is required", c.ID)
	}
	for _, list := range [][]string{c.RedirectURIs, c.PostLogoutRedirectURIs} {
		if len(list) > maxURIs {
			return nil, fmt.Errorf("client %s: more than %d redirect URIs", c.ID, maxURIs)
		}
		for _, u := range list {
			if err := checkRedirectURI(u); err != nil {
				return nil, fmt.Errorf("client %s: %w", c.ID, err)
			}
		}
	}
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}
	}
	for _, s := range scopes {
		if !slices.Contains(KnownScopes, s) {
			return nil, fmt.Errorf("client %s: unknown scope %q (want one of %s)", c.ID, s, strings.Join(KnownScopes, ", "))
		}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	if slices.Contains(scopes, oidc.ScopeOfflineAccess) && c.RefreshTTL <= 0 {
		return nil, fmt.Errorf("client %s: scope offline_access needs refresh_ttl", c.ID)
	}
	if c.RefreshTTL > 0 && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	cl.scopes = scopes
	for _, name := range c.Claims {
		if _, ok := claimScope[name]; !ok {
			return nil, fmt.Errorf("client %s: unknown claim %q", c.ID, name)
		}
	}
	cl.claims = c.Claims
	cl.accessTTL, cl.idTTL = DefaultAccessTokenTTL, DefaultIDTokenTTL
	if c.AccessTokenTTL != 0 {
		cl.accessTTL = time.Duration(c.AccessTokenTTL)
	}
	if c.IDTokenTTL != 0 {
		cl.idTTL = time.Duration(c.IDTokenTTL)
	}
	for _, ttl := range []time.Duration{cl.accessTTL, cl.idTTL} {
		if ttl < time.Minute || ttl > MaxTokenTTL {
			return nil, fmt.Errorf("client %s: token lifetimes must be between 1m and %s", c.ID, MaxTokenTTL)
		}
	}
	cl.refreshTTL = time.Duration(c.RefreshTTL)
	if cl.refreshTTL != 0 && (cl.refreshTTL < time.Minute || cl.refreshTTL > MaxRefreshTTL) {
		return nil, fmt.Errorf("client %s: refresh_ttl must be between 1m and %s (or 0: none)", c.ID, MaxRefreshTTL)
	}
	return cl, nil
}

// checkRedirectURI accepts an absolute https URI (or http on a loopback
// address, for native apps and tests) without a fragment.
func checkRedirectURI(raw string) error {
	if len(raw) > maxURILen {
		return fmt.Errorf("redirect URI is longer than %d bytes", maxURILen)
	}
	if strings.Contains(raw, "*") {
		return fmt.Errorf("redirect URI %q: wildcards are not allowed (redirect URIs are compared exactly)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("redirect URI %q must be an absolute URI without user info or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("redirect URI %q: plain http is allowed only to a loopback address", raw)
		}
	default:
		return fmt.Errorf("redirect URI %q must be https", raw)
	}
	return nil
}

// HashSecret is the stored form of a client secret.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:])
}

func parseSecretHash(s string) ([]byte, error) {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hexPart) != 64 {
		return nil, errors.New(`secret_hash must be "sha256:" and 64 hex digits`)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil {
		return nil, errors.New(`secret_hash must be "sha256:" and 64 hex digits`)
	}
	return b, nil
}

// Client is a compiled relying party; it implements op.Client.
type Client struct {
	cfg        ClientConfig
	secretHash []byte
	jwks       []jose.JSONWebKey
	scopes     []string
	claims     []string
	accessTTL  time.Duration
	idTTL      time.Duration
	refreshTTL time.Duration
	// loginURL is unused: sign-in happens at the authorization endpoint
	// itself, behind the gateway's checks (see Provider.Authorize).
}

// Config returns the client's configuration (secret hash only).
func (c *Client) Config() ClientConfig { return c.cfg }

// CheckSecret compares secret with the client's in constant time.
func (c *Client) CheckSecret(secret string) bool {
	if c.secretHash == nil {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash) == 1
}

// Public reports whether the client has no credentials (PKCE required).
func (c *Client) Public() bool { return c.cfg.AuthMethod == AuthNone }

// RefreshTTL is how long the client's refresh tokens last; 0: none.
func (c *Client) RefreshTTL() time.Duration { return c.refreshTTL }

// GetID implements op.Client.
func (c *Client) GetID() string { return c.cfg.ID }

// RedirectURIs implements op.Client.
func (c *Client) RedirectURIs() []string { return c.cfg.RedirectURIs }

// PostLogoutRedirectURIs implements op.Client.
func (c *Client) PostLogoutRedirectURIs() []string { return c.cfg.PostLogoutRedirectURIs }

// ApplicationType implements op.Client: a public client is native (its
// loopback redirects may use any port, RFC 8252), others web.
func (c *Client) ApplicationType() op.ApplicationType {
	if c.Public() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

// AuthMethod implements op.Client.
func (c *Client) AuthMethod() oidc.AuthMethod {
	switch c.cfg.AuthMethod {
	case AuthSecretPost:
		return oidc.AuthMethodPost
	case AuthPrivateKeyJWT:
		return oidc.AuthMethodPrivateKeyJWT
	case AuthNone:
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

// ResponseTypes implements op.Client: the authorization code flow only.
func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes implements op.Client.
func (c *Client) GrantTypes() []oidc.GrantType {
	if c.refreshTTL > 0 {
		return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	}
	return []oidc.GrantType{oidc.GrantTypeCode}
}

// LoginURL implements op.Client. The provider never redirects to a login
// page of the library's: the gateway signs people in at the authorization
// endpoint. Should it ever be asked, the answer is a page that refuses.
func (c *Client) LoginURL(string) string { return "/.cacgate/oidc/no-login" }

// AccessTokenType implements op.Client: opaque tokens, encrypted with the
// key every node shares.
func (c *Client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }

// IDTokenLifetime implements op.Client.
func (c *Client) IDTokenLifetime() time.Duration { return c.idTTL }

// DevMode implements op.Client: never.
func (c *Client) DevMode() bool { return false }

// RestrictAdditionalIdTokenScopes implements op.Client.
func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// RestrictAdditionalAccessTokenScopes implements op.Client.
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed implements op.Client (for scopes beyond the standard).
func (c *Client) IsScopeAllowed(scope string) bool { return slices.Contains(c.scopes, scope) }

// IDTokenUserinfoClaimsAssertion implements op.Client: the ID token carries
// the released claims itself (many RPs read only the ID token).
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew implements op.Client.
func (c *Client) ClockSkew() time.Duration { return 0 }

// allowScopes filters requested scopes down to the client's.
func (c *Client) allowScopes(requested []string) []string {
	out := make([]string, 0, len(requested))
	for _, s := range requested {
		if slices.Contains(c.scopes, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var _ op.Client = (*Client)(nil)
