//! The SQLite store passes the job queue conformance suite.

use opsweave_core::jobs::{Job, JobId, JobQueue, JobStatus, NewJob, Progress};
use opsweave_core::{Result, Scope};
use opsweave_sqlite::SqliteStore;
use opsweave_testkit::run_queue_conformance;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let scope = Scope::org("acme");
    let job = store
        .enqueue(
            NewJob::new("embed", scope.clone(), serde_json::json!({"batch": 7}))
                .with_idempotency_key("k"),
        )
        .await
        .expect("enqueue");
    store.close().await;
    let reopened = SqliteStore::open(&url).await.expect("reopen");
    assert_eq!(reopened.get(&scope, job.id).await.expect("get"), job);
}

#[tokio::test]
async fn a_payload_damaged_outside_opsweave_fails_its_job_not_every_claim() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url).await.expect("open store");
    let scope = Scope::org("acme");
    let damaged = store
        .enqueue(NewJob::new(
            "sleep",
            scope.clone(),
            serde_json::json!({"ms": 1}),
        ))
        .await
        .expect("enqueue");
    let sound = store
        .enqueue(NewJob::new(
            "sleep",
            scope.clone(),
            serde_json::json!({"ms": 2}),
        ))
        .await
        .expect("enqueue");
    let other = rusqlite::Connection::open(&path).expect("open file");
    other
        .execute(
            "UPDATE jobs SET payload = '{\"ms\": 1' WHERE id = ?1",
            [damaged.id.0],
        )
        .expect("damage the payload");
    drop(other);
    let lease = std::time::Duration::from_secs(30);
    let first = store
        .claim("w", &[], lease)
        .await
        .expect("a claim despite the damaged row")
        .expect("a job");
    assert_eq!(first.id, damaged.id);
    assert_eq!(
        first.payload,
        serde_json::json!("{\"ms\": 1"),
        "the text kept"
    );
    let second = store
        .claim("w2", &[], lease)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(second.id, sound.id);
    assert_eq!(second.payload, serde_json::json!({"ms": 2}));
}

/// Prints how many jobs per second 4 workers claim and complete (a measurement, not a check):
/// `cargo test --release -p opsweave-sqlite --test jobs -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; run by hand"]
async fn queue_throughput() {
    use opsweave_core::{NewJob, Scope};
    const JOBS: usize = 5_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("speed.db").display());
    let store = Arc::new(SqliteStore::open(&url).await.expect("open store"));
    for n in 0..JOBS {
        let job = NewJob::new("embed", Scope::org("acme"), serde_json::json!(n));
        store.enqueue(job).await.expect("enqueue");
    }
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let lease = std::time::Duration::from_secs(60);
            let mut done = 0usize;
            while let Some(job) = store.claim(&name, &[], lease).await.expect("claim") {
                store.complete(job.id, &name).await.expect("complete");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total, JOBS);
    println!(
        "sqlite queue: {JOBS} jobs claimed and completed by 4 workers in {secs:.2} s = {:.0} jobs/s",
        JOBS as f64 / secs
    );
}

/// A queue that forwards everything to the store but counting open jobs, so the trait's
/// default `count_open` (for queues outside the workspace) is what answers.
struct DefaultCount(SqliteStore);

#[async_trait::async_trait]
impl JobQueue for DefaultCount {
    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        self.0.enqueue(job).await
    }

    async fn claim(&self, worker: &str, kinds: &[String], lease: Duration) -> Result<Option<Job>> {
        self.0.claim(worker, kinds, lease).await
    }

    async fn heartbeat(
        &self,
        id: JobId,
        worker: &str,
        lease: Duration,
        progress: Option<Progress>,
    ) -> Result<Job> {
        self.0.heartbeat(id, worker, lease, progress).await
    }

    async fn complete(&self, id: JobId, worker: &str) -> Result<Job> {
        self.0.complete(id, worker).await
    }

    async fn record_failure(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry: bool,
    ) -> Result<Job> {
        self.0.record_failure(id, worker, error, retry).await
    }

    async fn release(&self, id: JobId, worker: &str) -> Result<Job> {
        self.0.release(id, worker).await
    }

    async fn cancel(&self, scope: &Scope, id: JobId) -> Result<Job> {
        self.0.cancel(scope, id).await
    }

    async fn get(&self, scope: &Scope, id: JobId) -> Result<Job> {
        self.0.get(scope, id).await
    }

    async fn list(
        &self,
        scope: &Scope,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        self.0.list(scope, status, limit).await
    }
}

#[tokio::test]
async fn the_default_count_of_open_jobs_lists_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let store = SqliteStore::open(&url).await.expect("open store");
    opsweave_testkit::open_jobs_are_counted_by_status_kind_and_scope(Arc::new(DefaultCount(store)))
        .await;
}
