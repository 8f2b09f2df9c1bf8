-- OPS: metering and access control.
-- usage_events: one row per model call (see opsweave_core::usage). Times are milliseconds since
-- the epoch, as elsewhere in this file; counts fit signed 64-bit integers (checked before insert).
CREATE TABLE usage_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org              TEXT    NOT NULL,
    client           TEXT,
    project          TEXT,
    operation        TEXT    NOT NULL CHECK (operation IN ('embed', 'chat')),
    model            TEXT    NOT NULL,
    input_tokens     INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens    INTEGER NOT NULL CHECK (output_tokens >= 0),
    embedding_tokens INTEGER NOT NULL CHECK (embedding_tokens >= 0),
    latency_ms       INTEGER NOT NULL CHECK (latency_ms >= 0),
    job_id           INTEGER,
    at               INTEGER NOT NULL
);
CREATE INDEX usage_events_by_org_time ON usage_events (org, at);

-- api_keys: only the SHA-256 of a key is kept; the key itself is shown once, when it is made.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        TEXT    NOT NULL UNIQUE,
    prefix      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    org         TEXT    NOT NULL,
    client      TEXT,
    project     TEXT,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'viewer', 'service')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX api_keys_by_org ON api_keys (org, id);
