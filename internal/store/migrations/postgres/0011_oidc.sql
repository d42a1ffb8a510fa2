-- The OpenID Provider's state. See the SQLite migration of the same number:
-- the tables are the same, with Unix-seconds columns as BIGINT.
CREATE TABLE oidc_clients (
    id         TEXT    COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    config     TEXT    NOT NULL CHECK (length(config) <= 65536),
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE oidc_codes (
    id         TEXT    COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    code_hash  TEXT    COLLATE "C" UNIQUE CHECK (code_hash IS NULL OR length(code_hash) = 64),
    client_id  TEXT    NOT NULL CHECK (length(client_id) BETWEEN 1 AND 128),
    account_id BIGINT  NOT NULL,
    request    TEXT    NOT NULL CHECK (length(request) <= 65536),
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);

CREATE INDEX oidc_codes_expires_at ON oidc_codes (expires_at);

CREATE TABLE oidc_refresh_tokens (
    id          TEXT    COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(id) = 64),
    grant_id    TEXT    COLLATE "C" NOT NULL CHECK (length(grant_id) BETWEEN 1 AND 64),
    client_id   TEXT    NOT NULL CHECK (length(client_id) BETWEEN 1 AND 128),
    account_id  BIGINT  NOT NULL,
    username    TEXT    NOT NULL,
    session_id  TEXT,
    fingerprint TEXT,
    request     TEXT    NOT NULL CHECK (length(request) <= 65536),
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);

CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);
CREATE INDEX oidc_refresh_tokens_account ON oidc_refresh_tokens (account_id, client_id);
CREATE INDEX oidc_refresh_tokens_expires_at ON oidc_refresh_tokens (expires_at);
