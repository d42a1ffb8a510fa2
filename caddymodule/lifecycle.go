package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	netmail "net/mail"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/lifecycle"
	"github.com/cacgate/cacgate/internal/mail"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/store"
)

// MailConfig is how the gateway sends e-mail notices (the global option's
// mail block):
//
//	mail {
//		smtp      <host> [<port>]
//		tls       starttls|tls|off     # default starttls; off only to a loopback relay
//		username  <user>               # {env.*} and {file.*} placeholders allowed
//		password  <password>
//		from      <address>
//		ca_file   <pem file>           # CAs the relay's certificate is verified with; default the system's
//		templates <dir>                # <kind>.txt / <kind>.html overriding the built-in templates
//		site      <name>               # how notices name the site (default the first site's host)
//		contact   <text>               # whom notices tell people to ask
//		account_page <url>             # the account page's address, for notices that point there
//		outbox_limit <n>               # default 10000 queued notices
//		interval  <duration>           # how often each node looks at the outbox (default 10s)
//		admin_notices <address>...     # copies of account-management notices for administrators/ISSOs
//	}
type MailConfig struct {
	Host        string `json:"host,omitempty"`
	Port        int    `json:"port,omitempty"`
	TLS         string `json:"tls,omitempty"`
	Username    string `json:"username,omitempty"`
	Password    string `json:"password,omitempty"`
	From        string `json:"from,omitempty"`
	CAFile      string `json:"ca_file,omitempty"`
	Templates   string `json:"templates,omitempty"`
	Site        string `json:"site,omitempty"`
	Contact     string `json:"contact,omitempty"`
	AccountPage string `json:"account_page,omitempty"`
	OutboxLimit int    `json:"outbox_limit,omitempty"`
	// AdminNotices receive a copy of the account-management notices
	// (created, pending, approved, disabled for inactivity, utility
	// account disabled): the administrators and ISSOs.
	AdminNotices []string       `json:"admin_notices,omitempty"`
	Interval     caddy.Duration `json:"interval,omitempty"`
}

// Defaults of the life-cycle options.
const (
	defaultInactiveWarning = 7 * 24 * time.Hour
	defaultPasswordWarning = 7 * 24 * time.Hour
	defaultSweepInterval   = time.Hour
)

// lifecycleState is the app's mail and sweep machinery.
type lifecycleState struct {
	client   *mail.Client
	notifier *mail.Notifier
	sender   *mail.Sender
	sweeper  *lifecycle.Sweeper

	mu              sync.Mutex
	passwordMaxAges []time.Duration // each site's, for the expiry warning
	cancel          context.CancelFunc
	done            chan struct{}
}

// provisionLifecycle builds the notifier, the outbox sender and the sweep.
func (a *App) provisionLifecycle(ctx caddy.Context) error {
	a.life = &lifecycleState{}
	if a.InactiveAfter != 0 && a.InactiveAfter < caddy.Duration(24*time.Hour) {
		return fmt.Errorf("inactive_after must be at least 24h (or unset), got %s", time.Duration(a.InactiveAfter))
	}
	if a.InactiveWarning == 0 {
		a.InactiveWarning = caddy.Duration(defaultInactiveWarning)
	}
	if a.InactiveAfter > 0 && a.InactiveWarning >= a.InactiveAfter {
		return fmt.Errorf("inactive_warning %s must be shorter than inactive_after %s", time.Duration(a.InactiveWarning), time.Duration(a.InactiveAfter))
	}
	if a.PasswordExpiryWarning == 0 {
		a.PasswordExpiryWarning = caddy.Duration(defaultPasswordWarning)
	}
	if a.Mail != nil {
		if err := a.provisionMail(ctx); err != nil {
			return fmt.Errorf("mail: %w", err)
		}
	}
	interval := time.Duration(a.SweepInterval)
	if interval == 0 {
		interval = defaultSweepInterval
	}
	a.life.sweeper = &lifecycle.Sweeper{
		Store: a.store, InactiveAfter: time.Duration(a.InactiveAfter), WarnBefore: time.Duration(a.InactiveWarning),
		PasswordWarnBefore: time.Duration(a.PasswordExpiryWarning),
		Notifier:           a.life.notifier, Audit: a.audit, Logger: a.logger.Named("lifecycle"),
		Interval: interval, Changed: a.invalidate,
	}
	return nil
}

func (a *App) provisionMail(_ caddy.Context) error {
	return a.buildMail(a.store)
}

