package store

import (
	"context"
	"errors"
	"strconv"
)

// bulkDialect is what ImportAccounts does differently on each database. It
// lives here, keyed by dialect name, rather than in the dialect struct
// because ImportAccounts alone uses it.
type bulkDialect struct {
	// tune, if not nil, prepares a write connection for a large import
	// before the import's transaction begins, and returns what puts the
	// connection back as it was.
	tune func(ctx context.Context, ex executor) (restore func() error, err error)
	// insert is the verb the import's INSERTs begin with.
	insert string
	// undoByID says a batch whose INSERT failed is undone by deleting the
	// accounts added since the batch began (their cards go with them),
	// which needs a failed statement to leave the transaction usable and
	// the import to be the only writer, as on SQLite. Otherwise each batch
	// runs under a savepoint.
	undoByID bool
}

var bulkDialects = map[string]bulkDialect{
	// "INSERT OR FAIL" stops at a violated constraint, keeping the rows
	// inserted before it, instead of undoing the statement: so SQLite
	// keeps no statement journal, a copy of every page the INSERT
	// touches, which for cards keyed by a random hash is a page per card
	// and about a sixth of the import's time. Nothing partial survives:
	// undoBatch deletes the batch, and an import that fails rolls back.
	sqliteDialect.name: {tune: sqliteBulkLoad, insert: "INSERT OR FAIL", undoByID: true},
}

func bulkDialectOf(d dialect) bulkDialect {
	if b, ok := bulkDialects[d.name]; ok {
		return b
	}
	return bulkDialect{insert: "INSERT"}
}

// sqliteBulkCacheKiB is the page cache an import may use. SQLite's default
// of 2 MB is far smaller than the indexes a large import grows, and cards
// are keyed by a random hash, so nearly every card inserted would touch a
// page no longer cached: reading pages back, and spilling dirty ones into
// the WAL before the commit, makes a million-account import about twice
// as slow. The memory is taken only as the pages are used, and given back
// when the cache size is restored.
const sqliteBulkCacheKiB = 256 << 10

// sqliteBulkLoad enlarges the connection's page cache and keeps any
// statement journal in memory rather than in a temporary file. Both must be set outside a transaction (SQLite refuses to change
// temp_store within one).
func sqliteBulkLoad(ctx context.Context, ex executor) (func() error, error) {
	var cacheSize, tempStore int64
	if err := ex.queryRow(ctx, `PRAGMA cache_size`).Scan(&cacheSize); err != nil {
		return nil, err
	}
	if err := ex.queryRow(ctx, `PRAGMA temp_store`).Scan(&tempStore); err != nil {
		return nil, err
	}
	restore := func() error {
		// Also after the import's context is cancelled: the pool keeps
		// this connection, which must not keep a quarter gigabyte of cache.
		ctx := context.WithoutCancel(ctx)
		// PRAGMA arguments cannot be bound; only integers read back from
		// SQLite itself are spliced in.
		_, err1 := ex.exec(ctx, `PRAGMA cache_size = `+strconv.FormatInt(cacheSize, 10))
		_, err2 := ex.exec(ctx, `PRAGMA temp_store = `+strconv.FormatInt(tempStore, 10))
		return errors.Join(err1, err2)
	}
	_, err1 := ex.exec(ctx, `PRAGMA cache_size = -`+strconv.Itoa(sqliteBulkCacheKiB))
	_, err2 := ex.exec(ctx, `PRAGMA temp_store = MEMORY`)
	if err := errors.Join(err1, err2); err != nil {
		return nil, errors.Join(err, restore())
	}
	return restore, nil
}
