package portal

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/ui"
)

// authPassword is the auth_method of a password sign-in in audit entries.
const authPassword = "password"

// serveConsent shows the banner (GET) and records acceptance (POST), for
// the admitted card or password session.
func (p *Portal) serveConsent(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if !formMethod(r.Method) {
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	now := time.Now()
	// Whom the acceptance is for: the card, or a password-signed-in user.
	var principal, holder, subject string
	var auditFields []zap.Field
	if v.Card == nil && v.Session != nil {
		username := v.Session.Username
		principal, holder, subject = consent.UserPrincipal(username), username, "signed in with a password"
		auditFields = []zap.Field{zap.String("username", username), zap.String("auth_method", authPassword)}
	} else {
		id := v.Card
		principal, holder, subject = id.FingerprintHex, v.Holder, id.Subject
		auditFields = audit.Card(id)
	}
	if r.Method != http.MethodPost {
		return ui.WriteHTML(w, http.StatusOK, p.consentPage, consent.PageData{
			Banner:  p.cfg.Banner,
			CSRF:    p.cfg.Consent.CSRF(principal, now),
			Next:    ui.SafeNext(r.URL.Query().Get("next")),
			Holder:  holder,
			Subject: subject,
		})
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "bad_form", Title: "The form could not be read", Detail: "Go back, reload the notice page and select I Accept again."})
	}
	if !SameOrigin(r) || !p.cfg.Consent.CheckCSRF(r.PostForm.Get("csrf"), principal, now) {
		p.cfg.Audit.Request(r, "consent.accepted", audit.Failure, append(auditFields, zap.String("reason", "csrf"))...)
		return ui.WriteProblem(w, r, ui.Problem{
			Status: http.StatusForbidden,
			Code:   "csrf_failed",
			Title:  "Your acceptance could not be verified",
			Detail: "The form was too old, was submitted with a different card, or did not come from this site.",
			Steps:  []string{"Go back, reload the notice page, and select I Accept again."},
		})
	}
	token, err := p.cfg.Consent.Issue(principal, now, p.cfg.ConsentTTL)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     consent.CookieName,
		Value:    token,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		// No Expires/Max-Age: a browser-session cookie. The token inside
		// expires after consent_ttl even if the browser stays open.
	})
	p.cfg.Audit.Request(r, "consent.accepted", audit.Success, append(auditFields,
		zap.Time("consent_expires", now.Add(p.cfg.ConsentTTL).UTC()))...)
	// The logon is complete: the previous one is shown before going on.
	return ui.SeeOther(w, p.recordLogon(r, v, ui.SafeNext(r.PostForm.Get("next")), now))
}
