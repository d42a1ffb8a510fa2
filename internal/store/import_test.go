package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"
)

// records returns a next function yielding accounts, then io.EOF.
func records(accounts ...*Account) func() (*Account, error) {
	i := 0
	return func() (*Account, error) {
		if i == len(accounts) {
			return nil, io.EOF
		}
		i++
		return accounts[i-1], nil
	}
}

// generated yields n accounts with one card each, made on the fly, as a
// benchmark seeding would: "user0000042", DoD ID 3000000042.
func generated(n int) func() (*Account, error) {
	i := 0
	return func() (*Account, error) {
		if i == n {
			return nil, io.EOF
		}
		a := generatedAccount(i)
		i++
		return a, nil
	}
}

func generatedAccount(i int) *Account {
	name := fmt.Sprintf("user%07d", i)
	a := newAccount(name, fmt.Sprintf("%010d", 3_000_000_000+i), name)
	a.Groups = []string{"users"}
	return a
}

func assertImportError(t *testing.T, err error, record int, field string, is error) {
	t.Helper()
	var ie *ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v, want an *ImportError", err)
	}
	if ie.Record != record || ie.Field != field || !errors.Is(err, is) {
		t.Errorf("error = %v (record %d, field %q); want record %d, field %q, %v", err, ie.Record, ie.Field, record, field, is)
	}
}

func TestImportAccounts(t *testing.T) { forEachBackend(t, testImportAccounts) }

func testImportAccounts(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	changes := recordChanges(t, s)

	a := newAccount("alice", "1111111111", "alice-1", "alice-2")
	a.Categories = []string{"Active Army", "DA Civilian"}
	a.Groups = []string{"ops", "admins", "ops"}
	a.Organization, a.Location, a.WorkAddress, a.Phone = "HQ", "North America", "Bldg 1", "+1 703 555 0100"
	a.LastLoginAt = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	a.Cards[0].LastUsedAt = a.LastLoginAt
	b := newAccount("bob", "2222222222")
	b.Status = "" // defaults to active
	c := newAccount("carol", "3333333333", "carol")
	c.Status = StatusPending

	before := now()
	report, err := s.ImportAccounts(ctx, records(a, b, c), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ImportReport{Imported: 3, Cards: 3}); !reflect.DeepEqual(report, want) {
		t.Errorf("report = %+v, want %+v", report, want)
	}
	if b.Status != "" {
		t.Error("ImportAccounts changed the caller's record")
	}

	got, err := s.AccountByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("times %v, %v; want the import's time", got.CreatedAt, got.UpdatedAt)
	}
	want := *a
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, got.CreatedAt, got.CreatedAt
	want.Groups = []string{"admins", "ops"}
	want.Cards = slices.Clone(a.Cards)
	for i := range want.Cards {
		want.Cards[i].AccountID, want.Cards[i].CreatedAt = got.ID, got.CreatedAt
	}
	slices.SortFunc(want.Cards, func(x, y Card) int { return cmpFingerprint(x, y) })
	assertAccount(t, got, &want)

	if got, err := s.AccountByUsername(ctx, "bob"); err != nil || got.Status != StatusActive {
		t.Errorf("bob: %s, %v; want active", describe(got), err)
	}
	if got, err := s.AccountByFingerprint(ctx, fingerprint("carol")); err != nil || got.Username != "carol" || got.Status != StatusPending {
		t.Errorf("carol by card: %s, %v", describe(got), err)
	}
	if got := changes(); !reflect.DeepEqual(got, []Change{{Resync: true}}) {
		t.Errorf("changes = %+v, want one resync", got)
	}

	// An empty import stores and announces nothing.
	report, err = s.ImportAccounts(ctx, records(), ImportOptions{})
	if err != nil || !reflect.DeepEqual(report, ImportReport{}) {
		t.Errorf("empty import: %+v, %v", report, err)
	}
	if got := changes(); len(got) != 1 {
		t.Errorf("an empty import announced: %+v", got)
	}
}

func cmpFingerprint(x, y Card) int {
	switch {
	case x.Fingerprint < y.Fingerprint:
		return -1
	case x.Fingerprint > y.Fingerprint:
		return 1
	}
	return 0
}

func TestImportFailsOnClash(t *testing.T) { forEachBackend(t, testImportFailsOnClash) }

