package credential

import "errors"

// The errors below are matched with [errors.Is]. Their text, and the detail
// wrapped around them, describe what is wrong with a value and never include
// the value: a stored hash is as sensitive as the secret it protects once it
// reaches a log, because it can be attacked offline.
var (
	// ErrMalformedHash means a stored hash is not an argon2id or PBKDF2
	// PHC string this package accepts: a different algorithm or version, bad syntax,
	// bad base64, or parameters outside the bounds Verify will run (in which
	// case the error also matches ErrInvalidParams).
	ErrMalformedHash = errors.New("credential: malformed stored hash")

	// ErrInvalidParams means hashing parameters are outside the range this
	// package will hash with, whether they came from configuration or from
	// a stored hash.
	ErrInvalidParams = errors.New("credential: hashing parameters out of range")

	// ErrUnacceptableAnswer means HashAnswer was given an answer that
	// CheckAnswer refuses. Storing it would create a security question that
	// no acceptable answer, or a trivially guessable one, satisfies.
	ErrUnacceptableAnswer = errors.New("credential: security answer does not meet the rules")

	// errNoSlots means a Hasher was not made by NewHasher. Without it the
	// zero Hasher would block forever waiting for a slot that cannot exist.
	errNoSlots = errors.New("credential: Hasher must be created with NewHasher")
)
