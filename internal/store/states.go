package store

import (
	"context"
	"fmt"
	"time"
)

// StateLedger records which sealed multi-step states (the enrollment's
// steps) were used, in the database every node reads, so that a state
// moves its flow on once however many times, and on however many nodes,
// it is posted.
type StateLedger interface {
	// UseState records that state id was used; expires is the state's own
	// expiry, until which the record is kept. It reports false, recording
	// nothing, when id was used before: of any number of concurrent uses
	// of one state, exactly one gets true.
	UseState(ctx context.Context, id string, expires time.Time) (bool, error)

	// UnuseState takes back a use of state id whose step did not happen
	// (the hasher was busy), so that the same state can be posted again.
	// Taking back an ID that is not recorded changes nothing.
	UnuseState(ctx context.Context, id string) error

	// PruneUsedStates deletes the records of states that expired before
	// before, and returns how many it deleted.
	PruneUsedStates(ctx context.Context, before time.Time) (int64, error)
}

var _ StateLedger = (*SQLStore)(nil)

// MaxStateIDLen is the longest state ID the store records.
const MaxStateIDLen = 64

const (
	useStateSQL = `
INSERT INTO used_states (id, expires_at) VALUES (?, ?)
ON CONFLICT (id) DO NOTHING`
	unuseStateSQL      = `DELETE FROM used_states WHERE id = ?`
	pruneUsedStatesSQL = `DELETE FROM used_states WHERE expires_at < ?`
)

func checkStateID(id string) error {
	if id == "" || len(id) > MaxStateIDLen || !storableKey(id) {
		return fmt.Errorf("state ID must be 1 to %d bytes of text", MaxStateIDLen)
	}
	return nil
}

// UseState implements StateLedger.
func (s *SQLStore) UseState(ctx context.Context, id string, expires time.Time) (bool, error) {
	if err := checkStateID(id); err != nil {
		return false, fmt.Errorf("store: use state: %w", err)
	}
	res, err := s.writes().exec(ctx, useStateSQL, id, expires.Unix())
	if err != nil {
		return false, fmt.Errorf("store: use state: %w", s.dialect.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: use state: %w", err)
	}
	return n == 1, nil
}

// UnuseState implements StateLedger.
func (s *SQLStore) UnuseState(ctx context.Context, id string) error {
	if err := checkStateID(id); err != nil {
		return fmt.Errorf("store: unuse state: %w", err)
	}
	if _, err := s.writes().exec(ctx, unuseStateSQL, id); err != nil {
		return fmt.Errorf("store: unuse state: %w", s.dialect.translate(err))
	}
	return nil
}

// PruneUsedStates implements StateLedger.
func (s *SQLStore) PruneUsedStates(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writes().exec(ctx, pruneUsedStatesSQL, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: prune used states: %w", s.dialect.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune used states: %w", err)
	}
	return n, nil
}
