package revocation

import (
	"bytes"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Serial numbers are compared in their DER INTEGER content form: minimal
// two's complement, big-endian. Both CRL entries (validated as minimal when
// indexed) and certificates (converted by appendSerial) use it, so equal
// numbers have equal bytes and lookups need no big.Int arithmetic.

// maxSerialLen bounds a serial number's encoding. RFC 5280 allows 20 octets;
// the slack accepts the sloppy issuers crypto/x509 also tolerates, while a
// hostile CRL cannot make the index store arbitrarily long keys.
const maxSerialLen = 64

// appendSerial appends the DER INTEGER content of n to dst. Positive
// serials, the only kind crypto/x509 accepts by default, are encoded without
// allocating when dst has room.
func appendSerial(dst []byte, n *big.Int) []byte {
	if n.Sign() < 0 {
		return appendNegativeSerial(dst, n)
	}
	// BitLen/8+1 octets hold the magnitude plus the zero sign bit, which is
	// exactly the minimal encoding (0 -> 00, 127 -> 7f, 128 -> 00 80).
	size := n.BitLen()/8 + 1
	start := len(dst)
	dst = append(dst, make([]byte, size)...)
	n.FillBytes(dst[start:])
	return dst
}

// appendNegativeSerial encodes a negative serial through cryptobyte, which
// implements two's complement. Only certificates parsed with
// GODEBUG=x509negativeserial=1 get here.
func appendNegativeSerial(dst []byte, n *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1BigInt(n)
	der, err := b.Bytes()
	if err != nil {
		return dst
	}
	element := cryptobyte.String(der)
	var content cryptobyte.String
	if !element.ReadASN1(&content, cryptobyteasn1.INTEGER) {
		return dst
	}
	return append(dst, content...)
}

// compareSerials orders serial encodings by length, then bytes. Any fixed
// total order works for the index; this one needs no sign handling.
func compareSerials(a, b []byte) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}

// isMinimalInteger reports whether b is a DER INTEGER content encoding
// without redundant leading octets, so that each number has one encoding.
func isMinimalInteger(b []byte) bool {
	switch {
	case len(b) == 0:
		return false
	case len(b) == 1:
		return true
	case b[0] == 0x00 && b[1]&0x80 == 0, b[0] == 0xff && b[1]&0x80 != 0:
		return false
	}
	return true
}
