package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/selfservice"
)

// secretEnrollStateKey seals the multi-step enrollment state; shared by
// every node through the account database.
const secretEnrollStateKey = "enroll_state_key_v1"

// RosterConfig is the authoritative personnel roster self-enrollment
// validates identities against (the role DMDC plays for AKO/DKO).
//
//	roster csv <file> [{ reload_interval <duration> }]
//	roster http <url> [{ timeout <duration>; header <name> <value>; keys card_uuid|email ... }]
type RosterConfig struct {
	// Source is "csv" or "http".
	Source string `json:"source"`
	// File is the CSV roster (csv). Placeholders are expanded.
	File string `json:"file,omitempty"`
	// ReloadInterval is how often the CSV file is checked for changes (default 30s).
	ReloadInterval caddy.Duration `json:"reload_interval,omitempty"`
	// URL of the ops service (http): https, or http on loopback only.
	URL string `json:"url,omitempty"`
	// Timeout per roster request (http; default 5s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Headers sent with every roster request (http), e.g. an API key from
	// {env.ROSTER_API_KEY}.
	Headers map[string]string `json:"headers,omitempty"`
	// Keys are the keys of non-DoD credentials the service answers for
	// (http): "card_uuid" (federal PIV, PIV-I) and "email" (ECA). Without
	// them the service is asked about EDIPIs alone, as before, and non-DoD
	// holders are sponsored. A CSV roster answers for whatever key
	// columns its file has.
	Keys []string `json:"keys,omitempty"`
}

// Bounds on a configured PBKDF2 iteration count: OWASP's floor for
// PBKDF2-HMAC-SHA-512 is about twice the lower one; the upper one is
// credential's own (seconds of a core per sign-in).
const (
	minConfiguredPBKDF2Iterations = 100_000
	maxConfiguredPBKDF2Iterations = 10_000_000
)

// hashParams are the parameters new password and answer hashes are made
// with, from password_hash.
func (a *App) hashParams() (credential.Params, error) {
	switch a.PasswordHash {
	case "", credential.Argon2id:
		if a.PBKDF2Iterations != 0 {
			return credential.Params{}, errors.New("pbkdf2_iterations needs password_hash pbkdf2-sha512")
		}
		return credential.DefaultParams, nil
	case credential.PBKDF2SHA512:
		p := credential.DefaultPBKDF2Params
		if n := a.PBKDF2Iterations; n != 0 {
			if n < minConfiguredPBKDF2Iterations || n > maxConfiguredPBKDF2Iterations {
				return credential.Params{}, fmt.Errorf("pbkdf2_iterations must be between %d and %d, got %d",
					minConfiguredPBKDF2Iterations, maxConfiguredPBKDF2Iterations, n)
			}
			p.Iterations = uint32(n)
		}
		return p, nil
	}
	return credential.Params{}, fmt.Errorf("password_hash must be %q or %q, got %q", credential.Argon2id, credential.PBKDF2SHA512, a.PasswordHash)
}

