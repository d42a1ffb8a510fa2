// Package mail sends the gateway's e-mail notices: what happened to a
// person's account (created, approved, a card registered, the password or
// answers changed, locked, about to expire, disabled for inactivity).
//
// Notices are rendered from templates an operator can override and queued
// in the account database's outbox (store.Mail) in the request that caused
// them; a Sender on every node claims due messages with a lease, hands them
// to the SMTP relay and deletes them once the relay accepted them, retrying
// with back-off while it does not. So a relay outage delays notices without
// losing them or blocking a request, a restart resumes where it stopped,
// and across a cluster each message is sent by one node.
//
// A notice never carries a password, SSN, security answer or token: the
// templates' data (Data) has no field that could hold one.
package mail

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
)

// Kinds of notice.
const (
	KindAccountCreated   = "account_created"
	KindAccountPending   = "account_pending"
	KindAccountApproved  = "account_approved"
	KindCardRegistered   = "card_registered"
	KindPasswordChanged  = "password_changed"
	KindPasswordReset    = "password_reset"
	KindAnswersChanged   = "answers_changed"
	KindAccountLocked    = "account_locked"
	KindPasswordExpiring = "password_expiring"
	KindInactiveWarning  = "inactive_warning"
	KindAccountInactive  = "account_inactive"
	KindUtilityDisabled  = "utility_disabled"
	KindTest             = "test"
)

// Kinds lists every kind with whether a person may turn it off and how the
// account page names it. Security notices (a change to how one signs in,
// a lock, a disabling) cannot be turned off.
var Kinds = []KindInfo{
	{KindAccountCreated, false, "Account created"},
	{KindAccountPending, true, "Account waiting for approval"},
	{KindAccountApproved, true, "Account approved"},
	{KindCardRegistered, false, "A new card registered to my account"},
	{KindPasswordChanged, false, "Password changed"},
	{KindPasswordReset, false, "Password reset"},
	{KindAnswersChanged, false, "Security answers changed"},
	{KindAccountLocked, false, "Account locked after wrong passwords"},
	{KindPasswordExpiring, true, "Password about to expire"},
	{KindInactiveWarning, true, "Account about to be disabled for inactivity"},
	{KindAccountInactive, false, "Account disabled for inactivity"},
	{KindUtilityDisabled, false, "Utility account disabled"},
	{KindTest, false, "Test message"},
}

// KindInfo describes a kind of notice.
type KindInfo struct {
	Kind     string
	Optional bool
	Label    string
}

// Optional reports whether a person may turn notices of kind off.
func Optional(kind string) bool {
	i := slices.IndexFunc(Kinds, func(k KindInfo) bool { return k.Kind == kind })
	return i >= 0 && Kinds[i].Optional
}

// Data is what a template may say. It deliberately has no field for a
// password, SSN, security answer, token or link carrying one.
type Data struct {
	Site        string // the gateway's name for people, e.g. "cacgate.example.mil"
	Contact     string // whom to ask for help
	AccountPage string // address of the account page
	Name        string // the person's given name (or a utility account's name)
	Username    string
	Time        string // when it happened, UTC
	Deadline    string // a lock's end, an expiry, a disabling date
	Period      string // e.g. "35 days"
	Detail      string // one line about what changed (a certificate's subject)
}

//go:embed templates
var builtin embed.FS

// Templates are the notices' templates: the built-in ones, each replaced by
// a file of the same name (<kind>.txt, <kind>.html) in an operator's
// directory. A .txt file begins with a "Subject: " line and a blank line;
// a .html file is the optional HTML part.
type Templates struct {
	text map[string]*template.Template
	html map[string]*htmltemplate.Template
}

// maxTemplate bounds an operator's template file.
const maxTemplate = 64 << 10

// LoadTemplates reads the built-in templates and the overrides in dir ("":
// none). A template that does not parse, or a .txt without its Subject
// line, is an error: the config does not load.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*template.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, k := range Kinds {
		src, err := fs.ReadFile(builtin, "templates/"+k.Kind+".txt")
		if err != nil {
			return nil, fmt.Errorf("mail: built-in template %s: %w", k.Kind, err)
		}
		if dir != "" {
			if b, err := readOverride(filepath.Join(dir, k.Kind+".txt")); err != nil {
				return nil, err
			} else if b != nil {
				src = b
			}
		}
		if !bytes.HasPrefix(src, []byte("Subject: ")) {
			return nil, fmt.Errorf("mail: template %s.txt must begin with a \"Subject: \" line", k.Kind)
		}
		tt, err := template.New(k.Kind).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("mail: template %s.txt: %w", k.Kind, err)
		}
		t.text[k.Kind] = tt
		if dir != "" {
			b, err := readOverride(filepath.Join(dir, k.Kind+".html"))
			if err != nil {
				return nil, err
			}
			if b != nil {
				ht, err := htmltemplate.New(k.Kind).Option("missingkey=error").Parse(string(b))
				if err != nil {
					return nil, fmt.Errorf("mail: template %s.html: %w", k.Kind, err)
				}
				t.html[k.Kind] = ht
			}
		}
	}
	return t, nil
}

func readOverride(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail: template: %w", err)
	}
	if st.Size() > maxTemplate {
		return nil, fmt.Errorf("mail: template %s is larger than 64 KiB", path)
	}
	return os.ReadFile(path)
}

