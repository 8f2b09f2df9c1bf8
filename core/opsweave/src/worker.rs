//! Workers: claim jobs from the handle's queue, run them with a lease kept alive by heartbeats,
//! then complete or fail them.
//!
//! Built-in job kinds:
//! - `noop`: does nothing (queue plumbing, tests, benchmarks);
//! - `sleep`: waits `{"ms": N}` milliseconds (at most an hour), reporting progress (tests of
//!   leases, heartbeats and killed workers);
//! - `ingest`: `{"file": PATH, "preset": NAME}` or `{"file": PATH, "mapping": PATH}` ingests a
//!   file into the job's scope;
//! - `embed`: embeds stale records with the model in the payload ([`Weave::run_embed_job`]).
//!
//! Delivery is at least once (a job whose worker died runs again once its lease expires), so
//! handlers must be safe to repeat: the built-in ones are (ingest is idempotent).

use crate::Weave;
use opsweave_core::{Error, ErrorKind, Job, JobQueue, Progress, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The job kind that does nothing.
pub const NOOP_JOB: &str = "noop";
/// The job kind that waits `{"ms": N}` milliseconds.
pub const SLEEP_JOB: &str = "sleep";
/// The job kind that ingests a file.
pub const INGEST_JOB: &str = "ingest";

/// How a worker runs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// The worker's name; each of its slots leases jobs as `NAME/SLOT`.
    pub name: String,
    /// Kinds to claim (empty: every kind the worker has a handler for).
    pub kinds: Vec<String>,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Lease per claim; heartbeats renew it every third of it.
    pub lease: Duration,
    /// Pause between claims while the queue is empty.
    pub idle_poll: Duration,
}

impl WorkerOptions {
    /// Options for a worker called `name`: every kind, 4 at once, 30 s leases.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kinds: Vec::new(),
            concurrency: 4,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(200),
        }
    }

    fn validate(&self) -> Result<()> {
        opsweave_core::jobs::check_lease(&self.name, self.lease)?;
        if !(1..=1024).contains(&self.concurrency) {
            return Err(
                Error::invalid("worker concurrency must be between 1 and 1024")
                    .on_field("concurrency"),
            );
        }
        if self.lease < Duration::from_millis(300) {
            return Err(Error::invalid("worker lease must be at least 300 ms").on_field("lease"));
        }
        Ok(())
    }
}

/// What became of one claimed job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Completed.
    Done,
    /// The attempt failed (queued again after a backoff, or failed for good); the error.
    Failed(String),
    /// The worker lost the job (cancelled, or its lease expired and another worker took it):
    /// it stopped working on it.
    Lost(String),
}

/// Counts of what a worker did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Jobs completed.
    pub done: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Jobs lost to a cancel or an expired lease.
    pub lost: u64,
}

/// What a handler gets besides the job: its worker's name and a place to report progress.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The lease owner (`NAME/SLOT`).
    pub worker: String,
    progress: Arc<Mutex<Option<Progress>>>,
}

impl JobContext {
    /// Records progress; the next heartbeat sends it.
    pub fn report(&self, fraction: f64, message: impl Into<String>) {
        if let Ok(mut slot) = self.progress.lock() {
            *slot = Some(Progress::new(fraction.clamp(0.0, 1.0), message));
        }
    }

