//! Background jobs: long work (ingest, embed, match, agent calls) queued with a lease, progress,
//! retries with exponential backoff, cancellation and idempotency keys.
//!
//! [`JobQueue`] is the storage seam; the rules a backend follows are plain functions here
//! ([`NewJob::validate`], [`retry_delay`], [`check_lease`], [`check_progress`]) so every backend
//! agrees on them.

use crate::{Error, ErrorKind, Result, Scope};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest lease a worker may take.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);
/// The longest pause [`retry_delay`] gives, however many attempts failed.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The most attempts a job may be given.
pub const MAX_ATTEMPTS: u32 = 100;
/// The most jobs one [`JobQueue::claim_batch`] or [`JobQueue::complete_batch`] call handles.
pub const MAX_BATCH: usize = 1024;
/// The longest error or progress message kept; longer ones are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A job's identifier, assigned by the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life: queued → running → done | failed | cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker (also between attempts, until `run_after`).
    Queued,
    /// Claimed by a worker that holds a lease on it.
    Running,
    /// Finished successfully.
    Done,
    /// Failed on its last allowed attempt.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// True once the job will never run again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown job status `{s}` (queued, running, done, failed, cancelled)"
                ))
                .on_field("status")
            })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// What to run (`ingest`, `embed`, `match`, …): workers pick jobs by kind.
    pub kind: String,
    /// The job's arguments, opaque to the queue.
    pub payload: serde_json::Value,
    /// Who the job belongs to.
    pub scope: Scope,
    /// Enqueuing the same key again in the same scope returns the first job instead of a new one.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Attempts allowed before the job is failed (at least 1).
    pub max_attempts: u32,
    /// The pause after the first failed attempt; it doubles after each further one.
    #[serde(with = "millis")]
    pub backoff: Duration,
    /// Not claimed before this instant (None: at once).
    #[serde(default)]
    pub run_after: Option<DateTime<Utc>>,
}

impl NewJob {
    /// A job of `kind` in `scope` with 3 attempts and a 1 s first backoff.
    pub fn new(kind: impl Into<String>, scope: Scope, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            scope,
            idempotency_key: None,
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            run_after: None,
        }
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the attempts allowed.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the first backoff.
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Delays the first claim until `at`.
    pub fn run_after(mut self, at: DateTime<Utc>) -> Self {
        self.run_after = Some(at);
        self
    }

    /// Checks kind, scope, key, attempts and backoff, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        self.scope.validate()?;
        check_name("kind", &self.kind)?;
        if let Some(key) = &self.idempotency_key {
            check_name("idempotency_key", key)?;
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(Error::invalid(format!(
                "max_attempts must be between 1 and {MAX_ATTEMPTS}, not {}",
                self.max_attempts
            ))
            .on_field("max_attempts"));
        }
        if self.backoff > MAX_BACKOFF {
            return Err(Error::invalid(format!(
                "backoff must be at most {} s",
                MAX_BACKOFF.as_secs()
            ))
            .on_field("backoff"));
        }
        Ok(())
    }
}

/// A job as the queue holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Assigned by the queue.
    pub id: JobId,
    /// What to run.
    pub kind: String,
    /// The job's arguments.
    pub payload: serde_json::Value,
    /// Who the job belongs to.
    pub scope: Scope,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// Attempts started so far (claims, including reclaims after a lost lease).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The pause after the first failed attempt.
    #[serde(with = "millis")]
    pub backoff: Duration,
    /// Progress in [0, 1] reported by the worker.
    pub progress: f64,
    /// The worker's last progress message.
    pub message: Option<String>,
    /// The key that makes enqueueing idempotent.
    pub idempotency_key: Option<String>,
    /// The worker holding the lease while running.
    pub lease_owner: Option<String>,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Not claimed before this instant (backoff after a failure).
    pub run_after: DateTime<Utc>,
    /// The last attempt's error.
    pub error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The queue of background jobs: one seam, implemented on SQLite, PostgreSQL and Redis.
