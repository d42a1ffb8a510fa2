-- The OpenID Provider's state, shared by every node (issue 17).
--
-- oidc_clients are the relying parties registered through the admin API
-- (clients in the Caddyfile live in the config, not here). config is the
-- client's JSON (secret hashes only, never a secret).
CREATE TABLE oidc_clients (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    config     TEXT    NOT NULL CHECK (length(config) <= 65536),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- oidc_codes are completed authorization requests and their codes. The code
-- itself is never stored, only its SHA-256 (code_hash). The one exchange
-- that sets used_at wins, on any number of nodes; the row stays until it
-- expires so that a replayed code is recognised (and the tokens it gave
-- are revoked) rather than merely unknown.
CREATE TABLE oidc_codes (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    code_hash  TEXT    UNIQUE CHECK (code_hash IS NULL OR length(code_hash) = 64),
    client_id  TEXT    NOT NULL CHECK (length(client_id) BETWEEN 1 AND 128),
    account_id INTEGER NOT NULL,
    request    TEXT    NOT NULL CHECK (length(request) <= 65536),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX oidc_codes_expires_at ON oidc_codes (expires_at);

-- oidc_refresh_tokens: id is the SHA-256 of the token. grant_id names the
-- sign-in (authorization request) the token descends from: a refresh
-- replaces the token with a new one of the same grant, and a token
-- presented again after that revokes the whole grant. session_id is the
-- password session the sign-in belonged to (NULL for a card), fingerprint
-- the card's: a refresh is refused once either is gone.
CREATE TABLE oidc_refresh_tokens (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 64),
    grant_id    TEXT    NOT NULL CHECK (length(grant_id) BETWEEN 1 AND 64),
    client_id   TEXT    NOT NULL CHECK (length(client_id) BETWEEN 1 AND 128),
    account_id  INTEGER NOT NULL,
    username    TEXT    NOT NULL,
    session_id  TEXT,
    fingerprint TEXT,
    request     TEXT    NOT NULL CHECK (length(request) <= 65536),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);
CREATE INDEX oidc_refresh_tokens_account ON oidc_refresh_tokens (account_id, client_id);
CREATE INDEX oidc_refresh_tokens_expires_at ON oidc_refresh_tokens (expires_at);
