package portal

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/ui"
)

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
		p.cfg.Audit.Request(r, "signout.card", audit.Success, audit.Card(v.Card)...)
	}
	// Whatever was or was not valid: the browser forgets both.
	for _, name := range []string{session.CookieName, consent.CookieName} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
	return ui.SeeOther(w, afterLogout(r))
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

type afterLogoutKey struct{}

// WithAfterLogout makes a sign-out (POST) send the browser to location
// instead of the signed-out page: an OpenID Connect client's post-logout
// URI, which the caller has checked against the client's registration.
func WithAfterLogout(r *http.Request, location string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), afterLogoutKey{}, location))
}

func afterLogout(r *http.Request) string {
	if l, ok := r.Context().Value(afterLogoutKey{}).(string); ok && l != "" {
		return l
	}
	return PathLogout
}
