package revocation

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// crlIndex is one verified CRL reduced to what a lookup needs. Entries are
// sorted by serial (compareSerials) and stored column-wise, so an entry
// costs its serial bytes plus 13 bytes and the garbage collector sees a
// handful of pointer-free slices instead of one object per entry.
type crlIndex struct {
	source     string  // file path or URL
	issuer     *issuer // the CA whose key verified the signature
	issuerName string  // for Stats and logs
	thisUpdate time.Time
	nextUpdate time.Time
	number     []byte   // CRL number, INTEGER content; nil when absent
	scope      []string // distribution point URIs this CRL is limited to; nil = all the CA's certificates
	// onlyUserCerts and onlyCACerts limit the CRL to end-entity or to CA
	// certificates (IDP onlyContainsUserCerts, onlyContainsCACerts).
	onlyUserCerts, onlyCACerts bool

	serials   []byte   // serial encodings back to back
	ends      []uint32 // ends[i] is where serial i ends in serials
	revokedAt []int64  // Unix seconds
	reasons   []uint8  // CRLReason codes
}

// len returns the number of revoked serials.
func (x *crlIndex) len() int { return len(x.ends) }

func (x *crlIndex) serial(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = x.ends[i-1]
	}
	return x.serials[start:x.ends[i]]
}

// find binary-searches for serial, an encoding made by appendSerial.
func (x *crlIndex) find(serial []byte) (int, bool) {
	lo, hi := 0, len(x.ends)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if compareSerials(x.serial(mid), serial) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(x.ends) && bytes.Equal(x.serial(lo), serial)
}

// newerThan orders CRLs of one CA: the later thisUpdate, then the higher
// CRL number, is the more recent information.
func (x *crlIndex) newerThan(other *crlIndex) bool {
	if !x.thisUpdate.Equal(other.thisUpdate) {
		return x.thisUpdate.After(other.thisUpdate)
	}
	return compareSerials(x.number, other.number) > 0
}

// covers reports whether the CRL is authoritative for a certificate with
// these distribution points that is a CA certificate (basic constraints cA)
// or not (RFC 5280 section 6.3.3 (b)(2)): a CRL limited to user
// certificates does not cover CA certificates, one limited to CA
// certificates (an ARL) covers nothing else; a CRL without an issuing
// distribution point name covers all of its CA's certificates, one with
// names only certificates that name one of them.
func (x *crlIndex) covers(distributionPoints []string, isCA bool) bool {
	if isCA && x.onlyUserCerts || !isCA && x.onlyCACerts {
		return false
	}
	if x.scope == nil {
		return true
	}
	for _, dp := range distributionPoints {
		if slices.Contains(x.scope, dp) {
			return true
		}
	}
	return false
}

// sameScope reports whether two CRLs of one CA cover the same
// certificates, so that one is the other's successor.
func (x *crlIndex) sameScope(other *crlIndex) bool {
	return x.issuer.id == other.issuer.id && slices.Equal(x.scope, other.scope) &&
		x.onlyUserCerts == other.onlyUserCerts && x.onlyCACerts == other.onlyCACerts
}

// olderCRLError is a CRL refused because it is older than the CRL of the
// same CA and scope that it would replace.
type olderCRLError struct {
	next, current *crlIndex
}

func (e *olderCRLError) Error() string {
	return fmt.Sprintf("CRL of %s (thisUpdate %s, number %s) is older than the CRL in use (thisUpdate %s, number %s): a replayed or rolled-back CRL; keeping the CRL in use",
		e.next.issuerName, e.next.thisUpdate.UTC().Format(time.RFC3339), crlNumberText(e.next.number),
		e.current.thisUpdate.UTC().Format(time.RFC3339), crlNumberText(e.current.number))
}

func crlNumberText(number []byte) string {
	if number == nil {
		return "none"
	}
	return fmt.Sprintf("%X", number)
}

