// Package mailtest runs a real SMTP server (emersion/go-smtp) in process
// for tests: STARTTLS with a test PKI's server certificate, PLAIN
// authentication, and every accepted message kept for assertions. It can be
// told to refuse mail (451, a relay outage) to test retries.
package mailtest

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data string // the whole message, headers and body
}

// Header returns the value of the first header field name ("" if none).
func (m Message) Header(name string) string {
	head, _, _ := strings.Cut(m.Data, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Server is a running SMTP server.
type Server struct {
	Addr     string // host:port
	Username string
	Password string

	srv      *smtp.Server
	mu       sync.Mutex
	messages []Message
	down     bool
	received chan struct{}
}

// Start runs a server on 127.0.0.1 with STARTTLS from cert, requiring
// PLAIN authentication as user/pass (empty user: none). It stops at the
// end of the test.
func Start(t testing.TB, cert tls.Certificate, user, pass string) *Server {
	t.Helper()
	s := &Server{Username: user, Password: pass, received: make(chan struct{}, 1000)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, authed: user == ""}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.srv = srv
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n := 0
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}

// SetDown makes the server refuse every message with 451 (true) or accept
// them again (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitFor waits until at least n messages were accepted, or the deadline
// passes (a generous one: tests run on busy machines), and returns them.
func (s *Server) WaitFor(t testing.TB, n int, deadline time.Duration) []Message {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		if got := s.Messages(); len(got) >= n {
			return got
		}
		if time.Now().After(end) {
			t.Fatalf("mailtest: %d messages after %v, want %d", len(s.Messages()), deadline, n)
		}
		select {
		case <-s.received:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var errDown = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "relay down for the test"}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.Username || password != ss.s.Password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.s.mu.Lock()
	down := ss.s.down
	ss.s.mu.Unlock()
	if down {
		return errDown
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: ss.to, Data: string(b)})
	ss.s.mu.Unlock()
	select {
	case ss.s.received <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }
