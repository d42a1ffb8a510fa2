package store

import (
	"context"
	"fmt"
	"testing"
)

func BenchmarkAccountByFingerprint(b *testing.B) {
	const accounts = 10_000
	ctx := context.Background()
	s := openTestStore(b)
	seedAccounts(b, s, accounts)

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
