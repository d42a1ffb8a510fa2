package roster

import (
	"errors"
	"io"
	"sync"
)

// maxRequestBytes holds the longest request body:
// {"email":"<254>","fin":"<12>","dob":"<10>","pebd":"<10>"} is 327 bytes.
const maxRequestBytes = 384

var errBodyErased = errors.New("roster: request body already sent and erased")

// requestBody is the JSON of a verification request, built in a fixed
// array so that no copy of the SSN is left behind by a growing slice, and
// erased when the HTTP transport closes it. What the transport copies into
// its own buffers is beyond reach.
type requestBody struct {
	mu       sync.Mutex
	buf      [maxRequestBytes]byte
	n, off   int
	erased   bool
	overflow bool // the body did not fit; never true for a validated claim
}

// newRequestBody writes the request JSON. Every value is a key (an EDIPI,
// a card UUID or an e-mail address, normalizeKey's printable ASCII without
// quotes or backslashes), a normalized SSN or FIN, or a canonical date:
// none needs JSON escaping.
func newRequestBody(n *normalizedClaim) *requestBody {
	b := &requestBody{}
	put(b, `{"`)
	put(b, string(n.keyKind))
	put(b, `":"`)
	put(b, n.keyValue)
	if n.kind == idSSN {
		put(b, `","ssn":"`)
	} else {
		put(b, `","fin":"`)
	}
	put(b, n.id.bytes())
	put(b, `","dob":"`)
	put(b, n.dob.bytes())
	if !n.pebd.empty() {
		put(b, `","pebd":"`)
		put(b, n.pebd.bytes())
	}
	put(b, `"}`)
	if b.overflow {
		b.Close()
	}
	return b
}

// put appends s, or marks the body as overflowed.
func put[T text](b *requestBody, s T) {
	if b.overflow || b.n+len(s) > len(b.buf) {
		b.overflow = true
		return
	}
	b.n += copy(b.buf[b.n:], s)
}

// Read implements io.Reader for the HTTP transport.
func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.erased {
		return 0, errBodyErased
	}
	if b.off >= b.n {
		return 0, io.EOF
	}
	k := copy(p, b.buf[b.off:b.n])
	b.off += k
	return k, nil
}

// Close erases the body. The transport calls it when done, possibly from
// another goroutine after the reply arrived, hence the lock.
func (b *requestBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.buf[:])
	b.erased = true
	return nil
}
