//! The conformance suite every [`JobQueue`] must pass.
//!
//! Leases in these checks are short (200 ms) and the waits past them generous (several times
//! longer), so a slow machine makes the suite slower, never wrong.

use opsweave_core::jobs::{Job, JobId, JobQueue, JobStatus, NewJob, OpenJobs, Progress, MAX_BATCH};
use opsweave_core::{ErrorKind, Scope};
use serde_json::json;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A lease long enough that no check outlives it by accident.
const LONG_LEASE: Duration = Duration::from_secs(60);
/// A lease the lease-expiry checks wait out.
const SHORT_LEASE: Duration = Duration::from_millis(200);
/// How long the checks wait for a short lease to expire.
const PAST_SHORT_LEASE: Duration = Duration::from_millis(800);

/// Runs every queue check, each on a fresh queue from `open`.
pub async fn run_queue_conformance<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn JobQueue>>,
{
    enqueue_get_and_list(open().await).await;
    enqueue_is_idempotent(open().await).await;
    claim_heartbeat_complete(open().await).await;
    concurrent_claimers_never_share_a_job(open().await).await;
    expired_lease_passes_to_another_worker(open().await).await;
    failures_back_off_then_fail(open().await).await;
    a_failure_for_good_is_never_retried(open().await).await;
    a_released_job_is_queued_again_without_using_an_attempt(open().await).await;
    cancel_stops_a_job(open().await).await;
    bad_input_is_rejected(open().await).await;
    batches_claim_in_order_and_complete_per_job(open().await).await;
    racing_batch_claimers_never_share_a_job(open().await).await;
    expired_leases_return_in_batches(open().await).await;
    jobs_dead_letter_after_their_attempts(open().await).await;
    open_jobs_are_counted_by_status_kind_and_scope(open().await).await;
}

fn acme() -> Scope {
    Scope::org("acme")
}

fn job(kind: &str, n: u64) -> NewJob {
    NewJob::new(kind, acme(), json!({ "n": n }))
}

async fn claim(queue: &dyn JobQueue, worker: &str, lease: Duration) -> Option<Job> {
    queue.claim(worker, &[], lease).await.unwrap()
}

/// An enqueued job is queued, readable in its scope only, and listed by status.
pub async fn enqueue_get_and_list(queue: Arc<dyn JobQueue>) {
    let first = queue.enqueue(job("embed", 1)).await.unwrap();
    assert_eq!(first.status, JobStatus::Queued);
    assert_eq!((first.attempts, first.max_attempts), (0, 3));
    assert_eq!(first.payload, json!({ "n": 1 }));
    assert_eq!(first.kind, "embed");
    assert!(first.lease_owner.is_none() && first.error.is_none());
    let got = queue.get(&acme(), first.id).await.unwrap();
    assert_eq!(got, first, "get returns what enqueue stored");
    let other = Scope::org("globex");
    let err = queue.get(&other, first.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "another org's job: {err}");
    let missing = queue.get(&acme(), JobId(first.id.0 + 1000)).await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);

    let second = queue.enqueue(job("embed", 2)).await.unwrap();
    let narrow = Scope::org("acme").with_client("initech");
    let third = queue
        .enqueue(NewJob::new("match", narrow.clone(), json!(null)))
        .await
        .unwrap();
    let running = claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    assert_eq!(
        running.id, first.id,
        "the oldest runnable job is claimed first"
    );

    let queued = queue
        .list(&acme(), Some(JobStatus::Queued), 10)
        .await
        .unwrap();
    let ids: Vec<JobId> = queued.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![third.id, second.id], "newest first");
    let all = queue.list(&acme(), None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(queue.list(&acme(), None, 1).await.unwrap().len(), 1);
    let running_only = queue
        .list(&acme(), Some(JobStatus::Running), 10)
        .await
        .unwrap();
    assert_eq!(running_only.len(), 1);
    assert_eq!(running_only[0].id, first.id);
    let narrowed = queue.list(&narrow, None, 10).await.unwrap();
    assert_eq!(narrowed.len(), 1, "a client scope sees its own jobs only");
    assert_eq!(narrowed[0].id, third.id);
    assert!(queue.list(&other, None, 10).await.unwrap().is_empty());
}

