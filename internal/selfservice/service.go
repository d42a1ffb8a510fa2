// Package selfservice is what a card holder (or a person signing in with a
// password) can do for themselves, as use cases apart from the web:
// enrolling (identity checked against the personnel roster, profile and
// password, security questions, account created), registering a card to an
// existing account, resetting a forgotten password with the security
// answers, changing the password or the answers, clearing a card's
// registration, and password sign-in.
//
// Each use case is a method of Service taking typed input and returning a
// typed result whose Outcome says how it ended (done, invalid input with
// field errors, a wrong secret with the tries left, locked until, limited,
// unavailable, refused for a reason …). Every check of a secret goes
// through the one attempt Guard. Nothing here knows HTTP: the pages that
// call these use cases are package portal, and the gateway's Caddy glue
// only wires the two together. That keeps the rules (limits, refunds,
// audit events and their fields) in one place, testable without a server.
package selfservice

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
)

// Config is a site's self-service options.
type Config struct {
	Eligible       []string // allowed roster categories; empty = all
	AskPEBD        bool     // ask the PEBD when the roster record has one (Source.NeedsPEBD)
	RequireAddress bool     // work address required (default optional)
	RequirePhone   bool
	Approval       bool // new accounts are "pending" until an admin approves
	// Sponsor: holders of non-DoD credentials enroll without the roster,
	// their accounts pending until an admin approves (Approval implies it).
	Sponsor       bool
	Contact       string
	Organizations []string // choices for the organization/affiliation select
	Locations     []string // choices for the geographic location select
	Password      credential.PasswordPolicy
	StateTTL      time.Duration // default 30m
	LockoutPeriod time.Duration // how long 3 wrong passwords lock an account; default 30m
	MaxCards      int           // cards one account may have registered; default 5
	// AttemptsPerAddress bounds identity checks from one client address
	// (an IPv6 /64) per AddressWindow, across cards and accounts:
	// attempts_per_ip. Default DefaultAttemptsPerAddr.
	AttemptsPerAddress int
	// PasswordMinAge is how long after a change the holder may change the
	// password again; PasswordMaxAge how long a password signs in before it
	// must be changed. Zero means no limit (the gateway sets the STIG's 24h
	// and 60 days unless configured otherwise).
	PasswordMinAge, PasswordMaxAge time.Duration
}

// DefaultOrganizations and DefaultLocations are the select choices used when
// Config leaves them empty.
var (
	DefaultOrganizations = []string{"USA", "USN", "USAF", "USMC", "USCG", "USSF", "DoD civilian agency", "Contractor", "Other"}
	DefaultLocations     = []string{"North America", "Europe", "Asia", "Africa", "South America", "Australia/Oceania", "Middle East", "At sea"}
)

// Accounts is the slice of the account store the use cases need
// (store.SQLStore implements it).
type Accounts interface {
	Enroll(ctx context.Context, e *store.Enrollment) (*store.Account, error)
	AccountByFingerprint(ctx context.Context, fingerprint string) (*store.Account, error)
	AccountByUsername(ctx context.Context, username string) (*store.Account, error)
	Credentials(ctx context.Context, accountID int64) (*store.Credentials, error)
	LinkCard(ctx context.Context, accountID int64, c store.Card) error
	UnlinkCard(ctx context.Context, username, fingerprint string) error
	SetPassword(ctx context.Context, accountID int64, hash string, keepHistory int) error
	RehashPassword(ctx context.Context, accountID int64, old, new string) (bool, error)
	SetAnswers(ctx context.Context, accountID int64, answers [3]store.Answer) error
	ResetLoginFailures(ctx context.Context, accountID int64) error
	LoginLocker
}

// Auditor records a security event of the request ctx belongs to. It is
// never passed an SSN, FIN, date of birth, PEBD, password or security
// answer.
type Auditor func(ctx context.Context, event, outcome string, fields map[string]string)

