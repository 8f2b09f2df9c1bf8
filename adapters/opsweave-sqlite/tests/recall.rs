//! The recall and memory store checks of the testkit on SQLite.

use opsweave_sqlite::SqliteStore;
use std::sync::Arc;

mod common;

#[tokio::test]
async fn sqlite_ranks_any_word_and_deletes_records_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("recall.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open store");
    opsweave_testkit::recall_text_and_delete(Arc::new(store.clone())).await;
    // On this single-threaded runtime the batches run inline; deletes go through their trigger.
    store.close().await;
    common::assert_search_index_matches_records(&path);
}
