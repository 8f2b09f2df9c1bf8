-- New records reach the full-text index with one statement per ingest batch (or import), not by
-- a trigger per row: FTS5 writes its pending terms out as a segment at the end of every
-- statement, so rows written one per statement would each leave a segment to merge. Updates and
-- deletes keep their triggers.
DROP TRIGGER records_fts_insert;
