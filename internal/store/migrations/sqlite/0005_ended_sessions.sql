-- Password sessions ended before their time: signed out. A session token is
-- stateless (a signed cookie), so signing out can only delete the browser's
-- copy; a copy taken earlier would stay valid until the token expires. Every
-- node refuses a token whose session is listed here.
--
-- id is the token's session ID (the jti, kept across renewals); expires_at
-- the session's own end (Unix seconds), after which the token is dead anyway
-- and the row can go: PruneEndedSessions deletes such rows.
CREATE TABLE ended_sessions (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX ended_sessions_expires_at ON ended_sessions (expires_at);