func testImportFailsOnClash(t *testing.T, be backend) {
	ctx := context.Background()
	existing := newAccount("taken", "9999999999", "taken-card")
	tests := []struct {
		name   string
		clash  func(*Account) // applied to record 3 of 5
		field  string
		is     error
		record int
	}{
		{"username of a stored account", func(a *Account) { a.Username = "taken" }, "username", ErrUsernameTaken, 3},
		{"edipi of a stored account", func(a *Account) { a.EDIPI = "9999999999" }, "edipi", ErrEDIPITaken, 3},
		{"card of a stored account", func(a *Account) { a.Cards = append(a.Cards, newCard("taken-card")) }, "card", ErrCardTaken, 3},
		{"username of an earlier record", func(a *Account) { a.Username = "user0000001" }, "username", ErrUsernameTaken, 3},
		{"edipi of an earlier record", func(a *Account) { a.EDIPI = generatedAccount(0).EDIPI }, "edipi", ErrEDIPITaken, 3},
		{"card of an earlier record", func(a *Account) { a.Cards = []Card{newCard("user0000000")} }, "card", ErrCardTaken, 3},
		{"one card twice in a record", func(a *Account) { a.Cards = append(a.Cards, a.Cards[0]) }, "card", ErrCardTaken, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := be.openStore(t)
			mustCreate(t, s, existing)
			changes := recordChanges(t, s)
			var accounts []*Account
			for i := range 5 {
				accounts = append(accounts, generatedAccount(i))
			}
			tt.clash(accounts[2])
			report, err := s.ImportAccounts(ctx, records(accounts...), ImportOptions{OnConflict: ImportFail})
			assertImportError(t, err, tt.record, tt.field, tt.is)
			if !reflect.DeepEqual(report, ImportReport{}) {
				t.Errorf("a failed import reported %+v", report)
			}
			if n := countRows(t, s, "accounts"); n != 1 {
				t.Errorf("%d accounts after a failed import, want the 1 there before", n)
			}
			if n := countRows(t, s, "cards"); n != 1 {
				t.Errorf("%d cards after a failed import, want 1", n)
			}
			if got := changes(); len(got) != 0 {
				t.Errorf("a failed import announced %+v", got)
			}
		})
	}
}

// A clash near the end of a long import, and across batches, leaves
// nothing of the import behind.
func TestImportIsAtomic(t *testing.T) { forEachBackend(t, testImportIsAtomic) }

func testImportIsAtomic(t *testing.T, be backend) {
	ctx := context.Background()
	for _, tt := range []struct {
		n, clashAt, clashWith int
	}{
		{1000, 999, 5}, // within one batch
		{2*importBatch + 10, 2*importBatch + 5, 1}, // third batch against the first
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			s := be.openStore(t)
			next := generated(tt.n)
			n := 0
			_, err := s.ImportAccounts(ctx, func() (*Account, error) {
				a, err := next()
				if n++; n == tt.clashAt {
					a.EDIPI = generatedAccount(tt.clashWith - 1).EDIPI
				}
				return a, err
			}, ImportOptions{})
			assertImportError(t, err, tt.clashAt, "edipi", ErrEDIPITaken)
			if a, c := countRows(t, s, "accounts"), countRows(t, s, "cards"); a != 0 || c != 0 {
				t.Errorf("%d accounts and %d cards left behind", a, c)
			}
		})
	}
}

func TestImportSkip(t *testing.T) { forEachBackend(t, testImportSkip) }

