package store

import (
	"context"
	"strconv"
)

// bulkTuning prepares a write connection for a large import, before the
// import's transaction begins, and returns what puts the connection back
// as it was. It is keyed by dialect name rather than held in the dialect
// struct because ImportAccounts alone uses it; a dialect without one needs
// none (PostgreSQL sizes its buffers server-wide).
var bulkTuning = map[string]func(ctx context.Context, ex executor) (restore func() error, err error){
	sqliteDialect.name: sqliteBulkLoad,
}

// sqliteBulkCacheKiB is the page cache an import may use, against
// SQLite's default of 2 MB. The indexes a large import grows soon exceed
// the default, and every page that no longer fits is written out and read
// back: a million-account import then spends a third of its time in system
// calls and takes twice as long. The sort of the staged cards also stays
// in memory up to this size. Measured on a million accounts, 16 MB already
// recovers most of the time and 64 MB all of it, for about 300 MB of peak
// memory (a larger cache bought nothing and 256 MB took a gigabyte). The
// memory is taken only as pages are used and given back when the import
// ends.
const sqliteBulkCacheKiB = 64 << 10

// sqliteBulkLoad enlarges the connection's page cache, outside any
// transaction, and returns what restores it.
func sqliteBulkLoad(ctx context.Context, ex executor) (func() error, error) {
	var cacheSize int64
	if err := ex.queryRow(ctx, `PRAGMA cache_size`).Scan(&cacheSize); err != nil {
		return nil, err
	}
	// PRAGMA arguments cannot be bound; only integers, the constant and
	// the one SQLite reported, are spliced in.
	if _, err := ex.exec(ctx, `PRAGMA cache_size = -`+strconv.Itoa(sqliteBulkCacheKiB)); err != nil {
		return nil, err
	}
	return func() error {
		// Also after the import's context is cancelled: the pool keeps
		// this connection, which must not keep the large cache.
		_, err := ex.exec(context.WithoutCancel(ctx), `PRAGMA cache_size = `+strconv.FormatInt(cacheSize, 10))
		return err
	}, nil
}
