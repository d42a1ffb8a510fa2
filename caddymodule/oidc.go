package caddymodule

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/oidcop"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// OIDCConfig turns the site into an OpenID Provider (off unless present):
//
//	oidc {
//	    issuer        https://sso.example.mil   # default: https://<request host>
//	    subject       opaque|username|edipi     # default opaque
//	    key_rotation  720h                      # signing key period
//	    code_ttl      1m
//	    client <client_id> {
//	        name                     "Grafana"
//	        secret                   {env.GRAFANA_OIDC_SECRET}
//	        secret_hash              sha256:<hex>
//	        jwks_file                /etc/cacgate/app-jwks.json
//	        auth_method              client_secret_basic|client_secret_post|private_key_jwt|none
//	        redirect_uri             https://grafana.example.mil/login/generic_oauth [...]
//	        post_logout_redirect_uri https://grafana.example.mil/ [...]
//	        scopes                   openid profile email groups cac offline_access
//	        claims                   preferred_username email edipi ...
//	        allow_password
//	        access_token_ttl         10m
//	        id_token_ttl             10m
//	        refresh_ttl              8h
//	    }
//	}
type OIDCConfig struct {
	Issuer      string             `json:"issuer,omitempty"`
	Subject     string             `json:"subject,omitempty"`
	KeyRotation caddy.Duration     `json:"key_rotation,omitempty"`
	CodeTTL     caddy.Duration     `json:"code_ttl,omitempty"`
	Clients     []OIDCClientConfig `json:"clients,omitempty"`

	provider *oidcop.Provider
}

// OIDCClientConfig is a configured relying party: the provider's client
// fields, plus a JWKS file read at provisioning.
type OIDCClientConfig struct {
	oidcop.ClientConfig
	JWKSFile string `json:"jwks_file,omitempty"`
}

// UnmarshalCaddyfile reads the oidc block; d is at "oidc".
func (c *OIDCConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key != "client" {
			if seen[key] {
				return d.Errf("oidc: %s given twice", key)
			}
			seen[key] = true
		}
		switch key {
		case "issuer", "subject":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if key == "issuer" {
				c.Issuer = d.Val()
			} else {
				c.Subject = d.Val()
			}
		case "key_rotation", "code_ttl":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("oidc %s: %v", key, err)
			}
			if key == "key_rotation" {
				c.KeyRotation = caddy.Duration(v)
			} else {
				c.CodeTTL = caddy.Duration(v)
			}
		case "client":
			cl, err := unmarshalOIDCClient(d)
			if err != nil {
				return err
			}
			c.Clients = append(c.Clients, cl)
		default:
			return d.Errf("unrecognized oidc subdirective %q", key)
		}
		if key != "client" && d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

func unmarshalOIDCClient(d *caddyfile.Dispenser) (OIDCClientConfig, error) {
	var cl OIDCClientConfig
	if !d.NextArg() {
		return cl, d.ArgErr()
	}
	cl.ID = d.Val()
	if d.NextArg() {
		return cl, d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if seen[key] {
			return cl, d.Errf("oidc client %s: %s given twice", cl.ID, key)
		}
		seen[key] = true
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.ArgErr()
			}
			return args[0], nil
		}
		var err error
		switch key {
		case "name":
			cl.Name, err = one()
		case "secret":
			cl.Secret, err = one()
		case "secret_hash":
			cl.SecretHash, err = one()
		case "jwks_file":
			cl.JWKSFile, err = one()
		case "auth_method":
			cl.AuthMethod, err = one()
		case "redirect_uri":
			if len(args) == 0 {
				return cl, d.ArgErr()
			}
			cl.RedirectURIs = args
		case "post_logout_redirect_uri":
			if len(args) == 0 {
				return cl, d.ArgErr()
			}
			cl.PostLogoutRedirectURIs = args
		case "scopes":
			if len(args) == 0 {
				return cl, d.ArgErr()
			}
			cl.Scopes = args
		case "claims":
			if len(args) == 0 {
				return cl, d.ArgErr()
			}
			cl.Claims = args
		case "allow_password":
			if len(args) != 0 {
				return cl, d.ArgErr()
			}
			cl.AllowPassword = true
		case "access_token_ttl", "id_token_ttl", "refresh_ttl":
			var s string
			if s, err = one(); err != nil {
				break
			}
			var v time.Duration
			if v, err = caddy.ParseDuration(s); err != nil {
				return cl, d.Errf("oidc client %s %s: %v", cl.ID, key, err)
			}
			switch key {
			case "access_token_ttl":
				cl.AccessTokenTTL = oidcop.Duration(v)
			case "id_token_ttl":
				cl.IDTokenTTL = oidcop.Duration(v)
			default:
				cl.RefreshTTL = oidcop.Duration(v)
			}
		default:
			return cl, d.Errf("unrecognized oidc client subdirective %q", key)
		}
		if err != nil {
			return cl, err
		}
	}
	return cl, nil
}

