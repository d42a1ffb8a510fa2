package store

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadMigrations(t *testing.T) {
	names := map[string][]string{}
	for _, d := range []dialect{sqliteDialect, postgresMigrationDialect} {
		migrations, err := loadMigrations(d.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(migrations) == 0 {
			t.Fatalf("%s: no migrations", d.name)
		}
		for i, m := range migrations {
			if m.version != i+1 {
				t.Errorf("%s: migration %s has version %d, want %d: versions must run 1, 2, 3...", d.name, m.name, m.version, i+1)
			}
			names[d.name] = append(names[d.name], m.name)
		}
	}
	// Each dialect spells the same schema its own way: every migration
	// exists for each, under the same name.
	if !slices.Equal(names["sqlite"], names["postgres"]) {
		t.Errorf("migrations differ between dialects:\n sqlite:   %v\n postgres: %v", names["sqlite"], names["postgres"])
	}
}

func appliedVersions(t *testing.T, s *SQLStore) []int {
	t.Helper()
	rows, err := s.reads().query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions
}

func assertFullyMigrated(t *testing.T, s *SQLStore) {
	t.Helper()
	migrations, err := loadMigrations(s.dialect.name)
	if err != nil {
		t.Fatal(err)
	}
	got := appliedVersions(t, s)
	if len(got) != len(migrations) {
		t.Fatalf("schema_migrations holds versions %v, want each of %d migrations once", got, len(migrations))
	}
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	forEachBackend(t, testReopenKeepsDataAndSkipsMigrations)
}

func testReopenKeepsDataAndSkipsMigrations(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)

	s := db.open(t)
	want := mustCreate(t, s, newAccount("jdoe", "1111111111", "card"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		s = db.open(t)
		assertFullyMigrated(t, s)
		got, err := s.AccountByUsername(ctx, "jdoe")
		if err != nil {
			t.Fatal(err)
		}
		assertAccount(t, got, want)
	}
}

func TestConcurrentOpensMigrateOnce(t *testing.T) { forEachBackend(t, testConcurrentOpensMigrateOnce) }

func testConcurrentOpensMigrateOnce(t *testing.T, be backend) {
	const nodes = 4
	db := be.newDatabase(t)

	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		stores = make([]*SQLStore, nodes)
		errs   = make([]error, nodes)
	)
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = db.connect()
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err == nil {
			t.Cleanup(func() { stores[i].Close() })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	assertFullyMigrated(t, stores[0])
	mustCreate(t, stores[1], newAccount("jdoe", "1111111111"))
	if _, err := stores[2].AccountByUsername(context.Background(), "jdoe"); err != nil {
		t.Errorf("a write through one node is not visible to another: %v", err)
	}
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "state")
	path := filepath.Join(dir, "cacgate.db")
	s := openStoreAt(t, path)
	// A write makes sure the WAL exists.
	mustCreate(t, s, newAccount("jdoe", "1111111111"))

	for name, want := range map[string]os.FileMode{
		dir:           0o700,
		path:          0o600,
		path + "-wal": 0o600,
		path + "-shm": 0o600,
	} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", name, got, want)
		}
	}
}

// The driver takes what follows the first '?' of a plain file name as its
// parameters, which would put the database somewhere else.
func TestOpenPathWithURISpecialCharacters(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "odd ?name=#1 %20 & co")
	s := openStoreAt(t, filepath.Join(dir, "cacgate.db"))
	mustCreate(t, s, newAccount("jdoe", "1111111111"))

	for _, d := range []string{root, dir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if name := filepath.Join(d, e.Name()); name != dir && !strings.HasPrefix(name, filepath.Join(dir, "cacgate.db")) {
				t.Errorf("stray file %q: the database was opened at the wrong path", name)
			}
		}
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if s, err := OpenSQLite(context.Background(), ""); err == nil {
		s.Close()
		t.Fatal("OpenSQLite(\"\") succeeded")
	}
}

