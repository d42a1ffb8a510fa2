package portal

import (
	"context"
	"net/http"
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

// logonAccount is the active account the visitor's acceptance is a logon
// to, nil if none (an unregistered card accepting before enrollment).
func (p *Portal) logonAccount(ctx context.Context, v Visitor) *store.Account {
	acct := v.Account
	if v.Card == nil && v.Session != nil && p.cfg.Logons != nil {
		a, err := p.cfg.Logons.AccountByUsername(ctx, v.Session.Username)
		if err != nil {
			p.cfg.Logger.Warn("reading the account for the last sign-in notice", zap.Error(err))
			return nil
		}
		acct = a
	}
	if acct == nil || acct.Status != store.StatusActive {
		return nil
	}
	return acct
}

// showLastSignIn records the logon and answers the acceptance with the
// notice of the previous one; false when there is no account to notice
// (the caller redirects as before).
func (p *Portal) showLastSignIn(w http.ResponseWriter, r *http.Request, v Visitor, holder, next string, now time.Time) (bool, error) {
	if p.cfg.Logons == nil {
		return false, nil
	}
	acct := p.logonAccount(r.Context(), v)
	if acct == nil {
		return false, nil
	}
	from := p.cfg.Audit.ClientIP(r)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	prev, err := p.cfg.Logons.RecordLogon(ctx, acct.ID, now, from)
	cancel()
	if err != nil {
		// The logon goes ahead (the banner was accepted); the notice
		// shows what the gateway last knew, and the failure is audited.
		p.cfg.Audit.Request(r, "logon.recorded", audit.Failure, zap.String("username", acct.Username), zap.Error(err))
		prev = store.Logon{At: acct.LogonAt, From: acct.LogonFrom}
	}
	page := lastSignInPage{Holder: holder, From: prev.From, Failed: strconv.Itoa(prev.Failed), Next: next, Contact: p.cfg.Contact}
	if !prev.At.IsZero() {
		page.Previous = selfservice.FormatTime(prev.At)
	}
	return true, ui.WriteHTML(w, http.StatusOK, p.lastSignInPage, page)
}