/// The same key in the same scope returns the same job, also when enqueued concurrently.
pub async fn enqueue_is_idempotent(queue: Arc<dyn JobQueue>) {
    let first = queue
        .enqueue(job("ingest", 1).with_idempotency_key("upload-42"))
        .await
        .unwrap();
    let again = queue
        .enqueue(job("ingest", 2).with_idempotency_key("upload-42"))
        .await
        .unwrap();
    assert_eq!(
        again, first,
        "same key, same scope: the first job, unchanged"
    );
    let other_key = queue
        .enqueue(job("ingest", 1).with_idempotency_key("upload-43"))
        .await
        .unwrap();
    assert_ne!(other_key.id, first.id);
    let other_scope = queue
        .enqueue(
            NewJob::new("ingest", acme().with_client("initech"), json!(1))
                .with_idempotency_key("upload-42"),
        )
        .await
        .unwrap();
    assert_ne!(other_scope.id, first.id, "keys are per scope");
    let unkeyed_a = queue.enqueue(job("ingest", 1)).await.unwrap();
    let unkeyed_b = queue.enqueue(job("ingest", 1)).await.unwrap();
    assert_ne!(unkeyed_a.id, unkeyed_b.id, "no key: every enqueue is a job");

    // The key holds after the job ran.
    let running = claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    assert_eq!(running.id, first.id);
    queue.complete(first.id, "w1").await.unwrap();
    let after = queue
        .enqueue(job("ingest", 3).with_idempotency_key("upload-42"))
        .await
        .unwrap();
    assert_eq!((after.id, after.status), (first.id, JobStatus::Done));

    let mut racing = Vec::new();
    for n in 0..8 {
        let queue = queue.clone();
        racing.push(tokio::spawn(async move {
            queue
                .enqueue(job("ingest", n).with_idempotency_key("race"))
                .await
                .unwrap()
                .id
        }));
    }
    let mut ids = HashSet::new();
    for task in racing {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "concurrent enqueues of one key make one job");
}

/// A claimed job is leased to its worker, reports progress, and completes.
pub async fn claim_heartbeat_complete(queue: Arc<dyn JobQueue>) {
    assert!(claim(&*queue, "w1", LONG_LEASE).await.is_none(), "empty");
    let embed = queue.enqueue(job("embed", 1)).await.unwrap();
    let matching = queue.enqueue(job("match", 2)).await.unwrap();
    let only_match = queue
        .claim("w1", &["match".to_string()], LONG_LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(only_match.id, matching.id, "claim honours kinds");
    let held = claim(&*queue, "w2", LONG_LEASE).await.unwrap();
    assert_eq!(held.id, embed.id);
    assert_eq!(held.status, JobStatus::Running);
    assert_eq!(held.attempts, 1);
    assert_eq!(held.lease_owner.as_deref(), Some("w2"));
    let expires = held.lease_expires_at.unwrap();
    assert!(expires > held.updated_at);
    assert_eq!(
        queue.get(&acme(), held.id).await.unwrap(),
        held,
        "a claim answers the job as it stored it"
    );
    assert!(
        claim(&*queue, "w3", LONG_LEASE).await.is_none(),
        "held jobs are not claimed again"
    );

    let beat = queue
        .heartbeat(
            embed.id,
            "w2",
            LONG_LEASE * 2,
            Some(Progress::new(0.25, "batch 1 of 4")),
        )
        .await
        .unwrap();
    assert_eq!(beat.progress, 0.25);
    assert_eq!(beat.message.as_deref(), Some("batch 1 of 4"));
    assert!(
        beat.lease_expires_at.unwrap() > expires,
        "heartbeat extends"
    );
    let plain = queue
        .heartbeat(embed.id, "w2", LONG_LEASE, None)
        .await
        .unwrap();
    assert_eq!(plain.progress, 0.25, "a bare heartbeat keeps progress");
    let stolen = queue.heartbeat(embed.id, "w3", LONG_LEASE, None).await;
    assert_eq!(stolen.unwrap_err().kind(), ErrorKind::Conflict);
    let err = queue.complete(embed.id, "w3").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "only the holder completes");

    let done = queue.complete(embed.id, "w2").await.unwrap();
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(done.progress, 1.0);
    assert!(done.finished_at.is_some() && done.lease_owner.is_none());
    let again = queue.complete(embed.id, "w2").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
    let late = queue.heartbeat(embed.id, "w2", LONG_LEASE, None).await;
    assert_eq!(late.unwrap_err().kind(), ErrorKind::Conflict);
    let missing = queue.complete(JobId(embed.id.0 + 1000), "w2").await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
}

