//! Checks the SQLite test files share.

/// FTS5's own check: every row of `records` is in the full-text index with its current words,
/// and the index holds nothing else.
pub fn assert_search_index_matches_records(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).expect("open for the check");
    conn.execute(
        "INSERT INTO records_fts (records_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("the full-text index matches the records");
    let (records, indexed): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM records_fts_docsize)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("count");
    assert_eq!(records, indexed, "every record is indexed once");
}
