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

/// A record given twice in one page is stored once, as its later row, and stays searchable as
/// that row: also into an empty database, where nothing is indexed yet.
#[tokio::test]
async fn a_record_repeated_in_a_page_is_imported_once_as_its_later_row() {
    use opsweave_core::{RecordStore, Scope, Snapshot, SnapshotKind, SnapshotPage};
    use opsweave_testkit::{id_of, TaskFixture};
    let dir = tempfile::tempdir().expect("temp dir");
    let source = SqliteStore::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .expect("open source");
    let scope = Scope::org("acme");
    let items = [
        TaskFixture::new("R-1", "quarterly renewal", Some(1), 0.5).item(&scope),
        TaskFixture::new("R-2", "invoice review", Some(2), 0.5).item(&scope),
    ];
    source
        .ingest_batch(&scope, "r.csv", &items, &[])
        .await
        .expect("ingest");
    let SnapshotPage::Records(mut rows) = source
        .export(SnapshotKind::Records, None, 10)
        .await
        .expect("export")
    else {
        panic!("a records page")
    };
    let first = rows
        .iter()
        .position(|r| r.record.id == id_of(&scope, "R-1"))
        .expect("R-1 exported");
    let mut later = rows[first].clone();
    later.record.title = "annual contract".into();
    later.record.body = "body of annual contract".into();
    rows.push(later);
    let path = dir.path().join("t.db");
    let target = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open target");
    target
        .import(SnapshotPage::Records(rows))
        .await
        .expect("a page with a repeated record imports");
    let stored = target
        .record(&scope, id_of(&scope, "R-1"))
        .await
        .expect("R-1 imported");
    assert_eq!(stored.title, "annual contract", "the later row wins");
    assert_eq!(target.counts(&scope).await.expect("counts").0, 2);
    let hits = target.search(&scope, "contract", 10).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert!(target
        .search(&scope, "quarterly", 10)
        .await
        .expect("search")
        .is_empty());
    target.close().await;
    common::assert_search_index_matches_records(&path);
}
