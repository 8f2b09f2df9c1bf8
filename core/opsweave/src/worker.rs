//! Workers: claim jobs from the handle's queue, run them with a lease kept alive by heartbeats,
//! then complete or fail them.
//!
//! Built-in job kinds:
//! - `noop`: does nothing (queue plumbing, tests, benchmarks);
//! - `sleep`: waits `{"ms": N}` milliseconds (at most an hour), reporting progress (tests of
//!   leases, heartbeats and killed workers);
//! - `ingest`: the upload inline ([`InlineIngest`]: a mapping, and rows or base64 content, what
//!   `POST /api/ingest` queues), or `{"file": PATH, "preset": NAME}` /
//!   `{"file": PATH, "mapping": PATH}` (queued by trusted callers only: the worker reads those
//!   paths) ingests into the job's scope;
//! - `embed`: embeds stale records with the model in the payload ([`Weave::run_embed_job`]);
//! - `match`: runs the built-in resolver `{"preset": NAME, "incremental": BOOL}` in the job's
//!   scope.
//!
//! Ingest and embed jobs report progress, and each of ingest, embed and match jobs keeps its
//! report (JSON) as the job's message once done, whichever worker (this one or a server's) ran it.
//!
//! Delivery is at least once (a job whose worker died runs again once its lease expires), so
//! handlers must be safe to repeat: the built-in ones are (ingest is idempotent).

use crate::{IngestProgress, IngestReport, Weave};
use base64::Engine as _;
use opsweave_core::{
    Error, ErrorKind, Format, Job, JobId, JobQueue, JobStatus, Mapping, Progress, Result, Scope,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// The job kind that does nothing.
pub const NOOP_JOB: &str = "noop";
/// The job kind that waits `{"ms": N}` milliseconds.
pub const SLEEP_JOB: &str = "sleep";
/// The job kind that ingests a file.
pub const INGEST_JOB: &str = "ingest";
/// The job kind of a matching run.
pub const MATCH_JOB: &str = "match";

/// An `ingest` job's payload when the upload travels with the job (what `POST /api/ingest`
/// queues): whichever worker claims it, in the server or `opsweave worker`, runs it the same way
/// ([`Weave::run_inline_ingest`]) and reads nothing from its own disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InlineIngest {
    /// How items become records.
    pub mapping: Mapping,
    /// A name for reports and rejections.
    pub name: String,
    /// Items as JSON objects.
    #[serde(default)]
    pub rows: Option<Vec<serde_json::Value>>,
    /// File bytes, base64 (uploads need not be UTF-8: bad rows become rejections).
    #[serde(default)]
    pub content_b64: Option<String>,
    /// The format of the content.
    #[serde(default)]
    pub format: Option<Format>,
}

