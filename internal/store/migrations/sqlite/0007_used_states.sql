-- Sealed multi-step states (enrollment's) that were used: each may move
-- its flow on once. A state travels with the browser, sealed, and stays
-- valid until it expires; without this table it could be posted again and
-- again, each time costing the gateway a password or answer hash. The
-- first use inserts the state's ID; the primary key decides a race between
-- two uses of one state on any number of nodes: exactly one insert wins.
--
-- id is the state's random ID (URL-safe base64); expires_at the state's own
-- expiry (Unix seconds), after which it is refused anyway and the row can
-- go: PruneUsedStates deletes such rows.
CREATE TABLE used_states (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX used_states_expires_at ON used_states (expires_at);
