-- Counters of failed attempts that every gateway node shares: the
-- self-enrollment flow's per-card limits on identity checks, "register this
-- card" passwords and security answers. See the SQLite migration of the
-- same number; the table is the same, with started_at a BIGINT like every
-- other Unix-seconds column here.
CREATE TABLE attempts (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    n          INTEGER NOT NULL CHECK (n >= 0),
    started_at BIGINT  NOT NULL
);

-- Pruning deletes by age.
CREATE INDEX attempts_started_at ON attempts (started_at);