// provisionEnrollment sets up what self-enrollment needs app-wide: the
// roster, the bounded password hasher and the state sealer. Without a
// roster, enrollment is off and unregistered cards see whom to contact.
func (a *App) provisionEnrollment(ctx caddy.Context) error {
	if a.HashConcurrency == 0 {
		a.HashConcurrency = 1 // one core for hashing, the rest for proxying
	}
	if a.HashConcurrency < 0 || a.HashConcurrency > 64 {
		return fmt.Errorf("hash_concurrency must be between 1 and 64, got %d", a.HashConcurrency)
	}
	if a.HashQueue == 0 {
		a.HashQueue = credential.DefaultMaxWaiting
	}
	if a.HashQueue < 1 || a.HashQueue > 10000 {
		return fmt.Errorf("hash_queue must be between 1 and 10000, got %d", a.HashQueue)
	}
	if a.HashWait == 0 {
		a.HashWait = caddy.Duration(credential.DefaultMaxWait)
	}
	if w := time.Duration(a.HashWait); w < 100*time.Millisecond || w > 5*time.Minute {
		return fmt.Errorf("hash_wait must be between 100ms and 5m, got %s", w)
	}
	hashParams, err := a.hashParams()
	if err != nil {
		return err
	}
	if a.Roster == nil {
		return nil
	}
	repl := caddy.NewReplacer()
	switch a.Roster.Source {
	case "csv":
		path := repl.ReplaceKnown(a.Roster.File, "")
		csv, err := roster.OpenCSV(path, a.logger.Named("roster"))
		if err != nil {
			return fmt.Errorf("roster: %w", err)
		}
		interval := time.Duration(a.Roster.ReloadInterval)
		if interval <= 0 {
			interval = 30 * time.Second
		}
		csv.Start(ctx, interval)
		a.roster = csv
		a.logger.Info("roster loaded", zap.String("file", path), zap.Int("records", csv.Len()))
	case "http":
		header := http.Header{}
		for k, v := range a.Roster.Headers {
			header.Set(k, repl.ReplaceKnown(v, ""))
		}
		var keys []roster.KeyKind
		for _, k := range a.Roster.Keys {
			kind, ok := roster.ParseKeyKind(k)
			if !ok || kind == roster.KeyEDIPI {
				return fmt.Errorf(`roster keys must be "card_uuid" or "email", got %q`, k)
			}
			keys = append(keys, kind)
		}
		src, err := roster.NewHTTP(roster.HTTPConfig{
			URL:     repl.ReplaceKnown(a.Roster.URL, ""),
			Timeout: time.Duration(a.Roster.Timeout),
			Header:  header,
			Keys:    keys,
		})
		if err != nil {
			return fmt.Errorf("roster: %w", err)
		}
		a.roster = src
	default:
		return fmt.Errorf(`roster source must be "csv" or "http", got %q`, a.Roster.Source)
	}
	a.startAttemptPruning(ctx) // throttle.go: per-card attempt counts shared through the store
	// Sign-ins and other checks of a typed secret wait in the hasher's
	// interactive line, served before enrollment's hashes; both lines
	// are bounded (hash_queue, hash_wait), a hash past them answered 503.
	a.hasher = credential.NewQueuedHasher(hashParams, a.HashConcurrency, credential.Queue{
		MaxWaiting: a.HashQueue,
		MaxWait:    time.Duration(a.HashWait),
		Waited:     a.metrics.HashWaited,
		Rejected:   a.metrics.HashRejected,
	})
	keyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	key, err := a.store.EnsureSecret(keyCtx, secretEnrollStateKey, randomBytes(32))
	if err != nil {
		return fmt.Errorf("loading enrollment state key: %w", err)
	}
	a.sealer, err = selfservice.NewSealer(key)
	return err
}

