package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
)

// Manager owns the password sessions of one gateway process.
//
// The session token is a signed cookie that any node verifies on its own,
// so deleting the browser's cookie at sign-out would leave a copy taken
// earlier valid until the token expired. Ending a session therefore
// records its ID in the account database (store.SessionEnder), which tells
// the other nodes through the change feed; every node refuses the
// session's tokens, renewed ones included, from then on. Nodes that
// cannot be told (SQLite shared by several processes) find out when they
// next verify the token, within the cache's lifetime.
type Manager struct {
	tokens *Tokens
	store  store.SessionEnder
	// lru remembers verified tokens, each for at most ttl after it was
	// checked against the store (entries age by the caller's clock, so
	// the cache runs no timer that would outlive the config).
	lru    *lru.Cache[string, *cachedSession]
	ttl    time.Duration
	ended  sync.Map // session ID -> time.Time: signed out, refused until then
	logger *zap.Logger
}

// NewManager returns a manager remembering at most size verified tokens,
// each for at most ttl, and recording ends in st (which every account
// store provides). logger may be nil.
func NewManager(tokens *Tokens, st store.SessionEnder, size int, ttl time.Duration, logger *zap.Logger) *Manager {
	if logger == nil {
		logger = zap.NewNop()
	}
	c, err := lru.New[string, *cachedSession](size)
	if err != nil {
		panic(err) // only for size <= 0, which callers validate
	}
	return &Manager{tokens: tokens, store: st, lru: c, ttl: ttl, logger: logger}
}

type cachedSession struct {
	Session
	checkedAt time.Time
}

// Tokens returns the manager's token signer.
func (m *Manager) Tokens() *Tokens { return m.tokens }

// Session returns the session of a valid token: unexpired, not idle past
// its deadline and not ended. A token not yet cached is checked against
// the store's record of ended sessions before it is remembered; the error
// reports that the store could not say, and the token is refused.
func (m *Manager) Session(ctx context.Context, token string, now time.Time) (Session, bool, error) {
	if token == "" {
		return Session{}, false, nil
	}
	var s Session
	c, ok := m.lru.Get(token)
	if ok && now.Sub(c.checkedAt) < m.ttl {
		s = c.Session
	} else {
		var err error
		if s, err = m.tokens.Verify(token, now); err != nil {
			return Session{}, false, nil
		}
		if !m.isEnded(s.ID, now) {
			ended, err := m.store.SessionEnded(ctx, s.ID)
			if err != nil {
				return Session{}, false, err
			}
			if ended {
				m.End(s.ID, s.Expires, now)
			}
		}
		m.lru.Add(strings.Clone(token), &cachedSession{Session: s, checkedAt: now})
	}
	if !s.Valid(now) || m.isEnded(s.ID, now) {
		return Session{}, false, nil
	}
	return s, true, nil
}

// User returns the username of a valid session token; a session whose
// state cannot be checked counts as none.
func (m *Manager) User(ctx context.Context, token string, now time.Time) (string, bool) {
	s, ok, err := m.Session(ctx, token, now)
	return s.Username, ok && err == nil
}

// End refuses session id's tokens on this node from now until expires,
// when they die anyway: for a session ended elsewhere (the change feed)
// or here. Records of sessions already over are swept at the same time:
// sign-outs are rare, so this stays small.
func (m *Manager) End(id string, expires, now time.Time) {
	m.ended.Store(id, expires)
	m.ended.Range(func(k, v any) bool {
		if !now.Before(v.(time.Time)) {
			m.ended.Delete(k)
		}
		return true
	})
}

func (m *Manager) isEnded(id string, now time.Time) bool {
	v, ok := m.ended.Load(id)
	return ok && now.Before(v.(time.Time))
}

// Purge forgets every verified token, so each is checked again against the
// store on its next use: for when notices of ended sessions may have been
// missed.
func (m *Manager) Purge() { m.lru.Purge() }

// EndEverywhere signs session s out on every node. This node refuses it at
// once; the error reports that the store did not record it, so other
// nodes may accept the session's tokens until they expire.
func (m *Manager) EndEverywhere(ctx context.Context, s Session, now time.Time) error {
	m.End(s.ID, s.Expires, now)
	return m.store.EndSession(ctx, s.ID, s.Expires)
}

// Start signs username in: a new session of ttl (and idle limit idle). With
// limit positive the session is recorded in the store and that person's
// oldest sessions beyond limit end, here at once and on the other nodes
// through the change feed; they are returned for the caller to audit. An
// error means no session: without the record a limit cannot hold.
func (m *Manager) Start(ctx context.Context, username string, now time.Time, ttl, idle time.Duration, limit int) (s Session, token string, ended []store.LiveSession, err error) {
	s, token, err = m.tokens.New(username, now, ttl, idle)
	if err != nil {
		return Session{}, "", nil, err
	}
	if limit <= 0 {
		return s, token, nil, nil
	}
	ended, err = m.store.StartSession(ctx, store.LiveSession{ID: s.ID, Username: s.Username, Created: now, Expires: s.Expires}, limit, now)
	if err != nil {
		return Session{}, "", nil, err
	}
	for _, old := range ended {
		m.End(old.ID, old.Expires, now)
	}
	return s, token, ended, nil
}

// RenewAfter is how stale an idle deadline may get before a request renews
// it: re-signing the cookie on every request would cost a signature each,
// so the idle limit is kept to within this.
const RenewAfter = time.Minute

// Renew returns a fresh token for s when its idle deadline is more than
// RenewAfter old (idle is the site's idle limit), and "" when no renewal
// is due. A failure leaves the session valid until its current deadline.
func (m *Manager) Renew(s Session, now time.Time, idle time.Duration) (string, error) {
	if idle <= 0 || s.IdleUntil.Sub(now) > idle-RenewAfter || !s.IdleUntil.Before(s.Expires) {
		return "", nil
	}
	return m.tokens.Renew(s, now, idle)
}

// PruneInterval is how often Run deletes the records of sessions over.
const PruneInterval = 10 * time.Minute

// pruneTimeout bounds one pruning run.
const pruneTimeout = 30 * time.Second

// Run deletes the store's records of sessions (ended or live) once they
// have expired, every interval until ctx is done. Nothing depends on
// pruning but a table's size, so a failed run is logged and the next tick
// tries again.
func (m *Manager) Run(ctx context.Context, interval time.Duration, now func() time.Time) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pruneTimeout)
		n, err := m.store.PruneEndedSessions(pctx, now())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled):
			m.logger.Warn("pruning ended sessions", zap.Error(err))
		case n > 0:
			m.logger.Debug("pruned ended sessions", zap.Int64("deleted", n))
		}
	}
}
