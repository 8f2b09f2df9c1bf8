//! The SQLite store passes the job queue conformance suite.

use opsweave_core::jobs::JobQueue;
use opsweave_sqlite::SqliteStore;
use opsweave_testkit::run_queue_conformance;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_queue_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = AtomicUsize::new(0);
    run_queue_conformance(|| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let path = dir.path().join(format!("jobs-{n}.db"));
        async move {
            let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
                .await
                .expect("open store");
            Arc::new(store) as Arc<dyn JobQueue>
        }
    })
    .await;
}

#[tokio::test]
async fn jobs_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let store = SqliteStore::open(&url).await.expect("open store");
    let scope = opsweave_core::Scope::org("acme");
    let job = store
        .enqueue(
            opsweave_core::NewJob::new("embed", scope.clone(), serde_json::json!({"batch": 7}))
                .with_idempotency_key("k"),
        )
        .await
        .expect("enqueue");
    store.close().await;
    let reopened = SqliteStore::open(&url).await.expect("reopen");
    assert_eq!(reopened.get(&scope, job.id).await.expect("get"), job);
}
