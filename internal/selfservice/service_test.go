package selfservice

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
)

// The use cases, without HTTP: typed input in, typed outcome out, audit
// events as the gateway records them. The pages over them are tested in
// package portal.

const (
	ucPassword = "Zebra!Quartz@Mango"
	ucWrong    = "Wrong!Password@Guess"
	ucSSN      = "219-09-9999"
	ucDOB      = "1971-03-14"
)

// oneRoster knows one person.
type oneRoster struct{}

func (oneRoster) Verify(_ context.Context, c roster.Claim) (roster.Result, error) {
	if c.EDIPI != "1234567890" || strings.ReplaceAll(c.SSN, "-", "") != "219099999" || c.DOB != ucDOB {
		return roster.Result{}, nil
	}
	return roster.Result{Match: true, Records: []roster.Record{{EDIPI: "1234567890", Category: "Active Army", Last: "DOE", First: "JOHN"}}}, nil
}

func (oneRoster) NeedsPEBD(context.Context, string) (roster.PEBDNeed, error) {
	return roster.PEBDNotAsked, nil
}

type event struct {
	name, outcome string
	fields        map[string]string
}

type fixture struct {
	t       *testing.T
	svc     *Service
	db      *store.SQLStore
	hasher  *credential.Hasher
	card    *cacid.Identity
	mu      sync.Mutex
	now     time.Time
	events  []event
	changes int
	// hashes counts the hashes the hasher ran (each got a slot).
	hashes atomic.Int32
	cfg    Config
	deps   Deps
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, now: time.Now(), cfg: cfg,
		card: &cacid.Identity{EDIPI: "1234567890", GivenName: "JOHN", FamilyName: "DOE", FingerprintHex: strings.Repeat("ab", 32),
			Subject: "CN=DOE.JOHN.1234567890", Issuer: "CN=DOD ID CA-70", Serial: "0a", NotAfter: time.Now().Add(time.Hour)}}
	f.hasher = f.newHasher(2, credential.Queue{})
	f.deps = Deps{Roster: oneRoster{}, Accounts: db, Hasher: f.hasher, Sealer: sealer, Throttle: db,
		Audit: func(_ context.Context, name, outcome string, fields map[string]string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, event{name, outcome, fields})
		},
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		OnChange: func() { f.mu.Lock(); defer f.mu.Unlock(); f.changes++ },
	}
	f.rebuild()
	return f
}

// rebuild makes the service again from f.cfg and f.deps.
func (f *fixture) rebuild() {
	f.t.Helper()
	svc, err := New(f.cfg, f.deps)
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc = svc
}

// newHasher is a fast hasher with slots and q whose hashes f counts.
func (f *fixture) newHasher(slots int, q credential.Queue) *credential.Hasher {
	q.Waited = func(credential.Priority, time.Duration) { f.hashes.Add(1) }
	return credential.NewQueuedHasher(credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}, slots, q)
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); defer f.mu.Unlock(); f.now = f.now.Add(d) }

// last returns the last event recorded.
func (f *fixture) last() event {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		f.t.Fatal("nothing audited")
	}
	return f.events[len(f.events)-1]
}

