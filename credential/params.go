package credential

import "fmt"

// Params are argon2id cost parameters. Memory is in KiB; Threads is the
// parallelism (lanes); SaltLen and KeyLen are in bytes.
type Params struct {
	Memory  uint32
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

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
var DefaultParams = Params{Memory: 46 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

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
)

// Validate reports whether argon2id can hash with p within this package's
// bounds: memory of at least 8 KiB per lane (RFC 9106) and at most 1 GiB,
// 1 to 10 passes, 1 to 16 lanes, and salt and key of 8 to 64 bytes. It does
// not judge whether p is strong enough; DefaultParams is.
func (p Params) Validate() error {
	switch {
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

// withDefaults fills each zero field from DefaultParams, so configuration
// can override one parameter without restating the others.
func (p Params) withDefaults() Params {
	d := DefaultParams
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	return p
}
