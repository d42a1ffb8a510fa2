package store

import (
	"context"
	"encoding/json"
	"testing"
)

// recordChanges makes s announce its Changes into a table, in the writing
// transaction as a notifying dialect would, and returns a function reading
// back what was announced so far (in no particular order). A write that rolls back leaves nothing
// there, exactly as PostgreSQL drops the NOTIFY of an aborted transaction.
func recordChanges(t *testing.T, s *SQLStore) func() []Change {
	t.Helper()
	ctx := context.Background()
	if _, err := s.writes().exec(ctx, `CREATE TABLE test_changes (payload TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	s.dialect.notifySQL = `INSERT INTO test_changes (payload) VALUES (?)`
	return func() []Change {
		t.Helper()
		rows, err := s.writes().query(ctx, `SELECT payload FROM test_changes`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var changes []Change
		for rows.Next() {
			var payload string
			var c Change
			if err := rows.Scan(&payload); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(payload), &c); err != nil {
				t.Fatal(err)
			}
			changes = append(changes, c)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return changes
	}
}