// RepeatAuditor is an Auditor for refusals that repeat: key names the
// series (a refusal's reason and card); see Deps.AuditRepeatable.
type RepeatAuditor func(ctx context.Context, key, event, outcome string, fields map[string]string)

// Deps are what the use cases work with.
type Deps struct {
	Roster   roster.Source
	Accounts Accounts
	Hasher   *credential.Hasher
	Sealer   *Sealer
	// Throttle is where the attempt guard counts failed attempts (per
	// card, per decoy username, per client address): the account
	// database, which every gateway node shares and every store provides.
	Throttle store.Throttler
	// States records which sealed enrollment states were used, so each
	// moves the flow on once on every node: the account database. Nil
	// means Throttle, which must then implement it (store.SQLStore does).
	States store.StateLedger
	// Audit records events; nil records nothing.
	Audit Auditor
	// AuditRepeatable records a refusal a client can repeat at will as
	// often as it likes, the account database unavailable: the gateway
	// writes the first for key (the reason and the card) from one client
	// address within a minute in full and counts the rest
	// (audit.Log.RequestRepeatable), so an outage cannot flood the trail.
	// Nil means Audit, every time.
	AuditRepeatable RepeatAuditor
	// Logger gets what the audit trail leaves out: the database's own
	// errors. Nil logs nothing.
	Logger *zap.Logger
	Now    func() time.Time // default time.Now
	// OnChange is called after an account or card mapping changed
	// (enrolled, card linked or unlinked, password set), so the gateway
	// drops what it cached. Nil means nothing.
	OnChange func()
}

// A card is what the gateway admitted (its checks already passed): the
// use cases take it as the certificate's identity (*cacid.Identity), which
// holds who the holder is and the certificate facts a registration records.

// storeCard is the card as the store records a registration.
func storeCard(c *cacid.Identity) store.Card {
	return store.Card{Fingerprint: c.FingerprintHex, Subject: c.Subject, Issuer: c.Issuer, Serial: c.Serial, NotAfter: c.NotAfter,
		Kind: string(c.Kind), Key: c.Key}
}

// Limits of the forms.
const (
	defaultStateTTL = 30 * time.Minute
	defaultMaxCards = 5
	maxEmailLen     = 254
	maxAddressLen   = 200
	maxPhoneLen     = 32
	maxUsernameLen  = 64
	maxPasswordLen  = 256
	// PasswordHistory is how many earlier passwords a new one may not
	// repeat (besides the current one), and how many the store keeps.
	PasswordHistory = 5
)

// Service runs the self-service use cases of one site.
type Service struct {
	cfg   Config
	deps  Deps
	guard *Guard
	dummy dummyHash // verified against for unknown usernames
}

// New checks cfg and deps and returns the service.
func New(cfg Config, deps Deps) (*Service, error) {
	switch {
	case deps.Roster == nil:
		return nil, errors.New("selfservice: a roster is required")
	case deps.Accounts == nil:
		return nil, errors.New("selfservice: an account store is required")
	case deps.Hasher == nil:
		return nil, errors.New("selfservice: a hasher is required")
	case deps.Sealer == nil:
		return nil, errors.New("selfservice: a state sealer is required")
	case deps.Throttle == nil:
		return nil, errors.New("selfservice: an attempt counter (the account store) is required")
	}
	if deps.States == nil {
		ledger, ok := deps.Throttle.(store.StateLedger)
		if !ok {
			return nil, errors.New("selfservice: a ledger of used states (the account store) is required")
		}
		deps.States = ledger
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.OnChange == nil {
		deps.OnChange = func() {}
	}
	if deps.Audit == nil {
		deps.Audit = func(context.Context, string, string, map[string]string) {}
	}
	if deps.AuditRepeatable == nil {
		audit := deps.Audit
		deps.AuditRepeatable = func(ctx context.Context, _, event, outcome string, fields map[string]string) {
			audit(ctx, event, outcome, fields)
		}
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if cfg.LockoutPeriod <= 0 {
		cfg.LockoutPeriod = defaultLockoutPeriod
	}
	if cfg.MaxCards <= 0 {
		cfg.MaxCards = defaultMaxCards
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = defaultStateTTL
	}
	cfg.Organizations = cleanChoices(cfg.Organizations, DefaultOrganizations)
	cfg.Locations = cleanChoices(cfg.Locations, DefaultLocations)
	return &Service{cfg: cfg, deps: deps,
		guard: NewGuard(deps.Throttle, deps.Accounts, cfg.AttemptsPerAddress, cfg.LockoutPeriod, deps.Now)}, nil
}

// Config returns the service's configuration with its defaults applied.
func (s *Service) Config() Config { return s.cfg }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.deps.Now() }

func cleanChoices(list, def []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return append([]string(nil), def...)
	}
	return out
}

