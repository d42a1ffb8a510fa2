-- Counters of failed attempts that every gateway node shares: the
-- self-enrollment flow's per-card limits on identity checks, "register this
-- card" passwords and security answers. Counted here rather than in each
-- node's memory so that N nodes behind a load balancer do not give a card N
-- times the attempts.
--
-- name is the counter's key, chosen by the caller ("enroll:identity:<card
-- fingerprint>"); n is the attempts counted in the window that began at
-- started_at (Unix seconds). A row whose window has passed is as good as
-- absent: the next attempt restarts it. PruneAttempts deletes such rows.
-- WITHOUT ROWID clusters rows by name, the only lookup key.
CREATE TABLE attempts (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    n          INTEGER NOT NULL CHECK (n >= 0),
    started_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Pruning deletes by age.
CREATE INDEX attempts_started_at ON attempts (started_at);
