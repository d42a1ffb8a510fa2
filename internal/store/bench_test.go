package store

import (
	"context"
	"fmt"
	"testing"
)

func BenchmarkAccountByFingerprint(b *testing.B) {
	benchmarkAccountByFingerprint(b, nil)
}

// BenchmarkAccountByFingerprintEnrolled is the same lookup for accounts
// carrying everything enrollment stores: categories to decode, profile
// text, a password and a lockout time.
func BenchmarkAccountByFingerprintEnrolled(b *testing.B) {
	benchmarkAccountByFingerprint(b, func(a *Account) {
		a.Categories = []string{"Active Army", "DA Civilian"}
		a.Organization = "HQ, 1st Battalion, 75th Ranger Regiment"
		a.Location = "North America"
		a.WorkAddress = "Bldg 1, Fort Example, VA 22060"
		a.Phone = "+1 703 555 0100"
	})
}

func benchmarkAccountByFingerprint(b *testing.B, decorate func(*Account)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { benchmarkAccountByFingerprintOn(b, be, decorate) })
	}
}

func benchmarkAccountByFingerprintOn(b *testing.B, be backend, decorate func(*Account)) {
	const accounts = 10_000
	ctx := context.Background()
	s := be.openStore(b)
	seedAccountsWith(b, s, accounts, decorate)
	if decorate != nil {
		_, err := s.writes().exec(ctx, `UPDATE accounts SET password_hash = ?, password_changed_at = created_at,
			locked_until = created_at`, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
		if err != nil {
			b.Fatal(err)
		}
	}

	b.ReportAllocs()
	i := 0
	for b.Loop() {
		fp := fingerprint(fmt.Sprint("seed", i%accounts))
		if _, err := s.AccountByFingerprint(ctx, fp); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
