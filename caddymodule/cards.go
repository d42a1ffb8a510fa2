package caddymodule

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/assertion"
	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
)

// The identity facts handed to the backend, in a fixed order so a card's
// values and a site's header names can be plain arrays.
const (
	fieldUser = iota
	fieldEDIPI
	fieldGivenName
	fieldFamilyName
	fieldEmail
	fieldAffiliation
	fieldCertSHA256
	fieldAuthMethod
	numFields
)

// fieldKeys are the Caddyfile/JSON names of the fields (used by the
// "header" option) and the suffixes of the {http.auth.user.*} placeholders.
var fieldKeys = [numFields]string{"user", "edipi", "given_name", "family_name", "email", "affiliation", "cert_sha256", "auth_method"}

// placeholderKeys are the full placeholder names, built once.
var placeholderKeys = func() (k [numFields]string) {
	for i := range k {
		k[i] = "http.auth.user." + fieldKeys[i]
	}
	k[fieldUser] = "http.auth.user.id" // caddyauth's name for the user ID
	return k
}()

// cardEntry is what the gateway knows about one card: the account it maps
// to and the identity values derived from both. Entries are immutable once
// built; a refresh builds a new one.
type cardEntry struct {
	// account is the registered account for the card, nil if none.
	account *store.Account
	// byEDIPI is an account holding the card's DoD ID when the card itself
	// is not registered and could not be linked (link_by_edipi off, or the
	// card's registration cleared), nil otherwise.
	byEDIPI *store.Account

	// verdict is the revocation status of the card's chain; the entry
	// expires with it.
	verdict revocation.ChainVerdict

	epoch uint64
	// gen is the change generation (changes announced by other nodes)
	// when the entry's build began.
	gen uint64
	// edipi is the card's DoD ID, so that an account created for it
	// elsewhere reaches an entry that found no account.
	edipi   string
	expires time.Time
	// dropped is set when another node announces a change to the
	// account or card: handlers holding the entry rebuild it.
	dropped atomic.Bool
	// granted is set by the first request admitted with this entry, which
	// audits access.granted.
	granted atomic.Bool

	values [numFields]string
	// boxed holds values already converted to interfaces, so setting the
	// {http.auth.user.*} placeholders on the hot path does not allocate.
	boxed  [numFields]any
	claims assertion.Claims
}

func (e *cardEntry) stale(now time.Time, epoch uint64) bool {
	return e.epoch != epoch || now.After(e.expires) || e.dropped.Load()
}

// card returns the current mapping for the card id, from the cache when it
// is fresh, else from the database. Concurrent misses for one card share a
// single database round trip.
func (a *App) card(ctx context.Context, r *http.Request, id *cacid.Identity, cert *cardCert) (*cardEntry, error) {
	return a.cachedEntry(id.FingerprintHex, func(epoch uint64, now time.Time) (*cardEntry, error) {
		// Shared by every request waiting on this card, so it must not
		// die with the first one's client; resolve has its own timeout.
		return a.resolve(context.WithoutCancel(ctx), r, id, cert, epoch)
	})
}

// cachedEntry returns the entry for key from the cache when it is fresh,
// else builds it once for all the requests that want it at the same time.
// A request that joined a build begun before a change it already knows of
// (a local change bumps the epoch, one announced by another node the
// change generation) is not served that build's pre-change entry: it asks
// once more.
func (a *App) cachedEntry(key string, build func(epoch uint64, now time.Time) (*cardEntry, error)) (*cardEntry, error) {
	for try := 0; ; try++ {
		epoch, gen := a.epoch.Load(), a.changeGen.Load()
		now := time.Now()
		if e, ok := a.cards.Get(key); ok && !e.stale(now, epoch) {
			a.metrics.cacheHit.Inc()
			return e, nil
		}
		v, err, _ := a.lookups.Do(key, func() (any, error) {
			a.metrics.cacheMiss.Inc()
			gen := a.changeGen.Load()
			e, err := build(epoch, now)
			if err != nil {
				return nil, err
			}
			e.gen = gen
			a.keep(key, e, gen)
			return e, nil
		})
		if err != nil {
			return nil, err
		}
		e := v.(*cardEntry)
		if try == 0 && (e.epoch != epoch || e.gen != gen) {
			continue
		}
		return e, nil
	}
}

