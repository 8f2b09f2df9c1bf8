-- opsweave on PostgreSQL: the same tables as the embedded store, in four schemas
--   raw     source items verbatim, and the rows that could not become records
--   core    normalised records, tasks and links
--   search  full-text documents (and embeddings, see 0002)
--   ops     the append-only event log
-- pgvector must be installed on the server; creating the extension needs a superuser once
-- (`CREATE EXTENSION vector` in the database or in template1), after that any owner migrates.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS search;
CREATE SCHEMA IF NOT EXISTS ops;

-- RAW: every source item verbatim, keyed by the record it became.
CREATE TABLE raw.items (
    id          bigint      PRIMARY KEY,
    source_file text        NOT NULL,
    line        bigint      NOT NULL,
    payload     text        NOT NULL,
    received_at timestamptz NOT NULL
);

-- RAW: rows that could not be turned into records: kept, never dropped silently.
CREATE TABLE raw.rejections (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org         text        NOT NULL,
    client      text,
    project     text,
    source_file text        NOT NULL,
    line        bigint      NOT NULL,
    field       text,
    reason      text        NOT NULL,
    raw         text,
    at          timestamptz NOT NULL
);
CREATE INDEX rejections_org ON raw.rejections (org, id DESC);

-- CORE: normalised records. The id is derived from (scope, source kind, external id): a 63-bit
-- positive integer, the same in every store.
CREATE TABLE core.records (
    id           bigint      PRIMARY KEY CHECK (id >= 0),
    org          text        NOT NULL,
    client       text,
    project      text,
    source_kind  text        NOT NULL,
    external_id  text        NOT NULL,
    url          text,
    entity       text        NOT NULL,
    title        text        NOT NULL,
    body         text        NOT NULL,
    -- json, not jsonb: kept as written (jsonb refuses the \u0000 escape a source may carry).
    fields       json        NOT NULL,
    created_at   timestamptz,
    updated_at   timestamptz NOT NULL,
    content_hash bigint      NOT NULL
);
CREATE INDEX records_org ON core.records (org, id);

-- CORE: the actionable view of records. `open` and `marked` exist so focus reads one index.
CREATE TABLE core.tasks (
    id                bigint           PRIMARY KEY,
    org               text             NOT NULL,
    client            text,
    project           text,
    title             text             NOT NULL,
    source_kind       text             NOT NULL,
    url               text,
    status            text             NOT NULL,
    source_status     text             NOT NULL,
    open              boolean          NOT NULL,
    marked            boolean          NOT NULL DEFAULT false,
    due_day           date,
    -- PostgreSQL stores NaN (SQLite turns it into NULL and refuses it): refuse it here too.
    importance        double precision NOT NULL CHECK (importance <> 'NaN'::double precision),
    importance_reason text             NOT NULL,
    boost             double precision NOT NULL DEFAULT 0,
    pinned            boolean          NOT NULL DEFAULT false,
    updated_at        timestamptz      NOT NULL,
    completed_at      timestamptz
);
CREATE INDEX tasks_focus ON core.tasks (org, marked, due_day, importance DESC, id) WHERE open;
CREATE INDEX tasks_done ON core.tasks (org, completed_at DESC) WHERE completed_at IS NOT NULL;

CREATE TABLE core.links (
    org      text             NOT NULL,
    kind     text COLLATE "C" NOT NULL,
    from_id  bigint           NOT NULL,
    to_id    bigint           NOT NULL,
    weight   double precision NOT NULL,
    evidence text             NOT NULL,
    PRIMARY KEY (kind, from_id, to_id)
);
CREATE INDEX links_from ON core.links (org, from_id);
CREATE INDEX links_to ON core.links (to_id);

-- SEARCH: full text over title (weight A) and body (weight B). The words are cut, case-folded and
-- stripped of diacritics by the store (as SQLite's unicode61 tokenizer does), so matching does not
-- depend on the server's version, locale or extensions.
CREATE TABLE search.documents (
    id       bigint   PRIMARY KEY,
    document tsvector NOT NULL
);
CREATE INDEX documents_words ON search.documents USING gin (document);

-- OPS: the append-only event log. Appends are serialised (an advisory lock), so a reader that
-- follows `seq` never skips an event committed late with a smaller number.
CREATE TABLE ops.events (
    seq     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org     text        NOT NULL,
    client  text,
    project text,
    actor   text        NOT NULL,
    subject bigint,
    kind    json        NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX events_subject ON ops.events (org, subject, seq);