///
/// Semantics every backend keeps (the testkit's `run_queue_conformance` checks them):
/// - **Enqueue** stores a `queued` job. With an idempotency key, enqueueing the same key in the
///   same scope (org, client and project all equal) returns the job stored first, unchanged,
///   whatever its status and whatever the new kind or payload.
/// - **Claim** hands a worker at most one job and never a job another worker holds an unexpired
///   lease on: the oldest `queued` job whose `run_after` has passed, or a `running` job whose
///   lease expired (its worker stopped heartbeating: the job returns to the queue). Claiming
///   counts an attempt, sets the status to `running` and leases the job to the worker until now +
///   `lease`. A job whose lease expired on its last allowed attempt is failed instead.
///   An empty `kinds` claims any kind.
/// - **Heartbeat** renews the lease to now + `lease` and records progress. The worker holds the
///   job while it is `running` with the worker as lease owner; otherwise (cancelled, or claimed by
///   another worker after the lease expired) heartbeat, complete and fail answer `Conflict`, and
///   the worker should stop.
/// - **Claim batch** is many claims at once (the i-th job to the i-th name), **complete batch**
///   many completes; each job in a batch obeys the rules of its single call.
/// - **Complete** makes it `done` (progress 1). **Fail** records the error and, while attempts
///   remain, queues it again with `run_after` = now + [`retry_delay`]; on the last attempt it is
///   `failed`.
/// - **Cancel** makes a `queued` or `running` job `cancelled`; cancelling a cancelled job returns
///   it; a `done` or `failed` job answers `Conflict`.
/// - **Get**, **list** and **cancel** see only jobs inside the caller's scope (a job elsewhere is
///   `NotFound`); list returns the newest first.
///
/// Claim, heartbeat, complete and fail are worker-side and take no scope (a worker serves every
/// org); enqueue, get, list and cancel are caller-side and scoped. Delivery is at least once: a
/// job whose worker died (or lost its connection) runs again after its lease expires, so jobs
/// should be safe to repeat. Leases are compared with one clock: the store's (SQLite: the
/// process; PostgreSQL: the server).
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Stores a queued job, or returns the job an earlier enqueue with the same key stored.
    async fn enqueue(&self, job: NewJob) -> Result<Job>;

    /// Leases at most one runnable job of one of `kinds` (any when empty) to `worker`.
    async fn claim(&self, worker: &str, kinds: &[String], lease: Duration) -> Result<Option<Job>>;

    /// Leases up to `workers.len()` runnable jobs of one of `kinds` (any when empty), the i-th
    /// job returned to `workers[i]`, each as [`claim`](Self::claim) would; fewer (or none) when
    /// fewer are runnable. Jobs come in claim order: expired leases first, then the oldest queued.
    ///
    /// The default claims one job at a time; backends override it to claim the whole batch in
    /// one round trip. At most [`MAX_BATCH`] names.
    async fn claim_batch(
        &self,
        workers: &[String],
        kinds: &[String],
        lease: Duration,
    ) -> Result<Vec<Job>> {
        check_batch(workers.len())?;
        // Every name is checked before the first claim: a bad batch changes nothing.
        for worker in workers {
            check_lease(worker, lease)?;
        }
        let mut claimed = Vec::with_capacity(workers.len());
        for worker in workers {
            match self.claim(worker, kinds, lease).await? {
                Some(job) => claimed.push(job),
                None => break,
            }
        }
        Ok(claimed)
    }

    /// Renews `worker`'s lease on job `id` and records progress; `Conflict` if the lease was lost.
    async fn heartbeat(
        &self,
        id: JobId,
        worker: &str,
        lease: Duration,
        progress: Option<Progress>,
    ) -> Result<Job>;

    /// Marks the job `worker` holds as done; `Conflict` if the lease was lost.
    async fn complete(&self, id: JobId, worker: &str) -> Result<Job>;

    /// Completes each `(job, worker)` pair as [`complete`](Self::complete) would, in order (a
    /// pair sees the pairs before it done): one result per pair, `Conflict` or `NotFound` for a
    /// job its worker no longer holds. The outer error is for a batch that could not be tried
    /// at all (the queue unreachable); then none of it is done.
    ///
    /// The default completes one job at a time; backends override it to complete the whole batch
    /// in one round trip. At most [`MAX_BATCH`] pairs.
    async fn complete_batch(&self, held: &[(JobId, String)]) -> Result<Vec<Result<()>>> {
        check_batch(held.len())?;
        let mut results = Vec::with_capacity(held.len());
        for (id, worker) in held {
            results.push(self.complete(*id, worker).await.map(drop));
        }
        Ok(results)
    }

    /// Records a failed attempt of a job `worker` holds: queued again after a backoff when
    /// `retry` and attempts are left, else failed for good.
    async fn record_failure(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry: bool,
    ) -> Result<Job>;

    /// Hands job `id`, which `worker` holds, back to the queue at once without using up an
    /// attempt (its worker is stopping before the job is done); `Conflict` when `worker` no
    /// longer holds it.
    async fn release(&self, id: JobId, worker: &str) -> Result<Job>;

    /// Records a failed attempt: queued again after a backoff, or failed on the last attempt.
    async fn fail(&self, id: JobId, worker: &str, error: &str) -> Result<Job> {
        self.record_failure(id, worker, error, true).await
    }

    /// Fails the job for good, whatever attempts it has left: for an error every attempt would
    /// meet again (its input is bad).
    async fn fail_for_good(&self, id: JobId, worker: &str, error: &str) -> Result<Job> {
        self.record_failure(id, worker, error, false).await
    }

    /// Records a handler's error: bad input fails the job for good (every attempt would meet
    /// it again), anything else may pass with a retry.
    async fn fail_with(&self, id: JobId, worker: &str, error: &Error) -> Result<Job> {
        let retry = error.kind() != ErrorKind::InvalidInput;
        self.record_failure(id, worker, &error.to_string(), retry)
            .await
    }

    /// Cancels a queued or running job in `scope`.
    async fn cancel(&self, scope: &Scope, id: JobId) -> Result<Job>;

    /// The job `id` in `scope`.
    async fn get(&self, scope: &Scope, id: JobId) -> Result<Job>;

    /// Jobs in `scope`, of `status` when given, newest first, at most `limit`.
    async fn list(
        &self,
        scope: &Scope,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>>;

    /// How many jobs in `scope` of one of `kinds` (any when empty) are still to finish, by
    /// status: queued (jobs waiting out a backoff or their `run_after` included) and running.
    /// The workspace's backends read an index of open jobs, so their cost follows the open jobs,
    /// not the history; this default lists every queued and running job of the scope instead.
    async fn count_open(&self, scope: &Scope, kinds: &[String]) -> Result<OpenJobs> {
        let mut open = OpenJobs::default();
        for status in [JobStatus::Queued, JobStatus::Running] {
            let jobs = self.list(scope, Some(status), usize::MAX).await?;
            let n = jobs
                .iter()
                .filter(|job| kinds.is_empty() || kinds.contains(&job.kind))
                .count();
            open.add(status, n as u64);
        }
        Ok(open)
    }
}

