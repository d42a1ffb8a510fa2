-- STRICT makes SQLite reject a value of the wrong type instead of storing
-- it, as PostgreSQL would. Times are Unix seconds; NULL means "never".

-- AUTOINCREMENT: an id is never reused, even after the newest account is
-- deleted, so nothing that remembered an old id can land on a new person.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    edipi         TEXT    NOT NULL UNIQUE,
    given_name    TEXT    NOT NULL,
    middle_name   TEXT    NOT NULL,
    family_name   TEXT    NOT NULL,
    suffix        TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    affiliation   TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'disabled', 'pending')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_login_at INTEGER
) STRICT;

-- The fingerprint check keeps a differently cased or truncated hash from
-- being stored, where it would never match a presented card.
-- WITHOUT ROWID clusters rows by fingerprint, the sign-in lookup key.
CREATE TABLE cards (
    fingerprint  TEXT    NOT NULL PRIMARY KEY
                 CHECK (length(fingerprint) = 64 AND fingerprint NOT GLOB '*[^0-9a-f]*'),
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    subject      TEXT    NOT NULL,
    issuer       TEXT    NOT NULL,
    serial       TEXT    NOT NULL,
    not_after    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX cards_account_id ON cards (account_id);

-- A card whose registration was cleared (lost, replaced, or removed by its
-- holder or an administrator) stays cleared: automatic linking by DoD ID
-- must not quietly undo that. Only an explicit link lifts it.
CREATE TABLE cleared_cards (
    fingerprint TEXT    NOT NULL PRIMARY KEY
                CHECK (length(fingerprint) = 64 AND fingerprint NOT GLOB '*[^0-9a-f]*'),
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    cleared_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
