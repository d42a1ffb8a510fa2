package admin

import (
	"context"
	"io"
)

// Backend is what the accounts commands of the CLI run against: the
// Service itself on the account database (direct mode), or a Client of a
// running server's admin API (API mode). Both give the same answers and
// the same errors (*Error with the admin API's status), so the commands
// and their output do not care which.
//
// who is the actor the Service audits a change under; a Client sends no
// actor, as the server audits its requests with its own view of the caller
// ("local" and the address, or the client certificate's subject).
type Backend interface {
	Search(ctx context.Context, q AccountSearch) (AccountPage, error)
	Show(ctx context.Context, username string) (Account, error)
	Groups(ctx context.Context) ([]Group, error)

	Create(ctx context.Context, who Actor, req NewAccountRequest) (Account, error)
	Approve(ctx context.Context, who Actor, username string) (Account, error)
	Disable(ctx context.Context, who Actor, username string) (Account, error)
	Enable(ctx context.Context, who Actor, username string) (Account, error)
	Unlock(ctx context.Context, who Actor, username string) (Account, error)
	AddGroups(ctx context.Context, who Actor, username string, groups []string) (Account, error)
	RemoveGroups(ctx context.Context, who Actor, username string, groups []string) (Account, error)
	LinkCard(ctx context.Context, who Actor, username, certPEM string) (Account, error)
	UnlinkCard(ctx context.Context, who Actor, username, fingerprint string) error
	DisableBecause(ctx context.Context, who Actor, username, reason string) (Account, error)
	EnableBecause(ctx context.Context, who Actor, username, reason string) (Account, error)
	RequirePasswordReset(ctx context.Context, who Actor, username string) (Account, error)
	Events(ctx context.Context, username string, limit int, names ...string) ([]Event, error)

	Announcements(ctx context.Context) ([]Announcement, error)
	CreateAnnouncement(ctx context.Context, who Actor, req NewAnnouncementRequest) (Announcement, error)
	DeleteAnnouncement(ctx context.Context, who Actor, id int64) error

	// Utility accounts and the non-person certificates registered to them.
	CreateUtility(ctx context.Context, who Actor, req NewUtilityRequest) (Account, error)
	RenewUtility(ctx context.Context, who Actor, username string, req RenewUtilityRequest) (Account, error)
	RegisterNPE(ctx context.Context, who Actor, username string, req NPERequest) ([]NPECert, error)
	UnregisterNPE(ctx context.Context, who Actor, username string, req NPERequest) error
	NPECerts(ctx context.Context, username string) ([]NPECert, error)

	// Import stores the accounts of a CSV file, all or nothing; source
	// names the input in the audit trail (a Client's server records
	// "admin API").
	Import(ctx context.Context, who Actor, in io.Reader, onConflict, source string) (ImportReport, error)
	// Export writes every account as CSV to w and returns how many.
	Export(ctx context.Context, who Actor, w io.Writer) (int, error)

	// OIDCClients, PutOIDCClient and DeleteOIDCClient manage the OpenID
	// Connect relying parties registered in the account database.
	OIDCClients(ctx context.Context) ([]OIDCClient, error)
	PutOIDCClient(ctx context.Context, who Actor, req OIDCClientRequest) (OIDCClient, error)
	DeleteOIDCClient(ctx context.Context, who Actor, id string) error
}

var (
	_ Backend = (*Service)(nil)
	_ Backend = (*Client)(nil)
)
