package mail_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/mail"
	"github.com/cacgate/cacgate/internal/mailtest"
	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	pki    *testpki.PKI
	relay  *mailtest.Server
	client *mail.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pki, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	relay := mailtest.Start(t, pki.Server.TLS, "notices", "s3cret-relay")
	roots := x509.NewCertPool()
	roots.AddCert(pki.Root.Cert)
	client, err := mail.NewClient(mail.SMTP{
		Host: "127.0.0.1", Port: relay.Port(), TLS: mail.TLSStartTLS,
		Username: "notices", Password: "s3cret-relay", From: "cacgate@example.mil",
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"},
		Timeout:   20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{pki: pki, relay: relay, client: client}
}

func openSQLite(t *testing.T, path string) *store.SQLStore {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSMTPStartTLSAuth: a notice rendered from the built-in template goes
// through a real SMTP server over STARTTLS with PLAIN authentication.
func TestSMTPStartTLSAuth(t *testing.T) {
	e := newEnv(t)
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	st := openSQLite(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	n := &mail.Notifier{Outbox: st, Templates: tpl, Site: "gate.example.mil", Contact: "the help desk"}
	acct := &store.Account{Username: "john.q.doe", GivenName: "John", Email: "john.doe@example.mil"}
	n.Notify(context.Background(), mail.KindPasswordChanged, acct, mail.Data{}, "")
	s := &mail.Sender{Queue: st, Transport: e.client}
	if got, err := s.RunOnce(context.Background()); err != nil || got != 1 {
		t.Fatalf("RunOnce = %d, %v", got, err)
	}
	msgs := e.relay.WaitFor(t, 1, time.Minute)
	m := msgs[0]
	if m.From != "cacgate@example.mil" || len(m.To) != 1 || m.To[0] != "john.doe@example.mil" {
		t.Fatalf("envelope %q → %q", m.From, m.To)
	}
	if subj := m.Header("Subject"); subj != "Your gate.example.mil password was changed" {
		t.Errorf("subject %q", subj)
	}
	if !strings.Contains(m.Data, "john.q.doe") || !strings.Contains(m.Data, "the help desk") {
		t.Errorf("body lacks the username or contact:\n%s", m.Data)
	}
	if m.Header("X-Cacgate-Notice") != mail.KindPasswordChanged || m.Header("Message-Id") == "" {
		t.Errorf("headers: %s", m.Data)
	}
	if st, _ := st.MailOutboxStats(context.Background()); st.Queued != 0 {
		t.Errorf("%d still queued after sending", st.Queued)
	}
}

// TestOptOut: an optional notice the person turned off is not queued; a
// security notice is, whatever the preferences say.
func TestOptOut(t *testing.T) {
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	n := &mail.Notifier{Templates: tpl}
	acct := &store.Account{Username: "a", Email: "a@example.mil", MailOptOut: []string{mail.KindPasswordExpiring, mail.KindPasswordChanged}}
	if _, ok, _ := n.Message(mail.KindPasswordExpiring, acct, mail.Data{}); ok {
		t.Error("opted-out optional notice rendered")
	}
	if _, ok, _ := n.Message(mail.KindPasswordChanged, acct, mail.Data{}); !ok {
		t.Error("security notice suppressed by an opt-out")
	}
	if _, ok, _ := n.Message(mail.KindPasswordChanged, &store.Account{Username: "b"}, mail.Data{}); ok {
		t.Error("notice rendered for an account without an address")
	}
}

// TestTemplateOverride: an operator's file replaces a built-in template
// and adds an HTML part; a broken one is refused when loading.
func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "password_changed.txt"), "Subject: Changed ({{.Username}})\n\nCall {{.Contact}}.\n")
	write(t, filepath.Join(dir, "password_changed.html"), "<p>Hello <b>{{.Name}}</b></p>")
	tpl, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tpl.Render(mail.KindPasswordChanged, "x@example.mil", mail.Data{Username: "u1", Contact: "ops", Name: "<script>"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Changed (u1)" || m.Text != "Call ops.\n" || m.HTML != "<p>Hello <b>&lt;script&gt;</b></p>" {
		t.Fatalf("%+v", m)
	}
	write(t, filepath.Join(dir, "test.txt"), "no subject line\n")
	if _, err := mail.LoadTemplates(dir); err == nil {
		t.Error("a template without a Subject line loaded")
	}
	write(t, filepath.Join(dir, "test.txt"), "Subject: {{.Password}}\n\n")
	if _, err := mail.LoadTemplates(dir); err != nil {
		t.Fatal(err) // parses; fails when rendered: Data has no Password
	}
	tpl, _ = mail.LoadTemplates(dir)
	if _, err := tpl.Render(mail.KindTest, "x@example.mil", mail.Data{}); err == nil {
		t.Error("a template naming a field Data lacks rendered")
	}
}

// TestOutboxSurvivesOutageAndRestart: notices queued while the relay
// refuses mail stay queued (retried with back-off), survive a restart of
// the gateway (a new store and sender on the same database), and are all
// delivered exactly once when the relay is back, even with two senders
// (two nodes) working the one outbox.
func TestOutboxSurvivesOutageAndRestart(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "db")
	st := openSQLite(t, path)
	tpl, _ := mail.LoadTemplates("")
	n := &mail.Notifier{Outbox: st, Templates: tpl, Site: "gate"}
	const total = 30
	for i := range total {
		acct := &store.Account{Username: fmt.Sprintf("user%02d", i), Email: fmt.Sprintf("user%02d@example.mil", i)}
		n.Notify(context.Background(), mail.KindAccountCreated, acct, mail.Data{}, "")
	}
	e.relay.SetDown(true)
	clock := time.Now()
	s := &mail.Sender{Queue: st, Transport: e.client, Batch: 50, RetryMin: time.Minute}
	mail.SetClock(s, func() time.Time { return clock })
	if got, err := s.RunOnce(context.Background()); got != total || err != nil {
		t.Fatalf("first run with the relay down: %d claimed, err %v", got, err)
	}
	stats, _ := st.MailOutboxStats(context.Background())
	if stats.Queued != total || stats.MaxAttempts != 1 {
		t.Fatalf("after a refused batch: %+v", stats)
	}
	// Back-off: nothing is due again before RetryMin.
	if got, _ := s.RunOnce(context.Background()); got != 0 {
		t.Fatalf("%d retried before their back-off", got)
	}
	st.Close() // the gateway stops

	e.relay.SetDown(false)
	clock = clock.Add(2 * time.Minute)
	var wg sync.WaitGroup
	for node := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := openSQLite(t, path) // restarted, two nodes on one database
			defer st.Close()
			s := &mail.Sender{Queue: st, Transport: e.client, Batch: 4, RetryMin: time.Minute}
			mail.SetClock(s, func() time.Time { return clock })
			for range 100 {
				got, err := s.RunOnce(context.Background())
				if err != nil {
					t.Errorf("node %d: %v", node, err)
					return
				}
				if got == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	msgs := e.relay.WaitFor(t, total, time.Minute)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.To[0]]++
	}
	if len(msgs) != total || len(seen) != total {
		t.Fatalf("%d messages to %d recipients, want %d each once: %v", len(msgs), len(seen), total, seen)
	}
	st = openSQLite(t, path)
	defer st.Close()
	if stats, _ := st.MailOutboxStats(context.Background()); stats.Queued != 0 {
		t.Fatalf("still queued: %+v", stats)
	}
}

