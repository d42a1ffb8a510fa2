package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// newEnrollment returns a complete enrollment; answers and password hashes
// are derived from the EDIPI so each person's differ.
func newEnrollment(base, edipi, cardSeed string) *Enrollment {
	return &Enrollment{
		Account: Account{
			EDIPI:        edipi,
			GivenName:    "John",
			MiddleName:   "B",
			FamilyName:   "Smith",
			Email:        "john.b.smith@example.mil",
			Affiliation:  "USA",
			Status:       StatusPending,
			Categories:   []string{"Active Army", "DA Civilian"},
			Organization: "HQ, 1st Battalion",
			Location:     "North America",
			WorkAddress:  "Bldg 1, Fort Example, VA 22060",
			Phone:        "+1 703 555 0100",
		},
		UsernameBase: base,
		Card:         newCard(cardSeed),
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$salt$" + edipi,
		Answers: [3]Answer{
			{QuestionID: "first-pet", Hash: "$argon2id$pet$" + edipi},
			{QuestionID: "favorite-teacher", Hash: "$argon2id$teacher$" + edipi},
			{QuestionID: "birth-city", Hash: "$argon2id$city$" + edipi},
		},
	}
}

func mustEnroll(t testing.TB, s *SQLStore, e *Enrollment) *Account {
	t.Helper()
	a, err := s.Enroll(context.Background(), e)
	if err != nil {
		t.Fatalf("Enroll(%q): %v", e.UsernameBase, err)
	}
	return a
}

// countRows counts a table's rows, for checking that failures wrote none.
func countRows(t testing.TB, s *SQLStore, table string) int {
	t.Helper()
	var n int
	if err := s.reads().queryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnrollRoundTrip(t *testing.T) { forEachBackend(t, testEnrollRoundTrip) }

func testEnrollRoundTrip(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	e := newEnrollment("john.b.smith", "1234567890", "card")
	e.Account.Username = "ignored"
	e.Account.Suffix = "Jr"
	e.Account.Status = StatusActive
	original := *e
	original.Account.Categories = slices.Clone(e.Account.Categories)

	before := now()
	got := mustEnroll(t, s, e)

	if !reflect.DeepEqual(e, &original) {
		t.Errorf("Enroll modified its argument:\n got: %+v\nwant: %+v", e, &original)
	}
	want := e.Account
	want.ID = got.ID
	want.Username = "john.b.smith"
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.CreatedAt
	want.HasPassword = true
	want.PasswordChangedAt = got.CreatedAt
	card := e.Card
	card.AccountID, card.CreatedAt = got.ID, got.CreatedAt
	want.Cards = []Card{card}
	if got.ID == 0 || got.CreatedAt.Before(before) {
		t.Errorf("Enroll returned ID %d, CreatedAt %v (test began %v)", got.ID, got.CreatedAt, before)
	}
	assertAccount(t, got, &want)

	for name, lookup := range map[string]func() (*Account, error){
		"username":    func() (*Account, error) { return s.AccountByUsername(ctx, "john.b.smith") },
		"EDIPI":       func() (*Account, error) { return s.AccountByEDIPI(ctx, "1234567890") },
		"fingerprint": func() (*Account, error) { return s.AccountByFingerprint(ctx, fingerprint("card")) },
		"list": func() (*Account, error) {
			all, err := s.ListAccounts(ctx, 0, 0)
			if err != nil || len(all) != 1 {
				return nil, fmt.Errorf("ListAccounts = %d accounts, %v", len(all), err)
			}
			return all[0], nil
		},
	} {
		stored, err := lookup()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		assertAccount(t, stored, &want)
	}

	creds, err := s.Credentials(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantCreds := &Credentials{PasswordHash: e.PasswordHash, Answers: e.Answers}
	if !reflect.DeepEqual(creds, wantCreds) {
		t.Errorf("Credentials = %+v, want %+v", creds, wantCreds)
	}
}

func TestEnrollRequiredFields(t *testing.T) { forEachBackend(t, testEnrollRequiredFields) }

func testEnrollRequiredFields(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	for name, spoil := range map[string]func(e *Enrollment){
		"no password":       func(e *Enrollment) { e.PasswordHash = "" },
		"no username base":  func(e *Enrollment) { e.UsernameBase = "" },
		"disabled":          func(e *Enrollment) { e.Account.Status = StatusDisabled },
		"no status":         func(e *Enrollment) { e.Account.Status = "" },
		"empty question":    func(e *Enrollment) { e.Answers[1].QuestionID = "" },
		"empty answer":      func(e *Enrollment) { e.Answers[2].Hash = "" },
		"malformed card":    func(e *Enrollment) { e.Card.Fingerprint = "not hex" },
		"invalid category":  func(e *Enrollment) { e.Account.Categories = []string{"ok", "bad \xff"} },
		"repeated question": func(e *Enrollment) { e.Answers[2].QuestionID = e.Answers[0].QuestionID },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnrollment("john.b.smith", "1234567890", "card")
			spoil(e)
			if _, err := s.Enroll(ctx, e); err == nil {
				t.Fatal("Enroll succeeded")
			}
			for _, table := range []string{"accounts", "cards", "security_answers", "password_history"} {
				if n := countRows(t, s, table); n != 0 {
					t.Errorf("failed Enroll left %d rows in %s", n, table)
				}
			}
		})
	}
}

