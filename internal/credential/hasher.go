package credential

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Hasher hashes secrets with argon2id (or PBKDF2, see Params) and verifies
// them with whichever of the two made the stored hash, running at most a
// fixed number of hashes at once. Each hash takes [Params.Memory] of memory and
// [Params.Threads] cores for its duration, so the bound caps what sign-in and
// enrollment can take from the proxy: with DefaultParams (one lane), a bound
// of 1 on a two-core gateway always leaves a core free, and each slot rests
// after every hash (see restFactor), so a flood gets at most a quarter of a
// core per slot. Callers beyond the bound wait in line, one line per
// Priority (WithPriority): a freed slot goes to the highest priority's
// first waiter, so people signing in pass enrollment hashes queued before
// them. The lines are bounded (Queue): a hash that finds its line full,
// or waits longer than the bound, fails at once with ErrBusy rather than
// making everyone behind it wait longer.
//
// A Hasher is safe for concurrent use. Create it with NewHasher.
type Hasher struct {
	params Params
	// slots is a counting semaphore with a line per priority: a hash
	// holds a slot while it runs and for its rest afterwards (see
	// restFactor).
	slots *slots
	// running counts the hashes running now.
	running atomic.Int32
	// derive computes the key. It is a field so tests can observe how many
	// hashes run at once without depending on argon2's timing.
	derive func(secret, salt []byte, p Params) ([]byte, error)
	// rest is how long a slot rests after a hash that took d; a field so
	// tests can count hashes without waiting for rests.
	rest func(d time.Duration) time.Duration
}

// NewHasher returns a Hasher that hashes new secrets with p (zero fields
// taken from DefaultParams) and runs at most maxConcurrent hashes at once
// (at least 1). Parameters outside Params.Validate's bounds make Hash fail
// with ErrInvalidParams; call Validate first to report them at startup.
// Its lines are bounded by Queue's defaults.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	return NewQueuedHasher(p, maxConcurrent, Queue{})
}

// NewQueuedHasher is NewHasher with the lines in front of the slots bounded
// by q (zero fields taking the defaults).
func NewQueuedHasher(p Params, maxConcurrent int, q Queue) *Hasher {
	return &Hasher{
		params: p.withDefaults(),
		slots:  newSlots(maxConcurrent, q),
		derive: deriveKey,
		rest:   func(d time.Duration) time.Duration { return d * restFactor },
	}
}