// provisionOIDC starts the site's OpenID Provider.
func (h *Handler) provisionOIDC(ctx caddy.Context) error {
	c := h.OIDC
	repl := caddy.NewReplacer()
	var clients []*oidcop.Client
	for _, cc := range c.Clients {
		cfg := cc.ClientConfig
		if cfg.Secret != "" {
			secret, err := repl.ReplaceOrErr(cfg.Secret, true, true)
			if err != nil {
				return fmt.Errorf("oidc client %s: secret: %w", cfg.ID, err)
			}
			cfg.Secret = secret
		}
		if cc.JWKSFile != "" {
			if len(cfg.JWKS) > 0 {
				return fmt.Errorf("oidc client %s: set jwks or jwks_file, not both", cfg.ID)
			}
			b, err := os.ReadFile(cc.JWKSFile)
			if err != nil {
				return fmt.Errorf("oidc client %s: %w", cfg.ID, err)
			}
			cfg.JWKS = b
		}
		cl, err := cfg.Compile()
		if err != nil {
			return fmt.Errorf("oidc: %w", err)
		}
		if cl.AllowPassword() && !h.PasswordLogin {
			h.logger.Warn("oidc client allows password sign-in but the site has password_login off: only cards will sign in", zap.String("client_id", cl.GetID()))
		}
		clients = append(clients, cl)
	}
	keyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	p, err := oidcop.New(keyCtx, oidcop.Config{
		Issuer:      strings.TrimSuffix(c.Issuer, "/"),
		Store:       h.app.store,
		Revocation:  h.app.revocation,
		Access:      h.oidcAccess,
		Audit:       h.app.audit,
		Logger:      h.logger.Named("oidc"),
		Clients:     clients,
		Subject:     c.Subject,
		KeyRotation: time.Duration(c.KeyRotation),
		CodeTTL:     time.Duration(c.CodeTTL),
		Contact:     h.Contact,
		Now:         oidcNow,
	})
	if err != nil {
		return err
	}
	c.provider = p
	h.app.addOIDCProvider(p)
	go p.Prune(ctx, 10*time.Minute)
	return nil
}

// serveOIDC serves the provider's endpoints; it reports false for a path
// that is not the provider's.
func (h *Handler) serveOIDC(w http.ResponseWriter, r *http.Request) (bool, error) {
	p := h.OIDC.provider
	switch {
	case r.URL.Path == oidcop.PathAuthorize:
		p.Authorize(w, r, h.oidcGate)
		return true, nil
	case r.URL.Path == portal.PathLogout && oidcop.IsLogout(r):
		return true, h.serveOIDCLogout(w, r)
	case oidcop.Handles(r.URL.Path):
		p.ServeHTTP(w, r)
		return true, nil
	}
	return false, nil
}

// oidcGate signs the person in as a protected page would admit them:
// certificate, revocation, banner, account, access rules, enrollment;
// or, where the site allows it, a password session.
func (h *Handler) oidcGate(w http.ResponseWriter, r *http.Request, interactive bool) (*oidcop.Identity, bool) {
	now := time.Now()
	answer := func(d gateway.Decision) (*oidcop.Identity, bool) {
		if !interactive {
			return nil, false
		}
		_ = h.answer(w, r, d)
		return nil, true
	}
	if h.PasswordLogin && !hasCertificate(r) {
		sess, ok, err := h.app.sessions.Session(r.Context(), consent.CookieByName(sentCookies(r), session.CookieName), now)
		switch {
		case err != nil:
			return answer(gateway.Decision{Outcome: gateway.StoreUnavailable, Err: err})
		case !ok || (h.sessionIdle > 0 && sess.IdleUntil.IsZero()):
			return answer(gateway.Decision{Outcome: gateway.NoCertificate})
		}
		d, ended := h.site.AdmitUser(r, sess.Username, sess.SignedIn, now)
		if ended {
			h.app.endSession(r.Context(), sess, now)
			h.app.audit.Request(r, "session.ended", audit.Success, zap.String("username", sess.Username),
				zap.String("reason", "password_changed"), zap.Time("password_changed_at", d.Entry.Account.PasswordChangedAt.UTC()))
		}
		if d.Outcome != gateway.Admitted {
			return answer(d)
		}
		h.renewSession(w, sess, now)
		return &oidcop.Identity{Account: d.Entry.Account, Kind: oidcCredentialKind(&d), AuthTime: sess.SignedIn,
			SessionID: sess.ID, SessionEnd: sess.Expires, Snapshot: oidcSnapshot(&d)}, false
	}
	// An ID token describes a person who signed in: a system's (NPE)
	// certificate is refused here as on the gateway's other pages.
	d := refuseNPEPages(h.site.Admit(r, now))
	if d.Outcome != gateway.Admitted {
		return answer(d)
	}
	id := &oidcop.Identity{Account: d.Entry.Account, Kind: oidcCredentialKind(&d), AuthTime: now,
		Fingerprint: d.Site.ID.FingerprintHex, Snapshot: oidcSnapshot(&d)}
	for _, c := range d.CardChain(r.TLS) {
		id.Chain = append(id.Chain, c.Raw)
	}
	return id, false
}