    fn take(&self) -> Option<Progress> {
        self.progress.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;
/// Runs one kind of job.
pub type JobHandler = Arc<dyn Fn(Weave, Job, JobContext) -> HandlerFuture + Send + Sync>;

/// A worker: a handle, its queue, handlers by kind and options.
pub struct Worker {
    weave: Weave,
    queue: Arc<dyn JobQueue>,
    handlers: BTreeMap<String, JobHandler>,
    options: WorkerOptions,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("options", &self.options)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker on `weave`'s job queue with the built-in handlers.
    pub fn new(weave: Weave, options: WorkerOptions) -> Result<Self> {
        options.validate()?;
        let queue = weave
            .jobs()
            .cloned()
            .ok_or_else(|| Error::unavailable("this opsweave handle has no job queue"))?;
        let mut worker = Self {
            weave,
            queue,
            handlers: BTreeMap::new(),
            options,
        };
        worker.handlers.insert(
            NOOP_JOB.into(),
            Arc::new(|_, _, _| Box::pin(async { Ok(()) })),
        );
        worker.handlers.insert(
            SLEEP_JOB.into(),
            Arc::new(|_, job, cx| Box::pin(run_sleep(job, cx))),
        );
        worker.handlers.insert(
            INGEST_JOB.into(),
            Arc::new(|weave, job, _| Box::pin(run_ingest(weave, job))),
        );
        worker.handlers.insert(
            crate::EMBED_JOB.into(),
            Arc::new(|weave, job, cx| {
                Box::pin(async move { weave.run_embed_job(&job, &cx.worker).await.map(drop) })
            }),
        );
        Ok(worker)
    }

    /// Adds (or replaces) the handler of `kind`.
    pub fn handle(mut self, kind: impl Into<String>, handler: JobHandler) -> Self {
        self.handlers.insert(kind.into(), handler);
        self
    }

    /// The kinds this worker claims.
    pub fn kinds(&self) -> Vec<String> {
        if self.options.kinds.is_empty() {
            self.handlers.keys().cloned().collect()
        } else {
            self.options.kinds.clone()
        }
    }

    /// Claims and runs jobs until `stop` resolves, then lets the jobs in hand finish and returns.
    /// `on_job` hears of each job's outcome. A queue that is unavailable is retried (and
    /// logged to stderr); any other queue error stops the worker.
    pub async fn run<S, F>(self, stop: S, on_job: F) -> Result<WorkerReport>
    where
        S: Future<Output = ()> + Send,
        F: Fn(&Job, &JobOutcome) + Send + Sync + 'static,
    {
        let kinds = self.kinds();
        if let Some(unknown) = kinds.iter().find(|k| !self.handlers.contains_key(*k)) {
            return Err(Error::invalid(format!(
                "no handler for job kind `{unknown}` (known: {})",
                self.handlers.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
            .on_field("kinds"));
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            weave: self.weave,
            queue: self.queue,
            handlers: self.handlers,
            options: self.options,
            kinds,
            on_job: Box::new(on_job),
        });
        let mut slots = tokio::task::JoinSet::new();
        for slot in 0..shared.options.concurrency {
            let shared = shared.clone();
            let stop_rx = stop_rx.clone();
            slots.spawn(async move { run_slot(shared, slot, stop_rx).await });
        }
        let mut report = WorkerReport::default();
        let mut first_error = None;
        tokio::pin!(stop);
        let mut stopping = false;
        loop {
            tokio::select! {
                () = &mut stop, if !stopping => {
                    stopping = true;
                    let _ = stop_tx.send(true);
                }
                joined = slots.join_next() => {
                    let Some(joined) = joined else { break };
                    match joined {
                        Ok(Ok(part)) => {
                            report.done += part.done;
                            report.failed += part.failed;
                            report.lost += part.lost;
                        }
                        Ok(Err(e)) => {
                            // One slot hit a hard error: stop the others too.
                            let _ = stop_tx.send(true);
                            first_error.get_or_insert(e);
                        }
                        Err(e) => {
                            let _ = stop_tx.send(true);
                            first_error.get_or_insert(Error::internal(format!("worker slot: {e}")));
                        }
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

/// What a worker calls with each job's outcome.
type OnJob = dyn Fn(&Job, &JobOutcome) + Send + Sync;

struct Shared {
    weave: Weave,
    queue: Arc<dyn JobQueue>,
    handlers: BTreeMap<String, JobHandler>,
    options: WorkerOptions,
    kinds: Vec<String>,
    on_job: Box<OnJob>,
}

async fn run_slot(
    shared: Arc<Shared>,
    slot: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<WorkerReport> {
    // Each slot leases under its own name, so two slots of one process never both hold a job.
    let name = format!("{}/{slot}", shared.options.name);
    let mut report = WorkerReport::default();
    while !*stop.borrow() {
        match shared
            .queue
            .claim(&name, &shared.kinds, shared.options.lease)
            .await
        {
            Ok(Some(job)) => {
                let outcome = run_job(&shared, &name, &job).await;
                match &outcome {
                    JobOutcome::Done => report.done += 1,
                    JobOutcome::Failed(_) => report.failed += 1,
                    JobOutcome::Lost(_) => report.lost += 1,
                }
                (shared.on_job)(&job, &outcome);
            }
            Ok(None) => idle(&mut stop, shared.options.idle_poll).await,
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                eprintln!("worker {name}: queue unavailable, retrying: {e}");
                idle(
                    &mut stop,
                    shared.options.idle_poll.max(Duration::from_secs(1)),
                )
                .await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

async fn idle(stop: &mut tokio::sync::watch::Receiver<bool>, pause: Duration) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = stop.changed() => {}
    }
}

async fn run_job(shared: &Shared, name: &str, job: &Job) -> JobOutcome {
    let Some(handler) = shared.handlers.get(&job.kind) else {
        return finish_failed(
            shared,
            name,
            job,
            format!("no handler for kind `{}`", job.kind),
        )
        .await;
    };
    let cx = JobContext {
        worker: name.to_string(),
        progress: Arc::default(),
    };
    let work = handler(shared.weave.clone(), job.clone(), cx.clone());
    let lease = shared.options.lease;
    let beats = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            match shared.queue.heartbeat(job.id, name, lease, cx.take()).await {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                    return e;
                }
                // A missed beat is not yet a lost lease: two more chances before it runs out.
                Err(e) => eprintln!("worker {name}: heartbeat of job {} failed: {e}", job.id),
            }
        }
    };
    tokio::select! {
        result = work => match result {
            Ok(()) => match shared.queue.complete(job.id, name).await {
                Ok(_) => JobOutcome::Done,
                Err(e) => JobOutcome::Lost(e.to_string()),
            },
            Err(e) => finish_failed(shared, name, job, e.to_string()).await,
        },
        // The handler's future is dropped here: the job is someone else's now.
        lost = beats => JobOutcome::Lost(lost.to_string()),
    }
}

async fn finish_failed(shared: &Shared, name: &str, job: &Job, error: String) -> JobOutcome {
    match shared.queue.fail(job.id, name, &error).await {
        Ok(_) => JobOutcome::Failed(error),
        Err(e) => JobOutcome::Lost(e.to_string()),
    }
}

async fn run_sleep(job: Job, cx: JobContext) -> Result<()> {
    let ms = job
        .payload
        .get("ms")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Error::invalid("sleep job payload needs {\"ms\": N}").on_field("ms"))?;
    if ms > 3_600_000 {
        return Err(Error::invalid("sleep job: ms must be at most 3600000").on_field("ms"));
    }
    let total = Duration::from_millis(ms);
    let step = Duration::from_millis(250).min(total);
    let mut slept = Duration::ZERO;
    while slept < total {
        let next = step.min(total - slept);
        tokio::time::sleep(next).await;
        slept += next;
        cx.report(
            slept.as_secs_f64() / total.as_secs_f64(),
            format!("slept {} of {ms} ms", slept.as_millis()),
        );
    }
    Ok(())
}

async fn run_ingest(weave: Weave, job: Job) -> Result<()> {
    let text = |name: &str| job.payload.get(name).and_then(serde_json::Value::as_str);
    let file = text("file")
        .ok_or_else(|| Error::invalid("ingest job payload needs `file`").on_field("file"))?;
    let mapping = match (text("preset"), text("mapping")) {
        (Some(preset), _) => crate::preset(preset)?,
        (None, Some(path)) => {
            let body = std::fs::read_to_string(path).map_err(|e| {
                Error::invalid(format!("cannot read mapping: {e}")).in_file(path.to_string())
            })?;
            let mapping = if path.ends_with(".json") {
                opsweave_core::Mapping::from_json(&body)
            } else {
                opsweave_core::Mapping::from_toml(&body)
            };
            mapping.map_err(|e| e.in_file(path.to_string()))?
        }
        (None, None) => {
            return Err(
                Error::invalid("ingest job payload needs `preset` or `mapping`").on_field("preset"),
            )
        }
    };
    weave
        .ingest_path(&PathBuf::from(file), &mapping, &job.scope, None)
        .await
        .map(drop)
}
