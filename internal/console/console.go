// Package console is the help-desk console at /.cacgate/admin: account
// administration in a browser, for technicians who sign in with their
// card. It is a web layer over package admin, the one implementation the
// admin API and the CLI call too: every change goes through admin.Service
// and is audited there with the administrator's identity (the card's
// subject and fingerprint, as the admin API audits a client certificate,
// plus the administrator's username and "admin_via": "console").
//
// Who may use it is decided per site: members of the site's admin group
// may change accounts, members of its read-only group may look. The
// gateway admits a request first exactly as for the account pages (a
// valid card, the banner accepted, an active account, the site's deny
// rules); the console then checks the group. Password sessions never
// reach it.
//
// Pages are server-rendered from embedded templates, need no JavaScript,
// and every form posts with a CSRF token bound to the card.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// Path is where the console lives.
const Path = ui.Prefix + "admin"

// Paths below Path.
const (
	PathAccounts      = Path + "/accounts"
	PathAnnouncements = Path + "/announcements"
	PathStatus        = Path + "/status"
)

// Audit events of the console itself (its changes are the admin service's).
const (
	// EventRefused: a card holder who is in neither group asked for a
	// console page, or a read-only member tried a change.
	EventRefused = "admin.console.refused"
)

//go:embed templates/*.html
var templates embed.FS

// maxForm bounds a console form's body.
const maxForm = 16 << 10

// pageSize is how many accounts a search page lists.
const pageSize = 25

// CSRF issues and checks the forms' anti-forgery tokens (bound to the card).
type CSRF interface {
	Token() string
	Check(token string) bool
}

// Status is the state of the gateway the status page shows.
type Status struct {
	Revocation admin.RevocationStats
	Health     []HealthLine
}

// HealthLine is one figure of the status page.
type HealthLine struct {
	Name, Value string
}

// Config is what the console serves with.
type Config struct {
	Service *admin.Service
	Audit   *audit.Log
	Logger  *zap.Logger
	// AdminGroup's members may change accounts and announcements;
	// ReadGroup's may look. At least one is set.
	AdminGroup, ReadGroup string
	// Status returns the revocation checker's and the caches' state.
	Status func() Status
	// Contact is the site's contact text, for refusals.
	Contact string
}

// Console serves the console's pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
}