/// N workers claiming M jobs at once: each job is claimed once and all end done.
pub async fn concurrent_claimers_never_share_a_job(queue: Arc<dyn JobQueue>) {
    const JOBS: u64 = 60;
    const WORKERS: usize = 6;
    let mut enqueued = HashSet::new();
    for n in 0..JOBS {
        enqueued.insert(queue.enqueue(job("embed", n)).await.unwrap().id);
    }
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("worker-{w}");
            let mut mine = Vec::new();
            while let Some(job) = queue.claim(&name, &[], LONG_LEASE).await.unwrap() {
                assert_eq!(job.lease_owner.as_deref(), Some(name.as_str()));
                queue
                    .heartbeat(job.id, &name, LONG_LEASE, Some(Progress::new(0.5, "half")))
                    .await
                    .unwrap();
                queue.complete(job.id, &name).await.unwrap();
                mine.push(job.id);
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(seen, enqueued, "every job was claimed once");
    let done = queue
        .list(&acme(), Some(JobStatus::Done), 1000)
        .await
        .unwrap();
    assert_eq!(done.len() as u64, JOBS);
    assert!(done.iter().all(|j| j.attempts == 1));
}

/// A worker that stops heartbeating loses its job to another once the lease expires.
pub async fn expired_lease_passes_to_another_worker(queue: Arc<dyn JobQueue>) {
    let enqueued = queue.enqueue(job("embed", 1)).await.unwrap();
    let first = claim(&*queue, "crashed", SHORT_LEASE).await.unwrap();
    assert_eq!(first.id, enqueued.id);
    tokio::time::sleep(PAST_SHORT_LEASE).await;
    let rescued = claim(&*queue, "rescuer", LONG_LEASE)
        .await
        .expect("an expired lease returns the job to the queue");
    assert_eq!(rescued.id, enqueued.id);
    assert_eq!(rescued.attempts, 2, "the lost attempt counts");
    assert_eq!(rescued.lease_owner.as_deref(), Some("rescuer"));
    assert_eq!(queue.get(&acme(), rescued.id).await.unwrap(), rescued);
    let err = queue
        .heartbeat(enqueued.id, "crashed", LONG_LEASE, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "the old worker lost it");
    let err = queue.complete(enqueued.id, "crashed").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = queue
        .fail(enqueued.id, "crashed", "boom")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let done = queue.complete(enqueued.id, "rescuer").await.unwrap();
    assert_eq!(done.status, JobStatus::Done);

    // A lease lost on the last allowed attempt fails the job instead of running it again.
    let once = queue
        .enqueue(job("embed", 2).with_max_attempts(1))
        .await
        .unwrap();
    claim(&*queue, "crashed", SHORT_LEASE).await.unwrap();
    tokio::time::sleep(PAST_SHORT_LEASE).await;
    assert!(claim(&*queue, "rescuer", LONG_LEASE).await.is_none());
    let failed = queue.get(&acme(), once.id).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.is_some() && failed.finished_at.is_some());
}

