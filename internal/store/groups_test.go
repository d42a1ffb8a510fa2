package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestValidGroupName(t *testing.T) {
	valid := []string{"a", "0", "ops", "finance.readers", "team_a-1", strings.Repeat("x", 64), "9lives"}
	invalid := []string{"", "Ops", ".ops", "_ops", "-ops", "op s", "ops;admins", `ops"`, "opś", strings.Repeat("x", 65), "a/b", "a%", "\x00"}
	for _, g := range valid {
		if !ValidGroupName(g) {
			t.Errorf("ValidGroupName(%q) = false", g)
		}
	}
	for _, g := range invalid {
		if ValidGroupName(g) {
			t.Errorf("ValidGroupName(%q) = true", g)
		}
	}
}

func TestAddRemoveGroups(t *testing.T) { forEachBackend(t, testAddRemoveGroups) }

func testAddRemoveGroups(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1234567890", "card"))

	a, err := s.AddGroups(ctx, "jdoe", "ops", "finance.readers", "ops")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"finance.readers", "ops"}; !slices.Equal(a.Groups, want) {
		t.Errorf("after adding: groups %q, want %q", a.Groups, want)
	}
	if len(a.Cards) != 1 {
		t.Errorf("AddGroups returned the account with %d cards, want 1", len(a.Cards))
	}
	// Idempotent: adding again changes nothing, not even UpdatedAt's row.
	again, err := s.AddGroups(ctx, "jdoe", "ops")
	if err != nil || !reflect.DeepEqual(again, a) {
		t.Errorf("adding a held group again = %s, %v; want unchanged %s", describe(again), err, describe(a))
	}

	// Every getter and list carries the groups.
	getters := map[string]func() (*Account, error){
		"username":    func() (*Account, error) { return s.AccountByUsername(ctx, "jdoe") },
		"edipi":       func() (*Account, error) { return s.AccountByEDIPI(ctx, "1234567890") },
		"fingerprint": func() (*Account, error) { return s.AccountByFingerprint(ctx, fingerprint("card")) },
		"list": func() (*Account, error) {
			l, err := s.ListAccounts(ctx, 0, 0)
			if err != nil || len(l) != 1 {
				return nil, fmt.Errorf("list: %d accounts, %v", len(l), err)
			}
			return l[0], nil
		},
		"list by status": func() (*Account, error) {
			l, err := s.ListAccountsByStatus(ctx, StatusActive, 0, 0)
			if err != nil || len(l) != 1 {
				return nil, fmt.Errorf("list: %d accounts, %v", len(l), err)
			}
			return l[0], nil
		},
	}
	for name, get := range getters {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		assertAccount(t, got, a)
	}

	a, err = s.RemoveGroups(ctx, "jdoe", "ops", "never-held")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"finance.readers"}; !slices.Equal(a.Groups, want) {
		t.Errorf("after removing: groups %q, want %q", a.Groups, want)
	}
	a, err = s.RemoveGroups(ctx, "jdoe", "finance.readers")
	if err != nil || a.Groups != nil {
		t.Errorf("after removing the last group: %#v, %v; want nil groups", a.Groups, err)
	}
	if got, err := s.AccountByUsername(ctx, "jdoe"); err != nil || got.Groups != nil {
		t.Errorf("read back after removing all: %#v, %v; want nil", got.Groups, err)
	}
}

func TestGroupsErrors(t *testing.T) { forEachBackend(t, testGroupsErrors) }