// refuseOlder returns an *olderCRLError if next, the CRLs just read from a
// source, would replace any of current, the source's CRLs in use, with an
// older CRL of the same CA and scope: one whose thisUpdate is earlier, or
// whose CRL number is lower (RFC 5280 section 5.2.3: numbers increase).
// Serving a CA's older, still unexpired CRL is how anyone on the path of a
// plain-HTTP distribution point could un-revoke certificates. The most
// recent CRL of each CA and scope on either side is compared, so a PEM
// bundle may still hold several.
func refuseOlder(current, next []*crlIndex) error {
	for _, n := range next {
		if newest(next, n) != n {
			continue
		}
		c := newest(current, n)
		if c == nil {
			continue
		}
		if n.thisUpdate.Before(c.thisUpdate) || n.number != nil && c.number != nil && compareSerials(n.number, c.number) < 0 {
			return &olderCRLError{next: n, current: c}
		}
	}
	return nil
}

// newest returns the most recent index in list with like's CA and scope.
func newest(list []*crlIndex, like *crlIndex) *crlIndex {
	var best *crlIndex
	for _, x := range list {
		if x.sameScope(like) && (best == nil || x.newerThan(best)) {
			best = x
		}
	}
	return best
}

// stale reports whether the CRL is past its nextUpdate beyond the skew
// allowance.
func (x *crlIndex) stale(now time.Time, skew time.Duration) bool {
	return now.After(x.nextUpdate.Add(skew))
}

// bytes estimates the memory the index holds: its slices' capacities plus
// the scope strings. Fixed-size fields are left out as noise.
func (x *crlIndex) bytes() int64 {
	n := int64(cap(x.serials)) + 4*int64(cap(x.ends)) + 8*int64(cap(x.revokedAt)) + int64(cap(x.reasons))
	for _, s := range x.scope {
		n += int64(len(s))
	}
	return n
}

// entryRef locates one revokedCertificates entry while sorting: where it
// is in the DER, where its serial starts in it and how long the serial is,
// packed in loc, plus the serial's sort prefix. 16 bytes an entry (8 MB for
// 500,000) instead of a second copy of the entries.
type entryRef struct {
	// prefix is the serial's length and first seven bytes, so that sorting
	// mostly compares integers in memory it is already touching instead of
	// bytes at two random places of a DER of tens of megabytes. It orders
	// like compareSerials; ties fall back to the full serials.
	prefix uint64
	loc    uint64 // entry offset<<16 | serial offset in entry<<8 | serial length
}

func newEntryRef(entryOffset, serialDelta int, serial []byte) entryRef {
	prefix := uint64(len(serial)) << 56
	for i := 0; i < 7 && i < len(serial); i++ {
		prefix |= uint64(serial[i]) << (48 - 8*i)
	}
	return entryRef{prefix: prefix, loc: uint64(entryOffset)<<16 | uint64(serialDelta)<<8 | uint64(len(serial))}
}

func (r entryRef) entryOffset() int { return int(r.loc >> 16) }

func (r entryRef) serialIn(entries []byte) []byte {
	start := r.entryOffset() + int(r.loc>>8&0xff)
	return entries[start : start+int(r.loc&0xff)]
}

// compareEntryRefs orders refs by serial, then by position in the CRL, so
// that of a serial listed twice the first listing comes first.
func compareEntryRefs(entries []byte, a, b entryRef) int {
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	if c := compareSerials(a.serialIn(entries), b.serialIn(entries)); c != 0 {
		return c
	}
	return cmp.Compare(a.entryOffset(), b.entryOffset())
}

// buildIndex reads the CRL's entries into a sorted index. The header's
// signature must have been verified: entries are only trusted after that.
//
// Nothing but the final index is kept per entry: a first pass over the DER
// validates each entry's framing and serial and records where it is; the
// refs are sorted by serial; a second pass decodes the entries in sorted
// order straight into the final, exactly sized columns. The peak is the DER
// plus 16 bytes an entry plus the index.
func buildIndex(h *crlHeader) (*crlIndex, error) {
	entries := []byte(h.entries)
	refs, serialBytes, err := scanEntries(entries)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(refs, func(a, b entryRef) int { return compareEntryRefs(entries, a, b) })

	x := &crlIndex{
		thisUpdate:    h.thisUpdate,
		nextUpdate:    h.nextUpdate,
		scope:         h.scope,
		onlyUserCerts: h.onlyUserCerts,
		onlyCACerts:   h.onlyCACerts,
		serials:       make([]byte, 0, serialBytes),
		ends:          make([]uint32, 0, len(refs)),
		revokedAt:     make([]int64, 0, len(refs)),
		reasons:       make([]uint8, 0, len(refs)),
	}
	if h.number != nil {
		x.number = bytes.Clone(h.number) // not a slice of the DER, which must be let go
	}
	var previous []byte
	for _, ref := range refs {
		entry := cryptobyte.String(entries[ref.entryOffset():])
		revokedAt, reason, err := readEntry(&entry)
		if err != nil {
			return nil, err
		}
		serial := ref.serialIn(entries)
		if previous != nil && bytes.Equal(serial, previous) {
			continue // listed twice: the first listing stands
		}
		previous = serial
		if reason == reasonRemoveFromCRL {
			// Only meaningful in delta CRLs; in a complete CRL it says the
			// serial is not revoked.
			continue
		}
		x.serials = append(x.serials, serial...)
		x.ends = append(x.ends, uint32(len(x.serials)))
		x.revokedAt = append(x.revokedAt, revokedAt.Unix())
		x.reasons = append(x.reasons, uint8(reason))
	}
	return x, nil
}