/// A failed attempt waits out its backoff (`run_after`); the last one fails the job.
pub async fn failures_back_off_then_fail(queue: Arc<dyn JobQueue>) {
    let backoff = Duration::from_millis(1000);
    let enqueued = queue
        .enqueue(job("embed", 1).with_max_attempts(2).with_backoff(backoff))
        .await
        .unwrap();
    claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    let retry = queue.fail(enqueued.id, "w1", "rate limited").await.unwrap();
    assert_eq!(retry.status, JobStatus::Queued);
    assert_eq!(retry.error.as_deref(), Some("rate limited"));
    assert!(retry.lease_owner.is_none() && retry.finished_at.is_none());
    let wait = (retry.run_after - retry.updated_at).to_std().unwrap();
    assert!(wait >= backoff - Duration::from_millis(5), "{wait:?}");
    assert!(
        claim(&*queue, "w2", LONG_LEASE).await.is_none(),
        "not claimed before run_after"
    );
    tokio::time::sleep(backoff + Duration::from_millis(500)).await;
    let second = claim(&*queue, "w2", LONG_LEASE).await.unwrap();
    assert_eq!((second.id, second.attempts), (enqueued.id, 2));
    assert_eq!(
        second.error.as_deref(),
        Some("rate limited"),
        "the last error stays"
    );
    assert_eq!(queue.get(&acme(), second.id).await.unwrap(), second);
    let failed = queue
        .fail(enqueued.id, "w2", "still limited")
        .await
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("still limited"));
    assert!(failed.finished_at.is_some());
    assert!(claim(&*queue, "w3", LONG_LEASE).await.is_none());

    // A job enqueued to run later waits too.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    queue
        .enqueue(job("embed", 2).run_after(later))
        .await
        .unwrap();
    assert!(claim(&*queue, "w3", LONG_LEASE).await.is_none());
    // Parked far ahead: the time is kept to the millisecond, as enqueue answered it.
    let parked_until = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let parked = queue
        .enqueue(job("embed", 3).run_after(parked_until))
        .await
        .unwrap();
    assert_eq!(parked.run_after, parked_until);
    assert_eq!(queue.get(&acme(), parked.id).await.unwrap(), parked);
    assert!(claim(&*queue, "w3", LONG_LEASE).await.is_none());
}

/// A job failed for good is failed at once, attempts left or not, and only by its holder.
pub async fn a_failure_for_good_is_never_retried(queue: Arc<dyn JobQueue>) {
    let enqueued = queue
        .enqueue(job("ingest", 1).with_max_attempts(3))
        .await
        .unwrap();
    claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    let err = queue
        .fail_for_good(enqueued.id, "someone-else", "bad row")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let failed = queue
        .fail_for_good(enqueued.id, "w1", "bad header")
        .await
        .unwrap();
    assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 1));
    assert_eq!(failed.error.as_deref(), Some("bad header"));
    assert!(failed.lease_owner.is_none() && failed.finished_at.is_some());
    assert!(claim(&*queue, "w2", LONG_LEASE).await.is_none());
    assert_eq!(
        queue.get(&acme(), enqueued.id).await.unwrap().status,
        JobStatus::Failed
    );
}

