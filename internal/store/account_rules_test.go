package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Enroll refuses a username the admin API could not name (over 64
// characters, or reserved), cleanly: no row of the enrollment is written.
func TestEnrollRefusesUnusableUsername(t *testing.T) {
	forEachBackend(t, testEnrollRefusesUnusableUsername)
}

func testEnrollRefusesUnusableUsername(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	assertNothingWritten := func(what string) {
		t.Helper()
		for _, table := range []string{"accounts", "cards", "security_answers"} {
			if n := countRows(t, s, table); n != 0 {
				t.Errorf("%s: %d rows in %s", what, n, table)
			}
		}
	}
	long := "john.b." + strings.Repeat("x", 60) // 67 characters
	for name, base := range map[string]string{"too long": long, "reserved": "export", "not a username": "John.Smith"} {
		_, err := s.Enroll(ctx, newEnrollment(base, "1234567890", "card"))
		if !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("%s: Enroll = %v, want ErrInvalidAccount", name, err)
		}
		assertNothingWritten(name)
	}

	// A base that fits, whose free suffix would take the name past 64.
	base := "j." + strings.Repeat("x", 61) // 63 characters
	taken := func(context.Context, executor, string) (map[int]bool, error) {
		m := map[int]bool{}
		for i := range 10 {
			m[i] = true
		}
		return m, nil
	}
	if _, err := s.enroll(ctx, newEnrollment(base, "1234567890", "card"), taken); !errors.Is(err, ErrInvalidAccount) {
		t.Errorf("suffix past 64 characters: Enroll = %v, want ErrInvalidAccount", err)
	}
	assertNothingWritten("suffix past 64 characters")

	// Names longer than an import accepts are refused too, so that every
	// enrolled account exports and imports back.
	e := newEnrollment("john.b.smith", "1234567890", "card")
	e.Account.FamilyName = strings.Repeat("S", maxNameRunes+1)
	if _, err := s.Enroll(ctx, e); !errors.Is(err, ErrInvalidAccount) {
		t.Errorf("overlong family name: Enroll = %v, want ErrInvalidAccount", err)
	}
	assertNothingWritten("overlong family name")
}

// "import" and "export" name admin API paths, so no account may have them.
func TestReservedUsernamesRefused(t *testing.T) { forEachBackend(t, testReservedUsernamesRefused) }

func testReservedUsernamesRefused(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for _, name := range []string{"import", "export"} {
		_, err := s.ImportAccounts(ctx, records(newAccount("ok.name", "1111111111"), newAccount(name, "2222222222")), ImportOptions{})
		assertImportError(t, err, 2, "username", ErrInvalidAccount)
		if err := s.CreateAccount(ctx, newAccount(name, "3333333333")); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("CreateAccount(%q) = %v, want ErrInvalidAccount", name, err)
		}
	}
	if n := countRows(t, s, "accounts"); n != 0 {
		t.Errorf("%d accounts stored", n)
	}
}

// A category Reader could not read back as it is (empty, or with
// surrounding spaces) is refused by enrollment, as by imports, so that an
// export never meets one.
func TestEnrollCategoriesMustBeTrimmed(t *testing.T) {
	forEachBackend(t, testEnrollCategoriesMustBeTrimmed)
}

func testEnrollCategoriesMustBeTrimmed(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for _, c := range []string{"", " Active Army", "Active Army\u00a0", "Active\nArmy"} {
		e := newEnrollment("john.b.smith", "2222222222", "card")
		e.Account.Categories = []string{"DA Civilian", c}
		if _, err := s.Enroll(ctx, e); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("Enroll with category %q: %v, want ErrInvalidAccount", c, err)
		}
	}
	if n := countRows(t, s, "accounts"); n != 0 {
		t.Errorf("%d accounts stored", n)
	}
	// A ';' is fine: the CSV format escapes it.
	e := newEnrollment("john.b.smith", "2222222222", "card")
	e.Account.Categories = []string{"Army; Reserve"}
	mustEnroll(t, s, e)
}

// An import whose commit succeeded is reported as such even if putting the
// connection's settings back fails afterwards; the connection, which still
// has the import's settings, is dropped instead of going back to the pool.
func TestImportCommittedDespiteFailedRestore(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	saved := bulkTuning[sqliteDialect.name]
	t.Cleanup(func() { bulkTuning[sqliteDialect.name] = saved })
	bulkTuning[sqliteDialect.name] = func(ctx context.Context, ex executor) (func() error, error) {
		if _, err := ex.exec(ctx, `PRAGMA cache_size = -12345`); err != nil {
			return nil, err
		}
		return func() error { return errors.New("restore failed") }, nil
	}
	report, err := s.ImportAccounts(ctx, records(newAccount("alice", "1111111111", "alice")), ImportOptions{})
	if err != nil || report.Imported != 1 {
		t.Fatalf("ImportAccounts = %+v, %v; want 1 imported and no error", report, err)
	}
	if _, err := s.AccountByUsername(ctx, "alice"); err != nil {
		t.Errorf("imported account: %v", err)
	}
	var cacheSize int64
	if err := s.writer.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cacheSize); err != nil {
		t.Fatal(err)
	}
	if cacheSize == -12345 {
		t.Error("the connection whose settings were not restored went back to the pool")
	}
}

// The username range lookup is not fooled by a base holding characters that
// are wildcards elsewhere ('_' in LIKE), now that Enroll accepts only valid
// usernames as bases.
func TestEnrollBaseWithWildcard(t *testing.T) { forEachBackend(t, testEnrollBaseWithWildcard) }

func testEnrollBaseWithWildcard(t *testing.T, be backend) {
	s := be.openStore(t)
	mustCreate(t, s, newAccount("o_b.x", "9000000000"))
	mustCreate(t, s, newAccount("oxb.x1", "9000000001"))
	if got := mustEnroll(t, s, newEnrollment("o_b.x", "1234567890", "card")); got.Username != "o_b.x1" {
		t.Errorf("username = %q, want o_b.x1", got.Username)
	}
}
