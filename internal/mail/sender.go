package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
)

// TLS modes of the relay connection.
const (
	TLSStartTLS = "starttls" // STARTTLS required (the default; port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSOff      = "off"      // plain text: only to a relay on the loopback interface
)

// SMTP is how to reach the relay.
type SMTP struct {
	Host     string
	Port     int    // default 587 (starttls), 465 (tls), 25 (off)
	TLS      string // TLSStartTLS (default), TLSImplicit or TLSOff
	Username string // "" for no authentication
	Password string
	From     string // the envelope and header sender
	// TLSConfig verifies the relay (RootCAs; ServerName defaults to Host).
	TLSConfig *tls.Config
	Timeout   time.Duration // per connection; default 30s
}

// Validate checks the settings: a relay, a sender, a known TLS mode, and
// plain text only toward a loopback relay (credentials and notices must not
// cross a network in clear).
func (s *SMTP) Validate() error {
	switch {
	case s.Host == "":
		return errors.New("mail: the relay's host is required")
	case s.From == "":
		return errors.New("mail: the sender address (from) is required")
	case s.Port < 0 || s.Port > 65535:
		return fmt.Errorf("mail: port %d out of range", s.Port)
	}
	if _, err := parseAddress(s.From); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	switch s.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSOff:
		if !isLoopback(s.Host) {
			return fmt.Errorf("mail: tls off is allowed only for a relay on the loopback interface, not %q", s.Host)
		}
	default:
		return fmt.Errorf("mail: tls must be starttls, tls or off, not %q", s.TLS)
	}
	if s.Password != "" && s.Username == "" {
		return errors.New("mail: a password needs a username")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Transport hands one message to the relay.
type Transport interface {
	Send(ctx context.Context, m store.Mail) error
}

// Client sends through an SMTP relay with go-mail: one connection per
// batch is not worth its complexity at notice volumes, so one per message.
type Client struct {
	cfg SMTP
}

// NewClient checks cfg and returns a Client for it.
func NewClient(cfg SMTP) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Port == 0 {
		cfg.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSOff: 25}[cfg.TLS]
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	cfg.TLSConfig = tc
	return &Client{cfg: cfg}, nil
}

// Send implements Transport.
func (c *Client) Send(ctx context.Context, m store.Mail) error {
	opts := []gomail.Option{
		gomail.WithPort(c.cfg.Port),
		gomail.WithTimeout(c.cfg.Timeout),
		gomail.WithTLSConfig(c.cfg.TLSConfig),
	}
	switch c.cfg.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSOff:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.cfg.Username != "" {
		// PLAIN only ever runs inside TLS here (or to a loopback relay);
		// go-mail refuses it over an unencrypted remote connection too.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(c.cfg.Username), gomail.WithPassword(c.cfg.Password))
	}
	cl, err := gomail.NewClient(c.cfg.Host, opts...)
	if err != nil {
		return err
	}
	msg := gomail.NewMsg()
	if err := msg.From(c.cfg.From); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := msg.To(m.Recipient); err != nil {
		return permanent(fmt.Errorf("recipient: %w", err))
	}
	msg.Subject(m.Subject)
	// A stable Message-ID per queued message: should a message be sent
	// twice (the relay accepted it, then this node died before deleting
	// it), mail systems see the same message.
	msg.SetMessageIDWithValue(messageID(m, c.cfg.From))
	msg.SetDate()
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Cacgate-Notice", m.Kind)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	err = cl.DialAndSendWithContext(ctx, msg)
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.Reason == gomail.ErrSMTPRcptTo {
		// The relay refused the recipient for good (5xx): retrying
		// would only repeat it.
		return permanent(err)
	}
	return err
}

func messageID(m store.Mail, from string) string {
	domain := "cacgate.invalid"
	if _, d, ok := strings.Cut(from, "@"); ok {
		domain = strings.TrimRight(d, ">")
	}
	return "cacgate." + strconv.FormatInt(m.ID, 10) + "." + strconv.FormatInt(m.CreatedAt.Unix(), 10) + "@" + domain
}

func parseAddress(s string) (string, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s); err != nil {
		return "", err
	}
	return s, nil
}

// permanentError marks a failure retrying cannot cure.
type permanentError struct{ error }

func permanent(err error) error        { return permanentError{err} }
func (p permanentError) Unwrap() error { return p.error }

