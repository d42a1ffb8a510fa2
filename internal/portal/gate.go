package portal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// cardCSRF binds the self-service forms' CSRF tokens to the card, with the
// same cross-origin check as the banner.
type cardCSRF struct {
	tokens      *consent.Tokens
	fingerprint string
	r           *http.Request
	now         time.Time
}

func (c cardCSRF) Token() string { return c.tokens.CSRF(c.fingerprint, c.now) }
func (c cardCSRF) Check(token string) bool {
	return SameOrigin(c.r) && c.tokens.CheckCSRF(token, c.fingerprint, c.now)
}

// limitedEnrollPOST reports whether a POST to path checks an identity
// (roster facts, a password or answers) and so counts against the
// per-address limit.
func limitedEnrollPOST(path string) bool {
	switch strings.TrimSuffix(path, "/") {
	case PathNew, PathLink, PathReset:
		return true
	}
	return false
}

// serveEnroll is where unregistered cards land: the self-enrollment flow
// when the site offers it, else a page that says whom to contact.
func (p *Portal) serveEnroll(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if !formMethod(r.Method) {
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	now := time.Now()
	id := v.Card.Identity
	if v.Account != nil && r.Method != http.MethodPost && r.URL.Path != PathReset {
		// Registered (enrolled or linked meanwhile): go where they were
		// going. A POST still reaches the flow, which answers a double
		// submit with "you already have an account"; the password reset
		// is for registered card holders above all.
		next := "/"
		if r.URL.Path == PathEnroll {
			next = ui.SafeNext(r.URL.Query().Get("next"))
		}
		return seeOther(w, next)
	}
	if pages := p.cfg.Pages; pages != nil {
		// A post from another origin is refused by the flow's CSRF check;
		// it must not use the address's allowance up first.
		if r.Method == http.MethodPost && limitedEnrollPOST(r.URL.Path) && SameOrigin(r) {
			if done, err := p.limitAddress(w, r, "selfservice.rate_limited", audit.Card(id)...); done {
				return err
			}
		}
		csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: id.FingerprintHex, r: r, now: now}
		return pages.Serve(w, r, *v.Card, csrf)
	}
	if r.URL.Path != PathEnroll || r.Method == http.MethodPost {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found", Detail: "Self-enrollment is not offered on this site.", Contact: p.cfg.Contact})
	}
	if !ui.WantsHTML(r) {
		return ui.WriteProblem(w, r, ProblemNotRegistered(p.cfg.Contact))
	}
	return ui.WriteHTML(w, http.StatusForbidden, p.notRegistered, NotRegisteredData{
		Holder:     v.Holder,
		EDIPI:      id.EDIPI,
		Subject:    id.Subject,
		Issuer:     id.Issuer,
		Contact:    p.cfg.Contact,
		HasAccount: v.ByEDIPI != nil,
	})
}

// ProblemNotRegistered is the answer to a card without an account where
// the site offers no self-enrollment, for clients that want no page.
func ProblemNotRegistered(contact string) ui.Problem {
	return ui.Problem{
		Status:  http.StatusForbidden,
		Code:    "not_registered",
		Title:   "Your card is not registered",
		Detail:  "This card is not registered to an account on this site.",
		Contact: contact,
	}
}

// serveAccount is the signed-in card holder's account page: registered
// cards, clearing one, password and security answers.
func (p *Portal) serveAccount(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if !formMethod(r.Method) {
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if p.cfg.Pages == nil {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "Account self-service is not offered on this site.", Contact: p.cfg.Contact})
	}
	csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: v.Card.Identity.FingerprintHex, r: r, now: time.Now()}
	return p.cfg.Pages.ServeAccount(w, r, *v.Card, v.Account, csrf)
}

// limitAddress counts an identity check from the request's client address
// against attempts_per_ip. Over the limit it answers 429 and audits event
// (with fields); when the count cannot be kept it answers 503, since a
// limit that cannot be checked must not let the attempt through. done
// reports that the response was written.
func (p *Portal) limitAddress(w http.ResponseWriter, r *http.Request, event string, fields ...zap.Field) (done bool, err error) {
	err = p.cfg.Pages.Service().Guard().TakeAddress(r.Context(), p.cfg.Audit.ClientIP(r))
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, selfservice.ErrLimited):
		return true, p.cfg.Gateway.Unavailable(w, r, errors.Join(errors.New("counting an identity check per client address"), err))
	}
	p.cfg.Audit.Request(r, event, audit.Failure, append(fields, zap.String("reason", "too_many_attempts_from_address"))...)
	return true, AddressLimited(w, r, p.cfg.Contact)
}

// ---- password sign-in ----

// loginCSRFCookie binds the sign-in form's CSRF token to this browser
// (there is no card to bind it to).
const loginCSRFCookie = "__Host-cacgate-login"

// loginCSRF binds the sign-in form to a random value in a __Host- cookie of
// this browser; a cross-site page can neither read nor set it.
type loginCSRF struct {
	tokens *consent.Tokens
	nonce  string
	r      *http.Request
	now    time.Time
}

func (c loginCSRF) Token() string { return c.tokens.CSRF("login:"+c.nonce, c.now) }
func (c loginCSRF) Check(token string) bool {
	return c.nonce != "" && SameOrigin(c.r) && c.tokens.CheckCSRF(token, "login:"+c.nonce, c.now)
}

