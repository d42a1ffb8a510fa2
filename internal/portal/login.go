package portal

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

type loginPage struct {
	CSRF     string
	Contact  string
	Username string
	Next     string
	Errors   selfservice.FieldErrors
	Locked   string // lock end, when the account is locked
}

// Login is what ServeLogin needs from the gateway besides the request.
type Login struct {
	// CSRF makes and checks the form's token.
	CSRF CSRF
	// Next is where the form's sign-in will go, for a GET: the caller's
	// pick from the query, already made safe. A POST goes where its form's
	// next field says, made safe here (ui.SafeNext).
	Next string
	// Address is the client's address, counted against attempts_per_ip
	// for a well-formed POST whose CSRF token checked out: counting only
	// then keeps forged cross-site posts from using up an allowance.
	Address string
	// SignIn starts the session (sets its cookie) for a correct password
	// of an active account and answers the request, sending the person on
	// to next. When the session cannot be recorded in the account
	// database (session_limit needs the record) it answers nothing and
	// returns an error matching ErrSessionUnrecorded: the form is shown
	// again.
	SignIn func(acct *store.Account, next string) error
}

// ErrSessionUnrecorded is what Login.SignIn returns when the account
// database could not record the new session, so none was started.
var ErrSessionUnrecorded = errors.New("portal: the session could not be recorded")

// ServeLogin serves the password sign-in form. It needs no card. On a
// correct password for an active account it calls l.SignIn; a disabled
// account, or one waiting for approval, is refused, but only a correct
// password is told so. Wrong passwords are counted in the database per
// account, as on the link page: three within 15 minutes lock the account,
// and the page says how many tries remain. An unknown username gets the
// very same answers (its decoy counts and locks alike); only the audit
// log tells it apart.
func (p *Pages) ServeLogin(w http.ResponseWriter, r *http.Request, l Login) error {
	r = withRequest(r)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return p.render(w, http.StatusOK, "login", loginPage{CSRF: l.CSRF.Token(), Contact: p.cfg.Contact, Next: l.Next})
	case http.MethodPost:
	default:
		return MethodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if ok, err := p.readForm(w, r, l.CSRF, "Go back, reload the sign-in page and try again."); !ok {
		return err
	}
	next := ui.SafeNext(r.PostForm.Get("next"))
	res, err := p.svc.SignIn(r.Context(), selfservice.SignInInput{
		Username: r.PostForm.Get("username"), Password: r.PostForm.Get("password"), Address: l.Address})
	if err != nil {
		return err
	}
	page := loginPage{CSRF: l.CSRF.Token(), Contact: p.cfg.Contact, Next: next, Username: res.Username, Errors: res.Errors}
	// The database failing: the form again with the username (never the
	// password), to send once it is back.
	again := func(status int, errs selfservice.FieldErrors) error {
		page.Errors = errs
		return p.render(w, status, "login", page)
	}
	switch res.Status {
	case selfservice.Done:
		err := l.SignIn(res.Account, next)
		if errors.Is(err, ErrSessionUnrecorded) {
			p.svc.SessionUnavailable(r.Context(), res.Account.Username, err)
			return p.unavailable(w, r, "You were not signed in.", again)
		}
		return err
	case selfservice.Invalid:
		return p.render(w, http.StatusUnprocessableEntity, "login", page)
	case selfservice.Limited:
		return AddressLimited(w, r, p.cfg.Contact)
	case selfservice.Unavailable:
		return p.unavailable(w, r, "You were not signed in.", again)
	case selfservice.Locked:
		page.Locked = selfservice.FormatTime(res.Login.LockedUntil)
		return p.render(w, http.StatusForbidden, "login", page)
	case selfservice.Wrong:
		return p.render(w, http.StatusUnauthorized, "login", page)
	}
	if res.Reason == "password_expired" {
		page.Errors.Add("password", selfservice.ExpiredSentence(res.Expires)+" Insert your CAC and change it on your account page ("+PathAccount+"), or reset it with your security questions.")
	}
	return p.render(w, http.StatusForbidden, "login", page)
}

// AddressLimited answers an identity check refused by attempts_per_ip
// (the caller audits it).
func AddressLimited(w http.ResponseWriter, r *http.Request, contact string) error {
	w.Header().Set("Retry-After", strconv.Itoa(int(selfservice.AddressWindow.Seconds())))
	return ui.WriteProblem(w, r, ui.Problem{
		Status:  http.StatusTooManyRequests,
		Code:    "too_many_attempts",
		Title:   "Too many attempts",
		Detail:  "Too many identity checks came from your network in the last 15 minutes.",
		Steps:   []string{"Wait 15 minutes, then try again."},
		Contact: contact,
	})
}
