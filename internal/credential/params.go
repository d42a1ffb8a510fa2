package credential

import "fmt"

// Params are the hashing algorithm and its cost parameters. For argon2id
// (the default), Memory is in KiB and Threads is the parallelism (lanes);
// for PBKDF2 only Iterations counts. SaltLen and KeyLen are in bytes.
type Params struct {
	// Algorithm is Argon2id ("" means Argon2id) or PBKDF2SHA512.
	Algorithm string
	Memory    uint32
	Time      uint32
	Threads   uint8
	// Iterations is PBKDF2's iteration count.
	Iterations uint32
	SaltLen    uint32
	KeyLen     uint32
}

// The algorithms a Hasher hashes with, named as in their PHC strings.
const (
	// Argon2id is RFC 9106's memory-hard function: the stronger choice
	// against guessing on GPUs, but not a NIST-approved KDF.
	Argon2id = "argon2id"
	// PBKDF2SHA512 is PBKDF2 (NIST SP 800-132) with HMAC-SHA-512, from
	// Go's standard library, inside its FIPS 140-3 module: for sites whose
	// assessors require an approved KDF for stored passwords.
	PBKDF2SHA512 = "pbkdf2-sha512"
)

// DefaultPBKDF2Iterations is OWASP's recommendation for PBKDF2-HMAC-SHA-512
// (2023): about 145 ms per hash on one core of a 2-vCPU EPYC, four times an
// argon2id hash with DefaultParams, so enrollment (four hashes) takes about
// 0.6 s of hashing.
const DefaultPBKDF2Iterations = 210_000

// DefaultPBKDF2Params are the PBKDF2 parameters used when PBKDF2SHA512 is
// chosen without others: OWASP's iteration count, a 128-bit salt (the
// minimum SP 800-132 and Go's FIPS mode accept) and a 256-bit key.
var DefaultPBKDF2Params = Params{Algorithm: PBKDF2SHA512, Iterations: DefaultPBKDF2Iterations, SaltLen: 16, KeyLen: 32}

// DefaultParams is OWASP's first argon2id recommendation (m=46 MiB, t=1,
// p=1) with RFC 9106's 128-bit salt and 256-bit key.
//
// It is chosen for a small (two-core) gateway, where hashing competes with
// proxying:
//
//   - One lane (p=1) makes each hash use exactly one core, so the Hasher's
//     concurrency bound is a core budget: a bound of 1 always leaves the
//     other core to the proxy. With RFC 9106's p=4 a single hash would
//     occupy every core of the machine while it runs.
//   - It costs 35 to 55 ms on one core of a 2-vCPU EPYC, against 85 to
//     210 ms on both cores for RFC 9106's second option (m=64 MiB, t=3,
//     p=4), and enrollment hashes four secrets (a password and three
//     answers).
//   - An attacker's cost is set by memory × passes, which OWASP rates equal
//     across its listed options; 46 MiB per guess already rules out the
//     cheap parallel hardware that makes fast hashes weak.
//
// Stored hashes carry their parameters, so raising these later only needs
// NeedsRehash at the next successful sign-in.
var DefaultParams = Params{Algorithm: Argon2id, Memory: 46 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters. The upper bounds exist for Verify, which reads the
// parameters from the stored hash: without them, one tampered database row
// could ask for 4 TiB of memory or a billion passes, and every sign-in
// attempt against it would take the gateway down. They sit far above any
// sensible configuration.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 10
	maxThreads   = 16
	minByteLen   = 8
	maxByteLen   = 64
	// PBKDF2: NIST SP 800-63B's floor of 10,000 iterations, and a ceiling
	// of about as many seconds of one core as argon2id's.
	minIterations = 10_000
	maxIterations = 10_000_000
	// SP 800-132 and Go's FIPS 140-3 mode want salts of at least 128 bits
	// and keys of at least 112 bits.
	minPBKDF2SaltLen = 16
	minPBKDF2KeyLen  = 16
)

// Validate reports whether p's algorithm can hash with p within this
// package's bounds. For argon2id: memory of at least 8 KiB per lane (RFC 9106) and at most 1 GiB,
// 1 to 10 passes, 1 to 16 lanes, and salt and key of 8 to 64 bytes. It does
// not judge whether p is strong enough; DefaultParams is.
func (p Params) Validate() error {
	switch p.Algorithm {
	case Argon2id, "":
	case PBKDF2SHA512:
		return p.validatePBKDF2()
	default:
		return fmt.Errorf("%w: unknown algorithm %q", ErrInvalidParams, p.Algorithm)
	}
	switch {
	case p.Iterations != 0:
		return fmt.Errorf("%w: iterations are for PBKDF2", ErrInvalidParams)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: threads must be 1 to %d", ErrInvalidParams, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("%w: memory must be 8 KiB per thread to %d KiB", ErrInvalidParams, maxMemoryKiB)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: time must be 1 to %d", ErrInvalidParams, maxTime)
	case p.SaltLen < minByteLen || p.SaltLen > maxByteLen:
		return fmt.Errorf("%w: salt length must be %d to %d bytes", ErrInvalidParams, minByteLen, maxByteLen)
	case p.KeyLen < minByteLen || p.KeyLen > maxByteLen:
		return fmt.Errorf("%w: key length must be %d to %d bytes", ErrInvalidParams, minByteLen, maxByteLen)
	}
	return nil
}

// validatePBKDF2 is Validate for PBKDF2SHA512: 10,000 to 10,000,000
// iterations, salt of 16 to 64 bytes, key of 16 to 64 bytes, and none of
// argon2id's parameters.
func (p Params) validatePBKDF2() error {
	switch {
	case p.Memory != 0 || p.Time != 0 || p.Threads != 0:
		return fmt.Errorf("%w: memory, time and threads are for argon2id", ErrInvalidParams)
	case p.Iterations < minIterations || p.Iterations > maxIterations:
		return fmt.Errorf("%w: iterations must be %d to %d", ErrInvalidParams, minIterations, maxIterations)
	case p.SaltLen < minPBKDF2SaltLen || p.SaltLen > maxByteLen:
		return fmt.Errorf("%w: salt length must be %d to %d bytes", ErrInvalidParams, minPBKDF2SaltLen, maxByteLen)
	case p.KeyLen < minPBKDF2KeyLen || p.KeyLen > maxByteLen:
		return fmt.Errorf("%w: key length must be %d to %d bytes", ErrInvalidParams, minPBKDF2KeyLen, maxByteLen)
	}
	return nil
}

// withDefaults fills each zero field from DefaultParams (or, for PBKDF2,
// DefaultPBKDF2Params), so configuration can override one parameter
// without restating the others.
func (p Params) withDefaults() Params {
	if p.Algorithm == "" {
		p.Algorithm = Argon2id
	}
	d := DefaultParams
	if p.Algorithm == PBKDF2SHA512 {
		d = DefaultPBKDF2Params
		if p.Iterations == 0 {
			p.Iterations = d.Iterations
		}
	} else {
		if p.Memory == 0 {
			p.Memory = d.Memory
		}
		if p.Time == 0 {
			p.Time = d.Time
		}
		if p.Threads == 0 {
			p.Threads = d.Threads
		}
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	return p
}
