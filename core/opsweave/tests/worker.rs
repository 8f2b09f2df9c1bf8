//! The worker loop on an embedded store: it fills its free slots with batch claims, never runs
//! more jobs than its concurrency, keeps long jobs leased with heartbeats, completes what
//! succeeded and records what failed (bad input for good, at its first attempt).
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave::worker::{JobOutcome, Worker, WorkerOptions};
use opsweave::{Error, JobStatus, NewJob, Scope, Weave};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONCURRENCY: usize = 4;

/// An embedded store in `dir`.
async fn open(dir: &tempfile::TempDir) -> Weave {
    Weave::open(&format!("sqlite://{}", dir.path().join("w.db").display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_every_job_once_within_its_slots() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let queue = weave.jobs().unwrap().clone();
    let scope = Scope::org("acme");
    let mut expected = HashMap::new();
    for n in 0..40 {
        let job = NewJob::new("count", scope.clone(), serde_json::json!({ "n": n }));
        expected.insert(queue.enqueue(job).await.unwrap().id, JobStatus::Done);
    }
    // Bad input: failed at the first attempt though two more are allowed.
    for n in 0..3 {
        let job =
            NewJob::new("boom", scope.clone(), serde_json::json!({ "n": n })).with_max_attempts(3);
        expected.insert(queue.enqueue(job).await.unwrap().id, JobStatus::Failed);
    }
    // Longer than the lease: only heartbeats keep these.
    for _ in 0..2 {
        let job = NewJob::new("sleep", scope.clone(), serde_json::json!({ "ms": 900 }));
        expected.insert(queue.enqueue(job).await.unwrap().id, JobStatus::Done);
    }

    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut options = WorkerOptions::new("w");
    options.concurrency = CONCURRENCY;
    options.lease = Duration::from_millis(300);
    options.idle_poll = Duration::from_millis(20);
    let (now, peak) = (running.clone(), most.clone());
    let worker = Worker::new(weave.clone(), options)
        .unwrap()
        .handle(
            "count",
            Arc::new(move |_, _, _| {
                let (now, peak) = (now.clone(), peak.clone());
                Box::pin(async move {
                    let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(at_once, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
            }),
        )
        .handle(
            "boom",
            Arc::new(|_, _, _| Box::pin(async { Err(Error::invalid("this job always fails")) })),
        );

    let outcomes: Arc<Mutex<Vec<(i64, String, JobOutcome)>>> = Arc::default();
    let seen = outcomes.clone();
    let total = expected.len();
    let (all_seen, mut stop) = tokio::sync::watch::channel(false);
    let report = worker
        .run(
            async move {
                let _ = stop.wait_for(|all| *all).await;
            },
            move |job, outcome| {
                let mut seen = seen.lock().unwrap();
                let owner = job.lease_owner.clone().unwrap_or_default();
                seen.push((job.id.0, owner, outcome.clone()));
                if seen.len() == total {
                    let _ = all_seen.send(true);
                }
            },
        )
        .await
        .unwrap();

    assert_eq!((report.done, report.failed, report.lost), (42, 3, 0));
    assert!(
        most.load(Ordering::SeqCst) <= CONCURRENCY,
        "never more than the slots"
    );
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let mut once = HashMap::new();
    for (id, owner, outcome) in &outcomes {
        assert!(once.insert(*id, ()).is_none(), "job {id} reported twice");
        let slot: usize = owner.strip_prefix("w/").unwrap().parse().unwrap();
        assert!(slot < CONCURRENCY, "leased to a slot's name: {owner}");
        assert!(!matches!(outcome, JobOutcome::Lost(_)), "{outcome:?}");
    }
    for (id, status) in expected {
        let job = queue.get(&scope, id).await.unwrap();
        assert_eq!(job.status, status, "job {id}");
        assert_eq!(job.attempts, 1, "job {id} ran once");
    }
}

#[tokio::test]
async fn a_stopped_worker_claims_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let queue = weave.jobs().unwrap().clone();
    let scope = Scope::org("acme");
    let job = NewJob::new("noop", scope.clone(), serde_json::json!(null));
    let id = queue.enqueue(job).await.unwrap().id;
    let worker = Worker::new(weave.clone(), WorkerOptions::new("idle")).unwrap();
    let report = worker.run(async {}, |_, _| {}).await.unwrap();
    assert_eq!(report.done + report.failed + report.lost, 0);
    assert_eq!(
        queue.get(&scope, id).await.unwrap().status,
        JobStatus::Queued
    );
}

/// A job cancelled while it runs: its worker stops it at the next heartbeat and reports it
/// cancelled (counted with the lost ones), not as a lease lost to another worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_while_it_runs_is_reported_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let queue = weave.jobs().unwrap().clone();
    let scope = Scope::org("acme");
    let job = NewJob::new("sleep", scope.clone(), serde_json::json!({ "ms": 60_000 }));
    let id = queue.enqueue(job).await.unwrap().id;
    let mut options = WorkerOptions::new("cancel");
    options.lease = Duration::from_millis(600);
    let worker = Worker::new(weave.clone(), options).unwrap();
    let outcomes: Arc<Mutex<Vec<JobOutcome>>> = Arc::default();
    let seen = outcomes.clone();
    let (reported, mut stop) = tokio::sync::watch::channel(false);
    let canceller = {
        let (queue, scope) = (queue.clone(), scope.clone());
        async move {
            while queue.get(&scope, id).await.unwrap().status != JobStatus::Running {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            queue.cancel(&scope, id).await.unwrap();
        }
    };
    let run = worker.run(
        async move {
            let _ = stop.wait_for(|done| *done).await;
        },
        move |_, outcome| {
            seen.lock().unwrap().push(outcome.clone());
            let _ = reported.send(true);
        },
    );
    let (report, ()) = tokio::join!(run, canceller);
    let report = report.unwrap();
    assert_eq!((report.done, report.failed, report.lost), (0, 0, 1));
    assert_eq!(*outcomes.lock().unwrap(), vec![JobOutcome::Cancelled]);
}

/// A job that ends just as its worker is told to abandon what it holds keeps its outcome: a
/// success is completed, not handed back to run again. The handler raises the abandon signal
/// itself and returns at once, so the worker wakes to both together; which it takes first is
/// the runtime's pick (`select!` starts at a random branch), the outcome must not depend on it.
#[tokio::test(flavor = "current_thread")]
async fn a_job_that_succeeds_as_its_worker_abandons_is_completed() {
    for round in 0..16 {
        let dir = tempfile::tempdir().unwrap();
        let weave = open(&dir).await;
        let queue = weave.jobs().unwrap().clone();
        let scope = Scope::org("acme");
        let job = NewJob::new(
            "quick",
            scope.clone(),
            serde_json::json!({ "round": round }),
        );
        let id = queue.enqueue(job).await.unwrap().id;
        let (abandon, abandoned) = tokio::sync::oneshot::channel::<()>();
        let abandon = Arc::new(Mutex::new(Some(abandon)));
        let mut options = WorkerOptions::new("w");
        options.idle_poll = Duration::from_millis(20);
        let worker = Worker::new(weave.clone(), options).unwrap().handle(
            "quick",
            Arc::new(move |_, _, _| {
                let abandon = abandon.lock().unwrap().take();
                Box::pin(async move {
                    if let Some(abandon) = abandon {
                        let _ = abandon.send(());
                    }
                    Ok(())
                })
            }),
        );
        let outcomes: Arc<Mutex<Vec<JobOutcome>>> = Arc::default();
        let seen = outcomes.clone();
        let report = worker
            .run_until(
                std::future::pending(),
                async move {
                    let _ = abandoned.await;
                },
                move |_, outcome| seen.lock().unwrap().push(outcome.clone()),
            )
            .await
            .unwrap();
        let stored = queue.get(&scope, id).await.unwrap();
        assert_eq!(stored.status, JobStatus::Done, "round {round}: {stored:?}");
        assert_eq!(stored.attempts, 1);
        assert_eq!((report.done, report.lost), (1, 0), "round {round}");
        assert!(
            matches!(outcomes.lock().unwrap().as_slice(), [JobOutcome::Done]),
            "round {round}: {outcomes:?}"
        );
        weave.close().await;
    }
}

/// An abandon that comes before the first claim claims nothing: the queued job is left exactly
/// as it was (not leased, started and handed back).
#[tokio::test]
async fn a_worker_abandoned_before_it_starts_claims_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let queue = weave.jobs().unwrap().clone();
    let scope = Scope::org("acme");
    let queued = queue
        .enqueue(NewJob::new(
            "sleep",
            scope.clone(),
            serde_json::json!({ "ms": 5 }),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let worker = Worker::new(weave.clone(), WorkerOptions::new("gone")).unwrap();
    let report = worker
        .run_until(std::future::pending(), async {}, |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.done + report.failed + report.lost, 0);
    assert_eq!(queue.get(&scope, queued.id).await.unwrap(), queued);
}
