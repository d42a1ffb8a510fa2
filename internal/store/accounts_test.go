package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateAccountRoundTrip(t *testing.T) { forEachBackend(t, testCreateAccountRoundTrip) }

func testCreateAccountRoundTrip(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)

	a := newAccount("jdoe", "1234567890", "card-b", "card-a")
	a.Suffix = "Jr"
	a.LastLoginAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	a.Cards[0].LastUsedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	before := now()
	mustCreate(t, s, a)

	if a.ID == 0 {
		t.Fatal("CreateAccount did not set ID")
	}
	if a.CreatedAt.Before(before) || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("timestamps = %v, %v; want equal and not before %v", a.CreatedAt, a.UpdatedAt, before)
	}
	for _, c := range a.Cards {
		if c.AccountID != a.ID || !c.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("card %s: AccountID %d, CreatedAt %v; want %d, %v", c.Fingerprint, c.AccountID, c.CreatedAt, a.ID, a.CreatedAt)
		}
	}

	// Cards linked in the same second come back ordered by fingerprint.
	want := *a
	want.Cards = slices.Clone(a.Cards)
	slices.SortFunc(want.Cards, func(x, y Card) int { return strings.Compare(x.Fingerprint, y.Fingerprint) })

	lookups := map[string]func() (*Account, error){
		"username":      func() (*Account, error) { return s.AccountByUsername(ctx, "jdoe") },
		"EDIPI":         func() (*Account, error) { return s.AccountByEDIPI(ctx, "1234567890") },
		"fingerprint 0": func() (*Account, error) { return s.AccountByFingerprint(ctx, a.Cards[0].Fingerprint) },
		"fingerprint 1": func() (*Account, error) { return s.AccountByFingerprint(ctx, a.Cards[1].Fingerprint) },
	}
	for name, lookup := range lookups {
		t.Run(name, func(t *testing.T) {
			got, err := lookup()
			if err != nil {
				t.Fatal(err)
			}
			assertAccount(t, got, &want)
		})
	}
}

func TestAccountWithoutCards(t *testing.T) { forEachBackend(t, testAccountWithoutCards) }

func testAccountWithoutCards(t *testing.T, be backend) {
	s := be.openStore(t)
	a := mustCreate(t, s, newAccount("nocards", "1000000001"))
	got, err := s.AccountByUsername(context.Background(), "nocards")
	if err != nil {
		t.Fatal(err)
	}
	assertAccount(t, got, a)
}

func TestAccountLookupsNotFound(t *testing.T) { forEachBackend(t, testAccountLookupsNotFound) }

func testAccountLookupsNotFound(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1234567890", "card"))

	_, err := s.AccountByUsername(ctx, "JDOE") // usernames are compared exactly
	assertErrorIs(t, err, ErrNotFound)
	_, err = s.AccountByEDIPI(ctx, "0000000000")
	assertErrorIs(t, err, ErrNotFound)
	_, err = s.AccountByFingerprint(ctx, fingerprint("other card"))
	assertErrorIs(t, err, ErrNotFound)
}

func TestCreateAccountUniqueness(t *testing.T) { forEachBackend(t, testCreateAccountUniqueness) }

func testCreateAccountUniqueness(t *testing.T, be backend) {
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1234567890", "card"))

	tests := []struct {
		name    string
		account *Account
		want    error
	}{
		{"same username", newAccount("jdoe", "2222222222"), ErrUsernameTaken},
		{"same EDIPI", newAccount("other", "1234567890"), ErrEDIPITaken},
		{"card on another account", newAccount("other", "2222222222", "card"), ErrCardTaken},
		{"same card twice", newAccount("other", "2222222222", "new", "new"), ErrCardTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateAccount(context.Background(), tt.account)
			assertErrorIs(t, err, tt.want)
		})
	}
}

func TestCreateAccountIsAtomic(t *testing.T) { forEachBackend(t, testCreateAccountIsAtomic) }

