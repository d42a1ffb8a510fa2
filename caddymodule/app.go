// Package caddymodule is the Caddy glue of cacgate and nothing more: the
// "cacgate" app that owns, per config, the account store, the gateway core
// and the keys; the http.handlers.cacgate middleware, which asks the core
// (internal/gateway) for a decision and turns it into the next handler, a
// page, a JSON error or a handle_errors error; the TLS verifier; the store
// modules; the admin API routes over internal/admin; the Caddyfile syntax;
// and the CLI commands. Every file here imports Caddy; everything that does
// not need Caddy lives in the packages below it (see the README's
// Architecture section).
package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/assertion"
	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/history"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/session"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
	"github.com/cacgate/cacgate/revocation"
)

func init() {
	caddy.RegisterModule(new(App))
}

// auditRepeatWindow is how long repeats of one refusal (same certificate,
// reason and client address) are counted before they are written as one
// entry.
const auditRepeatWindow = time.Minute

// Defaults for the app's options.
const (
	DefaultCacheSize    = 10000
	DefaultCacheTTL     = time.Minute
	DefaultAssertionTTL = 5 * time.Minute
)

// Names of the secrets the app keeps in the account database, so that every
// node of a cluster signs and verifies with the same keys.
const (
	secretConsentKey   = "consent_hmac_key_v1"
	secretAssertionKey = "assertion_es256_pkcs8_v1"
)

// App is the "cacgate" Caddy app: the one owner, per running config, of the
// account store, the card cache, the consent and assertion keys, and the
// audit logger. Every cacgate handler and the admin API reach it through
// the config's context, so all sites share one store and one cache.
//
// Configured with the global Caddyfile option:
//
//	{
//		cacgate {
//			store sqlite [<path>]
//			cache_size    <entries>
//			cache_ttl     <duration>
//			assertion_ttl <duration>
//			link_by_edipi on|off
//			revocation    { ... }   (see RevocationConfig)
//			roster        csv <file> | http <url>   (see RosterConfig)
//			hash_concurrency <n>
//			hash_queue    <n>
//			hash_wait     <duration>
//			password_hash argon2id | pbkdf2 [<iterations>]
//		}
//	}
//
// When no global option is given, the first cacgate handler loads the app
// with these defaults.
type App struct {
	// StoreRaw selects the account database backend (module namespace
	// cacgate.stores). Default: SQLite in Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=cacgate.stores inline_key=backend"`

	// CacheSize bounds the number of cards whose account mapping is cached
	// (default 10000).
	CacheSize int `json:"cache_size,omitempty"`

	// CacheTTL bounds how long a card's account mapping is trusted without
	// asking the database again (default 1m). A change made on another
	// node (say, an account disabled there) takes effect here within it.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// AssertionTTL is the lifetime of the signed X-Cac-Assertion JWT
	// (default 5m). Assertions are re-signed at three quarters of it.
	AssertionTTL caddy.Duration `json:"assertion_ttl,omitempty"`

	// LinkByEDIPI (default true) links a card automatically to the account
	// that has the card's DoD ID when the card itself is not yet registered
	// (an admin-provisioned account, a replacement card): the DoD CA vouches
	// for the EDIPI. When false such a card goes to enrollment.
	LinkByEDIPI *bool `json:"link_by_edipi,omitempty"`

	// ECAKey is what names the holder of an ECA certificate (accept eca):
	// "issuer_subject" (default: the issuer and subject names),
	// "email" (the rfc822Name subject alternative name) or "upn" (the
	// User Principal Name). Accounts are keyed by it, so it is one
	// setting for every site of the store; changing it later leaves
	// existing ECA accounts under their old keys (their holders register
	// their certificate again with their password).
	ECAKey string `json:"eca_key,omitempty"`

	// Revocation configures certificate revocation checking. Default: on,
	// OCSP then CRL, fail closed.
	Revocation *RevocationConfig `json:"revocation,omitempty"`

	// Roster is the personnel roster self-enrollment checks identities
	// against. Without it, enrollment is off.
	Roster *RosterConfig `json:"roster,omitempty"`

	// HashConcurrency bounds concurrent password/answer hashing (argon2id,
	// one core each), so an enrollment flood cannot starve proxying.
	// Default 1.
	HashConcurrency int `json:"hash_concurrency,omitempty"`

	// HashQueue bounds how many hashes may wait for a slot, per priority
	// (interactive: sign-ins and other checks of a typed secret, served
	// first; enrollment): one more is answered 503 with Retry-After at
	// once. Default 32.
	HashQueue int `json:"hash_queue,omitempty"`
	// HashWait bounds how long a hash waits for a slot before its request
	// is answered 503 with Retry-After. Default 10s.
	HashWait caddy.Duration `json:"hash_wait,omitempty"`

	// PasswordHash is the algorithm new password and security-answer
	// hashes are made with: "argon2id" (default) or "pbkdf2-sha512"
	// (NIST SP 800-132, inside Go's FIPS 140-3 module), for assessors who
	// require an approved KDF. Hashes stored with either keep verifying,
	// so a site can switch: a password moves to the new algorithm at its
	// next correct sign-in, security answers when they are next set.
	PasswordHash string `json:"password_hash,omitempty"`
	// PBKDF2Iterations is PBKDF2's iteration count (default 210000, OWASP;
	// 100000 to 10000000).
	PBKDF2Iterations int `json:"pbkdf2_iterations,omitempty"`

	// Node names this gateway node in audit entries (the "node" field).
	// Placeholders such as {env.NODE_NAME} are expanded. Default: the
	// host name, which is not unique when several nodes share a host or
	// containers get random names.
	Node string `json:"node,omitempty"`

	// Mail sends e-mail notices through an SMTP relay (see MailConfig).
	// Without it no notice is sent.
	Mail *MailConfig `json:"mail,omitempty"`
	// InactiveAfter disables an account nobody signed in with (card or
	// password) for this long (ASD STIG: 35 days); 0, the default: never.
	InactiveAfter caddy.Duration `json:"inactive_after,omitempty"`
	// InactiveWarning is how long before that the person is warned by
	// e-mail (default 7 days).
	InactiveWarning caddy.Duration `json:"inactive_warning,omitempty"`
	// PasswordExpiryWarning is how long before a password expires the
	// person is warned by e-mail (default 7 days).
	PasswordExpiryWarning caddy.Duration `json:"password_expiry_warning,omitempty"`
	// SweepInterval is how often each node runs the life-cycle sweep
	// (default 1h).
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	life *lifecycleState
	// EventHistory bounds the security-event history the help-desk
	// console shows (default: on, 90 days, 1,000,000 events).
	EventHistory *EventHistoryConfig `json:"event_history,omitempty"`

	store *store.SQLStore
	// releaseStore lets go of this config's use of the store.
	releaseStore func() error
	tokens       *consent.Tokens
	consents     *consent.Cache
	sessions     *session.Manager
	signer       *assertion.Signer
	// core decides requests for every cacgate handler of the config: the
	// card cache, link_by_edipi, cross-node invalidation.
	core    *gateway.Core
	logger  *zap.Logger
	audit   *audit.Log
	metrics *metrics.Metrics
	// adminService is account administration on this app's store, for
	// the admin API.
	adminService *admin.Service

	roster roster.Source
	hasher *credential.Hasher
	sealer *selfservice.Sealer

	// revocation checks cards' chains and caches the verdicts.
	revocation *revocation.Checker

	// oidc are the sites' OpenID Providers (oidc.go).
	oidc oidcProviders
	// history copies audit entries into the account database; nil when
	// event_history is off.
	history *history.Recorder
	// announcements are the announcements last read from the database,
	// for the pages; announceKick asks for them to be read again.
	announcements atomic.Pointer[[]ui.Announcement]
	announceKick  chan struct{}
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "cacgate",
		New: func() caddy.Module { return new(App) },
	}
}