// Render makes the notice of kind for recipient: subject, text and
// (if there is an HTML template) HTML.
func (t *Templates) Render(kind, recipient string, d Data) (store.Mail, error) {
	tt, ok := t.text[kind]
	if !ok {
		return store.Mail{}, fmt.Errorf("mail: no template for %q", kind)
	}
	var b strings.Builder
	if err := tt.Execute(&b, d); err != nil {
		return store.Mail{}, fmt.Errorf("mail: template %s: %w", kind, err)
	}
	head, body, _ := strings.Cut(b.String(), "\n")
	subject := strings.TrimSpace(strings.TrimPrefix(head, "Subject: "))
	// A header value must stay one line, whatever a name held.
	subject = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, subject)
	m := store.Mail{Kind: kind, Recipient: recipient, Subject: clip(subject, 200), Text: strings.TrimLeft(body, "\n")}
	if ht, ok := t.html[kind]; ok {
		var hb strings.Builder
		if err := ht.Execute(&hb, d); err != nil {
			return store.Mail{}, fmt.Errorf("mail: template %s.html: %w", kind, err)
		}
		m.HTML = hb.String()
	}
	return m, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n])
	return string(r[:len(r)-1]) + "…"
}

// Outbox is where notices are queued (*store.SQLStore).
type Outbox interface {
	EnqueueMail(ctx context.Context, limit int, msgs ...store.Mail) error
}

// Notifier queues notices about accounts.
type Notifier struct {
	Outbox    Outbox
	Templates *Templates
	// Site, Contact and AccountPage fill the templates' Data.
	Site, Contact, AccountPage string
	// Limit bounds the outbox (default DefaultOutboxLimit).
	Limit int
	// Admins receive a copy of the account-management notices (AdminKinds):
	// the system administrators and ISSOs the STIG wants told when
	// accounts are created, disabled or removed.
	Admins []string
	// Dropped is told of a notice that could not be queued (the outbox
	// full, the database down): for the audit trail. May be nil.
	Dropped func(kind, username string, err error)
	Logger  *zap.Logger
	Now     func() time.Time
}

// DefaultOutboxLimit bounds the outbox when the config does not.
const DefaultOutboxLimit = 10000

func (n *Notifier) limit() int {
	if n.Limit > 0 {
		return n.Limit
	}
	return DefaultOutboxLimit
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// FormatTime is how notices write times.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2 January 2006 15:04 UTC")
}

// Message renders the notice of kind to acct, or reports false when acct
// gets none: no e-mail address, or an optional kind the person turned
// off. d's Site, Contact, AccountPage, Name, Username and Time are filled
// in where empty.
func (n *Notifier) Message(kind string, acct *store.Account, d Data) (store.Mail, bool, error) {
	if acct == nil || acct.Email == "" {
		return store.Mail{}, false, nil
	}
	if Optional(kind) && slices.Contains(acct.MailOptOut, kind) {
		return store.Mail{}, false, nil
	}
	d.Site = firstOf(d.Site, n.Site)
	d.Contact = firstOf(d.Contact, n.Contact, "the site's administrators")
	d.AccountPage = firstOf(d.AccountPage, n.AccountPage)
	d.Name = firstOf(d.Name, acct.GivenName, acct.Username)
	d.Username = firstOf(d.Username, acct.Username)
	d.Time = firstOf(d.Time, FormatTime(n.now()))
	m, err := n.Templates.Render(kind, acct.Email, d)
	return m, err == nil, err
}

// AdminKinds are the notices Notifier.Admins get a copy of.
var AdminKinds = []string{KindAccountCreated, KindAccountPending, KindAccountApproved, KindAccountInactive, KindUtilityDisabled}

// Messages renders the notice of kind to acct (if acct gets one) and the
// administrators' copies (AdminKinds), which no person's choice turns off.
func (n *Notifier) Messages(kind string, acct *store.Account, d Data) ([]store.Mail, error) {
	var out []store.Mail
	m, ok, err := n.Message(kind, acct, d)
	if err != nil {
		return nil, err
	}
	if ok {
		out = append(out, m)
	}
	if len(n.Admins) == 0 || acct == nil || !slices.Contains(AdminKinds, kind) {
		return out, nil
	}
	copyFor := *acct
	copyFor.MailOptOut = nil
	for _, admin := range n.Admins {
		copyFor.Email = admin
		c, ok, err := n.Message(kind, &copyFor, d)
		if err != nil || !ok {
			return out, err
		}
		c.Subject = clip("[admin copy: "+acct.Username+"] "+c.Subject, 200)
		c.Text = "Copy for the site's administrators of a notice about account " + acct.Username + ".\n\n" + c.Text
		out = append(out, c)
	}
	return out, nil
}

// Notify queues the notice of kind to acct (if it gets one). dedupe, when
// not empty, queues it once however often it is offered. An error is
// reported to Dropped and logged, not returned: a notice never fails the
// change it reports.
func (n *Notifier) Notify(ctx context.Context, kind string, acct *store.Account, d Data, dedupe string) {
	if n == nil {
		return
	}
	msgs, err := n.Messages(kind, acct, d)
	if err == nil && len(msgs) > 0 {
		for i := range msgs {
			if dedupe != "" {
				msgs[i].DedupeKey = dedupe + ":" + msgs[i].Recipient
			}
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = n.Outbox.EnqueueMail(ctx, n.limit(), msgs...)
		cancel()
	}
	if err != nil {
		if n.Logger != nil {
			n.Logger.Error("queueing e-mail notice", zap.String("kind", kind), zap.String("username", acct.Username), zap.Error(err))
		}
		if n.Dropped != nil {
			n.Dropped(kind, acct.Username, err)
		}
	}
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
