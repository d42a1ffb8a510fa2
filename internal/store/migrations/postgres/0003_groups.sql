-- Access groups an administrator puts accounts in ("ops",
-- "finance.readers"); access policies decide on them. See the SQLite
-- migration of the same number for why a JSON array in a TEXT column: the
-- column and its meaning are the same on both databases, only the CHECK is
-- spelled PostgreSQL's way. TEXT rather than jsonb so the stored text is
-- exactly what the store wrote (jsonb would respace it), which the filter
-- by group, a LIKE on '"name"', relies on.
ALTER TABLE accounts ADD COLUMN group_names TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT accounts_group_names_check CHECK (jsonb_typeof(group_names::jsonb) = 'array');