func TestEnrollRepeatedQuestion(t *testing.T) { forEachBackend(t, testEnrollRepeatedQuestion) }

func testEnrollRepeatedQuestion(t *testing.T, be backend) {
	s := be.openStore(t)
	e := newEnrollment("john.b.smith", "1234567890", "card")
	e.Answers[1].QuestionID = e.Answers[0].QuestionID
	_, err := s.Enroll(context.Background(), e)
	assertErrorIs(t, err, ErrQuestionRepeated)
}

func TestEnrollUsernames(t *testing.T) { forEachBackend(t, testEnrollUsernames) }

func testEnrollUsernames(t *testing.T, be backend) {
	const base = "john.b.smith"
	tests := []struct {
		name  string
		base  string
		taken []string
		want  string
	}{
		{"base free", base, nil, base},
		{"base taken", base, []string{base}, base + "1"},
		{"base to base2 taken", base, []string{base, base + "1", base + "2"}, base + "3"},
		{"first free is a gap", base, []string{base, base + "1", base + "3"}, base + "2"},
		{"only a suffixed name taken", base, []string{base + "1"}, base},
		{"double-digit suffixes", base, []string{base, base + "1", base + "2", base + "3", base + "4", base + "5",
			base + "6", base + "7", base + "8", base + "9", base + "10"}, base + "11"},
		{"other families do not count", base, []string{
			"john.b.smithson", "john.b.smith1x", "john.b.smith01", "john.b.smith0", "john.b.smith.jr",
			"john.b.smith-1", "john.b.smith 1", "John.B.Smith", "john.b.smit", "john.b.smith\x001",
		}, base},
		{"other families among taken ones", base, []string{base, "john.b.smithson", "john.b.smith1x", "john.b.smith01"}, base + "1"},
		{"base ending in a digit", "x.y.z2", []string{"x.y.z", "x.y.z1", "x.y.z2", "x.y.z21", "x.y.z20"}, "x.y.z22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := be.openStore(t)
			for i, name := range tt.taken {
				if strings.Contains(name, "\x00") && !be.storesNUL {
					continue
				}
				mustCreate(t, s, newAccount(name, fmt.Sprintf("9%09d", i)))
			}
			got := mustEnroll(t, s, newEnrollment(tt.base, "1234567890", "card"))
			if got.Username != tt.want {
				t.Errorf("username = %q, want %q", got.Username, tt.want)
			}
		})
	}
}

// A lookup that misses names, as a server database's can miss a concurrent
// transaction's insert, leaves the UNIQUE constraint to find the conflicts.
func TestEnrollRetriesUsernameConflicts(t *testing.T) {
	forEachBackend(t, testEnrollRetriesUsernameConflicts)
}

func testEnrollRetriesUsernameConflicts(t *testing.T, be backend) {
	const base = "john.b.smith"
	ctx := context.Background()
	blind := func(context.Context, executor, string) (map[int]bool, error) { return nil, nil }

	s := be.openStore(t)
	for i, name := range []string{base, base + "1", base + "2"} {
		mustCreate(t, s, newAccount(name, fmt.Sprintf("9%09d", i)))
	}
	got, err := s.enroll(ctx, newEnrollment(base, "1234567890", "card"), blind)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != base+"3" {
		t.Errorf("username = %q, want %q", got.Username, base+"3")
	}

	// The retries are bounded, and leave nothing behind when they run out.
	s = be.openStore(t)
	for i := range maxUsernameAttempts {
		mustCreate(t, s, newAccount(usernameWithSuffix(base, i), fmt.Sprintf("9%09d", i)))
	}
	_, err = s.enroll(ctx, newEnrollment(base, "1234567890", "card"), blind)
	assertErrorIs(t, err, ErrUsernameTaken)
	if n := countRows(t, s, "accounts"); n != maxUsernameAttempts {
		t.Errorf("%d accounts after failed enrollment, want %d", n, maxUsernameAttempts)
	}
	if n := countRows(t, s, "security_answers"); n != 0 {
		t.Errorf("failed enrollment left %d security answers", n)
	}
	// With a lookup that sees, the same enrollment takes the next name.
	got = mustEnroll(t, s, newEnrollment(base, "1234567890", "card"))
	if want := usernameWithSuffix(base, maxUsernameAttempts); got.Username != want {
		t.Errorf("username = %q, want %q", got.Username, want)
	}
}

