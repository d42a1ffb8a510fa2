package selfservice

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
)

// Enrollment's hashing steps (profile, questions) against a replaying
// client: each sealed state is used once, every post is counted against
// the card and the client address before anything is hashed, a card with
// an account gets no state, and a busy hasher leaves the state usable.

const addrA = "192.0.2.10"

func (f *fixture) identity() ProfileForm {
	f.t.Helper()
	res, err := f.svc.CheckIdentity(context.Background(), f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB})
	if err != nil || res.Status != Done || res.Next.State == "" {
		f.t.Fatalf("identity: %+v %v", res.Outcome, err)
	}
	return res.Next
}

func profileInput(state, address string) ProfileInput {
	return ProfileInput{State: state, Address: address, Password: ucPassword, Confirm: ucPassword,
		Profile: Profile{Email: "john.doe@example.com", Organization: "USA", Location: "Europe"}}
}

func (f *fixture) profile(state, address string) ProfileResult {
	f.t.Helper()
	res, err := f.svc.SetProfile(context.Background(), f.card, profileInput(state, address))
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) audited(name, outcome, reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.name == name && e.outcome == outcome && e.fields["reason"] == reason {
			return true
		}
	}
	return false
}

func (f *fixture) counted(key string) int {
	f.t.Helper()
	n, _, err := f.db.Attempts(context.Background(), key, f.Now(), FailureWindow)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

// TestEnrollStateIsSingleUse: a profile state hashes the password once;
// sent again it is refused as replayed (audited), hashing nothing, and so
// is the questions state after the account was made from it.
func TestEnrollStateIsSingleUse(t *testing.T) {
	f := newFixture(t, Config{})
	state := f.identity().State
	res := f.profile(state, addrA)
	if res.Status != Done || res.Next.State == "" {
		t.Fatalf("first use: %+v", res.Outcome)
	}
	if got := f.hashes.Load(); got != 1 {
		t.Fatalf("%d hashes after the profile step, want 1", got)
	}
	again := f.profile(state, addrA)
	if again.Status != Replayed {
		t.Fatalf("the same state again: %+v, want Replayed", again.Outcome)
	}
	if got := f.hashes.Load(); got != 1 {
		t.Errorf("%d hashes after a replay, want still 1", got)
	}
	if !f.audited("enroll.profile", "failure", "state_replayed") {
		t.Errorf("replay not audited: %+v", f.events)
	}
	// A state re-sealed for a form shown again with errors is the same
	// state: used once, whichever copy is sent.
	st2 := f.identity().State
	in := profileInput(st2, addrA)
	in.Confirm = "something else"
	shown, err := f.svc.SetProfile(context.Background(), f.card, in)
	if err != nil || shown.Status != Invalid || shown.Form.State == "" {
		t.Fatalf("form with errors: %+v %v", shown.Outcome, err)
	}
	if r := f.profile(shown.Form.State, addrA); r.Status != Done {
		t.Fatalf("the re-shown form's state: %+v", r.Outcome)
	}
	if r := f.profile(st2, addrA); r.Status != Replayed {
		t.Fatalf("the first copy of a state used through its re-shown form: %+v, want Replayed", r.Outcome)
	}
}

// TestEnrollStateConcurrentUse: many posts of one state at once, as a
// replaying client sends them: exactly one proceeds and hashes.
func TestEnrollStateConcurrentUse(t *testing.T) {
	f := newFixture(t, Config{})
	state := f.identity().State
	const posts = 8
	var wg sync.WaitGroup
	results := make(chan Status, posts)
	for range posts {
		wg.Go(func() {
			res, err := f.svc.SetProfile(context.Background(), f.card, profileInput(state, addrA))
			if err != nil {
				t.Error(err)
				return
			}
			results <- res.Status
		})
	}
	wg.Wait()
	close(results)
	done := 0
	for st := range results {
		switch st {
		case Done:
			done++
		case Replayed, Limited:
		default:
			t.Errorf("outcome %v", st)
		}
	}
	if done != 1 || f.hashes.Load() != 1 {
		t.Errorf("%d of %d concurrent posts of one state went through, %d hashes; want exactly 1 and 1", done, posts, f.hashes.Load())
	}
}

// TestEnrollHashingPostsCounted: replays count against the card (and the
// client address) before anything is hashed, so a replaying client is
// stopped by the limits; a step that went through is given back.
func TestEnrollHashingPostsCounted(t *testing.T) {
	f := newFixture(t, Config{AttemptsPerAddress: 4})
	state := f.identity().State
	if res := f.profile(state, addrA); res.Status != Done {
		t.Fatalf("first use: %+v", res.Outcome)
	}
	addrKey := addressPrefix + AddressKey(addrA)
	if n := f.counted(addrKey); n != 0 {
		t.Errorf("address count after a step that went through: %d, want 0 (given back)", n)
	}
	// From one address: four replays, then the address's limit.
	for i := range 4 {
		if res := f.profile(state, addrA); res.Status != Replayed {
			t.Fatalf("replay %d: %+v", i+1, res.Outcome)
		}
	}
	if res := f.profile(state, addrA); res.Status != Limited {
		t.Fatalf("replay past attempts_per_ip: %+v, want Limited", res.Outcome)
	}
	if !f.audited("enroll.rate_limited", "failure", "too_many_attempts_from_address") {
		t.Errorf("address limit not audited")
	}
	// From other addresses: the card's fifth failure, then its limit,
	// which holds for a fresh state too.
	if res := f.profile(state, "192.0.2.11"); res.Status != Replayed {
		t.Fatalf("fifth replay: %+v", res.Outcome)
	}
	fresh := f.identity().State
	if res := f.profile(fresh, "192.0.2.12"); res.Status != Limited {
		t.Fatalf("after five replays, a fresh state from another address: %+v, want Limited", res.Outcome)
	}
	if !f.audited("enroll.profile", "limited", "") {
		t.Errorf("card limit not audited: %+v", f.events)
	}
	if got := f.hashes.Load(); got != 1 {
		t.Errorf("%d hashes, want 1: nothing past the first post may hash", got)
	}
}

// TestEnrollRefusesRegisteredCard: a card with an account gets no
// identity step, so no fresh states to post.
func TestEnrollRefusesRegisteredCard(t *testing.T) {
	f := newFixture(t, Config{})
	state := f.identity().State // before the card was registered
	acct := f.addAccount("john.doe", "1234567890", ucPassword)
	if err := f.db.LinkCard(context.Background(), acct.ID, storeCard(f.card)); err != nil {
		t.Fatal(err)
	}
	before := f.hashes.Load()
	res, err := f.svc.CheckIdentity(context.Background(), f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB})
	if err != nil || res.Status != Refused || res.Reason != "registered" || res.Next.State != "" {
		t.Fatalf("identity step of a registered card: %+v %v, want Refused (registered) without a state", res.Outcome, err)
	}
	if !f.audited("enroll.identity", "failure", "registered") {
		t.Errorf("not audited: %+v", f.events)
	}
	if p := f.profile(state, addrA); p.Status != Refused || p.Reason != "registered" {
		t.Errorf("a state issued before the card was registered: %+v, want Refused (registered)", p.Outcome)
	}
	if f.hashes.Load() != before {
		t.Errorf("a registered card's enrollment posts hashed")
	}
}

