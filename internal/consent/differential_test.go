package consent

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The consent token check is the package's own since it stopped going
// through golang-jwt. FuzzVerifyAgainstGolangJWT holds it to what
// golang-jwt, configured as the package had it, decided: every token is
// signed with the real key (an attacker without it makes nothing but
// refusals, which the bad-signature seeds check), so that the fuzzer
// explores what the claims and the encoding may look like.
//
// Where the two disagree, the difference must be one of these, each
// needing the key (so only a holder of the key, who can mint any token
// anyway, can make one; the package's Issue makes none of them):
//
//   - the package refuses what golang-jwt took: any header other than the
//     exact {"alg":"HS256","typ":"JWT"} it writes; non-canonical base64url
//     (set trailing bits; golang-jwt decoded leniently); claims golang-jwt
//     accepted in other forms (times as fractions, exponents or strings,
//     the audience as a single string, text after the JSON object); an
//     issue time of 0 (the epoch), which no clock issues.
//   - golang-jwt refused what the package takes: an issue time up to a
//     minute ahead of the clock (another node's, a little ahead; see
//     issueSkew), which golang-jwt refused as used before issued; an audience list with
//     null entries (golang-jwt refused any non-string entry).
//   - both take it but read other times: a time beyond 2^53 seconds,
//     which golang-jwt read through a float64, and so rounded. (Beyond
//     about 2^63 - 2^36 seconds, time.Time's own range, both refuse.)
//
// A token golang-jwt itself would have written for the claims it read
// (the form of every token issued before) must verify, with the same
// claims.

// fuzzNow is the fuzz test's clock: the seeds' times are around it.
var fuzzNow = time.Unix(1_800_000_000, 0)

