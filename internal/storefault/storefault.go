// Package storefault is an account database that fails on demand, for the
// tests of what the gateway does when its database cannot serve a request:
// Store wraps a real *store.SQLStore and, for the operations chosen, returns
// an error of the kind asked for instead of calling it. The errors are the
// drivers' own, made for real on a throwaway database: SQLite's "database
// or disk is full" from a database at its size limit (DiskFull), a
// read-only database's refusal (ReadOnly), a closed store's (Closed).
//
// Only tests import it; it is not linked into the gateway.
package storefault

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/store"
)

// Store is a *store.SQLStore whose operations fail on demand. It has every
// method of the store that the gateway's packages use, so it stands in for
// it wherever they take an interface (selfservice.Accounts, store.Throttler,
// store.StateLedger, store.SessionEnder, admin.Store, gateway.Store).
type Store struct {
	*store.SQLStore

	mu    sync.Mutex
	fails map[string]error // operation (method name) -> its error; "" for all
	calls map[string]int   // operations refused, by name
}

// New wraps db.
func New(db *store.SQLStore) *Store {
	return &Store{SQLStore: db, fails: map[string]error{}, calls: map[string]int{}}
}

// Fail makes the named operations (method names, such as "Enroll" or
// "TakeAttempt") fail with err from now on; no names: every operation.
func (s *Store) Fail(err error, ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ops) == 0 {
		ops = []string{""}
	}
	for _, op := range ops {
		s.fails[op] = err
	}
}

// Heal makes every operation work again.
func (s *Store) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.fails)
}