// scanEntries checks each entry's framing and serial, returning refs to the
// entries and the total length of their serials.
func scanEntries(entries []byte) ([]entryRef, int, error) {
	if uint64(len(entries)) >= 1<<48 { // entryRef has 48 bits for the offset
		return nil, 0, malformed("revokedCertificates too large")
	}
	// Counting first (reading only element headers) sizes refs exactly;
	// growing it by appending would leave garbage of up to twice its size.
	count := 0
	for rest := cryptobyte.String(entries); !rest.Empty(); count++ {
		if !rest.SkipASN1(cryptobyteasn1.SEQUENCE) {
			return nil, 0, malformed("bad revokedCertificates entry")
		}
	}
	refs := make([]entryRef, 0, count)
	serialBytes := 0
	rest := cryptobyte.String(entries)
	for !rest.Empty() {
		offset := len(entries) - len(rest)
		var entry, serial cryptobyte.String
		if !rest.ReadASN1(&entry, cryptobyteasn1.SEQUENCE) {
			return nil, 0, malformed("bad revokedCertificates entry")
		}
		contentStart := len(entries) - len(rest) - len(entry)
		if !entry.ReadASN1(&serial, cryptobyteasn1.INTEGER) {
			return nil, 0, malformed("bad serial number in entry")
		}
		if !isMinimalInteger(serial) || len(serial) > maxSerialLen {
			return nil, 0, malformed(fmt.Sprintf("serial number of entry %d is not a minimal INTEGER of at most %d bytes", len(refs)+1, maxSerialLen))
		}
		// The serial's two-byte INTEGER header (its length is under 128)
		// follows the entry header.
		serialDelta := contentStart - offset + 2
		refs = append(refs, newEntryRef(offset, serialDelta, serial))
		serialBytes += len(serial)
	}
	return refs, serialBytes, nil
}

// readEntry decodes one revokedCertificates entry past its serial.
func readEntry(s *cryptobyte.String) (revokedAt time.Time, reason int, err error) {
	var entry cryptobyte.String
	if !s.ReadASN1(&entry, cryptobyteasn1.SEQUENCE) || !entry.SkipASN1(cryptobyteasn1.INTEGER) {
		return time.Time{}, 0, malformed("bad revokedCertificates entry")
	}
	if !readTime(&entry, &revokedAt) {
		return time.Time{}, 0, malformed("bad revocation date")
	}
	reason = reasonUnspecified
	if entry.Empty() {
		return revokedAt, reason, nil
	}
	var extensions cryptobyte.String
	if !entry.ReadASN1(&extensions, cryptobyteasn1.SEQUENCE) || !entry.Empty() {
		return time.Time{}, 0, malformed("bad entry extensions")
	}
	err = readExtensionList(extensions, func(ext extension) error {
		switch {
		case ext.is(extReasonCode):
			var code int
			if !ext.value.ReadASN1Enum(&code) || !ext.value.Empty() || code < 0 || code > 10 {
				return malformed("bad reason code")
			}
			reason = code
		case ext.is(extCertificateIssuer):
			return errUnsupportedIndirectCRL
		case ext.is(extInvalidityDate), ext.is(extHoldInstructionCode):
			// Informational: the revocation date is what the checker reports.
		case ext.critical:
			return errors.New("unsupported critical CRL entry extension " + ext.name())
		}
		return nil
	})
	return revokedAt, reason, err
}
