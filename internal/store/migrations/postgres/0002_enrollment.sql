-- Self-enrollment, the PostgreSQL spelling of
-- migrations/sqlite/0002_enrollment.sql: what a person tells us when
-- registering a CAC (roster categories, organization, contact details), a
-- password with its history and three security answers for resetting it,
-- and the failed sign-in count that locks the password out on every node at
-- once.
--
-- The store never sees a password or an answer in clear: the *_hash columns
-- hold PHC strings ("$argon2id$v=19$...") made by the caller.
--
-- Every added column is NOT NULL with a default, or nullable where NULL
-- means "never", so the accounts that exist before this migration stay
-- valid as they are. A constant default costs no table rewrite.

-- The roster categories of the person as a JSON array of strings; see the
-- SQLite migration for why an array in one column. TEXT rather than jsonb,
-- so that what is read back is exactly the text the store wrote. Text that
-- is not JSON fails the cast, and so the insert, as SQLite's json_valid
-- check fails it.
ALTER TABLE accounts ADD COLUMN categories TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT accounts_categories_check CHECK (jsonb_typeof(categories::jsonb) = 'array');

ALTER TABLE accounts ADD COLUMN organization TEXT NOT NULL DEFAULT '';
-- Geographic location, e.g. "North America".
ALTER TABLE accounts ADD COLUMN location     TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN work_address TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN phone        TEXT NOT NULL DEFAULT '';

-- '' means the account has no password (it was not self-enrolled).
ALTER TABLE accounts ADD COLUMN password_hash       TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN password_changed_at BIGINT;

-- Failed password sign-ins: how many since first_failed_at, and the end of
-- the lockout they caused, if any. A past locked_until is an expired lock.
ALTER TABLE accounts ADD COLUMN failed_logins   INTEGER NOT NULL DEFAULT 0
    CONSTRAINT accounts_failed_logins_check CHECK (failed_logins >= 0);
ALTER TABLE accounts ADD COLUMN first_failed_at BIGINT;
ALTER TABLE accounts ADD COLUMN locked_until    BIGINT;

-- The approval queue lists accounts of one status in username order.
CREATE INDEX accounts_status_username ON accounts (status, username);

-- Passwords an account used before its current one, so they are not used
-- again. id orders them (several can be retired within one second);
-- created_at is when a password was retired.
CREATE TABLE password_history (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY,
    account_id BIGINT  NOT NULL,
    hash       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    CONSTRAINT password_history_pkey          PRIMARY KEY (id),
    CONSTRAINT password_history_hash_check    CHECK (hash <> ''),
    CONSTRAINT password_history_account_id_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX password_history_account_id ON password_history (account_id, id);

-- Three security questions and the hashes of their answers. The UNIQUE
-- constraint makes the three questions differ.
CREATE TABLE security_answers (
    account_id  BIGINT   NOT NULL,
    slot        INTEGER  NOT NULL,
    question_id TEXT     NOT NULL,
    answer_hash TEXT     NOT NULL,
    CONSTRAINT security_answers_pkey                    PRIMARY KEY (account_id, slot),
    CONSTRAINT security_answers_account_id_question_key UNIQUE (account_id, question_id),
    CONSTRAINT security_answers_slot_check              CHECK (slot BETWEEN 0 AND 2),
    CONSTRAINT security_answers_question_id_check       CHECK (question_id <> ''),
    CONSTRAINT security_answers_answer_hash_check       CHECK (answer_hash <> ''),
    CONSTRAINT security_answers_account_id_fkey         FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);
