package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Readers racing to prepare the same statements must all get answers.
func TestConcurrentReads(t *testing.T) { forEachBackend(t, testConcurrentReads) }

func testConcurrentReads(t *testing.T, be backend) {
	const readers, lookups, accounts = 8, 25, 10
	s := be.openStore(t)
	seedAccounts(t, s, accounts)

	var wg sync.WaitGroup
	errs := make(chan error, readers*lookups)
	for r := range readers {
		wg.Go(func() {
			for i := range lookups {
				name := fmt.Sprint("seed", (r+i)%accounts)
				a, err := s.AccountByFingerprint(context.Background(), fingerprint(name))
				if err == nil && a.Username != name {
					err = fmt.Errorf("card of %s resolved to %s", name, a.Username)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStmtCacheReportsPrepareErrors(t *testing.T) {
	forEachBackend(t, testStmtCacheReportsPrepareErrors)
}

func testStmtCacheReportsPrepareErrors(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	const bad = `SELECT no_such_column FROM accounts`

	var v int
	if err := s.reads().queryRow(ctx, bad).Scan(&v); err == nil {
		t.Error("queryRow with invalid SQL succeeded")
	}
	if _, err := s.reads().query(ctx, bad); err == nil {
		t.Error("query with invalid SQL succeeded")
	}
	if _, ok := s.readStmts.stmts.Load(bad); ok {
		t.Error("a statement that failed to prepare was cached")
	}
}
