package portal

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/selfservice"
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
		// A post from another origin is refused by the flow's CSRF check;
		// it must not use the address's allowance up first.
		if r.Method == http.MethodPost && limitedEnrollPOST(r.URL.Path) && SameOrigin(r) {
			if done, err := p.limitAddress(w, r, "enroll.rate_limited", audit.Card(id)...); done {
				return err
			}
		}
		csrf := cardCSRF{tokens: p.cfg.Consent, fingerprint: id.FingerprintHex, r: r, now: now}
		// The hashing steps (profile, questions) count the address
		// themselves, before hashing, and give a step that went through
		// back.
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
