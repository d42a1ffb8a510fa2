package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The OpenID Provider's shared state (migration 0011): relying parties
// registered through the admin API, completed authorization requests with
// their single-use codes, and refresh tokens. Every node reads and writes
// the same rows, so a code is exchanged once across a cluster and a
// refresh is judged against the account as it is now, wherever it lands.

// ErrOIDCReplayed is returned for a code or refresh token that was already
// used: the caller revokes what it gave (RevokeOIDCGrant).
var ErrOIDCReplayed = errors.New("already used")

// OIDCClientRecord is a relying party registered through the admin API.
type OIDCClientRecord struct {
	ID      string
	Config  []byte // the client's JSON, as the provider package defines it
	Created time.Time
	Updated time.Time
}

// OIDCRequest is a completed authorization request: who signed in, for
// which client, and the request as the provider package encodes it.
type OIDCRequest struct {
	ID        string
	ClientID  string
	AccountID int64
	Request   []byte
	Expires   time.Time
}

// OIDCRefresh is a refresh token's record; ID is the token's SHA-256 (hex).
type OIDCRefresh struct {
	ID          string
	GrantID     string
	ClientID    string
	AccountID   int64
	Username    string
	SessionID   string // password session; "" for a card
	Fingerprint string // card; "" for a password session
	Request     []byte
	Created     time.Time
	Expires     time.Time
	Used        bool
}

// Bounds of the provider's keys, as the schema checks them.
const (
	MaxOIDCClientIDLen = 128
	MaxOIDCConfigLen   = 65536
	oidcHashLen        = 64
)

