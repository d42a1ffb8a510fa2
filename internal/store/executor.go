package store

import (
	"context"
	"database/sql"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// executor runs the store's portable SQL, written with '?' placeholders, on
// a pool or in a transaction. Routing every statement through it means no
// call site can forget to translate placeholders for the dialect.
type executor struct {
	q      querier
	rebind func(query string) string
}

func (e executor) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return e.q.ExecContext(ctx, e.rebind(query), args...)
}

func (e executor) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return e.q.QueryContext(ctx, e.rebind(query), args...)
}

func (e executor) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return e.q.QueryRowContext(ctx, e.rebind(query), args...)
}

// execOne runs a statement expected to change exactly one row and reports
// ErrNotFound when it changed none.
func (e executor) execOne(ctx context.Context, query string, args ...any) error {
	res, err := e.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