// keep caches a freshly built entry, unless a change announced since gen
// (when the build began) may have made it stale: then it serves the
// request that built it and is rebuilt next time.
func (a *App) keep(key string, e *cardEntry, gen uint64) {
	// The entry it replaces may still be held by sites; replacing it does
	// not count as an eviction, so mark it here: only entries in the cache
	// hear of changes announced by other nodes.
	if old, ok := a.cards.Peek(key); ok && old != e {
		old.dropped.Store(true)
	}
	a.cards.Add(key, e)
	if a.changeGen.Load() != gen {
		e.dropped.Store(true)
		a.cards.Remove(key)
	}
}

// cardCert is the certificate of a card: what the store records when it
// is linked, and what a revocation check needs.
type cardCert struct {
	subject, issuer, serial string
	notAfter                time.Time
	leaf, issuerCert        *x509.Certificate
	// chain is the verified chain, card first, trust anchor last.
	chain []*x509.Certificate
}

// chainOrLeaf is the chain to check for revocation: the verified one, or
// the card and its issuer when only those are known.
func (c *cardCert) chainOrLeaf() []*x509.Certificate {
	// A verified chain of the card alone (the card itself in the TLS
	// trust pool) names no issuer; the site's own pool may have found one.
	if len(c.chain) > 1 {
		return c.chain
	}
	if c.issuerCert != nil {
		return []*x509.Certificate{c.leaf, c.issuerCert}
	}
	return []*x509.Certificate{c.leaf}
}

// lastUseResolution is how stale a card's "last used" time may get before a
// cache refill writes it again; it bounds write load on the database.
const lastUseResolution = 5 * time.Minute

func (a *App) resolve(ctx context.Context, r *http.Request, id *cacid.Identity, cert *cardCert, epoch uint64) (*cardEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := time.Now()
	e := &cardEntry{epoch: epoch, expires: now.Add(time.Duration(a.CacheTTL)), edipi: id.EDIPI}

	// Revocation first: a revoked card learns nothing about accounts.
	e.verdict = a.revocation.CheckChain(ctx, cert.chainOrLeaf())
	if until := e.verdict.ValidUntil; !until.IsZero() && until.Before(e.expires) {
		// (With revocation off the verdict has no expiry: zero.)
		e.expires = until
	}
	if e.verdict.Status != revocation.StatusGood {
		return e, nil
	}

	acct, err := a.store.AccountByFingerprint(ctx, id.FingerprintHex)
	switch {
	case err == nil:
		e.account = acct
	case errors.Is(err, store.ErrNotFound):
		if e.account, e.byEDIPI, err = a.linkByEDIPI(ctx, r, id, cert); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("looking up card: %w", err)
	}

	if e.account != nil {
		if c := findCard(e.account, id.FingerprintHex); c != nil && now.Sub(c.LastUsedAt) > lastUseResolution {
			if err := a.store.TouchCard(ctx, id.FingerprintHex, now); err != nil {
				a.logger.Warn("recording card use", zap.Error(err))
			}
		}
		e.fill(id)
	}
	return e, nil
}

// linkByEDIPI handles a card that is not registered: when an account holds
// its DoD ID and link_by_edipi is on, the card is linked to it. A disabled
// account is returned unlinked, so the card is refused as disabled.
func (a *App) linkByEDIPI(ctx context.Context, r *http.Request, id *cacid.Identity, cert *cardCert) (linked, byEDIPI *store.Account, err error) {
	acct, err := a.store.AccountByEDIPI(ctx, id.EDIPI)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("looking up DoD ID: %w", err)
	}
	if acct.Status == store.StatusDisabled {
		// Never link a card to a disabled account, but answer for it: the
		// holder must hear "your account is disabled", not "get an account".
		return acct, nil, nil
	}
	if !*a.LinkByEDIPI {
		return nil, acct, nil
	}
	err = a.store.AutoLinkCard(ctx, acct.ID, store.Card{
		Fingerprint: id.FingerprintHex,
		Subject:     cert.subject,
		Issuer:      cert.issuer,
		Serial:      cert.serial,
		NotAfter:    cert.notAfter,
	})
	switch {
	case err == nil:
		a.audit.request(r, "card.linked", outcomeSuccess, append(cardFields(id),
			zap.String("username", acct.Username), zap.String("via", "link_by_edipi"))...)
	case errors.Is(err, store.ErrCardTaken):
		// another request or node linked it first; fall through to re-read
	case errors.Is(err, store.ErrCardCleared):
		// its registration was cleared on purpose: only an explicit link
		// (admin, or the holder with their password) may bring it back
		return nil, acct, nil
	default:
		return nil, nil, fmt.Errorf("linking card: %w", err)
	}
	acct, err = a.store.AccountByFingerprint(ctx, id.FingerprintHex)
	if err != nil {
		return nil, nil, fmt.Errorf("re-reading linked card: %w", err)
	}
	return acct, nil, nil
}

