package credential_test

import (
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
)

// BenchmarkHash measures one hash with DefaultParams (argon2id) and with
// DefaultPBKDF2Params, the cost every enrollment pays four times (a
// password and three answers) and every password sign-in pays once. Run
// with -benchtime 20x: each hash takes tens of milliseconds by design.
func BenchmarkHash(b *testing.B) {
	for name, p := range map[string]credential.Params{
		"argon2id":      credential.DefaultParams,
		"pbkdf2-sha512": credential.DefaultPBKDF2Params,
	} {
		b.Run(name, func(b *testing.B) {
			// More slots than ever run at once: each slot rests after a
			// hash (three times the hash's duration), which the benchmark
			// must not time.
			h := credential.NewHasher(p, 8)
			for b.Loop() {
				if _, err := h.Hash(b.Context(), "Correct.Horse~Battery"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
