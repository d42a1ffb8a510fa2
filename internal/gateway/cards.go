package gateway

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
	"golang.org/x/sync/singleflight"

	"github.com/cacgate/cacgate/assertion"
	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
)

// The identity facts handed to the backend, in a fixed order so a card's
// values and a site's header names can be plain arrays.
const (
	FieldUser = iota
	FieldEDIPI
	FieldGivenName
	FieldFamilyName
	FieldEmail
	FieldAffiliation
	FieldCertSHA256
	FieldAuthMethod
	// FieldCredential is the kind of credential that signed in: cac, piv,
	// piv-i or eca (cacid.Kind); empty for a password sign-in.
	FieldCredential
	FieldAccountType
	NumFields
)

// FieldKeys are the Caddyfile/JSON names of the fields (used by the
// "header" option) and the suffixes of the {http.auth.user.*} placeholders.
var FieldKeys = [NumFields]string{"user", "edipi", "given_name", "family_name", "email", "affiliation", "cert_sha256", "auth_method", "credential", "account_type"}

// PlaceholderKeys are the full placeholder names, built once.
var PlaceholderKeys = func() (k [NumFields]string) {
	for i := range k {
		k[i] = "http.auth.user." + FieldKeys[i]
	}
	k[FieldUser] = "http.auth.user.id" // caddyauth's name for the user ID
	return k
}()

// Entry is what the gateway knows about one card (or, for a password
// sign-in, one username): the account it maps
// to and the identity values derived from both. Entries are immutable once
// built; a refresh builds a new one.
type Entry struct {
	// What the request path reads comes first, so that with many cards
	// taking turns an admitted request touches as few of the entry's
	// cache lines as it can.

	epoch   uint64
	expires time.Time
	// dropped is set when another node announces a change to the
	// account or card: handlers holding the entry rebuild it.
	dropped atomic.Bool
	// granted is set by the first request admitted with this entry, which
	// audits access.granted.
	granted atomic.Bool
	// active is whether Account is an active account, so that admitting
	// a request needs no read of the account.
	active bool

	// Verdict is the revocation status of the card's chain; the entry
	// expires with it.
	Verdict revocation.ChainVerdict

	Values [NumFields]string
	// Boxed holds values already converted to interfaces, so setting the
	// {http.auth.user.*} placeholders on the hot path does not allocate.
	Boxed [NumFields]any

	// Account is the registered account for the card, nil if none.
	Account *store.Account
	// ByEDIPI is an account holding the card's DoD ID when the card itself
	// is not registered and could not be linked (link_by_edipi off, or the
	// card's registration cleared), nil otherwise.
	ByEDIPI *store.Account

	// checked is when the entry's build began (Unix nanoseconds): what it
	// holds was true then.
	checked int64
	// gen is the change generation (changes announced by other nodes)
	// when the entry's build began.
	gen uint64
	// edipi is the card's DoD ID (kind and key: a non-DoD credential's),
	// so that an account created for it elsewhere reaches an entry that
	// found no account.
	edipi     string
	kind, key string
}

// errRecheckTimeout: a re-check did not finish within recheckWait (it
// goes on, for the requests after).
var errRecheckTimeout = errors.New("gateway: the database did not answer the re-check in time")

// Stale reports whether the entry must be rebuilt before use.
func (e *Entry) Stale(now time.Time, epoch uint64) bool {
	return e.epoch != epoch || now.After(e.expires) || e.dropped.Load()
}

// feedDownRecheck is how long, while the change feed is down, an entry is
// trusted after it was checked against the database (and how long a failed
// re-check holds off the next): changes made on other nodes then reach this
// one within about a second, as they do through the feed.
const feedDownRecheck = time.Second

// distrusted reports whether e must be checked against the database again
// before use although it has not expired: the change feed is down (no
// other node's change would be heard), e was checked over feedDownRecheck
// ago, and no re-check failed in the last feedDownRecheck (the database is
// down too: asking it for every request would only add its timeouts).
//
// The hot path tests feedDownSince itself first (one atomic load, inlined)
// and calls this only during an outage.
func (c *Core) distrusted(e *Entry, now time.Time) bool {
	if c.feedDownSince.Load() == 0 {
		return false
	}
	n := now.UnixNano()
	return n-e.checked > int64(c.recheckAfter) && n-c.storeFailedAt.Load() > int64(c.recheckAfter)
}

