-- A record's full-text document now lives in the record's own row: a search reads one table (the
-- scope and the words together) and an ingested record costs one heap row and one primary-key
-- insert fewer (search.documents had both). The schema `search` keeps the embeddings.
ALTER TABLE core.records ADD COLUMN document tsvector NOT NULL DEFAULT ''::tsvector;
UPDATE core.records r SET document = d.document FROM search.documents d WHERE d.id = r.id;
ALTER TABLE core.records ALTER COLUMN document DROP DEFAULT;
CREATE INDEX records_words ON core.records USING gin (document);
DROP TABLE search.documents;