// oldVerify is Verify as it was through golang-jwt (before the package
// checked tokens itself), for the differential test.
func oldVerify(key []byte, token string, now time.Time) (Claims, error) {
	var rc jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &rc,
		func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithAudience(tokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return Claims{}, err
	}
	if rc.Subject == "" {
		return Claims{}, errString("consent token has no subject")
	}
	if rc.IssuedAt == nil {
		return Claims{}, errString("consent token has no issue time")
	}
	return Claims{Fingerprint: rc.Subject, Issued: rc.IssuedAt.Time, Expires: rc.ExpiresAt.Time}, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// Encoding variations a fuzzed token's segments take (bits of its form).
const (
	formSignatureBad     = 1 << iota // a signature bit flipped: no key
	formSignatureLoose               // signature with trailing bits set
	formSignaturePadded              // signature with '=' padding
	formPayloadLoose                 // payload with trailing bits set
	formHeaderLoose                  // header with trailing bits set
	formExtraSegment                 // a fourth segment
	formSignatureNewline             // a newline inside the signature
)

// looseBase64 is enc(b) with the unused low bits of its last character
// set, when it has any: what a strict decoder refuses and a lenient one
// reads as enc(b).
func looseBase64(b []byte) string {
	s := base64.RawURLEncoding.EncodeToString(b)
	if len(b)%3 == 0 {
		return s
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	unused := 0b1111 // one byte in the last group: 4 unused bits
	if len(b)%3 == 2 {
		unused = 0b11
	}
	return s[:len(s)-1] + string(alphabet[last|unused])
}

// fuzzToken signs header and payload with the key as form says.
func (t *Tokens) fuzzToken(header, payload []byte, form uint8) string {
	h := base64.RawURLEncoding.EncodeToString(header)
	if form&formHeaderLoose != 0 {
		h = looseBase64(header)
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	if form&formPayloadLoose != 0 {
		p = looseBase64(payload)
	}
	signed := h + "." + p
	mac := t.consentMAC(signed)
	if form&formSignatureBad != 0 {
		mac[len(mac)/2] ^= 0x10
	}
	sig := base64.RawURLEncoding.EncodeToString(mac)
	switch {
	case form&formSignatureLoose != 0:
		sig = looseBase64(mac)
	case form&formSignaturePadded != 0:
		sig = base64.URLEncoding.EncodeToString(mac)
	case form&formSignatureNewline != 0:
		sig = sig[:10] + "\n" + sig[10:]
	}
	tok := signed + "." + sig
	if form&formExtraSegment != 0 {
		tok += "." + sig
	}
	return tok
}

func FuzzVerifyAgainstGolangJWT(f *testing.F) {
	good := `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000,"jti":"abc"}`
	hdr := `{"alg":"HS256","typ":"JWT"}`
	for _, seed := range []struct {
		header, payload string
		form            uint8
	}{
		{hdr, good, 0},
		{hdr, good, formSignatureBad},
		{hdr, good, formSignatureLoose},
		{hdr, good, formSignaturePadded},
		{hdr, good, formPayloadLoose},
		{hdr, good, formHeaderLoose},
		{hdr, good, formExtraSegment},
		{hdr, good, formSignatureNewline},
		{`{"alg":"none","typ":"JWT"}`, good, 0},
		{`{"alg":"HS512","typ":"JWT"}`, good, 0},
		{`{"alg":"HS256"}`, good, 0},
		{`{"typ":"JWT","alg":"HS256"}`, good, 0},
		{`{"alg":"HS256","typ":"JWT","kid":"x"}`, good, 0},
		{`{"alg":"HS256","alg":"none","typ":"JWT"}`, good, 0},
		{`{"alg":"HS256","typ":"JWT"} `, good, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":"cacgate-consent","exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":[null,"cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["x","cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600.5,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":"1800003600","iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1.8000036e9,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":9223372036854775807,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":0}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1800000001}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800000000,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000,"nbf":1800000001}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000,"nbf":0}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","sub":"` + fpB + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","SUB":"` + fpB + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":7,"aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":null,"aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}x`, 0},
		{hdr, `{"iss":"cacgate","sub":"` + fpA + `","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}{}`, 0},
		{hdr, `{"iss":"cacgate","sub":"a\u0000b\ud800","aud":["cacgate-consent"],"exp":1800003600,"iat":1799999000}`, 0},
		{hdr, `null`, 0},
		{hdr, `[]`, 0},
		{hdr, ``, 0},
	} {
		f.Add(seed.header, seed.payload, seed.form)
	}
	tok := newTokens(f)
	f.Fuzz(func(t *testing.T, header, payload string, form uint8) {
		token := tok.fuzzToken([]byte(header), []byte(payload), form)
		got, err := tok.Verify(token, fuzzNow)
		want, oldErr := oldVerify(tok.consentKey, token, fuzzNow)
		if form&formSignatureBad != 0 && (err == nil || oldErr == nil) {
			t.Fatalf("a token with a bad signature verified: package %v, golang-jwt %v", err, oldErr)
		}
		switch {
		case err == nil && oldErr == nil:
			if !sameClaims(got, want) && !payloadBeyondGolangJWT(payload) {
				t.Fatalf("claims differ: package %+v, golang-jwt %+v\ntoken %q", got, want, token)
			}
		case err == nil:
			if !payloadBeyondGolangJWT(payload) && !issuedWithinSkew(got, oldErr) {
				t.Fatalf("the package verified what golang-jwt refused (%v): %q\npayload %s", oldErr, token, payload)
			}
		case oldErr == nil:
			if canonical := golangJWTToken(t, tok, want, payload); canonical == token && !want.Issued.Equal(time.Unix(0, 0)) {
				t.Fatalf("refused a token as golang-jwt wrote it (%v): %q", err, token)
			}
		}
	})
}

// issuedWithinSkew reports whether golang-jwt refused c only for an issue
// time ahead of the clock, by no more than the skew the package allows.
func issuedWithinSkew(c Claims, oldErr error) bool {
	return errors.Is(oldErr, jwt.ErrTokenUsedBeforeIssued) && c.Issued.After(fuzzNow) && !c.Issued.After(fuzzNow.Add(issueSkew))
}

func sameClaims(a, b Claims) bool {
	return a.Fingerprint == b.Fingerprint && a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires)
}

// payloadBeyondGolangJWT reports whether payload is one of the forms
// golang-jwt refused and the package takes: an audience list with a null
// entry, or a time golang-jwt read through a float64 and changed.
func payloadBeyondGolangJWT(payload string) bool {
	var raw struct {
		Aud []any       `json:"aud"`
		Exp json.Number `json:"exp"`
		Iat json.Number `json:"iat"`
		Nbf json.Number `json:"nbf"`
	}
	if err := json.Unmarshal([]byte(payload), &raw); err != nil {
		return false
	}
	for _, a := range raw.Aud {
		if a == nil {
			return true
		}
	}
	for _, n := range []json.Number{raw.Exp, raw.Iat, raw.Nbf} {
		if i, err := n.Int64(); err == nil && (i > 1<<53 || i < -(1<<53)) {
			return true
		}
	}
	return false
}

// golangJWTToken is the token golang-jwt writes for the claims it read
// from payload (its iss, aud and jti as they are), the form of every
// consent token issued before the package wrote them itself.
func golangJWTToken(t *testing.T, tok *Tokens, c Claims, payload string) string {
	var rc jwt.RegisteredClaims
	if err := json.Unmarshal([]byte(payload), &rc); err != nil {
		return "" // golang-jwt's decoder read past what json.Unmarshal refuses: not its own form
	}
	rc.Subject, rc.IssuedAt, rc.ExpiresAt = c.Fingerprint, jwt.NewNumericDate(c.Issued), jwt.NewNumericDate(c.Expires)
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, rc).SignedString(tok.consentKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerifyDiffersFromGolangJWTOnlyAsExplained pins the differences the
// fuzz test allows to examples, each seen to happen: so the fuzz test's
// exceptions are the ones that exist, and it compares verdicts that can
// differ.
func TestVerifyDiffersFromGolangJWTOnlyAsExplained(t *testing.T) {
	tok := newTokens(t)
	hdr := []byte(`{"alg":"HS256","typ":"JWT"}`)
	claims := func(aud, exp string) []byte {
		return []byte(`{"iss":"cacgate","sub":"` + fpA + `","aud":` + aud + `,"exp":` + exp + `,"iat":1799999000}`)
	}
	for _, c := range []struct {
		name          string
		token         string
		package_, jwt bool // verified by each
	}{
		{"as issued", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "1800003600"), 0), true, true},
		{"bad signature", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "1800003600"), formSignatureBad), false, false},
		{"signature's trailing bits", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "1800003600"), formSignatureLoose), false, true},
		{"payload's trailing bits", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "18000036000"), formPayloadLoose), false, true},
		{"header keys reversed", tok.fuzzToken([]byte(`{"typ":"JWT","alg":"HS256"}`), claims(`["cacgate-consent"]`, "1800003600"), 0), false, true},
		{"audience a string", tok.fuzzToken(hdr, claims(`"cacgate-consent"`, "1800003600"), 0), false, true},
		{"expiry a fraction", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "1800003600.5"), 0), false, true},
		{"audience with null", tok.fuzzToken(hdr, claims(`[null,"cacgate-consent"]`, "1800003600"), 0), true, false},
		{"issued 30 s ahead (another node's clock)", tok.fuzzToken(hdr, []byte(`{"iss":"cacgate","sub":"`+fpA+`","aud":["cacgate-consent"],"exp":1800003600,"iat":1800000030}`), 0), true, false},
		{"issued 2 min ahead", tok.fuzzToken(hdr, []byte(`{"iss":"cacgate","sub":"`+fpA+`","aud":["cacgate-consent"],"exp":1800003600,"iat":1800000120}`), 0), false, false},
		{"expiry past time.Time's range", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "9223372036854775807"), 0), false, false},
		{"padded signature", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "1800003600"), formSignaturePadded), false, false},
		{"four segments", tok.fuzzToken(hdr, claims(`["cacgate-consent"]`, "1800003600"), formExtraSegment), false, false},
		{"alg none", tok.fuzzToken([]byte(`{"alg":"none","typ":"JWT"}`), claims(`["cacgate-consent"]`, "1800003600"), 0), false, false},
	} {
		_, err := tok.Verify(c.token, fuzzNow)
		_, oldErr := oldVerify(tok.consentKey, c.token, fuzzNow)
		if (err == nil) != c.package_ || (oldErr == nil) != c.jwt {
			t.Errorf("%s: package %v, golang-jwt %v; want verified %v, %v", c.name, err, oldErr, c.package_, c.jwt)
		}
	}
	// Past 2^53 seconds golang-jwt rounded the time (through a float64).
	beyond := claims(`["cacgate-consent"]`, "9007199254740993")
	got, err := tok.Verify(tok.fuzzToken(hdr, beyond, 0), fuzzNow)
	want, oldErr := oldVerify(tok.consentKey, tok.fuzzToken(hdr, beyond, 0), fuzzNow)
	if err != nil || oldErr != nil || got.Expires.Unix() != 9007199254740993 || want.Expires.Unix() != 9007199254740992 || !payloadBeyondGolangJWT(string(beyond)) {
		t.Errorf("an expiry past 2^53: package %v %v, golang-jwt %v %v", got.Expires.Unix(), err, want.Expires.Unix(), oldErr)
	}
}
