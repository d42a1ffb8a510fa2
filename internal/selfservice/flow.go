package selfservice

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Paths of the self-enrollment flow. The gateway sends every request
// under Path to Flow.Serve.
const (
	PathNew       = Path + "/new"
	PathLink      = Path + "/link" // "register this card to my account" (link.go)
	PathProfile   = Path + "/profile"
	PathQuestions = Path + "/questions"
)

// AccountStore is the slice of store.Store the flow needs.
type AccountStore interface {
	Enroll(ctx context.Context, e *store.Enrollment) (*store.Account, error)
}

// Config is a site's self-enrollment options.
type Config struct {
	Eligible       []string // allowed roster categories; empty = all
	AskPEBD        bool     // ask the PEBD when the roster record has one (Source.NeedsPEBD)
	RequireAddress bool     // work address required (default optional)
	RequirePhone   bool
	Approval       bool // new accounts are "pending" until an admin approves
	Contact        string
	Organizations  []string // choices for the organization/affiliation select
	Locations      []string // choices for the geographic location select
	Password       credential.PasswordPolicy
	StateTTL       time.Duration // default 30m
	LockoutPeriod  time.Duration // how long 3 wrong passwords lock an account; default 30m
	MaxCards       int           // cards one account may have registered; default 5
	// AttemptsPerAddress bounds identity checks from one client address
	// (an IPv6 /64) per AddressWindow, across cards and accounts:
	// attempts_per_ip. Default DefaultAttemptsPerAddr.
	AttemptsPerAddress int
	// PasswordMinAge is how long after a change the holder may change the
	// password again; PasswordMaxAge how long a password signs in before it
	// must be changed. Zero means no limit (the gateway sets the STIG's 24h
	// and 60 days unless configured otherwise).
	PasswordMinAge, PasswordMaxAge time.Duration
}

// DefaultOrganizations and DefaultLocations are the select choices used when
// Config leaves them empty.
var (
	DefaultOrganizations = []string{"USA", "USN", "USAF", "USMC", "USCG", "USSF", "DoD civilian agency", "Contractor", "Other"}
	DefaultLocations     = []string{"North America", "Europe", "Asia", "Africa", "South America", "Australia/Oceania", "Middle East", "At sea"}
)

// Deps are what the flow works with.
type Deps struct {
	Roster roster.Source
	Store  AccountStore
	Hasher *credential.Hasher
	Sealer *Sealer
	// Audit records an event. It is never passed an SSN, FIN, date of
	// birth, PEBD, password or security answer. Nil means no audit.
	Audit func(r *http.Request, event, outcome string, fields map[string]string)
	Now   func() time.Time // default time.Now
	// Accounts serves the link page and the account pages. Nil means
	// Store, if it implements AccountManager (as store.Store does).
	Accounts AccountManager
	// OnChange is called after a card is linked or unlinked, so the
	// gateway can drop what it cached about cards. Nil means nothing.
	OnChange func()
	// Throttle is where the attempt guard counts failed attempts (per
	// card, per decoy username, per client address): the account
	// database, which every gateway node shares and every store provides.
	Throttle store.Throttler
}

// Card is the admitted card the gateway hands the flow (its checks already
// passed).
type Card struct {
	Identity                *cacid.Identity
	Subject, Issuer, Serial string
	NotAfter                time.Time
}

// CSRF makes and checks anti-forgery tokens bound to the card.
type CSRF interface {
	Token() string
	Check(token string) bool
}

// Limits of the flow.
const (
	maxBody         = 32 << 10
	defaultStateTTL = 30 * time.Minute
	maxEmailLen     = 254
	maxAddressLen   = 200
	maxPhoneLen     = 32
)

