package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// SecretStore is where the keys every node shares live: the store's
// secrets table, the same mechanism as the consent and assertion keys.
type SecretStore interface {
	EnsureSecret(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error)
}

// Signing keys rotate by the calendar: period n (Unix time divided by the
// rotation period) signs with the key stored under "oidc-signing-key/n",
// which the first node to need it generates and every other node then
// reads. The key set published at any time holds the previous, current
// and next periods' keys: a relying party that fetched the set before a
// rotation already knows the key that signs after it, and tokens signed
// before it stay verifiable for a whole period after. Nodes agree on the
// period by their clocks; one that is a little off signs with a key the
// others publish anyway.
const signingKeyPrefix = "oidc-signing-key/"

// DefaultKeyRotation is the default rotation period.
const DefaultKeyRotation = 30 * 24 * time.Hour

// rsaBits: RS256 is the algorithm every relying party implements.
const rsaBits = 2048

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// keyring holds the parsed keys of the periods in use.
type keyring struct {
	secrets SecretStore
	period  time.Duration
	now     func() time.Time

	mu   sync.Mutex
	keys map[int64]*signingKey
}

func newKeyring(secrets SecretStore, period time.Duration, now func() time.Time) *keyring {
	return &keyring{secrets: secrets, period: period, now: now, keys: map[int64]*signingKey{}}
}

func (kr *keyring) current() int64 { return kr.now().UnixNano() / int64(kr.period) }

// key returns period n's key, generating and storing it if no node has.
func (kr *keyring) key(ctx context.Context, n int64) (*signingKey, error) {
	kr.mu.Lock()
	k := kr.keys[n]
	kr.mu.Unlock()
	if k != nil {
		return k, nil
	}
	der, err := kr.secrets.EnsureSecret(ctx, signingKeyPrefix+strconv.FormatInt(n, 10), func() ([]byte, error) {
		priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	})
	if err != nil {
		return nil, fmt.Errorf("oidc signing key: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("oidc signing key %d: %w", n, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("oidc signing key %d is not an RSA key", n)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pub)
	k = &signingKey{id: hex.EncodeToString(sum[:12]), key: priv}
	kr.mu.Lock()
	kr.keys[n] = k
	// Forget periods no longer published.
	for p := range kr.keys {
		if p < n-2 || p > n+2 {
			delete(kr.keys, p)
		}
	}
	kr.mu.Unlock()
	return k, nil
}

// signing is the current period's key.
func (kr *keyring) signing(ctx context.Context) (*signingKey, error) {
	return kr.key(ctx, kr.current())
}

// published are the previous, current and next periods' keys.
func (kr *keyring) published(ctx context.Context) ([]op.Key, error) {
	n := kr.current()
	out := make([]op.Key, 0, 3)
	for _, p := range []int64{n - 1, n, n + 1} {
		k, err := kr.key(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, publicKey{k})
	}
	return out, nil
}