// StoreOpener is implemented by cacgate.stores.* modules. OpenStore
// returns the store and how to let go of this config's use of it (a
// PostgreSQL pool outlives a reload; an SQLite file is closed).
type StoreOpener interface {
	OpenStore(ctx caddy.Context) (st *store.SQLStore, release func() error, err error)
}

// Provision opens the store (running its migrations) and loads or creates
// the shared keys.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.provisionMetrics(ctx); err != nil {
		return err
	}
	a.audit = audit.New(ctx.Logger(auditLog{}), caddy.NewReplacer().ReplaceKnown(a.Node, ""))
	a.audit.Source = requestSource
	a.audit.Counted = a.metrics.Audited
	// Refusals a client can repeat at will are written once per series
	// and window, with a count (see audit.RequestRepeatable).
	a.audit.CollapseRepeats(ctx, auditRepeatWindow)
	if a.CacheSize == 0 {
		a.CacheSize = DefaultCacheSize
	}
	if a.CacheTTL == 0 {
		a.CacheTTL = caddy.Duration(DefaultCacheTTL)
	}
	if a.AssertionTTL == 0 {
		a.AssertionTTL = caddy.Duration(DefaultAssertionTTL)
	}
	if a.LinkByEDIPI == nil {
		on := true
		a.LinkByEDIPI = &on
	}
	if err := a.validate(); err != nil {
		return err
	}

	if a.StoreRaw == nil {
		a.StoreRaw = json.RawMessage(`{"backend":"sqlite"}`)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading account store: %w", err)
	}
	opener, ok := mod.(StoreOpener)
	if !ok {
		return fmt.Errorf("store module %T cannot open a store", mod)
	}
	opened, release, err := opener.OpenStore(ctx)
	if err != nil {
		return fmt.Errorf("opening account store: %w", err)
	}
	opened.SetObserver(a.metrics.StoreOperation)
	a.store, a.releaseStore = opened, release
	a.adminService = &admin.Service{Store: opened, Audit: a.audit, Invalidate: a.invalidate, Logger: a.logger, OIDC: opened, OIDCConfigured: a.oidcConfigured,
		Notify: a.adminNotify}
	a.provisionHistory(ctx) // console.go
	if err := a.provisionLifecycle(ctx); err != nil {
		return err
	}

	keyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	consentKey, err := a.store.EnsureSecret(keyCtx, secretConsentKey, randomBytes(32))
	if err != nil {
		return fmt.Errorf("loading consent key: %w", err)
	}
	if a.tokens, err = consent.NewTokens(consentKey); err != nil {
		return err
	}
	if err := a.provisionSessions(ctx, consentKey); err != nil {
		return err
	}
	signingKey, err := a.store.EnsureSecret(keyCtx, secretAssertionKey, assertion.GenerateKey)
	if err != nil {
		return fmt.Errorf("loading assertion signing key: %w", err)
	}
	if a.signer, err = assertion.NewSigner(signingKey); err != nil {
		return err
	}

	// A verified consent token is remembered for at most ten minutes, so a
	// key rotation or restart costs at most one re-verification per card.
	a.consents = consent.NewCache(a.tokens, a.CacheSize, 10*time.Minute)
	if err := a.provisionRevocation(ctx); err != nil {
		return err
	}
	ecaKey, ok := cacid.ParseKeySource(a.ECAKey)
	if !ok {
		return fmt.Errorf("eca_key must be issuer_subject, email or upn, got %q", a.ECAKey)
	}
	if a.core, err = gateway.New(gateway.Config{
		Store:        opened,
		Revocation:   a.revocation,
		Signer:       a.signer,
		Consents:     a.consents,
		Audit:        a.audit,
		Metrics:      a.metrics,
		Logger:       a.logger,
		Sessions:     sessionEvents{a.sessions},
		CacheSize:    a.CacheSize,
		CacheTTL:     time.Duration(a.CacheTTL),
		AssertionTTL: time.Duration(a.AssertionTTL),
		LinkByEDIPI:  *a.LinkByEDIPI,
		Identity:     cacid.Options{ECAKey: ecaKey},
		CardLinked:   a.cardLinked,
		// Another node changed the announcements: read them again.
		AnnouncementsChanged: a.announcementsChanged,
	}); err != nil {
		return err
	}
	a.provisionAnnouncements(ctx) // console.go
	// The change feed starts once the caches it drops entries from exist.
	if opened.CanWatch() {
		go a.core.Watch(ctx, opened)
	}
	return a.provisionEnrollment(ctx)
}