// Flow is the "create a new account" self-enrollment flow: choice, identity
// validation against the roster, profile and password, security questions,
// confirmation.
//
// Between steps the flow's state travels in a hidden form field, sealed
// (encrypted and authenticated) by the Sealer and bound to the card's
// fingerprint, and each step's POST answers with the next step's form
// directly. A hidden field rather than a cookie because: it needs no
// shared server memory (any gateway node can continue the flow); it is
// scoped to one browser tab's form, so two tabs or a stale cookie cannot
// mix two attempts; it is bounded only by the 32 KiB body limit, not by
// cookie size limits; and it disappears with the page, leaving nothing
// (such as the password hash) stored in the browser after the flow ends.
// The cost is no Post/Redirect/Get between steps: a GET of a later step
// has no state and restarts at identity validation.
type Flow struct {
	cfg   Config
	deps  Deps
	pages map[string]*template.Template
	guard *Guard
	dummy dummyHash // for link.go's unknown usernames
}

// NewFlow checks cfg and deps and returns the flow.
func NewFlow(cfg Config, deps Deps) (*Flow, error) {
	switch {
	case deps.Roster == nil:
		return nil, errors.New("enroll: a roster is required")
	case deps.Store == nil:
		return nil, errors.New("enroll: an account store is required")
	case deps.Hasher == nil:
		return nil, errors.New("enroll: a hasher is required")
	case deps.Sealer == nil:
		return nil, errors.New("enroll: a state sealer is required")
	case deps.Throttle == nil:
		return nil, errors.New("enroll: an attempt counter (the account store) is required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Accounts == nil {
		deps.Accounts, _ = deps.Store.(AccountManager)
	}
	if deps.OnChange == nil {
		deps.OnChange = func() {}
	}
	if cfg.LockoutPeriod <= 0 {
		cfg.LockoutPeriod = defaultLockoutPeriod
	}
	if cfg.MaxCards <= 0 {
		cfg.MaxCards = defaultMaxCards
	}
	if deps.Audit == nil {
		deps.Audit = func(*http.Request, string, string, map[string]string) {}
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = defaultStateTTL
	}
	cfg.Organizations = cleanChoices(cfg.Organizations, DefaultOrganizations)
	cfg.Locations = cleanChoices(cfg.Locations, DefaultLocations)
	pages := map[string]*template.Template{}
	for _, name := range []string{"choice", "identity", "profile", "questions", "complete", "ineligible", "exists",
		"link", "linked", "locked", "account", "account-password", "account-answers",
		"reset", "reset-answers", "reset-done", "login"} {
		t, err := ui.ParsePage(Templates, "templates/flow-common.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("enroll: parsing %s page: %w", name, err)
		}
		pages[name] = t
	}
	return &Flow{cfg: cfg, deps: deps, pages: pages,
		guard: NewGuard(deps.Throttle, deps.Accounts, cfg.AttemptsPerAddress, cfg.LockoutPeriod, deps.Now)}, nil
}

func cleanChoices(list, def []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return append([]string(nil), def...)
	}
	return out
}

// Serve answers a request under Path for the admitted card. It writes the
// response itself and returns a non-nil error only for an internal failure
// (rendering, hashing, the account store), in which case it has written
// nothing and the caller answers 500. Those errors never carry the person's
// secrets.
func (f *Flow) Serve(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	if card.Identity == nil || card.Identity.FingerprintHex == "" {
		return errors.New("enroll: card without identity")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return f.methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == Path {
		if r.Method == http.MethodPost {
			return f.methodNotAllowed(w, r, "GET, HEAD")
		}
		return f.render(w, http.StatusOK, "choice", f.base(card, csrf))
	}
	switch path {
	case PathNew, PathProfile, PathQuestions:
	case PathLink:
		return f.serveLink(w, r, card, csrf)
	case PathReset:
		return f.serveReset(w, r, card, csrf)
	default:
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no enrollment page at this address.", Contact: f.cfg.Contact})
	}
	if r.Method != http.MethodPost {
		if path == PathNew {
			return f.showIdentity(w, r, card, csrf)
		}
		// Later steps only exist as answers to the previous step's POST.
		http.Redirect(w, r, PathNew, http.StatusSeeOther)
		return nil
	}
	if ok, err := f.readForm(w, r, csrf, "Go back to the enrollment page, reload it and try again."); !ok {
		return err
	}
	switch path {
	case PathNew:
		return f.postIdentity(w, r, card, csrf)
	case PathProfile:
		return f.postProfile(w, r, card, csrf)
	default:
		return f.postQuestions(w, r, card, csrf)
	}
}

// readForm reads a POST's form under the body limit and checks its CSRF
// token. When it reports false it has answered the request (or returns the
// error of doing so).
func (f *Flow) readForm(w http.ResponseWriter, r *http.Request, csrf CSRF, retry string) (bool, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return false, ui.WriteProblem(w, r, ui.Problem{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
				Title: "Form too large", Detail: "The form sent was too large.", Contact: f.cfg.Contact})
		}
		return false, ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "bad_request",
			Title: "Bad request", Detail: "The form could not be read.", Contact: f.cfg.Contact})
	}
	if !csrf.Check(r.PostForm.Get("csrf")) {
		return false, ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "csrf",
			Title: "Form expired", Detail: "The form you sent has expired or did not come from this site.",
			Steps: []string{retry}, Contact: f.cfg.Contact})
	}
	return true, nil
}