func testCreateAccountIsAtomic(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("owner", "1111111111", "taken"))

	// The first card is new and inserted before the second fails.
	a := newAccount("late", "2222222222", "fresh", "taken")
	err := s.CreateAccount(ctx, a)
	assertErrorIs(t, err, ErrCardTaken)

	if a.ID != 0 || !a.CreatedAt.IsZero() || a.Cards[0].AccountID != 0 {
		t.Errorf("failed CreateAccount modified its argument: %s", describe(a))
	}
	_, err = s.AccountByUsername(ctx, "late")
	assertErrorIs(t, err, ErrNotFound)
	_, err = s.AccountByEDIPI(ctx, "2222222222")
	assertErrorIs(t, err, ErrNotFound)
	_, err = s.AccountByFingerprint(ctx, fingerprint("fresh"))
	assertErrorIs(t, err, ErrNotFound)

	// Nothing of the failed attempt stands in the way of a retry.
	mustCreate(t, s, newAccount("late", "2222222222", "fresh"))
}

func TestCreateAccountRace(t *testing.T) { forEachBackend(t, testCreateAccountRace) }

func testCreateAccountRace(t *testing.T, be backend) {
	const racers = 20
	s := be.openStore(t)

	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			a := newAccount("contested", fmt.Sprintf("%010d", i), fmt.Sprint("card", i))
			<-start
			errs[i] = s.CreateAccount(context.Background(), a)
		})
	}
	close(start)
	wg.Wait()

	var wins int
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrUsernameTaken):
			t.Errorf("racer %d: %v, want success or ErrUsernameTaken", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d racers created the account, want exactly 1", wins)
	}
	got, err := s.ListAccounts(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Cards) != 1 {
		t.Errorf("after the race the store holds %d accounts, want 1 with 1 card", len(got))
	}
}

func TestSetStatus(t *testing.T) { forEachBackend(t, testSetStatus) }

func testSetStatus(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustCreate(t, s, newAccount("jdoe", "1234567890", "card"))

	got, err := s.SetStatus(ctx, "jdoe", StatusDisabled)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusDisabled || got.UpdatedAt.Before(a.UpdatedAt) || len(got.Cards) != 1 {
		t.Errorf("SetStatus returned %s", describe(got))
	}
	stored, err := s.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	assertAccount(t, stored, got)

	_, err = s.SetStatus(ctx, "nobody", StatusActive)
	assertErrorIs(t, err, ErrNotFound)

	// The schema admits only the known statuses.
	if _, err := s.SetStatus(ctx, "jdoe", Status("superuser")); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("SetStatus to an unknown status: %v, want a constraint error", err)
	}
	stored, err = s.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != StatusDisabled {
		t.Errorf("status after rejected update = %q, want %q", stored.Status, StatusDisabled)
	}
}

func TestListAccountsPaging(t *testing.T) { forEachBackend(t, testListAccountsPaging) }

