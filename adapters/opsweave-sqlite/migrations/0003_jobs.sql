-- OPS: background jobs (see opsweave_core::jobs::JobQueue for the semantics).
-- Times are milliseconds since the epoch, as elsewhere in this file.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org              TEXT    NOT NULL,
    client           TEXT,
    project          TEXT,
    -- All scope parts in one value, so that idempotency keys are per exact scope (NULLs included).
    scope_key        TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    backoff_ms       INTEGER NOT NULL,
    progress         REAL    NOT NULL DEFAULT 0,
    message          TEXT,
    idempotency_key  TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    run_after        INTEGER NOT NULL,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (scope_key, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_runnable ON jobs (run_after, id) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_by_scope ON jobs (org, status, id);
