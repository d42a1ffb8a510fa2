package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cacgate/cacgate/internal/access"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/forward"
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/oidcop"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/ui"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// DefaultConsentTTL is how long an "I Accept" lasts.
const DefaultConsentTTL = 12 * time.Hour

// defaultHeaderNames are the request headers the backend receives.
var defaultHeaderNames = [gateway.NumFields]string{
	gateway.FieldUser:        "X-Remote-User",
	gateway.FieldEDIPI:       "X-Cac-Edipi",
	gateway.FieldGivenName:   "X-Cac-Given-Name",
	gateway.FieldFamilyName:  "X-Cac-Family-Name",
	gateway.FieldEmail:       "X-Cac-Email",
	gateway.FieldAffiliation: "X-Cac-Affiliation",
	gateway.FieldCertSHA256:  "X-Cac-Cert-Sha256",
	gateway.FieldAuthMethod:  "X-Cac-Auth-Method",
	gateway.FieldCredential:  "X-Cac-Credential",
	gateway.FieldAccountType: "X-Cac-Account-Type",
}

// The signed assertion is off unless a site names a header for it (in the
// Caddyfile, header assertion on): the legacy apps cacgate fronts read
// plain headers and cannot verify a JWT, and in Caddy the ~700-byte token
// costs every request as much as the eight plain headers together (see the
// README's Performance section). Its default name is still stripped from
// every client request, sent or not.
const (
	headerKeyAssertion     = "assertion"
	defaultAssertionHeader = "X-Cac-Assertion"
)

