-- MATCHING: what each resolver has seen, its fitted model, and the pairs a person should review.
CREATE TABLE match_state (
    org        TEXT    NOT NULL,
    resolver   TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org, resolver)
) WITHOUT ROWID;

CREATE TABLE match_members (
    org       TEXT    NOT NULL,
    resolver  TEXT    NOT NULL,
    record_id INTEGER NOT NULL,
    PRIMARY KEY (org, resolver, record_id)
) WITHOUT ROWID;

CREATE TABLE match_review (
    org         TEXT    NOT NULL,
    resolver    TEXT    NOT NULL,
    left_id     INTEGER NOT NULL,
    right_id    INTEGER NOT NULL,
    score       REAL    NOT NULL,
    probability REAL    NOT NULL,
    explanation TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    decided_at  INTEGER,
    PRIMARY KEY (org, resolver, left_id, right_id)
) WITHOUT ROWID;
CREATE INDEX match_review_pending ON match_review (org, status, probability DESC);
