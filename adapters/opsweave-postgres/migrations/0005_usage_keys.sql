-- OPS: metering and access control (see opsweave_core::usage and opsweave_core::access).
CREATE TABLE ops.usage_events (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org              text        NOT NULL,
    client           text,
    project          text,
    operation        text        NOT NULL CHECK (operation IN ('embed', 'chat')),
    model            text        NOT NULL,
    input_tokens     bigint      NOT NULL CHECK (input_tokens >= 0),
    output_tokens    bigint      NOT NULL CHECK (output_tokens >= 0),
    embedding_tokens bigint      NOT NULL CHECK (embedding_tokens >= 0),
    latency_ms       bigint      NOT NULL CHECK (latency_ms >= 0),
    job_id           bigint,
    at               timestamptz NOT NULL
);
CREATE INDEX usage_events_by_org_time ON ops.usage_events (org, at);

-- Only the SHA-256 of a key is kept; the key itself is shown once, when it is made.
CREATE TABLE ops.api_keys (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash        text        NOT NULL UNIQUE,
    prefix      text        NOT NULL,
    name        text        NOT NULL,
    org         text        NOT NULL,
    client      text,
    project     text,
    role        text        NOT NULL CHECK (role IN ('admin', 'member', 'viewer', 'service')),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_by_org ON ops.api_keys (org, id);
