package store

import (
	"context"
	"encoding/json"
)

// Change tells caches in other processes that an account or some cards
// changed: a status set, a card linked or unlinked, an account created or
// its groups edited. Caches drop what they hold under these keys; the
// account's new state is read from the store on the next request.
type Change struct {
	AccountID int64  `json:"account_id,omitempty"`
	Username  string `json:"username,omitempty"`
	EDIPI     string `json:"edipi,omitempty"`
	// Kind and Key are the account's credential kind and key when it is
	// not a DoD account (whose key is its EDIPI, above): a card of that
	// credential may now link to it.
	Kind string `json:"kind,omitempty"`
	Key  string `json:"key,omitempty"`
	// Fingerprints are the cards concerned: all of the account's cards, and
	// any card linked or unlinked by the change.
	Fingerprints []string `json:"fingerprints,omitempty"`

	// EndedSession is a password session that was signed out, and
	// EndedSessionExpires its own end (Unix seconds): caches must refuse
	// its tokens until then.
	EndedSession        string `json:"ended_session,omitempty"`
	EndedSessionExpires int64  `json:"ended_session_expires,omitempty"`

	// Announcements means the announcements changed: every node reads
	// them again.
	Announcements bool `json:"announcements,omitempty"`

	// Resync means changes may have been missed (the listener reconnected,
	// or a change named too many cards to list): every cached mapping must
	// be dropped.
	Resync bool `json:"resync,omitempty"`

	// Listening is set, with Resync, on the Change Watch delivers each
	// time its connection starts listening: the feed is (again) complete
	// from here on. Never announced.
	Listening bool `json:"-"`
	// Own is set by Watch on a change this store announced itself: the
	// process already knew of it when it made it.
	Own bool `json:"-"`
}

// announcement is a Change as announced: Origin names the store that made it, so
// that its own watcher can tell its changes from other processes'.
type announcement struct {
	Change
	Origin string `json:"origin,omitempty"`
}

// changeOf is the Change that describes a write to a, plus any cards named
// in extra that a no longer holds (a card just unlinked).
func changeOf(a *Account, extra ...string) Change {
	c := Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI}
	if a.Kind != "" && a.Kind != KindCAC {
		c.Kind, c.Key = a.Kind, a.Key
	}
	for _, card := range a.Cards {
		c.Fingerprints = append(c.Fingerprints, card.Fingerprint)
	}
	c.Fingerprints = append(c.Fingerprints, extra...)
	return c
}

// announce tells other processes of c through ex, when the dialect can:
// inside a transaction the notice is delivered only if, and when, it
// commits. Stores that cannot notify (SQLite) rely on the caches' TTL.
func (s *SQLStore) announce(ctx context.Context, ex executor, c Change) error {
	if s.dialect.notifySQL == "" {
		return nil
	}
	payload, err := json.Marshal(announcement{Change: c, Origin: s.dialect.origin})
	if err != nil {
		return err
	}
	if len(payload) > maxNotifyPayload {
		// Too many cards to list: ask for a full resync instead.
		payload, err = json.Marshal(announcement{Change: Change{Resync: true}, Origin: s.dialect.origin})
		if err != nil {
			return err
		}
	}
	_, err = ex.exec(ctx, s.dialect.notifySQL, string(payload))
	return err
}

// maxNotifyPayload stays under PostgreSQL's 8000-byte NOTIFY payload limit.
const maxNotifyPayload = 7900

// ChangeChannel is the PostgreSQL NOTIFY channel changes are announced on.
const ChangeChannel = "cacgate_changes"