// New parses the console's pages.
func New(cfg Config) (*Console, error) {
	if cfg.Service == nil {
		return nil, errors.New("console: no admin service")
	}
	if cfg.AdminGroup == "" && cfg.ReadGroup == "" {
		return nil, errors.New("console: no admin or read-only group")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Nop()
	}
	if cfg.Status == nil {
		cfg.Status = func() Status { return Status{} }
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range []string{"home", "search", "account", "announcements", "status"} {
		t, err := ui.ParsePageFuncs(templates, funcs, "templates/common.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: %s page: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// Request is one admitted request to the console.
type Request struct {
	// Card is the administrator's card; Account their active account.
	Card    *cacid.Identity
	Account *store.Account
	// ClientIP is the request's source as the gateway determined it.
	ClientIP string
	CSRF     CSRF
}

// role is what a card holder may do in the console.
type role int

const (
	roleNone role = iota
	roleRead
	roleAdmin
)

func (c *Console) roleOf(acct *store.Account) role {
	if acct == nil {
		return roleNone
	}
	if c.cfg.AdminGroup != "" && slices.Contains(acct.Groups, c.cfg.AdminGroup) {
		return roleAdmin
	}
	if c.cfg.ReadGroup != "" && slices.Contains(acct.Groups, c.cfg.ReadGroup) {
		return roleRead
	}
	return roleNone
}

// actor is the administrator as the audit trail names them: as the admin
// API names a client certificate, plus their account and the console.
func actor(req Request) admin.Actor {
	return admin.Actor{Identity: req.Card.Subject, Source: req.ClientIP, CertSHA256: req.Card.FingerprintHex,
		Username: req.Account.Username, Via: "console"}
}

// Serve serves a console page to an admitted card holder.
func (c *Console) Serve(w http.ResponseWriter, r *http.Request, req Request) error {
	if req.Card == nil || req.Account == nil {
		// The gateway admits only cards with active accounts here; fail
		// closed should that ever change.
		return c.refuse(w, r, req, "no_card")
	}
	rl := c.roleOf(req.Account)
	if rl == roleNone {
		return c.refuse(w, r, req, "not_in_group")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		return methodNotAllowed(w, r, "GET, HEAD, POST")
	}
	if r.Method == http.MethodPost {
		if rl != roleAdmin {
			return c.refuse(w, r, req, "read_only")
		}
		if err := c.readForm(w, r, req); err != nil {
			return err
		}
		if r.Form == nil {
			return nil // answered
		}
	}
	v := view{c: c, w: w, r: r, req: req, role: rl, now: time.Now()}
	rest := strings.TrimPrefix(r.URL.Path, Path)
	switch {
	case rest == "" || rest == "/":
		return v.onlyGet(v.home)
	case rest == "/accounts":
		return v.onlyGet(v.search)
	case strings.HasPrefix(rest, "/accounts/"):
		parts := strings.Split(strings.TrimPrefix(rest, "/accounts/"), "/")
		switch {
		case len(parts) == 1:
			return v.onlyGet(func() error { return v.account(parts[0], nil) })
		case len(parts) == 2 && r.Method == http.MethodPost:
			return v.accountAction(parts[0], parts[1])
		case len(parts) == 2:
			return methodNotAllowed(w, r, "POST")
		}
	case rest == "/announcements":
		if r.Method == http.MethodPost {
			return v.createAnnouncement()
		}
		return v.announcements(announcementForm{}, nil, http.StatusOK)
	case strings.HasPrefix(rest, "/announcements/") && strings.HasSuffix(rest, "/delete"):
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, r, "POST")
		}
		return v.deleteAnnouncement(strings.TrimSuffix(strings.TrimPrefix(rest, "/announcements/"), "/delete"))
	case rest == "/status":
		return v.onlyGet(v.status)
	}
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
		Detail: "There is no console page at this address.", Links: []ui.Link{{Text: "Console home", Href: Path}}})
}

// refuse answers a card holder the console is not for, and audits it.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, req Request, reason string) error {
	fields := []zap.Field{zap.String("reason", reason)}
	key := reason
	if req.Card != nil {
		fields = append(fields, audit.Card(req.Card)...)
		key += req.Card.FingerprintHex
	}
	if req.Account != nil {
		fields = append(fields, zap.String("username", req.Account.Username))
	}
	// A refused holder can repeat the request at will: one entry per
	// series (see audit.RequestRepeatable).
	c.cfg.Audit.RequestRepeatable(r, key, EventRefused, audit.Failure, fields...)
	detail := "The help-desk console is for the site's administrators. Your account is not in a group allowed to use it."
	if reason == "read_only" {
		detail = "Your account may look at accounts in the console but not change them."
	}
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "console_forbidden", Title: "Not allowed",
		Detail: detail, Steps: []string{"If you need this access, ask the site's administrators to add your account to the right group."},
		Contact: c.cfg.Contact})
}

// readForm reads a POSTed form (bounded) and checks its CSRF token. It
// answers a bad form itself, leaving r.Form nil.
func (c *Console) readForm(w http.ResponseWriter, r *http.Request, req Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		r.Form = nil
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusRequestEntityTooLarge, Code: "form_too_large",
				Title: "Form too large", Detail: "The form sent was too large."})
		}
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusBadRequest, Code: "bad_form", Title: "Bad request", Detail: "The form could not be read."})
	}
	if req.CSRF == nil || !req.CSRF.Check(r.PostForm.Get("csrf")) {
		r.Form = nil
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusForbidden, Code: "csrf_failed", Title: "The form has expired",
			Detail: "The form was not sent from this console, or it was open too long. Nothing was changed.",
			Steps:  []string{"Go back, reload the page and try again."}})
	}
	return nil
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) error {
	w.Header().Set("Allow", allow)
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Title: "Method not allowed", Detail: "This page does not accept that kind of request."})
}