// EnrollConfig is a site's self-enrollment options (the app's roster must
// be configured for enrollment to be offered).
//
//	enroll off
//	enroll {
//		eligible       <category>...
//		verify         ssn dob [pebd]
//		approval
//		sponsor
//		require        address|phone...
//		password_digit
//		organizations  <name>...
//		locations      <name>...
//		max_cards      <n>
//		lockout        <duration>
//		attempts_per_ip <n>
//		password_min_age <duration>|off
//		password_max_age <duration>|off
//	}
type EnrollConfig struct {
	// Disabled turns enrollment off for this site.
	Disabled bool `json:"disabled,omitempty"`
	// Eligible roster categories (default: all).
	Eligible []string `json:"eligible,omitempty"`
	// VerifyPEBD also asks the pay entry base date when the roster record has one.
	VerifyPEBD bool `json:"verify_pebd,omitempty"`
	// Approval keeps new accounts pending until an admin approves them.
	Approval bool `json:"approval,omitempty"`
	// Sponsor lets holders of non-DoD credentials (federal PIV, PIV-I,
	// ECA; see the handler's accept), whom no personnel record covers,
	// enroll on the same pages without the identity check; their
	// accounts wait pending until an administrator (the sponsor)
	// approves them. DoD cards enroll as before. Approval implies it.
	Sponsor bool `json:"sponsor,omitempty"`
	// RequireAddress and RequirePhone make the work address / phone required.
	RequireAddress bool `json:"require_address,omitempty"`
	RequirePhone   bool `json:"require_phone,omitempty"`
	// PasswordDigit requires a digit in passwords.
	PasswordDigit bool `json:"password_digit,omitempty"`
	// Organizations and Locations are the choices offered (defaults apply when empty).
	Organizations []string `json:"organizations,omitempty"`
	Locations     []string `json:"locations,omitempty"`
	// MaxCards bounds the cards one account may register (default 5).
	MaxCards int `json:"max_cards,omitempty"`
	// Lockout is how long an account stays locked after 3 wrong passwords
	// within 15 minutes (default 30m). The lock lives in the database.
	Lockout caddy.Duration `json:"lockout,omitempty"`
	// AttemptsPerIP bounds identity checks (roster, password, answers,
	// password sign-in) from one client address (an IPv6 /64) per 15
	// minutes, across cards and accounts (default 30). The count lives in
	// the account database, so it holds across nodes; correct password
	// sign-ins are refunded.
	AttemptsPerIP int `json:"attempts_per_ip,omitempty"`
	// PasswordMinAge is how soon after a change the holder may change the
	// password again (default 24h, ASD STIG V-222544); PasswordMaxAge how
	// long a password signs in before it must be changed (default 60 days,
	// 1440h). 0 turns the limit off (Caddyfile: off). Resets with the
	// security answers are not held to the minimum.
	PasswordMinAge *caddy.Duration `json:"password_min_age,omitempty"`
	PasswordMaxAge *caddy.Duration `json:"password_max_age,omitempty"`
}

// The DoD lifetimes of passwords (ASD STIG V-222544 and APSC-DV-001770).
const (
	defaultPasswordMinAge = 24 * time.Hour
	defaultPasswordMaxAge = 60 * 24 * time.Hour
)

// passwordAges applies the defaults and checks the pair.
func (ec *EnrollConfig) passwordAges() (minAge, maxAge time.Duration, err error) {
	minAge, maxAge = defaultPasswordMinAge, defaultPasswordMaxAge
	if ec.PasswordMinAge != nil {
		minAge = time.Duration(*ec.PasswordMinAge)
	}
	if ec.PasswordMaxAge != nil {
		maxAge = time.Duration(*ec.PasswordMaxAge)
	}
	switch {
	case minAge < 0 || maxAge < 0:
		return 0, 0, fmt.Errorf("enroll: password_min_age and password_max_age must not be negative")
	case maxAge > 0 && maxAge < time.Hour:
		return 0, 0, fmt.Errorf("enroll: password_max_age %s is shorter than an hour; use off for no limit", maxAge)
	case maxAge > 0 && minAge >= maxAge:
		return 0, 0, fmt.Errorf("enroll: password_min_age %s must be shorter than password_max_age %s", minAge, maxAge)
	}
	return minAge, maxAge, nil
}

