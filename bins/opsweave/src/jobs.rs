//! `opsweave jobs`: the background jobs of the scope, listed, shown and cancelled from the
//! machine that holds the database (or the queue named by `--queue`).

use crate::output::emit;
use clap::Subcommand;
use opsweave::{Error, Job, JobId, JobStatus, Result, Scope, Weave};
use serde_json::json;

/// What to do with jobs.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// The scope's jobs, newest first.
    List {
        /// Only jobs in this state: queued, running, done, failed or cancelled
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 1000)
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One job, whole: its payload, progress, attempts and the last attempt's error in full.
    Show {
        /// Job id (from `jobs list`)
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running job (a running one stops at its next progress report).
    Cancel {
        /// Job id (from `jobs list`)
        id: i64,
    },
}

/// Runs a `jobs` command in `scope`.
pub async fn run(weave: &Weave, scope: Scope, command: &JobsCommand) -> Result<()> {
    match command {
        JobsCommand::List {
            status,
            limit,
            json,
        } => {
            let status = status
                .as_deref()
                .map(str::parse::<JobStatus>)
                .transpose()
                .map_err(|e| e.on_field("status"))?;
            if !(1..=1000).contains(limit) {
                return Err(
                    Error::invalid(format!("--limit must be from 1 to 1000 (is {limit})"))
                        .on_field("limit"),
                );
            }
            let jobs = weave.list_jobs(&scope, status, *limit).await?;
            if *json {
                emit(format_args!("{}\n", json!(jobs)));
                return Ok(());
            }
            if jobs.is_empty() {
                emit(format_args!("no jobs in {scope}\n"));
            }
            for job in &jobs {
                emit(format_args!("{}\n", line(job)));
            }
            Ok(())
        }
        JobsCommand::Show { id, json } => {
            let job = weave.job(&scope, job_id(*id)?).await?;
            if *json {
                emit(format_args!("{}\n", json!(job)));
                return Ok(());
            }
            emit(format_args!("{}\n", line(&job)));
            emit(format_args!(
                "  attempts {} of {}, queued {}, updated {}{}\n",
                job.attempts,
                job.max_attempts,
                job.created_at.format("%Y-%m-%d %H:%M:%S"),
                job.updated_at.format("%Y-%m-%d %H:%M:%S"),
                job.finished_at
                    .map(|t| format!(", finished {}", t.format("%Y-%m-%d %H:%M:%S")))
                    .unwrap_or_default()
            ));
            if let Some(message) = &job.message {
                emit(format_args!("  message: {message}\n"));
            }
            if let Some(error) = &job.error {
                emit(format_args!("  error: {error}\n"));
            }
            emit(format_args!("  payload: {}\n", abridged(&job.payload)));
            Ok(())
        }
        JobsCommand::Cancel { id } => {
            let job = weave.cancel_job(&scope, job_id(*id)?).await?;
            emit(format_args!("{}\n", line(&job)));
            Ok(())
        }
    }
}

/// A job id as the queue assigns them (from 1).
fn job_id(id: i64) -> Result<JobId> {
    if id < 1 {
        return Err(
            Error::invalid(format!("job id {id} is not one the queue assigns (from 1)"))
                .on_field("id"),
        );
    }
    Ok(JobId(id))
}

/// Longest text shown whole in a table or a payload: an ingest job's report lists every
/// rejection and an upload carries the whole file (`--json` has them in full).
const SHOWN_CHARS: usize = 160;

/// `text` cut at [`SHOWN_CHARS`] (and at its first line), saying how much was left out.
fn shortened(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    match first.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes; --json for all)", &first[..cut], text.len()),
        None if first.len() < text.len() => {
            format!("{first} … ({} bytes; --json for all)", text.len())
        }
        None => first.to_string(),
    }
}

/// `payload` with long strings (an uploaded file's content) replaced by their shortened form.
fn abridged(payload: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match payload {
        Value::String(text) if text.len() > SHOWN_CHARS => Value::String(shortened(text)),
        Value::Array(items) => Value::Array(items.iter().map(abridged).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), abridged(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One line per job: id, status, kind, progress and the latest word on it.
fn line(job: &Job) -> String {
    let note = match (job.status, &job.error, &job.message) {
        (JobStatus::Failed, Some(error), _) => error.as_str(),
        (_, _, Some(message)) => message.as_str(),
        (_, Some(error), None) => error.as_str(),
        (_, None, None) => "",
    };
    let note = shortened(note);
    format!(
        "{:>6}  {:<9} {:<10} {:>4.0}%  {}",
        job.id.0,
        job.status.as_str(),
        job.kind,
        job.progress * 100.0,
        note
    )
}
