package admin

import (
	"context"
	"encoding/pem"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// fixture is a Service on a fresh SQLite store, with its audit events and
// Invalidate calls recorded.
type fixture struct {
	svc         *Service
	store       *store.SQLStore
	events      *observer.ObservedLogs
	invalidated int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	core, events := observer.New(zapcore.InfoLevel)
	f := &fixture{store: st, events: events}
	f.svc = &Service{Store: st, Audit: audit.New(zap.New(core), "node-1"), Invalidate: func() { f.invalidated++ }}
	return f
}

// last is the newest audit event named event, as a map of its fields.
func (f *fixture) last(t *testing.T, event string) map[string]any {
	t.Helper()
	all := f.events.FilterMessage(event).AllUntimed()
	if len(all) == 0 {
		t.Fatalf("no %s audit event", event)
	}
	return all[len(all)-1].ContextMap()
}

var testWho = Actor{Identity: "cli:tester@host", Source: "host"}

var pki struct {
	once sync.Once
	p    *testpki.PKI
	err  error
}

// testCard is a card of a test PKI generated once per run.
func testCard(t *testing.T, name string) *testpki.Card {
	t.Helper()
	pki.once.Do(func() { pki.p, pki.err = testpki.Generate(testpki.Options{}) })
	if pki.err != nil {
		t.Fatal(pki.err)
	}
	c := pki.p.Card(name)
	if c == nil {
		t.Fatalf("test PKI has no card %q", name)
	}
	return c
}

func certPEM(c *testpki.Card) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}))
}

// status is the HTTP status of an operation's error (0 for none, 500 for
// an error that is not an *Error).
func status(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*Error); ok {
		return e.Status
	}
	return 500
}