// provisionEnrollFlow builds this site's enrollment flow, or leaves it nil
// when enrollment is off (no roster, or "enroll off").
func (h *Handler) provisionEnrollFlow() error {
	if h.app.roster == nil || (h.Enroll != nil && h.Enroll.Disabled) {
		return nil
	}
	ec := h.Enroll
	if ec == nil {
		ec = &EnrollConfig{}
	}
	minAge, maxAge, err := ec.passwordAges()
	if err != nil {
		return err
	}
	h.app.notePasswordMaxAge(maxAge)
	svc, err := selfservice.New(selfservice.Config{
		Eligible:       ec.Eligible,
		AskPEBD:        ec.VerifyPEBD,
		RequireAddress: ec.RequireAddress,
		RequirePhone:   ec.RequirePhone,
		Approval:       ec.Approval,
		Sponsor:        ec.Sponsor,
		Contact:        h.contactText(),
		Organizations:  ec.Organizations,
		Locations:      ec.Locations,
		Password:       credential.PasswordPolicy{RequireDigit: ec.PasswordDigit},
		MaxCards:       ec.MaxCards,
		LockoutPeriod:  time.Duration(ec.Lockout),
		PasswordMinAge: minAge,
		PasswordMaxAge: maxAge,
		// The per-address limit is part of the flow's attempt guard.
		AttemptsPerAddress: ec.AttemptsPerIP,
	}, selfservice.Deps{
		Roster:   h.app.roster,
		Accounts: h.app.store,
		Hasher:   h.app.hasher,
		Sealer:   h.app.sealer,
		Throttle: h.app.store,
		// Used enrollment states, so each is hashed for once on every node.
		States: h.app.store,
		Audit:  h.app.auditAndNotify,
		// Refusals for an unavailable database: once per card, client
		// address and minute, then a count.
		AuditRepeatable: h.app.auditSelfServiceRepeatable,
		Logger:          h.logger,
		// A change to accounts or cards takes effect at once on this
		// node; password sessions signed in before a password change
		// end (the cached account carries the change time).
		OnChange: h.app.invalidate,
	})
	if err != nil {
		return err
	}
	h.enrollFlow, err = portal.NewPages(svc)
	return err
}

// auditSelfService adapts the self-service use cases' audit hook to the
// audit log, with the request the portal put in the context.
func (a *App) auditSelfService(ctx context.Context, event, outcome string, fields map[string]string) {
	zf := stringFields(fields)
	if r := portal.Request(ctx); r != nil {
		a.audit.Request(r, event, outcome, zf...)
		return
	}
	a.audit.Write(event, outcome, zf...)
}

// auditSelfServiceRepeatable is auditSelfService for a refusal a client can
// repeat at will: the audit log writes the first of each series (key, from
// one client address) per window in full and counts the rest.
func (a *App) auditSelfServiceRepeatable(ctx context.Context, key, event, outcome string, fields map[string]string) {
	zf := stringFields(fields)
	if r := portal.Request(ctx); r != nil {
		a.audit.RequestRepeatable(r, key, event, outcome, zf...)
		return
	}
	a.audit.Write(event, outcome, zf...)
}

// stringFields are the use cases' audit fields as log fields.
func stringFields(fields map[string]string) []zap.Field {
	zf := make([]zap.Field, 0, len(fields))
	for k, v := range fields {
		zf = append(zf, zap.String(k, v))
	}
	return zf
}

func unmarshalRoster(d *caddyfile.Dispenser) (*RosterConfig, error) {
	rc := new(RosterConfig)
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	rc.Source = d.Val()
	switch rc.Source {
	case "csv":
		if !d.NextArg() {
			return nil, d.ArgErr()
		}
		rc.File = d.Val()
	case "http":
		if !d.NextArg() {
			return nil, d.ArgErr()
		}
		rc.URL = d.Val()
	default:
		return nil, d.Errf(`roster source must be "csv" or "http", got %q`, rc.Source)
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch sub := d.Val(); {
		case sub == "reload_interval" && rc.Source == "csv":
			if err := durationArg(d, &rc.ReloadInterval); err != nil {
				return nil, err
			}
		case sub == "timeout" && rc.Source == "http":
			if err := durationArg(d, &rc.Timeout); err != nil {
				return nil, err
			}
		case sub == "header" && rc.Source == "http":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.ArgErr()
			}
			if rc.Headers == nil {
				rc.Headers = map[string]string{}
			}
			rc.Headers[args[0]] = args[1]
		case sub == "keys" && rc.Source == "http":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, k := range args {
				if kind, ok := roster.ParseKeyKind(k); !ok || kind == roster.KeyEDIPI {
					return nil, d.Errf(`roster keys must be "card_uuid" or "email", got %q`, k)
				}
			}
			rc.Keys = append(rc.Keys, args...)
		default:
			return nil, d.Errf("unrecognized roster %s option %q", rc.Source, sub)
		}
	}
	return rc, nil
}

