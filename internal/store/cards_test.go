package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLinkCard(t *testing.T) { forEachBackend(t, testLinkCard) }

func testLinkCard(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	jdoe := mustCreate(t, s, newAccount("jdoe", "1111111111", "first"))
	other := mustCreate(t, s, newAccount("other", "2222222222", "others"))

	if err := s.LinkCard(ctx, jdoe.ID, newCard("second")); err != nil {
		t.Fatal(err)
	}
	got, err := s.AccountByFingerprint(ctx, fingerprint("second"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != jdoe.ID || len(got.Cards) != 2 {
		t.Errorf("after LinkCard: %s", describe(got))
	}

	assertErrorIs(t, s.LinkCard(ctx, jdoe.ID, newCard("second")), ErrCardTaken)
	assertErrorIs(t, s.LinkCard(ctx, jdoe.ID, newCard("others")), ErrCardTaken)
	assertErrorIs(t, s.LinkCard(ctx, other.ID+1000, newCard("orphan")), ErrNotFound)
	_, err = s.AccountByFingerprint(ctx, fingerprint("orphan"))
	assertErrorIs(t, err, ErrNotFound)
}

func TestFingerprintMustBeLowercaseHex(t *testing.T) {
	forEachBackend(t, testFingerprintMustBeLowercaseHex)
}

func testFingerprintMustBeLowercaseHex(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	a := mustCreate(t, s, newAccount("jdoe", "1111111111"))

	for _, fp := range []string{
		strings.ToUpper(fingerprint("x")),
		fingerprint("x")[:63],
		fingerprint("x") + "0",
		strings.Repeat("g", 64),
	} {
		c := newCard("x")
		c.Fingerprint = fp
		err := s.LinkCard(ctx, a.ID, c)
		if err == nil || errors.Is(err, ErrCardTaken) || errors.Is(err, ErrNotFound) {
			t.Errorf("LinkCard(%q) = %v, want a constraint error", fp, err)
		}
	}
}

func TestUnlinkCard(t *testing.T) { forEachBackend(t, testUnlinkCard) }

func testUnlinkCard(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1111111111", "keep", "drop"))
	mustCreate(t, s, newAccount("other", "2222222222", "others"))

	assertErrorIs(t, s.UnlinkCard(ctx, "jdoe", fingerprint("others")), ErrNotFound)
	assertErrorIs(t, s.UnlinkCard(ctx, "nobody", fingerprint("drop")), ErrNotFound)
	assertErrorIs(t, s.UnlinkCard(ctx, "jdoe", fingerprint("never linked")), ErrNotFound)

	if err := s.UnlinkCard(ctx, "jdoe", fingerprint("drop")); err != nil {
		t.Fatal(err)
	}
	_, err := s.AccountByFingerprint(ctx, fingerprint("drop"))
	assertErrorIs(t, err, ErrNotFound)
	got, err := s.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Cards) != 1 || got.Cards[0].Fingerprint != fingerprint("keep") {
		t.Errorf("after UnlinkCard: %s", describe(got))
	}
	assertErrorIs(t, s.UnlinkCard(ctx, "jdoe", fingerprint("drop")), ErrNotFound)

	// An unlinked card is free to be registered again.
	other, err := s.AccountByUsername(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LinkCard(ctx, other.ID, newCard("drop")); err != nil {
		t.Fatal(err)
	}
}

func TestTouchCard(t *testing.T) { forEachBackend(t, testTouchCard) }

func testTouchCard(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	mustCreate(t, s, newAccount("jdoe", "1111111111", "used", "idle"))

	later := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	earlier := later.Add(-time.Hour)

	if err := s.TouchCard(ctx, fingerprint("used"), later); err != nil {
		t.Fatal(err)
	}
	// A late report of an earlier sign-in changes nothing.
	if err := s.TouchCard(ctx, fingerprint("used"), earlier); err != nil {
		t.Fatal(err)
	}
	got, err := s.AccountByUsername(ctx, "jdoe")
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastLoginAt.Equal(later) {
		t.Errorf("LastLoginAt = %v, want %v", got.LastLoginAt, later)
	}
	for _, c := range got.Cards {
		want := time.Time{}
		if c.Fingerprint == fingerprint("used") {
			want = later
		}
		if !c.LastUsedAt.Equal(want) {
			t.Errorf("card %s LastUsedAt = %v, want %v", c.Subject, c.LastUsedAt, want)
		}
	}

	assertErrorIs(t, s.TouchCard(ctx, fingerprint("unknown"), later), ErrNotFound)
}

func TestClearedCardIsNotAutoLinked(t *testing.T) { forEachBackend(t, testClearedCardIsNotAutoLinked) }

func testClearedCardIsNotAutoLinked(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	jdoe := mustCreate(t, s, newAccount("jdoe", "1111111111", "keep"))

	// A card that was never cleared auto-links.
	if err := s.AutoLinkCard(ctx, jdoe.ID, newCard("replacement")); err != nil {
		t.Fatal(err)
	}
	assertErrorIs(t, s.AutoLinkCard(ctx, jdoe.ID, newCard("replacement")), ErrCardTaken)

	// Once cleared, automatic linking refuses it and leaves no card behind...
	if err := s.UnlinkCard(ctx, "jdoe", fingerprint("replacement")); err != nil {
		t.Fatal(err)
	}
	assertErrorIs(t, s.AutoLinkCard(ctx, jdoe.ID, newCard("replacement")), ErrCardCleared)
	_, err := s.AccountByFingerprint(ctx, fingerprint("replacement"))
	assertErrorIs(t, err, ErrNotFound)

	// ...until someone links it explicitly, which lifts the clearing for good.
	if err := s.LinkCard(ctx, jdoe.ID, newCard("replacement")); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlinkCard(ctx, "jdoe", fingerprint("replacement")); err != nil {
		t.Fatal(err)
	}
	assertErrorIs(t, s.AutoLinkCard(ctx, jdoe.ID, newCard("replacement")), ErrCardCleared)
	if err := s.LinkCard(ctx, jdoe.ID, newCard("replacement")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AccountByFingerprint(ctx, fingerprint("replacement")); err != nil || got.ID != jdoe.ID {
		t.Fatalf("explicit link after clearing: %v", err)
	}
	assertErrorIs(t, s.AutoLinkCard(ctx, jdoe.ID+1000, newCard("orphan")), ErrNotFound)
}
