package history

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

type fakeStore struct {
	mu      sync.Mutex
	events  []store.SecurityEvent
	fail    bool
	block   chan struct{}
	pruned  int
	keepArg int
}

func (f *fakeStore) RecordSecurityEvents(ctx context.Context, events []store.SecurityEvent) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("database down")
	}
	f.events = append(f.events, events...)
	return nil
}

func (f *fakeStore) PruneSecurityEvents(_ context.Context, _ time.Time, keep int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruned++
	f.keepArg = keep
	return 0, nil
}

func (f *fakeStore) recorded() []store.SecurityEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.SecurityEvent(nil), f.events...)
}

// Every field the audit logger writes reaches the history, with the
// identifiers in their own columns.
func TestRecorderKeepsWholeEntries(t *testing.T) {
	fs := &fakeStore{}
	r := New(Config{Store: fs, MaxEvents: 7})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	log := audit.New(zap.NewNop(), "node-a")
	log.Tap = r.Tap
	log.Write("admin.account.disabled", audit.Success, zap.String("username", "john.q.doe"), zap.String("edipi", "1234567890"),
		zap.String("admin", "CN=X"), zap.String("admin_source", "192.0.2.9"), zap.Time("was", time.Unix(0, 0)), zap.Int("n", 3))
	flushCtx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	if err := r.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	got := fs.recorded()
	if len(got) != 1 {
		t.Fatalf("%d events recorded", len(got))
	}
	e := got[0]
	if e.Event != "admin.account.disabled" || e.Outcome != "success" || e.Username != "john.q.doe" || e.EDIPI != "1234567890" ||
		e.SourceIP != "192.0.2.9" || e.Node != "node-a" {
		t.Errorf("columns: %+v", e)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(e.Fields), &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"username", "edipi", "admin", "admin_source", "was", "n", "event", "outcome", "time", "node"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("field %s missing from %s", k, e.Fields)
		}
	}
	cancel()
	<-done
	if fs.pruned == 0 || fs.keepArg != 7 {
		t.Errorf("pruned %d times with keep %d", fs.pruned, fs.keepArg)
	}
}

// A full queue never blocks the caller: entries are dropped and counted.
func TestRecorderDropsWhenFull(t *testing.T) {
	fs := &fakeStore{block: make(chan struct{})}
	var dropped int
	var mu sync.Mutex
	r := New(Config{Store: fs, Queue: 4, Dropped: func() { mu.Lock(); dropped++; mu.Unlock() }})
	// Not running: nothing drains the queue.
	for range 10 {
		r.Tap("certificate.refused", audit.Failure, time.Now(), []zap.Field{zap.String("source_ip", "203.0.113.7")})
	}
	if r.Dropped() != 6 {
		t.Errorf("dropped %d, want 6", r.Dropped())
	}
	mu.Lock()
	defer mu.Unlock()
	if dropped != 6 {
		t.Errorf("metric counted %d, want 6", dropped)
	}
}

// A database that fails loses the batch from the history (counted), and
// the recorder goes on.
func TestRecorderSurvivesFailures(t *testing.T) {
	fs := &fakeStore{fail: true}
	r := New(Config{Store: fs})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.Tap("a", audit.Success, time.Now(), nil)
	flushCtx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	if err := r.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	if r.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", r.Dropped())
	}
	fs.mu.Lock()
	fs.fail = false
	fs.mu.Unlock()
	r.Tap("b", audit.Success, time.Now(), nil)
	if err := r.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	if got := fs.recorded(); len(got) != 1 || got[0].Event != "b" {
		t.Fatalf("after recovery: %+v", got)
	}
}
