-- The help-desk console's tables. See the SQLite migration of the same
-- number; the tables are the same, with BIGINT times and identity ids.
CREATE TABLE security_events (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT  NOT NULL,
    event      TEXT    NOT NULL CHECK (length(event) BETWEEN 1 AND 64),
    outcome    TEXT    NOT NULL CHECK (length(outcome) <= 16),
    username   TEXT    NOT NULL DEFAULT '' CHECK (length(username) <= 64),
    edipi      TEXT    NOT NULL DEFAULT '' CHECK (length(edipi) <= 10),
    source_ip  TEXT    NOT NULL DEFAULT '' CHECK (length(source_ip) <= 64),
    node       TEXT    NOT NULL DEFAULT '' CHECK (length(node) <= 256),
    fields     TEXT    NOT NULL CHECK (length(fields) <= 16384)
);

CREATE INDEX security_events_at ON security_events (at);
CREATE INDEX security_events_username ON security_events (username, at) WHERE username <> '';
CREATE INDEX security_events_edipi ON security_events (edipi, at) WHERE edipi <> '';

CREATE TABLE announcements (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    severity   TEXT    NOT NULL CHECK (severity IN ('info', 'outage')),
    message    TEXT    NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
    starts_at  BIGINT  NOT NULL,
    ends_at    BIGINT  NOT NULL CHECK (ends_at > starts_at),
    created_at BIGINT  NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '' CHECK (length(created_by) <= 512)
);

CREATE INDEX announcements_ends_at ON announcements (ends_at);

ALTER TABLE accounts ADD COLUMN password_reset_required_at BIGINT;
