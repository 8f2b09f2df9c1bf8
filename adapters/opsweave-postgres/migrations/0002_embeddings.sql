-- SEARCH: one vector per (model, record), stored as pgvector `halfvec` (2 bytes a dimension: a
-- 1,024-dimension BGE-M3 vector takes 2 KiB). The column has no fixed dimension, so models of any
-- size share the table; each model gets its own HNSW index on a typed cast, made when the model is
-- first used (`PgStore::ensure_vector_index`), e.g. for a 384-dimension model:
--   CREATE INDEX ... ON search.embeddings USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops)
--   WHERE model = 'all-minilm-l6-v2';
-- The scope and kind columns are copied from the record so a k-NN query filters without a join;
-- with pgvector 0.8's iterative index scans (`hnsw.iterative_scan`) such filters keep recall.
CREATE TABLE search.embeddings (
    model        text        NOT NULL,
    id           bigint      NOT NULL,
    org          text        NOT NULL,
    client       text,
    project      text,
    entity       text        NOT NULL,
    source_kind  text        NOT NULL,
    -- The record's content hash when it was embedded: equal hash, no new embedding.
    content_hash bigint      NOT NULL,
    embedding    halfvec     NOT NULL,
    embedded_at  timestamptz NOT NULL,
    PRIMARY KEY (model, id)
);
CREATE INDEX embeddings_scope ON search.embeddings (model, org, id);

-- Which models have an HNSW index, and of which dimension.
CREATE TABLE search.vector_indexes (
    model      text        PRIMARY KEY,
    dim        integer     NOT NULL CHECK (dim BETWEEN 1 AND 4000),
    index_name text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
