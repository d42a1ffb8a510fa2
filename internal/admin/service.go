package admin

import (
	"context"
	"net/http"
	"os"
	"os/user"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// Store is what the Service needs of the account database; *store.SQLStore
// has it.
type Store interface {
	AccountByUsername(ctx context.Context, username string) (*store.Account, error)
	CreateAccount(ctx context.Context, a *store.Account) error
	TransitionStatus(ctx context.Context, username string, from, to store.Status) (*store.Account, error)
	SetStatus(ctx context.Context, username string, s store.Status) (*store.Account, error)
	Unlock(ctx context.Context, accountID int64) error
	LinkCard(ctx context.Context, accountID int64, c store.Card) error
	UnlinkCard(ctx context.Context, username, fingerprint string) error
	SearchAccounts(ctx context.Context, q store.AccountQuery) (store.AccountPage, error)
	ListGroups(ctx context.Context) ([]store.GroupCount, error)
	AddGroups(ctx context.Context, username string, groups ...string) (*store.Account, error)
	RemoveGroups(ctx context.Context, username string, groups ...string) (*store.Account, error)
	ImportAccounts(ctx context.Context, next func() (*store.Account, error), opts store.ImportOptions) (store.ImportReport, error)
	ExportAccounts(ctx context.Context, fn func(*store.Account) error) error

	RequirePasswordReset(ctx context.Context, username string, at time.Time) (*store.Account, error)
	SecurityEvents(ctx context.Context, q store.EventQuery) ([]store.SecurityEvent, error)
	OpenAnnouncements(ctx context.Context, now time.Time) ([]store.Announcement, error)
	CreateAnnouncement(ctx context.Context, a *store.Announcement, now time.Time) error
	DeleteAnnouncement(ctx context.Context, id int64) (store.Announcement, error)
	LoginFailuresOf(ctx context.Context, username string) (store.LoginFailures, error)
}

var _ Store = (*store.SQLStore)(nil)

// Service is account administration on one store: every input validated,
// every change audited with who made it, and Invalidate called after it.
// The admin API runs the running app's Service; the CLI's direct mode one
// on a store it opens itself from the config.
type Service struct {
	Store Store
	// Audit receives one event per change or refused change.
	Audit *audit.Log
	// Invalidate, if set, runs after every successful change: the gateway
	// drops this node's cached card mappings with it, so the change takes
	// effect at once here. Nil for the CLI, which has no cache. Other
	// nodes learn of the change from the store's change feed, or within
	// cache_ttl.
	Invalidate func()
	// AnnouncementsChanged, if set, runs after announcements were
	// created or deleted: the gateway reads them again at once.
	AnnouncementsChanged func()
	// Notify, if set, queues the e-mail notice of kind (internal/mail's
	// Kind*) about acct after a change: account approved, card linked.
	Notify func(ctx context.Context, kind string, acct *store.Account, detail string)
	// Logger gets what the audit trail and the answers leave out, such as
	// database errors. Nil: none.
	Logger *zap.Logger
	// OIDC holds the relying parties registered through the admin API;
	// nil: client management is unavailable. OIDCConfigured, if set,
	// reports a client ID the server's configuration holds (and so the
	// admin API must not register).
	OIDC           OIDCStore
	OIDCConfigured func(id string) bool
}

func (s *Service) logger() *zap.Logger {
	if s.Logger == nil {
		return zap.NewNop()
	}
	return s.Logger
}

// Actor is who asked for an admin change, for the audit trail.
type Actor struct {
	// Identity is the admin client certificate's subject (remote admin
	// with mTLS), "local" (the local admin endpoint, which has no identity
	// of its own), or "cli:<OS user>@<host>".
	Identity string
	// Source is where the request came from: the admin client's address,
	// or for the CLI the host it ran on.
	Source string
	// CertSHA256 is the admin client certificate's fingerprint, if any.
	CertSHA256 string
	// SudoUser is who ran the CLI through sudo, if anyone did.
	SudoUser string
	// Username is the administrator's own account, when the change was
	// made in the help-desk console (signed in with a card), and Via
	// names that console.
	Username, Via string
}

// APIActor identifies the client of an admin API request.
func APIActor(r *http.Request) Actor {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		c := r.TLS.PeerCertificates[0]
		return Actor{
			Identity:   cacid.DistinguishedName(c.RawSubject, c.Subject),
			Source:     r.RemoteAddr,
			CertSHA256: cacid.Fingerprint(c.Raw),
		}
	}
	source := r.RemoteAddr
	if source == "" || source == "@" {
		source = "unix socket"
	}
	return Actor{Identity: "local", Source: source}
}

// CLIActor is who runs the CLI: the OS user and host, and the user sudo
// was run by, if any.
func CLIActor() Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	a := Actor{Identity: "cli:" + name + "@" + host, Source: host}
	if sudo := os.Getenv("SUDO_USER"); sudo != "" && sudo != name {
		a.SudoUser = Clip(sudo, 64)
	}
	return a
}

// Fields are the actor's audit fields.
func (a Actor) Fields() []zap.Field {
	f := []zap.Field{zap.String("admin", a.Identity), zap.String("admin_source", a.Source)}
	if a.CertSHA256 != "" {
		f = append(f, zap.String("admin_cert_sha256", a.CertSHA256))
	}
	if a.SudoUser != "" {
		f = append(f, zap.String("admin_sudo_user", a.SudoUser))
	}
	if a.Username != "" {
		f = append(f, zap.String("admin_username", a.Username))
	}
	if a.Via != "" {
		f = append(f, zap.String("admin_via", a.Via))
	}
	return f
}

// Audit events of admin actions.
const (
	EventAccountCreated  = "admin.account.created"
	EventAccountApproved = "admin.account.approved"
	EventAccountDisabled = "admin.account.disabled"
	EventAccountEnabled  = "admin.account.enabled"
	EventAccountUnlocked = "admin.account.unlocked"
	EventGroupsAdded     = "admin.groups.added"
	EventGroupsRemoved   = "admin.groups.removed"
	EventCardLinked      = "admin.card.linked"
	EventCardUnlinked    = "admin.card.unlinked"
	EventImport          = "admin.import"
	EventExport          = "admin.export"
	// EventPasswordResetRequired and the announcement events: see console.go.
)

// record writes one audit event for an admin action.
func (s *Service) record(who Actor, event, outcome string, fields ...zap.Field) {
	s.Audit.Write(event, outcome, append(fields, who.Fields()...)...)
}

// fail audits a refused or failed change and returns err, which says why:
// its reason code and, when the account database could not serve it, the
// cause (disk_full, unreachable …).
func (s *Service) fail(who Actor, event string, err error, fields ...zap.Field) error {
	fields = append(fields, zap.String("reason", ReasonOf(err)))
	if cause := CauseOf(err); cause != "" {
		fields = append(fields, zap.String("cause", cause))
	}
	s.record(who, event, audit.Failure, fields...)
	return err
}

// Refused audits a change refused before its operation ran (its request
// could not be read, say) and returns err. username names the account the
// request was for, and is recorded only if it is a valid username.
func (s *Service) Refused(who Actor, event string, err error, username string) error {
	if username == "" || !store.ValidUsername(username) {
		return s.fail(who, event, err)
	}
	return s.fail(who, event, err, zap.String("username", username))
}

// changed runs after every successful change.
func (s *Service) changed() {
	if s.Invalidate != nil {
		s.Invalidate()
	}
}