// buildMail makes the relay client and the notifier from the mail block;
// outbox is where notices queue (nil for the CLI's test message).
func (a *App) buildMail(outbox mail.Outbox) error {
	mc := a.Mail
	repl := caddy.NewReplacer()
	expand := func(s string) (string, error) { return repl.ReplaceOrErr(s, true, true) }
	cfg := mail.SMTP{Port: mc.Port, TLS: mc.TLS}
	for _, f := range []struct {
		dst *string
		src string
	}{{&cfg.Host, mc.Host}, {&cfg.Username, mc.Username}, {&cfg.Password, mc.Password}, {&cfg.From, mc.From}} {
		v, err := expand(f.src)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	if mc.CAFile != "" {
		pem, err := os.ReadFile(mc.CAFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca_file %s holds no PEM certificate", mc.CAFile)
		}
		cfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := mail.NewClient(cfg)
	if err != nil {
		return err
	}
	tpl, err := mail.LoadTemplates(mc.Templates)
	if err != nil {
		return err
	}
	for _, addr := range mc.AdminNotices {
		if !validAddress(addr) {
			return fmt.Errorf("admin_notices: %q is not an e-mail address", addr)
		}
	}
	if len(mc.AdminNotices) > 20 {
		return errors.New("admin_notices: at most 20 addresses")
	}
	if mc.OutboxLimit < 0 || mc.OutboxLimit > 1_000_000 {
		return fmt.Errorf("outbox_limit must be between 1 and 1000000, got %d", mc.OutboxLimit)
	}
	a.life.client = client
	logger := a.logger
	if logger == nil {
		logger = zap.NewNop()
	}
	a.life.notifier = &mail.Notifier{
		Outbox: outbox, Templates: tpl, Site: mc.Site, Contact: mc.Contact, AccountPage: mc.AccountPage,
		Limit: mc.OutboxLimit, Logger: logger.Named("mail"), Admins: mc.AdminNotices,
		Dropped: func(kind, username string, err error) {
			a.audit.Write("mail.dropped", audit.Failure, zap.String("kind", kind), zap.String("username", username),
				zap.String("reason", dropReason(err)))
		},
	}
	if outbox == nil {
		return nil
	}
	a.life.sender = &mail.Sender{
		Queue: a.store, Transport: client, Logger: a.logger.Named("mail"), Interval: time.Duration(mc.Interval),
		Sent: func(m store.Mail) {
			a.audit.Write("mail.sent", audit.Success, zap.String("kind", m.Kind), zap.Int64("mail_id", m.ID), zap.Int("attempts", m.Attempts+1))
		},
		Dropped: func(m store.Mail, reason string) {
			a.audit.Write("mail.dropped", audit.Failure, zap.String("kind", m.Kind), zap.Int64("mail_id", m.ID), zap.String("reason", reason))
		},
	}
	a.life.sender.Init()
	return nil
}

func dropReason(err error) string {
	if errors.Is(err, store.ErrOutboxFull) {
		return "outbox_full"
	}
	return "unavailable"
}

// notePasswordMaxAge records a site's password_max_age, for the expiry
// warning (the shortest of the sites' applies).
func (a *App) notePasswordMaxAge(d time.Duration) {
	if a.life == nil || d <= 0 {
		return
	}
	a.life.mu.Lock()
	a.life.passwordMaxAges = append(a.life.passwordMaxAges, d)
	a.life.mu.Unlock()
}

// startLifecycle starts the outbox sender and the sweep (from Start: every
// site has provisioned by then).
func (a *App) startLifecycle() {
	if a.life == nil || a.life.sweeper == nil {
		return
	}
	a.life.mu.Lock()
	for _, d := range a.life.passwordMaxAges {
		if a.life.sweeper.PasswordMaxAge == 0 || d < a.life.sweeper.PasswordMaxAge {
			a.life.sweeper.PasswordMaxAge = d
		}
	}
	a.life.mu.Unlock()
	if a.life.notifier == nil {
		// Without mail, warnings would tell nobody: only disabling runs.
		a.life.sweeper.PasswordWarnBefore = 0
		a.life.sweeper.WarnBefore = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.life.cancel, a.life.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.life.sweeper.Run(ctx) }()
	if a.life.sender != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.life.sender.Run(ctx) }()
	}
	go func() { wg.Wait(); close(a.life.done) }()
}