/// The jobs of a scope still to finish, by status (see [`JobQueue::count_open`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenJobs {
    /// Waiting for a worker, now or after a backoff or their `run_after`.
    pub queued: u64,
    /// Held by a worker (or whose worker's lease ran out, until a claim notices).
    pub running: u64,
}

impl OpenJobs {
    /// Queued and running together.
    pub fn total(&self) -> u64 {
        self.queued + self.running
    }

    /// The counts of `(status, count)` rows as a store's `GROUP BY status` returns them.
    pub fn from_counts(rows: impl IntoIterator<Item = (String, i64)>) -> Result<Self> {
        let mut open = Self::default();
        for (status, n) in rows {
            open.add(status.parse()?, u64::try_from(n).unwrap_or(0));
        }
        Ok(open)
    }

    /// Adds `n` jobs of `status` (final ones are not counted).
    pub fn add(&mut self, status: JobStatus, n: u64) {
        match status {
            JobStatus::Queued => self.queued += n,
            JobStatus::Running => self.running += n,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled => {}
        }
    }
}

/// Progress a worker reports with a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Fraction done in [0, 1].
    pub fraction: f64,
    /// What it is doing now.
    #[serde(default)]
    pub message: Option<String>,
}

impl Progress {
    /// Progress of `fraction` with a message.
    pub fn new(fraction: f64, message: impl Into<String>) -> Self {
        Self {
            fraction,
            message: Some(message.into()),
        }
    }
}

