-- Password sessions that are live, recorded only where a site limits how
-- many one person may have at once. See the SQLite migration of the same
-- number; the table is the same, with BIGINT Unix seconds.
CREATE TABLE live_sessions (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    username   TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);

CREATE INDEX live_sessions_username ON live_sessions (username, created_at);
CREATE INDEX live_sessions_expires_at ON live_sessions (expires_at);
