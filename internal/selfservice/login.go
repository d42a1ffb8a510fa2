package selfservice

import (
	"errors"
	"net/http"
	"strings"

	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// PathLogin is the password sign-in for people without a card reader
// ("I don't have a CAC/PIV"), offered only where the site turns it on.
const PathLogin = "/.cacgate/login"

type loginPage struct {
	CSRF     string
	Contact  string
	Username string
	Next     string
	Errors   formErrors
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
	// Limit, if set, is called for a well-formed POST whose CSRF token
	// checked out, before the password is: it counts the attempt against
	// limits the flow does not keep (per client address) and, when it
	// refuses, answers the request itself and reports done. Counting only
	// then keeps forged cross-site posts from using up an allowance.
	Limit func() (done bool, err error)
	// SignIn starts the session (sets its cookie) for a correct password
	// of an active account and answers the request, sending the person on
	// to next.
	SignIn func(acct *store.Account, next string) error
}

// ServeLogin serves the password sign-in form. It needs no card. On a
// correct password for an active account it calls l.SignIn; a disabled
// account, or one waiting for approval, is refused. Wrong
// passwords are counted in the database per account, as on the link page:
// three within 15 minutes lock the account, and the page says how many
// tries remain.
func (f *Flow) ServeLogin(w http.ResponseWriter, r *http.Request, l Login) error {
	if f.deps.Accounts == nil {
		return errors.New("enroll: no account manager for the sign-in page")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return f.render(w, http.StatusOK, "login", loginPage{CSRF: l.CSRF.Token(), Contact: f.cfg.Contact, Next: l.Next})
	case http.MethodPost:
	default:
		return f.methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if ok, err := f.readForm(w, r, l.CSRF, "Go back, reload the sign-in page and try again."); !ok {
		return err
	}
	page := loginPage{Contact: f.cfg.Contact, Next: ui.SafeNext(r.PostForm.Get("next"))}
	page.Username = strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	password := r.PostForm.Get("password")
	if page.Username == "" || len(page.Username) > 64 {
		page.Errors.add("username", "Enter your username.")
	}
	if password == "" || len(password) > 256 {
		page.Errors.add("password", "Enter your password.")
	}
	if page.Errors.any() {
		page.CSRF = l.CSRF.Token()
		return f.render(w, http.StatusUnprocessableEntity, "login", page)
	}
	if l.Limit != nil {
		if done, err := l.Limit(); done {
			return err
		}
	}

	acct, err := f.deps.Accounts.AccountByUsername(r.Context(), page.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var hash string
	if acct != nil {
		creds, err := f.deps.Accounts.Credentials(r.Context(), acct.ID)
		if err != nil {
			return err
		}
		hash = creds.PasswordHash
	}
	res, err := f.checkPassword(r.Context(), acct, hash, password, true)
	if err != nil {
		return err
	}
	page.CSRF = l.CSRF.Token()
	fields := map[string]string{}
	if acct != nil {
		// Only a known username is recorded: someone may type a
		// password into the username field.
		fields["username"] = acct.Username
	}
	switch {
	case res.State.Locked():
		fields["reason"] = "locked"
		f.deps.Audit(r, "signin.password", "failure", fields)
		page.Locked = formatTime(res.State.LockedUntil)
		page.Errors.add("password", "Too many wrong passwords were entered for this account. It is locked until "+page.Locked+".")
		return f.render(w, http.StatusForbidden, "login", page)
	case !res.OK:
		fields["reason"] = "bad_password"
		f.deps.Audit(r, "signin.password", "failure", fields)
		page.Errors.add("password", wrongPassword("The username or password is not correct.", res.State, acct != nil))
		return f.render(w, http.StatusUnauthorized, "login", page)
	}
	switch acct.Status {
	case store.StatusDisabled:
		fields["reason"] = "disabled"
		f.deps.Audit(r, "signin.password", "failure", fields)
		page.Errors.add("", "This account is disabled. Contact the site's administrators.")
		return f.render(w, http.StatusForbidden, "login", page)
	case store.StatusPending:
		// No session: every page would refuse it anyway.
		fields["reason"] = "pending"
		f.deps.Audit(r, "signin.password", "failure", fields)
		page.Errors.add("", "This account is waiting for approval by the site's administrators. You can sign in once it is approved.")
		return f.render(w, http.StatusForbidden, "login", page)
	}
	// Only someone who knows the password learns that it expired.
	if expires, expired := f.passwordExpiry(acct, f.deps.Now()); expired {
		fields["reason"] = "password_expired"
		f.deps.Audit(r, "signin.password", "failure", fields)
		page.Errors.add("password", expiredSentence(expires)+" Insert your CAC and change it on your account page ("+PathAccount+"), or reset it with your security questions.")
		return f.render(w, http.StatusForbidden, "login", page)
	}
	f.deps.Audit(r, "signin.password", "success", fields)
	return l.SignIn(acct, page.Next)
}