// audit records event for card, with extra fields.
func (s *Service) audit(ctx context.Context, card *cacid.Identity, event, outcome string, extra map[string]string) {
	fields := map[string]string{"edipi": card.EDIPI, "card": card.FingerprintHex}
	if !IsDoD(card) {
		fields["credential"], fields["credential_key"] = string(card.Kind), card.Key
	}
	for k, v := range extra {
		fields[k] = v
	}
	s.deps.Audit(ctx, event, outcome, fields)
}

// JoinName joins the parts of a name that are not empty.
func JoinName(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// HolderName is the card holder's display name: a non-DoD certificate's
// common name when it has no plain name parts.
func HolderName(id *cacid.Identity) string {
	if id.GivenName == "" && id.FamilyName == "" {
		return id.CommonName
	}
	return JoinName(id.GivenName, id.MiddleName, id.FamilyName, id.Suffix)
}

// IsDoD reports whether the card is a DoD credential (one with an EDIPI
// the personnel roster knows). An Identity without a kind is one.
func IsDoD(id *cacid.Identity) bool { return id.Kind == "" || id.Kind == cacid.KindCAC }

// CredentialTitle names a card's kind for pages: "DoD CAC", "federal PIV
// card", "PIV-I card", "ECA certificate".
func CredentialTitle(id *cacid.Identity) string {
	switch id.Kind {
	case cacid.KindPIV:
		return "federal PIV card"
	case cacid.KindPIVI:
		return "PIV-I card"
	case cacid.KindECA:
		return "ECA certificate"
	}
	return "DoD CAC"
}

// SponsoredCategory is the category an account enrolled without a roster
// record (non-DoD credentials, approval mode) gets: what it is, for the
// approving administrator and the access rules (require category ...).
func SponsoredCategory(id *cacid.Identity) string {
	switch id.Kind {
	case cacid.KindPIV:
		return "Federal PIV holder"
	case cacid.KindPIVI:
		return "PIV-I holder"
	case cacid.KindECA:
		return "ECA certificate holder"
	}
	return ""
}

// isCleanText refuses invalid UTF-8 and non-printing characters.
func isCleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	if s == "" || len(s) > maxEmailLen || !isCleanText(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

func validPhone(s string) bool {
	if len(s) > maxPhoneLen {
		return false
	}
	digits := 0
	for _, r := range s {
		switch {
		case '0' <= r && r <= '9':
			digits++
		case strings.ContainsRune(" +-().x", r):
		default:
			return false
		}
	}
	return digits >= 7
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FormatTime is how the pages show a time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// HashBusy audits a request turned away because the hasher had no slot
// for it in time (err matches credential.ErrBusy): event hash.busy,
// outcome unavailable, with the hash's priority and the reason
// (queue_full, wait_timeout). card is nil for a password sign-in.
func (s *Service) HashBusy(ctx context.Context, card *cacid.Identity, err error) {
	fields := map[string]string{"reason": "hash_busy"}
	var busy *credential.BusyError
	if errors.As(err, &busy) {
		fields["reason"], fields["priority"] = busy.Reason, busy.Priority.String()
	}
	if card != nil {
		s.audit(ctx, card, "hash.busy", "unavailable", fields)
		return
	}
	s.deps.Audit(ctx, "hash.busy", "unavailable", fields)
}
