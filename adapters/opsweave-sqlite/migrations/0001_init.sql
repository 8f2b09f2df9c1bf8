-- Row keys: every record gets `seq`, an insertion-ordered rowid, and keeps its derived id (a 63-bit
-- hash of scope, source and external id) in a unique index. Keying the wide tables by the hash put
-- every insert on a random page of a B-tree larger than the cache; keyed by `seq` they append, and
-- only the narrow id index takes random inserts (ids are unique across orgs: the org is hashed in).

-- RAW: every source item verbatim, keyed by the `seq` of the record it became.
CREATE TABLE raw_items (
    seq         INTEGER PRIMARY KEY,
    source_file TEXT    NOT NULL,
    line        INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);

-- CORE: normalised records. The id is derived from (scope, source kind, external id).
CREATE TABLE records (
    seq          INTEGER PRIMARY KEY,
    id           INTEGER NOT NULL,
    org          TEXT    NOT NULL,
    client       TEXT,
    project      TEXT,
    source_kind  TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    url          TEXT,
    entity       TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    fields       TEXT    NOT NULL,
    created_at   INTEGER,
    updated_at   INTEGER NOT NULL,
    content_hash INTEGER NOT NULL
);
CREATE UNIQUE INDEX records_id ON records (id);

-- CORE: the actionable view of records (same `seq`). `open` and `marked` exist so focus reads one
-- small index: only open tasks are in it.
CREATE TABLE tasks (
    seq               INTEGER PRIMARY KEY,
    id                INTEGER NOT NULL,
    org               TEXT    NOT NULL,
    client            TEXT,
    project           TEXT,
    title             TEXT    NOT NULL,
    source_kind       TEXT    NOT NULL,
    url               TEXT,
    status            TEXT    NOT NULL,
    source_status     TEXT    NOT NULL,
    open              INTEGER NOT NULL,
    marked            INTEGER NOT NULL DEFAULT 0,
    due_day           INTEGER,
    importance        REAL    NOT NULL,
    importance_reason TEXT    NOT NULL,
    boost             REAL    NOT NULL DEFAULT 0,
    pinned            INTEGER NOT NULL DEFAULT 0,
    updated_at        INTEGER NOT NULL,
    completed_at      INTEGER
);
CREATE INDEX tasks_focus ON tasks (org, marked, due_day, importance DESC, id) WHERE open = 1;
CREATE INDEX tasks_done ON tasks (org, completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE links (
    org      TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    from_id  INTEGER NOT NULL,
    to_id    INTEGER NOT NULL,
    weight   REAL    NOT NULL,
    evidence TEXT    NOT NULL,
    PRIMARY KEY (kind, from_id, to_id)
) WITHOUT ROWID;
CREATE INDEX links_to ON links (to_id);
CREATE INDEX links_from ON links (from_id);

-- Rows that could not be turned into records: kept, never dropped silently.
CREATE TABLE rejections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org         TEXT    NOT NULL,
    client      TEXT,
    project     TEXT,
    source_file TEXT    NOT NULL,
    line        INTEGER NOT NULL,
    field       TEXT,
    reason      TEXT    NOT NULL,
    raw         TEXT,
    at          INTEGER NOT NULL
);

-- OPS: the append-only event log.
CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    org     TEXT    NOT NULL,
    client  TEXT,
    project TEXT,
    actor   TEXT    NOT NULL,
    subject INTEGER,
    kind    TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX events_subject ON events (org, subject, seq);

-- SEARCH: full text over title and body, kept in step with records by triggers.
CREATE VIRTUAL TABLE records_fts USING fts5 (
    title, body,
    content = 'records', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN
    INSERT INTO records_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
    INSERT INTO records_fts (records_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
END;
CREATE TRIGGER records_fts_update AFTER UPDATE OF title, body ON records BEGIN
    INSERT INTO records_fts (records_fts, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO records_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