// Handler is the http.handlers.cacgate middleware: it admits a request only
// for a valid CAC whose holder accepted the consent banner and has an
// enabled account, and hands the backend that identity in headers it can
// trust (client-sent copies are always removed first).
//
// Shared state (store, caches, keys) belongs to the cacgate app; the
// handler holds only this site's options.
type Handler struct {
	// Banner is a plain-text file that replaces the standard DoD Notice and
	// Consent Banner text.
	Banner string `json:"banner,omitempty"`

	// Contact is shown on refusal pages: whom to ask for help or an account.
	Contact string `json:"contact,omitempty"`

	// HelpDesk is the structured contact block (name, phone, e-mail,
	// hours, web address) every page shows at its foot; where Contact is
	// not set, its name, phone and e-mail stand in for it.
	HelpDesk *ui.HelpDesk `json:"help_desk,omitempty"`

	// AdminGroup turns the help-desk console at /.cacgate/admin on for
	// this site: card holders whose account is in the group may use it
	// (AdminReadGroup's members may look without changing anything).
	AdminGroup     string `json:"admin_group,omitempty"`
	AdminReadGroup string `json:"admin_read_group,omitempty"`

	// ConsentTTL is how long an acceptance of the banner lasts (default 12h).
	// The cookie itself ends with the browser session.
	ConsentTTL caddy.Duration `json:"consent_ttl,omitempty"`

	// CertPolicy: allowed_issuers, required_policies, policy_match,
	// required_eku, max_chain_depth.
	CertPolicy

	// Exempt paths (Caddy path-matcher patterns such as /health or
	// /static/*) pass without identity. Client-sent identity headers are
	// still removed from them.
	Exempt []string `json:"exempt,omitempty"`

	// Audience is the "aud" of the signed assertion. Default: the request's
	// host name.
	Audience string `json:"audience,omitempty"`

	// Headers renames identity headers: field -> header name, where field is
	// one of user, edipi, given_name, family_name, email, affiliation,
	// cert_sha256, auth_method, credential, assertion. An empty name stops sending that
	// header. The eight plain fields are sent by default; the signed
	// assertion only when named here (e.g. "assertion": "X-Cac-Assertion").
	Headers map[string]string `json:"headers,omitempty"`

	// TrustPoolRaw makes the gateway verify certificate chains itself, for
	// client_auth mode "request": expired, foreign or misused cards then get
	// an explanatory page instead of a TLS error. Without it the TLS
	// handshake must have verified the chain (mode verify_if_given).
	TrustPoolRaw json.RawMessage `json:"trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	// Enroll configures self-enrollment for unregistered cards (needs the
	// app's roster).
	Enroll *EnrollConfig `json:"enroll,omitempty"`

	// Refusals chooses who answers a refused request: "page" (default:
	// the gateway's own pages, JSON for API clients) or "handle_errors"
	// (an error for the server's handle_errors routes, with the reason in
	// {cacgate.refusal.code}, {cacgate.refusal.title},
	// {cacgate.refusal.detail} and {cacgate.refusal.retry_after}).
	// Redirects to the banner and to enrollment are not refusals.
	Refusals string `json:"refusals,omitempty"`

	// PasswordLogin lets people without a card reader sign in with their
	// account's username and password ("I don't have a CAC/PIV"). Off by
	// default; needs self-enrollment (the app's roster), which is how
	// accounts get passwords.
	PasswordLogin bool `json:"password_login,omitempty"`

	// SessionTTL is how long a password sign-in lasts (default 8h); the
	// cookie itself ends with the browser session.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// SessionIdle ends a password session after this long without a
	// request (default 15m, ASD STIG V-222389; 0 for no idle limit). Each
	// request renews the deadline, re-signing the cookie at most once a
	// minute, never past session_ttl.
	SessionIdle *caddy.Duration `json:"session_idle,omitempty"`

	// SessionLimit is how many password sessions one person may have at
	// once (0, the default: no limit; ASD STIG V-222387). A sign-in past
	// it ends that person's oldest sessions, on every node.
	SessionLimit int `json:"session_limit,omitempty"`

	// OIDC makes the site an OpenID Provider for relying parties (off
	// unless set; see OIDCConfig and oidc.go).
	OIDC *OIDCConfig `json:"oidc,omitempty"`

	// Access are the rules deciding who may pass once identified: allow,
	// require and deny on affiliation, category, group, edipi, edipi_file,
	// issuer and policy (see package access and access.go).
	Access []access.Rule `json:"access,omitempty"`

	app  *App
	site *gateway.Site // decides this site's requests
	// trustPool is the trust_pool module, nil without one.
	trustPool   caddytls.CA
	sessionIdle time.Duration // SessionIdle with its default; 0: none
	logger      *zap.Logger
	exempt      caddyhttp.MatchPath
	banner      consent.Banner

	// headerNames[i] is the canonical header for field i ("" = not sent);
	// assertionHeader likewise. stripNames are every name the backend could
	// mistake for ours, in normalized form (see forward.SameName).
	headerNames     [gateway.NumFields]string
	assertionHeader string
	stripNames      *forward.Names

	enrollFlow *portal.Pages  // self-service pages; nil when enrollment is off
	portal     *portal.Portal // every page under /.cacgate/

	accessListKeys []string // edipi_file lists held; see Cleanup
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.cacgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads the shared app, the trust pool and the pages.
func (h *Handler) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("cacgate")
	if err != nil {
		return fmt.Errorf("loading cacgate app: %w", err)
	}
	return h.provision(ctx, appIface.(*App))
}

func (h *Handler) provision(ctx caddy.Context, app *App) error {
	h.logger = ctx.Logger()
	h.app = app
	var err error
	if h.ConsentTTL == 0 {
		h.ConsentTTL = caddy.Duration(DefaultConsentTTL)
	}
	if err := h.provisionHeaders(); err != nil {
		return err
	}

	policy, err := h.CertPolicy.compile()
	if err != nil {
		return err
	}
	if h.TrustPoolRaw != nil {
		mod, err := ctx.LoadModule(h, "TrustPoolRaw")
		if err != nil {
			return fmt.Errorf("loading trust pool: %w", err)
		}
		ca, ok := mod.(caddytls.CA)
		if !ok {
			return fmt.Errorf("trust_pool module %T is not a CA pool", mod)
		}
		policy.Roots = ca.CertPool()
		h.trustPool = ca
	}

	if len(h.Exempt) > 0 {
		h.exempt = caddyhttp.MatchPath(h.Exempt)
		if err := h.exempt.Provision(ctx); err != nil {
			return fmt.Errorf("exempt paths: %w", err)
		}
	}

	h.banner = consent.DefaultBanner()
	if h.Banner != "" {
		if h.banner, err = consent.LoadBanner(h.Banner); err != nil {
			return err
		}
	}
	accessPolicy, err := h.provisionAccess()
	if err != nil {
		return err
	}
	accept, err := h.CertPolicy.acceptance()
	if err != nil {
		return err
	}
	if h.site, err = h.app.core.NewSite(gateway.SiteConfig{
		Policy:     policy,
		Accept:     accept,
		Access:     accessPolicy,
		Audience:   h.Audience,
		Contact:    h.contactText(),
		ConsentTTL: time.Duration(h.ConsentTTL),
		Logger:     h.logger,
	}); err != nil {
		return err
	}
	h.followTrustPool()
	if err := h.provisionEnrollFlow(); err != nil {
		return err
	}
	if h.PasswordLogin && h.enrollFlow == nil {
		return errors.New("password_login needs self-enrollment: configure the global roster (and do not set enroll off)")
	}
	if h.SessionTTL == 0 {
		h.SessionTTL = caddy.Duration(8 * time.Hour)
	}
	h.sessionIdle = defaultSessionIdle
	if h.SessionIdle != nil {
		h.sessionIdle = time.Duration(*h.SessionIdle)
	}
	if err := h.provisionPortal(); err != nil { // pages.go
		return err
	}
	if h.OIDC != nil {
		return h.provisionOIDC(ctx) // oidc.go
	}
	return nil
}

func (h *Handler) provisionHeaders() error {
	h.headerNames = defaultHeaderNames
	h.assertionHeader = ""
	for field, name := range h.Headers {
		if name != "" && !forward.ValidName(name) {
			return fmt.Errorf("header %q for %s is not a valid header name", name, field)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		if field == headerKeyAssertion {
			h.assertionHeader = name
			continue
		}
		i := fieldIndex(field)
		if i < 0 {
			return fmt.Errorf("unknown identity header field %q (want one of %s, %s)", field, strings.Join(gateway.FieldKeys[:], ", "), headerKeyAssertion)
		}
		h.headerNames[i] = name
	}
	// X-Cac-Credential says something only where more than DoD cards can
	// sign in: at a site whose accept rules admit no other kind (or that
	// has none) every card is a CAC, so it is sent only when asked for
	// (header credential on), and a CAC site's requests stay as lean as
	// they were before credential kinds. It is stripped all the same.
	if _, set := h.Headers[gateway.FieldKeys[gateway.FieldCredential]]; !set && !h.admitsNonDoD() {
		h.headerNames[gateway.FieldCredential] = ""
	}
	// Strip both the configured names and the defaults: a backend built for
	// the defaults must never see client-supplied values for them either.
	seen := map[string]bool{}
	var strip []string
	for _, n := range append(append(append([]string{}, defaultHeaderNames[:]...), defaultAssertionHeader, h.assertionHeader), h.headerNames[:]...) {
		if n = forward.NormalizeName(n); n != "" && !seen[n] {
			seen[n] = true
			strip = append(strip, n)
		}
	}
	h.stripNames = forward.NewNames(strip)
	return nil
}

// admitsNonDoD reports whether the site's accept rules admit a credential
// other than a DoD card (federal PIV, PIV-I, ECA).
func (h *Handler) admitsNonDoD() bool {
	for _, r := range h.Accept {
		if k := strings.ToLower(r.Kind); k != "dod" && k != "cac" {
			return true
		}
	}
	return false
}

// defaultHeaderName is the header a field is sent in by default (the
// assertion's when turned on), or "" for an unknown field.
func defaultHeaderName(field string) string {
	if field == headerKeyAssertion {
		return defaultAssertionHeader
	}
	if i := fieldIndex(field); i >= 0 {
		return defaultHeaderNames[i]
	}
	return ""
}

func fieldIndex(key string) int {
	for i, k := range gateway.FieldKeys {
		if k == key {
			return i
		}
	}
	return -1
}

// Validate checks the handler's options.
func (h *Handler) Validate() error {
	if h.ConsentTTL < caddy.Duration(time.Minute) || h.ConsentTTL > caddy.Duration(7*24*time.Hour) {
		return fmt.Errorf("consent_ttl must be between 1m and 168h, got %s", time.Duration(h.ConsentTTL))
	}
	switch h.Refusals {
	case "", refusalsPage, refusalsHandleErrors:
	default:
		return fmt.Errorf("refusals must be %q or %q, got %q", refusalsPage, refusalsHandleErrors, h.Refusals)
	}
	if len(h.Contact) > 200 {
		return fmt.Errorf("contact is longer than 200 characters")
	}
	if err := h.validateConsole(); err != nil { // console.go
		return err
	}
	if h.SessionLimit < 0 || h.SessionLimit > 100 {
		return fmt.Errorf("session_limit must be between 1 and 100 (or off), got %d", h.SessionLimit)
	}
	if h.SessionIdle != nil && *h.SessionIdle != 0 && time.Duration(*h.SessionIdle) < 2*session.RenewAfter {
		return fmt.Errorf("session_idle must be at least %s (or off), got %s", 2*session.RenewAfter, time.Duration(*h.SessionIdle))
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// One path for everyone: the gateway, Caddy's matchers and the
	// backend must not read the request's path in different ways.
	if d := gateway.CheckPath(r); d.Outcome != gateway.Admitted {
		forward.StripHeaders(r.Header, h.stripNames)
		return h.answer(w, r, d)
	}
	if strings.HasPrefix(r.URL.Path, ui.Prefix) {
		if h.OIDC != nil {
			if done, err := h.serveOIDC(w, r); done {
				return err
			}
		}
		return h.serveGatewayPage(w, r)
	}
	if h.OIDC != nil && r.URL.Path == oidcop.PathDiscovery {
		_, err := h.serveOIDC(w, r)
		return err
	}
	// Whatever the path, exempt ones included: no client-made identity
	// reaches the backend, in headers, in trailers read later with the
	// body, or by naming ours in Connection so the proxy drops them.
	forward.StripHeaders(r.Header, h.stripNames)
	forward.StripHeaders(r.Trailer, h.stripNames)
	forward.StripConnectionTokens(r.Header, h.stripNames)
	forward.GuardTrailers(r, h.stripNames)

	if h.exempt != nil {
		exempt, err := h.exempt.MatchWithError(r)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		if exempt {
			hideSessionCookie(r)
			return next.ServeHTTP(w, r)
		}
	}

	now := time.Now()
	if h.PasswordLogin && !hasCertificate(r) {
		return h.servePasswordSession(w, r, next, now)
	}
	d := h.site.Admit(r, now)
	if d.Outcome != gateway.Admitted {
		return h.answer(w, r, d)
	}
	if d.Entry.FirstGrant() {
		// Once per card entry (per cache_ttl): the start of a session, not
		// every request. Not "when this request filled the entry": the
		// banner page fills it first on a card's first visit.
		h.app.audit.Request(r, "access.granted", audit.Success, append(audit.Card(d.Site.ID), zap.String("username", d.Entry.Account.Username))...)
	}
	return h.forward(w, r, next, &d, now)
}

// forward hands an admitted request to the next handler with its identity.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, d *gateway.Decision, now time.Time) error {
	h.setIdentity(r, d, now)
	hideSessionCookie(r)
	h.app.metrics.Granted.Inc()
	if ce := h.logger.Check(zapcore.DebugLevel, "admitted"); ce != nil {
		ce.Write(zap.String("username", d.Entry.Values[gateway.FieldUser]), zap.String("cert_sha256", d.Entry.Values[gateway.FieldCertSHA256]))
	}
	return next.ServeHTTP(w, r)
}

// answer answers a request the gateway did not admit: a redirect to the
// banner or to enrollment, or a refusal page (JSON for API clients), or,
// where the site hands refusals to Caddy (refusals handle_errors), an
// error for the server's handle_errors routes.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, d gateway.Decision) error {
	w = h.withChrome(w)
	ref := h.site.Refuse(r, d)
	if d.Outcome == gateway.NoCertificate {
		ref.Problem.Links = append(h.loginLinks(r), ref.Problem.Links...)
	}
	if ref.Location != "" {
		return ui.SeeOther(w, ref.Location)
	}
	if ref.RetryAfter != "" {
		w.Header().Set("Retry-After", ref.RetryAfter)
	}
	if h.Refusals == refusalsHandleErrors {
		return refusalError(r, ref)
	}
	if ref.JSON != nil && !ui.WantsHTML(r) {
		return ui.WriteJSON(w, ref.Problem.Status, ref.JSON)
	}
	return ui.WriteProblem(w, r, ref.Problem)
}

// refuseNoCard answers a request with neither a card nor a valid password
// session.
func (h *Handler) refuseNoCard(w http.ResponseWriter, r *http.Request) error {
	return h.answer(w, r, gateway.Decision{Outcome: gateway.NoCertificate})
}

// unavailable fails closed when the account database cannot answer.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) error {
	return h.answer(w, r, gateway.Decision{Outcome: gateway.StoreUnavailable, Err: err})
}

// setIdentity hands the identity to the backend: headers and placeholders.
func (h *Handler) setIdentity(r *http.Request, d *gateway.Decision, now time.Time) {
	card := d.Entry
	// One backing array for all values of this request: downstream handlers
	// (Caddy's header replace, for one) may modify header values in place,
	// so the cached strings are never shared as slices across requests.
	vals := make([]string, gateway.NumFields+1)
	for i, name := range h.headerNames {
		// An empty value (no certificate behind a password sign-in) is
		// no header at all rather than an empty one.
		if name != "" && card.Values[i] != "" {
			vals[i] = card.Values[i]
			r.Header[name] = vals[i : i+1 : i+1]
		}
	}
	if h.assertionHeader != "" {
		if tok := h.site.Assertion(r, d, now); tok != "" {
			vals[gateway.NumFields] = tok
			r.Header[h.assertionHeader] = vals[gateway.NumFields:]
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		for i, key := range gateway.PlaceholderKeys {
			repl.Set(key, card.Boxed[i])
		}
	}
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
)
