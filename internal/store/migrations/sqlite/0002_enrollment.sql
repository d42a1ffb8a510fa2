-- Self-enrollment: what a person tells us when registering a CAC (roster
-- categories, organization, contact details), a password with its history
-- and three security answers for resetting it, and the failed sign-in count
-- that locks the password out on every node at once.
--
-- The store never sees a password or an answer in clear: the *_hash columns
-- hold PHC strings ("$argon2id$v=19$...") made by the caller.
--
-- Every added column is NOT NULL with a default, or nullable where NULL
-- means "never", so the accounts that exist before this migration stay
-- valid as they are.

-- The roster categories of the person, e.g. ["Active Army","DA Civilian"]
-- for a dual account, as a JSON array of strings. An array in one column
-- rather than a child table because categories are only ever read with
-- their account, on the sign-in hot path among others (access policies
-- decide on them in Go), and never looked up by value: a child table would
-- cost that path a second query, or multiply the rows of its account-card
-- join. JSON text is portable; PostgreSQL keeps the same TEXT column with
-- CHECK (jsonb_typeof(categories::jsonb) = 'array').
ALTER TABLE accounts ADD COLUMN categories TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(categories) AND json_type(categories) = 'array');

ALTER TABLE accounts ADD COLUMN organization TEXT NOT NULL DEFAULT '';
-- Geographic location, e.g. "North America".
ALTER TABLE accounts ADD COLUMN location     TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN work_address TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN phone        TEXT NOT NULL DEFAULT '';

-- '' means the account has no password (it was not self-enrolled).
ALTER TABLE accounts ADD COLUMN password_hash       TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN password_changed_at INTEGER;

-- Failed password sign-ins: how many since first_failed_at, and the end of
-- the lockout they caused, if any. A past locked_until is an expired lock.
ALTER TABLE accounts ADD COLUMN failed_logins   INTEGER NOT NULL DEFAULT 0
    CHECK (failed_logins >= 0);
ALTER TABLE accounts ADD COLUMN first_failed_at INTEGER;
ALTER TABLE accounts ADD COLUMN locked_until    INTEGER;

-- The approval queue lists accounts of one status in username order.
CREATE INDEX accounts_status_username ON accounts (status, username);

-- Passwords an account used before its current one, so they are not used
-- again. id orders them (several can be retired within one second);
-- created_at is when a password was retired. PostgreSQL: BIGINT GENERATED
-- ALWAYS AS IDENTITY.
CREATE TABLE password_history (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    hash       TEXT    NOT NULL CHECK (hash <> ''),
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX password_history_account_id ON password_history (account_id, id);

-- Three security questions and the hashes of their answers. The UNIQUE
-- constraint makes the three questions differ.
CREATE TABLE security_answers (
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot        INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 2),
    question_id TEXT    NOT NULL CHECK (question_id <> ''),
    answer_hash TEXT    NOT NULL CHECK (answer_hash <> ''),
    PRIMARY KEY (account_id, slot),
    UNIQUE (account_id, question_id)
) STRICT, WITHOUT ROWID;
