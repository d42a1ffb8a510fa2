-- Sealed multi-step states that were used. See the SQLite migration of the
-- same number; the table is the same, with expires_at a BIGINT like every
-- other Unix-seconds column here.
CREATE TABLE used_states (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    expires_at BIGINT  NOT NULL
);

CREATE INDEX used_states_expires_at ON used_states (expires_at);