// Card returns the current mapping for the card id, from the cache when it
// is fresh, else from the database. Concurrent misses for one card share a
// single database round trip.
func (c *Core) Card(ctx context.Context, r *http.Request, id *cacid.Identity, cert *CardChain) (*Entry, error) {
	return c.cachedEntry(id.FingerprintHex, func(epoch uint64, now time.Time) (*Entry, error) {
		// Shared by every request waiting on this card, so it must not
		// die with the first one's client; resolve has its own timeout.
		return c.resolve(context.WithoutCancel(ctx), r, id, cert, epoch)
	})
}

// cachedEntry returns the entry for key from the cache when it is fresh,
// else builds it once for all the requests that want it at the same time.
// A request that joined a build begun before a change it already knows of
// (a local change bumps the epoch, one announced by another node the
// change generation) is not served that build's pre-change entry: it asks
// once more.
//
// While the change feed is down, an entry checked more than a second ago is
// checked again; if the database cannot answer, the entry is used as long
// as it has not expired (see distrusted).
func (c *Core) cachedEntry(key string, build func(epoch uint64, now time.Time) (*Entry, error)) (*Entry, error) {
	for try := 0; ; try++ {
		epoch, gen := c.epoch.Load(), c.changeGen.Load()
		now := time.Now()
		var unexpired *Entry
		if e, ok := c.cards.Get(key); ok && !e.Stale(now, epoch) {
			if c.feedDownSince.Load() == 0 || !c.distrusted(e, now) {
				c.cfg.Metrics.CacheHit.Inc()
				return e, nil
			}
			unexpired = e
		}
		if c.beforeLookup != nil {
			c.beforeLookup()
		}
		lookup := func() (any, error) {
			c.cfg.Metrics.CacheMiss.Inc()
			gen := c.changeGen.Load()
			e, err := build(epoch, now)
			if err != nil {
				return nil, err
			}
			e.gen, e.checked = gen, now.UnixNano()
			c.keep(key, e, gen)
			return e, nil
		}
		var res singleflight.Result
		if unexpired == nil {
			// On the request's own goroutine: a goroutine per miss (as
			// DoChan starts) costs its start and the growth of a fresh
			// stack into the database driver, a tenth of a miss.
			res.Val, res.Err, _ = c.lookups.Do(key, lookup)
		} else {
			// A re-check waits for the database no longer than
			// recheckWait: one that does not answer (a partition) must
			// not hold every cached card's requests for its timeout.
			flight := c.lookups.DoChan(key, lookup)
			timer := time.NewTimer(c.recheckWait)
			select {
			case res = <-flight:
			case <-timer.C:
				res.Err = errRecheckTimeout
			}
			timer.Stop()
		}
		v, err := res.Val, res.Err
		if err != nil {
			if unexpired != nil {
				// The database is as unreachable as the feed: no node can
				// change the account through it meanwhile, so the entry,
				// within cache_ttl, is as good as it was (the bound is the
				// same as when notices cannot flow at all).
				c.storeFailedAt.Store(time.Now().UnixNano())
				c.cfg.Metrics.CacheKept.Inc()
				c.cfg.Logger.Debug("re-check during change feed outage failed; using the cached entry", zap.Error(err))
				return unexpired, nil
			}
			return nil, err
		}
		e := v.(*Entry)
		if try == 0 && (e.epoch != epoch || e.gen != gen) {
			continue
		}
		return e, nil
	}
}

// keep caches a freshly built entry, unless a change announced since gen
// (when the build began) may have made it stale: then it serves the
// request that built it and is rebuilt next time.
func (c *Core) keep(key string, e *Entry, gen uint64) {
	// The entry it replaces may still be held by sites; replacing it does
	// not count as an eviction, so mark it here: only entries in the cache
	// hear of changes announced by other nodes.
	if old, ok := c.cards.Peek(key); ok && old != e {
		old.dropped.Store(true)
	}
	c.cards.Add(key, e)
	if c.changeGen.Load() != gen {
		e.dropped.Store(true)
		c.cards.Remove(key)
	}
}

// CardChain is a presented card's certificate and the CA certificates a
// revocation check needs. (What the card says of its holder, and what a
// registration records of it, is its *cacid.Identity.)
type CardChain struct {
	Leaf *x509.Certificate
	// Issuer is the verified issuing CA certificate (nil if none).
	Issuer *x509.Certificate
	// Verified is the verified chain, card first, trust anchor last.
	Verified []*x509.Certificate
}

// chainOrLeaf is the chain to check for revocation: the verified one, or
// the card and its issuer when only those are known.
func (cc *CardChain) chainOrLeaf() []*x509.Certificate {
	// A verified chain of the card alone (the card itself in the TLS
	// trust pool) names no issuer; the site's own pool may have found one.
	if len(cc.Verified) > 1 {
		return cc.Verified
	}
	if cc.Issuer != nil {
		return []*x509.Certificate{cc.Leaf, cc.Issuer}
	}
	return []*x509.Certificate{cc.Leaf}
}

