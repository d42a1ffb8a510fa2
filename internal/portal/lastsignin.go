package portal

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// The last sign-in notice (ASD STIG: "display the date and time of the
// last successful logon" and the unsuccessful attempts since): shown once
// the banner is accepted, which is where a card holder's or password
// user's logon completes, and on the account page.

// Logons records logons and reads the account a password session belongs
// to (*store.SQLStore).
type Logons interface {
	RecordLogon(ctx context.Context, accountID int64, at time.Time, from string) (store.Logon, error)
	AccountByUsername(ctx context.Context, username string) (*store.Account, error)
}

type lastSignInPage struct {
	Holder   string
	Previous string // "" for the first recorded sign-in
	From     string
	Failed   string
	Next     string
	Contact  string
}

// PathLastSignIn is the last sign-in notice's page.
const PathLastSignIn = ui.Prefix + "last-signin"

// logonUsername is whom the visitor's logon is for: the card's account or
// the password session's user; "" if none (an unregistered card).
func logonUsername(v Visitor) string {
	switch {
	case v.Card == nil && v.Session != nil:
		return v.Session.Username
	case v.Account != nil:
		return v.Account.Username
	}
	return ""
}

// recordLogon records the logon the banner's acceptance completes and
// returns where to go next: the notice of the previous logon when there is
// one to show (or failed attempts), else next itself. A logon that cannot
// be recorded is audited and does not hold the person up.
func (p *Portal) recordLogon(r *http.Request, v Visitor, next string, now time.Time) string {
	username := logonUsername(v)
	if p.cfg.Logons == nil || username == "" {
		return next
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	acct := v.Account
	if acct == nil || v.Card == nil {
		a, err := p.cfg.Logons.AccountByUsername(ctx, username)
		if err != nil {
			p.cfg.Audit.Request(r, "logon.recorded", audit.Failure, zap.String("username", username), zap.String("reason", "unavailable"))
			return next
		}
		acct = a
	}
	if acct.Status != store.StatusActive {
		return next
	}
	prev, err := p.cfg.Logons.RecordLogon(ctx, acct.ID, now, p.cfg.Audit.ClientIP(r))
	if err != nil {
		p.cfg.Audit.Request(r, "logon.recorded", audit.Failure, zap.String("username", username), zap.String("reason", "unavailable"))
		return next
	}
	if prev.At.IsZero() && prev.Failed == 0 {
		return next // the first logon: nothing to tell
	}
	return PathLastSignIn + "?next=" + url.QueryEscape(next)
}

// serveLastSignIn shows the notice (GET): the account's previous logon,
// read afresh, and the failed attempts since.
func (p *Portal) serveLastSignIn(w http.ResponseWriter, r *http.Request, v Visitor) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return MethodNotAllowed(w, r, "GET, HEAD")
	}
	next := ui.SafeNext(r.URL.Query().Get("next"))
	username := logonUsername(v)
	if p.cfg.Logons == nil || username == "" {
		return ui.SeeOther(w, next)
	}
	acct, err := p.cfg.Logons.AccountByUsername(r.Context(), username)
	if err != nil {
		return err
	}
	holder := v.Holder
	if holder == "" {
		holder = username
	}
	page := lastSignInPage{Holder: holder, From: acct.PrevLogonFrom, Failed: strconv.Itoa(acct.PrevFailed), Next: next, Contact: p.cfg.Contact}
	if !acct.PrevLogonAt.IsZero() {
		page.Previous = selfservice.FormatTime(acct.PrevLogonAt)
	}
	return ui.WriteHTML(w, http.StatusOK, p.lastSignInPage, page)
}
