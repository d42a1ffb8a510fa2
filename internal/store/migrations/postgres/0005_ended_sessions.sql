-- Password sessions ended before their time: signed out. See the SQLite
-- migration of the same number; the table is the same, with expires_at a
-- BIGINT like every other Unix-seconds column here.
CREATE TABLE ended_sessions (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    expires_at BIGINT  NOT NULL
);

CREATE INDEX ended_sessions_expires_at ON ended_sessions (expires_at);
