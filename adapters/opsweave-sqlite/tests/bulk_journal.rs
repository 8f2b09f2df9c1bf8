//! The journal a first bulk load writes through: a rollback journal when the store's file has
//! no other connection (the load is written once, into the file), the WAL when it has one, and
//! the WAL again once the load ends, finished or dropped.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave_core::{BulkLoad, IngestItem, RecordStore, Scope};
use opsweave_sqlite::SqliteStore;
use opsweave_testkit::TaskFixture;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

fn items(scope: &Scope, n: usize) -> Vec<IngestItem> {
    (0..n)
        .map(|i| {
            TaskFixture::new(&format!("T-{i}"), &format!("task {i}"), Some(1), 0.5).item(scope)
        })
        .collect()
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// The file's journal mode as a new connection finds it (closed at once: in WAL mode a
/// connection holds the file open until it closes).
fn journal_mode(path: &Path) -> rusqlite::Result<String> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))
}

fn records(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .unwrap()
}

/// A bulk load begun on the empty `store` (org `acme`) that has written tasks `T-0` to
/// `T-{n-1}`, all of them new.
async fn load_of(store: &SqliteStore, n: usize) -> Box<dyn BulkLoad> {
    let scope = Scope::org("acme");
    let mut load = store
        .begin_bulk_load(&scope)
        .await
        .unwrap()
        .expect("an empty store takes a bulk load");
    let outcome = load
        .write("tasks.csv", &items(&scope, n), &[])
        .await
        .unwrap();
    assert_eq!(outcome.inserted, n as u64);
    load
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_alone_loads_through_a_rollback_journal_and_ends_on_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alone.db");
    let store = open(&path).await;
    let load = load_of(&store, 500).await;
    // Written into the file, its first pages kept in a rollback journal; no WAL at all.
    assert!(beside(&path, "-journal").exists());
    assert!(!beside(&path, "-wal").exists());
    load.finish().await.unwrap();
    assert!(!beside(&path, "-journal").exists());
    assert_eq!(journal_mode(&path).unwrap(), "wal");
    assert_eq!(records(&path), 500);
    common::assert_search_index_matches_records(&path);
    // The writer is back on the WAL too: a later batch goes there.
    let scope = Scope::org("acme");
    let more = items(&scope, 600);
    let outcome = store
        .ingest_batch(&scope, "tasks.csv", &more[500..], &[])
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 100);
    assert!(beside(&path, "-wal").exists());
    store.close().await;
    assert_eq!(records(&path), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_another_connection_holds_loads_through_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let store = open(&path).await;
    // A reader elsewhere (another process, say) that has read the file keeps it open.
    let reader = rusqlite::Connection::open(&path).unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .unwrap();
    assert_eq!(seen, 0);
    let load = load_of(&store, 500).await;
    assert!(!beside(&path, "-journal").exists());
    // The reader still reads the empty store meanwhile, as WAL readers do.
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .unwrap();
    assert_eq!(seen, 0);
    load.finish().await.unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .unwrap();
    assert_eq!(seen, 500);
    drop(reader);
    store.close().await;
    assert_eq!(journal_mode(&path).unwrap(), "wal");
    common::assert_search_index_matches_records(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_dropped_unfinished_stores_nothing_and_the_store_goes_back_to_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.db");
    let store = open(&path).await;
    let load = load_of(&store, 500).await;
    assert!(beside(&path, "-journal").exists());
    drop(load);
    // The rollback and the switch back run on the runtime once the writer comes back.
    let started = Instant::now();
    while journal_mode(&path).ok().as_deref() != Some("wal") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the file stayed off the WAL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(records(&path), 0);
    assert!(!beside(&path, "-journal").exists());
    // A second load finds the store empty again and completes.
    let load = load_of(&store, 300).await;
    load.finish().await.unwrap();
    store.close().await;
    assert_eq!(records(&path), 300);
    assert_eq!(journal_mode(&path).unwrap(), "wal");
    common::assert_search_index_matches_records(&path);
}