// Two stores on one file stand for two cacgate nodes.
func TestEnrollNamesakesConcurrentlyAcrossNodes(t *testing.T) {
	forEachBackend(t, testEnrollNamesakesConcurrentlyAcrossNodes)
}

func testEnrollNamesakesConcurrentlyAcrossNodes(t *testing.T, be backend) {
	const (
		base    = "john.b.smith"
		racers  = 20
		perNode = racers / 2
	)
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}

	var (
		start     = make(chan struct{})
		wg        sync.WaitGroup
		usernames = make([]string, racers)
		errs      = make([]error, racers)
	)
	for i := range racers {
		node := nodes[i/perNode]
		wg.Go(func() {
			e := newEnrollment(base, fmt.Sprintf("%010d", i), fmt.Sprint("card", i))
			<-start
			a, err := node.Enroll(context.Background(), e)
			if err == nil {
				usernames[i] = a.Username
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	want := []string{base}
	for i := 1; i < racers; i++ {
		want = append(want, usernameWithSuffix(base, i))
	}
	slices.Sort(want)
	slices.Sort(usernames)
	if !slices.Equal(usernames, want) {
		t.Errorf("usernames = %v\nwant %v", usernames, want)
	}
	for i := range racers {
		a, err := nodes[i%2].AccountByFingerprint(context.Background(), fingerprint(fmt.Sprint("card", i)))
		if err != nil || a.EDIPI != fmt.Sprintf("%010d", i) {
			t.Errorf("card %d: %v, account %s", i, err, describe(a))
		}
	}
}

func TestEnrollSameCardConcurrently(t *testing.T) { forEachBackend(t, testEnrollSameCardConcurrently) }

func testEnrollSameCardConcurrently(t *testing.T, be backend) {
	const racers = 10
	tests := []struct {
		name      string
		sameEDIPI bool
		want      []error // what losers may get
	}{
		{"same person", true, []error{ErrCardTaken, ErrEDIPITaken}},
		{"different DoD IDs", false, []error{ErrCardTaken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := be.newDatabase(t)
			nodes := []*SQLStore{db.open(t), db.open(t)}

			var (
				start = make(chan struct{})
				wg    sync.WaitGroup
				errs  = make([]error, racers)
			)
			for i := range racers {
				edipi := "1234567890"
				if !tt.sameEDIPI {
					edipi = fmt.Sprintf("%010d", i)
				}
				wg.Go(func() {
					e := newEnrollment("john.b.smith", edipi, "contested card")
					<-start
					_, errs[i] = nodes[i%2].Enroll(context.Background(), e)
				})
			}
			close(start)
			wg.Wait()

			var wins int
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
				case !slices.ContainsFunc(tt.want, func(want error) bool { return errors.Is(err, want) }):
					t.Errorf("racer %d: %v, want success or one of %v", i, err, tt.want)
				}
			}
			if wins != 1 {
				t.Errorf("%d racers enrolled, want exactly 1", wins)
			}
			for table, want := range map[string]int{"accounts": 1, "cards": 1, "security_answers": 3, "password_history": 0} {
				if n := countRows(t, nodes[0], table); n != want {
					t.Errorf("%s holds %d rows, want %d", table, n, want)
				}
			}
		})
	}
}

func TestEnrollFailureLeavesNothing(t *testing.T) { forEachBackend(t, testEnrollFailureLeavesNothing) }

func testEnrollFailureLeavesNothing(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	owner := mustEnroll(t, s, newEnrollment("owner.o.one", "1111111111", "taken"))
	if err := s.SetPassword(ctx, owner.ID, "second hash", 5); err != nil {
		t.Fatal(err)
	}
	counts := func() map[string]int {
		m := map[string]int{}
		for _, table := range []string{"accounts", "cards", "cleared_cards", "security_answers", "password_history"} {
			m[table] = countRows(t, s, table)
		}
		return m
	}
	before := counts()

	for name, e := range map[string]*Enrollment{
		"card taken":  newEnrollment("john.b.smith", "2222222222", "taken"),
		"EDIPI taken": newEnrollment("john.b.smith", "1111111111", "fresh"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Enroll(ctx, e)
			if !errors.Is(err, ErrCardTaken) && !errors.Is(err, ErrEDIPITaken) {
				t.Fatalf("Enroll: %v, want ErrCardTaken or ErrEDIPITaken", err)
			}
			if after := counts(); !reflect.DeepEqual(after, before) {
				t.Errorf("rows after failed Enroll: %v, before: %v", after, before)
			}
			_, err = s.AccountByUsername(ctx, "john.b.smith")
			assertErrorIs(t, err, ErrNotFound)
		})
	}

	// Nothing of the failures stands in the way, the username included.
	got := mustEnroll(t, s, newEnrollment("john.b.smith", "2222222222", "fresh"))
	if got.Username != "john.b.smith" {
		t.Errorf("username after failed attempts = %q, want %q", got.Username, "john.b.smith")
	}
}