/// A job its worker hands back is queued again at once, its attempt not counted, and only the
/// worker that holds it can hand it back.
pub async fn a_released_job_is_queued_again_without_using_an_attempt(queue: Arc<dyn JobQueue>) {
    let enqueued = queue
        .enqueue(job("ingest", 1).with_max_attempts(1))
        .await
        .unwrap();
    claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    let err = queue
        .release(enqueued.id, "someone-else")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let released = queue.release(enqueued.id, "w1").await.unwrap();
    assert_eq!((released.status, released.attempts), (JobStatus::Queued, 0));
    assert!(released.lease_owner.is_none() && released.lease_expires_at.is_none());
    // Its only attempt is still there: another worker runs it to the end.
    let again = claim(&*queue, "w2", LONG_LEASE)
        .await
        .expect("claimable at once");
    assert_eq!((again.id, again.attempts), (enqueued.id, 1));
    let err = queue.release(enqueued.id, "w1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let done = queue.complete(enqueued.id, "w2").await.unwrap();
    assert_eq!(done.status, JobStatus::Done);
}

/// Cancelling stops a queued job before it runs and takes a running one from its worker.
pub async fn cancel_stops_a_job(queue: Arc<dyn JobQueue>) {
    let queued = queue.enqueue(job("embed", 1)).await.unwrap();
    let err = queue
        .cancel(&Scope::org("globex"), queued.id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "another org cannot cancel");
    let cancelled = queue.cancel(&acme(), queued.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert!(claim(&*queue, "w1", LONG_LEASE).await.is_none());
    let again = queue.cancel(&acme(), queued.id).await.unwrap();
    assert_eq!(again.status, JobStatus::Cancelled, "cancel is idempotent");

    let running = queue.enqueue(job("embed", 2)).await.unwrap();
    claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    queue.cancel(&acme(), running.id).await.unwrap();
    let err = queue
        .heartbeat(running.id, "w1", LONG_LEASE, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "the worker learns to stop");
    let err = queue.complete(running.id, "w1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        queue.get(&acme(), running.id).await.unwrap().status,
        JobStatus::Cancelled
    );

    let finished = queue.enqueue(job("embed", 3)).await.unwrap();
    claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    queue.complete(finished.id, "w1").await.unwrap();
    let err = queue.cancel(&acme(), finished.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "a done job stays done");
}

/// Bad arguments are `InvalidInput` and change nothing.
pub async fn bad_input_is_rejected(queue: Arc<dyn JobQueue>) {
    let err = queue.enqueue(job("", 1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = queue
        .enqueue(job("embed", 1).with_max_attempts(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(queue.list(&acme(), None, 10).await.unwrap().is_empty());

    let held = queue.enqueue(job("embed", 1)).await.unwrap();
    let err = queue.claim("", &[], LONG_LEASE).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = queue.claim("w1", &[], Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    claim(&*queue, "w1", LONG_LEASE).await.unwrap();
    let err = queue
        .heartbeat(
            held.id,
            "w1",
            LONG_LEASE,
            Some(Progress::new(1.5, "too far")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let now = queue.get(&acme(), held.id).await.unwrap();
    assert_eq!((now.progress, now.status), (0.0, JobStatus::Running));
    let odd = queue
        .enqueue(NewJob::new(
            "embed",
            acme(),
            json!({ "note": "nul \u{0} here", "n": [1, 2.5] }),
        ))
        .await
        .unwrap();
    let read_back = queue.get(&acme(), odd.id).await.unwrap();
    assert_eq!(
        read_back.payload,
        json!({ "note": "nul \u{0} here", "n": [1, 2.5] })
    );
    let long_error = "x".repeat(100_000);
    let failed = queue.fail(held.id, "w1", &long_error).await.unwrap();
    assert!(failed.error.unwrap().len() <= opsweave_core::jobs::MAX_MESSAGE_BYTES);
    // The failed job waits out its backoff, so the next claim is the odd one; a NUL in an
    // error message is stored (PostgreSQL: as U+FFFD), not refused.
    let next = claim(&*queue, "w2", LONG_LEASE).await.unwrap();
    assert_eq!(next.id, odd.id);
    let kept = queue.fail(odd.id, "w2", "bad \u{0} byte").await.unwrap();
    assert!(kept.error.is_some_and(|e| e.starts_with("bad ")));
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}/{i}")).collect()
}

fn held(jobs: &[Job]) -> Vec<(JobId, String)> {
    jobs.iter()
        .map(|j| (j.id, j.lease_owner.clone().unwrap_or_default()))
        .collect()
}

/// A batch claim leases the oldest jobs, the i-th to the i-th name, honours kinds, and a batch
/// complete answers for each job on its own.
pub async fn batches_claim_in_order_and_complete_per_job(queue: Arc<dyn JobQueue>) {
    assert!(queue
        .claim_batch(&names("w", 4), &[], LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    let mut enqueued = Vec::new();
    for n in 0..5 {
        enqueued.push(queue.enqueue(job("embed", n)).await.unwrap().id);
    }
    let other_kind = queue.enqueue(job("match", 9)).await.unwrap();
    let embed = ["embed".to_string()];
    let first = queue
        .claim_batch(&names("a", 3), &embed, LONG_LEASE)
        .await
        .unwrap();
    let ids: Vec<JobId> = first.iter().map(|j| j.id).collect();
    assert_eq!(ids, enqueued[..3], "the oldest jobs, oldest first");
    for (i, job) in first.iter().enumerate() {
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.attempts, 1);
        assert_eq!(
            job.lease_owner,
            Some(format!("a/{i}")),
            "the i-th job to the i-th name"
        );
        assert!(job.lease_expires_at.is_some());
    }
    let rest = queue
        .claim_batch(&names("b", 10), &embed, LONG_LEASE)
        .await
        .unwrap();
    let ids: Vec<JobId> = rest.iter().map(|j| j.id).collect();
    assert_eq!(ids, enqueued[3..], "fewer jobs than names: what there is");
    assert_eq!(
        queue.get(&acme(), other_kind.id).await.unwrap().status,
        JobStatus::Queued,
        "kinds are honoured"
    );

    // Completing: a held job, one held by another worker, a missing job, and the same job twice.
    let missing = JobId(other_kind.id.0 + 1000);
    let pairs = vec![
        (first[0].id, "a/0".to_string()),
        (first[1].id, "a/0".to_string()),
        (missing, "a/0".to_string()),
        (first[2].id, "a/2".to_string()),
        (first[2].id, "a/2".to_string()),
    ];
    let results = queue.complete_batch(&pairs).await.unwrap();
    let kinds: Vec<Option<ErrorKind>> = results
        .iter()
        .map(|r| r.as_ref().err().map(opsweave_core::Error::kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            None,
            Some(ErrorKind::Conflict),
            Some(ErrorKind::NotFound),
            None,
            Some(ErrorKind::Conflict),
        ],
        "each pair as a single complete in order would answer: {results:?}"
    );
    let statuses = |ids: Vec<JobId>| {
        let queue = queue.clone();
        async move {
            let mut statuses = Vec::new();
            for id in ids {
                statuses.push(queue.get(&acme(), id).await.unwrap().status);
            }
            statuses
        }
    };
    assert_eq!(
        statuses(vec![first[0].id, first[1].id, first[2].id]).await,
        vec![JobStatus::Done, JobStatus::Running, JobStatus::Done]
    );
    let done = queue.get(&acme(), first[0].id).await.unwrap();
    assert_eq!(done.progress, 1.0);
    assert!(done.finished_at.is_some() && done.lease_owner.is_none());
    let results = queue.complete_batch(&held(&rest)).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(queue.complete_batch(&[]).await.unwrap().is_empty());

    // Bad batches change nothing.
    let err = queue
        .claim_batch(&names("c", MAX_BATCH + 1), &[], LONG_LEASE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = queue
        .claim_batch(&["ok".to_string(), String::new()], &[], LONG_LEASE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "an empty worker name");
    let err = queue
        .claim_batch(&names("c", 2), &[], Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let too_many: Vec<(JobId, String)> = (0..=MAX_BATCH as i64)
        .map(|i| (JobId(i), "w".to_string()))
        .collect();
    let err = queue.complete_batch(&too_many).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        queue.get(&acme(), other_kind.id).await.unwrap().status,
        JobStatus::Queued
    );
}

/// Batch claimers (and a single claimer) racing over the same jobs: each job is leased once,
/// completed once, and every job ends done on its first attempt.
pub async fn racing_batch_claimers_never_share_a_job(queue: Arc<dyn JobQueue>) {
    const JOBS: u64 = 200;
    const CLAIMERS: usize = 5;
    let mut enqueued = HashSet::new();
    for n in 0..JOBS {
        enqueued.insert(queue.enqueue(job("embed", n)).await.unwrap().id);
    }
    let mut claimers = Vec::new();
    for c in 0..CLAIMERS {
        let queue = queue.clone();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            // Batches of 1 to 7 names; claimer 0 claims one job per call.
            let width = if c == 0 { 1 } else { 1 + (c * 3) % 7 };
            let names = names(&format!("racer-{c}"), width);
            loop {
                let jobs = if c == 0 {
                    claim(&*queue, &names[0], LONG_LEASE)
                        .await
                        .into_iter()
                        .collect()
                } else {
                    queue.claim_batch(&names, &[], LONG_LEASE).await.unwrap()
                };
                if jobs.is_empty() {
                    return mine;
                }
                for (i, job) in jobs.iter().enumerate() {
                    assert_eq!(job.lease_owner.as_deref(), Some(names[i].as_str()));
                    assert_eq!(job.status, JobStatus::Running);
                }
                let results = queue.complete_batch(&held(&jobs)).await.unwrap();
                assert!(results.iter().all(Result::is_ok), "{results:?}");
                mine.extend(jobs.iter().map(|j| j.id));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(seen, enqueued, "every job was claimed once");
    let done = queue
        .list(&acme(), Some(JobStatus::Done), 1000)
        .await
        .unwrap();
    assert_eq!(done.len() as u64, JOBS);
    assert!(done.iter().all(|j| j.attempts == 1));
}

/// Jobs whose leases expired come back, oldest lease first and before queued jobs, to a batch
/// claim; the workers that lost them can no longer complete them; a lease lost on the last
/// attempt fails its job and takes no name from the batch.
pub async fn expired_leases_return_in_batches(queue: Arc<dyn JobQueue>) {
    let mut stale = Vec::new();
    for n in 0..3 {
        stale.push(queue.enqueue(job("embed", n)).await.unwrap().id);
    }
    let last_try = queue
        .enqueue(job("embed", 3).with_max_attempts(1))
        .await
        .unwrap()
        .id;
    let crashed = queue
        .claim_batch(&names("crashed", 4), &[], SHORT_LEASE)
        .await
        .unwrap();
    assert_eq!(crashed.len(), 4);
    let fresh = queue.enqueue(job("embed", 4)).await.unwrap().id;
    tokio::time::sleep(PAST_SHORT_LEASE).await;

    let rescued = queue
        .claim_batch(&names("rescuer", 3), &[], LONG_LEASE)
        .await
        .unwrap();
    let ids: Vec<JobId> = rescued.iter().map(|j| j.id).collect();
    assert_eq!(
        ids, stale,
        "expired leases first, and the spent one takes no name"
    );
    assert!(
        rescued.iter().all(|j| j.attempts == 2),
        "the lost attempt counts"
    );
    let failed = queue.get(&acme(), last_try).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.error.is_some() && failed.finished_at.is_some());
    assert_eq!(
        queue.get(&acme(), fresh).await.unwrap().status,
        JobStatus::Queued
    );

    let late = queue.complete_batch(&held(&crashed[..3])).await.unwrap();
    assert!(
        late.iter()
            .all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Conflict)),
        "the crashed worker lost them: {late:?}"
    );
    let results = queue.complete_batch(&held(&rescued)).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let next = queue
        .claim_batch(&names("rescuer", 3), &[], LONG_LEASE)
        .await
        .unwrap();
    let ids: Vec<JobId> = next.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![fresh]);
}

/// A job that keeps failing, or whose worker keeps dying, runs at most `max_attempts` times and
/// then stays failed (dead-lettered): no batch claims it again.
pub async fn jobs_dead_letter_after_their_attempts(queue: Arc<dyn JobQueue>) {
    let backoff = Duration::from_millis(50);
    let failing = queue
        .enqueue(job("embed", 1).with_max_attempts(3).with_backoff(backoff))
        .await
        .unwrap()
        .id;
    let dying = queue
        .enqueue(job("embed", 2).with_max_attempts(2))
        .await
        .unwrap()
        .id;
    let mut failing_runs = 0;
    let mut dying_runs = 0;
    for round in 0..20 {
        let jobs = queue
            .claim_batch(&names(&format!("round-{round}"), 4), &[], SHORT_LEASE)
            .await
            .unwrap();
        for job in &jobs {
            if job.id == failing {
                failing_runs += 1;
                assert_eq!(job.attempts, failing_runs);
                let owner = job.lease_owner.as_deref().unwrap();
                queue.fail(job.id, owner, "still broken").await.unwrap();
            } else {
                assert_eq!(job.id, dying);
                dying_runs += 1;
                assert_eq!(job.attempts, dying_runs);
                // Its worker dies: no heartbeat, no complete.
            }
        }
        let now = (
            queue.get(&acme(), failing).await.unwrap().status,
            queue.get(&acme(), dying).await.unwrap().status,
        );
        if now == (JobStatus::Failed, JobStatus::Failed) {
            break;
        }
        tokio::time::sleep(PAST_SHORT_LEASE).await;
    }
    assert_eq!(
        (failing_runs, dying_runs),
        (3, 2),
        "each ran max_attempts times"
    );
    let failed = queue.get(&acme(), failing).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("still broken"));
    let died = queue.get(&acme(), dying).await.unwrap();
    assert_eq!(died.status, JobStatus::Failed);
    assert!(died.finished_at.is_some());
    tokio::time::sleep(PAST_SHORT_LEASE).await;
    assert!(queue
        .claim_batch(&names("late", 4), &[], LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
}

/// `count_open` counts queued (delayed and backing off included) and running jobs by kind and
/// scope, and forgets each job once it is done, failed or cancelled, whichever call finished it.
pub async fn open_jobs_are_counted_by_status_kind_and_scope(queue: Arc<dyn JobQueue>) {
    let count = |scope: Scope, kinds: &'static [&'static str]| {
        let queue = queue.clone();
        async move {
            let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            queue.count_open(&scope, &kinds).await.unwrap()
        }
    };
    let open = |queued, running| OpenJobs { queued, running };
    assert_eq!(count(acme(), &[]).await, open(0, 0), "an empty queue");

    let initech = acme().with_client("initech");
    let mut embeds = Vec::new();
    for n in 0..5 {
        embeds.push(queue.enqueue(job("embed", n)).await.unwrap());
    }
    let matched = queue
        .enqueue(NewJob::new("match", initech.clone(), json!(null)))
        .await
        .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    queue
        .enqueue(job("embed", 9).run_after(later))
        .await
        .unwrap();
    queue
        .enqueue(NewJob::new("embed", Scope::org("globex"), json!(null)))
        .await
        .unwrap();
    assert_eq!(
        count(acme(), &[]).await,
        open(7, 0),
        "a delayed job is queued"
    );
    assert_eq!(count(acme(), &["match"]).await, open(1, 0));
    assert_eq!(count(acme(), &["match", "embed"]).await, open(7, 0));
    assert_eq!(count(acme(), &["ingest"]).await, open(0, 0));
    assert_eq!(
        count(initech.clone(), &[]).await,
        open(1, 0),
        "a client sees its own"
    );
    assert_eq!(count(Scope::org("globex"), &[]).await, open(1, 0));

    // Claim four embeds: running.
    let kinds = ["embed".to_string()];
    let names: Vec<String> = (0..4).map(|i| format!("w{i}")).collect();
    let held = queue.claim_batch(&names, &kinds, LONG_LEASE).await.unwrap();
    assert_eq!(held.len(), 4);
    assert_eq!(count(acme(), &["embed"]).await, open(2, 4));
    assert_eq!(count(acme(), &[]).await.total(), 7);

    // Each way out of `running` or `queued`.
    queue.complete(held[0].id, "w0").await.unwrap();
    let batch = vec![(held[1].id, "w1".to_string())];
    assert!(queue.complete_batch(&batch).await.unwrap()[0].is_ok());
    queue
        .fail_for_good(held[2].id, "w2", "bad input")
        .await
        .unwrap();
    let retried = queue.fail(held[3].id, "w3", "flaky").await.unwrap();
    assert_eq!(retried.status, JobStatus::Queued, "attempts left");
    assert_eq!(
        count(acme(), &["embed"]).await,
        open(3, 0),
        "a job backing off is queued"
    );
    queue.cancel(&initech, matched.id).await.unwrap();
    queue.cancel(&acme(), embeds[4].id).await.unwrap();
    assert_eq!(count(acme(), &[]).await, open(2, 0));
    assert_eq!(count(initech, &[]).await, open(0, 0));
    assert_eq!(
        queue
            .list(&acme(), Some(JobStatus::Queued), 10)
            .await
            .unwrap()
            .len(),
        2,
        "list agrees with the count"
    );
}
