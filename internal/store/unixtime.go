package store

import (
	"database/sql"
	"time"
)

// The schema stores times as whole Unix seconds in integer columns: every
// SQL database compares and indexes those the same way, unlike its native
// date types. "Never" is NULL.

func fromUnix(sec int64) time.Time {
	return time.Unix(sec, 0).UTC()
}

func unixOrNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

func fromUnixOrNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromUnix(n.Int64)
}

// unixCeil is t in whole seconds, rounded up: a deadline stored this way
// never comes early.
func unixCeil(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}