// serveLogin is the password sign-in page.
func (p *Portal) serveLogin(w http.ResponseWriter, r *http.Request) error {
	if !p.cfg.PasswordLogin {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "Sign-in without a card is not offered on this site.", Contact: p.cfg.Contact})
	}
	now := time.Now()
	nonce := consent.CookieByName(r.Header["Cookie"], loginCSRFCookie)
	if r.Method != http.MethodPost && (len(nonce) < 16 || len(nonce) > 64) {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		nonce = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: nonce, Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	}
	csrf := loginCSRF{tokens: p.cfg.Consent, nonce: nonce, r: r, now: now}
	return p.cfg.Pages.ServeLogin(w, r, Login{
		CSRF: csrf,
		Next: ui.SafeNext(r.URL.Query().Get("next")),
		// Each account locks after three wrong passwords; the address's
		// count bounds trying one password on many accounts. The pages
		// count it only for a same-origin form with a valid token, so a
		// forged cross-site post cannot use the address's allowance up.
		Address:     p.cfg.Audit.ClientIP(r),
		Unavailable: func(err error) error { return p.cfg.Gateway.Unavailable(w, r, err) },
		SignIn: func(acct *store.Account, next string) error {
			return p.startSession(w, r, acct, next, now)
		},
	})
}

// startSession signs acct in after a correct password: the session
// cookie (and, with session_limit, its record), then on to next.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, acct *store.Account, next string, now time.Time) error {
	// A correct password is not an attempt against the per-address
	// limit: people behind one NAT sign in all day.
	if err := p.cfg.Pages.Service().SignedIn(r.Context(), p.cfg.Audit.ClientIP(r)); err != nil {
		p.cfg.Logger.Warn("refunding a sign-in's attempt per client address", zap.Error(err))
	}
	_, token, ended, err := p.cfg.Sessions.Start(r.Context(), acct.Username, now, p.cfg.SessionTTL, p.cfg.SessionIdle, p.cfg.SessionLimit)
	if err != nil {
		if p.cfg.SessionLimit > 0 {
			// Without the record the limit cannot hold: no session.
			return p.cfg.Gateway.Fail(http.StatusServiceUnavailable, err)
		}
		return err
	}
	for _, old := range ended {
		p.cfg.Audit.Request(r, "session.ended", audit.Success, zap.String("username", old.Username),
			zap.String("reason", "session_limit"), zap.Int("session_limit", p.cfg.SessionLimit))
	}
	http.SetCookie(w, SessionCookie(token))
	return seeOther(w, next)
}

// SessionCookie is the password-session cookie carrying token.
func SessionCookie(token string) *http.Cookie {
	return &http.Cookie{Name: session.CookieName, Value: token, Path: "/", Secure: true,
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// ---- signing out ----

// The explicit logoff of ASD STIG V-222391/V-222392. What it ends is the
// gateway's session: a password session (its cookie, and its ID on every
// node), and for a card holder the accepted banner, so the next request
// meets the banner again. The browser keeps presenting the card until it
// is closed, which the page says; the gateway cannot end that.

// serveLogout ends the session (POST) and tells the person so (GET). A GET
// while still signed in offers the sign-out button rather than claiming
// the session is over.
func (p *Portal) serveLogout(w http.ResponseWriter, r *http.Request, v Visitor) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return p.serveSignedOut(w, r, v)
	case http.MethodPost:
	default:
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if !SameOrigin(r) {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "csrf_failed", Title: "Sign-out refused",
			Detail: "The sign-out request did not come from this site."})
	}
	now := time.Now()
	if s := v.Session; s != nil {
		recorded := true
		if err := p.cfg.Sessions.EndEverywhere(r.Context(), *s, now); err != nil {
			recorded = false
			p.cfg.Logger.Error("recording a sign-out: other nodes may accept the session's tokens until they expire",
				zap.String("username", s.Username), zap.Error(err))
		}
		p.cfg.Audit.Request(r, "signout.password", audit.Success, zap.String("username", s.Username),
			zap.Bool("session_ended_in_store", recorded))
	} else if v.Card != nil && v.Consented {
		p.cfg.Audit.Request(r, "signout.card", audit.Success, audit.Card(v.Card.Identity)...)
	}
	// Whatever was or was not valid: the browser forgets both.
	for _, name := range []string{session.CookieName, consent.CookieName} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
	return seeOther(w, PathLogout)
}

func (p *Portal) serveSignedOut(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if v.Session != nil {
		return ui.WriteNotice(w, r, ui.Notice{Status: http.StatusOK, Code: "signed_in", Title: "Sign out",
			Paragraphs: []string{"You are signed in to this site with your username and password. Sign out to end that session."},
			Form:       &ui.NoticeForm{Action: PathLogout, Button: "Sign out"},
			Links:      []ui.Link{{Text: "Return to the site", Href: "/"}}})
	}
	if v.Card != nil && v.Consented {
		return ui.WriteNotice(w, r, ui.Notice{Status: http.StatusOK, Code: "signed_in", Title: "Sign out",
			Paragraphs: []string{
				"You are signed in to this site with your CAC. Sign out to end this session: the site will show the notice and consent banner again before it lets this card back in.",
				"Then remove your card from the reader and close every browser window: the browser keeps using the card until it is closed.",
			},
			Form:  &ui.NoticeForm{Action: PathLogout, Button: "Sign out"},
			Links: []ui.Link{{Text: "Return to the site", Href: "/"}}})
	}
	n := ui.Notice{Status: http.StatusOK, Code: "signed_out", Title: "You have signed out",
		Paragraphs: []string{
			"Your session on this site has ended.",
			"If you signed in with a CAC, remove it from the reader and close every browser window: the browser keeps using the card until it is closed.",
			"On a shared computer, close every browser window now.",
		},
		Links: []ui.Link{{Text: "Return to the site", Href: "/"}}}
	if p.cfg.PasswordLogin {
		n.Links = append([]ui.Link{{Text: "Sign in again with a username and password", Href: PathLogin}}, n.Links...)
	}
	return ui.WriteNotice(w, r, n)
}