func testListAccountsPaging(t *testing.T, be backend) {
	const total, pageSize = 25, 10
	ctx := context.Background()
	s := be.openStore(t)

	// Created out of order, every third account without a card and every
	// fifth with two, so pages must count accounts, not rows.
	var want []string
	for i := range total {
		name := fmt.Sprintf("user%02d", (i*7)%total)
		want = append(want, name)
		var seeds []string
		if i%3 != 0 {
			seeds = append(seeds, name+"-a")
		}
		if i%5 == 0 {
			seeds = append(seeds, name+"-b")
		}
		mustCreate(t, s, newAccount(name, fmt.Sprintf("%010d", i), seeds...))
	}
	slices.Sort(want)

	var got []string
	for page := range total/pageSize + 2 { // one past the last partial page
		accounts, err := s.ListAccounts(ctx, page*pageSize, pageSize)
		if err != nil {
			t.Fatal(err)
		}
		if wantLen := min(pageSize, max(0, total-page*pageSize)); len(accounts) != wantLen {
			t.Fatalf("page %d has %d accounts, want %d", page, len(accounts), wantLen)
		}
		for _, a := range accounts {
			got = append(got, a.Username)
			byName, err := s.AccountByUsername(ctx, a.Username)
			if err != nil {
				t.Fatal(err)
			}
			assertAccount(t, a, byName)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged usernames = %v, want %v", got, want)
	}

	all, err := s.ListAccounts(ctx, -5, 0) // defaults: from the start, up to the cap
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total {
		t.Errorf("ListAccounts(-5, 0) returned %d accounts, want %d", len(all), total)
	}
}

func TestListAccountsCapsLimit(t *testing.T) { forEachBackend(t, testListAccountsCapsLimit) }

func testListAccountsCapsLimit(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	seedAccounts(t, s, MaxListLimit+1)

	for _, limit := range []int{MaxListLimit + 1, 1 << 40} {
		got, err := s.ListAccounts(ctx, 0, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != MaxListLimit {
			t.Errorf("ListAccounts(0, %d) returned %d accounts, want %d", limit, len(got), MaxListLimit)
		}
	}
}

// seedAccounts inserts n accounts with one card each in one transaction,
// much faster than n calls to CreateAccount. Account i has username
// "seed<i>" and the card fingerprint("seed<i>").
func seedAccounts(t testing.TB, s *SQLStore, n int) {
	t.Helper()
	seedAccountsWith(t, s, n, nil)
}

// seedAccountsWith is seedAccounts with each account passed through
// decorate, if not nil, before it is inserted.
func seedAccountsWith(t testing.TB, s *SQLStore, n int, decorate func(*Account)) {
	t.Helper()
	at := now()
	err := s.inWriteTx(context.Background(), func(ex executor) error {
		for i := range n {
			name := fmt.Sprint("seed", i)
			a := newAccount(name, fmt.Sprintf("%010d", i))
			if decorate != nil {
				decorate(a)
			}
			id, err := insertAccount(context.Background(), ex, a, "", at)
			if err != nil {
				return err
			}
			if err := insertCard(context.Background(), ex, id, newCard(name), at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seeding %d accounts: %v", n, err)
	}
}

func TestHostileStringsRoundTrip(t *testing.T) { forEachBackend(t, testHostileStringsRoundTrip) }

func testHostileStringsRoundTrip(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)

	hostile := []string{
		`'; DROP TABLE accounts; --`,
		`" OR "1"="1`,
		`Robert'); DELETE FROM cards WHERE ('1'='1`,
		`%_\*?[]`,
		"O'Brien-Ñúñez 李小龙 Ωμέγα",
		"עברית \u202e RTL override \u200b zero width",
		"emoji 🪖🇺🇸 and combining e\u0301",
		"line\nbreak\ttab\r\n",
		strings.Repeat("long ", 4000),
	}
	for i, v := range hostile {
		a := &Account{
			Username: v, EDIPI: v + "#edipi",
			GivenName: v, MiddleName: v, FamilyName: v, Suffix: v,
			Email: v, Affiliation: v, Status: StatusPending,
			Categories:   []string{v, `"]`, v},
			Organization: v, Location: v, WorkAddress: v, Phone: v,
			Cards: []Card{{Fingerprint: fingerprint(v), Subject: v, Issuer: v, Serial: v}},
		}
		mustCreate(t, s, a)
		for _, lookup := range []func() (*Account, error){
			func() (*Account, error) { return s.AccountByUsername(ctx, v) },
			func() (*Account, error) { return s.AccountByEDIPI(ctx, v+"#edipi") },
			func() (*Account, error) { return s.AccountByFingerprint(ctx, fingerprint(v)) },
		} {
			got, err := lookup()
			if err != nil {
				t.Fatalf("string %d: %v", i, err)
			}
			assertAccount(t, got, a)
		}
		// Hostile input that matches nothing finds nothing.
		_, err := s.AccountByFingerprint(ctx, v)
		assertErrorIs(t, err, ErrNotFound)
		assertErrorIs(t, s.UnlinkCard(ctx, v, v), ErrNotFound)
	}

	got, err := s.ListAccounts(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(hostile) {
		t.Errorf("store holds %d accounts, want %d: were tables damaged?", len(got), len(hostile))
	}
}

func TestCreateAccountProfile(t *testing.T) { forEachBackend(t, testCreateAccountProfile) }

func testCreateAccountProfile(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := newAccount("jdoe", "1234567890", "card")
	a.Categories = []string{"Army Retired", "DA Civilian"}
	a.Organization, a.Location, a.WorkAddress, a.Phone = "USN", "North America", "1 Main St", "555-0100"
	// The store sets these, whatever the caller says.
	a.HasPassword = true
	a.PasswordChangedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	a.LockedUntil = time.Date(2035, 1, 2, 3, 4, 5, 0, time.UTC)
	mustCreate(t, s, a)

	got, err := s.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	want := *a
	want.HasPassword, want.PasswordChangedAt, want.LockedUntil = false, time.Time{}, time.Time{}
	assertAccount(t, got, &want)

	// No categories, nil or empty, read back as nil.
	b := newAccount("empty", "2222222222")
	b.Categories = []string{}
	mustCreate(t, s, b)
	if got, err := s.AccountByUsername(ctx, "empty"); err != nil || got.Categories != nil {
		t.Errorf("empty categories read back as %#v, %v", got.Categories, err)
	}

	// JSON cannot carry invalid UTF-8 unaltered, so it is refused.
	c := newAccount("bad", "3333333333")
	c.Categories = []string{"\xff\xfe"}
	if err := s.CreateAccount(ctx, c); err == nil {
		t.Error("CreateAccount stored a category that is not UTF-8")
	}
	_, err = s.AccountByUsername(ctx, "bad")
	assertErrorIs(t, err, ErrNotFound)
}

func TestListAccountsByStatus(t *testing.T) { forEachBackend(t, testListAccountsByStatus) }

func testListAccountsByStatus(t *testing.T, be backend) {
	const total, pageSize = 24, 5
	ctx := context.Background()
	s := be.openStore(t)

	statuses := []Status{StatusActive, StatusPending, StatusDisabled}
	want := map[Status][]string{}
	for i := range total {
		name := fmt.Sprintf("user%02d", (i*7)%total) // created out of order
		a := newAccount(name, fmt.Sprintf("%010d", i), name+"-a", name+"-b")
		a.Status = statuses[i%len(statuses)]
		mustCreate(t, s, a)
		want[a.Status] = append(want[a.Status], name)
	}

	for _, status := range statuses {
		slices.Sort(want[status])
		var got []string
		for page := 0; ; page++ {
			accounts, err := s.ListAccountsByStatus(ctx, status, page*pageSize, pageSize)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range accounts {
				if a.Status != status || len(a.Cards) != 2 {
					t.Errorf("listing %s: %s", status, describe(a))
				}
				got = append(got, a.Username)
			}
			if len(accounts) < pageSize {
				break
			}
			if page > total {
				t.Fatal("paging does not end")
			}
		}
		if !slices.Equal(got, want[status]) {
			t.Errorf("%s accounts = %v, want %v", status, got, want[status])
		}
		all, err := s.ListAccountsByStatus(ctx, status, -1, 0)
		if err != nil || len(all) != len(want[status]) {
			t.Errorf("ListAccountsByStatus(%s, -1, 0) = %d accounts, %v; want %d", status, len(all), err, len(want[status]))
		}
	}

	got, err := s.ListAccountsByStatus(ctx, Status("superuser"), 0, 0)
	if err != nil || len(got) != 0 {
		t.Errorf("unknown status listed %d accounts, %v", len(got), err)
	}
}

func TestTransitionStatus(t *testing.T) { forEachBackend(t, testTransitionStatus) }

func testTransitionStatus(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := newAccount("pend", "1111111111")
	a.Status = StatusPending
	mustCreate(t, s, a)

	got, err := s.TransitionStatus(ctx, "pend", StatusPending, StatusActive)
	if err != nil || got.Status != StatusActive {
		t.Fatalf("approve: %v %+v", err, got)
	}
	_, err = s.TransitionStatus(ctx, "pend", StatusPending, StatusActive)
	assertErrorIs(t, err, ErrStatusConflict)
	_, err = s.TransitionStatus(ctx, "nobody", StatusPending, StatusActive)
	assertErrorIs(t, err, ErrNotFound)

	// Racing approvals: exactly one wins.
	b := newAccount("pend2", "2222222222")
	b.Status = StatusPending
	mustCreate(t, s, b)
	results := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := s.TransitionStatus(ctx, "pend2", StatusPending, StatusActive)
			results <- err
		}()
	}
	wins := 0
	for i := 0; i < 8; i++ {
		if err := <-results; err == nil {
			wins++
		} else if !errors.Is(err, ErrStatusConflict) {
			t.Fatalf("racing approval: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d approvals won, want 1", wins)
	}
}

// A key no backend can store (a NUL byte, invalid UTF-8) is simply not
// found, on PostgreSQL as on SQLite, rather than a failed query.
func TestLookupOfUnstorableKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.openStore(t)
		ctx := context.Background()
		for _, key := range []string{"john\x00doe", "\xff\xfe", "a\x00"} {
			if _, err := s.AccountByUsername(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("AccountByUsername(%q): %v, want ErrNotFound", key, err)
			}
			if _, err := s.AccountByEDIPI(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("AccountByEDIPI(%q): %v, want ErrNotFound", key, err)
			}
			if _, err := s.AccountByFingerprint(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("AccountByFingerprint(%q): %v, want ErrNotFound", key, err)
			}
		}
	})
}

// TestPointReadContext: an account read by key runs with its context: a
// context already done fails the read, and a live one with a deadline
// reads as usual (TestPointReadHonoursDeadline: and the deadline holds).
func TestPointReadContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.openStore(t)
		seedAccountsWith(t, s, 3, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.AccountByFingerprint(ctx, fingerprint("seed1")); err != nil {
			t.Fatalf("read with a deadline: %v", err)
		}
		done, cancelDone := context.WithCancel(context.Background())
		cancelDone()
		for name, read := range map[string]func() error{
			"by card":     func() error { _, err := s.AccountByFingerprint(done, fingerprint("seed1")); return err },
			"by DoD ID":   func() error { _, err := s.AccountByEDIPI(done, "0000000001"); return err },
			"by username": func() error { _, err := s.AccountByUsername(done, "seed1"); return err },
		} {
			if err := read(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context: %v", name, err)
			}
		}
	})
}

// TestPointReadHonoursDeadline: a point read that cannot get one of the
// reader pool's connections (every one held: a read stuck on a stalled
// disk, slow listings) gives up at its context's deadline. The gateway's
// card look-up runs with a 10-second deadline, and every request for the
// card waits on that look-up: a read that ignored the deadline would hold
// them all until a connection came free, perhaps never.
func TestPointReadHonoursDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.openStore(t)
		seedAccountsWith(t, s, 1, nil)
		pool := s.reader
		max := pool.Stats().MaxOpenConnections
		if max <= 0 || max > 64 {
			t.Skipf("%s: a reader pool of %d connections", be.name, max)
		}
		var held []*sql.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range max {
			c, err := pool.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := s.AccountByFingerprint(ctx, fingerprint("seed1"))
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read with every connection held: %v, want the deadline", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a point read waited past its deadline for a connection (still waiting a minute on)")
		}
	})
}
