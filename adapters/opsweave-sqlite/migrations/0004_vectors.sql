-- SEARCH: embedding vectors, the store of record for k-NN. The HNSW graph each model gets (a file
-- `<db>.vectors/<model>.usearch` beside the database) is a cache rebuilt from these rows whenever
-- it is missing, stale or unreadable.

-- One row per embedding model: its dimension for life, how its vectors are stored, and a
-- generation that every write of its vectors bumps, so a saved graph knows whether it is current.
CREATE TABLE vector_models (
    name       TEXT    PRIMARY KEY,
    dim        INTEGER NOT NULL CHECK (dim BETWEEN 1 AND 65536),
    storage    TEXT    NOT NULL CHECK (storage IN ('f32', 'f16')),
    generation INTEGER NOT NULL DEFAULT 0,
    count      INTEGER NOT NULL DEFAULT 0
);

-- One vector per (model, record): little-endian f32 or f16 (the model's storage), with the
-- record's scope and kinds copied so a filtered query needs no join.
CREATE TABLE vectors (
    model        TEXT    NOT NULL,
    id           INTEGER NOT NULL,
    org          TEXT    NOT NULL,
    client       TEXT,
    project      TEXT,
    entity       TEXT    NOT NULL,
    source_kind  TEXT    NOT NULL,
    -- The record's content hash when it was embedded: equal hash, no new embedding.
    content_hash INTEGER NOT NULL,
    vector       BLOB    NOT NULL,
    embedded_at  INTEGER NOT NULL,
    PRIMARY KEY (model, id)
);
-- Deleting a record's vectors of every model.
CREATE INDEX vectors_id ON vectors (id);
