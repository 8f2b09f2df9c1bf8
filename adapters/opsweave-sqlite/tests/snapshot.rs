//! The SQLite store exports every row and imports it into another SQLite store, ids kept.

use opsweave_sqlite::SqliteStore;
use opsweave_testkit::{snapshot_copies_every_kind, SnapshotBackend};
use std::sync::Arc;

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
    snapshot_copies_every_kind(
        open(dir.path(), "source.db").await,
        open(dir.path(), "target.db").await,
    )
    .await;
}
