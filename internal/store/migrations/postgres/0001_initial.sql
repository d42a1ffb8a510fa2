-- The PostgreSQL spelling of migrations/sqlite/0001_initial.sql: the same
-- tables, columns, constraints and indexes, so the store's queries and
-- their results are the same on both. Times are Unix seconds in BIGINT
-- columns; NULL means "never".
--
-- Every UNIQUE and PRIMARY KEY constraint is named: the store turns a
-- violation into the error that explains it (ErrUsernameTaken, ...) by the
-- violated index's columns, which it reads from the catalog by the
-- constraint name PostgreSQL reports, so names must be stable.
--
-- Identifiers that the store compares, orders or scans by range (username,
-- DoD ID, fingerprint) use the bytewise "C" collation, which is how SQLite
-- compares all text: whatever the database's default collation, accounts
-- list in the same order and Enroll's scan of a username family (see
-- usernamesFromSQL) finds the same names. It also makes these indexes
-- cheaper to search than a linguistic collation would.

-- GENERATED ALWAYS AS IDENTITY, like SQLite's AUTOINCREMENT: an id is never
-- reused, even after the newest account is deleted, so nothing that
-- remembered an old id can land on a new person; and no client can insert
-- an id of its own choosing that the sequence would later hand out again.
CREATE TABLE accounts (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY,
    username      TEXT    COLLATE "C" NOT NULL,
    edipi         TEXT    COLLATE "C" NOT NULL,
    given_name    TEXT    NOT NULL,
    middle_name   TEXT    NOT NULL,
    family_name   TEXT    NOT NULL,
    suffix        TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    affiliation   TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    last_login_at BIGINT,
    CONSTRAINT accounts_pkey         PRIMARY KEY (id),
    CONSTRAINT accounts_username_key UNIQUE (username),
    CONSTRAINT accounts_edipi_key    UNIQUE (edipi),
    CONSTRAINT accounts_status_check CHECK (status IN ('active', 'disabled', 'pending'))
);

-- The fingerprint check keeps a differently cased or truncated hash from
-- being stored, where it would never match a presented card. PostgreSQL
-- has no clustered tables (SQLite's WITHOUT ROWID): the primary key's
-- index serves the sign-in lookup by fingerprint.
CREATE TABLE cards (
    fingerprint  TEXT    COLLATE "C" NOT NULL,
    account_id   BIGINT  NOT NULL,
    subject      TEXT    NOT NULL,
    issuer       TEXT    NOT NULL,
    serial       TEXT    NOT NULL,
    not_after    BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    CONSTRAINT cards_pkey              PRIMARY KEY (fingerprint),
    CONSTRAINT cards_fingerprint_check CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    CONSTRAINT cards_account_id_fkey   FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX cards_account_id ON cards (account_id);

-- A card whose registration was cleared (lost, replaced, or removed by its
-- holder or an administrator) stays cleared: automatic linking by DoD ID
-- must not quietly undo that. Only an explicit link lifts it.
CREATE TABLE cleared_cards (
    fingerprint TEXT    COLLATE "C" NOT NULL,
    account_id  BIGINT  NOT NULL,
    cleared_at  BIGINT  NOT NULL,
    CONSTRAINT cleared_cards_pkey              PRIMARY KEY (fingerprint),
    CONSTRAINT cleared_cards_fingerprint_check CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    CONSTRAINT cleared_cards_account_id_fkey   FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

-- BYTEA: secrets are raw bytes (keys), SQLite's BLOB.
CREATE TABLE secrets (
    name       TEXT    NOT NULL,
    value      BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    CONSTRAINT secrets_pkey PRIMARY KEY (name)
);