// Queue is the outbox as the sender works it (*store.SQLStore).
type Queue interface {
	ClaimMail(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]store.Mail, error)
	MailSent(ctx context.Context, id int64, owner string) (bool, error)
	MailFailed(ctx context.Context, id int64, owner string, next time.Time, reason string) error
}

// Sender works the outbox: every Interval it claims due messages, sends
// them and settles each (sent: deleted; failed: retried after a back-off
// that doubles from RetryMin to RetryMax; older than MaxAge, or refused
// for good by the relay: dropped, reported to Dropped).
type Sender struct {
	Queue     Queue
	Transport Transport
	Logger    *zap.Logger
	// Interval between polls when the outbox is empty (default 10s);
	// Wake shortens it after a notice is queued on this node.
	Interval time.Duration
	// Lease is how long a claimed message is this sender's (default 2m,
	// longer than a send's timeout).
	Lease time.Duration
	Batch int // messages per claim, default 20
	// RetryMin and RetryMax bound the back-off (default 30s, 1h).
	RetryMin, RetryMax time.Duration
	// MaxAge: a message still unsent after this long is dropped (default
	// 7 days).
	MaxAge time.Duration
	// Sent and Dropped are told of each message settled (audit, metrics);
	// may be nil.
	Sent    func(m store.Mail)
	Dropped func(m store.Mail, reason string)

	owner string
	wake  chan struct{}
	now   func() time.Time
}

func (s *Sender) defaults() {
	if s.owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.owner = hex.EncodeToString(b[:])
	}
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.Interval, 10*time.Second)
	def(&s.Lease, 2*time.Minute)
	def(&s.RetryMin, 30*time.Second)
	def(&s.RetryMax, time.Hour)
	def(&s.MaxAge, 7*24*time.Hour)
	if s.Batch <= 0 {
		s.Batch = 20
	}
}

// Init prepares the sender; Run and RunOnce call it.
func (s *Sender) Init() { s.defaults() }

// Wake asks the sender to look at the outbox now.
func (s *Sender) Wake() {
	if s == nil || s.wake == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run works the outbox until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	s.defaults()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		n, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.Logger.Warn("mail outbox", zap.Error(err))
		}
		next := s.Interval
		if n == s.Batch && err == nil {
			next = 0 // more are due
		}
		t.Reset(next)
	}
}

// RunOnce claims one batch and settles it, returning how many it claimed.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	s.defaults()
	now := s.now()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	batch, err := s.Queue.ClaimMail(cctx, s.owner, now, s.Lease, s.Batch)
	cancel()
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, m := range batch {
		errs = append(errs, s.settle(ctx, m))
	}
	return len(batch), errors.Join(errs...)
}

func (s *Sender) settle(ctx context.Context, m store.Mail) error {
	sctx, cancel := context.WithTimeout(ctx, s.Lease/2)
	err := s.Transport.Send(sctx, m)
	cancel()
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer dcancel()
	if err == nil {
		ok, derr := s.Queue.MailSent(dctx, m.ID, s.owner)
		if derr != nil {
			// Sent, but still queued: it will go again once the lease
			// runs out, with the same Message-ID.
			return fmt.Errorf("message %d sent but not removed: %w", m.ID, derr)
		}
		if ok && s.Sent != nil {
			s.Sent(m)
		}
		return nil
	}
	reason := oneLine(err.Error())
	var perm permanentError
	if errors.As(err, &perm) || s.now().Sub(m.CreatedAt) > s.MaxAge {
		if _, derr := s.Queue.MailSent(dctx, m.ID, s.owner); derr != nil {
			return derr
		}
		if s.Dropped != nil {
			s.Dropped(m, reason)
		}
		s.Logger.Error("mail notice dropped", zap.Int64("id", m.ID), zap.String("kind", m.Kind), zap.String("reason", reason))
		return nil
	}
	backoff := s.RetryMin
	for i := 0; i < m.Attempts && backoff < s.RetryMax; i++ {
		backoff *= 2
	}
	backoff = min(backoff, s.RetryMax)
	s.Logger.Warn("mail relay refused or unreachable; will retry", zap.Int64("id", m.ID), zap.String("kind", m.Kind),
		zap.Int("attempts", m.Attempts+1), zap.Duration("retry_in", backoff), zap.String("error", reason))
	return s.Queue.MailFailed(dctx, m.ID, s.owner, s.now().Add(backoff), reason)
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
