package store

// dialect holds what differs between the SQL databases the store runs on.
// Everything else (queries, transactions, error mapping) is shared, so a new
// backend is one more dialect value plus a migrations/<name> directory whose
// DDL spells the column types that database's way (the id column above all).
type dialect struct {
	// name selects the migrations/<name> directory.
	name string

	// rebind rewrites a query written with '?' placeholders into the
	// driver's placeholder style.
	rebind func(query string) string

	// uniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
	// violation and, if so, which one as "table.column", or
	// "table.a, table.b" for a constraint over several columns in the
	// order the DDL lists them (the keys of errorForUnique).
	uniqueViolation func(err error) (constraint string, ok bool)

	// foreignKeyViolation reports whether err is a FOREIGN KEY violation:
	// a card pointed at an account that does not exist.
	foreignKeyViolation func(err error) bool

	// migrationLock, if not empty, is run first in every migration
	// transaction so that processes migrating the same database at once
	// take turns. SQLite needs none: its write transactions begin
	// IMMEDIATE and so already exclude one another.
	migrationLock string

	// notifySQL, if not empty, announces a Change (its one argument, JSON)
	// to other processes; see SQLStore.announce.
	notifySQL string

	// changes, if not nil, delivers the Changes that notifySQL announces;
	// see SQLStore.Watch.
	changes changeFeed
	// origin, with notifySQL, names this store in the Changes it
	// announces: random, one per open store.
	origin string
}