const (
	upsertOIDCClientSQL = `
INSERT INTO oidc_clients (id, config, created_at, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`
	oidcClientSQL        = `SELECT id, config, created_at, updated_at FROM oidc_clients WHERE id = ?`
	listOIDCClientsSQL   = `SELECT id, config, created_at, updated_at FROM oidc_clients ORDER BY id`
	deleteOIDCClientSQL  = `DELETE FROM oidc_clients WHERE id = ?`
	deleteClientTokenSQL = `DELETE FROM oidc_refresh_tokens WHERE client_id = ?`

	saveOIDCRequestSQL = `
INSERT INTO oidc_codes (id, client_id, account_id, request, expires_at) VALUES (?, ?, ?, ?, ?)`
	setOIDCCodeSQL     = `UPDATE oidc_codes SET code_hash = ? WHERE id = ? AND code_hash IS NULL`
	oidcRequestByIDSQL = `SELECT id, client_id, account_id, request, expires_at FROM oidc_codes WHERE id = ?`
	useOIDCCodeSQL     = `
UPDATE oidc_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at >= ?`
	oidcCodeSQL = `
SELECT id, client_id, account_id, request, expires_at, used_at FROM oidc_codes WHERE code_hash = ?`
	pruneOIDCCodesSQL = `DELETE FROM oidc_codes WHERE expires_at < ?`

	insertOIDCRefreshSQL = `
INSERT INTO oidc_refresh_tokens (id, grant_id, client_id, account_id, username, session_id, fingerprint, request, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	oidcRefreshSQL = `
SELECT id, grant_id, client_id, account_id, username, session_id, fingerprint, request, created_at, expires_at, used_at
FROM oidc_refresh_tokens WHERE id = ?`
	useOIDCRefreshSQL = `
UPDATE oidc_refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at >= ?`
	revokeOIDCGrantSQL     = `DELETE FROM oidc_refresh_tokens WHERE grant_id = ?`
	revokeOIDCAccountSQL   = `DELETE FROM oidc_refresh_tokens WHERE account_id = ? AND client_id = ?`
	deleteOIDCRefreshSQL   = `DELETE FROM oidc_refresh_tokens WHERE id = ?`
	pruneOIDCRefreshSQL    = `DELETE FROM oidc_refresh_tokens WHERE expires_at < ?`
	countOIDCAccountRefSQL = `SELECT COUNT(*) FROM oidc_refresh_tokens WHERE account_id = ? AND used_at IS NULL`
)

func checkOIDCClientID(id string) error {
	if id == "" || len(id) > MaxOIDCClientIDLen || !storableKey(id) {
		return fmt.Errorf("client ID must be 1 to %d bytes of text", MaxOIDCClientIDLen)
	}
	return nil
}

func checkOIDCHash(h string) error {
	if len(h) != oidcHashLen {
		return fmt.Errorf("token hash must be %d hex digits", oidcHashLen)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("token hash must be %d hex digits", oidcHashLen)
		}
	}
	return nil
}

// PutOIDCClient stores (creates or replaces) a registered client.
func (s *SQLStore) PutOIDCClient(ctx context.Context, id string, config []byte) error {
	if err := checkOIDCClientID(id); err != nil {
		return fmt.Errorf("store: put OIDC client: %w", err)
	}
	if len(config) == 0 || len(config) > MaxOIDCConfigLen {
		return fmt.Errorf("store: put OIDC client: config must be 1 to %d bytes", MaxOIDCConfigLen)
	}
	t := now().Unix()
	if _, err := s.writes().exec(ctx, upsertOIDCClientSQL, id, string(config), t, t); err != nil {
		return fmt.Errorf("store: put OIDC client: %w", s.dialect.translate(err))
	}
	return nil
}

// OIDCClient returns a registered client, or ErrNotFound.
func (s *SQLStore) OIDCClient(ctx context.Context, id string) (*OIDCClientRecord, error) {
	if checkOIDCClientID(id) != nil {
		return nil, ErrNotFound
	}
	c, err := scanOIDCClient(s.reads().queryRow(ctx, oidcClientSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: OIDC client: %w", s.dialect.translate(err))
	}
	return c, nil
}

func scanOIDCClient(row rowScanner) (*OIDCClientRecord, error) {
	var c OIDCClientRecord
	var config string
	var created, updated int64
	if err := row.Scan(&c.ID, &config, &created, &updated); err != nil {
		return nil, err
	}
	c.Config, c.Created, c.Updated = []byte(config), time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return &c, nil
}

// ListOIDCClients returns every registered client, ordered by ID.
func (s *SQLStore) ListOIDCClients(ctx context.Context) ([]OIDCClientRecord, error) {
	rows, err := s.reads().query(ctx, listOIDCClientsSQL)
	if err != nil {
		return nil, fmt.Errorf("store: list OIDC clients: %w", s.dialect.translate(err))
	}
	defer rows.Close()
	var out []OIDCClientRecord
	for rows.Next() {
		c, err := scanOIDCClient(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list OIDC clients: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list OIDC clients: %w", s.dialect.translate(err))
	}
	return out, nil
}

// DeleteOIDCClient removes a registered client and its refresh tokens, or
// fails with ErrNotFound.
func (s *SQLStore) DeleteOIDCClient(ctx context.Context, id string) error {
	if checkOIDCClientID(id) != nil {
		return ErrNotFound
	}
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, deleteOIDCClientSQL, id); err != nil {
			return err
		}
		_, err := ex.exec(ctx, deleteClientTokenSQL, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete OIDC client: %w", s.dialect.translate(err))
	}
	return nil
}

// SaveOIDCRequest stores a completed authorization request (no code yet).
func (s *SQLStore) SaveOIDCRequest(ctx context.Context, r OIDCRequest) error {
	if err := checkStateID(r.ID); err != nil {
		return fmt.Errorf("store: save OIDC request: %w", err)
	}
	if err := checkOIDCClientID(r.ClientID); err != nil {
		return fmt.Errorf("store: save OIDC request: %w", err)
	}
	if len(r.Request) > MaxOIDCConfigLen {
		return fmt.Errorf("store: save OIDC request: request is over %d bytes", MaxOIDCConfigLen)
	}
	if _, err := s.writes().exec(ctx, saveOIDCRequestSQL, r.ID, r.ClientID, r.AccountID, string(r.Request), r.Expires.Unix()); err != nil {
		return fmt.Errorf("store: save OIDC request: %w", s.dialect.translate(err))
	}
	return nil
}

// SetOIDCCode records the hash of the code issued for request id. A
// request gets one code: a second fails with ErrNotFound.
func (s *SQLStore) SetOIDCCode(ctx context.Context, id, codeHash string) error {
	if err := checkOIDCHash(codeHash); err != nil {
		return fmt.Errorf("store: set OIDC code: %w", err)
	}
	if err := s.writes().execOne(ctx, setOIDCCodeSQL, codeHash, id); err != nil {
		return fmt.Errorf("store: set OIDC code: %w", s.dialect.translate(err))
	}
	return nil
}

// OIDCRequestByID returns a stored authorization request, or ErrNotFound.
func (s *SQLStore) OIDCRequestByID(ctx context.Context, id string) (*OIDCRequest, error) {
	if checkStateID(id) != nil {
		return nil, ErrNotFound
	}
	var r OIDCRequest
	var req string
	var exp int64
	err := s.reads().queryRow(ctx, oidcRequestByIDSQL, id).Scan(&r.ID, &r.ClientID, &r.AccountID, &req, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: OIDC request: %w", s.dialect.translate(err))
	}
	r.Request, r.Expires = []byte(req), time.Unix(exp, 0).UTC()
	return &r, nil
}

// UseOIDCCode spends the code whose hash is codeHash and returns its
// request. Of any number of exchanges of one code, on any number of
// nodes, exactly one succeeds: the others get ErrOIDCReplayed (with the
// request, so that the caller can revoke what the code gave). An unknown
// or expired code is ErrNotFound.
func (s *SQLStore) UseOIDCCode(ctx context.Context, codeHash string, at time.Time) (*OIDCRequest, error) {
	if checkOIDCHash(codeHash) != nil {
		return nil, ErrNotFound
	}
	res, err := s.writes().exec(ctx, useOIDCCodeSQL, at.Unix(), codeHash, at.Unix())
	if err != nil {
		return nil, fmt.Errorf("store: use OIDC code: %w", s.dialect.translate(err))
	}
	won, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("store: use OIDC code: %w", err)
	}
	var r OIDCRequest
	var req string
	var exp int64
	var used sql.NullInt64
	// Read from the writer: the reader of SQLite may not see the update yet.
	err = s.writes().queryRow(ctx, oidcCodeSQL, codeHash).Scan(&r.ID, &r.ClientID, &r.AccountID, &req, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: use OIDC code: %w", s.dialect.translate(err))
	}
	r.Request, r.Expires = []byte(req), time.Unix(exp, 0).UTC()
	switch {
	case won == 1:
		return &r, nil
	case used.Valid:
		return &r, ErrOIDCReplayed
	default:
		return nil, ErrNotFound // expired
	}
}

// InsertOIDCRefresh stores a new refresh token.
func (s *SQLStore) InsertOIDCRefresh(ctx context.Context, t OIDCRefresh) error {
	if err := s.insertOIDCRefresh(ctx, s.writes(), t); err != nil {
		return fmt.Errorf("store: insert refresh token: %w", s.dialect.translate(err))
	}
	return nil
}

func (s *SQLStore) insertOIDCRefresh(ctx context.Context, ex executor, t OIDCRefresh) error {
	if err := checkOIDCHash(t.ID); err != nil {
		return err
	}
	if err := checkOIDCClientID(t.ClientID); err != nil {
		return err
	}
	if err := checkStateID(t.GrantID); err != nil {
		return err
	}
	_, err := ex.exec(ctx, insertOIDCRefreshSQL, t.ID, t.GrantID, t.ClientID, t.AccountID, t.Username,
		nullString(t.SessionID), nullString(t.Fingerprint), string(t.Request), t.Created.Unix(), t.Expires.Unix())
	return err
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// OIDCRefreshToken returns a refresh token's record (Used set if it was
// replaced already), or ErrNotFound.
func (s *SQLStore) OIDCRefreshToken(ctx context.Context, id string) (*OIDCRefresh, error) {
	if checkOIDCHash(id) != nil {
		return nil, ErrNotFound
	}
	var t OIDCRefresh
	var session, fp sql.NullString
	var req string
	var created, exp int64
	var used sql.NullInt64
	err := s.writes().queryRow(ctx, oidcRefreshSQL, id).Scan(&t.ID, &t.GrantID, &t.ClientID, &t.AccountID, &t.Username,
		&session, &fp, &req, &created, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: refresh token: %w", s.dialect.translate(err))
	}
	t.SessionID, t.Fingerprint, t.Request = session.String, fp.String, []byte(req)
	t.Created, t.Expires, t.Used = time.Unix(created, 0).UTC(), time.Unix(exp, 0).UTC(), used.Valid
	return &t, nil
}

// RotateOIDCRefresh replaces refresh token old by next in one transaction:
// of any number of concurrent refreshes with old, on any number of nodes,
// exactly one succeeds; the others get ErrOIDCReplayed and store nothing.
func (s *SQLStore) RotateOIDCRefresh(ctx context.Context, old string, next OIDCRefresh, at time.Time) error {
	if checkOIDCHash(old) != nil {
		return ErrNotFound
	}
	err := s.inWriteTx(ctx, func(ex executor) error {
		res, err := ex.exec(ctx, useOIDCRefreshSQL, at.Unix(), old, at.Unix())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return ErrOIDCReplayed
		}
		return s.insertOIDCRefresh(ctx, ex, next)
	})
	if errors.Is(err, ErrOIDCReplayed) {
		return err
	}
	if err != nil {
		return fmt.Errorf("store: rotate refresh token: %w", s.dialect.translate(err))
	}
	return nil
}

// RevokeOIDCGrant deletes every refresh token of a grant (a sign-in), and
// returns how many it deleted.
func (s *SQLStore) RevokeOIDCGrant(ctx context.Context, grantID string) (int64, error) {
	return s.deleteCount(ctx, "revoke grant", revokeOIDCGrantSQL, grantID)
}

// RevokeOIDCAccountClient deletes an account's refresh tokens for one
// client (RP-initiated logout), and returns how many it deleted.
func (s *SQLStore) RevokeOIDCAccountClient(ctx context.Context, accountID int64, clientID string) (int64, error) {
	return s.deleteCount(ctx, "revoke account's tokens", revokeOIDCAccountSQL, accountID, clientID)
}

// DeleteOIDCRefresh deletes one refresh token (the revocation endpoint).
func (s *SQLStore) DeleteOIDCRefresh(ctx context.Context, id string) (int64, error) {
	if checkOIDCHash(id) != nil {
		return 0, nil
	}
	return s.deleteCount(ctx, "delete refresh token", deleteOIDCRefreshSQL, id)
}

// CountOIDCRefresh returns how many live refresh tokens an account has.
func (s *SQLStore) CountOIDCRefresh(ctx context.Context, accountID int64) (int64, error) {
	var n int64
	if err := s.writes().queryRow(ctx, countOIDCAccountRefSQL, accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count refresh tokens: %w", s.dialect.translate(err))
	}
	return n, nil
}

// PruneOIDC deletes codes and refresh tokens that expired before before,
// and returns how many rows it deleted.
func (s *SQLStore) PruneOIDC(ctx context.Context, before time.Time) (int64, error) {
	a, err := s.deleteCount(ctx, "prune codes", pruneOIDCCodesSQL, before.Unix())
	if err != nil {
		return 0, err
	}
	b, err := s.deleteCount(ctx, "prune refresh tokens", pruneOIDCRefreshSQL, before.Unix())
	return a + b, err
}

func (s *SQLStore) deleteCount(ctx context.Context, what, query string, args ...any) (int64, error) {
	res, err := s.writes().exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("store: %s: %w", what, s.dialect.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: %s: %w", what, err)
	}
	return n, nil
}