// Guard is the flow's attempt guard, which the gateway also asks to count
// and refund password sign-ins per client address.
func (f *Flow) Guard() *Guard { return f.guard }

// throttleUnavailable answers an attempt the guard could not count: fail
// closed, with the flow's "try again later" page. nothing says what was
// left undone ("No account was created."). The caller audits.
func (f *Flow) throttleUnavailable(w http.ResponseWriter, r *http.Request, nothing string) error {
	w.Header().Set("Retry-After", "60")
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusServiceUnavailable, Code: "attempts_unavailable",
		Title: "Try again later", Detail: "Your attempt cannot be checked right now. " + nothing,
		Steps: []string{"Wait a minute and try again."}, Contact: f.cfg.Contact, Retry: true})
}

// throttleUnavailableReason is the audit reason of throttleUnavailable.
const throttleUnavailableReason = "throttle_unavailable"

func (f *Flow) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Title: "Method not allowed", Detail: "This page does not accept " + r.Method + " requests."})
}

func (f *Flow) render(w http.ResponseWriter, status int, page string, data any) error {
	return ui.WriteHTML(w, status, f.pages[page], data)
}

// restart sends the person back to identity validation because the sealed
// state is missing, expired, altered, made for another card or for another
// step.
func (f *Flow) restart(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, PathNew+"?restart=1", http.StatusSeeOther)
	return nil
}

func (f *Flow) audit(r *http.Request, card Card, event, outcome string, extra map[string]string) {
	fields := map[string]string{"edipi": card.Identity.EDIPI, "card": card.Identity.FingerprintHex}
	for k, v := range extra {
		fields[k] = v
	}
	f.deps.Audit(r, event, outcome, fields)
}

// fieldError is one problem on a form: Field is the id of the input it
// belongs to ("" for a problem with the whole form).
type fieldError struct {
	Field, Message string
}

// formErrors collects a form's problems in form order.
type formErrors struct {
	List []fieldError
	By   map[string]string
}

func (e *formErrors) add(field, message string) {
	if e.By == nil {
		e.By = map[string]string{}
	}
	if field != "" {
		if _, dup := e.By[field]; dup {
			return
		}
		e.By[field] = message
	}
	e.List = append(e.List, fieldError{field, message})
}

func (e *formErrors) any() bool { return len(e.List) > 0 }

// pageBase is what every flow page shows.
type pageBase struct {
	CSRF    string
	Contact string
	Holder  string
	EDIPI   string
	Errors  formErrors
	State   string
}

func (f *Flow) base(card Card, csrf CSRF) pageBase {
	id := card.Identity
	return pageBase{CSRF: csrf.Token(), Contact: f.cfg.Contact, Holder: joinName(id.GivenName, id.MiddleName, id.FamilyName, id.Suffix), EDIPI: id.EDIPI}
}

func joinName(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// isCleanText refuses invalid UTF-8 and non-printing characters.
func isCleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	if s == "" || len(s) > maxEmailLen || !isCleanText(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

func validPhone(s string) bool {
	if len(s) > maxPhoneLen {
		return false
	}
	digits := 0
	for _, r := range s {
		switch {
		case '0' <= r && r <= '9':
			digits++
		case strings.ContainsRune(" +-().x", r):
		default:
			return false
		}
	}
	return digits >= 7
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