// Refused returns how many times op was refused.
func (s *Store) Refused(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// fail returns op's error, if it is to fail.
func (s *Store) fail(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err, ok := s.fails[op]
	if !ok {
		err, ok = s.fails[""]
	}
	if ok {
		s.calls[op]++
		return fmt.Errorf("store: %s: %w", op, err)
	}
	return nil
}

// Accounts.

func (s *Store) CreateAccount(ctx context.Context, a *store.Account) error {
	if err := s.fail("CreateAccount"); err != nil {
		return err
	}
	return s.SQLStore.CreateAccount(ctx, a)
}

func (s *Store) AccountByUsername(ctx context.Context, username string) (*store.Account, error) {
	if err := s.fail("AccountByUsername"); err != nil {
		return nil, err
	}
	return s.SQLStore.AccountByUsername(ctx, username)
}

func (s *Store) AccountByEDIPI(ctx context.Context, edipi string) (*store.Account, error) {
	if err := s.fail("AccountByEDIPI"); err != nil {
		return nil, err
	}
	return s.SQLStore.AccountByEDIPI(ctx, edipi)
}

func (s *Store) AccountByFingerprint(ctx context.Context, fingerprint string) (*store.Account, error) {
	if err := s.fail("AccountByFingerprint"); err != nil {
		return nil, err
	}
	return s.SQLStore.AccountByFingerprint(ctx, fingerprint)
}

func (s *Store) TransitionStatus(ctx context.Context, username string, from, to store.Status) (*store.Account, error) {
	if err := s.fail("TransitionStatus"); err != nil {
		return nil, err
	}
	return s.SQLStore.TransitionStatus(ctx, username, from, to)
}

func (s *Store) SetStatus(ctx context.Context, username string, st store.Status) (*store.Account, error) {
	if err := s.fail("SetStatus"); err != nil {
		return nil, err
	}
	return s.SQLStore.SetStatus(ctx, username, st)
}

func (s *Store) LinkCard(ctx context.Context, accountID int64, c store.Card) error {
	if err := s.fail("LinkCard"); err != nil {
		return err
	}
	return s.SQLStore.LinkCard(ctx, accountID, c)
}

func (s *Store) UnlinkCard(ctx context.Context, username, fingerprint string) error {
	if err := s.fail("UnlinkCard"); err != nil {
		return err
	}
	return s.SQLStore.UnlinkCard(ctx, username, fingerprint)
}

func (s *Store) AutoLinkCard(ctx context.Context, accountID int64, c store.Card) error {
	if err := s.fail("AutoLinkCard"); err != nil {
		return err
	}
	return s.SQLStore.AutoLinkCard(ctx, accountID, c)
}

func (s *Store) TouchCard(ctx context.Context, fingerprint string, at time.Time) error {
	if err := s.fail("TouchCard"); err != nil {
		return err
	}
	return s.SQLStore.TouchCard(ctx, fingerprint, at)
}

func (s *Store) Enroll(ctx context.Context, e *store.Enrollment) (*store.Account, error) {
	if err := s.fail("Enroll"); err != nil {
		return nil, err
	}
	return s.SQLStore.Enroll(ctx, e)
}

func (s *Store) Credentials(ctx context.Context, accountID int64) (*store.Credentials, error) {
	if err := s.fail("Credentials"); err != nil {
		return nil, err
	}
	return s.SQLStore.Credentials(ctx, accountID)
}

func (s *Store) SetPassword(ctx context.Context, accountID int64, hash string, keepHistory int) error {
	if err := s.fail("SetPassword"); err != nil {
		return err
	}
	return s.SQLStore.SetPassword(ctx, accountID, hash, keepHistory)
}

func (s *Store) RehashPassword(ctx context.Context, accountID int64, old, new string) (bool, error) {
	if err := s.fail("RehashPassword"); err != nil {
		return false, err
	}
	return s.SQLStore.RehashPassword(ctx, accountID, old, new)
}

func (s *Store) SetAnswers(ctx context.Context, accountID int64, answers [3]store.Answer) error {
	if err := s.fail("SetAnswers"); err != nil {
		return err
	}
	return s.SQLStore.SetAnswers(ctx, accountID, answers)
}

func (s *Store) TakeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (store.LoginState, bool, error) {
	if err := s.fail("TakeLoginAttempt"); err != nil {
		return store.LoginState{}, false, err
	}
	return s.SQLStore.TakeLoginAttempt(ctx, accountID, now, window, maxFailures, lockFor)
}

func (s *Store) ReleaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (time.Time, error) {
	if err := s.fail("ReleaseLoginAttempt"); err != nil {
		return time.Time{}, err
	}
	return s.SQLStore.ReleaseLoginAttempt(ctx, accountID, now, ownLock)
}

func (s *Store) ReturnLoginAttempt(ctx context.Context, accountID int64, ownLock time.Time) error {
	if err := s.fail("ReturnLoginAttempt"); err != nil {
		return err
	}
	return s.SQLStore.ReturnLoginAttempt(ctx, accountID, ownLock)
}

func (s *Store) ResetLoginFailures(ctx context.Context, accountID int64) error {
	if err := s.fail("ResetLoginFailures"); err != nil {
		return err
	}
	return s.SQLStore.ResetLoginFailures(ctx, accountID)
}

func (s *Store) Unlock(ctx context.Context, accountID int64) error {
	if err := s.fail("Unlock"); err != nil {
		return err
	}
	return s.SQLStore.Unlock(ctx, accountID)
}

func (s *Store) AddGroups(ctx context.Context, username string, groups ...string) (*store.Account, error) {
	if err := s.fail("AddGroups"); err != nil {
		return nil, err
	}
	return s.SQLStore.AddGroups(ctx, username, groups...)
}

func (s *Store) RemoveGroups(ctx context.Context, username string, groups ...string) (*store.Account, error) {
	if err := s.fail("RemoveGroups"); err != nil {
		return nil, err
	}
	return s.SQLStore.RemoveGroups(ctx, username, groups...)
}

func (s *Store) ListGroups(ctx context.Context) ([]store.GroupCount, error) {
	if err := s.fail("ListGroups"); err != nil {
		return nil, err
	}
	return s.SQLStore.ListGroups(ctx)
}

func (s *Store) SearchAccounts(ctx context.Context, q store.AccountQuery) (store.AccountPage, error) {
	if err := s.fail("SearchAccounts"); err != nil {
		return store.AccountPage{}, err
	}
	return s.SQLStore.SearchAccounts(ctx, q)
}

func (s *Store) ImportAccounts(ctx context.Context, next func() (*store.Account, error), opts store.ImportOptions) (store.ImportReport, error) {
	if err := s.fail("ImportAccounts"); err != nil {
		return store.ImportReport{}, err
	}
	return s.SQLStore.ImportAccounts(ctx, next, opts)
}

func (s *Store) ExportAccounts(ctx context.Context, fn func(*store.Account) error) error {
	if err := s.fail("ExportAccounts"); err != nil {
		return err
	}
	return s.SQLStore.ExportAccounts(ctx, fn)
}

// Attempt counts (store.Throttler) and used states (store.StateLedger).

func (s *Store) TakeAttempt(ctx context.Context, name string, now time.Time, window time.Duration, max int) (bool, error) {
	if err := s.fail("TakeAttempt"); err != nil {
		return false, err
	}
	return s.SQLStore.TakeAttempt(ctx, name, now, window, max)
}

func (s *Store) RefundAttempt(ctx context.Context, name string) error {
	if err := s.fail("RefundAttempt"); err != nil {
		return err
	}
	return s.SQLStore.RefundAttempt(ctx, name)
}

func (s *Store) Attempts(ctx context.Context, name string, now time.Time, window time.Duration) (int, time.Time, error) {
	if err := s.fail("Attempts"); err != nil {
		return 0, time.Time{}, err
	}
	return s.SQLStore.Attempts(ctx, name, now, window)
}

func (s *Store) UseState(ctx context.Context, id string, expires time.Time) (bool, error) {
	if err := s.fail("UseState"); err != nil {
		return false, err
	}
	return s.SQLStore.UseState(ctx, id, expires)
}

func (s *Store) UnuseState(ctx context.Context, id string) error {
	if err := s.fail("UnuseState"); err != nil {
		return err
	}
	return s.SQLStore.UnuseState(ctx, id)
}

// Password sessions (store.SessionEnder).

func (s *Store) EndSession(ctx context.Context, id string, expires time.Time) error {
	if err := s.fail("EndSession"); err != nil {
		return err
	}
	return s.SQLStore.EndSession(ctx, id, expires)
}

func (s *Store) SessionEnded(ctx context.Context, id string) (bool, error) {
	if err := s.fail("SessionEnded"); err != nil {
		return false, err
	}
	return s.SQLStore.SessionEnded(ctx, id)
}

func (s *Store) StartSession(ctx context.Context, ls store.LiveSession, limit int, now time.Time) ([]store.LiveSession, error) {
	if err := s.fail("StartSession"); err != nil {
		return nil, err
	}
	return s.SQLStore.StartSession(ctx, ls, limit, now)
}

// Real errors.

// DiskFull returns the error SQLite gives a write on a full disk
// (SQLITE_FULL, "database or disk is full"), from a throwaway database
// capped at its size (PRAGMA max_page_count), as a full disk caps it.
func DiskFull(t testing.TB) error {
	t.Helper()
	db := throwaway(t, "")
	ctx := context.Background()
	var pages int
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES (randomblob(1 << 20))`)
	return want(t, err, store.CauseDiskFull)
}

// ReadOnly returns the error SQLite gives a write on a read-only database
// (SQLITE_READONLY), as on a read-only file system.
func ReadOnly(t testing.TB) error {
	t.Helper()
	db := throwaway(t, "query_only(1)")
	_, err := db.ExecContext(context.Background(), `INSERT INTO t (v) VALUES (x'00')`)
	return want(t, err, store.CauseReadOnly)
}

// Closed returns the error of a store used after it was closed, which
// cannot be reached.
func Closed(t testing.TB) error {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = db.AccountByUsername(context.Background(), "john.q.doe")
	return want(t, err, store.CauseUnreachable)
}

// throwaway opens a one-connection SQLite database with one table, t,
// with the given connection pragma.
func throwaway(t testing.TB, pragma string) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fault.db")
	setup, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(`CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	dsn := "file:" + path
	if pragma != "" {
		dsn += "?_pragma=" + pragma
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// want checks that err is the failure asked for.
func want(t testing.TB, err error, cause string) error {
	t.Helper()
	if store.Cause(err) != cause {
		t.Fatalf("storefault: wanted a %s error, got %v", cause, err)
	}
	return err
}
