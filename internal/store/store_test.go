package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func openTestStore(t testing.TB) *SQLStore {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "cacgate.db"))
}

func openStoreAt(t testing.TB, path string) *SQLStore {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fingerprint returns a distinct, well-formed fingerprint for each seed.
func fingerprint(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

func newCard(seed string) Card {
	return Card{
		Fingerprint: fingerprint(seed),
		Subject:     "CN=" + seed,
		Issuer:      "CN=DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US",
		Serial:      "0x" + seed,
		NotAfter:    time.Date(2029, 6, 30, 23, 59, 59, 0, time.UTC),
	}
}

func newAccount(username, edipi string, cardSeeds ...string) *Account {
	a := &Account{
		Username:    username,
		EDIPI:       edipi,
		GivenName:   "Given " + username,
		MiddleName:  "M",
		FamilyName:  "Family " + username,
		Email:       username + "@example.mil",
		Affiliation: "USA",
		Status:      StatusActive,
	}
	for _, seed := range cardSeeds {
		a.Cards = append(a.Cards, newCard(seed))
	}
	return a
}

func mustCreate(t testing.TB, s *SQLStore, a *Account) *Account {
	t.Helper()
	if err := s.CreateAccount(context.Background(), a); err != nil {
		t.Fatalf("CreateAccount(%q): %v", a.Username, err)
	}
	return a
}

func assertAccount(t *testing.T, got, want *Account) {
	t.Helper()
	if want != nil && want.Kind == "" {
		// A want written before credential kinds: a DoD account, keyed
		// (with its cards) by its EDIPI.
		w := *want
		w.Kind, w.Key = KindCAC, w.EDIPI
		w.Cards = append([]Card(nil), want.Cards...)
		for i := range w.Cards {
			if w.Cards[i].Kind == "" {
				w.Cards[i].Kind, w.Cards[i].Key = KindCAC, w.EDIPI
			}
		}
		want = &w
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("account mismatch\n got: %s\nwant: %s", describe(got), describe(want))
	}
}

func describe(a *Account) string {
	if a == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%+v", *a)
	for i, c := range a.Cards {
		s += fmt.Sprintf("\n  card %d: %+v", i, c)
	}
	return s
}

func assertErrorIs(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}
