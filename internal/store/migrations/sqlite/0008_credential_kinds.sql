-- Credential kinds: besides DoD cards (kind 'cac', known by the EDIPI),
-- accounts of federal PIV ('piv') and PIV-I ('piv-i') card holders, known by
-- their card UUID, and of ECA certificate holders ('eca'), known by issuer
-- and subject (or a chosen subject alternative name); utility accounts
-- ('utility', migration 0010) are keyed by their username. An account is unique
-- per (id_kind, id_key); a 'cac' account's key is its EDIPI, and only 'cac'
-- accounts have an EDIPI: the others' edipi is NULL (UNIQUE lets NULLs be).
--
-- SQLite cannot drop a column's NOT NULL with ALTER TABLE, and rebuilding
-- accounts would need foreign keys off, which cannot be switched inside the
-- migration's transaction (and dropping the old table would cascade to the
-- cards). Removing a NOT NULL changes nothing stored, so the documented
-- shortcut for such changes applies (SQLite "ALTER TABLE", section 7): edit
-- the table's CREATE statement in the schema, reload it (RESET), and let the
-- ALTER TABLE statements below bump the schema version, so every other
-- connection reloads it too. The statement's text is 0001's, with the
-- columns later migrations appended.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'edipi         TEXT    NOT NULL UNIQUE', 'edipi         TEXT    UNIQUE')
WHERE type = 'table' AND name = 'accounts';
PRAGMA writable_schema = RESET;

ALTER TABLE accounts ADD COLUMN id_kind TEXT NOT NULL DEFAULT 'cac'
    CHECK (id_kind IN ('cac', 'piv', 'piv-i', 'eca', 'utility'));
ALTER TABLE accounts ADD COLUMN id_key TEXT NOT NULL DEFAULT '';
UPDATE accounts SET id_key = edipi;
CREATE UNIQUE INDEX accounts_identity ON accounts (id_kind, id_key);

-- Each card records its credential's kind and key too (what it was
-- registered as); existing cards are DoD cards of their account's EDIPI.
ALTER TABLE cards ADD COLUMN id_kind TEXT NOT NULL DEFAULT 'cac'
    CHECK (id_kind IN ('cac', 'piv', 'piv-i', 'eca'));
ALTER TABLE cards ADD COLUMN id_key TEXT NOT NULL DEFAULT '';
UPDATE cards SET id_key = (SELECT edipi FROM accounts WHERE accounts.id = cards.account_id);
