package caddymodule

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/access"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/ui"
	"github.com/cacgate/cacgate/revocation"
	"github.com/cacgate/cacgate/trust"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// DefaultConsentTTL is how long an "I Accept" lasts.
const DefaultConsentTTL = 12 * time.Hour

// defaultHeaderNames are the request headers the backend receives.
var defaultHeaderNames = [numFields]string{
	fieldUser:        "X-Remote-User",
	fieldEDIPI:       "X-Cac-Edipi",
	fieldGivenName:   "X-Cac-Given-Name",
	fieldFamilyName:  "X-Cac-Family-Name",
	fieldEmail:       "X-Cac-Email",
	fieldAffiliation: "X-Cac-Affiliation",
	fieldCertSHA256:  "X-Cac-Cert-Sha256",
	fieldAuthMethod:  "X-Cac-Auth-Method",
}

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
	// cert_sha256, assertion. An empty name stops sending that header.
	Headers map[string]string `json:"headers,omitempty"`

	// TrustPoolRaw makes the gateway verify certificate chains itself, for
	// client_auth mode "request": expired, foreign or misused cards then get
	// an explanatory page instead of a TLS error. Without it the TLS
	// handshake must have verified the chain (mode verify_if_given).
	TrustPoolRaw json.RawMessage `json:"trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	// Enroll configures self-enrollment for unregistered cards (needs the
	// app's roster).
	Enroll *EnrollConfig `json:"enroll,omitempty"`

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

	// Access are the rules deciding who may pass once identified: allow,
	// require and deny on affiliation, category, group, edipi, edipi_file,
	// issuer and policy (see package access and access.go).
	Access []access.Rule `json:"access,omitempty"`

	app         *App
	sessionIdle time.Duration // SessionIdle with its default; 0: none
	logger      *zap.Logger
	policy      trust.Policy
	exempt      caddyhttp.MatchPath
	banner      consent.Banner

	// headerNames[i] is the canonical header for field i ("" = not sent);
	// assertionHeader likewise. stripNames are every name the backend could
	// mistake for ours, in normalized form (see sameHeaderName).
	headerNames     [numFields]string
	assertionHeader string
	stripNames      *stripSet

	enrollFlow *portal.Pages  // self-service pages; nil when enrollment is off
	portal     *portal.Portal // every page under /.cacgate/

	// sites caches, per certificate, this site's verdict on it and the
	// assertion signed for it. Keyed by the certificate's DER bytes.
	// Entries age by the request's clock (siteEntry.created): the hot path
	// reads the time once.
	sites   *lru.Cache[string, *siteEntry]
	siteTTL time.Duration

	accessPolicy   *access.Policy // nil when there are no access rules
	accessListKeys []string       // edipi_file lists held; see Cleanup
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

	if h.policy, err = h.CertPolicy.compile(); err != nil {
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
		h.policy.Roots = ca.CertPool()
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
	if err := h.provisionAccess(); err != nil {
		return err
	}
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

	// Site entries hold assertions, so they live as long as one does; the
	// account mapping inside them is refreshed on the app's cache_ttl.
	if h.sites, err = lru.New[string, *siteEntry](h.app.CacheSize); err != nil {
		return err
	}
	h.siteTTL = time.Duration(h.app.AssertionTTL)
	return nil
}

func (h *Handler) provisionHeaders() error {
	h.headerNames = defaultHeaderNames
	h.assertionHeader = defaultAssertionHeader
	for field, name := range h.Headers {
		if name != "" && !validHeaderName(name) {
			return fmt.Errorf("header %q for %s is not a valid header name", name, field)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		if field == headerKeyAssertion {
			h.assertionHeader = name
			continue
		}
		i := fieldIndex(field)
		if i < 0 {
			return fmt.Errorf("unknown identity header field %q (want one of %s, %s)", field, strings.Join(fieldKeys[:], ", "), headerKeyAssertion)
		}
		h.headerNames[i] = name
	}
	// Strip both the configured names and the defaults: a backend built for
	// the defaults must never see client-supplied values for them either.
	seen := map[string]bool{}
	var strip []string
	for _, n := range append(append(append([]string{}, defaultHeaderNames[:]...), defaultAssertionHeader, h.assertionHeader), h.headerNames[:]...) {
		if n = normalizeHeaderName(n); n != "" && !seen[n] {
			seen[n] = true
			strip = append(strip, n)
		}
	}
	h.stripNames = newStripSet(strip)
	return nil
}

func fieldIndex(key string) int {
	for i, k := range fieldKeys {
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
	if len(h.Contact) > 200 {
		return fmt.Errorf("contact is longer than 200 characters")
	}
	if h.SessionLimit < 0 || h.SessionLimit > 100 {
		return fmt.Errorf("session_limit must be between 1 and 100 (or off), got %d", h.SessionLimit)
	}
	if h.SessionIdle != nil && *h.SessionIdle != 0 && time.Duration(*h.SessionIdle) < 2*session.RenewAfter {
		return fmt.Errorf("session_idle must be at least %s (or off), got %s", 2*session.RenewAfter, time.Duration(*h.SessionIdle))
	}
	return nil
}

// siteEntry is this site's view of one certificate. Fields set at creation
// are immutable; card and assertion are swapped atomically on refresh.
type siteEntry struct {
	created   time.Time
	id        *cacid.Identity
	cert      cardCert
	rejection *trust.Rejection // usage/issuer/policy/identity problem, nil if none
	// poolChain is the chain the gateway's own trust pool verified (nil if
	// none). A handshake-verified chain is checked per request instead,
	// because it is a property of the connection, not of the certificate.
	poolChain  []*x509.Certificate
	poolReject *trust.Rejection

	card      atomic.Pointer[cardEntry]
	assertion atomic.Pointer[signedAssertion]
	access    atomic.Pointer[accessVerdict] // this site's access decision
}

// signedAssertion is a cached X-Cac-Assertion value.
type signedAssertion struct {
	token     string
	audience  string
	card      *cardEntry // the entry whose claims were signed
	refreshAt time.Time
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if strings.HasPrefix(r.URL.Path, ui.Prefix) {
		return h.serveGatewayPage(w, r)
	}
	// Whatever the path, exempt ones included: no client-made identity
	// reaches the backend, in headers, in trailers read later with the
	// body, or by naming ours in Connection so the proxy drops them.
	stripIdentityHeaders(r.Header, h.stripNames)
	stripIdentityHeaders(r.Trailer, h.stripNames)
	stripConnectionTokens(r.Header, h.stripNames)
	guardTrailers(r, h.stripNames)

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
	se, card, done, err := h.gateConsented(w, r, now)
	if done {
		return err
	}
	if p := h.accountProblem(card); p != nil {
		return h.answerAccountProblem(w, r, p)
	}
	if done, err := h.checkAccess(w, r, se, card); done {
		return err
	}
	if card.firstGrant() {
		// Once per card entry (per cache_ttl): the start of a session, not
		// every request. Not "when this request filled the entry": the
		// banner page fills it first on a card's first visit.
		h.app.audit.Request(r, "access.granted", audit.Success, append(audit.Card(se.id), zap.String("username", card.account.Username))...)
	}

	h.setIdentity(r, se, card, now)
	hideSessionCookie(r)
	h.app.metrics.Granted.Inc()
	if ce := h.logger.Check(zapcore.DebugLevel, "admitted"); ce != nil {
		ce.Write(zap.String("username", card.values[fieldUser]), zap.String("cert_sha256", se.id.FingerprintHex))
	}
	return next.ServeHTTP(w, r)
}

// gate runs every check that comes before the banner: the certificate
// (admit), its revocation status and the account lookup (both cached in the
// card entry).
// When done is true it has answered the request itself and err is the
// handler's result.
func (h *Handler) gate(w http.ResponseWriter, r *http.Request, now time.Time) (se *siteEntry, card *cardEntry, done bool, err error) {
	se, rej := h.admit(r, now)
	if rej != nil {
		return se, nil, true, h.refuse(w, r, se, rej)
	}
	card, _, err = h.currentCard(r, se, now)
	if err != nil {
		return se, nil, true, h.storeUnavailable(w, r, err)
	}
	if card.verdict.Status != revocation.StatusGood {
		return se, card, true, h.refuseRevocation(w, r, se, card.verdict)
	}
	return se, card, false, nil
}

// gateConsented is gate plus the banner: the card passed every check and
// its holder accepted the notice, or the request has been answered.
func (h *Handler) gateConsented(w http.ResponseWriter, r *http.Request, now time.Time) (se *siteEntry, card *cardEntry, done bool, err error) {
	se, card, done, err = h.gate(w, r, now)
	if done {
		return se, card, done, err
	}
	if !h.app.consents.Accepted(consent.CookieValue(r.Header["Cookie"]), se.id.FingerprintHex, now) {
		return se, card, true, h.askConsent(w, r)
	}
	return se, card, false, nil
}

// answerAccountProblem answers what accountProblem found: enrollment for an
// unregistered card, else a refusal page.
func (h *Handler) answerAccountProblem(w http.ResponseWriter, r *http.Request, p *ui.Problem) error {
	if p.Status == http.StatusSeeOther {
		return h.redirectToEnroll(w, r)
	}
	h.app.metrics.Request(metrics.Denied, p.Code)
	return ui.WriteProblem(w, r, *p)
}

// admit runs the certificate checks: presence, validity, chain, usage,
// issuer, policy, identity. The returned entry is nil only when there is no
// certificate at all.
func (h *Handler) admit(r *http.Request, now time.Time) (*siteEntry, *trust.Rejection) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, rejectNoCertificate
	}
	leaf := r.TLS.PeerCertificates[0]
	if rej := trust.CheckValidity(leaf, now); rej != nil {
		return nil, rej
	}
	se := h.siteEntry(r.TLS, now)
	chain := se.poolChain
	if len(r.TLS.VerifiedChains) > 0 {
		chain = r.TLS.VerifiedChains[0]
	}
	if chain == nil {
		return se, se.poolReject
	}
	if rej := h.policy.CheckChainDepth(chain); rej != nil {
		return se, rej
	}
	if se.rejection != nil {
		return se, se.rejection
	}
	return se, nil
}

// rejectNoCertificate is the (non-)verdict for a request without a card.
var rejectNoCertificate = &trust.Rejection{Code: "certificate_required"}

// siteEntry returns the cached verdict for the connection's certificate,
// computing it on first sight. No I/O happens here.
func (h *Handler) siteEntry(cs *tls.ConnectionState, now time.Time) *siteEntry {
	leaf := cs.PeerCertificates[0]
	if se, ok := h.sites.Get(derKey(leaf.Raw)); ok && now.Sub(se.created) < h.siteTTL {
		return se
	}
	se := &siteEntry{created: now, cert: cardCert{
		subject:  cacid.DistinguishedName(leaf.RawSubject, leaf.Subject),
		issuer:   cacid.DistinguishedName(leaf.RawIssuer, leaf.Issuer),
		serial:   leaf.SerialNumber.Text(16),
		notAfter: leaf.NotAfter,
		leaf:     leaf,
	}}
	var issuer *x509.Certificate
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 1 {
		issuer = cs.VerifiedChains[0][1]
	}
	if h.policy.Roots != nil {
		se.poolChain, se.poolReject = h.policy.Verify(leaf, cs.PeerCertificates[1:], now)
		if len(se.poolChain) > 1 && issuer == nil {
			issuer = se.poolChain[1]
		}
	} else {
		se.poolReject = &trust.Rejection{Code: trust.CodeNotVerified, Reason: "Your certificate was not verified against this site's trusted certificate authorities."}
	}
	se.cert.issuerCert = issuer
	if len(cs.VerifiedChains) > 0 {
		se.cert.chain = cs.VerifiedChains[0]
	} else {
		se.cert.chain = se.poolChain
	}
	se.rejection = h.policy.Check(leaf, issuer)
	id, err := cacid.Parse(leaf)
	if err != nil && se.rejection == nil {
		reason := "it could not be read"
		var cerr *cacid.Error
		if errors.As(err, &cerr) {
			reason = cerr.Reason
		}
		se.rejection = &trust.Rejection{Code: trust.CodeInvalidFormat, Reason: "Your certificate does not look like a DoD CAC/PIV authentication certificate: " + reason + "."}
	}
	se.id = id
	// Only a verdict reached with a verified chain is remembered: the
	// issuer it was judged against is part of it, and a connection that
	// verified nothing must not shape what a verified one sees later.
	if issuer != nil || len(se.poolChain) > 0 || len(cs.VerifiedChains) > 0 {
		h.sites.Add(strings.Clone(derKey(leaf.Raw)), se)
	}
	return se
}

// currentCard returns the site entry's card entry (revocation verdict and
// account), refreshing it from the app when it is stale; refreshed reports
// that this request did so.
func (h *Handler) currentCard(r *http.Request, se *siteEntry, now time.Time) (card *cardEntry, refreshed bool, err error) {
	if c := se.card.Load(); c != nil && !c.stale(now, h.app.epoch.Load()) {
		h.app.metrics.CacheHit.Inc()
		return c, false, nil
	}
	c, err := h.app.card(r.Context(), r, se.id, &se.cert)
	if err != nil {
		return nil, false, err
	}
	se.card.Store(c)
	if c.verdict.FailedOpen {
		fields := append(audit.Card(se.id), zap.NamedError("revocation_error", c.verdict.Err))
		if c.verdict.ca != nil {
			fields = append(fields, audit.CA(c.verdict.ca)...)
		}
		h.app.audit.Request(r, "revocation.failed_open", audit.Failure, fields...)
	}
	return c, true, nil
}

// setIdentity hands the identity to the backend: headers and placeholders.
func (h *Handler) setIdentity(r *http.Request, se *siteEntry, card *cardEntry, now time.Time) {
	// One backing array for all values of this request: downstream handlers
	// (Caddy's header replace, for one) may modify header values in place,
	// so the cached strings are never shared as slices across requests.
	vals := make([]string, numFields+1)
	for i, name := range h.headerNames {
		// An empty value (no certificate behind a password sign-in) is
		// no header at all rather than an empty one.
		if name != "" && card.values[i] != "" {
			vals[i] = card.values[i]
			r.Header[name] = vals[i : i+1 : i+1]
		}
	}
	if h.assertionHeader != "" {
		if tok := h.assertionFor(r, se, card, now); tok != "" {
			vals[numFields] = tok
			r.Header[h.assertionHeader] = vals[numFields:]
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		for i, key := range placeholderKeys {
			repl.Set(key, card.boxed[i])
		}
	}
}

// assertionFor returns the cached signed assertion for this card and
// audience, signing a new one only when it is missing, for another
// audience, about the account's previous data, or three-quarters expired.
func (h *Handler) assertionFor(r *http.Request, se *siteEntry, card *cardEntry, now time.Time) string {
	aud := h.Audience
	if aud == "" {
		aud = hostOnly(r.Host)
	}
	if sa := se.assertion.Load(); sa != nil && sa.audience == aud && now.Before(sa.refreshAt) &&
		(sa.card == card || sa.card.claims == card.claims) {
		return sa.token
	}
	ttl := time.Duration(h.app.AssertionTTL)
	tok, err := h.app.signer.Sign(card.claims, aud, now, ttl)
	if err != nil {
		// Never forward a stale or missing assertion silently: log loudly;
		// the plain headers still describe the verified identity.
		h.logger.Error("signing assertion", zap.Error(err))
		return ""
	}
	se.assertion.Store(&signedAssertion{token: tok, audience: aud, card: card, refreshAt: now.Add(ttl * 3 / 4)})
	return tok
}

func hostOnly(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if i := strings.IndexByte(hostport, ']'); i > 0 {
			return hostport[1:i]
		}
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport, ':') == i {
		return hostport[:i]
	}
	return hostport
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
)
