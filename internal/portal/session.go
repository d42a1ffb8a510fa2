package portal

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

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
	// A sign-in whose hash found too many waiting gets 503 (orBusy).
	return p.cfg.Pages.orBusy(w, r, nil, p.cfg.Pages.ServeLogin(w, r, Login{
		CSRF: csrf,
		Next: ui.SafeNext(r.URL.Query().Get("next")),
		// Each account locks after three wrong passwords; the address's
		// count bounds trying one password on many accounts. The pages
		// count it only for a same-origin form with a valid token, so a
		// forged cross-site post cannot use the address's allowance up.
		Address: p.cfg.Audit.ClientIP(r),
		SignIn: func(acct *store.Account, next string) error {
			return p.startSession(w, r, acct, next, now)
		},
	}))
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
			return fmt.Errorf("%w: %w", ErrSessionUnrecorded, err)
		}
		return err
	}
	for _, old := range ended {
		p.cfg.Audit.Request(r, "session.ended", audit.Success, zap.String("username", old.Username),
			zap.String("reason", "session_limit"), zap.Int("session_limit", p.cfg.SessionLimit))
	}
	http.SetCookie(w, SessionCookie(token))
	return ui.SeeOther(w, next)
}

// SessionCookie is the password-session cookie carrying token.
func SessionCookie(token string) *http.Cookie {
	return &http.Cookie{Name: session.CookieName, Value: token, Path: "/", Secure: true,
		HttpOnly: true, SameSite: http.SameSiteLaxMode}
}