func testImportSkip(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("taken", "9999999999", "taken-card"))

	recs := []*Account{
		newAccount("a", "1000000001", "a"),          // 1 kept
		newAccount("taken", "1000000002", "b"),      // 2 username stored before
		newAccount("c", "9999999999", "c"),          // 3 edipi stored before
		newAccount("d", "1000000004", "taken-card"), // 4 card stored before
		newAccount("a", "1000000005", "e"),          // 5 username of record 1
		newAccount("f", "1000000001", "f"),          // 6 edipi of record 1
		newAccount("g", "1000000007", "a"),          // 7 card of record 1
		newAccount("h", "1000000008", "h", "h"),     // 8 card twice
		newAccount("i", "1000000009", "i"),          // 9 kept
		newAccount("taken", "1000000010"),           // 10 beyond MaxListed
		newAccount("b", "1000000002", "b"),          // 11 kept: record 2 was skipped, so its keys are free
	}
	report, err := s.ImportAccounts(ctx, records(recs...), ImportOptions{OnConflict: ImportSkip, MaxListed: 7})
	if err != nil {
		t.Fatal(err)
	}
	want := ImportReport{
		Imported: 3, Cards: 3, Skipped: 8,
		SkippedRecords: []SkippedRecord{
			{2, "taken", "username"}, {3, "c", "edipi"}, {4, "d", "card"}, {5, "a", "username"},
			{6, "f", "edipi"}, {7, "g", "card"}, {8, "h", "card"},
		},
	}
	if !reflect.DeepEqual(report, want) {
		t.Errorf("report = %+v\nwant %+v", report, want)
	}
	page, err := s.SearchAccounts(ctx, AccountQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := usernames(page); !slices.Equal(got, []string{"a", "b", "i", "taken"}) {
		t.Errorf("accounts = %q", got)
	}
	if got, err := s.AccountByFingerprint(ctx, fingerprint("a")); err != nil || got.EDIPI != "1000000001" {
		t.Errorf("card a belongs to %s, %v; want the first record's account", describe(got), err)
	}

	// Importing the same records again skips every one.
	report, err = s.ImportAccounts(ctx, records(recs...), ImportOptions{OnConflict: ImportSkip})
	if err != nil || report.Imported != 0 || report.Skipped != len(recs) || len(report.SkippedRecords) != len(recs) {
		t.Errorf("re-import: %+v, %v", report, err)
	}
}

func TestImportValidation(t *testing.T) { forEachBackend(t, testImportValidation) }