impl InlineIngest {
    /// The payload's fields, as serde names them (a test keeps the two in step).
    pub const FIELDS: [&'static str; 5] = ["mapping", "name", "rows", "content_b64", "format"];

    /// Whether an ingest job's payload carries its upload (rather than naming a file).
    pub fn is_inline(payload: &serde_json::Value) -> bool {
        payload.get("rows").is_some() || payload.get("content_b64").is_some()
    }

    /// Bytes an inline upload's content holds (`None` for rows given as JSON values).
    pub fn content_bytes(payload: &serde_json::Value) -> Option<u64> {
        let b64 = payload.get("content_b64")?.as_str()?;
        Some(b64.len() as u64 / 4 * 3)
    }

    /// The payload of `job` as an inline ingest.
    pub fn of(job: &Job) -> Result<Self> {
        serde_json::from_value(job.payload.clone())
            .map_err(|e| Error::invalid(format!("ingest job payload: {e}")))
    }
}

impl Weave {
    /// Ingests an inline upload into `scope`; `progress` counts the content's bytes as they are
    /// read. Batch by batch, never as a bulk load: a job renews its lease and reports progress
    /// through the store's single writer meanwhile.
    pub async fn run_inline_ingest(
        &self,
        payload: InlineIngest,
        scope: &Scope,
        progress: Option<Arc<IngestProgress>>,
    ) -> Result<IngestReport> {
        let weave = self.clone().without_bulk_load();
        match (payload.rows, payload.content_b64) {
            (Some(rows), _) => {
                weave
                    .ingest_rows(rows, &payload.name, &payload.mapping, scope)
                    .await
            }
            (None, Some(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| Error::invalid(format!("ingest job content: {e}")))?;
                let format = payload
                    .format
                    .or(payload.mapping.format)
                    .ok_or_else(|| Error::invalid("ingest job has no format").on_field("format"))?;
                weave
                    .ingest_reader(
                        std::io::Cursor::new(bytes),
                        &payload.name,
                        format,
                        &payload.mapping,
                        scope,
                        progress,
                    )
                    .await
            }
            (None, None) => Err(Error::invalid("ingest job has no rows or content")),
        }
    }
}

/// Rejections an ingest job's summary lists at most.
const SUMMARY_REJECTIONS: usize = 20;

/// An ingest's summary as a job's message: JSON that always parses. A job message holds at most
/// [`opsweave_core::jobs::MAX_MESSAGE_BYTES`] and the store cuts longer ones mid-text, so the
/// rejections listed are cut instead (long reasons fill it fast), and `rejections_omitted` says
/// how many of `rejected` are not listed.
pub fn ingest_summary(report: &IngestReport) -> String {
    let mut listed = report.rejected.len().min(SUMMARY_REJECTIONS);
    loop {
        let summary = serde_json::json!({
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected_total,
            "rejections": &report.rejected[..listed],
            "rejections_omitted": report.rejected_total.saturating_sub(listed as u64),
            "missing_columns": &report.missing_columns,
        })
        .to_string();
        if summary.len() <= opsweave_core::jobs::MAX_MESSAGE_BYTES || listed == 0 {
            return summary;
        }
        listed -= 1;
    }
}

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
    /// The job was cancelled while the worker ran it: it stopped working on it.
    Cancelled,
    /// The worker lost the job (its lease expired and another worker took it, or the queue
    /// could not be told the outcome): it stopped working on it.
    Lost(String),
}

/// Counts of what a worker did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerReport {
    /// Jobs completed.
    pub done: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Jobs lost to a cancel or an expired lease, or handed back by an abandoning worker.
    pub lost: u64,
}

impl WorkerReport {
    /// Counts one job's outcome.
    fn count(&mut self, outcome: &JobOutcome) {
        match outcome {
            JobOutcome::Done => self.done += 1,
            JobOutcome::Failed(_) => self.failed += 1,
            JobOutcome::Lost(_) | JobOutcome::Cancelled => self.lost += 1,
        }
    }
}

/// What a handler gets besides the job: its worker's name and a place to report progress.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The lease owner (`NAME/SLOT`).
    pub worker: String,
    progress: Arc<Mutex<Option<Progress>>>,
    summary: Arc<Mutex<Option<String>>>,
}

impl JobContext {
    fn new(worker: String) -> Self {
        Self {
            worker,
            progress: Arc::default(),
            summary: Arc::default(),
        }
    }

    /// Records progress; the next heartbeat sends it.
    pub fn report(&self, fraction: f64, message: impl Into<String>) {
        if let Ok(mut slot) = self.progress.lock() {
            *slot = Some(Progress::new(fraction.clamp(0.0, 1.0), message));
        }
    }

    /// Sets what the job's message says once it is done (its report); stored with progress 1
    /// just before the job completes.
    pub fn finish(&self, summary: impl Into<String>) {
        if let Ok(mut slot) = self.summary.lock() {
            *slot = Some(summary.into());
        }
    }

    fn take(&self) -> Option<Progress> {
        self.progress.lock().ok().and_then(|mut slot| slot.take())
    }

