//! A handle opened from a URL carries the store's job queue.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave::jobs::{JobStatus, NewJob};
use opsweave::Scope;
use opsweave::Weave;
use std::time::Duration;

#[tokio::test]
async fn an_opened_weave_queues_and_runs_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let weave = Weave::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let jobs = weave.jobs().expect("a SQLite handle has a job queue");
    let scope = Scope::org("acme");
    let queued = jobs
        .enqueue(NewJob::new(
            "embed",
            scope.clone(),
            serde_json::json!({"batch": 1}),
        ))
        .await
        .unwrap();
    let claimed = jobs
        .claim("w1", &[], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, queued.id);
    jobs.complete(claimed.id, "w1").await.unwrap();
    let done = jobs.get(&scope, queued.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Done);
}
