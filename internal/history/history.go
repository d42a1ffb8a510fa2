// Package history keeps a bounded copy of the audit trail in the account
// database: the security-event history the help-desk console shows per
// account, on every node of a cluster. The audit log stays the system of
// record; the history is what a technician looks at.
//
// Audit entries are written on request goroutines, some on the hot path
// (a card's first grant) and many by clients nobody has identified yet
// (refusals). So the Recorder's Tap never blocks and never does I/O: it
// copies the entry onto a bounded queue, and one goroutine writes the
// queue to the database in batches. When the queue is full (the database
// is slow or down, or a flood of refusals), entries are dropped from the
// history, counted and logged, and still written to the audit log.
//
// The history is pruned by age and by count, so it cannot grow without
// bound however many events a client causes.
package history

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cacgate/cacgate/internal/store"
)

// Store is what the Recorder needs of the account database.
type Store interface {
	RecordSecurityEvents(ctx context.Context, events []store.SecurityEvent) error
	PruneSecurityEvents(ctx context.Context, before time.Time, keep int) (int64, error)
}

// Defaults of Config.
const (
	DefaultMaxAge    = 90 * 24 * time.Hour
	DefaultMaxEvents = 1_000_000
	DefaultQueue     = 4096
	batchSize        = 256
	pruneEvery       = 10 * time.Minute
	writeTimeout     = 10 * time.Second
	// dropLogEvery bounds the log lines about dropped entries.
	dropLogEvery = time.Minute
)

// Config configures a Recorder.
type Config struct {
	Store  Store
	Logger *zap.Logger
	// MaxAge and MaxEvents bound the history: older events, and all but
	// the newest MaxEvents, are pruned every ten minutes (on a cluster
	// every node prunes the one shared history, harmlessly).
	MaxAge    time.Duration
	MaxEvents int
	// Queue bounds the entries waiting to be written.
	Queue int
	// Dropped, if set, is called for each entry not kept (a metric).
	Dropped func()
	// NoPrune leaves pruning to others (the CLI, which runs briefly,
	// leaves it to the servers).
	NoPrune bool
}

// Recorder copies audit entries into the account database.
type Recorder struct {
	cfg     Config
	queue   chan entry
	dropped atomic.Int64
	// pending counts entries taken off the queue and not yet written
	// (or given up), for Flush.
	pending atomic.Int64
}

type entry struct {
	event, outcome string
	at             time.Time
	fields         []zap.Field
}

// New returns a Recorder; Run starts it.
func New(cfg Config) *Recorder {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Recorder{cfg: cfg, queue: make(chan entry, cfg.Queue)}
}

// Tap is the audit.Log's Tap: it queues a copy of the entry, or drops it
// when the queue is full. It never blocks.
func (r *Recorder) Tap(event, outcome string, at time.Time, fields []zap.Field) {
	e := entry{event: event, outcome: outcome, at: at, fields: append([]zap.Field(nil), fields...)}
	r.pending.Add(1)
	select {
	case r.queue <- e:
	default:
		r.pending.Add(-1)
		r.drop(1)
	}
}

func (r *Recorder) drop(n int) {
	r.dropped.Add(int64(n))
	if r.cfg.Dropped != nil {
		for range n {
			r.cfg.Dropped()
		}
	}
}

// Dropped returns how many entries the history did not keep.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Run writes queued entries until ctx is done, then writes what is still
// queued (bounded by a short deadline) and returns. It prunes the history
// when it starts and every ten minutes.
func (r *Recorder) Run(ctx context.Context) {
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	r.prune(ctx)
	var lastDropLog time.Time
	var droppedLogged int64
	for {
		select {
		case <-ctx.Done():
			r.drain()
			return
		case <-prune.C:
			r.prune(ctx)
		case e := <-r.queue:
			batch := r.collect(e)
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			r.write(wctx, batch)
			cancel()
		}
		if d := r.dropped.Load(); d > droppedLogged && time.Since(lastDropLog) >= dropLogEvery {
			r.cfg.Logger.Warn("security-event history: entries not kept (queue full or database unavailable); the audit log has them all",
				zap.Int64("dropped_since_start", d))
			lastDropLog, droppedLogged = time.Now(), d
		}
	}
}

// collect takes first and whatever else is queued, up to a batch.
func (r *Recorder) collect(first entry) []entry {
	batch := []entry{first}
	for len(batch) < batchSize {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// drain writes what is queued when the recorder stops, within a deadline.
func (r *Recorder) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range r.cfg.Queue/batchSize + 1 {
		select {
		case e := <-r.queue:
			r.write(ctx, r.collect(e))
		default:
			return
		}
	}
}

func (r *Recorder) write(ctx context.Context, batch []entry) {
	defer r.pending.Add(-int64(len(batch)))
	events := make([]store.SecurityEvent, 0, len(batch))
	for _, e := range batch {
		events = append(events, Encode(e.event, e.outcome, e.at, e.fields))
	}
	if err := r.cfg.Store.RecordSecurityEvents(ctx, events); err != nil {
		r.drop(len(batch))
		r.cfg.Logger.Debug("security-event history: writing a batch failed", zap.Int("entries", len(batch)),
			zap.String("cause", store.Cause(err)), zap.Error(err))
	}
}

func (r *Recorder) prune(ctx context.Context) {
	if r.cfg.NoPrune {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := r.cfg.Store.PruneSecurityEvents(pctx, time.Now().Add(-r.cfg.MaxAge), r.cfg.MaxEvents)
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.Warn("security-event history: pruning failed; trying again in ten minutes", zap.String("cause", store.Cause(err)), zap.Error(err))
		}
		return
	}
	if n > 0 {
		r.cfg.Logger.Debug("security-event history pruned", zap.Int64("deleted", n))
	}
}

// Flush waits until every entry queued so far is written (or given up),
// or ctx is done. For tests and for callers that want to read what they
// just caused.
func (r *Recorder) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for r.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Encode turns an audit entry into a history row: every field, as the
// audit logger wrote it, in a JSON object, and the identifiers the console
// searches by in columns of their own.
func Encode(event, outcome string, at time.Time, fields []zap.Field) store.SecurityEvent {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	ev := store.SecurityEvent{At: at, Event: event, Outcome: outcome}
	ev.Username, _ = enc.Fields["username"].(string)
	ev.EDIPI, _ = enc.Fields["edipi"].(string)
	ev.SourceIP, _ = enc.Fields["source_ip"].(string)
	if ev.SourceIP == "" {
		ev.SourceIP, _ = enc.Fields["admin_source"].(string)
	}
	ev.Node, _ = enc.Fields["node"].(string)
	body, err := json.Marshal(enc.Fields)
	if err != nil {
		body, _ = json.Marshal(map[string]string{"event": event, "outcome": outcome, "encoding_error": err.Error()})
	}
	ev.Fields = string(body)
	return ev
}
