-- The help-desk console's tables (issue 15).
--
-- security_events is a bounded copy of the audit trail, kept in the account
-- database so that the console shows an account's recent events on every
-- node of a cluster. The audit log stays the system of record; this copy is
-- pruned by age and by count (PruneSecurityEvents). Each row is one audit
-- entry: the columns the console searches by, and the whole entry, every
-- field as the audit logger wrote it, as a JSON object in fields.
-- at is the entry's time in Unix nanoseconds, so entries of one second keep
-- their order across nodes; id orders entries of one node.
CREATE TABLE security_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT    NOT NULL CHECK (length(event) BETWEEN 1 AND 64),
    outcome    TEXT    NOT NULL CHECK (length(outcome) <= 16),
    username   TEXT    NOT NULL DEFAULT '' CHECK (length(username) <= 64),
    edipi      TEXT    NOT NULL DEFAULT '' CHECK (length(edipi) <= 10),
    source_ip  TEXT    NOT NULL DEFAULT '' CHECK (length(source_ip) <= 64),
    node       TEXT    NOT NULL DEFAULT '' CHECK (length(node) <= 256),
    fields     TEXT    NOT NULL CHECK (length(fields) <= 16384)
) STRICT;

CREATE INDEX security_events_at ON security_events (at);
CREATE INDEX security_events_username ON security_events (username, at) WHERE username <> '';
CREATE INDEX security_events_edipi ON security_events (edipi, at) WHERE edipi <> '';

-- Announcements shown on the gateway's pages (banner, no-card, sign-in,
-- enrollment) between starts_at and ends_at (Unix seconds). message is
-- plain text, rendered as text, never HTML.
CREATE TABLE announcements (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    severity   TEXT    NOT NULL CHECK (severity IN ('info', 'outage')),
    message    TEXT    NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL CHECK (ends_at > starts_at),
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '' CHECK (length(created_by) <= 512)
) STRICT;

CREATE INDEX announcements_ends_at ON announcements (ends_at);

-- An administrator can require a new password at the next sign-in: set,
-- the password no longer signs in (as if expired) until it is changed or
-- reset, which clears it. NULL: not required.
ALTER TABLE accounts ADD COLUMN password_reset_required_at INTEGER;