func testGroupsErrors(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1234567890"))

	for _, bad := range [][]string{{"Ops"}, {"ops", ""}, {`x"],"admin`}, {"a%"}, {strings.Repeat("g", 65)}} {
		_, err := s.AddGroups(ctx, "jdoe", bad...)
		assertErrorIs(t, err, ErrInvalidGroup)
		_, err = s.RemoveGroups(ctx, "jdoe", bad...)
		assertErrorIs(t, err, ErrInvalidGroup)
	}
	_, err := s.AddGroups(ctx, "nobody", "ops")
	assertErrorIs(t, err, ErrNotFound)
	_, err = s.RemoveGroups(ctx, "nobody", "ops")
	assertErrorIs(t, err, ErrNotFound)

	// The bound applies to the sum of what is held and what is added.
	var many []string
	for i := range MaxGroupsPerAccount {
		many = append(many, fmt.Sprintf("g%03d", i))
	}
	if _, err := s.AddGroups(ctx, "jdoe", many...); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddGroups(ctx, "jdoe", "one-more")
	assertErrorIs(t, err, ErrInvalidGroup)
	if got, _ := s.AccountByUsername(ctx, "jdoe"); len(got.Groups) != MaxGroupsPerAccount {
		t.Errorf("a refused addition left %d groups, want %d", len(got.Groups), MaxGroupsPerAccount)
	}

	// CreateAccount checks and sorts groups too.
	a := newAccount("bad", "1234567891")
	a.Groups = []string{"Admins"}
	assertErrorIs(t, s.CreateAccount(ctx, a), ErrInvalidGroup)
	a.Groups = []string{"b", "a", "b"}
	mustCreate(t, s, a)
	if got, _ := s.AccountByUsername(ctx, "bad"); !slices.Equal(got.Groups, []string{"a", "b"}) {
		t.Errorf("CreateAccount stored groups %q, want [a b]", got.Groups)
	}
}

// Two store handles on one database, as two gateway nodes would be, add
// different groups to the same account at once: every addition sticks.
func TestConcurrentAddGroups(t *testing.T) { forEachBackend(t, testConcurrentAddGroups) }

func testConcurrentAddGroups(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	s1, s2 := db.open(t), db.open(t)
	mustCreate(t, s1, newAccount("jdoe", "1234567890"))

	const perHandle = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*perHandle)
	for h, s := range []*SQLStore{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perHandle {
				if _, err := s.AddGroups(ctx, "jdoe", fmt.Sprintf("h%d-g%02d", h, i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s1.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Groups) != 2*perHandle {
		t.Errorf("%d groups stuck, want %d: %q", len(got.Groups), 2*perHandle, got.Groups)
	}
}

func TestListGroups(t *testing.T) { forEachBackend(t, testListGroups) }

func testListGroups(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	if l, err := s.ListGroups(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListGroups on an empty store = %v, %v", l, err)
	}
	for i, groups := range [][]string{{"ops", "finance"}, {"ops"}, nil, {"admins", "ops"}} {
		a := newAccount(fmt.Sprintf("user%d", i), fmt.Sprintf("%010d", i))
		a.Groups = groups
		mustCreate(t, s, a)
	}
	got, err := s.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []GroupCount{{"admins", 1}, {"finance", 1}, {"ops", 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListGroups = %v, want %v", got, want)
	}
}

// The group_names column refuses what is not a JSON array, whoever writes.
func TestGroupsColumnCheck(t *testing.T) { forEachBackend(t, testGroupsColumnCheck) }

func testGroupsColumnCheck(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1234567890"))
	for _, bad := range []string{`"ops"`, `{"a":1}`, `[`, ``} {
		if _, err := s.writes().exec(ctx, `UPDATE accounts SET group_names = ? WHERE username = 'jdoe'`, bad); err == nil {
			t.Errorf("group_names = %q was accepted", bad)
		}
	}
}

func TestGroupEditsAnnounceChanges(t *testing.T) { forEachBackend(t, testGroupEditsAnnounceChanges) }

func testGroupEditsAnnounceChanges(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustCreate(t, s, newAccount("jdoe", "1234567890", "card"))
	changes := recordChanges(t, s)

	if _, err := s.AddGroups(ctx, "jdoe", "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddGroups(ctx, "jdoe", "ops"); err != nil { // no change, no notice
		t.Fatal(err)
	}
	if _, err := s.RemoveGroups(ctx, "jdoe", "ops"); err != nil {
		t.Fatal(err)
	}
	want := Change{AccountID: a.ID, Username: "jdoe", EDIPI: "1234567890", Fingerprints: []string{fingerprint("card")}}
	if got := changes(); !reflect.DeepEqual(got, []Change{want, want}) {
		t.Errorf("changes announced = %+v, want two of %+v", got, want)
	}
}
