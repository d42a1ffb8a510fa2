// Package portal is the gateway's own web pages, everything under
// /.cacgate/, served by one router (Portal): the consent banner, the
// assertion key set, the stylesheet, password sign-in and sign-out, and the
// self-service pages (enrollment, registering a card, password reset, the
// account pages) over the use cases of package selfservice, rendered from
// the embedded templates.
//
// It knows HTTP and nothing of Caddy. Which checks a page needs is the
// portal's call (Portal.Admission); running them (certificate, revocation,
// account, banner, access rules) is the gateway's, which hands the result
// over in the request's context (Visitor) and lends its error answers
// (Gateway). Keeping forms, status codes and wording here, the rules in
// selfservice, and admission in the gateway lets each be read and tested
// alone.
package portal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Paths of the self-service pages.
const (
	// PathEnroll is where the gateway sends cards that have no account.
	PathEnroll    = ui.Prefix + "enroll"
	PathNew       = PathEnroll + "/new"
	PathLink      = PathEnroll + "/link" // "register this card to my account"
	PathProfile   = PathEnroll + "/profile"
	PathQuestions = PathEnroll + "/questions"
	// PathReset is the password reset: "Forgot your password?".
	PathReset = PathEnroll + "/reset"
	// PathAccount is the signed-in card holder's account pages.
	PathAccount          = ui.Prefix + "account"
	PathAccountClearCard = PathAccount + "/cards/clear"
	PathAccountPassword  = PathAccount + "/password"
	PathAccountAnswers   = PathAccount + "/answers"
	PathAccountNotices   = PathAccount + "/notices"
	// PathRestore is where the holder restores an account disabled for
	// inactivity.
	PathRestore = ui.Prefix + "restore"
	// PathLogin is the password sign-in for people without a card reader
	// ("I don't have a CAC/PIV"), offered only where the site turns it on.
	PathLogin = ui.Prefix + "login"
)

// Templates holds the self-service pages, for ui.ParsePage.
//
//go:embed templates/*.html
var Templates embed.FS

// maxBody bounds a form's body.
const maxBody = 32 << 10

// CSRF makes and checks anti-forgery tokens bound to the card (or, on the
// sign-in page, to the browser). Check also refuses cross-site posts.
type CSRF interface {
	Token() string
	Check(token string) bool
}

// Pages serves the self-service pages of one site.
type Pages struct {
	svc   *selfservice.Service
	cfg   selfservice.Config
	pages map[string]*template.Template
}

// NewPages parses the templates and returns the pages over svc.
func NewPages(svc *selfservice.Service) (*Pages, error) {
	pages := map[string]*template.Template{}
	for _, name := range []string{"choice", "identity", "profile", "questions", "complete", "ineligible", "exists",
		"link", "linked", "locked", "account", "account-password", "account-answers",
		"reset", "reset-answers", "reset-done", "login", "restore"} {
		t, err := ui.ParsePage(Templates, "templates/flow-common.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("portal: parsing %s page: %w", name, err)
		}
		pages[name] = t
	}
	return &Pages{svc: svc, cfg: svc.Config(), pages: pages}, nil
}

// Service is the use cases the pages call.
func (p *Pages) Service() *selfservice.Service { return p.svc }

// requestKey carries the request in its context, for the audit log.
type requestKey struct{}

// withRequest puts r in its own context, so that the use cases' audit
// events (which get only a context) carry the request's source address,
// request ID, host and path.
func withRequest(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), requestKey{}, r))
}

// Request returns the request ctx belongs to, or nil: for the gateway's
// audit hook of the use cases.
func Request(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

// addressKey carries the client's address in a request's context.
type addressKey struct{}

// WithClientAddress returns r carrying the client's address (as the audit
// log tells it), which the enrollment steps count against attempts_per_ip
// before hashing.
func WithClientAddress(r *http.Request, address string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), addressKey{}, address))
}

func clientAddress(r *http.Request) string {
	a, _ := r.Context().Value(addressKey{}).(string)
	return a
}

// orBusy answers err, a page's outcome, with the "busy, try again" page
// (503, Retry-After; audited as hash.busy) when it is the hasher turning
// a hash away (credential.ErrBusy): nothing was hashed or changed. Any
// other err is returned as it is. card is nil on the sign-in page.
func (p *Pages) orBusy(w http.ResponseWriter, r *http.Request, card *cacid.Identity, err error) error {
	if !errors.Is(err, credential.ErrBusy) {
		return err
	}
	p.svc.HashBusy(withRequest(r).Context(), card, err)
	return HashBusy(w, r, err, p.cfg.Contact)
}

// HashBusy answers a request whose password or answer hash found too many
// waiting (credential.ErrBusy): 503 with Retry-After, a page for people
// and JSON for API clients. The caller audits it.
func HashBusy(w http.ResponseWriter, r *http.Request, err error, contact string) error {
	retry := 10 * time.Second
	var busy *credential.BusyError
	if errors.As(err, &busy) && busy.RetryAfter > 0 {
		retry = busy.RetryAfter
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusServiceUnavailable, Code: "busy",
		Title: "Try again in a moment", Detail: "Too many people are signing in or registering right now, so your request was not processed. Nothing was changed.",
		Steps: []string{"Wait a few seconds, then send the form again."}, Contact: contact, Retry: true})
}