func (f *fixture) addAccount(username, edipi, password string) *store.Account {
	f.t.Helper()
	ctx := context.Background()
	a := &store.Account{Username: username, EDIPI: edipi, GivenName: "JOHN", FamilyName: "DOE", Email: "j@example.com",
		Status: store.StatusActive, Categories: []string{"Active Army"}}
	if err := f.db.CreateAccount(ctx, a); err != nil {
		f.t.Fatal(err)
	}
	hash, err := f.hasher.Hash(ctx, password)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.SetPassword(ctx, a.ID, hash, PasswordHistory); err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *fixture) link(username, password string) LinkResult {
	f.t.Helper()
	res, err := f.svc.LinkCard(context.Background(), f.card, LinkInput{Username: username, Password: password})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// TestLinkCardOutcomes walks registering a card through its outcomes:
// invalid input, an unknown username, wrong passwords counting down to a
// lock, and the right password once the lock is over.
func TestLinkCardOutcomes(t *testing.T) {
	f := newFixture(t, Config{})
	f.addAccount("john.doe", "1234567890", ucPassword)

	if res := f.link("", ""); res.Status != Invalid || res.Errors.By["username"] == "" || res.Errors.By["password"] == "" {
		t.Fatalf("empty form: %+v", res.Outcome)
	}
	// An unknown username counts down like an account.
	res := f.link("nobody.here", ucPassword)
	if res.Status != Wrong || !res.Known || res.Login.Remaining != 2 {
		t.Fatalf("unknown username: %+v", res.Outcome)
	}
	if f.svc.dummy.hash == "" {
		t.Error("an unknown username was not checked against the dummy hash")
	}
	if e := f.last(); e.name != "card.linked" || e.outcome != "failure" || e.fields["reason"] != "unknown_username" || e.fields["username"] != "" || e.fields["via"] != "holder" {
		t.Fatalf("audit %+v", e)
	}
	for want := 2; want >= 1; want-- {
		res = f.link("  John.Doe ", ucWrong)
		if res.Status != Wrong || !res.Known || res.Login.Remaining != want || res.Username != "john.doe" {
			t.Fatalf("wrong password, want %d remaining: %+v", want, res.Outcome)
		}
	}
	if !strings.Contains(res.Errors.List[0].Message, "1 try remaining") {
		t.Errorf("message %q", res.Errors.List[0].Message)
	}
	if res = f.link("john.doe", ucWrong); res.Status != Locked || res.Login.LockedUntil.IsZero() {
		t.Fatalf("third wrong password: %+v", res.Outcome)
	}
	if e := f.last(); e.fields["reason"] != "locked" || e.fields["username"] != "john.doe" {
		t.Fatalf("audit %+v", e)
	}
	// The right password is refused while the account is locked, and
	// that counts against the card (now at its fifth attempt).
	if res = f.link("john.doe", ucPassword); res.Status != Locked {
		t.Fatalf("right password while locked: %+v", res.Outcome)
	}
	if res = f.link("john.doe", ucPassword); res.Status != Limited {
		t.Fatalf("sixth attempt with the card: %+v", res.Outcome)
	}
	if e := f.last(); e.outcome != "limited" || e.fields["via"] != "holder" || e.fields["card"] != f.card.FingerprintHex {
		t.Fatalf("audit %+v", e)
	}
	f.advance(FailureWindow + 30*time.Minute)
	if res = f.link("john.doe", ucPassword); res.Status != Done || res.Account.Username != "john.doe" {
		t.Fatalf("right password after the lock: %+v", res.Outcome)
	}
	if e := f.last(); e.name != "card.linked" || e.outcome != "success" || f.changes != 1 {
		t.Fatalf("audit %+v, %d changes", e, f.changes)
	}
	// Linked: the right password is given back, not counted.
	n, _, err := f.db.Attempts(context.Background(), cardPrefix+linkLimit(f.card).Key, f.now, FailureWindow)
	if err != nil || n != 0 {
		t.Errorf("card count after success %d, %v", n, err)
	}
}

// TestLinkCardRefusesAnotherPersonsAccount: the right password of someone
// else's account registers nothing.
func TestLinkCardRefusesAnotherPersonsAccount(t *testing.T) {
	f := newFixture(t, Config{})
	f.addAccount("jane.roe", "9999999999", ucPassword)
	res := f.link("jane.roe", ucPassword)
	if res.Status != Refused || res.Reason != "edipi_mismatch" || res.Account.Username != "jane.roe" {
		t.Fatalf("%+v", res.Outcome)
	}
	if e := f.last(); e.fields["reason"] != "edipi_mismatch" || f.changes != 0 {
		t.Fatalf("audit %+v, %d changes", e, f.changes)
	}
}

// TestSignInAddressLimit: wrong passwords count against the client
// address across accounts; the refusal is audited; a sign-in that started
// a session gives its attempt back.
func TestSignInAddressLimit(t *testing.T) {
	f := newFixture(t, Config{AttemptsPerAddress: 3})
	f.addAccount("john.doe", "1234567890", ucPassword)
	ctx := context.Background()
	signIn := func(username, password string) SignInResult {
		t.Helper()
		res, err := f.svc.SignIn(ctx, SignInInput{Username: username, Password: password, Address: "192.0.2.7:4431"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := signIn("john.doe", ucPassword)
	if res.Status != Done || res.Account.Username != "john.doe" {
		t.Fatalf("right password: %+v", res.Outcome)
	}
	if e := f.last(); e.name != "signin.password" || e.outcome != "success" {
		t.Fatalf("audit %+v", e)
	}
	if err := f.svc.SignedIn(ctx, "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a.b", "c.d", "e.f"} {
		if res = signIn(u, ucWrong); res.Status != Wrong || res.Login.Remaining != 2 {
			t.Fatalf("spray %s: %+v", u, res.Outcome)
		}
	}
	if res = signIn("john.doe", ucPassword); res.Status != Limited {
		t.Fatalf("after three failures from the address: %+v", res.Outcome)
	}
	if e := f.last(); e.outcome != "failure" || e.fields["reason"] != "too_many_attempts_from_address" {
		t.Fatalf("audit %+v", e)
	}
	// Invalid input is not an attempt.
	if res = signIn("", ""); res.Status != Invalid {
		t.Fatalf("empty form: %+v", res.Outcome)
	}
}

// TestCheckIdentity: a mismatch counts against the card and is audited;
// a match leads to the profile step with the roster's categories.
func TestCheckIdentity(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	res, err := f.svc.CheckIdentity(ctx, f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: "1980-01-01"})
	if err != nil || res.Status != Wrong {
		t.Fatalf("mismatch: %+v %v", res.Outcome, err)
	}
	if e := f.last(); e.name != "enroll.identity" || e.fields["reason"] != "no_match" {
		t.Fatalf("audit %+v", e)
	}
	res, err = f.svc.CheckIdentity(ctx, f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB})
	if err != nil || res.Status != Done || res.Ineligible || res.Next.State == "" || len(res.Next.Categories) != 1 {
		t.Fatalf("match: %+v %v", res, err)
	}
	if e := f.last(); e.outcome != "success" || e.fields["categories"] != "Active Army" {
		t.Fatalf("audit %+v", e)
	}
	n, _, err := f.db.Attempts(ctx, cardPrefix+identityLimit(f.card).Key, f.now, FailureWindow)
	if err != nil || n != 1 {
		t.Errorf("identity count %d, %v; want the one mismatch", n, err)
	}
	if res, _ = f.svc.CheckIdentity(ctx, f.card, IdentityInput{IDType: "ssn", SSN: "12", DOB: ucDOB}); res.Status != Invalid {
		t.Fatalf("malformed SSN: %+v", res.Outcome)
	}
	// A later step with a state it was not sealed for starts over.
	if pr, err := f.svc.SetProfile(ctx, f.card, ProfileInput{State: "forged"}); err != nil || pr.Status != Restart {
		t.Fatalf("forged state: %+v %v", pr.Outcome, err)
	}
}

// TestDecoyQuestions: a username that cannot be reset is asked three
// different questions of the catalogue, the same each time whatever the
// case, and not one fixed set for every such username.
func TestDecoyQuestions(t *testing.T) {
	f := newFixture(t, Config{})
	q := f.svc.decoyQuestions("Nobody.Here")
	if q != f.svc.decoyQuestions("nobody.here") {
		t.Error("decoy questions depend on case")
	}
	sets := map[[credential.QuestionsRequired]string]bool{}
	for i := range 20 {
		q := f.svc.decoyQuestions("user" + strconv.Itoa(i))
		if q[0] == q[1] || q[1] == q[2] || q[0] == q[2] {
			t.Errorf("repeated question: %v", q)
		}
		for _, id := range q {
			if _, ok := credential.QuestionByID(id); !ok {
				t.Errorf("no question %q", id)
			}
		}
		sets[q] = true
	}
	if len(sets) < 10 {
		t.Errorf("20 usernames got only %d sets of questions", len(sets))
	}
}

// TestResetDecoyCountsDown: a username that cannot be reset counts down
// and locks like a real account, and never succeeds.
func TestResetDecoyCountsDown(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	q, err := f.svc.ResetQuestions(ctx, f.card, "Nobody.Here", "192.0.2.1")
	if err != nil || q.Status != Done || q.Form.State == "" || q.Form.Questions != f.svc.decoyQuestions("nobody.here") {
		t.Fatalf("step 1: %+v %v", q, err)
	}
	in := ResetInput{State: q.Form.State, Answers: [3]string{"a", "b", "c"}, Password: ucPassword, Confirm: ucPassword}
	for want := 2; want >= 1; want-- {
		res, err := f.svc.ResetPassword(ctx, f.card, in)
		if err != nil || res.Status != Wrong || res.Login.Remaining != want || res.Form.State == "" {
			t.Fatalf("want %d remaining: %+v %v", want, res.Outcome, err)
		}
		if e := f.last(); e.fields["reason"] != "unknown_username" || e.fields["username"] != "" {
			t.Fatalf("audit %+v", e)
		}
	}
	if res, err := f.svc.ResetPassword(ctx, f.card, in); err != nil || res.Status != Locked {
		t.Fatalf("third: %+v %v", res.Outcome, err)
	}
}

// TestChangePasswordWrongCurrent: the current password is checked under
// the account's lock and the form says what is wrong.
func TestChangePasswordWrongCurrent(t *testing.T) {
	f := newFixture(t, Config{})
	acct := f.addAccount("john.doe", "1234567890", ucPassword)
	res, err := f.svc.ChangePassword(context.Background(), f.card, acct, ChangePasswordInput{Current: ucWrong, Password: "Violet$Harbor%Lamp", Confirm: "Violet$Harbor%Lamp"})
	if err != nil || res.Status != Wrong || res.Errors.By["current"] == "" || res.Login.Remaining != 2 {
		t.Fatalf("%+v %v", res.Outcome, err)
	}
	if e := f.last(); e.name != "password.changed" || e.fields["reason"] != "bad_password" {
		t.Fatalf("audit %+v", e)
	}
	res, err = f.svc.ChangePassword(context.Background(), f.card, acct, ChangePasswordInput{Current: ucPassword, Password: "Violet$Harbor%Lamp", Confirm: "Violet$Harbor%Lamp"})
	if err != nil || res.Status != Done || f.changes != 1 {
		t.Fatalf("%+v %v, %d changes", res.Outcome, err, f.changes)
	}
}

func TestDecoyKeyHidesUsername(t *testing.T) {
	f := newFixture(t, Config{})
	k := f.svc.decoyKey("Nobody.Here ")
	if k != f.svc.decoyKey("nobody.here") {
		t.Error("decoy key depends on case or spaces")
	}
	if strings.Contains(strings.ToLower(k), "nobody") || len(k+decoyLockSuffix) > MaxThrottleKeyLen {
		t.Errorf("decoy key %q", k)
	}
	if k == f.svc.decoyKey("nobody.there") {
		t.Error("decoy keys collide")
	}
	other := newFixture(t, Config{}) // another site's sealing key
	if k == other.svc.decoyKey("nobody.here") {
		t.Error("decoy key does not depend on the key")
	}
	// The longest username the form accepts still fits.
	if k := f.svc.decoyKey(strings.Repeat("\u0130", maxUsernameLen)); len(k+decoyLockSuffix) > MaxThrottleKeyLen {
		t.Errorf("decoy key of %d bytes", len(k))
	}
}
