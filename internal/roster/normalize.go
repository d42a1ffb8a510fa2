package roster

import (
	"errors"
	"time"
)

// text is what the normalizers read: a typed value (string) or a roster
// cell ([]byte, parsed in place so the file's secrets can be erased).
type text interface{ string | []byte }

// maxRawSecretLen bounds a value before it is looked at: real input is at
// most a few separators longer than its normalized form, and hostile input
// of any length costs nothing.
const maxRawSecretLen = 32

// Normalization problems, mapped to messages by the form (claim.go) and by
// the file loader (csvload.go). None carries the value.
var (
	errSSNFormat      = errors.New("not 9 digits")
	errSSNNeverIssued = errors.New("a number the SSA never issues")
	errFINFormat      = errors.New("not 1 to 12 letters and digits")
	errDateFormat     = errors.New("not a date in the form YYYY-MM-DD")
)

// parseSSN normalizes a Social Security Number to its nine digits, dropping
// the dashes and spaces people type between the groups, and refuses
// numbers no record can carry: area 000 or 666, group 00, serial 0000. Such
// a value in a claim is a typo, and in the roster a placeholder that must
// not be matchable. The 900-999 areas, which the SSA never issues, are
// accepted on purpose: personnel systems have assigned 9xx-series
// pseudo-SSNs to people without one, and test rosters use that range so no
// real person's number ever appears in test data.
func parseSSN[T text](raw T, out *secret) error {
	out.wipe()
	raw = trimBlanks(raw)
	if len(raw) > maxRawSecretLen {
		return errSSNFormat
	}
	for i := range len(raw) {
		c := raw[i]
		switch {
		case c == '-' || c == ' ':
		case isDigit(c) && out.add(c, 9):
		default:
			out.wipe()
			return errSSNFormat
		}
	}
	if out.n != 9 {
		out.wipe()
		return errSSNFormat
	}
	// Compared in place: string(b) == "..." compiles to a byte comparison,
	// no copy of the digits is made.
	d := out.bytes()
	if string(d[0:3]) == "000" || string(d[0:3]) == "666" ||
		string(d[3:5]) == "00" || string(d[5:9]) == "0000" {
		out.wipe()
		return errSSNNeverIssued
	}
	return nil
}

// parseFIN normalizes a Foreign Identification Number: ASCII letters
// (upper-cased) and digits, 1 to 12 of them once the dashes and spaces
// people copy from documents are dropped. DEERS-assigned FINs are digits
// only, but host-nation and coalition numbers carry letters, so the format
// is kept wide and the roster, which holds the real values, decides.
func parseFIN[T text](raw T, out *secret) error {
	out.wipe()
	raw = trimBlanks(raw)
	if len(raw) > maxRawSecretLen {
		return errFINFormat
	}
	for i := range len(raw) {
		c := raw[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch {
		case c == '-' || c == ' ':
		case (isDigit(c) || 'A' <= c && c <= 'Z') && out.add(c, maxSecretLen):
		default:
			out.wipe()
			return errFINFormat
		}
	}
	if out.empty() {
		return errFINFormat
	}
	return nil
}

// parseDate accepts exactly YYYY-MM-DD naming a real calendar day, after
// trimming surrounding blanks, and stores it in that canonical form. Dates
// in this form compare chronologically as bytes.
func parseDate[T text](raw T, out *secret) error {
	out.wipe()
	raw = trimBlanks(raw)
	if len(raw) != 10 || raw[4] != '-' || raw[7] != '-' {
		return errDateFormat
	}
	for i := range len(raw) {
		if i != 4 && i != 7 && !isDigit(raw[i]) {
			return errDateFormat
		}
	}
	year, month, day := digits(raw[0:4]), digits(raw[5:7]), digits(raw[8:10])
	// time.Date normalizes out-of-range days (Feb 30 is Mar 2), so a day
	// that does not survive the round trip does not exist.
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if month < 1 || month > 12 || day < 1 || t.Day() != day {
		return errDateFormat
	}
	for i := range len(raw) {
		out.add(raw[i], len(raw))
	}
	return nil
}

// isEDIPI reports whether s is a DoD ID: exactly ten ASCII digits.
func isEDIPI(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits converts a run of ASCII digits already checked by the caller.
func digits[T text](s T) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// trimBlanks drops the spaces and tabs around a value, which people and
// spreadsheets add without meaning anything by them.
func trimBlanks[T text](s T) T {
	start, end := 0, len(s)
	for start < end && isBlank(s[start]) {
		start++
	}
	for end > start && isBlank(s[end-1]) {
		end--
	}
	return s[start:end]
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