func unmarshalEnroll(d *caddyfile.Dispenser) (*EnrollConfig, error) {
	ec := new(EnrollConfig)
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Errf("enroll takes no argument but off")
		}
		ec.Disabled = true
		return ec, nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("enroll: %s specified more than once", sub)
		}
		seen[sub] = true
		switch sub {
		case "eligible":
			if ec.Eligible = d.RemainingArgs(); len(ec.Eligible) == 0 {
				return nil, d.ArgErr()
			}
		case "verify":
			fields := map[string]bool{}
			for _, f := range d.RemainingArgs() {
				fields[f] = true
			}
			if !fields["ssn"] || !fields["dob"] || len(fields) > 3 || (len(fields) == 3 && !fields["pebd"]) {
				return nil, d.Errf("verify must be: ssn dob [pebd]")
			}
			ec.VerifyPEBD = fields["pebd"]
		case "approval":
			ec.Approval = true
		case "sponsor":
			ec.Sponsor = true
		case "require":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, f := range args {
				switch f {
				case "address":
					ec.RequireAddress = true
				case "phone":
					ec.RequirePhone = true
				default:
					return nil, d.Errf("require: unknown field %q (address, phone)", f)
				}
			}
		case "password_digit":
			ec.PasswordDigit = true
		case "organizations":
			if ec.Organizations = d.RemainingArgs(); len(ec.Organizations) == 0 {
				return nil, d.ArgErr()
			}
		case "locations":
			if ec.Locations = d.RemainingArgs(); len(ec.Locations) == 0 {
				return nil, d.ArgErr()
			}
		case "max_cards":
			n, err := intArg(d)
			if err != nil {
				return nil, err
			}
			if n < 1 || n > 100 {
				return nil, d.Errf("max_cards must be between 1 and 100")
			}
			ec.MaxCards = n
		case "lockout":
			if err := durationArg(d, &ec.Lockout); err != nil {
				return nil, err
			}
		case "password_min_age", "password_max_age":
			age, err := durationOrOffArg(d)
			if err != nil {
				return nil, err
			}
			if sub == "password_min_age" {
				ec.PasswordMinAge = &age
			} else {
				ec.PasswordMaxAge = &age
			}
			if _, _, err := ec.passwordAges(); err != nil {
				return nil, d.Err(err.Error())
			}
		case "attempts_per_ip":
			n, err := intArg(d)
			if err != nil {
				return nil, err
			}
			if n < 1 || n > 10000 {
				return nil, d.Errf("attempts_per_ip must be between 1 and 10000")
			}
			ec.AttemptsPerIP = n
		default:
			return nil, d.Errf("unrecognized enroll option %q", sub)
		}
		if sub == "approval" || sub == "sponsor" || sub == "password_digit" {
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		}
	}
	return ec, nil
}

// startAttemptPruning deletes the self-service attempt guard's expired
// counters, and the records of used enrollment states that expired, in
// the account database in the background until ctx is done (the app's
// config is unloaded).
func (a *App) startAttemptPruning(ctx caddy.Context) {
	go selfservice.PruneAttempts(ctx, a.store, selfservice.PruneInterval, time.Now,
		func(err error) { a.logger.Warn("pruning expired attempt counts", zap.Error(err)) },
		func(n int64) { a.logger.Debug("pruned expired attempt counts", zap.Int64("deleted", n)) })
}