// TestOutboxBoundedAndDeduplicated: the outbox refuses past its limit, and
// a notice offered twice under one dedupe key is queued once.
func TestOutboxBoundedAndDeduplicated(t *testing.T) {
	st := openSQLite(t, filepath.Join(t.TempDir(), "db"))
	defer st.Close()
	ctx := context.Background()
	m := store.Mail{Kind: "test", Recipient: "a@example.mil", Subject: "s", Text: "t", DedupeKey: "k1"}
	for range 3 {
		if err := st.EnqueueMail(ctx, 2, m); err != nil {
			t.Fatal(err)
		}
	}
	m.DedupeKey = ""
	if err := st.EnqueueMail(ctx, 2, m); err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueMail(ctx, 2, m); err == nil {
		t.Fatal("queued past the limit")
	}
	if stats, _ := st.MailOutboxStats(ctx); stats.Queued != 2 {
		t.Fatalf("queued %d, want 2", stats.Queued)
	}
}

// TestImplicitTLSRefusedPlainRemote: plain text is only for a loopback
// relay.
func TestSMTPValidate(t *testing.T) {
	for _, c := range []mail.SMTP{
		{Host: "relay.example.mil", TLS: mail.TLSOff, From: "a@example.mil"},
		{Host: "relay.example.mil", TLS: "maybe", From: "a@example.mil"},
		{Host: "relay.example.mil"},
		{Host: "relay.example.mil", From: "not an address"},
		{Host: "relay.example.mil", From: "a@example.mil", Password: "x"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := (&mail.SMTP{Host: "127.0.0.1", TLS: mail.TLSOff, From: "a@example.mil"}).Validate(); err != nil {
		t.Error(err)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := mail.WriteFile(path, s); err != nil {
		t.Fatal(err)
	}
}

// TestAdminCopies: administrators get a copy of account-management
// notices whatever the person chose, and none of the others.
func TestAdminCopies(t *testing.T) {
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	n := &mail.Notifier{Templates: tpl, Admins: []string{"isso@example.mil", "sa@example.mil"}}
	acct := &store.Account{Username: "u1", Email: "u1@example.mil", MailOptOut: []string{mail.KindAccountPending}}
	msgs, err := n.Messages(mail.KindAccountPending, acct, mail.Data{})
	if err != nil || len(msgs) != 2 || msgs[0].Recipient != "isso@example.mil" || !strings.HasPrefix(msgs[0].Subject, "[admin copy: u1] ") {
		t.Fatalf("pending, opted out: %+v, %v", msgs, err)
	}
	msgs, _ = n.Messages(mail.KindAccountInactive, &store.Account{Username: "u2"}, mail.Data{})
	if len(msgs) != 2 {
		t.Fatalf("inactive without an address: %d messages, want the 2 admin copies", len(msgs))
	}
	msgs, _ = n.Messages(mail.KindPasswordChanged, acct, mail.Data{})
	if len(msgs) != 1 || msgs[0].Recipient != "u1@example.mil" {
		t.Fatalf("password changed: %+v", msgs)
	}
}

// TestOutboxTwoNodesPostgres: two nodes' senders on one PostgreSQL
// database, racing for the same outbox, deliver every notice exactly once.
func TestOutboxTwoNodesPostgres(t *testing.T) {
	e := newEnv(t)
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	open := func() *store.SQLStore {
		st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	nodes := []*store.SQLStore{open(), open()}
	tpl, _ := mail.LoadTemplates("")
	n := &mail.Notifier{Outbox: nodes[0], Templates: tpl, Site: "gate"}
	const total = 40
	for i := range total {
		n.Notify(ctx, mail.KindAccountCreated, &store.Account{Username: fmt.Sprintf("u%02d", i), Email: fmt.Sprintf("u%02d@example.mil", i)}, mail.Data{}, "")
	}
	var wg sync.WaitGroup
	for i, st := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &mail.Sender{Queue: st, Transport: e.client, Batch: 3}
			for range 200 {
				got, err := s.RunOnce(ctx)
				if err != nil {
					t.Errorf("node %d: %v", i, err)
					return
				}
				if got == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	msgs := e.relay.WaitFor(t, total, time.Minute)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.To[0]]++
	}
	if len(msgs) != total || len(seen) != total {
		t.Fatalf("%d messages to %d recipients, want %d once each", len(msgs), len(seen), total)
	}
	if st, _ := nodes[1].MailOutboxStats(ctx); st.Queued != 0 {
		t.Fatalf("still queued: %+v", st)
	}
}
