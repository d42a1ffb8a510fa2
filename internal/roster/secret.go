package roster

// maxSecretLen is the longest normalized secret: a FIN of 12 characters
// (an SSN is 9 digits, a date 10 characters).
const maxSecretLen = 12

// secret holds one normalized SSN, FIN or date in a fixed array, so the
// value never lands in a string (which Go cannot erase) or in a slice that
// append might silently copy. Whoever fills one wipes it when done.
type secret struct {
	buf [maxSecretLen]byte
	n   int
}

func (s *secret) bytes() []byte { return s.buf[:s.n] }

func (s *secret) empty() bool { return s.n == 0 }

// add appends c, reporting false when the value would be too long.
func (s *secret) add(c byte, limit int) bool {
	if s.n >= limit {
		return false
	}
	s.buf[s.n] = c
	s.n++
	return true
}

func (s *secret) wipe() {
	clear(s.buf[:])
	s.n = 0
}