// deriveKey derives the key of secret with p's algorithm. p has been
// validated (Hash) or parsed within bounds (Verify).
func deriveKey(secret, salt []byte, p Params) ([]byte, error) {
	if p.Algorithm == PBKDF2SHA512 {
		// Within Validate's bounds (salt and key of at least 16 bytes)
		// this fails on nothing, even in FIPS 140-3 mode.
		return pbkdf2.Key(sha512.New, string(secret), salt, int(p.Iterations), int(p.KeyLen))
	}
	return argon2.IDKey(secret, salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// Params returns the parameters new hashes use, for NeedsRehash.
func (h *Hasher) Params() Params { return h.params }

// InFlight returns how many hashes are running now, for metrics. Callers
// waiting for a slot and slots resting after a hash are not counted.
func (h *Hasher) InFlight() int { return int(h.running.Load()) }

// Waiting returns how many hashes of priority p wait for a slot now.
func (h *Hasher) Waiting(p Priority) int {
	if h == nil || h.slots == nil || p < 0 || p >= priorities {
		return 0
	}
	return h.slots.waiting(p)
}

// Hash returns secret's hash with the Hasher's algorithm and a fresh
// random salt, as a PHC string: $argon2id$v=19$m=47104,t=1,p=1$<salt>$<hash>
// or $pbkdf2-sha512$i=210000$<salt>$<hash>. It waits for a slot in the
// line of ctx's priority (WithPriority; Interactive by default), and
// returns ctx.Err() if ctx ends while waiting, or a *BusyError (ErrBusy)
// if that line is full or the wait outlasts the queue's bound; a hash
// that has started runs to completion.
func (h *Hasher) Hash(ctx context.Context, secret string) (string, error) {
	if err := h.params.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, h.params.SaltLen)
	// crypto/rand.Read never returns an error (since Go 1.24 it aborts the
	// program instead), so there is no failure to handle here.
	_, _ = rand.Read(salt)
	key, err := h.run(ctx, secret, salt, h.params)
	if err != nil {
		return "", err
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether secret matches encoded, a hash from Hash. The
// parameters are read from encoded, so hashes made before a parameter change
// still verify; encoded is refused with an error wrapping ErrMalformedHash
// if it is not such a hash or its parameters are out of bounds. The
// comparison takes the same time wherever the keys differ. Like Hash, it
// waits in ctx's priority's line and returns ctx.Err() or ErrBusy if it
// cannot have a slot.
func (h *Hasher) Verify(ctx context.Context, secret, encoded string) (bool, error) {
	stored, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	key, err := h.run(ctx, secret, stored.salt, stored.params)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, stored.key) == 1, nil
}

// HashAnswer hashes a security answer in its normalized form (see
// NormalizeAnswer), so it later verifies whatever the case and spacing. An
// answer CheckAnswer refuses is refused with ErrUnacceptableAnswer.
func (h *Hasher) HashAnswer(ctx context.Context, answer string) (string, error) {
	if CheckAnswer(answer) != "" {
		return "", ErrUnacceptableAnswer
	}
	return h.Hash(ctx, NormalizeAnswer(answer))
}

// VerifyAnswer reports whether answer matches encoded, a hash from
// HashAnswer, ignoring case and spacing. An answer CheckAnswer refuses
// cannot match any such hash, so it is reported as not matching without
// spending a hash on it: guesses that break the rules cost the gateway
// nothing.
func (h *Hasher) VerifyAnswer(ctx context.Context, answer, encoded string) (bool, error) {
	if CheckAnswer(answer) != "" {
		if _, err := parsePHC(encoded); err != nil {
			return false, err
		}
		return false, nil
	}
	return h.Verify(ctx, NormalizeAnswer(answer), encoded)
}

// NeedsRehash reports whether encoded should be replaced by a hash made with
// p (zero fields taken from DefaultParams): because it was made with other
// parameters, higher or lower, or cannot be parsed at all. Call it after a
// successful Verify, while the secret is at hand.
func NeedsRehash(encoded string, p Params) bool {
	stored, err := parsePHC(encoded)
	return err != nil || stored.params != p.withDefaults()
}

// restFactor is how long a slot stays taken after a hash, as a multiple of
// the hash's own duration. A slot then hashes at most a quarter of the
// time, so however many posts a flood sends, each slot takes at most a
// quarter of a core from proxying: a bound of one slot alone would hand a
// flood half of a two-core gateway (measured: proxied throughput fell to
// about 0.55 of normal; with the rest it stays above 0.8, see the README's
// Performance section). The caller does not wait for the rest, so a lone
// enrollment is not slowed; only hashes queued behind it are.
const restFactor = 3

// run derives a key once a slot is free. The copy of the secret is cleared
// afterwards so it does not linger in the heap for longer than the string
// it came from.
func (h *Hasher) run(ctx context.Context, secret string, salt []byte, p Params) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	h.running.Add(1)
	start := time.Now()
	defer func() {
		h.running.Add(-1)
		if rest := h.rest(time.Since(start)); rest > 0 {
			time.AfterFunc(rest, h.slots.release)
		} else {
			h.slots.release()
		}
	}()
	b := []byte(secret)
	defer clear(b)
	return h.derive(b, salt, p)
}

func (h *Hasher) acquire(ctx context.Context) error {
	if h == nil || h.slots == nil {
		return errNoSlots
	}
	return h.slots.acquire(ctx, PriorityOf(ctx))
}

// Reserve takes a slot as a hash of ctx's priority would (waiting in its
// line, bounded the same way), and holds it without hashing until release
// is called (once; later calls do nothing). It is for tests that need a
// busy hasher, and for callers that must keep hashing out for a while.
func (h *Hasher) Reserve(ctx context.Context) (release func(), err error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(h.slots.release) }, nil
}