// view is one request being served.
type view struct {
	c    *Console
	w    http.ResponseWriter
	r    *http.Request
	req  Request
	role role
	now  time.Time
}

func (v *view) onlyGet(fn func() error) error {
	if v.r.Method == http.MethodPost {
		return methodNotAllowed(v.w, v.r, "GET, HEAD")
	}
	return fn()
}

// base is what every console page shows.
type base struct {
	CSRF     string
	CanEdit  bool
	Admin    string // the administrator's username
	Role     string
	Section  string
	Message  string // a change that was made ("done")
	Problem  string // why a change was not made
	Title    string
	NowLabel string
	Now      time.Time
}

func (v *view) base(section, title string) base {
	b := base{CanEdit: v.role == roleAdmin, Admin: v.req.Account.Username, Section: section, Title: title,
		NowLabel: formatTime(v.now), Now: v.now}
	b.Role = "read-only"
	if b.CanEdit {
		b.Role = "administrator"
		b.CSRF = v.req.CSRF.Token()
	}
	return b
}

func (v *view) render(status int, name string, data any) error {
	return ui.WriteHTML(v.w, status, v.c.pages[name], data)
}

// failed answers an admin operation's error that left nothing to show: a
// database that cannot answer gets the gateway's 503 (via the error the
// portal turns into one), the rest a problem page.
func (v *view) failed(err error) error {
	var e *admin.Error
	if errors.As(err, &e) && e.Cause != "" {
		v.w.Header().Set("Retry-After", ui.RetryAfterStore)
		return ui.WriteProblem(v.w, v.r, ui.ProblemStoreUnavailable("Try again later",
			"The account database cannot answer right now.", "Nothing was changed.", v.c.cfg.Contact))
	}
	if errors.As(err, &e) {
		return ui.WriteProblem(v.w, v.r, ui.Problem{Status: e.Status, Code: "console_" + e.Reason(), Title: "Cannot show this page",
			Detail: e.Error(), Links: []ui.Link{{Text: "Console home", Href: Path}}})
	}
	v.c.cfg.Logger.Error("console page failed", zap.Error(err))
	return ui.WriteProblem(v.w, v.r, ui.Problem{Status: http.StatusInternalServerError, Code: "internal_error", Title: "Something went wrong",
		Detail: "The page could not be shown (details in the gateway's log).", Links: []ui.Link{{Text: "Console home", Href: Path}}})
}

// --- home -----------------------------------------------------------------

type homePage struct {
	base
	Overview admin.Overview
	Queue    []admin.Account
	Recent   []eventRow
	Status   Status
}

func (v *view) home() error {
	ctx := v.r.Context()
	o, err := v.c.cfg.Service.Overview(ctx)
	if err != nil {
		return v.failed(err)
	}
	queue, err := v.c.cfg.Service.Search(ctx, admin.AccountSearch{Status: string(store.StatusPending), Limit: pageSize})
	if err != nil {
		return v.failed(err)
	}
	recent, err := v.c.cfg.Service.RecentEvents(ctx, 20)
	if err != nil {
		return v.failed(err)
	}
	p := homePage{base: v.base("home", "Help-desk console"), Overview: o, Queue: queue.Accounts, Recent: eventRows(recent), Status: v.c.cfg.Status()}
	p.Message = doneMessage(v.r.URL.Query().Get("done"))
	return v.render(http.StatusOK, "home", p)
}

// --- search ---------------------------------------------------------------

