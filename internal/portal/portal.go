package portal

import (
	"context"
	"crypto/x509"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/console"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Paths of the gateway's own pages besides self-service.
const (
	PathJWKS   = ui.Prefix + "jwks.json"
	PathAssets = ui.Prefix + "assets/"
	PathLogout = ui.Prefix + "logout"
)

// maxFormBytes bounds the body of the banner's form.
const maxFormBytes = 16 << 10

// Level is how far the gateway must admit a request before the portal
// serves it. The portal says which (Admission); the gateway admits, and
// hands over what it found in a Visitor.
type Level int

// Admission levels.
const (
	// Public needs nothing: the key set, the stylesheet, the sign-in
	// page, and answers that need no card (an unknown page, a method a
	// page does not take).
	Public Level = iota
	// Optional takes whatever the gateway knows without refusing and
	// without I/O: a password session, a card whose holder accepted the
	// banner (signing out).
	Optional
	// Identified is a card that passed every check before the banner, or
	// with password sign-in a valid password session (the banner itself).
	Identified
	// Consented is Identified plus the banner accepted and the site's
	// deny rules (enrollment).
	Consented
	// Registered is Consented with an active account (the account pages).
	Registered
)

// Visitor is what the gateway decided about a request to its pages.
type Visitor struct {
	// Card is the admitted card (nil without one).
	Card *cacid.Identity
	// Holder is the card holder's name as the gateway shows it.
	Holder string
	// Account is the card's account (active at Registered), nil if none.
	Account *store.Account
	// ByEDIPI is an account holding the card's DoD ID when the card
	// itself is not registered to one.
	ByEDIPI *store.Account
	// Session is the request's valid password session, if any.
	Session *session.Session
	// Consented (Optional level) reports that the card's holder accepted
	// the banner: a card holder's gateway session.
	Consented bool
}

type visitorKey struct{}

// WithVisitor returns r carrying v, for ServeHTTP.
func WithVisitor(r *http.Request, v Visitor) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), visitorKey{}, v))
}

func visitorOf(r *http.Request) Visitor {
	v, _ := r.Context().Value(visitorKey{}).(Visitor)
	return v
}

// Gateway is what the portal needs from the gateway besides the Visitor.
type Gateway interface {
	// Unavailable answers a request whose account-database work failed
	// with the gateway's "try again" refusal (503, Retry-After; logged,
	// counted and audited there as when admitting a request fails so).
	Unavailable(w http.ResponseWriter, r *http.Request, err error) error
}

// Config is what the portal serves with.
type Config struct {
	Gateway Gateway
	// Pages are the self-service pages; nil when the site offers no
	// self-enrollment (unregistered cards see whom to contact).
	Pages *Pages
	// Consent issues the banner's acceptance and CSRF tokens.
	Consent    *consent.Tokens
	Banner     consent.Banner
	ConsentTTL time.Duration
	// PasswordLogin turns the password sign-in on; Sessions are its
	// sessions, with the site's lifetime, idle limit and session_limit.
	PasswordLogin bool
	Sessions      *session.Manager
	SessionTTL    time.Duration
	SessionIdle   time.Duration
	SessionLimit  int
	Contact       string
	Audit         *audit.Log
	Logger        *zap.Logger
	// JWKS returns the assertion verification key set.
	JWKS func() []byte
	// TrustCertificates returns the CAs the site trusts for cards, for
	// the certificates page; none when the gateway cannot tell.
	TrustCertificates func(r *http.Request) []*x509.Certificate
	// Console is the help-desk console at /.cacgate/admin; nil where the
	// site does not turn it on.
	Console *console.Console
	// Logons records each logon (the banner accepted) for the last
	// sign-in notice; nil shows none.
	Logons Logons
}

// Portal serves every page under ui.Prefix, once.
type Portal struct {
	cfg              Config
	consentPage      *template.Template
	notRegistered    *template.Template
	certificatesPage *template.Template
	lastSignInPage   *template.Template
}

// New parses the pages and returns the portal.
func New(cfg Config) (*Portal, error) {
	p := &Portal{cfg: cfg}
	if p.cfg.Logger == nil {
		p.cfg.Logger = zap.NewNop()
	}
	if p.cfg.Audit == nil {
		p.cfg.Audit = audit.Nop()
	}
	var err error
	if p.consentPage, err = ui.ParsePage(consent.Templates, "templates/consent.html"); err != nil {
		return nil, err
	}
	if p.notRegistered, err = ui.ParsePage(Templates, "templates/not-registered.html"); err != nil {
		return nil, err
	}
	if p.certificatesPage, err = ui.ParsePage(Templates, "templates/certificates.html"); err != nil {
		return nil, err
	}
	if p.lastSignInPage, err = ui.ParsePage(Templates, "templates/last-signin.html"); err != nil {
		return nil, err
	}
	return p, nil
}