// lastUseResolution is how stale a card's "last used" time may get before a
// cache refill writes it again; it bounds write load on the database.
const lastUseResolution = 5 * time.Minute

func (c *Core) resolve(ctx context.Context, r *http.Request, id *cacid.Identity, cert *CardChain, epoch uint64) (*Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := time.Now()
	e := &Entry{epoch: epoch, expires: now.Add(c.cfg.CacheTTL), edipi: id.EDIPI}
	if !isDoD(id) {
		e.kind, e.key = string(id.Kind), id.Key
	}

	// Revocation first: a revoked card learns nothing about accounts.
	e.Verdict = c.cfg.Revocation.CheckChain(ctx, cert.chainOrLeaf())
	if until := e.Verdict.ValidUntil; !until.IsZero() && until.Before(e.expires) {
		// (With revocation off the verdict has no expiry: zero.)
		e.expires = until
	}
	if e.Verdict.Status != revocation.StatusGood {
		return e, nil
	}

	if IsNPE(id) {
		// A non-person certificate: its registration, never a card's.
		acct, err := c.npeAccount(ctx, id)
		if err != nil {
			return nil, err
		}
		if e.Account = acct; acct != nil {
			e.fill(id)
		}
		return e, nil
	}
	acct, err := c.cfg.Store.AccountByFingerprint(ctx, id.FingerprintHex)
	if err == nil && acct.Type == store.TypeUtility {
		// A person's card is never a utility account's.
		acct, err = nil, store.ErrNotFound
	}
	switch {
	case err == nil:
		e.Account = acct
	case errors.Is(err, store.ErrNotFound):
		if e.Account, e.ByEDIPI, err = c.linkByEDIPI(ctx, r, id, cert); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("looking up card: %w", err)
	}

	if e.Account != nil {
		if rc := findCard(e.Account, id.FingerprintHex); rc != nil && now.Sub(rc.LastUsedAt) > lastUseResolution {
			if err := c.cfg.Store.TouchCard(ctx, id.FingerprintHex, now); err != nil {
				c.cfg.Logger.Warn("recording card use", zap.Error(err))
			}
		}
		e.fill(id)
	}
	return e, nil
}

// linkByEDIPI handles a card that is not registered: when an account holds
// its DoD ID (for a non-DoD credential: its kind and key) and
// link_by_edipi is on, the card is linked to it. A disabled account is
// returned unlinked, so the card is refused as disabled.
//
// The renewal rule follows from the keys: a DoD key is the person's EDIPI,
// the same on every card, so a new CAC links itself; a PIV or PIV-I key is
// the card's UUID, so only another certificate of the same card links
// itself, and a new card (a new UUID) is registered by its holder with the
// account's username and password; an ECA key is the issuer and subject,
// so a certificate renewed under the same name by the same CA links
// itself, and one from another CA is registered with the password.
func (c *Core) linkByEDIPI(ctx context.Context, r *http.Request, id *cacid.Identity, cert *CardChain) (linked, byEDIPI *store.Account, err error) {
	var acct *store.Account
	if isDoD(id) {
		acct, err = c.cfg.Store.AccountByEDIPI(ctx, id.EDIPI)
	} else {
		acct, err = c.cfg.Store.AccountByKey(ctx, string(id.Kind), id.Key)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("looking up the credential's account: %w", err)
	}
	if acct.Status == store.StatusDisabled {
		// Never link a card to a disabled account, but answer for it: the
		// holder must hear "your account is disabled", not "get an account".
		return acct, nil, nil
	}
	if !c.cfg.LinkByEDIPI {
		return nil, acct, nil
	}
	err = c.cfg.Store.AutoLinkCard(ctx, acct.ID, StoreCard(id))
	justLinked := err == nil
	switch {
	case err == nil:
		c.cfg.Audit.Request(r, "card.linked", audit.Success, append(audit.Card(id),
			zap.String("username", acct.Username), zap.String("via", "link_by_edipi"))...)
		// The account's other cards hold it without this card: their
		// holder's account page must list it at once, as it does after a
		// link made with the password.
		c.cfg.Metrics.Changes.WithLabelValues("local").Inc()
		c.drop(store.Change{AccountID: acct.ID})
	case errors.Is(err, store.ErrCardTaken):
		// another request or node linked it first; fall through to re-read
	case errors.Is(err, store.ErrCardCleared):
		// its registration was cleared on purpose: only an explicit link
		// (admin, or the holder with their password) may bring it back
		return nil, acct, nil
	default:
		return nil, nil, fmt.Errorf("linking card: %w", err)
	}
	acct, err = c.cfg.Store.AccountByFingerprint(ctx, id.FingerprintHex)
	if err != nil {
		return nil, nil, fmt.Errorf("re-reading linked card: %w", err)
	}
	if justLinked && c.cfg.CardLinked != nil {
		c.cfg.CardLinked(ctx, acct, id)
	}
	return acct, nil, nil
}