// createInitialDatabase makes the database a cacgate built before
// enrollment would have: migration 1 only, holding one account with a card,
// written with the columns that migration created. The account is the
// first, so its id is 1.
func createInitialDatabase(t *testing.T, db testDatabase) {
	t.Helper()
	ctx := context.Background()
	raw, d := db.raw(t)
	migrations, err := loadMigrations(d.name)
	if err != nil {
		t.Fatal(err)
	}
	ex := executor{q: raw, rebind: d.rebind}
	if _, err := ex.exec(ctx, schemaMigrationsSQL); err != nil {
		t.Fatal(err)
	}
	if err := migrations[0].apply(ctx, ex); err != nil {
		t.Fatal(err)
	}
	stmts := []struct {
		query string
		args  []any
	}{
		{`INSERT INTO accounts (username, edipi, given_name, middle_name, family_name, suffix,
		                       email, affiliation, status, created_at, updated_at, last_login_at)
		  VALUES ('john.b.smith', '1111111111', 'John', 'B', 'Smith', '', 'john@example.mil',
		          'USA', 'active', 1700000000, 1700000001, 1700000002)`, nil},
		{`INSERT INTO cards (fingerprint, account_id, subject, issuer, serial, not_after, created_at, last_used_at)
		  VALUES (?, 1, 'CN=SMITH.JOHN.B.1111111111', 'CN=DOD ID CA-70', '0x01', 1900000000, 1700000000, NULL)`,
			[]any{fingerprint("old card")}},
	}
	for _, st := range stmts {
		if _, err := ex.exec(ctx, st.query, st.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeFromInitialSchema(t *testing.T) { forEachBackend(t, testUpgradeFromInitialSchema) }

func testUpgradeFromInitialSchema(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	createInitialDatabase(t, db)

	s, err := db.connect()
	if err != nil {
		t.Fatal(err)
	}
	assertFullyMigrated(t, s)

	want := &Account{
		ID: 1, Username: "john.b.smith", EDIPI: "1111111111",
		GivenName: "John", MiddleName: "B", FamilyName: "Smith",
		Email: "john@example.mil", Affiliation: "USA", Status: StatusActive,
		CreatedAt:   fromUnix(1700000000),
		UpdatedAt:   fromUnix(1700000001),
		LastLoginAt: fromUnix(1700000002),
		Cards: []Card{{
			Fingerprint: fingerprint("old card"), AccountID: 1,
			Subject: "CN=SMITH.JOHN.B.1111111111", Issuer: "CN=DOD ID CA-70", Serial: "0x01",
			NotAfter: fromUnix(1900000000), CreatedAt: fromUnix(1700000000),
		}},
	}
	got, err := s.AccountByFingerprint(ctx, fingerprint("old card"))
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	assertAccount(t, got, want)
	creds, err := s.Credentials(ctx, 1)
	if err != nil || !reflect.DeepEqual(creds, &Credentials{}) {
		t.Errorf("credentials of an upgraded account = %+v, %v; want none", creds, err)
	}

	// The old account takes part in everything new.
	if err := s.SetPassword(ctx, 1, "hash", 5); err != nil {
		t.Error(err)
	}
	if err := s.SetAnswers(ctx, 1, newEnrollment("", "1111111111", "").Answers); err != nil {
		t.Error(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if st, err := s.RecordLoginFailure(ctx, 1, at, time.Minute, 3, time.Minute); err != nil || st.Failures != 1 {
		t.Errorf("RecordLoginFailure on an upgraded account = %+v, %v", st, err)
	}
	namesake, err := s.Enroll(ctx, newEnrollment("john.b.smith", "2222222222", "new card"))
	if err != nil || namesake.Username != "john.b.smith1" || namesake.ID != 2 {
		t.Errorf("namesake enrolled as %s, %v; want john.b.smith1, id 2", describe(namesake), err)
	} else if pending, err := s.ListAccountsByStatus(ctx, StatusPending, 0, 0); err != nil || len(pending) != 1 || pending[0].ID != namesake.ID {
		t.Errorf("pending accounts = %d, %v", len(pending), err)
	}

	// Reopening the upgraded database finds nothing more to do.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = db.open(t)
	assertFullyMigrated(t, s)
	if got, err := s.AccountByUsername(ctx, "john.b.smith"); err != nil || !got.HasPassword {
		t.Errorf("after reopening: %s, %v", describe(got), err)
	}
}
