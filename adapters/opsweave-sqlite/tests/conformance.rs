//! The SQLite store passes the shared conformance suite.

use opsweave_sqlite::SqliteStore;
use opsweave_testkit::{run_conformance, Backend};
use std::sync::Arc;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    run_conformance(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("store-{n}.db"));
        async move {
            let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
                .await
                .expect("open store");
            Arc::new(store) as Arc<dyn Backend>
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_index_follows_failed_new_changed_and_repeated_batches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("search.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open store");
    // A batch that fails (and rolls back) in between leaves nothing for the next ones to trip on.
    opsweave_testkit::failed_batch_leaves_nothing(Arc::new(store.clone())).await;
    opsweave_testkit::search_follows_changed_records(Arc::new(store.clone())).await;
    store.close().await;
    common::assert_search_index_matches_records(&path);
}

#[tokio::test]
async fn open_reports_a_missing_folder_clearly() {
    let err = SqliteStore::open("sqlite:///definitely/not/here/x.db")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), opsweave_core::ErrorKind::InvalidInput);
    assert!(err.message().contains("/definitely/not/here"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opening_one_new_file_at_once_all_open_it() {
    // Each switches the new file to WAL; one that read page 1 while another wrote it was refused
    // at once ("database is locked", no busy wait), in about one round in twenty.
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..40 {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("new-{round}.db")).display()
        );
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { SqliteStore::open(&url).await })
            })
            .collect();
        for open in opens {
            let store = open
                .await
                .expect("open task")
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            store.close().await;
        }
    }
}

#[tokio::test]
async fn sqlite_stores_match_runs_and_reviews() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("match.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open store");
    opsweave_testkit::match_runs_and_review(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_passes_the_metering_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    opsweave_testkit::run_metering_conformance(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("metering-{n}.db"));
        async move {
            let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
                .await
                .expect("open store");
            Arc::new(store) as Arc<dyn opsweave_testkit::Metering>
        }
    })
    .await;
}
