package cacid

import (
	"encoding/asn1"
	"errors"
)

// OIDFASCN is pivFASC-N (FIPS 201, appendix B), the otherName type of the
// Federal Agency Smart Credential Number in a PIV certificate's subject
// alternative names: an OCTET STRING of 25 bytes.
var OIDFASCN = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 6, 6}

// A FASC-N (TIG SCEPACS) is 40 characters of 5 bits: four data bits, least
// significant first, and an odd parity bit. The characters are SS, agency
// code (4 digits), FS, system code (4), FS, credential number (6), FS,
// credential series (1), FS, individual credential issue (1), FS, person
// identifier (10), organizational category (1), organizational identifier
// (4), person/organization association category (1), ES and the
// longitudinal redundancy character (the XOR of the other 39).
const (
	fascnLen      = 25 // bytes
	fascnChars    = 40
	fascnSS       = 0xB
	fascnFS       = 0xD
	fascnES       = 0xF
	fascnDigitLen = 32
)

// fascnLayout is the character sequence: a digit field's length, or a
// negative value for a control character.
var fascnLayout = []int{-fascnSS, 4, -fascnFS, 4, -fascnFS, 6, -fascnFS, 1, -fascnFS, 1, -fascnFS, 10, 1, 4, 1, -fascnES}

// DecodeFASCN returns the 32 digits of a FASC-N (agency, system,
// credential number, series, issue, person identifier, organizational
// category, organizational identifier, association category), checking
// every parity bit, the separators and the LRC.
func DecodeFASCN(b []byte) (string, error) {
	if len(b) != fascnLen {
		return "", errors.New("a FASC-N is 25 bytes")
	}
	chars := make([]byte, fascnChars)
	var lrc byte
	for i := range chars {
		var v byte
		for bit := 0; bit < 5; bit++ {
			pos := i*5 + bit
			if b[pos/8]&(0x80>>(pos%8)) != 0 {
				v |= 1 << bit // data bits least significant first; bit 4 is parity
			}
		}
		if ones(v)%2 != 1 {
			return "", errors.New("a FASC-N character fails its parity check")
		}
		chars[i] = v & 0xF
		if i < fascnChars-1 {
			lrc ^= chars[i]
		}
	}
	if chars[fascnChars-1] != lrc {
		return "", errors.New("the FASC-N's LRC does not match")
	}
	digits := make([]byte, 0, fascnDigitLen)
	i := 0
	for _, field := range fascnLayout {
		if field < 0 {
			if chars[i] != byte(-field) {
				return "", errors.New("the FASC-N's separators are misplaced")
			}
			i++
			continue
		}
		for range field {
			if chars[i] > 9 {
				return "", errors.New("a FASC-N field holds a non-digit")
			}
			digits = append(digits, '0'+chars[i])
			i++
		}
	}
	return string(digits), nil
}

// EncodeFASCN is DecodeFASCN's inverse: the 25 bytes for 32 digits.
func EncodeFASCN(digits string) ([]byte, error) {
	if len(digits) != fascnDigitLen || !isDigits(digits) {
		return nil, errors.New("cacid: a FASC-N is 32 digits")
	}
	chars := make([]byte, 0, fascnChars)
	d := 0
	for _, field := range fascnLayout {
		if field < 0 {
			chars = append(chars, byte(-field))
			continue
		}
		for range field {
			chars = append(chars, digits[d]-'0')
			d++
		}
	}
	var lrc byte
	for _, c := range chars {
		lrc ^= c
	}
	chars = append(chars, lrc)
	out := make([]byte, fascnLen)
	for i, c := range chars {
		v := c
		if ones(v)%2 == 0 {
			v |= 0x10
		}
		for bit := 0; bit < 5; bit++ {
			if v&(1<<bit) != 0 {
				pos := i*5 + bit
				out[pos/8] |= 0x80 >> (pos % 8)
			}
		}
	}
	return out, nil
}

func ones(v byte) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}
