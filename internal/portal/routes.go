package portal

import (
	"net/http"
	"time"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/console"
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

// serveEnroll is where unregistered cards land: the self-enrollment flow
// when the site offers it, else a page that says whom to contact.
func (p *Portal) serveEnroll(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if !formMethod(r.Method) {
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	now := time.Now()
	id := v.Card
	if v.Account != nil && r.Method != http.MethodPost && r.URL.Path != PathReset {
		// Registered (enrolled or linked meanwhile): go where they were
		// going. A POST still reaches the flow, which answers a double
		// submit with "you already have an account"; the password reset
		// is for registered card holders above all.
		next := "/"
		if r.URL.Path == PathEnroll {
			next = ui.SafeNext(r.URL.Query().Get("next"))
		}
		return ui.SeeOther(w, next)
	}
	if pages := p.cfg.Pages; pages != nil {
		csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: id.FingerprintHex, r: r, now: now}
		// Every step that checks an identity (roster facts, a password,
		// answers) counts the client's address against attempts_per_ip
		// itself, once the form's anti-forgery check passed, so a forged
		// cross-site post cannot use the allowance up; the hashing steps
		// give a step that went through back.
		return pages.Serve(w, WithClientAddress(r, p.cfg.Audit.ClientIP(r)), v.Card, csrf)
	}
	if r.URL.Path != PathEnroll || r.Method == http.MethodPost {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found", Detail: "Self-enrollment is not offered on this site.", Contact: p.cfg.Contact})
	}
	if !ui.WantsHTML(r) {
		return ui.WriteProblem(w, r, ui.ProblemNotRegistered(p.cfg.Contact))
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
	csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: v.Card.FingerprintHex, r: r, now: time.Now()}
	// The changes that hash count the address themselves, before hashing.
	return p.cfg.Pages.ServeAccount(w, WithClientAddress(r, p.cfg.Audit.ClientIP(r)), v.Card, v.Account, csrf)
}

// serveConsole is the help-desk console, where the site turns it on.
func (p *Portal) serveConsole(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if !formMethod(r.Method) {
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if p.cfg.Console == nil || v.Card == nil {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no gateway page at this address."})
	}
	csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: v.Card.FingerprintHex, r: r, now: time.Now()}
	return p.cfg.Console.Serve(w, r, console.Request{Card: v.Card, Account: v.Account, ClientIP: p.cfg.Audit.ClientIP(r), CSRF: csrf})
}

// serveRestore serves the restore page to a card holder whose account was
// disabled for inactivity.
func (p *Portal) serveRestore(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if !formMethod(r.Method) {
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if p.cfg.Pages == nil || v.Card == nil {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "Restoring an account yourself is not offered on this site: ask its administrators.", Contact: p.cfg.Contact})
	}
	acct := v.Account
	if acct == nil {
		acct = v.ByEDIPI
	}
	csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: v.Card.FingerprintHex, r: r, now: time.Now()}
	return p.cfg.Pages.ServeRestore(w, WithClientAddress(r, p.cfg.Audit.ClientIP(r)), v.Card, acct, csrf)
}
