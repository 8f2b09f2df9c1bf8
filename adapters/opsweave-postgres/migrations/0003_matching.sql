-- CORE: what each resolver has seen, its fitted model, and the pairs a person should review
-- (the same tables as the embedded store's 0002_matching.sql).
CREATE TABLE core.match_state (
    org        text        NOT NULL,
    resolver   text        NOT NULL,
    state      text        NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org, resolver)
);

CREATE TABLE core.match_members (
    org       text   NOT NULL,
    resolver  text   NOT NULL,
    record_id bigint NOT NULL,
    PRIMARY KEY (org, resolver, record_id)
);

CREATE TABLE core.match_review (
    org         text             NOT NULL,
    resolver    text             NOT NULL,
    left_id     bigint           NOT NULL,
    right_id    bigint           NOT NULL,
    score       double precision NOT NULL,
    probability double precision NOT NULL,
    explanation json             NOT NULL,
    status      text             NOT NULL,
    decided_at  timestamptz,
    PRIMARY KEY (org, resolver, left_id, right_id)
);
CREATE INDEX match_review_pending ON core.match_review (org, status, probability DESC);
