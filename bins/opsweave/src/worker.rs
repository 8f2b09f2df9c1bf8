//! `opsweave worker`: claims and runs jobs from the configured queue until SIGTERM or Ctrl-C.

use opsweave::worker::{JobOutcome, Worker, WorkerOptions};
use opsweave::{Error, Result, Weave};
use std::time::Duration;

/// Options of `opsweave worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Jobs run at once
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Only these job kinds, comma-separated [default: every kind this worker knows:
    /// embed, ingest, match, noop, sleep]
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// Lease per job in seconds; heartbeats renew it every third of it
    #[arg(long, default_value_t = 30.0)]
    lease_secs: f64,
    /// Worker name, unique among the workers of a queue [default: opsweave-HOST-PID]
    #[arg(long)]
    name: Option<String>,
    /// Pause between claims while the queue is empty, in milliseconds
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Print a line per finished job: `done ID KIND`, `failed ID KIND: ERROR`, `lost ID KIND: WHY`
    #[arg(long)]
    log_jobs: bool,
}

/// Runs the worker until SIGTERM or Ctrl-C, then lets the jobs in hand finish (a second signal
/// stops at once).
pub async fn run(weave: Weave, args: &WorkerArgs) -> Result<()> {
    if !(args.lease_secs.is_finite() && args.lease_secs > 0.0 && args.lease_secs <= 86_400.0) {
        return Err(
            Error::invalid("--lease-secs must be between 0 and 86400").on_field("lease-secs")
        );
    }
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        format!("opsweave-{host}-{}", std::process::id())
    });
    let mut options = WorkerOptions::new(name.clone());
    options.kinds = args.kinds.clone();
    options.concurrency = args.concurrency;
    options.lease = Duration::from_secs_f64(args.lease_secs);
    options.idle_poll = Duration::from_millis(args.poll_ms);
    // Kept to close the store (saving vector graphs the embed jobs changed) once the worker stops.
    let closing = weave.clone();
    let worker = Worker::new(weave, options)?;
    eprintln!(
        "worker {name}: {} at once, kinds {}; stop with SIGTERM or Ctrl-C",
        args.concurrency,
        worker.kinds().join(",")
    );
    let log_jobs = args.log_jobs;
    // Signals are counted: the first lets the jobs in hand finish, the second abandons them.
    let (signals, mut heard) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            stop_signal().await;
            signals.send_modify(|n| *n += 1);
        }
    });
    let mut first = heard.clone();
    let stop_name = name.clone();
    let first_stop = async move {
        let _ = first.wait_for(|n| *n >= 1).await;
        eprintln!(
            "worker {stop_name}: stopping once the jobs in hand finish; send SIGTERM or Ctrl-C \
             again to stop now (the jobs in hand then go back to the queue for another worker)"
        );
    };
    let abandon = async move {
        let _ = heard.wait_for(|n| *n >= 2).await;
    };
    let report = worker
        .run_until(first_stop, abandon, move |job, outcome| {
            if !log_jobs {
                return;
            }
            match outcome {
                JobOutcome::Done => outln!("done {} {}", job.id, job.kind),
                JobOutcome::Failed(e) => outln!("failed {} {}: {e}", job.id, job.kind),
                JobOutcome::Cancelled => outln!("cancelled {} {}", job.id, job.kind),
                JobOutcome::Lost(e) => outln!("lost {} {}: {e}", job.id, job.kind),
            }
        })
        .await;
    if let Ok(report) = &report {
        eprintln!(
            "worker {name} stopped: {} done, {} failed, {} lost or handed back",
            report.done, report.failed, report.lost
        );
    }
    closing.close().await;
    report.map(drop)
}

/// Resolves on the first SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
