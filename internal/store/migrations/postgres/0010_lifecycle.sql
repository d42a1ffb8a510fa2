-- Account life cycle (issue 16), the PostgreSQL spelling of
-- migrations/sqlite/0010_lifecycle.sql: utility (non-person) accounts,
-- inactivity, the last sign-in notice, e-mail notice preferences and the
-- mail outbox. See the SQLite file for what each column means.

ALTER TABLE accounts ADD COLUMN account_type TEXT NOT NULL DEFAULT 'person'
    CONSTRAINT accounts_account_type_check CHECK (account_type IN ('person', 'utility'));
ALTER TABLE accounts ADD COLUMN sponsor_id BIGINT
    CONSTRAINT accounts_sponsor_id_fkey REFERENCES accounts (id) ON DELETE SET NULL;
ALTER TABLE accounts ADD COLUMN expires_at BIGINT;
ALTER TABLE accounts ADD COLUMN disabled_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN enabled_at BIGINT;
ALTER TABLE accounts ADD COLUMN inactivity_warned_for BIGINT;
ALTER TABLE accounts ADD COLUMN expiry_warned_for BIGINT;
ALTER TABLE accounts ADD COLUMN mail_optout TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT accounts_mail_optout_check CHECK (jsonb_typeof(mail_optout::jsonb) = 'array');
ALTER TABLE accounts ADD COLUMN logon_at        BIGINT;
ALTER TABLE accounts ADD COLUMN logon_from      TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN prev_logon_at   BIGINT;
ALTER TABLE accounts ADD COLUMN prev_logon_from TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN prev_failed     INTEGER NOT NULL DEFAULT 0
    CONSTRAINT accounts_prev_failed_check CHECK (prev_failed >= 0);
ALTER TABLE accounts ADD COLUMN failed_since    INTEGER NOT NULL DEFAULT 0
    CONSTRAINT accounts_failed_since_check CHECK (failed_since >= 0);

-- A utility account holds no DoD ID (edipi NULL, as 0008 allows) and is
-- keyed as credential kind 'utility' by its username; the CHECK keeps the
-- account type and the kind together, so no person's account is keyed
-- like a utility account and no utility account like a credential.
ALTER TABLE accounts ADD CONSTRAINT accounts_utility_kind_check
    CHECK ((account_type = 'utility') = (id_kind = 'utility'));

CREATE INDEX accounts_sponsor_id ON accounts (sponsor_id);
CREATE INDEX accounts_type_status ON accounts (account_type, status);

CREATE TABLE npe_certificates (
    match_key  TEXT    COLLATE "C" NOT NULL,
    account_id BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    issuer     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    CONSTRAINT npe_certificates_pkey PRIMARY KEY (match_key),
    CONSTRAINT npe_certificates_match_key_check CHECK (length(match_key) BETWEEN 8 AND 2100),
    CONSTRAINT npe_certificates_kind_check CHECK (kind IN ('fingerprint', 'subject')),
    CONSTRAINT npe_certificates_account_id_fkey FOREIGN KEY (account_id)
        REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX npe_certificates_account_id ON npe_certificates (account_id);

CREATE TABLE mail_outbox (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY,
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT    NOT NULL DEFAULT '',
    dedupe_key      TEXT    COLLATE "C",
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    CONSTRAINT mail_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT mail_outbox_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT mail_outbox_kind_check CHECK (length(kind) BETWEEN 1 AND 64),
    CONSTRAINT mail_outbox_recipient_check CHECK (length(recipient) BETWEEN 3 AND 254),
    CONSTRAINT mail_outbox_attempts_check CHECK (attempts >= 0)
);

CREATE INDEX mail_outbox_next_attempt_at ON mail_outbox (next_attempt_at);