// stopLifecycle stops them and waits (bounded) for a send in progress.
func (a *App) stopLifecycle() {
	if a.life == nil || a.life.cancel == nil {
		return
	}
	a.life.cancel()
	select {
	case <-a.life.done:
	case <-time.After(30 * time.Second):
	}
}

// notify queues a notice about acct (nothing without mail configured).
func (a *App) notify(ctx context.Context, kind string, acct *store.Account, d mail.Data, dedupe string) {
	if a.life == nil || a.life.notifier == nil || acct == nil {
		return
	}
	a.life.notifier.Notify(ctx, kind, acct, d, dedupe)
	a.life.sender.Wake() // nil-safe: the CLI has no sender
}

// noticeOfEvent maps a self-service audit event to its e-mail notice.
func noticeOfEvent(event, outcome string, fields map[string]string) string {
	if outcome != "success" {
		return ""
	}
	switch event {
	case "enroll.completed":
		if fields["status"] == string(store.StatusPending) {
			return mail.KindAccountPending
		}
		return mail.KindAccountCreated
	case "card.linked":
		return mail.KindCardRegistered
	case "password.changed":
		return mail.KindPasswordChanged
	case "password.reset":
		return mail.KindPasswordReset
	case "answers.changed":
		return mail.KindAnswersChanged
	}
	return ""
}

// auditAndNotify is the self-service audit hook: the audit entry, then the
// e-mail notice the event calls for, and a password sign-in recorded.
func (a *App) auditAndNotify(ctx context.Context, event, outcome string, fields map[string]string) {
	a.auditSelfService(ctx, event, outcome, fields)
	username := fields["username"]
	if username == "" || !store.ValidUsername(username) {
		return
	}
	kind := noticeOfEvent(event, outcome, fields)
	lockCheck := event == "signin.password" && outcome == "failure" && fields["reason"] == "bad_password"
	signedIn := event == "signin.password" && outcome == "success"
	if kind == "" && !lockCheck && !signedIn {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	acct, err := a.store.AccountByUsername(rctx, username)
	if err != nil {
		a.logger.Warn("reading the account for a notice", zap.String("event", event), zap.Error(err))
		return
	}
	now := time.Now()
	switch {
	case signedIn:
		// Inactivity counts password sign-ins too: one write per sign-in.
		if err := a.store.RecordSignIn(rctx, acct.ID, now); err != nil {
			a.logger.Warn("recording password sign-in", zap.Error(err))
		}
	case lockCheck:
		if acct.LockedUntil.After(now) {
			a.notify(ctx, mail.KindAccountLocked, acct, mail.Data{Deadline: mail.FormatTime(acct.LockedUntil)},
				"locked:"+strconv.FormatInt(acct.ID, 10)+":"+strconv.FormatInt(acct.LockedUntil.Unix(), 10))
		}
	default:
		d := mail.Data{}
		if kind == mail.KindCardRegistered && fields["card"] != "" {
			d.Detail = "certificate SHA-256 " + fields["card"]
		}
		a.notify(ctx, kind, acct, d, "")
	}
}

// adminNotify is the admin service's notice hook.
func (a *App) adminNotify(ctx context.Context, kind string, acct *store.Account, detail string) {
	a.notify(ctx, kind, acct, mail.Data{Detail: detail}, "")
}

// cardLinked is the gateway's hook for a card linked by DoD ID.
func (a *App) cardLinked(ctx context.Context, acct *store.Account, id *cacid.Identity) {
	a.notify(ctx, mail.KindCardRegistered, acct, mail.Data{Detail: id.Subject}, "")
}

// logons is the portal's last sign-in store, nil-safe.
func (a *App) logons() portal.Logons { return a.store }

// sendTestMail renders the test notice and hands it to the relay at once.
func (a *App) sendTestMail(ctx context.Context, to string) error {
	if a.life == nil || a.life.client == nil {
		return errors.New("mail is not configured (the global option's mail block)")
	}
	return sendTest(ctx, a.life.client, a.life.notifier, to)
}

// sendTest sends the test message to to through client.
func sendTest(ctx context.Context, client *mail.Client, n *mail.Notifier, to string) error {
	if !validAddress(to) {
		return fmt.Errorf("%q is not an e-mail address", admin.Clip(to, 100))
	}
	m, ok, err := n.Message(mail.KindTest, &store.Account{Username: "test", Email: to}, mail.Data{})
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the test message could not be made")
	}
	m.CreatedAt = time.Now()
	return client.Send(ctx, m)
}

func validAddress(s string) bool {
	a, err := netmail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 254
}