// TestEnrollBusyHasherLeavesStateUsable: when the hasher turns the hash
// away (ErrBusy), nothing is counted and the state stays unused, so the
// person sends the same form again once it has room.
func TestEnrollBusyHasherLeavesStateUsable(t *testing.T) {
	f := newFixture(t, Config{})
	h := f.newHasher(1, credential.Queue{MaxWait: time.Millisecond})
	f.deps.Hasher = h
	f.rebuild()
	state := f.identity().State
	release, err := h.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SetProfile(context.Background(), f.card, profileInput(state, addrA))
	var busy *credential.BusyError
	if !errors.As(err, &busy) || busy.Priority != credential.Enrollment {
		t.Fatalf("profile with the hasher busy: %v, want a BusyError in the enrollment line", err)
	}
	if n := f.counted(addressPrefix + AddressKey(addrA)); n != 0 {
		t.Errorf("address count %d after a busy hasher, want 0", n)
	}
	if n := f.counted(cardPrefix + hashLimit(f.card).Key); n != 0 {
		t.Errorf("card count %d after a busy hasher, want 0", n)
	}
	release()
	if res := f.profile(state, addrA); res.Status != Done {
		t.Fatalf("the same state once the hasher has room: %+v", res.Outcome)
	}
}

var _ store.StateLedger = (*store.SQLStore)(nil)