// isDoD reports whether the card is a DoD credential, known by its EDIPI
// (an Identity without a kind is one).
func isDoD(id *cacid.Identity) bool { return id.Kind == "" || id.Kind == cacid.KindCAC }

// StoreCard is what the account store records of a presented card.
func StoreCard(id *cacid.Identity) store.Card {
	return store.Card{
		Fingerprint: id.FingerprintHex,
		Subject:     id.Subject,
		Issuer:      id.Issuer,
		Serial:      id.Serial,
		NotAfter:    id.NotAfter,
		Kind:        string(id.Kind),
		Key:         id.Key,
	}
}

// Ways of signing in, as the backend sees them.
const (
	AuthCAC      = "cac"
	AuthPassword = "password"
)

// fill derives the backend-facing identity values from the account (the
// registered facts) and the card; id is nil for a password sign-in.
func (e *Entry) fill(id *cacid.Identity) {
	acct := e.Account
	e.active = acct.Status == store.StatusActive
	var cardGiven, cardFamily, cardEmail, cardAffiliation, fingerprint, credential string
	method := AuthPassword
	if id != nil {
		cardGiven, cardFamily = displayName(id.GivenName), displayName(id.FamilyName)
		cardEmail, cardAffiliation, fingerprint = id.Email, id.Affiliation, id.FingerprintHex
		method, credential = AuthCAC, string(id.Kind)
		if IsNPE(id) {
			method = AuthNPE
		}
	}
	// Only a utility account says so: a person's requests carry no
	// X-Cac-Account-Type (an empty value is no header), so they cost no
	// more than before utility accounts.
	accountType := ""
	if acct.Type == store.TypeUtility {
		accountType = string(store.TypeUtility)
	}
	e.Values = [NumFields]string{
		FieldUser:        acct.Username,
		FieldEDIPI:       acct.EDIPI,
		FieldGivenName:   firstNonEmpty(acct.GivenName, cardGiven),
		FieldFamilyName:  firstNonEmpty(acct.FamilyName, cardFamily),
		FieldEmail:       firstNonEmpty(acct.Email, cardEmail),
		FieldAffiliation: firstNonEmpty(acct.Affiliation, cardAffiliation),
		FieldCertSHA256:  fingerprint,
		FieldAuthMethod:  method,
		FieldCredential:  credential,
		FieldAccountType: accountType,
	}
	for i, v := range e.Values {
		e.Boxed[i] = v
	}
}

// Claims are what the entry's assertion says: its values. (Made when an
// assertion is signed rather than kept beside the values.)
func (e *Entry) Claims() assertion.Claims {
	return assertion.Claims{
		Username:    e.Values[FieldUser],
		EDIPI:       e.Values[FieldEDIPI],
		GivenName:   e.Values[FieldGivenName],
		FamilyName:  e.Values[FieldFamilyName],
		Email:       e.Values[FieldEmail],
		Affiliation: e.Values[FieldAffiliation],
		CertSHA256:  e.Values[FieldCertSHA256],
		AuthMethod:  e.Values[FieldAuthMethod],
		Credential:  e.Values[FieldCredential],
	}
}

// UserEntry is Card for a password session: the account by username,
// cached under a key no certificate fingerprint can take.
func (c *Core) UserEntry(ctx context.Context, username string) (*Entry, error) {
	return c.cachedEntry(consent.UserPrincipal(username), func(epoch uint64, now time.Time) (*Entry, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		e := &Entry{epoch: epoch, expires: now.Add(c.cfg.CacheTTL), Verdict: revocation.ChainVerdict{Verdict: revocation.Verdict{Status: revocation.StatusGood, Source: "password"}}}
		acct, err := c.cfg.Store.AccountByUsername(ctx, username)
		switch {
		case err == nil:
			e.Account = acct
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

// HolderName is the card holder's name for pages: "John Q. Doe Jr.", or
// a non-DoD certificate's common name when it has no plain name parts.
func HolderName(id *cacid.Identity) string {
	if id.GivenName == "" && id.FamilyName == "" {
		return id.CommonName
	}
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

// FirstGrant reports true to the first admitted request of the entry, and
// to no other: a load on the hot path, a compare-and-swap once.
func (e *Entry) FirstGrant() bool {
	return !e.granted.Load() && e.granted.CompareAndSwap(false, true)
}