// Pages are the self-service pages, nil when enrollment is off.
func (p *Portal) Pages() *Pages { return p.cfg.Pages }

// route is what a path under the prefix is.
type route int

const (
	routeNone route = iota
	routeJWKS
	routeAsset
	routeConsent
	routeLogin
	routeLogout
	routeEnroll
	routeAccount
	routeCertificates
	routeConsole
	routeLastSignIn
	routeRestore
)

func routeOf(path string) route {
	switch {
	case path == PathJWKS:
		return routeJWKS
	case path == PathCertificates || strings.HasPrefix(path, PathCertificates+"/"):
		return routeCertificates
	case strings.HasPrefix(path, PathAssets):
		return routeAsset
	case path == consent.Path:
		return routeConsent
	case path == PathLogin:
		return routeLogin
	case path == PathLastSignIn:
		return routeLastSignIn
	case path == PathRestore:
		return routeRestore
	case path == PathLogout:
		return routeLogout
	case path == PathEnroll || strings.HasPrefix(path, PathEnroll+"/"):
		return routeEnroll
	case path == PathAccount || strings.HasPrefix(path, PathAccount+"/"):
		return routeAccount
	case path == console.Path || strings.HasPrefix(path, console.Path+"/"):
		return routeConsole
	}
	return routeNone
}

// Admission returns how far the gateway must admit r before ServeHTTP.
// A method the page does not take needs nothing: it is refused as such.
func (p *Portal) Admission(r *http.Request) Level {
	page := routeOf(r.URL.Path)
	switch page {
	case routeConsent, routeEnroll, routeAccount, routeConsole, routeRestore:
		if !formMethod(r.Method) {
			return Public
		}
	}
	if page == routeConsole {
		if p.cfg.Console == nil {
			// Not turned on here: "no such page", to anyone.
			return Public
		}
		// A card, the banner accepted, an active account and the deny
		// rules, as for the account pages; the console checks the
		// groups. Never a password session.
		return Registered
	}
	switch page {
	case routeLogout:
		return Optional
	case routeConsent, routeLastSignIn:
		return Identified
	case routeEnroll, routeRestore:
		return Consented
	case routeAccount:
		return Registered
	}
	return Public
}

func formMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodPost
}

// ServeHTTP serves a page under the prefix for the admitted Visitor (see
// WithVisitor). Nothing below the prefix reaches the protected
// application. Like a Caddy handler it returns an error only for an
// internal failure, having written nothing. A page that could not be
// shown because the account database failed (a form's current state
// could not be read) is the gateway's refusal for it, Gateway.Unavailable:
// 503, never an empty 500. (What people send is answered by the pages
// themselves, with the form again.)
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	err := p.serve(w, r)
	if err != nil && (errors.Is(err, selfservice.ErrUnavailable) || store.Unavailable(err)) {
		return p.cfg.Gateway.Unavailable(w, r, err)
	}
	return err
}

func (p *Portal) serve(w http.ResponseWriter, r *http.Request) error {
	v := visitorOf(r)
	switch routeOf(r.URL.Path) {
	case routeJWKS:
		return p.serveJWKS(w, r)
	case routeAsset:
		return serveAsset(w, r)
	case routeCertificates:
		return p.serveCertificates(w, r)
	case routeConsent:
		return p.serveConsent(w, r, v)
	case routeLastSignIn:
		return p.serveLastSignIn(w, r, v)
	case routeRestore:
		return p.serveRestore(w, r, v)
	case routeLogin:
		return p.serveLogin(w, r)
	case routeLogout:
		return p.serveLogout(w, r, v)
	case routeEnroll:
		return p.serveEnroll(w, r, v)
	case routeAccount:
		return p.serveAccount(w, r, v)
	case routeConsole:
		return p.serveConsole(w, r, v)
	}
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found", Detail: "There is no gateway page at this address."})
}

// SameOrigin rejects cross-site form posts where the browser says so; the
// bound CSRF token is the primary defence, this is a second one.
func SameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		return strings.EqualFold(origin, "https://"+r.Host)
	}
	return true
}

// serveJWKS publishes the assertion verification key. It is public
// information, so it needs no card: backends fetch it.
func (p *Portal) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return MethodNotAllowed(w, r, "GET, HEAD")
	}
	body := p.cfg.JWKS()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(body)
	return err
}

// serveAsset serves the embedded stylesheet; pages for people without a
// card (the 401 page) need it too, so it needs no card.
func serveAsset(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return MethodNotAllowed(w, r, "GET, HEAD")
	}
	name := strings.TrimPrefix(r.URL.Path, PathAssets)
	data, err := fs.ReadFile(ui.Assets(), name)
	if err != nil || strings.Contains(name, "/") {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Not found", Detail: "No such file."})
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(data)))
	return nil
}
