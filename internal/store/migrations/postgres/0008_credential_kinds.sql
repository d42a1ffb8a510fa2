-- Credential kinds: besides DoD cards (kind 'cac', known by the EDIPI),
-- accounts of federal PIV ('piv') and PIV-I ('piv-i') card holders, known by
-- their card UUID, and of ECA certificate holders ('eca'), known by issuer
-- and subject (or a chosen subject alternative name); utility accounts
-- ('utility', migration 0010) are keyed by their username. An account is unique
-- per (id_kind, id_key); a 'cac' account's key is its EDIPI, and only 'cac'
-- accounts have an EDIPI: the others' edipi is NULL (UNIQUE lets NULLs be).
ALTER TABLE accounts ALTER COLUMN edipi DROP NOT NULL;
ALTER TABLE accounts ADD COLUMN id_kind TEXT COLLATE "C" NOT NULL DEFAULT 'cac';
ALTER TABLE accounts ADD COLUMN id_key  TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE accounts SET id_key = edipi;
ALTER TABLE accounts ADD CONSTRAINT accounts_id_kind_check
    CHECK (id_kind IN ('cac', 'piv', 'piv-i', 'eca', 'utility'));
-- What SQLite's store checks in Go: a DoD account's key is its EDIPI, and
-- no other account has one.
ALTER TABLE accounts ADD CONSTRAINT accounts_identity_edipi_check
    CHECK (CASE WHEN id_kind = 'cac' THEN edipi IS NOT NULL AND edipi = id_key ELSE edipi IS NULL END);
CREATE UNIQUE INDEX accounts_identity ON accounts (id_kind, id_key);

-- Each card records its credential's kind and key too (what it was
-- registered as); existing cards are DoD cards of their account's EDIPI.
ALTER TABLE cards ADD COLUMN id_kind TEXT COLLATE "C" NOT NULL DEFAULT 'cac';
ALTER TABLE cards ADD COLUMN id_key  TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE cards SET id_key = (SELECT edipi FROM accounts WHERE accounts.id = cards.account_id);
ALTER TABLE cards ADD CONSTRAINT cards_id_kind_check
    CHECK (id_kind IN ('cac', 'piv', 'piv-i', 'eca'));
