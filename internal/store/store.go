package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Store is cacgate's account database.
type Store interface {
	// CreateAccount inserts a and a.Cards in one transaction: either all of
	// them are stored or none is. On success it sets a.ID, the timestamps
	// and each card's AccountID and CreatedAt. A duplicate username, DoD ID
	// or card fails with ErrUsernameTaken, ErrEDIPITaken or ErrCardTaken.
	CreateAccount(ctx context.Context, a *Account) error

	// AccountByUsername, AccountByEDIPI and AccountByFingerprint return the
	// account with its cards, or ErrNotFound.
	AccountByUsername(ctx context.Context, username string) (*Account, error)
	AccountByEDIPI(ctx context.Context, edipi string) (*Account, error)
	// AccountByKey returns the account of a credential kind and key (for
	// KindCAC the same as AccountByEDIPI).
	AccountByKey(ctx context.Context, kind, key string) (*Account, error)
	AccountByFingerprint(ctx context.Context, fingerprint string) (*Account, error)

	// ListAccounts returns accounts with their cards, ordered by username,
	// skipping offset of them and returning at most limit (which is capped
	// at MaxListLimit; zero or less means MaxListLimit).
	ListAccounts(ctx context.Context, offset, limit int) ([]*Account, error)

	// ListAccountsByStatus is ListAccounts for the accounts of one status,
	// such as those pending approval.
	ListAccountsByStatus(ctx context.Context, status Status, offset, limit int) ([]*Account, error)

	// TransitionStatus changes an account's status from one value to
	// another atomically (approving a pending account, say): ErrNotFound
	// if there is no such account, ErrStatusConflict if its status is not
	// from.
	TransitionStatus(ctx context.Context, username string, from, to Status) (*Account, error)

	// SetStatus changes an account's status and returns the account as
	// updated, or ErrNotFound.
	SetStatus(ctx context.Context, username string, s Status) (*Account, error)

	// LinkCard adds a card to an account. It fails with ErrCardTaken if the
	// card is registered to any account, this one included, and with
	// ErrNotFound if there is no such account.
	LinkCard(ctx context.Context, accountID int64, c Card) error

	// UnlinkCard removes a card from the named account, or fails with
	// ErrNotFound if that account has no such card.
	UnlinkCard(ctx context.Context, username, fingerprint string) error

	// AutoLinkCard is LinkCard for links nobody asked for explicitly (the
	// gateway's link_by_edipi): it fails with ErrCardCleared, atomically,
	// if the card's registration was cleared before.
	AutoLinkCard(ctx context.Context, accountID int64, c Card) error

	// TouchCard records a sign-in with the card at the given time, on the
	// card and on its account, or fails with ErrNotFound. Neither time
	// moves backwards, so a late report from a slow node is harmless.
	TouchCard(ctx context.Context, fingerprint string, at time.Time) error

	// Enroll creates an account for a person registering a card: the
	// account, its card, password and security answers in one
	// transaction, so that an error leaves nothing behind. The username is
	// the first free one of e.UsernameBase, base1, base2, ... (the DoD
	// convention, "john.b.smith13"), decided by the database's UNIQUE
	// constraint, so concurrent enrollments of namesakes on any number of
	// nodes all succeed with distinct usernames. A DoD ID or card that is
	// already registered fails with ErrEDIPITaken or ErrCardTaken, and a
	// question answered twice with ErrQuestionRepeated. Enroll returns the
	// account as stored and leaves e unchanged.
	Enroll(ctx context.Context, e *Enrollment) (*Account, error)

	// Credentials returns an account's password hash, security answers and
	// password history, read together, or ErrNotFound.
	Credentials(ctx context.Context, accountID int64) (*Credentials, error)

	// SetPassword replaces an account's password hash and records when.
	// The hash it replaces, if any, becomes the newest of the password
	// history, which is then cut to its keepHistory newest entries; all
	// in one transaction. It fails with ErrNotFound if there is no such
	// account.
	SetPassword(ctx context.Context, accountID int64, hash string, keepHistory int) error

	// RehashPassword replaces an account's password hash old with new, a
	// hash of the same password made with the current algorithm or
	// parameters, if old is still the current hash. It is not a password
	// change: the history and the time of the last change stay as they
	// are. It reports whether it replaced the hash; false means the
	// password was changed (or the account removed) meanwhile, and
	// nothing was written.
	RehashPassword(ctx context.Context, accountID int64, old, new string) (bool, error)

	// SetAnswers replaces an account's three security answers at once. It
	// fails with ErrQuestionRepeated, changing nothing, if two answers
	// share a question, and with ErrNotFound if there is no such account.
	SetAnswers(ctx context.Context, accountID int64, answers [3]Answer) error

	// RecordLoginFailure counts a failed password sign-in at now, in one
	// atomic step that every node sees: the count restarts when the first
	// failure counted is window or more before now, or a lock has
	// expired; reaching maxFailures locks the account until now+lockFor.
	// Failures while the account is locked are counted but do not extend
	// the lock. It returns the state after this failure.
	RecordLoginFailure(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (LoginState, error)

	// TakeLoginAttempt counts a password attempt as a failure before the
	// password is verified, so that however many attempts arrive at once,
	// on any number of nodes, at most maxFailures are verified in a
	// window. It is RecordLoginFailure for an account that is not locked,
	// in one atomic step: allowed is true, and the state is the one after
	// this failure, locked if it reached maxFailures. A locked account is
	// refused: allowed is false, nothing is counted, and the state says
	// until when. The attempt of a password that turns out right is taken
	// back with ReleaseLoginAttempt; a wrong one stays counted. It fails
	// with ErrNotFound if there is no such account.
	TakeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (st LoginState, allowed bool, err error)

	// ReleaseLoginAttempt takes back an attempt TakeLoginAttempt allowed
	// whose password was right: in one atomic step it clears the count of
	// failed sign-ins, as ResetLoginFailures does, and lifts the lock that
	// attempt set, ownLock (the LockedUntil its TakeLoginAttempt returned;
	// zero if it set none). It returns the end of a lock still in force at
	// now, which other attempts set meanwhile (the right password then
	// must not be acted on), or the zero time. It fails with ErrNotFound
	// if there is no such account.
	ReleaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (lockedUntil time.Time, err error)

	// ReturnLoginAttempt takes back an attempt TakeLoginAttempt allowed
	// whose secret was never checked (the hasher turned it away): one
	// failure less, and the lock that attempt set, ownLock, lifted; the
	// other failures stay counted. It fails with ErrNotFound if there is
	// no such account.
	ReturnLoginAttempt(ctx context.Context, accountID int64, ownLock time.Time) error

	// ResetLoginFailures clears the count of failed sign-ins, as after a
	// successful one. It does not lift a lock: only time or Unlock does.
	ResetLoginFailures(ctx context.Context, accountID int64) error

	// LoginState returns an account's sign-in state at now under the
	// same rules as RecordLoginFailure, or ErrNotFound.
	LoginState(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int) (LoginState, error)

	// Unlock lifts an account's lock and clears its failed sign-ins, as an
	// administrator would.
	Unlock(ctx context.Context, accountID int64) error

	// AddGroups and RemoveGroups put the named account in groups or take
	// it out of them, in one atomic read-modify-write, and return the
	// account as updated: concurrent edits on any number of nodes all
	// stick. Adding a group the account is in, or removing one it is not
	// in, changes nothing. A name that is not a ValidGroupName, or more
	// than MaxGroupsPerAccount groups, fails with ErrInvalidGroup; an
	// unknown username with ErrNotFound.
	AddGroups(ctx context.Context, username string, groups ...string) (*Account, error)
	RemoveGroups(ctx context.Context, username string, groups ...string) (*Account, error)

	// ListGroups returns every group some account is in, with how many
	// accounts are in it, ordered by name.
	ListGroups(ctx context.Context) ([]GroupCount, error)

	// SearchAccounts returns a page of the accounts matching q, ordered by
	// username, with their cards and groups, and how many match in all.
	// An over-long or malformed query fails with ErrInvalidQuery.
	SearchAccounts(ctx context.Context, q AccountQuery) (AccountPage, error)

	// ImportAccounts stores the accounts next yields, with their cards,
	// categories and groups but no passwords, until next returns io.EOF:
	// all in one transaction, so a failed import stores nothing. Each
	// record is checked (ValidUsername, ValidEDIPI, status, text bounds,
	// ValidFingerprint, ValidGroupName) and an empty status means
	// StatusActive; a bad record fails the import with an *ImportError
	// naming its number. A taken username, DoD ID or card fails it the
	// same way under ImportFail, or skips the record under ImportSkip.
	// Accounts are stored with the import's time as CreatedAt; their
	// LastLoginAt and their cards' LastUsedAt are kept.
	ImportAccounts(ctx context.Context, next func() (*Account, error), opts ImportOptions) (ImportReport, error)

	// ExportAccounts calls fn with every account, with its cards and
	// groups, in username order, reading a page at a time so that memory
	// does not grow with the number of accounts. Each page is its own
	// read: every account that exists throughout the export is passed
	// exactly once, while one created or deleted meanwhile may or may not
	// be. An error from fn stops the export and is returned as is.
	ExportAccounts(ctx context.Context, fn func(*Account) error) error

	// EnsureSecret returns the secret stored under name, first storing the
	// output of generate if there is none. Processes racing to create the
	// same secret all end up with the one value that was stored first.
	EnsureSecret(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error)

	Close() error
}

// MaxListLimit is the most accounts one ListAccounts call returns.
const MaxListLimit = 1000

// SQLStore is a Store backed by a database/sql database.
type SQLStore struct {
	// writer runs every write. For SQLite it holds a single connection:
	// the database admits one writer at a time, and queueing writers in
	// database/sql, which honours ctx, beats having them poll the file
	// lock. Other processes on the same file still wait for one another
	// through busy_timeout.
	writer *sql.DB
	// reader runs queries outside write transactions. For SQLite it is a
	// separate, read-only pool that WAL lets read while the writer writes;
	// a server database can use the writer's pool for both.
	reader *sql.DB
	// readStmts runs the reader's queries as prepared statements.
	readStmts *stmtCache
	dialect   dialect
	observer  observerBox
}

var _ Store = (*SQLStore)(nil)

// Close closes the store's connection pools.
func (s *SQLStore) Close() error {
	err := s.readStmts.Close()
	if s.reader == s.writer {
		return errors.Join(err, s.writer.Close())
	}
	return errors.Join(err, s.reader.Close(), s.writer.Close())
}

// now is the store's timestamp for a write. The schema keeps whole seconds,
// so the value is truncated to match what reading it back will give.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Second)
}

// reads returns an executor for queries that need no transaction.
func (s *SQLStore) reads() executor {
	return executor{q: s.readStmts, rebind: s.dialect.rebind}
}

// writes returns an executor for single-statement writes, which the
// database makes atomic on their own.
func (s *SQLStore) writes() executor {
	return executor{q: s.writer, rebind: s.dialect.rebind}
}

// inWriteTx runs fn in a write transaction, committing if fn succeeds and
// rolling back if it fails.
func (s *SQLStore) inWriteTx(ctx context.Context, fn func(ex executor) error) error {
	return inTx(ctx, s.writer, s.dialect, fn)
}

// txBeginner is a *sql.DB, or a *sql.Conn when a transaction must run on a
// connection prepared for it.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func inTx(ctx context.Context, db txBeginner, d dialect, fn func(ex executor) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(executor{q: tx, rebind: d.rebind}); err != nil {
		// fn's error is the one worth reporting; a failed rollback only
		// means the transaction is already gone.
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
