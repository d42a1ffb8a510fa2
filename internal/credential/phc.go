package credential

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// decodeB64 decodes a PHC base64 field, accepting only the canonical
// spelling, so each hash has exactly one and a parsed hash re-encodes to the
// string it came from. Comparing against the re-encoding is what makes it
// canonical: even a Strict decoder silently skips '\r' and '\n'.
func decodeB64(s string) ([]byte, bool) {
	b, err := b64.DecodeString(s)
	return b, err == nil && b64.EncodeToString(b) == s
}

// maxEncodedLen bounds a stored hash before any parsing, comfortably above
// the longest string within the parameter bounds
// ("$argon2id$v=19$m=1048576,t=10,p=16$" and two 86-character fields, 208
// bytes), so hostile input never costs more than a few hundred bytes of work.
const maxEncodedLen = 256

// phcHash is a parsed stored hash. params.SaltLen and params.KeyLen are the
// lengths of salt and key.
type phcHash struct {
	params    Params
	salt, key []byte
}

// encodePHC formats a hash as
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>, or for PBKDF2
// $pbkdf2-sha512$i=<iterations>$<salt>$<key>.
func encodePHC(p Params, salt, key []byte) string {
	if p.Algorithm == PBKDF2SHA512 {
		return fmt.Sprintf("$%s$i=%d$%s$%s", PBKDF2SHA512, p.Iterations, b64.EncodeToString(salt), b64.EncodeToString(key))
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC parses what encodePHC produces, and only that: parameters in
// canonical order and decimal form, canonical base64, argon2 version 19, and
// parameters within Validate's bounds.
func parsePHC(s string) (phcHash, error) {
	if len(s) > maxEncodedLen {
		return phcHash{}, fmt.Errorf("%w: too long", ErrMalformedHash)
	}
	fields := strings.Split(s, "$")
	if len(fields) < 2 || fields[0] != "" {
		return phcHash{}, fmt.Errorf("%w: not a PHC string", ErrMalformedHash)
	}
	var p Params
	switch fields[1] {
	case Argon2id:
		if len(fields) != 6 {
			return phcHash{}, fmt.Errorf("%w: not a PHC string", ErrMalformedHash)
		}
		if fields[2] != "v="+strconv.Itoa(argon2.Version) {
			return phcHash{}, fmt.Errorf("%w: unsupported argon2 version", ErrMalformedHash)
		}
		var err error
		if p, err = parseCost(fields[3]); err != nil {
			return phcHash{}, err
		}
		fields = fields[4:]
	case PBKDF2SHA512:
		if len(fields) != 5 {
			return phcHash{}, fmt.Errorf("%w: not a PHC string", ErrMalformedHash)
		}
		digits, ok := strings.CutPrefix(fields[2], "i=")
		iterations, okDecimal := parseDecimal(digits)
		if !ok || !okDecimal {
			return phcHash{}, fmt.Errorf("%w: parameters are not i=<iterations>", ErrMalformedHash)
		}
		p = Params{Algorithm: PBKDF2SHA512, Iterations: iterations}
		fields = fields[3:]
	default:
		return phcHash{}, fmt.Errorf("%w: not an argon2id or %s hash", ErrMalformedHash, PBKDF2SHA512)
	}
	salt, ok := decodeB64(fields[0])
	if !ok {
		return phcHash{}, fmt.Errorf("%w: salt is not base64", ErrMalformedHash)
	}
	key, ok := decodeB64(fields[1])
	if !ok {
		return phcHash{}, fmt.Errorf("%w: hash is not base64", ErrMalformedHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return phcHash{}, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	return phcHash{params: p, salt: salt, key: key}, nil
}

// parseCost parses "m=<KiB>,t=<passes>,p=<lanes>".
func parseCost(s string) (Params, error) {
	var values [3]uint32
	names := [3]string{"m=", "t=", "p="}
	parts := strings.Split(s, ",")
	if len(parts) != len(names) {
		return Params{}, fmt.Errorf("%w: parameters are not m,t,p", ErrMalformedHash)
	}
	for i, part := range parts {
		digits, ok := strings.CutPrefix(part, names[i])
		if !ok {
			return Params{}, fmt.Errorf("%w: parameters are not m,t,p", ErrMalformedHash)
		}
		v, ok := parseDecimal(digits)
		if !ok {
			return Params{}, fmt.Errorf("%w: parameter is not a decimal number", ErrMalformedHash)
		}
		values[i] = v
	}
	if values[2] > maxThreads {
		// Checked here, not only in Validate, because Threads is a uint8
		// and converting first would let p=257 pass as p=1.
		return Params{}, fmt.Errorf("%w: %w: threads must be 1 to %d", ErrMalformedHash, ErrInvalidParams, maxThreads)
	}
	return Params{Algorithm: Argon2id, Memory: values[0], Time: values[1], Threads: uint8(values[2])}, nil
}

// parseDecimal parses a canonical unsigned 32-bit decimal: digits only, no
// sign, no leading zeros.
func parseDecimal(s string) (uint32, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	return uint32(v), err == nil
}