// oidcAccess re-applies the site's access rules at a refresh: a person
// taken out of a group the site requires loses the application's refresh
// too.
func (h *Handler) oidcAccess(acct *store.Account, chain []*x509.Certificate) string {
	if d := h.site.DecideAccess(acct, chain); d != nil && !d.Allowed {
		return d.Reason
	}
	return ""
}

// oidcCredentialKind is the credential_kind claim (and amr/acr) of an
// admitted decision: a password session, or the kind of credential the
// site's accept rules read the card as (cac, piv, piv-i, eca).
func oidcCredentialKind(d *gateway.Decision) string {
	if d.Site == nil || d.Site.ID == nil {
		return oidcop.KindPassword
	}
	if k := d.Site.ID.Kind; k != "" {
		return string(k)
	}
	return oidcop.KindCAC
}

// oidcSnapshot is what the sign-in tells the relying party: the values
// the gateway derived for backends (account first, card second).
func oidcSnapshot(d *gateway.Decision) oidcop.Snapshot {
	v := d.Entry.Values
	acct := d.Entry.Account
	return oidcop.Snapshot{Username: acct.Username, EDIPI: acct.EDIPI, GivenName: v[gateway.FieldGivenName],
		FamilyName: v[gateway.FieldFamilyName], Email: v[gateway.FieldEmail], Affiliation: v[gateway.FieldAffiliation],
		Categories: acct.Categories, Groups: acct.Groups}
}

// serveOIDCLogout is RP-initiated logout at the gateway's sign-out page: a
// GET asks the person to confirm (a relying party cannot sign someone out
// with a link alone), the POST signs out as the page always does, revokes
// the sign-in's refresh tokens and returns to the client's registered
// post-logout URI.
func (h *Handler) serveOIDCLogout(w http.ResponseWriter, r *http.Request) error {
	p := h.OIDC.provider
	lr, err := p.ParseLogout(r)
	if err != nil {
		h.app.audit.Request(r, "oidc.logout", audit.Failure, zap.String("reason", "invalid_request"), zap.Error(err))
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "invalid_logout_request", Title: "Sign-out request refused",
			Detail:  "The application sent an invalid sign-out request. You are still signed in; use the sign-out page to sign out.",
			Contact: h.Contact, Links: []ui.Link{{Text: "Sign out", Href: portal.PathLogout}}})
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return ui.WriteNotice(w, r, ui.Notice{Status: http.StatusOK, Code: "confirm_signout", Title: "Sign out",
			Paragraphs: []string{
				"An application asked to sign you out. Sign out to end your session on this site and the application's sign-in.",
				"If you signed in with a CAC, remove it from the reader and close every browser window afterwards: the browser keeps using the card until it is closed.",
			},
			Form:  &ui.NoticeForm{Action: portal.PathLogout + "?" + oidcop.LogoutQuery(r), Button: "Sign out"},
			Links: []ui.Link{{Text: "Stay signed in and return to the site", Href: "/"}}})
	case http.MethodPost:
	default:
		return portal.MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if !portal.SameOrigin(r) {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "csrf_failed", Title: "Sign-out refused",
			Detail: "The sign-out request did not come from this site."})
	}
	p.EndGrant(r, lr)
	if lr.Redirect != "" {
		r = portal.WithAfterLogout(r, lr.Redirect)
	}
	return h.serveGatewayPage(oidcop.NavigationWriter(w, r), r)
}

// oidcProviders are the providers of the running config's sites, for the
// admin API (which must not register a client a Caddyfile configures).
type oidcProviders struct {
	mu        sync.Mutex
	providers []*oidcop.Provider
}

func (a *App) addOIDCProvider(p *oidcop.Provider) {
	a.oidc.mu.Lock()
	defer a.oidc.mu.Unlock()
	a.oidc.providers = append(a.oidc.providers, p)
}

// oidcConfigured reports whether a site's configuration has client id.
func (a *App) oidcConfigured(id string) bool {
	a.oidc.mu.Lock()
	defer a.oidc.mu.Unlock()
	for _, p := range a.oidc.providers {
		if p.Configured(id) {
			return true
		}
	}
	return false
}

// oidcClockSkew moves the providers' clock, for tests of expiry.
var oidcClockSkew atomic.Int64

func oidcNow() time.Time { return time.Now().Add(time.Duration(oidcClockSkew.Load())) }