// readForm reads a POST's form under the body limit and checks its CSRF
// token. When it reports false it has answered the request (or returns the
// error of doing so).
func (p *Pages) readForm(w http.ResponseWriter, r *http.Request, csrf CSRF, retry string) (bool, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return false, ui.WriteProblem(w, r, ui.Problem{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
				Title: "Form too large", Detail: "The form sent was too large.", Contact: p.cfg.Contact})
		}
		return false, ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "bad_request",
			Title: "Bad request", Detail: "The form could not be read.", Contact: p.cfg.Contact})
	}
	if !csrf.Check(r.PostForm.Get("csrf")) {
		return false, ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "csrf",
			Title: "Form expired", Detail: "The form you sent has expired or did not come from this site.",
			Steps: []string{retry}, Contact: p.cfg.Contact})
	}
	return true, nil
}

// MethodNotAllowed answers a method the page does not take.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Title: "Method not allowed", Detail: "This page does not accept " + r.Method + " requests."})
}

func (p *Pages) render(w http.ResponseWriter, status int, page string, data any) error {
	return ui.WriteHTML(w, status, p.pages[page], data)
}

// redirect sends the person to location (303).
func redirect(w http.ResponseWriter, r *http.Request, location string) error {
	http.Redirect(w, r, location, http.StatusSeeOther)
	return nil
}

// pageBase is what every self-service page shows.
type pageBase struct {
	CSRF    string
	Contact string
	Holder  string
	EDIPI   string
	// Credential names a non-DoD card's kind ("federal PIV card"), shown
	// where a DoD card shows its EDIPI; empty for a DoD card.
	Credential string
	Errors     selfservice.FieldErrors
	State      string
}

func (p *Pages) base(card *cacid.Identity, csrf CSRF) pageBase {
	b := pageBase{CSRF: csrf.Token(), Contact: p.cfg.Contact, Holder: selfservice.HolderName(card), EDIPI: card.EDIPI}
	if !selfservice.IsDoD(card) {
		b.Credential = selfservice.CredentialTitle(card)
	}
	return b
}

// formPage shows a page's form again with errs at its top, answering
// status.
type formPage func(status int, errs selfservice.FieldErrors) error

// unavailableDetail is what a page says of a request the account database
// could not serve. Why it could not (its disk full, unreachable …) is for
// the log, the audit trail and the administrators.
const unavailableDetail = "The site's account database is not available right now, so your request could not be completed."

// unavailable answers a request the account database could not serve (the
// Unavailable outcome, which the use case has audited): fail closed with
// 503 and Retry-After. nothing says what was left undone ("No account was
// created."). A person gets form, the form they sent, again, with what
// they typed (never a password, answer or identity fact) and the problem
// at its top, to send again once the database is back; without a form,
// and for API clients (JSON), the problem alone.
func (p *Pages) unavailable(w http.ResponseWriter, r *http.Request, nothing string, form formPage) error {
	w.Header().Set("Retry-After", ui.RetryAfterStore)
	problem := ui.ProblemStoreUnavailable("Try again later", unavailableDetail, nothing, p.cfg.Contact)
	if form == nil || !ui.WantsHTML(r) {
		return ui.WriteProblem(w, r, problem)
	}
	var errs selfservice.FieldErrors
	errs.Add("", problem.Detail+" Wait a minute, then send this form again.")
	return form(http.StatusServiceUnavailable, errs)
}

// tooMany answers a card that used up its attempts (15 minutes).
func (p *Pages) tooMany(w http.ResponseWriter, r *http.Request, detail string, steps ...string) error {
	w.Header().Set("Retry-After", strconv.Itoa(int((15*time.Minute)/time.Second)))
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
		Title: "Too many attempts", Detail: detail, Steps: steps, Contact: p.cfg.Contact})
}

type lockedPage struct {
	pageBase
	Until string
}

// renderLocked answers for a locked account.
func (p *Pages) renderLocked(w http.ResponseWriter, card *cacid.Identity, csrf CSRF, st store.LoginState) error {
	return p.render(w, http.StatusForbidden, "locked", lockedPage{pageBase: p.base(card, csrf), Until: selfservice.FormatTime(st.LockedUntil)})
}

// refuse answers a Refused outcome with a problem page.
func (p *Pages) refuse(w http.ResponseWriter, r *http.Request, status int, code, title, detail string) error {
	return ui.WriteProblem(w, r, ui.Problem{Status: status, Code: code, Title: title, Detail: detail,
		Steps: []string{"If you think this is a mistake, contact the site's administrators."}, Contact: p.cfg.Contact})
}

// checkCard refuses a card the gateway handed without an identity.
func checkCard(card *cacid.Identity) error {
	if card == nil || card.FingerprintHex == "" {
		return errors.New("portal: card without identity")
	}
	return nil
}

// trimPath is the request's path without a trailing slash.
func trimPath(r *http.Request) string { return strings.TrimSuffix(r.URL.Path, "/") }

var errAccountless = errors.New("portal: account page without an account")
