package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
)

func mustCredentials(t *testing.T, s *SQLStore, accountID int64) *Credentials {
	t.Helper()
	c, err := s.Credentials(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCredentialsOfAccountWithout(t *testing.T) {
	forEachBackend(t, testCredentialsOfAccountWithout)
}

func testCredentialsOfAccountWithout(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustCreate(t, s, newAccount("jdoe", "1111111111", "card"))
	if got := mustCredentials(t, s, a.ID); !reflect.DeepEqual(got, &Credentials{}) {
		t.Errorf("Credentials of an account without any = %+v", got)
	}
	if stored, _ := s.AccountByUsername(ctx, "jdoe"); stored.HasPassword || !stored.PasswordChangedAt.IsZero() {
		t.Errorf("account without password: %s", describe(stored))
	}
	_, err := s.Credentials(ctx, a.ID+1000)
	assertErrorIs(t, err, ErrNotFound)
}

func TestSetPasswordKeepsHistory(t *testing.T) { forEachBackend(t, testSetPasswordKeepsHistory) }

func testSetPasswordKeepsHistory(t *testing.T, be backend) {
	const keep, changes = 5, 7
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	// A neighbour's history must not be touched by the trimming.
	other := mustEnroll(t, s, newEnrollment("jane.q.public", "2222222222", "other card"))
	if err := s.SetPassword(ctx, other.ID, "neighbour", keep); err != nil {
		t.Fatal(err)
	}

	hashes := []string{newEnrollment("", "1111111111", "").PasswordHash}
	for i := 1; i <= changes; i++ {
		hashes = append(hashes, fmt.Sprint("hash", i))
		if err := s.SetPassword(ctx, a.ID, hashes[i], keep); err != nil {
			t.Fatal(err)
		}
	}
	got := mustCredentials(t, s, a.ID)
	// Newest first, without the current one.
	var want []string
	for i := changes - 1; i >= changes-keep; i-- {
		want = append(want, hashes[i])
	}
	if got.PasswordHash != hashes[changes] || !slices.Equal(got.History, want) {
		t.Errorf("after %d changes: current %q, history %q; want %q, %q", changes, got.PasswordHash, got.History, hashes[changes], want)
	}
	if got.Answers != newEnrollment("", "1111111111", "").Answers {
		t.Errorf("SetPassword changed the answers: %+v", got.Answers)
	}
	if n := len(mustCredentials(t, s, other.ID).History); n != 1 {
		t.Errorf("neighbour's history has %d entries, want 1", n)
	}

	stored, err := s.AccountByUsername(ctx, a.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.HasPassword || stored.PasswordChangedAt.Before(a.PasswordChangedAt) || !stored.UpdatedAt.Equal(a.UpdatedAt) {
		t.Errorf("after SetPassword: %s", describe(stored))
	}

	// Keeping none empties the history.
	if err := s.SetPassword(ctx, a.ID, "final", 0); err != nil {
		t.Fatal(err)
	}
	if got := mustCredentials(t, s, a.ID); got.PasswordHash != "final" || got.History != nil {
		t.Errorf("keeping no history: %+v", got)
	}
}

func TestSetPasswordOnAccountWithout(t *testing.T) {
	forEachBackend(t, testSetPasswordOnAccountWithout)
}

func testSetPasswordOnAccountWithout(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustCreate(t, s, newAccount("jdoe", "1111111111"))
	if err := s.SetPassword(ctx, a.ID, "first", 5); err != nil {
		t.Fatal(err)
	}
	if got := mustCredentials(t, s, a.ID); got.PasswordHash != "first" || got.History != nil {
		t.Errorf("first password: %+v (no empty hash may enter the history)", got)
	}
	stored, err := s.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if !stored.HasPassword || stored.PasswordChangedAt.IsZero() {
		t.Errorf("after first SetPassword: %s", describe(stored))
	}
}

func TestSetPasswordErrors(t *testing.T) { forEachBackend(t, testSetPasswordErrors) }

func testSetPasswordErrors(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	assertErrorIs(t, s.SetPassword(ctx, a.ID+1000, "hash", 5), ErrNotFound)
	if err := s.SetPassword(ctx, a.ID, "", 5); err == nil {
		t.Error("SetPassword with an empty hash succeeded")
	}
	if err := s.SetPassword(ctx, a.ID, "hash", -1); err == nil {
		t.Error("SetPassword with a negative history length succeeded")
	}
	if got := mustCredentials(t, s, a.ID); got.PasswordHash != newEnrollment("", "1111111111", "").PasswordHash || got.History != nil {
		t.Errorf("failed SetPassword calls changed the credentials: %+v", got)
	}
	if n := countRows(t, s, "password_history"); n != 0 {
		t.Errorf("failed SetPassword calls left %d history rows", n)
	}
}

// Concurrent changes across nodes lose no password: each replaced hash is
// in the history exactly once.
func TestSetPasswordConcurrentlyAcrossNodes(t *testing.T) {
	forEachBackend(t, testSetPasswordConcurrentlyAcrossNodes)
}

func testSetPasswordConcurrentlyAcrossNodes(t *testing.T, be backend) {
	const changes = 10
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}
	e := newEnrollment("john.b.smith", "1111111111", "card")
	a := mustEnroll(t, nodes[0], e)

	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, changes)
	)
	for i := range changes {
		wg.Go(func() {
			<-start
			errs[i] = nodes[i%2].SetPassword(context.Background(), a.ID, fmt.Sprint("hash", i), changes)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}

	got := mustCredentials(t, nodes[1], a.ID)
	all := append([]string{got.PasswordHash}, got.History...)
	want := []string{e.PasswordHash}
	for i := range changes {
		want = append(want, fmt.Sprint("hash", i))
	}
	slices.Sort(all)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("current and history = %q\nwant each of %q once", all, want)
	}
}

func TestSetAnswers(t *testing.T) { forEachBackend(t, testSetAnswers) }

func testSetAnswers(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	neighbour := mustEnroll(t, s, newEnrollment("jane.q.public", "2222222222", "other card"))

	replacement := [3]Answer{{"q-a", "h-a"}, {"first-pet", "h-b"}, {"q-c", "h-c"}}
	if err := s.SetAnswers(ctx, a.ID, replacement); err != nil {
		t.Fatal(err)
	}
	if got := mustCredentials(t, s, a.ID).Answers; got != replacement {
		t.Errorf("answers = %+v, want %+v", got, replacement)
	}
	if got := mustCredentials(t, s, neighbour.ID).Answers; got != newEnrollment("", "2222222222", "").Answers {
		t.Errorf("SetAnswers changed another account's answers: %+v", got)
	}

	// A repeated question is refused by the database, changing nothing.
	repeated := [3]Answer{{"q-x", "h-x"}, {"q-y", "h-y"}, {"q-x", "h-z"}}
	assertErrorIs(t, s.SetAnswers(ctx, a.ID, repeated), ErrQuestionRepeated)
	if got := mustCredentials(t, s, a.ID).Answers; got != replacement {
		t.Errorf("answers after a refused change = %+v, want %+v", got, replacement)
	}
	if err := s.SetAnswers(ctx, a.ID, [3]Answer{{"q", "h"}, {"", "h"}, {"r", "h"}}); err == nil {
		t.Error("SetAnswers with an empty question succeeded")
	}

	assertErrorIs(t, s.SetAnswers(ctx, neighbour.ID+1000, replacement), ErrNotFound)
	if n := countRows(t, s, "security_answers"); n != 6 {
		t.Errorf("security_answers holds %d rows, want 6", n)
	}
}

func TestRehashPassword(t *testing.T) { forEachBackend(t, testRehashPassword) }

// RehashPassword swaps the hash of the same password without making it a
// password change, and never overwrites a password changed meanwhile.
func testRehashPassword(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustEnroll(t, s, newEnrollment("john.b.smith", "1111111111", "card"))
	old := mustCredentials(t, s, a.ID).PasswordHash
	before, err := s.AccountByUsername(ctx, a.Username)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RehashPassword(ctx, a.ID, old, "rehashed"); !ok || err != nil {
		t.Fatalf("RehashPassword = %v, %v", ok, err)
	}
	got := mustCredentials(t, s, a.ID)
	if got.PasswordHash != "rehashed" || len(got.History) != 0 {
		t.Fatalf("after rehash: current %q, history %q; want rehashed and no history", got.PasswordHash, got.History)
	}
	after, err := s.AccountByUsername(ctx, a.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !after.PasswordChangedAt.Equal(before.PasswordChangedAt) {
		t.Errorf("rehash moved the password change time from %v to %v", before.PasswordChangedAt, after.PasswordChangedAt)
	}
	// The password changed since the hash was read: nothing is written.
	if err := s.SetPassword(ctx, a.ID, "changed", 5); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RehashPassword(ctx, a.ID, "rehashed", "stale rehash"); ok || err != nil {
		t.Fatalf("RehashPassword of a replaced hash = %v, %v", ok, err)
	}
	if got := mustCredentials(t, s, a.ID).PasswordHash; got != "changed" {
		t.Fatalf("a stale rehash overwrote the changed password: %q", got)
	}
	if _, err := s.RehashPassword(ctx, a.ID, "", "x"); err == nil {
		t.Error("empty old hash accepted")
	}
}
