//! In-process workers: claim `ingest` and `match` jobs (and `embed` jobs when the server has an
//! embedding model) from the store's queue, run them with progress heartbeats, and complete or
//! fail them. A cancelled job loses its lease; the next
//! heartbeat sees that and the run is dropped.

use super::jobs::{INGEST_JOB, MATCH_JOB};
use super::AppState;
use opsweave::worker::InlineIngest;
use opsweave::{EmbedProgress, Error, IngestProgress, Job, JobQueue, Progress, Result, EMBED_JOB};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a worker holds a job between heartbeats before another may take it.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running job reports progress (and learns of cancellation).
const BEAT: Duration = Duration::from_millis(200);
/// The longest a worker sleeps when the queue is empty (a local enqueue wakes it sooner).
const IDLE: Duration = Duration::from_millis(500);

/// Starts `count` workers; they stop when `stop` turns true.
pub fn spawn(state: AppState, count: usize, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let Some(queue) = state.weave.jobs().cloned() else {
        return Vec::new();
    };
    (0..count)
        .map(|n| {
            let state = state.clone();
            let queue = queue.clone();
            let mut stop = stop.clone();
            let name = format!("serve-{}-{n}", std::process::id());
            tokio::spawn(async move {
                let mut kinds = vec![INGEST_JOB.to_string(), MATCH_JOB.to_string()];
                // Without a model, embed jobs are left to external workers that have one.
                if state.weave.config().embed.model.is_some() {
                    kinds.push(EMBED_JOB.to_string());
                }
                while !*stop.borrow() {
                    match queue.claim(&name, &kinds, LEASE).await {
                        Ok(Some(job)) => run(&state, &*queue, &name, job).await,
                        Ok(None) => {
                            tokio::select! {
                                _ = state.job_queued.notified() => {}
                                _ = tokio::time::sleep(IDLE) => {}
                                _ = stop.changed() => {}
                            }
                        }
                        Err(e) => {
                            tracing::warn!(worker = %name, error = %e, "claim failed");
                            tokio::time::sleep(IDLE).await;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Runs one claimed job to its end.
pub async fn run(state: &AppState, queue: &dyn JobQueue, worker: &str, job: Job) {
    let started = Instant::now();
    let progress = Arc::new(IngestProgress::default());
    let embedding = Arc::new(EmbedProgress::default());
    let total = InlineIngest::content_bytes(&job.payload);
    let work = execute(state, &job, progress.clone(), embedding.clone());
    tokio::pin!(work);
    let mut beat = tokio::time::interval(BEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        tokio::select! {
            result = &mut work => break Some(result),
            _ = beat.tick() => {
                let (fraction, message) = if job.kind == EMBED_JOB {
                    embedding.share()
                } else {
                    opsweave::worker::ingest_share(&progress, total)
                };
                let report = Progress::new(fraction, message);
                // The heartbeat needs the store's writer, which the job may hold mid-transaction:
                // keep polling the job while the heartbeat waits, or each waits for the other
                // until the pool's acquire timeout.
                let heartbeat = queue.heartbeat(job.id, worker, LEASE, Some(report));
                tokio::pin!(heartbeat);
                let beat_result = tokio::select! {
                    result = &mut heartbeat => result,
                    result = &mut work => break Some(result),
                };
                if let Err(e) = beat_result {
                    if e.kind() == opsweave::ErrorKind::Conflict {
                        tracing::info!(job = %job.id, "job cancelled or taken over; stopping");
                        break None;
                    }
                    tracing::warn!(job = %job.id, error = %e, "heartbeat failed");
                }
            }
        }
    };
    let status = match outcome {
        None => "cancelled",
        Some(Ok(summary)) => {
            let finish = async {
                queue
                    .heartbeat(job.id, worker, LEASE, Some(Progress::new(1.0, summary)))
                    .await?;
                queue.complete(job.id, worker).await
            };
            match finish.await {
                Ok(_) => "done",
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "completing failed");
                    "lost"
                }
            }
        }
        Some(Err(e)) => {
            // The message is the caller's own input error or a store failure; never a secret.
            // The job API hides an internal one's text, so the log is where it is read.
            tracing::warn!(job = %job.id, kind = %job.kind, error = %e, "job attempt failed");
            match queue.fail_with(job.id, worker, &e).await {
                Ok(job) if job.status == opsweave::JobStatus::Failed => "failed",
                Ok(_) => "retrying",
                Err(_) => "lost",
            }
        }
    };
    state
        .metrics
        .job_seconds
        .with_label_values(&[job.kind.as_str(), status])
        .observe(started.elapsed().as_secs_f64());
}

/// Does the job's work; the text is its summary.
async fn execute(
    state: &AppState,
    job: &Job,
    progress: Arc<IngestProgress>,
    embedding: Arc<EmbedProgress>,
) -> Result<String> {
    match job.kind.as_str() {
        INGEST_JOB => {
            // The same code as `opsweave worker` runs, so it does not matter which claims it.
            let payload = InlineIngest::of(job)?;
            let report = state
                .weave
                .run_inline_ingest(payload, &job.scope, Some(progress))
                .await?;
            Ok(opsweave::worker::ingest_summary(&report))
        }
        MATCH_JOB => opsweave::worker::run_match(&state.weave, job).await,
        EMBED_JOB => {
            let embedder = state.weave.embedder().await?;
            // Queued here with the server's own model; one queued elsewhere may name another.
            let own = state.weave.config().embed.model.clone().unwrap_or_default();
            let asked = job.payload.get("model").and_then(|m| m.as_str());
            if let Some(asked) = asked
                .filter(|asked| asked.parse::<opsweave::EmbedderSpec>().ok() != own.parse().ok())
            {
                return Err(Error::invalid(format!(
                    "this server embeds with `{own}`, not `{asked}`"
                ))
                .on_field("model"));
            }
            let report = state
                .weave
                .embed_for_job(job, &*embedder, Some(embedding))
                .await?;
            Ok(serde_json::to_string(&report).unwrap_or_default())
        }
        other => Err(Error::invalid(format!(
            "no worker here runs `{other}` jobs"
        ))),
    }
}