// TestPruneAttemptsPrunesUsedStates: the attempt pruning loop also deletes
// the records of used states that expired more than Retention ago, and
// keeps the others (still refused as used).
func TestPruneAttemptsPrunesUsedStates(t *testing.T) {
	_, db, now := newTestGuard(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for id, expires := range map[string]time.Time{"old": now.Add(-Retention - time.Minute), "recent": now.Add(-time.Minute), "live": now.Add(time.Minute)} {
		if ok, err := db.UseState(ctx, id, expires); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	pruned := make(chan int64, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		PruneAttempts(ctx, db, time.Millisecond, func() time.Time { return *now }, nil, func(n int64) { pruned <- n })
	}()
	if n := <-pruned; n != 1 {
		t.Errorf("pruned %d, want 1 (the state expired past Retention)", n)
	}
	cancel()
	<-done
	for id, want := range map[string]bool{"old": true, "recent": false, "live": false} {
		if ok, err := db.UseState(context.Background(), id, *now); err != nil || ok != want {
			t.Errorf("using %q after pruning: %v %v, want %v", id, ok, err, want)
		}
	}
}

// TestAccountChangesCounted: the account pages' changes that hash are
// counted per card before hashing, whatever their outcome, so a card
// holder looping "change answers" (or a reused password) is stopped by
// the limit; the address's count is given back for a change that went
// through.
func TestAccountChangesCounted(t *testing.T) {
	f := newFixture(t, Config{})
	acct := f.addAccount("john.doe", "1234567890", ucPassword)
	picks := [credential.QuestionsRequired]credential.AnswerPick{
		{QuestionID: "first-pet", Answer: "Rex the dog", Confirm: "Rex the dog"},
		{QuestionID: "first-car", Answer: "Blue Ford", Confirm: "Blue Ford"},
		{QuestionID: "childhood-street", Answer: "Maple Avenue", Confirm: "Maple Avenue"},
	}
	for i := range AccountChangesMax {
		res, err := f.svc.ChangeAnswers(context.Background(), f.card, acct, ChangeAnswersInput{Current: ucPassword, Picks: picks, Address: addrA})
		if err != nil || res.Status != Done {
			t.Fatalf("change %d: %+v %v", i+1, res.Outcome, err)
		}
	}
	if n := f.counted(addressPrefix + AddressKey(addrA)); n != 0 {
		t.Errorf("address count %d after changes that went through, want 0", n)
	}
	before := f.hashes.Load()
	res, err := f.svc.ChangeAnswers(context.Background(), f.card, acct, ChangeAnswersInput{Current: ucPassword, Picks: picks, Address: addrA})
	if err != nil || res.Status != Limited {
		t.Fatalf("change past the card's limit: %+v %v, want Limited", res.Outcome, err)
	}
	pw, err := f.svc.ChangePassword(context.Background(), f.card, acct, ChangePasswordInput{Current: ucPassword, Password: ucPassword, Confirm: ucPassword, Address: addrA})
	if err != nil || pw.Status != Limited {
		t.Fatalf("password change past the card's limit: %+v %v, want Limited", pw.Outcome, err)
	}
	if got := f.hashes.Load(); got != before {
		t.Errorf("%d hashes past the limit, want none", got-before)
	}
}

// TestBusySignInIsNotAFailure: a password sign-in whose hash the hasher
// turns away (ErrBusy) is answered as an error, and its attempt goes back
// to the account: a busy gateway locks nobody out.
func TestBusySignInIsNotAFailure(t *testing.T) {
	f := newFixture(t, Config{AttemptsPerAddress: 30})
	acct := f.addAccount("john.doe", "1234567890", ucPassword)
	h := f.newHasher(1, credential.Queue{MaxWait: time.Millisecond})
	f.deps.Hasher = h
	f.rebuild()
	release, err := h.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for range LoginMaxFailures + 1 {
		if _, err := f.svc.SignIn(context.Background(), SignInInput{Username: "john.doe", Password: ucWrong, Address: addrA}); !errors.Is(err, credential.ErrBusy) {
			t.Fatalf("sign-in with the hasher busy: %v, want ErrBusy", err)
		}
	}
	st, err := f.db.LoginState(context.Background(), acct.ID, f.Now(), LoginWindow, LoginMaxFailures)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 0 || st.Locked() {
		t.Errorf("after sign-ins turned away: %+v, want no failure counted", st)
	}
	// Nor against the client's address.
	if n, _, err := f.db.Attempts(context.Background(), addressPrefix+AddressKey(addrA), f.Now(), AddressWindow); err != nil || n != 0 {
		t.Errorf("address attempts after sign-ins turned away: %d %v, want 0", n, err)
	}
}
