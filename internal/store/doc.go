// Package store keeps cacgate's accounts, the CAC certificates linked to
// them, and the server secrets every node must share, in a SQL database.
//
// The default backend is an embedded SQLite file ([OpenSQLite]).
// [OpenPostgres] serves a cluster of gateway nodes sharing one PostgreSQL
// database, and [SQLStore.Watch] tells each node of the changes the others
// commit. Both backends share the schema and every query, with the
// differences confined to an unexported dialect value and a per-dialect
// directory of migrations.
//
// The store enforces what the schema enforces (uniqueness, the set of
// statuses, the shape of a fingerprint) and nothing more: callers validate
// and normalise usernames and DoD IDs before they get here. Uniqueness is
// always decided by the database's constraints, never by looking first, so
// concurrent requests on one node or many cannot both win.
//
// Passwords and security answers arrive hashed by the caller: the store
// neither hashes nor verifies them, and an Account never carries a hash
// (Credentials returns them to the code that verifies). State that every
// node must agree on, such as failed sign-ins and lockouts, lives in the
// database and changes in single atomic statements or write transactions.
package store