    fn take_summary(&self) -> Option<String> {
        self.summary.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Runs `work`, copying `progress()` (fraction, message) into this context every quarter
    /// second so that each heartbeat carries the latest.
    async fn reporting<T>(
        &self,
        work: impl Future<Output = T>,
        progress: impl Fn() -> (f64, String),
    ) -> T {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    let (fraction, message) = progress();
                    self.report(fraction, message);
                }
            }
        }
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
        let queue = weave.queue()?.clone();
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
            Arc::new(|weave, job, cx| Box::pin(run_ingest(weave, job, cx))),
        );
        worker.handlers.insert(
            crate::EMBED_JOB.into(),
            Arc::new(|weave, job, cx| Box::pin(run_embed(weave, job, cx))),
        );
        worker.handlers.insert(
            MATCH_JOB.into(),
            Arc::new(|weave, job, cx| {
                Box::pin(async move {
                    cx.finish(run_match(&weave, &job).await?);
                    Ok(())
                })
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
    ///
    /// The worker claims for all its free slots in one call ([`JobQueue::claim_batch`]), each
    /// job leased to its slot's name, and completes the jobs that finished meanwhile in one call
    /// ([`JobQueue::complete_batch`]); a slot stays taken until its job's completion is stored,
    /// so a worker never holds more than `concurrency` jobs.
    pub async fn run<S, F>(self, stop: S, on_job: F) -> Result<WorkerReport>
    where
        S: Future<Output = ()> + Send,
        F: Fn(&Job, &JobOutcome) + Send + Sync + 'static,
    {
        self.run_until(stop, std::future::pending(), on_job).await
    }

    /// [`run`](Self::run), and when `abandon` resolves (a second stop request, say), stops the
    /// jobs in hand at once and hands each back to the queue ([`JobQueue::release`]) without
    /// using up its attempt, so another worker runs it from the start (embed jobs pick up where
    /// they were). A job whose release fails is reported lost: its lease runs out instead.
    pub async fn run_until<S, A, F>(self, stop: S, abandon: A, on_job: F) -> Result<WorkerReport>
    where
        S: Future<Output = ()> + Send,
        A: Future<Output = ()> + Send,
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
        let shared = Arc::new(Shared {
            weave: self.weave,
            queue: self.queue,
            handlers: self.handlers,
            options: self.options,
        });
        // Each slot leases under its own name, so two slots of one process never both hold a
        // job: a job reclaimed after its lease expired is never mistaken for the old run's.
        let names: Vec<String> = (0..shared.options.concurrency)
            .map(|slot| format!("{}/{slot}", shared.options.name))
            .collect();
        let slot_of: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(slot, name)| (name.as_str(), slot))
            .collect();
        // Free slots, lowest first.
        let mut free: BTreeSet<usize> = (0..names.len()).collect();
        let mut running: JoinSet<Ran> = JoinSet::new();
        let mut slot_of_task: HashMap<tokio::task::Id, (usize, Job)> = HashMap::new();
        let mut report = WorkerReport::default();
        let mut first_error: Option<Error> = None;
        let mut stopping = false;
        // When set, the queue had nothing (or was unreachable): wait until then, or until a job
        // finishes, before claiming again.
        let mut pause_until: Option<tokio::time::Instant> = None;
        // Set when `abandon` resolved before a claim: it is not polled again after that.
        let mut abandoning = false;
        tokio::pin!(stop);
        tokio::pin!(abandon);
        loop {
            // A stop or abandon that came meanwhile is heard before the next claim.
            tokio::select! {
                biased;
                () = &mut abandon, if !abandoning => {
                    abandoning = true;
                    stopping = true;
                }
                () = &mut stop, if !stopping => stopping = true,
                () = std::future::ready(()) => {}
            }
            if !stopping && !free.is_empty() && pause_until.is_none() {
                let asked: Vec<String> = free.iter().map(|&slot| names[slot].clone()).collect();
                match shared
                    .queue
                    .claim_batch(&asked, &kinds, shared.options.lease)
                    .await
                {
                    Ok(jobs) => {
                        if jobs.len() < asked.len() {
                            pause_until =
                                Some(tokio::time::Instant::now() + shared.options.idle_poll);
                        }
                        for job in jobs {
                            let slot = job
                                .lease_owner
                                .as_deref()
                                .and_then(|owner| slot_of.get(owner).copied())
                                .filter(|slot| free.contains(slot));
                            let Some(slot) = slot else {
                                // A queue that broke its contract: stop rather than run a job
                                // no slot holds.
                                first_error.get_or_insert(Error::internal(format!(
                                    "worker: the queue leased job {} to {:?}, not to a free slot",
                                    job.id, job.lease_owner
                                )));
                                stopping = true;
                                continue;
                            };
                            free.remove(&slot);
                            let task = running.spawn(run_job(
                                shared.clone(),
                                names[slot].clone(),
                                job.clone(),
                            ));
                            slot_of_task.insert(task.id(), (slot, job));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Unavailable => {
                        eprintln!(
                            "worker {}: queue unavailable, retrying: {e}",
                            shared.options.name
                        );
                        pause_until = Some(
                            tokio::time::Instant::now()
                                + shared.options.idle_poll.max(Duration::from_secs(1)),
                        );
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                        stopping = true;
                    }
                }
            }
            if stopping && running.is_empty() {
                break;
            }
            let pause = pause_until.unwrap_or_else(|| {
                tokio::time::Instant::now() + shared.options.idle_poll.max(Duration::from_secs(1))
            });
            let abandoned = async {
                if !abandoning {
                    (&mut abandon).await;
                }
            };
            tokio::select! {
                () = &mut stop, if !stopping => stopping = true,
                () = abandoned => {
                    running.abort_all();
                    // A job may have ended before the abort reached it: its outcome stands (a
                    // success is completed, not run again); only the ones stopped mid-run are
                    // handed back.
                    let mut succeeded = Vec::new();
                    let mut settled = Vec::new();
                    while let Some(joined) = running.join_next_with_id().await {
                        let Some((slot, job, ran)) = job_of(&mut slot_of_task, joined) else {
                            continue;
                        };
                        match ran {
                            Ok(Ran::Succeeded(summary)) => succeeded.push((slot, job, summary)),
                            Ok(Ran::Ended(outcome)) => settled.push((job, outcome)),
                            Err(e) => {
                                if e.is_panic() {
                                    first_error.get_or_insert(panicked(&job, &e));
                                }
                                let outcome =
                                    match shared.queue.release(job.id, &names[slot]).await {
                                        Ok(_) => JobOutcome::Lost(
                                            "handed back: the worker stopped".into(),
                                        ),
                                        Err(e) => JobOutcome::Lost(e.to_string()),
                                    };
                                settled.push((job, outcome));
                            }
                        }
                    }
                    settled.extend(complete_all(&shared, &names, succeeded).await);
                    for (job, outcome) in settled {
                        report.count(&outcome);
                        on_job(&job, &outcome);
                    }
                    break;
                }
                Some(joined) = running.join_next_with_id(), if !running.is_empty() => {
                    let mut finished = vec![joined];
                    // Every job that finished meanwhile joins the same completion call; one
                    // yield lets the jobs that were about to finish do so.
                    if !running.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    while let Some(joined) = running.try_join_next_with_id() {
                        finished.push(joined);
                    }
                    let mut succeeded = Vec::new();
                    let mut settled = Vec::new();
                    for joined in finished {
                        let Some((slot, job, ran)) = job_of(&mut slot_of_task, joined) else {
                            continue;
                        };
                        free.insert(slot);
                        match ran {
                            Ok(Ran::Succeeded(summary)) => succeeded.push((slot, job, summary)),
                            Ok(Ran::Ended(outcome)) => settled.push((job, outcome)),
                            Err(e) => {
                                // A handler panicked: stop the others too.
                                first_error.get_or_insert(panicked(&job, &e));
                                stopping = true;
                            }
                        }
                    }
                    settled.extend(complete_all(&shared, &names, succeeded).await);
                    for (job, outcome) in settled {
                        report.count(&outcome);
                        on_job(&job, &outcome);
                    }
                    // Slots came free: claim for them now.
                    pause_until = None;
                }
                () = tokio::time::sleep_until(pause), if !stopping => pause_until = None,
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

/// The slot and job of a joined task (taken out of `slot_of_task`) and how its run ended;
/// `None` for a task no job is known for.
fn job_of(
    slot_of_task: &mut HashMap<tokio::task::Id, (usize, Job)>,
    joined: std::result::Result<(tokio::task::Id, Ran), tokio::task::JoinError>,
) -> Option<(usize, Job, std::result::Result<Ran, tokio::task::JoinError>)> {
    let (id, ran) = match joined {
        Ok((id, ran)) => (id, Ok(ran)),
        Err(e) => (e.id(), Err(e)),
    };
    let (slot, job) = slot_of_task.remove(&id)?;
    Some((slot, job, ran))
}

/// The run's error for a job whose handler panicked.
fn panicked(job: &Job, e: &tokio::task::JoinError) -> Error {
    Error::internal(format!("worker: job {} ({}): {e}", job.id, job.kind))
}

/// How a job's run ended inside its task.
enum Ran {
    /// The handler succeeded: the job is to be completed (with the others that finished), its
    /// message set to the summary the handler left, if any.
    Succeeded(Option<String>),
    /// The attempt failed (and was recorded) or the job was lost.
    Ended(JobOutcome),
}

struct Shared {
    weave: Weave,
    queue: Arc<dyn JobQueue>,
    handlers: BTreeMap<String, JobHandler>,
    options: WorkerOptions,
}

/// Completes the jobs whose handlers succeeded, in one call; each comes back with its outcome.
async fn complete_all(
    shared: &Shared,
    names: &[String],
    succeeded: Vec<(usize, Job, Option<String>)>,
) -> Vec<(Job, JobOutcome)> {
    if succeeded.is_empty() {
        return Vec::new();
    }
    for (slot, job, summary) in &succeeded {
        if let Some(summary) = summary {
            // A failed write loses only the summary: completing below still tells whether the
            // job was ours.
            let done = Some(Progress::new(1.0, summary.clone()));
            if let Err(e) = shared
                .queue
                .heartbeat(job.id, &names[*slot], shared.options.lease, done)
                .await
            {
                eprintln!("worker {}: summary of job {}: {e}", names[*slot], job.id);
            }
        }
    }
    let held: Vec<(JobId, String)> = succeeded
        .iter()
        .map(|(slot, job, _)| (job.id, names[*slot].clone()))
        .collect();
    match shared.queue.complete_batch(&held).await {
        Ok(results) => succeeded
            .into_iter()
            .zip(results)
            .map(|((_, job, _), result)| {
                let outcome = match result {
                    Ok(()) => JobOutcome::Done,
                    Err(e) => JobOutcome::Lost(e.to_string()),
                };
                (job, outcome)
            })
            .collect(),
        // Not stored: the leases run out and the jobs run again elsewhere.
        Err(e) => succeeded
            .into_iter()
            .map(|(_, job, _)| (job, JobOutcome::Lost(e.to_string())))
            .collect(),
    }
}

/// Runs one claimed job with heartbeats until its handler ends or the job is lost.
async fn run_job(shared: Arc<Shared>, name: String, job: Job) -> Ran {
    let Some(handler) = shared.handlers.get(&job.kind) else {
        // Another worker may serve the kind: the job stays retryable.
        let error = Error::unavailable(format!("no handler for kind `{}`", job.kind));
        return Ran::Ended(finish_failed(&shared, &name, &job, &error).await);
    };
    let cx = JobContext::new(name.clone());
    let work = handler(shared.weave.clone(), job.clone(), cx.clone());
    let lease = shared.options.lease;
    let beats = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            match shared
                .queue
                .heartbeat(job.id, &name, lease, cx.take())
                .await
            {
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
            Ok(()) => Ran::Succeeded(cx.take_summary()),
            Err(e) => Ran::Ended(finish_failed(&shared, &name, &job, &e).await),
        },
        // The handler's future is dropped here: the job is someone else's now (or nobody's).
        lost = beats => {
            let cancelled = shared
                .queue
                .get(&job.scope, job.id)
                .await
                .is_ok_and(|now| now.status == JobStatus::Cancelled);
            Ran::Ended(if cancelled {
                JobOutcome::Cancelled
            } else {
                JobOutcome::Lost(lost.to_string())
            })
        }
    }
}

async fn finish_failed(shared: &Shared, name: &str, job: &Job, error: &Error) -> JobOutcome {
    match shared.queue.fail_with(job.id, name, error).await {
        Ok(_) => JobOutcome::Failed(error.to_string()),
        Err(e) => JobOutcome::Lost(e.to_string()),
    }
}

/// The milliseconds a `sleep` job's payload asks for (0 to an hour), checked where jobs are
/// submitted too, so that a bad one is refused at once instead of failing every attempt.
pub fn sleep_millis(payload: &serde_json::Value) -> Result<u64> {
    let ms = payload
        .get("ms")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            Error::invalid("sleep job payload needs {\"ms\": N}, N a whole number from 0")
                .on_field("ms")
        })?;
    if ms > 3_600_000 {
        return Err(Error::invalid("sleep job: ms must be at most 3600000").on_field("ms"));
    }
    Ok(ms)
}

async fn run_sleep(job: Job, cx: JobContext) -> Result<()> {
    let ms = sleep_millis(&job.payload)?;
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

/// Runs an `ingest` job, batch by batch (see [`Weave::run_inline_ingest`]), reporting the share
/// read and leaving [`ingest_summary`] as the job's message.
async fn run_ingest(weave: Weave, job: Job, cx: JobContext) -> Result<()> {
    let weave = weave.without_bulk_load();
    let progress = Arc::new(IngestProgress::default());
    let report = if InlineIngest::is_inline(&job.payload) {
        let payload = InlineIngest::of(&job)?;
        let total = InlineIngest::content_bytes(&job.payload);
        let work = weave.run_inline_ingest(payload, &job.scope, Some(progress.clone()));
        cx.reporting(work, || ingest_share(&progress, total))
            .await?
    } else {
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
                    Error::invalid("ingest job payload needs `preset` or `mapping`")
                        .on_field("preset"),
                )
            }
        };
        let total = std::fs::metadata(file).ok().map(|m| m.len());
        let path = PathBuf::from(file);
        let work = weave.ingest_path(&path, &mapping, &job.scope, Some(progress.clone()));
        cx.reporting(work, || ingest_share(&progress, total))
            .await?
    };
    cx.finish(ingest_summary(&report));
    Ok(())
}

/// The share of an ingest done, out of `total` bytes to read when known (reading is most of an
/// ingest; the last batch's write is the rest), and its message.
pub fn ingest_share(progress: &IngestProgress, total: Option<u64>) -> (f64, String) {
    use std::sync::atomic::Ordering;
    let items = progress.items.load(Ordering::Relaxed);
    let fraction = match total {
        Some(total) if total > 0 => {
            let read = progress.bytes.load(Ordering::Relaxed);
            (read as f64 / total as f64).min(1.0) * 0.95
        }
        _ => 0.0,
    };
    (fraction, format!("{items} items"))
}

/// Runs an `embed` job with the model its payload names, reporting records done and leaving
/// the embed report as the job's message.
async fn run_embed(weave: Weave, job: Job, cx: JobContext) -> Result<()> {
    let embedder = weave.job_embedder(&job).await?;
    let progress = Arc::new(crate::EmbedProgress::default());
    let work = weave.embed_for_job(&job, &*embedder, Some(progress.clone()));
    let report = cx.reporting(work, || progress.share()).await?;
    cx.finish(serde_json::to_string(&report).unwrap_or_default());
    Ok(())
}

/// Runs a `match` job (`{"preset": NAME, "incremental": BOOL}`) in the job's scope; the report
/// as JSON.
pub async fn run_match(weave: &Weave, job: &Job) -> Result<String> {
    let preset = job
        .payload
        .get("preset")
        .and_then(|p| p.as_str())
        .ok_or_else(|| Error::invalid("match job payload needs a preset").on_field("preset"))?;
    let incremental = job
        .payload
        .get("incremental")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let resolver = opsweave_core::matching::resolver_preset(preset)?;
    let report = weave.resolve(&job.scope, &resolver, incremental).await?;
    Ok(serde_json::to_string(&report).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_ingest_fields_are_the_ones_serde_writes() {
        let payload = InlineIngest {
            mapping: crate::preset("jira-issue").unwrap(),
            name: "upload".into(),
            rows: Some(Vec::new()),
            content_b64: Some(String::new()),
            format: Some(Format::Csv),
        };
        let value = serde_json::to_value(&payload).unwrap();
        let mut written: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut listed = InlineIngest::FIELDS.to_vec();
        written.sort_unstable();
        listed.sort_unstable();
        assert_eq!(written, listed);
    }
}
