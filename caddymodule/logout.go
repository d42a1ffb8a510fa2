package caddymodule

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/ui"
)

// The explicit logoff of ASD STIG V-222391/V-222392 at /.cacgate/logout.
// What it ends is the gateway's session: a password session (its cookie,
// and its ID on every node), and for a card holder the accepted banner, so
// the next request meets the banner again. The browser keeps presenting
// the card until it is closed, which the page says; the gateway cannot end
// that.

const pathLogout = ui.Prefix + "logout"

// serveLogout ends the session (POST) and tells the person so (GET). A GET
// while still signed in offers the sign-out button rather than claiming
// the session is over.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return h.serveSignedOut(w, r)
	case http.MethodPost:
	default:
		return methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if !sameOrigin(r) {
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "csrf_failed", Title: "Sign-out refused",
			Detail: "The sign-out request did not come from this site."})
	}
	now := time.Now()
	if s, ok, _ := h.app.sessions.Session(r.Context(), consent.CookieByName(r.Header["Cookie"], session.CookieName), now); ok {
		recorded := h.app.endSession(r.Context(), s, now)
		h.app.audit.Request(r, "signout.password", audit.Success, zap.String("username", s.Username),
			zap.Bool("session_ended_in_store", recorded))
	} else if id, ok := h.cardSession(r, now); ok {
		h.app.audit.Request(r, "signout.card", audit.Success, audit.Card(id)...)
	}
	// Whatever was or was not valid: the browser forgets both.
	for _, name := range []string{session.CookieName, consent.CookieName} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
	return seeOther(w, pathLogout)
}

// cardSession returns the request's card and whether it carries an
// accepted banner for it: a card holder's gateway session. Both come from
// the caches the gate fills; no I/O.
func (h *Handler) cardSession(r *http.Request, now time.Time) (*cacid.Identity, bool) {
	if !hasCertificate(r) {
		return nil, false
	}
	se, rej := h.admit(r, now)
	if se == nil || rej != nil || se.id == nil {
		return nil, false
	}
	return se.id, h.app.consents.Accepted(consent.CookieValue(r.Header["Cookie"]), se.id.FingerprintHex, now)
}

func (h *Handler) serveSignedOut(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	if _, ok := h.app.sessions.User(r.Context(), consent.CookieByName(r.Header["Cookie"], session.CookieName), now); ok {
		return ui.WriteNotice(w, r, ui.Notice{Status: http.StatusOK, Code: "signed_in", Title: "Sign out",
			Paragraphs: []string{"You are signed in to this site with your username and password. Sign out to end that session."},
			Form:       &ui.NoticeForm{Action: pathLogout, Button: "Sign out"},
			Links:      []ui.Link{{Text: "Return to the site", Href: "/"}}})
	}
	if _, ok := h.cardSession(r, now); ok {
		return ui.WriteNotice(w, r, ui.Notice{Status: http.StatusOK, Code: "signed_in", Title: "Sign out",
			Paragraphs: []string{
				"You are signed in to this site with your CAC. Sign out to end this session: the site will show the notice and consent banner again before it lets this card back in.",
				"Then remove your card from the reader and close every browser window: the browser keeps using the card until it is closed.",
			},
			Form:  &ui.NoticeForm{Action: pathLogout, Button: "Sign out"},
			Links: []ui.Link{{Text: "Return to the site", Href: "/"}}})
	}
	n := ui.Notice{Status: http.StatusOK, Code: "signed_out", Title: "You have signed out",
		Paragraphs: []string{
			"Your session on this site has ended.",
			"If you signed in with a CAC, remove it from the reader and close every browser window: the browser keeps using the card until it is closed.",
			"On a shared computer, close every browser window now.",
		},
		Links: []ui.Link{{Text: "Return to the site", Href: "/"}}}
	if h.PasswordLogin {
		n.Links = append([]ui.Link{{Text: "Sign in again with a username and password", Href: portal.PathLogin}}, n.Links...)
	}
	return ui.WriteNotice(w, r, n)
}
