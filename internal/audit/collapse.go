package audit

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Repeated refusals. A client can be refused on every request it sends (a
// self-signed certificate on a site that explains refusals, a path that
// is refused), and each refusal is a security event; written in full each
// time, one client would write kilobytes of audit per request without
// limit. So a refusal repeated for the same key (the same certificate and
// reason, say) from the same address within a window is written once in
// full, as it happens, and the repeats as one entry with their count when
// the window ends. Nothing is lost: every refusal is counted, the first of
// each series is written whole.

// collapser remembers the open series.
type collapser struct {
	window time.Duration
	mu     sync.Mutex
	series map[string]*series
}

type series struct {
	event, outcome string
	fields         []zap.Field // the first entry's, without the request's own
	first, until   time.Time
	repeats        int
}

// maxSeries bounds the open series: past it, refusals are written in full
// (still with their text fields cut), rather than forgotten.
const maxSeries = 10000

// CollapseRepeats starts collapsing repeated refusals (RequestRepeatable)
// within window, until ctx is done, when the open series are written.
// Without it every refusal is written in full.
func (l *Log) CollapseRepeats(ctx context.Context, window time.Duration) {
	c := &collapser{window: window, series: map[string]*series{}}
	l.repeats.Store(c)
	go func() {
		t := time.NewTicker(window / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				l.flush(c, time.Time{})
				return
			case now := <-t.C:
				l.flush(c, now)
			}
		}
	}()
}

// RequestRepeatable is Request for a refusal a client can repeat at will:
// the first of a series (same key, same source address) within the window
// is written at once, in full; the rest are counted and written as one
// entry ("repeats": N, "first_time") when the window has passed.
func (l *Log) RequestRepeatable(r *http.Request, key, event, outcome string, fields ...zap.Field) {
	c := l.repeats.Load()
	if c == nil {
		l.Request(r, event, outcome, fields...)
		return
	}
	ip := l.ClientIP(r)
	k := event + "\x00" + key + "\x00" + ip
	now := time.Now()
	c.mu.Lock()
	if s, ok := c.series[k]; ok && now.Before(s.until) {
		s.repeats++
		c.mu.Unlock()
		return
	}
	open := len(c.series) < maxSeries
	if open {
		c.series[k] = &series{event: event, outcome: outcome, first: now, until: now.Add(c.window),
			fields: append(append([]zap.Field{}, fields...), zap.String("source_ip", ip), zap.String("host", r.Host))}
	}
	c.mu.Unlock()
	l.Request(r, event, outcome, fields...)
}

// flush writes the series whose window ended before now (all of them when
// now is zero) that had repeats, and forgets them.
func (l *Log) flush(c *collapser, now time.Time) {
	var done []*series
	c.mu.Lock()
	for k, s := range c.series {
		if now.IsZero() || !now.Before(s.until) {
			delete(c.series, k)
			if s.repeats > 0 {
				done = append(done, s)
			}
		}
	}
	c.mu.Unlock()
	for _, s := range done {
		l.Write(s.event, s.outcome, append(s.fields,
			zap.Int("repeats", s.repeats),
			zap.String("first_time", s.first.UTC().Format(time.RFC3339Nano)),
			zap.String("window_end", s.until.UTC().Format(time.RFC3339Nano)))...)
	}
}
