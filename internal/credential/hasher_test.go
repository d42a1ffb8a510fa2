package credential_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
)

// fast are valid parameters cheap enough for tests under the race detector.
var fast = credential.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const secret = "Correct.Horse~Battery"

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := t.Context()
	h := credential.NewHasher(fast, 2)
	encoded, err := h.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Hash = %q, want a PHC argon2id string with the hasher's parameters", encoded)
	}
	if strings.Contains(encoded, secret) {
		t.Error("the hash contains the secret")
	}
	if ok, err := h.Verify(ctx, secret, encoded); err != nil || !ok {
		t.Errorf("Verify(right secret) = %v, %v; want true, nil", ok, err)
	}
	for _, wrong := range []string{"correct.horse~battery", secret + " ", "", "x"} {
		if ok, err := h.Verify(ctx, wrong, encoded); err != nil || ok {
			t.Errorf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
		}
	}
	again, err := h.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if again == encoded {
		t.Error("two hashes of the same secret are equal: the salt is not random")
	}
	if h.InFlight() != 0 {
		t.Errorf("InFlight = %d after all hashes returned", h.InFlight())
	}
}

func TestVerifyReadsParamsFromHash(t *testing.T) {
	ctx := t.Context()
	old := credential.NewHasher(fast, 1)
	encoded, err := old.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	stronger := credential.Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 24, KeyLen: 48}
	h := credential.NewHasher(stronger, 1)
	if ok, err := h.Verify(ctx, secret, encoded); err != nil || !ok {
		t.Errorf("Verify with different hasher params = %v, %v; want true, nil", ok, err)
	}
	if ok, err := h.Verify(ctx, "wrong", encoded); err != nil || ok {
		t.Errorf("Verify(wrong) with different hasher params = %v, %v; want false, nil", ok, err)
	}
	rehashed, err := h.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rehashed, "$argon2id$v=19$m=128,t=2,p=2$") {
		t.Errorf("Hash = %q, want the new parameters", rehashed)
	}
	if ok, err := old.Verify(ctx, secret, rehashed); err != nil || !ok {
		t.Errorf("old hasher Verify(new hash) = %v, %v; want true, nil", ok, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	encoded, err := credential.NewHasher(fast, 1).Hash(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	same := fast
	if credential.NeedsRehash(encoded, same) {
		t.Error("NeedsRehash with the same params = true")
	}
	for name, change := range map[string]func(*credential.Params){
		"memory":  func(p *credential.Params) { p.Memory *= 2 },
		"time":    func(p *credential.Params) { p.Time++ },
		"threads": func(p *credential.Params) { p.Threads++ },
		"salt":    func(p *credential.Params) { p.SaltLen = 32 },
		"key":     func(p *credential.Params) { p.KeyLen = 64 },
		"lower":   func(p *credential.Params) { p.Memory = 32 },
	} {
		p := fast
		change(&p)
		if !credential.NeedsRehash(encoded, p) {
			t.Errorf("NeedsRehash after changing %s = false", name)
		}
	}
	if !credential.NeedsRehash("$2b$10$abcdefghijklmnopqrstuv", fast) {
		t.Error("NeedsRehash(bcrypt hash) = false")
	}
	if !credential.NeedsRehash("", fast) {
		t.Error("NeedsRehash(\"\") = false")
	}
	if !credential.NeedsRehash(encoded, credential.Params{}) {
		t.Error("NeedsRehash(fast hash, zero params meaning DefaultParams) = false")
	}
}

func TestNewHasherDefaults(t *testing.T) {
	if got := credential.NewHasher(credential.Params{}, 0).Params(); got != credential.DefaultParams {
		t.Errorf("NewHasher(zero).Params() = %+v, want DefaultParams %+v", got, credential.DefaultParams)
	}
	if got := credential.NewHasher(credential.Params{Time: 3}, -1).Params(); got.Time != 3 || got.Memory != credential.DefaultParams.Memory {
		t.Errorf("NewHasher(Time: 3).Params() = %+v, want Time 3 and the default memory", got)
	}
	if err := credential.DefaultParams.Validate(); err != nil {
		t.Errorf("DefaultParams.Validate() = %v", err)
	}
}

func TestHashRefusesInvalidParams(t *testing.T) {
	for name, p := range map[string]credential.Params{
		"memory too large": {Memory: 1<<20 + 1},
		"time too large":   {Time: 11},
		"too many threads": {Threads: 17},
		"memory per lane":  {Memory: 8, Threads: 2},
		"salt too short":   {SaltLen: 4},
		"key too long":     {KeyLen: 65},
	} {
		if err := p.Validate(); err != nil && !errors.Is(err, credential.ErrInvalidParams) {
			t.Errorf("%s: Validate = %v, want ErrInvalidParams", name, err)
		}
		_, err := credential.NewHasher(p, 1).Hash(t.Context(), secret)
		if !errors.Is(err, credential.ErrInvalidParams) {
			t.Errorf("%s: Hash error = %v, want ErrInvalidParams", name, err)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	ctx := t.Context()
	h := credential.NewHasher(fast, 1)
	good, err := h.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Split(good, "$") // "", argon2id, v=19, m=64,t=1,p=1, salt, key
	salt, key := fields[4], fields[5]
	tests := map[string]string{
		"empty":            "",
		"not PHC":          "hunter2",
		"bcrypt":           "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":          "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"argon2d":          "$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"version 16":       "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"no version":       "$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"params reordered": "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"param missing":    "$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"extra param":      "$argon2id$v=19$m=64,t=1,p=1,k=2$" + salt + "$" + key,
		"leading zero":     "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"signed number":    "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"number overflow":  "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key,
		"not a number":     "$argon2id$v=19$m=lots,t=1,p=1$" + salt + "$" + key,
		"padded base64":    "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"bad salt":         "$argon2id$v=19$m=64,t=1,p=1$" + salt[:len(salt)-1] + "*$" + key,
		"bad key":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "!",
		// One base64 character too many or too few for whole bytes: a
		// dropped last character would still decode (to a shorter key)
		// whenever its padding bits happen to be zero.
		"truncated key":     "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-2],
		"extra field":       good + "$",
		"no leading dollar": strings.TrimPrefix(good, "$"),
		"trailing newline":  good + "\n",
		"embedded newline":  good[:len(good)-4] + "\r\n" + good[len(good)-4:],
		"huge":              good + strings.Repeat("A", 1<<20),
	}
	for name, encoded := range tests {
		ok, err := h.Verify(ctx, secret, encoded)
		if ok || !errors.Is(err, credential.ErrMalformedHash) {
			t.Errorf("%s: Verify = %v, %v; want false, ErrMalformedHash", name, ok, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, salt) || strings.Contains(msg, key) || strings.Contains(msg, secret) {
			t.Errorf("%s: error %q contains the hash or the secret", name, msg)
		}
	}
}

// TestVerifyRefusesTamperedParams checks the guard that keeps a tampered
// database from turning Verify into a denial of service: parameters beyond
// the bounds are refused before any hashing.
func TestVerifyRefusesTamperedParams(t *testing.T) {
	ctx := t.Context()
	h := credential.NewHasher(fast, 1)
	salt16 := strings.Repeat("A", 22) // 16 bytes
	key32 := strings.Repeat("A", 43)  // 32 bytes
	tests := map[string]string{
		"memory over 1 GiB": "$argon2id$v=19$m=1048577,t=1,p=1$" + salt16 + "$" + key32,
		"memory 4 TiB":      "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt16 + "$" + key32,
		"memory zero":       "$argon2id$v=19$m=0,t=1,p=1$" + salt16 + "$" + key32,
		"time over 10":      "$argon2id$v=19$m=64,t=11,p=1$" + salt16 + "$" + key32,
		"time a billion":    "$argon2id$v=19$m=64,t=1000000000,p=1$" + salt16 + "$" + key32,
		"time zero":         "$argon2id$v=19$m=64,t=0,p=1$" + salt16 + "$" + key32,
		"threads over 16":   "$argon2id$v=19$m=256,t=1,p=17$" + salt16 + "$" + key32,
		"threads wrap 257":  "$argon2id$v=19$m=64,t=1,p=257$" + salt16 + "$" + key32,
		"threads zero":      "$argon2id$v=19$m=64,t=1,p=0$" + salt16 + "$" + key32,
		"salt 7 bytes":      "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 10) + "$" + key32,
		"salt 65 bytes":     "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 87) + "$" + key32,
		"key 7 bytes":       "$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + strings.Repeat("A", 10),
		"key 65 bytes":      "$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + strings.Repeat("A", 87),
	}
	for name, encoded := range tests {
		ok, err := h.Verify(ctx, secret, encoded)
		if ok || !errors.Is(err, credential.ErrMalformedHash) || !errors.Is(err, credential.ErrInvalidParams) {
			t.Errorf("%s: Verify = %v, %v; want false, ErrMalformedHash and ErrInvalidParams", name, ok, err)
		}
	}
	// The bounds themselves are accepted: the guard is not off by one.
	edge := "$argon2id$v=19$m=128,t=10,p=16$" + strings.Repeat("A", 11) + "$" + strings.Repeat("A", 86)
	if _, err := h.Verify(ctx, secret, edge); err != nil {
		t.Errorf("Verify at the bounds (t=10, p=16, 8-byte salt, 64-byte key) = %v", err)
	}
}

func TestAnswerNormalization(t *testing.T) {
	ctx := t.Context()
	h := credential.NewHasher(fast, 1)
	encoded, err := h.HashAnswer(ctx, "mrs smith")
	if err != nil {
		t.Fatal(err)
	}
	for _, typed := range []string{"  Mrs   SMITH ", "mrs smith", "MRS\tSmith"} {
		if ok, err := h.VerifyAnswer(ctx, typed, encoded); err != nil || !ok {
			t.Errorf("VerifyAnswer(%q) = %v, %v; want true, nil", typed, ok, err)
		}
	}
	for _, wrong := range []string{"mrs smyth", "mrssmith", "mrs. smith", "", "ms"} {
		if ok, err := h.VerifyAnswer(ctx, wrong, encoded); err != nil || ok {
			t.Errorf("VerifyAnswer(%q) = %v, %v; want false, nil", wrong, ok, err)
		}
	}
	if _, err := h.VerifyAnswer(ctx, "ms", "garbage"); !errors.Is(err, credential.ErrMalformedHash) {
		t.Errorf("VerifyAnswer(unacceptable answer, malformed hash) error = %v, want ErrMalformedHash", err)
	}
	// The stored form is the normalized answer: a plain Verify agrees.
	if ok, err := h.Verify(ctx, "mrs smith", encoded); err != nil || !ok {
		t.Errorf("Verify(normalized answer, answer hash) = %v, %v; want true, nil", ok, err)
	}
	for _, bad := range []string{"abc", "O'Brien", ""} {
		if _, err := h.HashAnswer(ctx, bad); !errors.Is(err, credential.ErrUnacceptableAnswer) {
			t.Errorf("HashAnswer(%q) error = %v, want ErrUnacceptableAnswer", bad, err)
		} else if len(bad) >= 4 && strings.Contains(err.Error(), bad) {
			t.Errorf("HashAnswer error %q echoes the answer", err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	h := credential.NewHasher(fast, 1)
	if _, err := h.Hash(ctx, secret); err != context.Canceled {
		t.Errorf("Hash(cancelled ctx) error = %v, want context.Canceled", err)
	}
	encoded, err := h.Hash(t.Context(), secret)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(ctx, secret, encoded); ok || err != context.Canceled {
		t.Errorf("Verify(cancelled ctx) = %v, %v; want false, context.Canceled", ok, err)
	}
}

func TestZeroHasher(t *testing.T) {
	var h credential.Hasher
	if _, err := h.Hash(t.Context(), secret); err == nil {
		t.Error("zero Hasher hashed instead of reporting that it was not created with NewHasher")
	}
}

// fastPBKDF2 is PBKDF2 at the lowest iteration count Validate accepts, for
// speed.
var fastPBKDF2 = credential.Params{Algorithm: credential.PBKDF2SHA512, Iterations: 10_000, SaltLen: 16, KeyLen: 32}

func TestPBKDF2RoundTrip(t *testing.T) {
	ctx := context.Background()
	h := credential.NewHasher(fastPBKDF2, 1)
	encoded, err := h.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$pbkdf2-sha512$i=10000$") || strings.Count(encoded, "$") != 4 {
		t.Fatalf("encoded %q", encoded)
	}
	if ok, err := h.Verify(ctx, secret, encoded); !ok || err != nil {
		t.Fatalf("Verify(right secret) = %v, %v", ok, err)
	}
	if ok, err := h.Verify(ctx, secret+"x", encoded); ok || err != nil {
		t.Fatalf("Verify(wrong secret) = %v, %v", ok, err)
	}
	// The key is PBKDF2-HMAC-SHA-512 of the secret and salt, as any other
	// implementation computes it.
	fields := strings.Split(encoded, "$")
	salt, _ := base64.RawStdEncoding.DecodeString(fields[3])
	want, err := pbkdf2.Key(sha512.New, secret, salt, 10_000, 32)
	if err != nil {
		t.Fatal(err)
	}
	if fields[4] != base64.RawStdEncoding.EncodeToString(want) {
		t.Fatal("the stored key is not PBKDF2-HMAC-SHA-512")
	}
	if !credential.NeedsRehash(encoded, credential.Params{Algorithm: credential.PBKDF2SHA512, Iterations: 20_000, SaltLen: 16, KeyLen: 32}) {
		t.Error("NeedsRehash ignores a higher iteration count")
	}
	if credential.NeedsRehash(encoded, fastPBKDF2) {
		t.Error("NeedsRehash with the hash's own parameters")
	}
}

// TestSwitchingAlgorithms: a site that moves from argon2id to PBKDF2 (or
// back) keeps verifying the hashes it stored before, and NeedsRehash
// reports them.
func TestSwitchingAlgorithms(t *testing.T) {
	ctx := context.Background()
	argon := credential.NewHasher(fast, 1)
	pb := credential.NewHasher(fastPBKDF2, 1)
	old, err := argon.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := pb.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		h       *credential.Hasher
		encoded string
	}{"pbkdf2 hasher, argon2id hash": {pb, old}, "argon2id hasher, pbkdf2 hash": {argon, fresh}} {
		if ok, err := c.h.Verify(ctx, secret, c.encoded); !ok || err != nil {
			t.Errorf("%s: Verify = %v, %v", name, ok, err)
		}
		if !credential.NeedsRehash(c.encoded, c.h.Params()) {
			t.Errorf("%s: NeedsRehash = false", name)
		}
	}
}

func TestPBKDF2ParamsAndMalformed(t *testing.T) {
	ctx := context.Background()
	if got := credential.NewHasher(credential.Params{Algorithm: credential.PBKDF2SHA512}, 1).Params(); got != credential.DefaultPBKDF2Params {
		t.Errorf("PBKDF2 defaults %+v, want %+v", got, credential.DefaultPBKDF2Params)
	}
	if err := credential.DefaultPBKDF2Params.Validate(); err != nil {
		t.Errorf("DefaultPBKDF2Params.Validate() = %v", err)
	}
	for name, p := range map[string]credential.Params{
		"too few iterations":  {Algorithm: credential.PBKDF2SHA512, Iterations: 9_999, SaltLen: 16, KeyLen: 32},
		"too many iterations": {Algorithm: credential.PBKDF2SHA512, Iterations: 10_000_001, SaltLen: 16, KeyLen: 32},
		"short salt":          {Algorithm: credential.PBKDF2SHA512, Iterations: 10_000, SaltLen: 8, KeyLen: 32},
		"short key":           {Algorithm: credential.PBKDF2SHA512, Iterations: 10_000, SaltLen: 16, KeyLen: 8},
		"argon2id fields":     {Algorithm: credential.PBKDF2SHA512, Iterations: 10_000, Memory: 64, SaltLen: 16, KeyLen: 32},
		"iterations on argon": {Memory: 64, Time: 1, Threads: 1, Iterations: 10_000, SaltLen: 16, KeyLen: 32},
		"unknown algorithm":   {Algorithm: "bcrypt", SaltLen: 16, KeyLen: 32},
	} {
		if err := p.Validate(); !errors.Is(err, credential.ErrInvalidParams) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if _, err := credential.NewHasher(p, 1).Hash(ctx, secret); !errors.Is(err, credential.ErrInvalidParams) {
			t.Errorf("%s: Hash = %v", name, err)
		}
	}
	salt16 := base64.RawStdEncoding.EncodeToString(make([]byte, 16))
	key32 := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	h := credential.NewHasher(fastPBKDF2, 1)
	for _, bad := range []string{
		"$pbkdf2-sha512$i=10000$" + salt16,                      // no key
		"$pbkdf2-sha512$i=10000$" + salt16 + "$" + key32 + "$x", // extra field
		"$pbkdf2-sha512$i=010000$" + salt16 + "$" + key32,       // leading zero
		"$pbkdf2-sha512$rounds=10000$" + salt16 + "$" + key32,   // other spelling
		"$pbkdf2-sha512$i=4294967295$" + salt16 + "$" + key32,   // a tampered row asking for hours
		"$pbkdf2-sha512$i=10000$AAAAAAAAAAA$" + key32,           // 8-byte salt
		"$pbkdf2-sha256$i=10000$" + salt16 + "$" + key32,        // other hash
		"$pbkdf2-sha512$v=19$i=10000$" + salt16 + "$" + key32,   // argon2-style version
		"$pbkdf2-sha512$i=10000$" + salt16 + "=$" + key32,       // padding
	} {
		if ok, err := h.Verify(ctx, secret, bad); ok || !errors.Is(err, credential.ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformedHash", bad, ok, err)
		}
	}
}
