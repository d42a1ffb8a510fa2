package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const (
	selectSecretSQL = `SELECT value FROM secrets WHERE name = ?`

	// DO NOTHING lets every racer but the first insert nothing, without an
	// error, and then read back the winner's value.
	insertSecretSQL = `
INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING`
)

// errEmptySecret guards against a generator bug that would otherwise be
// stored, and shared by every node, for good.
var errEmptySecret = errors.New("generated secret is empty")

// EnsureSecret implements Store.
func (s *SQLStore) EnsureSecret(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error) {
	// Nearly always the secret exists; finding it takes no write lock and
	// spends no randomness.
	value, err := s.secret(ctx, name)
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}

	fresh, err := generate()
	if err == nil && len(fresh) == 0 {
		err = errEmptySecret
	}
	if err != nil {
		return nil, fmt.Errorf("store: generate secret %q: %w", name, err)
	}
	if _, err := s.writes().exec(ctx, insertSecretSQL, name, fresh, now().Unix()); err != nil {
		return nil, fmt.Errorf("store: create secret %q: %w", name, err)
	}
	// Whichever insert won, the stored value is the one all must use.
	value, err = s.secret(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	return value, nil
}

func (s *SQLStore) secret(ctx context.Context, name string) ([]byte, error) {
	var value []byte
	err := s.reads().queryRow(ctx, selectSecretSQL, name).Scan(&value)
	return value, err
}
