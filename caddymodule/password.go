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
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/oidcop"
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

// servePasswordSession admits a request without a certificate when it
// carries a valid password session, with the same checks a card gets
// short of the certificate's.
func (h *Handler) servePasswordSession(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, now time.Time) error {
	sess, ok, err := h.app.sessions.Session(r.Context(), consent.CookieByName(sentCookies(r), session.CookieName), now)
	if err != nil {
		// Whether the session was signed out cannot be checked.
		return h.unavailable(w, r, err)
	}
	if !ok || (h.sessionIdle > 0 && sess.IdleUntil.IsZero()) {
		// No session, one that ended, or one minted without the idle
		// limit this site requires.
		return h.refuseNoCard(w, r)
	}
	d, ended := h.site.AdmitUser(r, sess.Username, sess.SignedIn, now)
	if ended {
		// Signed in with a password since changed or reset: whoever
		// changed it meant to shut this session out. Ended for every
		// node, so it is audited once.
		h.app.endSession(r.Context(), sess, now)
		h.app.audit.Request(r, "session.ended", audit.Success, zap.String("username", sess.Username),
			zap.String("reason", "password_changed"), zap.Time("password_changed_at", d.Entry.Account.PasswordChangedAt.UTC()))
	}
	if d.Outcome != gateway.Admitted {
		return h.answer(w, r, d)
	}
	h.renewSession(w, sess, now)
	return h.forward(w, r, next, &d, now)
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

// loginLink is offered on the no-card page where password sign-in is on.
func (h *Handler) loginLinks(r *http.Request) []ui.Link {
	if !h.PasswordLogin {
		return nil
	}
	next := r.URL.RequestURI()
	if strings.HasPrefix(next, ui.Prefix) && !(h.OIDC != nil && strings.HasPrefix(next, oidcop.PathAuthorize+"?")) {
		// (An OpenID Connect sign-in resumes after the password sign-in.)
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
