-- Every ingest batch adds one segment to the full-text index, and FTS5 merges a level's segments
-- once it holds `automerge` of them (4 by default): a large ingest rewrote each row's terms once
-- per level it climbed. At 16 a level merges a quarter as often; searches read at most 16
-- segments a level instead of 4, which measured no slower at 1,000,000 records
-- (docs/benchmarks.md, issue 2).
INSERT INTO records_fts (records_fts, rank) VALUES ('automerge', 16);