func testImportValidation(t *testing.T, be backend) {
	ctx := context.Background()
	tests := []struct {
		field string
		spoil func(*Account)
	}{
		{"username", func(a *Account) { a.Username = "" }},
		{"username", func(a *Account) { a.Username = "Upper" }},
		{"username", func(a *Account) { a.Username = "1abc" }},
		{"username", func(a *Account) { a.Username = "a b" }},
		{"edipi", func(a *Account) { a.EDIPI = "123456789" }},
		{"edipi", func(a *Account) { a.EDIPI = "12345678901" }},
		{"edipi", func(a *Account) { a.EDIPI = "12345678a0" }},
		{"status", func(a *Account) { a.Status = "deleted" }},
		{"given_name", func(a *Account) { a.GivenName = "evil\nX-Header: 1" }},
		{"family_name", func(a *Account) { a.FamilyName = "\xff" }},
		{"suffix", func(a *Account) { a.Suffix = string(make([]rune, 65)) }},
		{"email", func(a *Account) { a.Email = "Name <n@example.mil>" }},
		{"email", func(a *Account) { a.Email = "not an address" }},
		{"categories", func(a *Account) { a.Categories = []string{""} }},
		{"categories", func(a *Account) { a.Categories = []string{"bell\a"} }},
		{"groups", func(a *Account) { a.Groups = []string{"Admins"} }},
		{"card_sha256", func(a *Account) { a.Cards[0].Fingerprint = "ABCDEF" }},
		{"card_sha256", func(a *Account) { a.Cards[0].Fingerprint = fingerprint("x")[:63] + "G" }},
		{"card_subject", func(a *Account) { a.Cards[0].Subject = "CN=\x00" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			s := be.openStore(t)
			bad := generatedAccount(1)
			tt.spoil(bad)
			_, err := s.ImportAccounts(ctx, records(generatedAccount(0), bad, generatedAccount(2)), ImportOptions{OnConflict: ImportSkip})
			assertImportError(t, err, 2, tt.field, ErrInvalidAccount)
			if n := countRows(t, s, "accounts"); n != 0 {
				t.Errorf("%d accounts stored", n)
			}
		})
	}

	t.Run("nil record", func(t *testing.T) {
		s := be.openStore(t)
		_, err := s.ImportAccounts(ctx, func() (*Account, error) { return nil, nil }, ImportOptions{})
		assertImportError(t, err, 1, "", ErrInvalidAccount)
	})
	t.Run("source error", func(t *testing.T) {
		s := be.openStore(t)
		broken := errors.New("line 7, column edipi: bad quote")
		next := generated(10)
		n := 0
		_, err := s.ImportAccounts(ctx, func() (*Account, error) {
			if n++; n == 4 {
				return nil, broken
			}
			return next()
		}, ImportOptions{})
		assertImportError(t, err, 4, "", broken)
		if n := countRows(t, s, "accounts"); n != 0 {
			t.Errorf("%d accounts stored", n)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		s := be.openStore(t)
		ctx, cancel := context.WithCancel(ctx)
		next := generated(3 * importBatch)
		n := 0
		_, err := s.ImportAccounts(ctx, func() (*Account, error) {
			if n++; n == 2*importBatch {
				cancel()
			}
			return next()
		}, ImportOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
		if n := countRows(t, s, "accounts"); n != 0 {
			t.Errorf("%d accounts stored", n)
		}
	})
}

// An import registers a card as explicitly as LinkCard, lifting a clearing.
func TestImportLiftsClearedCard(t *testing.T) { forEachBackend(t, testImportLiftsClearedCard) }

func testImportLiftsClearedCard(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	old := mustCreate(t, s, newAccount("old", "1000000001", "lost"))
	if err := s.UnlinkCard(ctx, "old", fingerprint("lost")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportAccounts(ctx, records(newAccount("new", "1000000002", "lost")), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	// Clearing gone: unlinking from the new account and auto-linking to
	// the old one follows the usual rules, and the card is the new one's.
	if got, err := s.AccountByFingerprint(ctx, fingerprint("lost")); err != nil || got.Username != "new" {
		t.Fatalf("card belongs to %s, %v", describe(got), err)
	}
	if n := countRows(t, s, "cleared_cards"); n != 0 {
		t.Errorf("%d clearings left", n)
	}
	_ = old
}

// Cards are stored at the end of an import; a card clash in an early
// record is still the one named when a later record's username clashes.
func TestImportNamesFirstClash(t *testing.T) { forEachBackend(t, testImportNamesFirstClash) }

func testImportNamesFirstClash(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("taken", "9999999999", "taken-card"))
	next := generated(2*importBatch + 10)
	n := 0
	_, err := s.ImportAccounts(ctx, func() (*Account, error) {
		a, err := next()
		switch n++; n {
		case 7:
			a.Cards = append(a.Cards, newCard("taken-card"))
		case importBatch + 20:
			a.Username = "taken"
		}
		return a, err
	}, ImportOptions{})
	assertImportError(t, err, 7, "card", ErrCardTaken)
}

// A failed import leaves nothing on the connection that would trouble the
// next one (its staging table goes with the rollback).
func TestImportAfterFailedImport(t *testing.T) { forEachBackend(t, testImportAfterFailedImport) }

func testImportAfterFailedImport(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for _, opts := range []ImportOptions{{}, {OnConflict: ImportSkip}} {
		bad := generatedAccount(1)
		bad.EDIPI = "x"
		if _, err := s.ImportAccounts(ctx, records(generatedAccount(0), bad), opts); err == nil {
			t.Fatal("invalid import succeeded")
		}
		dup := generatedAccount(3)
		dup.Cards = generatedAccount(2).Cards
		if _, err := s.ImportAccounts(ctx, records(generatedAccount(2), dup), ImportOptions{}); err == nil {
			t.Fatal("import with a repeated card succeeded")
		}
	}
	for i, opts := range []ImportOptions{{}, {OnConflict: ImportSkip}} {
		report, err := s.ImportAccounts(ctx, records(generatedAccount(10+i)), opts)
		if err != nil || report.Imported != 1 || report.Cards != 1 {
			t.Fatalf("import after failed ones: %+v, %v", report, err)
		}
	}
	if n := countRows(t, s, "accounts"); n != 2 {
		t.Errorf("%d accounts, want 2", n)
	}
}

// The writer connection gets its usual page cache back after an import,
// whether it succeeded or failed.
func TestImportRestoresSQLiteCache(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	cacheSize := func() int64 {
		t.Helper()
		var n int64
		// The writer pool has one connection: the one the import used.
		if err := s.writes().queryRow(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := cacheSize()
	if _, err := s.ImportAccounts(ctx, generated(10), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := generatedAccount(20)
	bad.EDIPI = ""
	if _, err := s.ImportAccounts(ctx, records(bad), ImportOptions{}); err == nil {
		t.Fatal("invalid import succeeded")
	}
	if after := cacheSize(); after != before || after == -sqliteBulkCacheKiB {
		t.Errorf("cache_size = %d after imports, want %d", after, before)
	}
}
