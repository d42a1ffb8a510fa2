-- Access groups an administrator puts accounts in ("ops",
-- "finance.readers"); access policies decide on them.
--
-- A JSON array of group names in one column, for the reasons categories
-- are one (0002): groups are read with their account on the sign-in hot
-- path, whose cache fill is a single account-card join, and a child table
-- would cost that path a second query or multiply its rows. The store
-- writes the array sorted and without repeats, each name lowercase ASCII
-- letters, digits, '.', '_' or '-', so its JSON text never needs escapes:
-- the admin filter by group matches the text '"name"' with LIKE, portably.
-- The column is named group_names, not groups: GROUPS is a keyword (window
-- frames) in both SQLite and PostgreSQL.
ALTER TABLE accounts ADD COLUMN group_names TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(group_names) AND json_type(group_names) = 'array');