// Enrolling a card is an explicit registration: like LinkCard, it lifts an
// earlier clearing of the card.
func TestEnrollLiftsClearing(t *testing.T) { forEachBackend(t, testEnrollLiftsClearing) }

func testEnrollLiftsClearing(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("mistaken", "1111111111", "card"))
	if err := s.UnlinkCard(ctx, "mistaken", fingerprint("card")); err != nil {
		t.Fatal(err)
	}
	got := mustEnroll(t, s, newEnrollment("john.b.smith", "2222222222", "card"))
	if n := countRows(t, s, "cleared_cards"); n != 0 {
		t.Errorf("cleared_cards holds %d rows after enrolling the card, want 0", n)
	}
	if len(got.Cards) != 1 || got.Cards[0].Fingerprint != fingerprint("card") {
		t.Errorf("enrolled account: %s", describe(got))
	}
}

func TestUsernameSuffix(t *testing.T) {
	const base = "john.b.smith"
	for _, tt := range []struct {
		username string
		n        int
		ok       bool
	}{
		{base, 0, true},
		{base + "1", 1, true},
		{base + "13", 13, true},
		{base + "0", 0, false},
		{base + "01", 0, false},
		{base + "+1", 0, false},
		{base + "1x", 0, false},
		{base + "son", 0, false},
		{base + "99999999999999999999999", 0, false},
		{"john.b.smit", 0, false},
		{"x" + base + "1", 0, false},
	} {
		n, ok := usernameSuffix(tt.username, base)
		if n != tt.n || ok != tt.ok {
			t.Errorf("usernameSuffix(%q) = %d, %v; want %d, %v", tt.username, n, ok, tt.n, tt.ok)
		}
		if ok && usernameWithSuffix(base, n) != tt.username {
			t.Errorf("usernameWithSuffix(%d) = %q, want %q", n, usernameWithSuffix(base, n), tt.username)
		}
	}
}

// Enroll's scan of a username family finds exactly the names it could
// have chosen, whatever the database's default collation: the test
// PostgreSQL server's sorts linguistically, where "john.b.smith1" comes
// after "john.b.smith:".
func TestTakenUsernameSuffixesScan(t *testing.T) { forEachBackend(t, testTakenUsernameSuffixesScan) }

func testTakenUsernameSuffixesScan(t *testing.T, be backend) {
	const base = "john.b.smith"
	s := be.openStore(t)
	for i, name := range []string{
		base, base + "1", base + "2", base + "10", base + ":", base + "~", base + "-1", base + ".jr",
		base + " 3", base + "01", "john.b.smiti", "john.b.smitH1", "John.b.smith1", "john.b.smit",
	} {
		mustCreate(t, s, newAccount(name, fmt.Sprintf("9%09d", i)))
	}
	var taken map[int]bool
	err := s.inWriteTx(context.Background(), func(ex executor) error {
		var err error
		taken, err = takenUsernameSuffixes(context.Background(), ex, base)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]bool{0: true, 1: true, 2: true, 10: true}; !reflect.DeepEqual(taken, want) {
		t.Errorf("taken suffixes = %v, want %v", taken, want)
	}
}