// Ways of signing in, as the backend sees them.
const (
	authCAC      = "cac"
	authPassword = "password"
)

// fill derives the backend-facing identity values from the account (the
// registered facts) and the card; id is nil for a password sign-in.
func (e *cardEntry) fill(id *cacid.Identity) {
	acct := e.account
	var cardGiven, cardFamily, cardEmail, cardAffiliation, fingerprint string
	method := authPassword
	if id != nil {
		cardGiven, cardFamily = displayName(id.GivenName), displayName(id.FamilyName)
		cardEmail, cardAffiliation, fingerprint = id.Email, id.Affiliation, id.FingerprintHex
		method = authCAC
	}
	e.values = [numFields]string{
		fieldUser:        acct.Username,
		fieldEDIPI:       acct.EDIPI,
		fieldGivenName:   firstNonEmpty(acct.GivenName, cardGiven),
		fieldFamilyName:  firstNonEmpty(acct.FamilyName, cardFamily),
		fieldEmail:       firstNonEmpty(acct.Email, cardEmail),
		fieldAffiliation: firstNonEmpty(acct.Affiliation, cardAffiliation),
		fieldCertSHA256:  fingerprint,
		fieldAuthMethod:  method,
	}
	for i, v := range e.values {
		e.boxed[i] = v
	}
	e.claims = assertion.Claims{
		Username:    e.values[fieldUser],
		EDIPI:       e.values[fieldEDIPI],
		GivenName:   e.values[fieldGivenName],
		FamilyName:  e.values[fieldFamilyName],
		Email:       e.values[fieldEmail],
		Affiliation: e.values[fieldAffiliation],
		CertSHA256:  e.values[fieldCertSHA256],
		AuthMethod:  method,
	}
}

// userEntry is card for a password session: the account by username,
// cached under a key no certificate fingerprint can take.
func (a *App) userEntry(ctx context.Context, username string) (*cardEntry, error) {
	return a.cachedEntry("user:"+username, func(epoch uint64, now time.Time) (*cardEntry, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		e := &cardEntry{epoch: epoch, expires: now.Add(time.Duration(a.CacheTTL)), verdict: revocation.ChainVerdict{Verdict: revocation.Verdict{Status: revocation.StatusGood, Source: "password"}}}
		acct, err := a.store.AccountByUsername(ctx, username)
		switch {
		case err == nil:
			e.account = acct
			e.fill(nil)
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("looking up account: %w", err)
		}
		return e, nil
	})
}

func findCard(acct *store.Account, fingerprint string) *store.Card {
	for i := range acct.Cards {
		if acct.Cards[i].Fingerprint == fingerprint {
			return &acct.Cards[i]
		}
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// displayName turns a card's upper-case name part ("O'BRIEN-SMITH") into
// the form people write it ("O'Brien-Smith").
func displayName(s string) string {
	var b strings.Builder
	upper := true
	for _, r := range s {
		if upper {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		upper = r == ' ' || r == '-' || r == '\''
	}
	return b.String()
}

// holderName is the card holder's name for pages: "John Q. Doe Jr.".
func holderName(id *cacid.Identity) string {
	parts := []string{displayName(id.GivenName)}
	if id.MiddleName != "" {
		parts = append(parts, string([]rune(id.MiddleName)[0])+".")
	}
	parts = append(parts, displayName(id.FamilyName))
	if id.Suffix != "" {
		parts = append(parts, displayName(id.Suffix)+".")
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// firstGrant reports true to the first admitted request of the entry, and
// to no other: a load on the hot path, a compare-and-swap once.
func (e *cardEntry) firstGrant() bool {
	return !e.granted.Load() && e.granted.CompareAndSwap(false, true)
}