// sessionEvents passes password sessions ended on other nodes to the
// session cache.
type sessionEvents struct{ m *session.Manager }

func (s sessionEvents) Ended(id string, expires, now time.Time) { s.m.End(id, expires, now) }
func (s sessionEvents) Resync()                                 { s.m.Purge() }

// Validate checks the configuration.
func (a *App) Validate() error { return a.validate() }

func (a *App) validate() error {
	switch {
	case a.CacheSize < 1 || a.CacheSize > 10_000_000:
		return fmt.Errorf("cache_size must be between 1 and 10000000, got %d", a.CacheSize)
	case a.CacheTTL < caddy.Duration(time.Second) || a.CacheTTL > caddy.Duration(24*time.Hour):
		return fmt.Errorf("cache_ttl must be between 1s and 24h, got %s", time.Duration(a.CacheTTL))
	case a.AssertionTTL < caddy.Duration(30*time.Second) || a.AssertionTTL > caddy.Duration(time.Hour):
		return fmt.Errorf("assertion_ttl must be between 30s and 1h, got %s", time.Duration(a.AssertionTTL))
	}
	return a.EventHistory.validate()
}

// Start implements caddy.App; the app serves through handlers and the
// admin API. It starts the mail outbox's sender and the life-cycle sweep.
func (a *App) Start() error {
	a.startLifecycle()
	return nil
}

// Stop implements caddy.App.
func (a *App) Stop() error {
	a.stopLifecycle()
	return nil
}

// Cleanup closes the store. It is safe after a partial Provision.
func (a *App) Cleanup() error {
	if a.releaseStore != nil {
		return a.releaseStore()
	}
	return nil
}

// invalidate makes every cached card mapping stale, after a local change.
func (a *App) invalidate() {
	if a.core != nil {
		a.core.Invalidate()
	}
}

func randomBytes(n int) func() ([]byte, error) {
	return func() ([]byte, error) {
		b := make([]byte, n)
		_, err := rand.Read(b)
		return b, err
	}
}

// runningApp returns the cacgate app of the running config, for the admin
// API, which is provisioned before apps load and outlives none of them.
func runningApp() (*App, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("cacgate")
	if err != nil {
		if errors.Is(err, caddy.ErrNotConfigured) {
			return nil, errors.New("cacgate is not configured in the running config")
		}
		return nil, err
	}
	return app.(*App), nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