/// The pause before the next attempt after `attempts` failed ones: `backoff` doubled per further
/// attempt, at most [`MAX_BACKOFF`].
pub fn retry_delay(backoff: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    backoff
        .checked_mul(1u32 << doublings)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Checks a worker name and lease length before a claim or heartbeat.
pub fn check_lease(worker: &str, lease: Duration) -> Result<()> {
    check_name("worker", worker)?;
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(Error::invalid(format!(
            "lease must be longer than 0 and at most {} s",
            MAX_LEASE.as_secs()
        ))
        .on_field("lease"));
    }
    Ok(())
}

/// Checks the size of a batch given to [`JobQueue::claim_batch`] or [`JobQueue::complete_batch`].
pub fn check_batch(len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(
            Error::invalid(format!("a batch holds at most {MAX_BATCH} jobs, not {len}"))
                .on_field("batch"),
        );
    }
    Ok(())
}

/// Checks progress is a finite fraction in [0, 1]; returns the message cut to [`MAX_MESSAGE_BYTES`].
pub fn check_progress(progress: &Progress) -> Result<Option<String>> {
    if !progress.fraction.is_finite() || !(0.0..=1.0).contains(&progress.fraction) {
        return Err(Error::invalid(format!(
            "progress must be between 0 and 1, not {}",
            progress.fraction
        ))
        .on_field("progress"));
    }
    Ok(progress.message.as_deref().map(clip_message))
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] at a character boundary.
pub fn clip_message(message: &str) -> String {
    let mut end = message.len().min(MAX_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// The key that makes two scopes the same for idempotency (all parts equal).
pub fn scope_key(scope: &Scope) -> String {
    serde_json::json!([scope.org, scope.client, scope.project]).to_string()
}

/// The `Conflict` a worker gets for a job it no longer holds.
pub fn lease_lost(id: JobId, worker: &str, status: JobStatus, owner: Option<&str>) -> Error {
    Error::conflict(format!(
        "job {id} is no longer held by worker `{worker}` (status {status}, lease owner {}): stop working on it",
        owner.unwrap_or("none")
    ))
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must be 1 to 200 bytes without control characters"
        ))
        .on_field(field));
    }
    Ok(())
}

pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(500);
        assert_eq!(retry_delay(base, 1), base);
        assert_eq!(retry_delay(base, 2), Duration::from_secs(1));
        assert_eq!(retry_delay(base, 4), Duration::from_secs(4));
        assert_eq!(retry_delay(base, 99), MAX_BACKOFF);
        assert_eq!(retry_delay(base, 0), base);
    }

    #[test]
    fn bad_jobs_name_their_field() {
        let scope = Scope::org("acme");
        let cases = [
            (
                NewJob::new("", scope.clone(), serde_json::Value::Null),
                "kind",
            ),
            (
                NewJob::new("embed", scope.clone(), serde_json::Value::Null).with_max_attempts(0),
                "max_attempts",
            ),
            (
                NewJob::new("embed", scope.clone(), serde_json::Value::Null)
                    .with_idempotency_key("a\nb"),
                "idempotency_key",
            ),
            (
                NewJob::new("embed", scope, serde_json::Value::Null)
                    .with_backoff(Duration::from_secs(7200)),
                "backoff",
            ),
        ];
        for (job, field) in cases {
            let err = job.validate().unwrap_err();
            assert_eq!(err.location().field.as_deref(), Some(field), "{err}");
        }
    }

    #[test]
    fn progress_outside_zero_to_one_is_rejected() {
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(check_progress(&Progress::new(bad, "x")).is_err());
        }
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let kept = check_progress(&Progress::new(0.5, long)).unwrap().unwrap();
        assert!(kept.len() <= MAX_MESSAGE_BYTES && kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn leases_need_a_worker_and_a_length() {
        assert!(check_lease("w1", Duration::from_secs(30)).is_ok());
        assert!(check_lease("", Duration::from_secs(30)).is_err());
        assert!(check_lease("w1", Duration::ZERO).is_err());
        assert!(check_lease("w1", MAX_LEASE * 2).is_err());
    }

    #[test]
    fn statuses_round_trip_and_scope_keys_differ() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
        }
        assert!("later".parse::<JobStatus>().is_err());
        let a = Scope::org("acme").with_client("x");
        let b = Scope::org("acme").with_project("x");
        assert_ne!(scope_key(&a), scope_key(&b));
    }
}