type searchPage struct {
	base
	Query          searchQuery
	Page           admin.AccountPage
	Errors         []string
	Prev, Next     string
	First, Last    int
	Statuses       []string
	SearchedAtAll  bool
	ResultsCaption string
}

type searchQuery struct {
	Text, Status, Group string
}

func (v *view) search() error {
	q := v.r.URL.Query()
	sq := searchQuery{Text: q.Get("q"), Status: q.Get("status"), Group: q.Get("group")}
	offset := 0
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1_000_000_000 {
			return v.searchError(sq, "The page number is not valid.")
		}
		offset = n
	}
	p := searchPage{base: v.base("search", "Find accounts"), Query: sq, Statuses: []string{"active", "pending", "disabled"}, SearchedAtAll: len(q) > 0}
	search := admin.AccountSearch{Text: strings.TrimSpace(sq.Text), Status: sq.Status, Group: strings.TrimSpace(sq.Group), Offset: offset, Limit: pageSize}
	page, err := v.c.cfg.Service.Search(v.r.Context(), search)
	if err != nil {
		var e *admin.Error
		if errors.As(err, &e) && e.Status == http.StatusBadRequest {
			return v.searchError(sq, e.Error())
		}
		return v.failed(err)
	}
	p.Page = page
	if len(page.Accounts) > 0 {
		p.First, p.Last = offset+1, offset+len(page.Accounts)
	}
	link := func(off int) string {
		u := url.Values{}
		for k, val := range map[string]string{"q": sq.Text, "status": sq.Status, "group": sq.Group} {
			if val != "" {
				u.Set(k, val)
			}
		}
		if off > 0 {
			u.Set("offset", strconv.Itoa(off))
		}
		if len(u) == 0 {
			return PathAccounts
		}
		return PathAccounts + "?" + u.Encode()
	}
	if offset > 0 {
		p.Prev = link(max(0, offset-pageSize))
	}
	if offset+len(page.Accounts) < page.Total {
		p.Next = link(offset + pageSize)
	}
	return v.render(http.StatusOK, "search", p)
}

func (v *view) searchError(sq searchQuery, msg string) error {
	p := searchPage{base: v.base("search", "Find accounts"), Query: sq, Statuses: []string{"active", "pending", "disabled"}, Errors: []string{msg}}
	return v.render(http.StatusBadRequest, "search", p)
}

// --- account --------------------------------------------------------------

type accountPage struct {
	base
	Account  admin.Account
	Attempts admin.LoginAttempts
	SignIns  []eventRow
	Events   []eventRow
	Form     actionForm
	Status   int
}

// actionForm is what was typed into the account page's forms, shown again
// when a change was refused.
type actionForm struct {
	Action, Reason, Group string
}

func (v *view) account(username string, form *actionForm) error {
	return v.accountWith(username, form, "", http.StatusOK)
}

func (v *view) accountWith(username string, form *actionForm, problem string, status int) error {
	ctx := v.r.Context()
	acct, err := v.c.cfg.Service.Show(ctx, username)
	if err != nil {
		return v.failed(err)
	}
	p := accountPage{base: v.base("search", "Account "+acct.Username), Account: acct}
	if p.Attempts, err = v.c.cfg.Service.Attempts(ctx, username); err != nil {
		return v.failed(err)
	}
	signIns, err := v.c.cfg.Service.Events(ctx, username, 10, admin.SignInEvents...)
	if err != nil {
		return v.failed(err)
	}
	events, err := v.c.cfg.Service.Events(ctx, username, admin.DefaultEventLimit)
	if err != nil {
		return v.failed(err)
	}
	p.SignIns, p.Events = eventRows(signIns), eventRows(events)
	if form != nil {
		p.Form = *form
	}
	p.Problem = problem
	if problem == "" {
		p.Message = doneMessage(v.r.URL.Query().Get("done"))
	}
	return v.render(status, "account", p)
}

