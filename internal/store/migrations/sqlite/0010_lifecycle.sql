-- Account life cycle (issue 16): utility (non-person) accounts, inactivity,
-- the last sign-in notice, e-mail notice preferences and the mail outbox.
--
-- Every added column is NOT NULL with a default, or nullable where NULL
-- means "never"/"none", so the accounts that exist before this migration
-- stay valid as they are.

-- 'person' (a card holder) or 'utility' (an account that belongs to no
-- single person: a system presenting a DoD non-person-entity certificate).
ALTER TABLE accounts ADD COLUMN account_type TEXT NOT NULL DEFAULT 'person'
    CHECK (account_type IN ('person', 'utility'));
-- The person's account that answers for a utility account: when it is
-- disabled (or removed), so is the utility account. NULL for persons.
ALTER TABLE accounts ADD COLUMN sponsor_id INTEGER REFERENCES accounts (id) ON DELETE SET NULL;
-- When a utility account stops working (Unix seconds); NULL: never.
ALTER TABLE accounts ADD COLUMN expires_at INTEGER;
-- Why the account was disabled by the gateway itself: 'inactive',
-- 'expired', 'sponsor'; '' otherwise (an administrator, or not disabled).
ALTER TABLE accounts ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
-- When the account last became active (created active, approved,
-- re-enabled): inactivity counts from the latest of this, the last
-- sign-in and the creation, so an account an administrator re-enables is
-- not disabled again by the next sweep.
ALTER TABLE accounts ADD COLUMN enabled_at INTEGER;
-- The inactivity warning sent for the period of inactivity that began at
-- this time (the last activity then): one warning per period.
ALTER TABLE accounts ADD COLUMN inactivity_warned_for INTEGER;
-- The password-expiry warning sent for the password set at this time.
ALTER TABLE accounts ADD COLUMN expiry_warned_for INTEGER;
-- The optional e-mail notices the person turned off, as a JSON array of
-- kind names (security notices cannot be turned off).
ALTER TABLE accounts ADD COLUMN mail_optout TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(mail_optout) AND json_type(mail_optout) = 'array');
-- The last sign-in notice: logon_* is the latest recorded logon (banner
-- accepted), prev_logon_* the one before it, which the person is shown,
-- with prev_failed, the failed attempts between the two. failed_since is
-- counted up by every failed password attempt and restarts at a logon.
ALTER TABLE accounts ADD COLUMN logon_at        INTEGER;
ALTER TABLE accounts ADD COLUMN logon_from      TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN prev_logon_at   INTEGER;
ALTER TABLE accounts ADD COLUMN prev_logon_from TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN prev_failed     INTEGER NOT NULL DEFAULT 0 CHECK (prev_failed >= 0);
ALTER TABLE accounts ADD COLUMN failed_since    INTEGER NOT NULL DEFAULT 0 CHECK (failed_since >= 0);

CREATE INDEX accounts_sponsor_id ON accounts (sponsor_id);
-- The inactivity sweep scans active person accounts.
CREATE INDEX accounts_type_status ON accounts (account_type, status);

-- A utility account holds no DoD ID (edipi NULL, as 0008 allows) and is
-- keyed as credential kind 'utility' by its username. The triggers keep
-- the account type and the kind together (SQLite cannot add a CHECK to an
-- existing table), so no person's account is keyed like a utility account
-- and no utility account like a credential.
CREATE TRIGGER accounts_utility_kind_insert BEFORE INSERT ON accounts
WHEN (NEW.account_type = 'utility') <> (NEW.id_kind = 'utility')
BEGIN SELECT RAISE(ABORT, 'accounts: a utility account is keyed as kind utility, and only it'); END;
CREATE TRIGGER accounts_utility_kind_update BEFORE UPDATE OF account_type, id_kind ON accounts
WHEN (NEW.account_type = 'utility') <> (NEW.id_kind = 'utility')
BEGIN SELECT RAISE(ABORT, 'accounts: a utility account is keyed as kind utility, and only it'); END;

-- Non-person-entity (device, server) certificates registered to a utility
-- account by an administrator: by the certificate's SHA-256 fingerprint
-- (match_key 'sha256:<hex>'), or by subject and issuer together
-- (match_key 'dn:<issuer>|<subject>', both in RFC 2253 form), which keeps
-- matching when the system's certificate is renewed by the same CA. The
-- primary key makes one certificate map to at most one account.
CREATE TABLE npe_certificates (
    match_key  TEXT    NOT NULL PRIMARY KEY CHECK (length(match_key) BETWEEN 8 AND 2100),
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('fingerprint', 'subject')),
    subject    TEXT    NOT NULL,
    issuer     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX npe_certificates_account_id ON npe_certificates (account_id);

-- E-mail notices waiting to be sent. Rendered when queued, so a message is
-- what it was when the event happened. A sender claims a batch by setting
-- lease_until/lease_owner on rows whose lease has expired (one statement;
-- on every node, so exactly one sender holds a row at a time), sends, and
-- deletes the row, or puts it back with next_attempt_at pushed back.
-- dedupe_key, when set, makes a notice that may be queued twice (the
-- inactivity sweep on two nodes, a warning per period) queue once.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    recipient       TEXT    NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT    NOT NULL DEFAULT '',
    dedupe_key      TEXT    UNIQUE,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX mail_outbox_next_attempt_at ON mail_outbox (next_attempt_at);
