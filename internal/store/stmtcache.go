package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache is a querier that prepares each query once and reuses the
// statement from then on. Parsing and planning is most of the cost of the
// store's reads (about two thirds of a sign-in lookup on SQLite), and the
// store only ever runs constant queries, so the cache stays small.
// database/sql re-prepares a statement on each connection of the pool as
// needed.
type stmtCache struct {
	db    *sql.DB
	stmts sync.Map // query string -> *sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db}
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if winner, lost := c.stmts.LoadOrStore(query, st); lost {
		st.Close() // another goroutine prepared the same query first
		return winner.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		// A *sql.Row can only carry an error that database/sql put there,
		// so run the query unprepared and let it fail the same way.
		return c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Close closes the cached statements, not the pool.
func (c *stmtCache) Close() error {
	var errs []error
	c.stmts.Range(func(query, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		c.stmts.Delete(query)
		return true
	})
	return errors.Join(errs...)
}