// doneMessages are the confirmations a change's redirect may name; any
// other value shows nothing (never text from the address).
var doneMessages = map[string]string{
	"approved":            "The account was approved: it can sign in now.",
	"disabled":            "The account was disabled: it is refused from its next request, on every node.",
	"enabled":             "The account was enabled.",
	"unlocked":            "The password lockout was lifted and the failed sign-ins cleared.",
	"card-cleared":        "The card's registration was cleared. It will not be linked again by DoD ID; its holder must register it again.",
	"group-added":         "The account was added to the group.",
	"group-removed":       "The account was removed from the group.",
	"reset-required":      "The password will not sign in until its holder chooses a new one.",
	"announcement-added":  "The announcement was saved. Every node shows it from its start.",
	"announcement-delete": "The announcement was deleted.",
}

func doneMessage(code string) string { return doneMessages[code] }

func (v *view) accountAction(username, action string) error {
	ctx := v.r.Context()
	svc := v.c.cfg.Service
	who := actor(v.req)
	form := actionForm{Action: action, Reason: v.r.PostForm.Get("reason"), Group: strings.TrimSpace(v.r.PostForm.Get("group"))}
	var done string
	var err error
	switch action {
	case "approve":
		_, err = svc.Approve(ctx, who, username)
		done = "approved"
	case "disable":
		_, err = svc.DisableBecause(ctx, who, username, form.Reason)
		done = "disabled"
	case "enable":
		_, err = svc.EnableBecause(ctx, who, username, form.Reason)
		done = "enabled"
	case "unlock":
		_, err = svc.Unlock(ctx, who, username)
		done = "unlocked"
	case "clear-card":
		err = svc.UnlinkCard(ctx, who, username, v.r.PostForm.Get("sha256"))
		done = "card-cleared"
	case "add-group":
		_, err = svc.AddGroups(ctx, who, username, []string{form.Group})
		done = "group-added"
	case "remove-group":
		_, err = svc.RemoveGroups(ctx, who, username, []string{form.Group})
		done = "group-removed"
	case "require-password-reset":
		_, err = svc.RequirePasswordReset(ctx, who, username)
		done = "reset-required"
	default:
		return ui.WriteProblem(v.w, v.r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no such account action.", Links: []ui.Link{{Text: "Console home", Href: Path}}})
	}
	if err != nil {
		var e *admin.Error
		if errors.As(err, &e) && e.Cause == "" && e.Status < 500 {
			// The account is as it was: show it again with why, and
			// what was typed.
			return v.accountWith(username, &form, e.Error(), e.Status)
		}
		return v.failed(err)
	}
	next := Path
	if action != "approve" || v.r.PostForm.Get("from") != "queue" {
		next = PathAccounts + "/" + url.PathEscape(username)
	}
	return ui.SeeOther(v.w, next+"?done="+done)
}

// --- announcements --------------------------------------------------------

type announcementsPage struct {
	base
	List   []admin.Announcement
	Form   announcementForm
	Errors []string
}

type announcementForm struct {
	Severity, Message, Start, End string
}

// formTime is the datetime-local format the forms use, in UTC.
const formTime = "2006-01-02T15:04"

func (v *view) announcements(form announcementForm, errs []string, status int) error {
	list, err := v.c.cfg.Service.Announcements(v.r.Context())
	if err != nil {
		return v.failed(err)
	}
	if form.Severity == "" {
		form.Severity = store.SeverityInfo
	}
	p := announcementsPage{base: v.base("announcements", "Announcements"), List: list, Form: form, Errors: errs}
	if len(errs) == 0 {
		p.Message = doneMessage(v.r.URL.Query().Get("done"))
	}
	return v.render(status, "announcements", p)
}

func (v *view) createAnnouncement() error {
	f := announcementForm{Severity: v.r.PostForm.Get("severity"), Message: v.r.PostForm.Get("message"),
		Start: strings.TrimSpace(v.r.PostForm.Get("start")), End: strings.TrimSpace(v.r.PostForm.Get("end"))}
	req := admin.NewAnnouncementRequest{Severity: f.Severity, Message: strings.ReplaceAll(f.Message, "\r\n", "\n")}
	var errs []string
	if f.Start != "" {
		t, err := time.ParseInLocation(formTime, f.Start, time.UTC)
		if err != nil {
			errs = append(errs, "Start must be a date and time such as 2026-12-24T18:00 (UTC), or empty for now.")
		} else {
			req.Start = &t
		}
	}
	if f.End == "" {
		errs = append(errs, "Enter when the announcement ends: announcements end by themselves.")
	} else if t, err := time.ParseInLocation(formTime, f.End, time.UTC); err != nil {
		errs = append(errs, "End must be a date and time such as 2026-12-24T20:00 (UTC).")
	} else {
		req.End = t
	}
	if len(errs) > 0 {
		return v.announcements(f, errs, http.StatusBadRequest)
	}
	if _, err := v.c.cfg.Service.CreateAnnouncement(v.r.Context(), actor(v.req), req); err != nil {
		var e *admin.Error
		if errors.As(err, &e) && e.Cause == "" && e.Status < 500 {
			return v.announcements(f, []string{e.Error()}, e.Status)
		}
		return v.failed(err)
	}
	return ui.SeeOther(v.w, PathAnnouncements+"?done=announcement-added")
}

func (v *view) deleteAnnouncement(idText string) error {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return ui.WriteProblem(v.w, v.r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Page not found",
			Detail: "There is no such announcement.", Links: []ui.Link{{Text: "Announcements", Href: PathAnnouncements}}})
	}
	if err := v.c.cfg.Service.DeleteAnnouncement(v.r.Context(), actor(v.req), id); err != nil {
		var e *admin.Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return v.announcements(announcementForm{}, []string{"That announcement no longer exists: it was deleted or ended."}, http.StatusNotFound)
		}
		return v.failed(err)
	}
	return ui.SeeOther(v.w, PathAnnouncements+"?done=announcement-delete")
}

