//! The SQLite store exports every row and imports it into another SQLite store, ids kept.

use opsweave_sqlite::SqliteStore;
use opsweave_testkit::{snapshot_copies_every_kind, SnapshotBackend};
use std::sync::Arc;

mod common;

async fn open(dir: &std::path::Path, name: &str) -> Arc<dyn SnapshotBackend> {
    let path = dir.join(name);
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open store");
    Arc::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_copies_every_kind_into_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = SqliteStore::open(&format!(
        "sqlite://{}",
        dir.path().join("target.db").display()
    ))
    .await
    .expect("open target");
    snapshot_copies_every_kind(
        open(dir.path(), "source.db").await,
        Arc::new(target.clone()),
    )
    .await;
    target.close().await;
    // The imported records (new ones and ones imported over) are searchable as they are.
    common::assert_search_index_matches_records(&dir.path().join("target.db"));
}
