-- Password sessions that are live, recorded only where a site limits how
-- many one person may have at once (session_limit): a sign-in past the
-- limit ends the oldest, which then move to ended_sessions. Rows go when the
-- session is ended or expires (PruneEndedSessions).
CREATE TABLE live_sessions (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    username   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX live_sessions_username ON live_sessions (username, created_at);
CREATE INDEX live_sessions_expires_at ON live_sessions (expires_at);
