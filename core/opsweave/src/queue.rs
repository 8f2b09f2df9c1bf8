//! The job queue from the caller's side: enqueue, read, list, cancel, and running the built-in
//! worker in this process until a scope's jobs are all finished.

use crate::worker::{Worker, WorkerOptions, WorkerReport};
use crate::Weave;
use opsweave_core::{Error, Job, JobId, JobQueue, JobStatus, NewJob, OpenJobs, Result, Scope};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

impl Weave {
    /// The handle's job queue, or `Unavailable` naming how to get one.
    pub(crate) fn queue(&self) -> Result<&Arc<dyn JobQueue>> {
        self.jobs().ok_or_else(|| {
            Error::unavailable("this opsweave handle has no job queue (give one with with_jobs)")
        })
    }

    /// Queues `job` (the queue checks it, naming the field at fault). Enqueueing an idempotency key
    /// again returns the job stored first; reusing it for another kind or payload is `Conflict`:
    /// a retry gets its job back, a mistake does not pass for success.
    pub async fn enqueue(&self, job: NewJob) -> Result<Job> {
        // Compared as the stores keep it: JSON text read back (a float's last digit may change on
        // that trip, for the stored job and for this copy alike).
        let asked = (
            job.kind.clone(),
            serde_json::from_str::<Value>(&job.payload.to_string()).unwrap_or(Value::Null),
        );
        let stored = self.queue()?.enqueue(job).await?;
        if let Some(key) = &stored.idempotency_key {
            if (&stored.kind, &stored.payload) != (&asked.0, &asked.1) {
                return Err(Error::conflict(format!(
                    "idempotency key `{key}` was used for job {} ({}) with another kind or \
                     payload: use a new key for a new job",
                    stored.id, stored.kind
                ))
                .on_field("idempotency_key"));
            }
        }
        Ok(stored)
    }

    /// The job `id` in `scope` (`NotFound` for a job elsewhere).
    pub async fn job(&self, scope: &Scope, id: JobId) -> Result<Job> {
        scope.validate()?;
        self.queue()?.get(scope, id).await
    }

    /// Jobs in `scope`, of `status` when given, newest first, at most `limit` (1 to 1,000).
    pub async fn list_jobs(
        &self,
        scope: &Scope,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        scope.validate()?;
        if !(1..=1_000).contains(&limit) {
            return Err(
                Error::invalid(format!("limit is {limit}; it must be 1 to 1000")).on_field("limit"),
            );
        }
        self.queue()?.list(scope, status, limit).await
    }

    /// Cancels a queued or running job of `scope` (its worker stops at its next heartbeat); a
    /// finished one is `Conflict`, a cancelled one is returned as it is.
    pub async fn cancel_job(&self, scope: &Scope, id: JobId) -> Result<Job> {
        scope.validate()?;
        self.queue()?.cancel(scope, id).await
    }

    /// How many jobs of `scope` of one of `kinds` (any when empty) are queued or running.
    pub async fn count_open_jobs(&self, scope: &Scope, kinds: &[String]) -> Result<OpenJobs> {
        scope.validate()?;
        self.queue()?.count_open(scope, kinds).await
    }

    /// Runs the built-in worker (ingest, embed, match, sleep, noop; or only `options.kinds`) in
    /// this process until no job of `scope` of a kind it runs is queued or running — jobs waiting
    /// out a retry backoff or a `run_after` included, so such a job keeps it waiting (give a
    /// timeout); jobs of other kinds are left for their own workers — or until `timeout` has
    /// passed; the jobs in hand then finish before it returns. The worker claims jobs of every
    /// scope, as `opsweave worker` does.
    pub async fn run_jobs(
        &self,
        scope: &Scope,
        options: WorkerOptions,
        timeout: Option<Duration>,
    ) -> Result<WorkerReport> {
        let pending = std::future::pending;
        self.run_jobs_until(scope, options, timeout, pending(), pending())
            .await
    }

    /// [`run_jobs`](Self::run_jobs) that also stops claiming when `stop` resolves (a caller's
    /// cancel: an abort signal, a shutdown); the jobs in hand then finish before it returns,
    /// unless `abandon` resolves meanwhile: then they stop at once and go back to the queue
    /// (see [`Worker::run_until`]).
    pub async fn run_jobs_until(
        &self,
        scope: &Scope,
        options: WorkerOptions,
        timeout: Option<Duration>,
        stop: impl std::future::Future<Output = ()> + Send,
        abandon: impl std::future::Future<Output = ()> + Send,
    ) -> Result<WorkerReport> {
        scope.validate()?;
        let worker = Worker::new(self.clone(), options.clone())?;
        let kinds = worker.kinds();
        let queue = self.queue()?.clone();
        let scope = scope.clone();
        let poll = options.idle_poll.max(Duration::from_millis(50));
        let idle = async move {
            // Two quiet looks in a row: a Redis count is several reads, not one snapshot.
            let mut quiet_looks = 0;
            let mut pause = poll;
            loop {
                tokio::time::sleep(pause).await;
                let looked = std::time::Instant::now();
                // Unreadable: not known to be idle; the worker reports queue trouble.
                let open = queue
                    .count_open(&scope, &kinds)
                    .await
                    .map_or(true, |open| open.total() > 0);
                // A look that takes long (many open jobs on Redis) is taken less often: at most
                // a fifth of the time goes to looking.
                pause = poll.max(looked.elapsed() * 4);
                quiet_looks = if open { 0 } else { quiet_looks + 1 };
                if quiet_looks == 2 {
                    return;
                }
            }
        };
        let done = async move {
            match timeout {
                Some(limit) => {
                    let _ = tokio::time::timeout(limit, idle).await;
                }
                None => idle.await,
            }
        };
        let stop = async move {
            tokio::select! {
                () = done => {}
                () = stop => {}
            }
        };
        worker.run_until(stop, abandon, |_, _| {}).await
    }
}