// --- status ---------------------------------------------------------------

type statusPage struct {
	base
	Status Status
}

func (v *view) status() error {
	return v.render(http.StatusOK, "status", statusPage{base: v.base("status", "Gateway status"), Status: v.c.cfg.Status()})
}

// --- events ---------------------------------------------------------------

// eventRow is one security event as the console lists it.
type eventRow struct {
	Time, Event, Outcome, Source, Node, Details string
	Failure                                     bool
}

// shownElsewhere are the fields an event row shows in columns of its own.
var shownElsewhere = map[string]bool{"event": true, "outcome": true, "time": true, "node": true, "source_ip": true}

// maxDetails bounds the details an event row shows.
const maxDetails = 600

func eventRows(events []admin.Event) []eventRow {
	out := make([]eventRow, 0, len(events))
	for _, e := range events {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			if !shownElsewhere[k] {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %v", k, e.Fields[k])
		}
		details := b.String()
		if len(details) > maxDetails {
			details = admin.Clip(details, maxDetails)
		}
		out = append(out, eventRow{Time: formatTime(e.Time), Event: e.Event, Outcome: e.Outcome, Source: e.SourceIP, Node: e.Node,
			Details: details, Failure: e.Outcome == audit.Failure})
	}
	return out
}

// formatTime is how the console shows times: UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// funcs are the console templates' helpers.
var funcs = template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return formatTime(*t)
	},
	"at":          formatTime,
	"formtime":    func(t time.Time) string { return t.UTC().Format(formTime) },
	"locked":      func(t *time.Time, now time.Time) bool { return t != nil && now.Before(*t) },
	"cardExpired": func(t time.Time, now time.Time) bool { return !now.Before(t) },
	// dict passes several values to a shared template.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict: keys must be strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}
