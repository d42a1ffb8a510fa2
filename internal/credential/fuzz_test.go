package credential

import (
	"errors"
	"testing"
)

// FuzzParsePHC checks that parsing a stored hash never panics, that
// whatever it accepts is within the bounds Verify may hash with, and that it
// accepts only the canonical spelling (a parsed hash re-encodes to exactly
// the input).
func FuzzParsePHC(f *testing.F) {
	salt, key := make([]byte, 16), make([]byte, 32)
	for _, seed := range []string{
		encodePHC(DefaultParams, salt, key),
		encodePHC(Params{Memory: 1 << 20, Time: 10, Threads: 16}, make([]byte, 64), make([]byte, 64)),
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
		"$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=257$AAAAAAAAAAA$AAAAAAAAAAA",
		"$argon2id$v=19$m=064,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAA",
		"$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAA",
		"$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA=$AAAAAAAAAAA",
		"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		encodePHC(DefaultPBKDF2Params, salt, key),
		"$pbkdf2-sha512$i=10000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$pbkdf2-sha512$i=4294967295$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA",
		"$$$$$",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		stored, err := parsePHC(s)
		rehash := NeedsRehash(s, DefaultParams)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parsePHC error %v does not match ErrMalformedHash", err)
			}
			if !rehash {
				t.Fatal("NeedsRehash = false for a hash that does not parse")
			}
			return
		}
		if err := stored.params.Validate(); err != nil {
			t.Fatalf("parsePHC accepted out-of-bounds params: %v", err)
		}
		if int(stored.params.SaltLen) != len(stored.salt) || int(stored.params.KeyLen) != len(stored.key) {
			t.Fatalf("params lengths %d/%d disagree with salt/key %d/%d",
				stored.params.SaltLen, stored.params.KeyLen, len(stored.salt), len(stored.key))
		}
		if again := encodePHC(stored.params, stored.salt, stored.key); again != s {
			t.Fatalf("parsePHC accepted a non-canonical spelling: %q re-encodes as %q", s, again)
		}
	})
}
