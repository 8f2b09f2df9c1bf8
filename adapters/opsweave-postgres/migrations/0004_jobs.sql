-- OPS: background jobs (see opsweave_core::jobs::JobQueue for the semantics). Workers claim with
-- `FOR UPDATE SKIP LOCKED`; leases and backoff are measured with the server's clock.
CREATE TABLE ops.jobs (
    id               bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org              text             NOT NULL,
    client           text,
    project          text,
    -- All scope parts in one value, so that idempotency keys are per exact scope (NULLs included).
    scope_key        text             NOT NULL,
    kind             text             NOT NULL,
    -- json, not jsonb: kept as sent, and jsonb refuses \u0000 in strings.
    payload          json             NOT NULL,
    status           text             NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts         integer          NOT NULL DEFAULT 0,
    max_attempts     integer          NOT NULL,
    backoff_ms       bigint           NOT NULL,
    progress         double precision NOT NULL DEFAULT 0,
    message          text,
    idempotency_key  text,
    lease_owner      text,
    lease_expires_at timestamptz,
    run_after        timestamptz      NOT NULL,
    error            text,
    created_at       timestamptz      NOT NULL,
    updated_at       timestamptz      NOT NULL,
    finished_at      timestamptz
);
CREATE UNIQUE INDEX jobs_idempotency ON ops.jobs (scope_key, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_runnable ON ops.jobs (run_after, id) WHERE status = 'queued';
CREATE INDEX jobs_leased ON ops.jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_by_scope ON ops.jobs (org, status, id);
