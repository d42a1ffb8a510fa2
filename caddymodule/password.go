package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Password sign-in ("I don't have a CAC/PIV"): for people without a card
// reader, where the site turns it on. The person signs in at
// /.cacgate/login with their account's username and password (lockout in
// the database), gets a session cookie, accepts the banner like anyone
// else, and reaches the backend with the same identity headers as a card
// holder's — minus the certificate's, and with X-Cac-Auth-Method:
// password, so the application can tell a weaker sign-in from a CAC.

const (
	// loginCSRFCookie binds the sign-in form's CSRF token to this browser
	// (there is no card to bind it to).
	loginCSRFCookie = "__Host-cacgate-login"
)

func hasCertificate(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.PeerCertificates) > 0
}

// principal is whom a consent is bound to: a card's fingerprint, or a
// password-signed-in user (a prefix no hex fingerprint can have).
func userPrincipal(username string) string { return "user:" + username }

// servePasswordSession admits a request without a certificate when it
// carries a valid password session, with the same checks a card gets
// short of the certificate's.
func (h *Handler) servePasswordSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, now time.Time) error {
	sess, ok, err := h.app.sessions.Session(r.Context(), consent.CookieByName(sentCookies(r), session.CookieName), now)
	if err != nil {
		// Whether the session was signed out cannot be checked.
		return h.storeUnavailable(w, r, err)
	}
	if !ok || (h.sessionIdle > 0 && sess.IdleUntil.IsZero()) {
		// No session, one that ended, or one minted without the idle
		// limit this site requires.
		return h.refuse(w, r, nil, rejectNoCertificate)
	}
	username := sess.Username
	card, err := h.app.userEntry(r.Context(), username)
	if err != nil {
		return h.storeUnavailable(w, r, err)
	}
	if card.account == nil {
		// the account went away since sign-in
		return h.refuse(w, r, nil, rejectNoCertificate)
	}
	if changed := card.account.PasswordChangedAt; sess.SignedIn.Before(changed.Truncate(time.Second)) {
		// Signed in with a password since changed or reset: whoever
		// changed it meant to shut this session out. Ended for every
		// node, so it is audited once.
		h.app.endSession(r.Context(), sess, now)
		h.app.audit.Request(r, "session.ended", audit.Success, zap.String("username", username),
			zap.String("reason", "password_changed"), zap.Time("password_changed_at", changed.UTC()))
		return h.refuse(w, r, nil, rejectNoCertificate)
	}
	if !h.app.consents.Accepted(consent.CookieValue(r.Header["Cookie"]), userPrincipal(username), now) {
		return h.askConsent(w, r)
	}
	if p := h.accountProblem(card); p != nil {
		if p.Status == http.StatusSeeOther {
			return h.refuse(w, r, nil, rejectNoCertificate)
		}
		h.app.metrics.Request(metrics.Denied, p.Code)
		return ui.WriteProblem(w, r, *p)
	}
	se := h.userSiteEntry(username, now)
	if done, err := h.checkAccess(w, r, se, card); done {
		return err
	}
	h.renewSession(w, sess, now)
	h.setIdentity(r, se, card, now)
	hideSessionCookie(r)
	h.app.metrics.Granted.Inc()
	return next.ServeHTTP(w, r)
}

// The idle limit of password sessions.
const defaultSessionIdle = 15 * time.Minute // ASD STIG V-222389

// renewSession pushes the session's idle deadline back by re-issuing its
// cookie, when the deadline is more than session.RenewAfter old.
func (h *Handler) renewSession(w http.ResponseWriter, s session.Session, now time.Time) {
	token, err := h.app.sessions.Renew(s, now, h.sessionIdle)
	if token == "" && err == nil {
		return
	}
	if err != nil {
		// The session is still valid until its current deadline.
		h.logger.Error("renewing a password session", zap.String("username", s.Username), zap.Error(err))
		return
	}
	http.SetCookie(w, sessionCookie(token))
}

// sessionCookie is the password-session cookie carrying token.
func sessionCookie(token string) *http.Cookie {
	return &http.Cookie{Name: session.CookieName, Value: token, Path: "/", Secure: true,
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// userSiteEntry holds a password user's cached assertion for this site,
// under a key no certificate's DER can take (DER starts with 0x30).
func (h *Handler) userSiteEntry(username string, now time.Time) *siteEntry {
	key := userPrincipal(username)
	if se, ok := h.sites.Get(key); ok && now.Sub(se.created) < h.siteTTL {
		return se
	}
	se := &siteEntry{created: now}
	h.sites.Add(key, se)
	return se
}

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
	return c.nonce != "" && sameOrigin(c.r) && c.tokens.CheckCSRF(token, "login:"+c.nonce, c.now)
}

// serveLogin is /.cacgate/login.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	if !h.PasswordLogin {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "Sign-in without a card is not offered on this site.", Contact: h.Contact})
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
	csrf := loginCSRF{tokens: h.app.tokens, nonce: nonce, r: r, now: now}
	return h.enrollFlow.ServeLogin(w, r, portal.Login{
		CSRF: csrf,
		Next: ui.SafeNext(r.URL.Query().Get("next")),
		// Each account locks after three wrong passwords; the address's
		// count bounds trying one password on many accounts. The pages
		// count it only for a same-origin form with a valid token, so a
		// forged cross-site post cannot use the address's allowance up.
		Address:     clientIP(r),
		Unavailable: func(err error) error { return h.storeUnavailable(w, r, err) },
		SignIn: func(acct *store.Account, next string) error {
			return h.startPasswordSession(w, r, acct, next, now)
		},
	})
}

// startPasswordSession signs acct in after a correct password: the
// session cookie (and, with session_limit, its record), then on to next.
func (h *Handler) startPasswordSession(w http.ResponseWriter, r *http.Request, acct *store.Account, next string, now time.Time) error {
	// A correct password is not an attempt against the per-address
	// limit: people behind one NAT sign in all day.
	if err := h.enrollFlow.Service().SignedIn(r.Context(), clientIP(r)); err != nil {
		h.logger.Warn("refunding a sign-in's attempt per client address", zap.Error(err))
	}
	_, token, ended, err := h.app.sessions.Start(r.Context(), acct.Username, now, time.Duration(h.SessionTTL), h.sessionIdle, h.SessionLimit)
	if err != nil {
		if h.SessionLimit > 0 {
			// Without the record the limit cannot hold: no session.
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
		return err
	}
	h.app.auditSessionLimit(r, ended, h.SessionLimit)
	http.SetCookie(w, sessionCookie(token))
	return seeOther(w, next)
}

// loginLink is offered on the no-card page where password sign-in is on.
func (h *Handler) loginLinks(r *http.Request) []ui.Link {
	if !h.PasswordLogin {
		return nil
	}
	next := r.URL.RequestURI()
	if strings.HasPrefix(next, ui.Prefix) {
		next = "/"
	}
	return []ui.Link{{Text: "I don't have a CAC/PIV: sign in with my username and password", Href: portal.PathLogin + "?next=" + url.QueryEscape(next)}}
}
