package caddymodule

import (
	"context"
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
	"github.com/cacgate/cacgate/internal/ui"
)

// Password sign-in ("I don't have a CAC/PIV"): for people without a card
// reader, where the site turns it on. The person signs in at
// /.cacgate/login with their account's username and password (lockout in
// the database), gets a session cookie, accepts the banner like anyone
// else, and reaches the backend with the same identity headers as a card
// holder's — minus the certificate's, and with X-Cac-Auth-Method:
// password, so the application can tell a weaker sign-in from a CAC.

func hasCertificate(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.PeerCertificates) > 0
}

// principal is whom a consent is bound to: a card's fingerprint, or a
// password-signed-in user (a prefix no hex fingerprint can have).
func userPrincipal(username string) string { return portal.UserPrincipal(username) }

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
	http.SetCookie(w, portal.SessionCookie(token))
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

// endSession signs session s out on every node. It reports whether the
// database recorded it; either way this node refuses the session at once.
func (a *App) endSession(ctx context.Context, s session.Session, now time.Time) bool {
	if err := a.sessions.EndEverywhere(ctx, s, now); err != nil {
		a.logger.Error("recording a sign-out: other nodes may accept the session's tokens until they expire",
			zap.String("username", s.Username), zap.Error(err))
		return false
	}
	return true
}
