//! `opsweave migrate`: copy a whole database into another backend, with progress and counts.

use clap::Args;
use opsweave::{mask_password, MigrateOptions, MigrateProgress, Result};
use std::time::{Duration, Instant};

/// How often progress is printed while a kind is being copied.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What `opsweave migrate --help` says beyond the one line.
pub const LONG_ABOUT: &str =
    "Copy everything a database holds into another one, e.g. the embedded \
SQLite file into PostgreSQL (or back): records with their raw payloads, tasks (status, boosts, \
pins, completion), links, rejections, the event log (undo history), matching state and review \
decisions, jobs, usage events, API keys and vectors. Ids are kept, so links, events, task and \
job ids stay valid.

Rows are read in key order, --batch at a time, and each batch is written in one transaction, \
so memory stays small whatever the size. Afterwards every table is counted per org on both \
sides; the command fails (exit 1) when a count differs.

The target must be empty. If a copy stopped half-way, run the same command with --resume: rows \
already there are written again by their ids (nothing is duplicated). A target holding orgs the \
source does not have is always refused, so a copy never overwrites someone else's data. --from \
and --to must be two databases: the same file or server database under another spelling is \
refused (exit 2).

Stop the source's writers (serve, worker, ingest) while it runs: each batch is read on its own, \
so a row added meanwhile may be missed (the count check then fails), and a row changed \
meanwhile (a task completed, a key revoked) may be copied as it was before the change, which \
no count shows.";

/// Arguments of `opsweave migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database to copy [default: --db, or the configured one]
    #[arg(long)]
    pub from: Option<String>,
    /// The database to copy into (sqlite://PATH or postgres://…)
    #[arg(long)]
    pub to: String,
    /// Rows per round trip and per transaction (1 to 10000)
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Continue an earlier, interrupted copy into the same target
    #[arg(long)]
    pub resume: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs the copy from `from` (the resolved source URL) as `args` say.
pub async fn run(from: &str, args: &MigrateArgs) -> Result<()> {
    let options = MigrateOptions {
        batch: args.batch,
        resume: args.resume,
    };
    eprintln!(
        "copying {} into {}",
        mask_password(from),
        mask_password(&args.to)
    );
    let started = Instant::now();
    let mut last = Instant::now();
    let mut progress = |p: &MigrateProgress| {
        if p.finished {
            eprintln!("  {:<14} {:>10} copied", p.kind.as_str(), p.copied);
        } else if p.copied > 0 && last.elapsed() >= PROGRESS_EVERY {
            eprintln!("  {:<14} {:>10} / {}", p.kind.as_str(), p.copied, p.total);
            last = Instant::now();
        }
    };
    let report = opsweave::migrate(from, &args.to, &options, &mut progress).await?;
    if args.json {
        crate::output::print_json(&report);
        return Ok(());
    }
    outln!("{:<14} {:>10} {:>10}", "table", "source", "target");
    for t in &report.tables {
        outln!("{:<14} {:>10} {:>10}", t.table, t.source, t.target);
    }
    let rows: u64 = report.copied.values().sum();
    outln!(
        "{} {rows} rows of {} org(s) ({}) in {:.1} s; every count matches",
        if report.resumed {
            "resumed: wrote"
        } else {
            "copied"
        },
        report.orgs.len(),
        report.orgs.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
