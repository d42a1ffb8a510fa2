package store

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrWatchUnsupported is what Watch returns for a database that cannot
// announce changes to other processes (SQLite): caches of other processes
// then learn of a change when their entries expire.
var ErrWatchUnsupported = errors.New("store: this database cannot announce changes to other processes")

// changeFeed follows the Changes a dialect's notifySQL announces.
type changeFeed interface {
	watch(ctx context.Context, fn func(Change), onError func(error))
}

// CanWatch reports whether Watch can follow changes on this store's
// database, that is, whether it is PostgreSQL.
func (s *SQLStore) CanWatch() bool {
	return s.dialect.changes != nil
}

// Watch calls fn with every Change that any process using the database,
// this one included, commits, until ctx is done; it then returns nil. It
// returns ErrWatchUnsupported at once if the database cannot announce
// changes (see CanWatch).
//
// Watch holds a connection of its own, outside the store's pool, and
// outlives Close: only ctx ends it. When that connection is lost it
// reconnects as soon as the database answers again: it tries again within
// a second, and every second after that, for as long as it takes, so it is
// never far behind the pool (which reconnects on demand). Changes
// committed while no connection listened are lost, so each time listening
// starts, the first time included (changes may have been committed before
// it began), fn is called with Change{Resync: true, Listening: true}:
// everything cached must be dropped. Changes this store announced itself
// come with Own set.
//
// fn is called from one goroutine, one Change at a time, in commit order.
// A notice that is not a well-formed Change is skipped: anyone who can
// connect to the database can send one.
func (s *SQLStore) Watch(ctx context.Context, fn func(Change)) error {
	return s.WatchWithErrors(ctx, fn, nil)
}

// WatchWithErrors is Watch that also tells onError, if not nil, why each
// connection failed or was lost, before trying again: from then until the
// next Change with Listening, changes made elsewhere go unannounced, and
// caches must not trust what they hold for long (see gateway.Core.Watch).
// onError is called from the goroutine that calls fn.
func (s *SQLStore) WatchWithErrors(ctx context.Context, fn func(Change), onError func(error)) error {
	if s.dialect.changes == nil {
		return ErrWatchUnsupported
	}
	s.dialect.changes.watch(ctx, fn, onError)
	return nil
}

// Watch's reconnection and health checks; see pgChangeFeed. The waits
// between attempts stay short: an attempt against a database that is down
// costs a refused connection, and every second the feed is behind the pool
// is a second in which another node's change can go unheard.
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = time.Second
	watchIdlePing   = 30 * time.Second
)

// pgChangeFeed follows ChangeChannel on PostgreSQL with LISTEN.
type pgChangeFeed struct {
	// config is for the listener's connection; never modified.
	config *pgx.ConnConfig
	// timeout bounds connecting, LISTEN, and each health check.
	timeout time.Duration
	// The wait before reconnecting starts at minBackoff and doubles after
	// each failure up to maxBackoff, with jitter, so that nodes which lost
	// the database together do not return to it in step.
	minBackoff, maxBackoff time.Duration
	// origin is the store's name in the notices it sends (see announcement).
	origin string
	// idlePing is how long the connection may stay silent before it is
	// checked: a server that vanished without closing the connection
	// (a network partition, a failed-over host) would otherwise leave
	// Watch waiting for notices that never come.
	idlePing time.Duration
}

func newPgChangeFeed(config *pgx.ConnConfig, timeout time.Duration, origin string) *pgChangeFeed {
	c := config.Copy()
	// Named apart from the pool's sessions in pg_stat_activity.
	c.RuntimeParams["application_name"] += "-listener"
	return &pgChangeFeed{
		config:     c,
		timeout:    timeout,
		minBackoff: watchMinBackoff,
		maxBackoff: watchMaxBackoff,
		idlePing:   watchIdlePing,
		origin:     origin,
	}
}

func (f *pgChangeFeed) watch(ctx context.Context, fn func(Change), onError func(error)) {
	backoff := f.minBackoff
	for {
		began := time.Now()
		err := f.listen(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		if onError != nil {
			onError(err)
		}
		if time.Since(began) > 2*f.maxBackoff {
			// The connection had been working: start the waits afresh.
			backoff = f.minBackoff
		}
		delay := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, f.maxBackoff)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// listen connects, listens, and passes on notices until the connection
// fails or ctx is done.
func (f *pgChangeFeed) listen(ctx context.Context, fn func(Change)) error {
	conn, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		conn.Close(closeCtx)
	}()
	fn(Change{Resync: true, Listening: true})
	for {
		n, idle, err := f.next(ctx, conn)
		if n != nil {
			if c, ok := decodeChange(n, f.origin); ok {
				fn(c)
			}
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case idle:
			pingCtx, cancel := context.WithTimeout(ctx, f.timeout)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("store: change listener: connection check: %w", err)
			}
		default:
			return fmt.Errorf("store: change listener: %w", err)
		}
	}
}

func (f *pgChangeFeed) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, f.config)
	if err != nil {
		return nil, fmt.Errorf("store: change listener: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ChangeChannel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("store: change listener: LISTEN: %w", err)
	}
	return conn, nil
}

// next waits up to idlePing for a notice; idle reports that the wait
// ended for lack of one. A wait that times out leaves the connection
// usable: pgx interrupts the read by a deadline, not by closing it.
func (f *pgChangeFeed) next(ctx context.Context, conn *pgx.Conn) (n *pgconn.Notification, idle bool, err error) {
	waitCtx, cancel := context.WithTimeout(ctx, f.idlePing)
	defer cancel()
	n, err = conn.WaitForNotification(waitCtx)
	idle = err != nil && ctx.Err() == nil && errors.Is(waitCtx.Err(), context.DeadlineExceeded)
	return n, idle, err
}

// decodeChange reads a notice as a Change, Own when it came from the store
// named origin. It reports false for notices on another channel and for
// payloads that are not JSON of a Change naming something to drop.
func decodeChange(n *pgconn.Notification, origin string) (Change, bool) {
	if n.Channel != ChangeChannel {
		return Change{}, false
	}
	var nc announcement
	if err := json.Unmarshal([]byte(n.Payload), &nc); err != nil {
		return Change{}, false
	}
	c := nc.Change
	// Listening is not part of a notice (json:"-"), so no sender can
	// claim it. Own only spares the change being counted as another
	// node's; it is applied all the same, so a forged origin gains nothing.
	own := origin != "" && nc.Origin == origin
	if c.Resync {
		return Change{Resync: true, Own: own}, true
	}
	if c.EndedSession != "" {
		if checkSessionID(c.EndedSession) != nil {
			return Change{}, false
		}
		return Change{EndedSession: c.EndedSession, EndedSessionExpires: c.EndedSessionExpires, Own: own}, true
	}
	if c.AccountID < 0 {
		return Change{}, false
	}
	if c.AccountID == 0 && c.Username == "" && c.EDIPI == "" && len(c.Fingerprints) == 0 {
		return Change{}, false
	}
	c.Own = own
	return c, true
}

// newOrigin names a store in the notices it sends: random, so that no two
// processes (or two stores of one process) share a name.
func newOrigin() string {
	var b [12]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
