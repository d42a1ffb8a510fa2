package selfservice

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sealer protects the multi-step enrollment's state between pages. The
// state travels with the browser (a hidden form field or cookie), sealed
// with AES-256-GCM under a key every gateway node shares (kept in the
// account database), so a person whose next request lands on another node
// continues where they were — and can neither read nor alter it. The state
// is bound to the card's fingerprint and expires.
//
// It must never carry an SSN, FIN, date of birth, password or answer in
// clear: only what was verified (roster records) and what the person typed
// into non-secret fields, plus hashes where a later step needs them.
type Sealer struct {
	aead cipher.AEAD
	// tagKey keys tag, apart from the sealing key.
	tagKey []byte
}

// MinSealerKeySize is the length of the master key NewSealer needs.
const MinSealerKeySize = 32

// NewSealer derives the sealing key from master (shared by all nodes).
func NewSealer(master []byte) (*Sealer, error) {
	if len(master) < MinSealerKeySize {
		return nil, fmt.Errorf("enrollment state key must be at least %d bytes", MinSealerKeySize)
	}
	block, err := aes.NewCipher(deriveKey(master, "cacgate enrollment state v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, tagKey: deriveKey(master, "cacgate enrollment throttle tag v1")}, nil
}

func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// tag returns a keyed digest of text (HMAC-SHA-256, 128 bits, URL-safe
// base64), the same on every node: a stable name for something typed, such
// as a username that may be a password typed into the wrong field, that
// can be stored without storing the text or anything a dictionary attack
// could be run against.
func (s *Sealer) tag(text string) string {
	m := hmac.New(sha256.New, s.tagKey)
	m.Write([]byte(text))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// ErrStateInvalid means a sealed state was forged, altered, made for
// another card, or expired: the flow starts over.
var ErrStateInvalid = errors.New("enrollment state is invalid or expired")

// envelope is what is sealed: the payload plus its binding.
type envelope struct {
	Card    string          `json:"c"` // card fingerprint
	Expires int64           `json:"e"` // unix seconds
	Payload json.RawMessage `json:"p"`
}

// maxSealed bounds what Open accepts, before any decryption work.
const maxSealed = 16 << 10

// Seal returns v, bound to the card and valid for ttl, as URL-safe text.
func (s *Sealer) Seal(cardFingerprint string, v any, now time.Time, ttl time.Duration) (string, error) {
	return s.SealUntil(cardFingerprint, v, now.Add(ttl))
}

// SealUntil is Seal for a state valid until expires (whole seconds): a
// state sealed again keeps the deadline it was first given.
func (s *Sealer) SealUntil(cardFingerprint string, v any, expires time.Time) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(envelope{Card: cardFingerprint, Expires: expires.Unix(), Payload: payload})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(cardFingerprint))
	out := base64.RawURLEncoding.EncodeToString(sealed)
	if len(out) > maxSealed {
		return "", errors.New("enrollment state is too large")
	}
	return out, nil
}

// Open checks and decrypts a sealed state for this card into v.
func (s *Sealer) Open(sealed, cardFingerprint string, v any, now time.Time) error {
	if sealed == "" || len(sealed) > maxSealed {
		return ErrStateInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return ErrStateInvalid
	}
	nonce, box := raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, box, []byte(cardFingerprint))
	if err != nil {
		return ErrStateInvalid
	}
	var env envelope
	if err := json.Unmarshal(plain, &env); err != nil || env.Card != cardFingerprint || now.Unix() >= env.Expires {
		return ErrStateInvalid
	}
	if err := json.Unmarshal(env.Payload, v); err != nil {
		return ErrStateInvalid
	}
	return nil
}
