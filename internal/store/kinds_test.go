package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// A non-DoD account has no EDIPI and is unique per credential kind and
// key: the same key under another kind is another person, the same kind
// and key twice is refused, and NULL EDIPIs do not collide.
func TestCredentialKinds(t *testing.T) { forEachBackend(t, testCredentialKinds) }

func testCredentialKinds(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	const uuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	piv := newAccount("piv.holder", "", "piv-card")
	piv.Kind, piv.Key = KindPIV, uuid
	mustCreate(t, s, piv)
	got, err := s.AccountByKey(ctx, KindPIV, uuid)
	if err != nil {
		t.Fatalf("AccountByKey: %v", err)
	}
	if got.Username != "piv.holder" || got.EDIPI != "" || got.Kind != KindPIV || got.Key != uuid {
		t.Errorf("AccountByKey = %s", describe(got))
	}
	if c := got.Cards[0]; c.Kind != KindPIV || c.Key != uuid {
		t.Errorf("card kind/key = %q/%q, want the account's", c.Kind, c.Key)
	}
	// The same UUID as a PIV-I card is another credential.
	pivi := newAccount("pivi.holder", "", "pivi-card")
	pivi.Kind, pivi.Key = KindPIVI, uuid
	mustCreate(t, s, pivi)
	// A second ECA account: no EDIPI either, no clash on NULL.
	eca := newAccount("eca.holder", "", "eca-card")
	eca.Kind, eca.Key = KindECA, fingerprint("eca subject")
	mustCreate(t, s, eca)
	// The same kind and key again is taken.
	again := newAccount("piv.again", "", "piv-card-2")
	again.Kind, again.Key = KindPIV, uuid
	if err := s.CreateAccount(ctx, again); !errors.Is(err, ErrEDIPITaken) {
		t.Errorf("second PIV account for one card UUID: %v, want ErrEDIPITaken", err)
	}
	if _, err := s.AccountByKey(ctx, KindECA, uuid); !errors.Is(err, ErrNotFound) {
		t.Errorf("AccountByKey(eca, uuid) = %v, want ErrNotFound", err)
	}
	// DoD accounts are keyed by their EDIPI, found either way.
	cac := mustCreate(t, s, newAccount("cac.holder", "1234567890", "cac-card"))
	if got, err := s.AccountByKey(ctx, KindCAC, "1234567890"); err != nil || got.ID != cac.ID {
		t.Errorf("AccountByKey(cac, EDIPI) = %v, %v", got, err)
	}
}

// Many nodes enrolling the same non-DoD credential at once (one PIV card
// UUID, through different certificates of the card) make exactly one
// account: the database decides, on both backends.
func TestCredentialKeyUniqueUnderConcurrency(t *testing.T) {
	forEachBackend(t, testCredentialKeyUniqueUnderConcurrency)
}

func testCredentialKeyUniqueUnderConcurrency(t *testing.T, be backend) {
	ctx := context.Background()
	db := be.newDatabase(t)
	const nodes = 6
	stores := make([]*SQLStore, nodes)
	for i := range stores {
		stores[i] = db.open(t)
	}
	for _, kind := range []string{KindPIV, KindPIVI, KindECA} {
		key := "7d444840-9dc0-11d1-b245-5ffdce74fad2"
		if kind == KindECA {
			key = fingerprint("contractor")
		}
		var wg sync.WaitGroup
		errs := make([]error, nodes)
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := newEnrollment("holder", "", fmt.Sprintf("%s-cert-%d", kind, i))
				e.Account.Kind, e.Account.Key = kind, key
				_, errs[i] = stores[i].Enroll(ctx, e)
			}()
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrEDIPITaken):
				t.Errorf("%s node %d: %v, want success or ErrEDIPITaken", kind, i, err)
			}
		}
		if won != 1 {
			t.Errorf("%s: %d enrollments succeeded, want exactly 1", kind, won)
		}
		if _, err := stores[0].AccountByKey(ctx, kind, key); err != nil {
			t.Errorf("%s: AccountByKey: %v", kind, err)
		}
	}
}
