package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// consentSecretName is the name under which the gateway keeps its consent
// key in the account database (caddymodule's secretConsentKey). Seeding
// every store with the same key lets one banner acceptance per card serve
// every gateway of the run, as it does for the nodes of a cluster that
// share a database. If the name ever changes, the gateways make their own
// keys, the cookie check in warm-up fails, and the run falls back to
// accepting the banner on each store separately.
const consentSecretName = "consent_hmac_key_v1"

// layout decides which account holds which card in a store of n accounts:
// account j holds card j while there are cards, and every other account
// holds one synthetic card (so the cards table grows with the accounts). A
// store with fewer accounts than cards enrolls only the first cards.
type layout struct {
	accounts, cards int
}

func newLayout(accounts, cards int) layout {
	return layout{accounts: accounts, cards: cards}
}

// enrolled is how many of the real cards the store holds.
func (l layout) enrolled() int { return min(l.accounts, l.cards) }

// cardsOf returns the indexes of the real cards account j holds: one, or
// none for an account with a synthetic card.
func (l layout) cardsOf(j int) (first, end int) {
	if j < l.enrolled() {
		return j, j + 1
	}
	return 0, 0
}

func benchUsername(j int) string { return fmt.Sprintf("bench.u%07d", j) }

func syntheticFingerprint(j int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "cacgate bench synthetic card %d", j))
	return hex.EncodeToString(sum[:])
}

// fingerprintOf is the fingerprint of account j's first card.
func (l layout) fingerprintOf(j int, cards []*benchCard) string {
	if first, end := l.cardsOf(j); first < end {
		return cards[first].fingerprint
	}
	return syntheticFingerprint(j)
}

// seedReport is what seeding a store took.
type seedReport struct {
	Accounts int           `json:"accounts"`
	Cards    int           `json:"cards"`
	Took     time.Duration `json:"took_ns"`
}

// seedStore creates the SQLite store at path with l.accounts accounts
// holding the cards as l says, in one streaming bulk insert, and stores
// consentKey as the gateway's consent key.
func seedStore(ctx context.Context, path string, l layout, cards []*benchCard, consentKey []byte) (seedReport, error) {
	s, err := store.OpenSQLite(ctx, path)
	if err != nil {
		return seedReport{}, err
	}
	defer s.Close()
	return seedInto(ctx, s, l, cards, consentKey)
}

// seedInto is seedStore on an open store of either kind (the soak seeds a
// cluster's PostgreSQL database with it).
func seedInto(ctx context.Context, s *store.SQLStore, l layout, cards []*benchCard, consentKey []byte) (seedReport, error) {
	start := time.Now()
	if _, err := s.EnsureSecret(ctx, consentSecretName, func() ([]byte, error) { return consentKey, nil }); err != nil {
		return seedReport{}, fmt.Errorf("storing the consent key: %w", err)
	}
	notAfter := time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second)
	j := 0
	next := func() (*store.Account, error) {
		if j == l.accounts {
			return nil, io.EOF
		}
		a := &store.Account{
			Username:    benchUsername(j),
			EDIPI:       cardEDIPI(j),
			GivenName:   "Tester",
			MiddleName:  "Q",
			FamilyName:  "Load",
			Email:       "load.tester@mail.mil",
			Affiliation: "USA",
			Status:      store.StatusActive,
		}
		first, end := l.cardsOf(j)
		for i := first; i < end; i++ {
			c := cards[i]
			a.Cards = append(a.Cards, store.Card{
				Fingerprint: c.fingerprint,
				Subject:     c.cert.Subject.String(),
				Issuer:      c.cert.Issuer.String(),
				Serial:      c.cert.SerialNumber.Text(16),
				NotAfter:    c.cert.NotAfter,
			})
		}
		if first == end {
			a.Cards = []store.Card{{
				Fingerprint: syntheticFingerprint(j),
				Subject:     "CN=LOAD.TESTER.Q." + a.EDIPI + ",OU=USA,OU=PKI,OU=DoD,O=U.S. Government,C=US",
				Issuer:      "CN=TEST DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US",
				Serial:      fmt.Sprintf("%x", j+1),
				NotAfter:    notAfter,
			}}
		}
		j++
		return a, nil
	}
	rep, err := s.ImportAccounts(ctx, next, store.ImportOptions{})
	if err != nil {
		return seedReport{}, err
	}
	return seedReport{Accounts: rep.Imported, Cards: rep.Cards, Took: time.Since(start)}, nil
}

// lookupLatency is the cache-miss account lookup, measured in-process on a
// seeded store with nothing else running.
type lookupLatency struct {
	Lookups int           `json:"lookups"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

// measureLookups times n AccountByFingerprint calls for random accounts of
// the whole store (not only the ones whose cards the clients hold, so the
// 1M-account store is read all over), as a cache miss does them.
func measureLookups(ctx context.Context, path string, l layout, cards []*benchCard, n int) (lookupLatency, error) {
	s, err := store.OpenSQLite(ctx, path)
	if err != nil {
		return lookupLatency{}, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, uint64(l.accounts)))
	took := make([]time.Duration, 0, n)
	for range n {
		fp := l.fingerprintOf(rng.IntN(l.accounts), cards)
		start := time.Now()
		a, err := s.AccountByFingerprint(ctx, fp)
		d := time.Since(start)
		if err != nil {
			return lookupLatency{}, fmt.Errorf("looking up a seeded card: %w", err)
		}
		if len(a.Cards) == 0 {
			return lookupLatency{}, fmt.Errorf("account %s came back without cards", a.Username)
		}
		took = append(took, d)
	}
	slices.Sort(took)
	return lookupLatency{
		Lookups: n,
		P50:     took[n/2],
		P99:     took[min(n-1, n*99/100)],
		Max:     took[n-1],
	}, nil
}
