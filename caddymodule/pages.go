package caddymodule

import (
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/ui"
)

// Paths under the reserved prefix.
const (
	jwksPath   = ui.Prefix + "jwks.json"
	assetsPath = ui.Prefix + "assets/"
)

// maxFormBytes bounds the body of the gateway's own forms.
const maxFormBytes = 16 << 10

// serveGatewayPage serves the reserved /.cacgate/ paths. Nothing below the
// prefix reaches the protected application.
func (h *Handler) serveGatewayPage(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.URL.Path == jwksPath:
		return h.serveJWKS(w, r)
	case strings.HasPrefix(r.URL.Path, assetsPath):
		return h.serveAsset(w, r)
	case r.URL.Path == consent.Path:
		return h.serveConsent(w, r)
	case r.URL.Path == portal.PathLogin:
		return h.serveLogin(w, r)
	case r.URL.Path == pathLogout:
		return h.serveLogout(w, r)
	case isEnrollPath(r.URL.Path):
		return h.serveEnroll(w, r)
	case r.URL.Path == portal.PathAccount || strings.HasPrefix(r.URL.Path, portal.PathAccount+"/"):
		return h.serveAccount(w, r)
	}
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found", Detail: "There is no gateway page at this address."})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Title: "Method not allowed", Detail: "This page does not accept " + r.Method + " requests."})
}

// serveJWKS publishes the assertion verification key. It is public
// information, so it needs no card: backends fetch it.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, r, "GET, HEAD")
	}
	body := h.app.signer.JWKS()
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
func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, r, "GET, HEAD")
	}
	name := strings.TrimPrefix(r.URL.Path, assetsPath)
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

// serveConsent shows the banner (GET) and records acceptance (POST).
func (h *Handler) serveConsent(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	now := time.Now()
	// Whom the acceptance is for: the card, or a password-signed-in user.
	var principal, holder, subject string
	var auditFields []zap.Field
	if h.PasswordLogin && !hasCertificate(r) {
		username, ok := h.app.sessions.User(r.Context(), consent.CookieByName(r.Header["Cookie"], session.CookieName), now)
		if !ok {
			return h.refuse(w, r, nil, rejectNoCertificate)
		}
		principal, holder, subject = userPrincipal(username), username, "signed in with a password"
		auditFields = []zap.Field{zap.String("username", username), zap.String("auth_method", authPassword)}
	} else {
		se, _, done, err := h.gate(w, r, now)
		if done {
			return err
		}
		principal, holder, subject = se.id.FingerprintHex, holderName(se.id), se.id.Subject
		auditFields = audit.Card(se.id)
	}
	if r.Method != http.MethodPost {
		return ui.WriteHTML(w, http.StatusOK, h.consentPage, consent.PageData{
			Banner:  h.banner,
			CSRF:    h.app.tokens.CSRF(principal, now),
			Next:    ui.SafeNext(r.URL.Query().Get("next")),
			Holder:  holder,
			Subject: subject,
		})
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "bad_form", Title: "The form could not be read", Detail: "Go back, reload the notice page and select I Accept again."})
	}
	if !sameOrigin(r) || !h.app.tokens.CheckCSRF(r.PostForm.Get("csrf"), principal, now) {
		h.app.audit.Request(r, "consent.accepted", audit.Failure, append(auditFields, zap.String("reason", "csrf"))...)
		return ui.WriteProblem(w, r, ui.Problem{
			Status: http.StatusForbidden,
			Code:   "csrf_failed",
			Title:  "Your acceptance could not be verified",
			Detail: "The form was too old, was submitted with a different card, or did not come from this site.",
			Steps:  []string{"Go back, reload the notice page, and select I Accept again."},
		})
	}
	ttl := time.Duration(h.ConsentTTL)
	token, err := h.app.tokens.Issue(principal, now, ttl)
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
	h.app.audit.Request(r, "consent.accepted", audit.Success, append(auditFields,
		zap.Time("consent_expires", now.Add(ttl).UTC()))...)
	return seeOther(w, ui.SafeNext(r.PostForm.Get("next")))
}

// sameOrigin rejects cross-site form posts where the browser says so; the
// card-bound CSRF token is the primary defence, this is a second one.
func sameOrigin(r *http.Request) bool {
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

// serveEnroll is where unregistered cards land: the self-enrollment flow
// when the site offers it, else a page that says whom to contact.
func (h *Handler) serveEnroll(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	now := time.Now()
	se, card, done, err := h.gateConsented(w, r, now)
	if done {
		return err
	}
	if done, err := h.checkAccessDeny(w, r, se, card); done {
		return err
	}
	if card.account != nil && r.Method != http.MethodPost && r.URL.Path != portal.PathReset {
		// Registered (enrolled or linked meanwhile): go where they were
		// going. A POST still reaches the flow, which answers a double
		// submit with "you already have an account"; the password reset
		// is for registered card holders above all.
		next := "/"
		if r.URL.Path == portal.PathEnroll {
			next = ui.SafeNext(r.URL.Query().Get("next"))
		}
		return seeOther(w, next)
	}
	if h.enrollFlow != nil {
		// A post from another origin is refused by the flow's CSRF check;
		// it must not use the address's allowance up first.
		if r.Method == http.MethodPost && limitedEnrollPOST(r.URL.Path) && sameOrigin(r) {
			if done, err := h.limitAddress(w, r, "selfservice.rate_limited", audit.Card(se.id)...); done {
				return err
			}
		}
		csrf := cardCSRF{tokens: h.app.tokens, fingerprint: se.id.FingerprintHex, r: r, now: now}
		return h.enrollFlow.Serve(w, r, enrollCard(se), csrf)
	}
	if r.URL.Path != portal.PathEnroll || r.Method == http.MethodPost {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found", Detail: "Self-enrollment is not offered on this site.", Contact: h.Contact})
	}
	if !ui.WantsHTML(r) {
		return ui.WriteProblem(w, r, problemNotRegistered(h.Contact))
	}
	return ui.WriteHTML(w, http.StatusForbidden, h.notRegisteredPage, portal.NotRegisteredData{
		Holder:     holderName(se.id),
		EDIPI:      se.id.EDIPI,
		Subject:    se.id.Subject,
		Issuer:     se.id.Issuer,
		Contact:    h.Contact,
		HasAccount: card.byEDIPI != nil,
	})
}

// serveAccount is the signed-in card holder's account page: registered
// cards, clearing one, password and security answers. It needs an active
// account and the site's enrollment pieces (roster, hasher).
func (h *Handler) serveAccount(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	now := time.Now()
	se, card, done, err := h.gateConsented(w, r, now)
	if done {
		return err
	}
	if p := h.accountProblem(card); p != nil {
		return h.answerAccountProblem(w, r, p)
	}
	if done, err := h.checkAccessDeny(w, r, se, card); done {
		return err
	}
	if h.enrollFlow == nil {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "Account self-service is not offered on this site.", Contact: h.Contact})
	}
	csrf := cardCSRF{tokens: h.app.tokens, fingerprint: se.id.FingerprintHex, r: r, now: now}
	return h.enrollFlow.ServeAccount(w, r, enrollCard(se), card.account, csrf)
}
