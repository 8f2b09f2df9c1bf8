//! Embedded-store benchmark: ingest N synthetic CSV rows into a fresh SQLite database, then time
//! `focus` (top 3 for today, week and month) over the resulting N tasks.
//!
//! `cargo run --release -p opsweave-benches --bin embedded -- [ROWS] [FOCUS_CALLS]`
//! (defaults: 1,000,000 rows, 2,000 focus calls). `OPSWEAVE_BENCH_CSV=FILE` reuses or keeps the
//! CSV; with `OPSWEAVE_BENCH_CSV_ONLY=1` the harness only writes it. `OPSWEAVE_BENCH_BULK=0`
//! turns off the bulk load of a first ingest (batch by batch, as into a non-empty store).
//!
//! It runs on the `opsweave` binary's allocator (mimalloc), so it measures what `opsweave ingest`
//! does; with the system allocator the same ingest takes about 1.5× as long (docs/benchmarks.md).

use chrono::{Duration, TimeZone, Utc};
use opsweave::{Config, Horizon, Mapping, Weave};
use std::io::Write;
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MAPPING: &str = include_str!("../../bindings/tasks-mapping.toml");

const WORDS: [&str; 24] = [
    "migrate",
    "database",
    "customer",
    "renewal",
    "invoice",
    "deploy",
    "security",
    "review",
    "contract",
    "pipeline",
    "onboarding",
    "latency",
    "backup",
    "report",
    "forecast",
    "upgrade",
    "cluster",
    "billing",
    "audit",
    "vendor",
    "search",
    "index",
    "support",
    "launch",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let calls: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2_000);
    let dir = tempfile::tempdir()?;
    // OPSWEAVE_BENCH_KEEP=DIR keeps the generated CSV and database there, for inspection.
    let dir = match std::env::var_os("OPSWEAVE_BENCH_KEEP") {
        Some(keep) => {
            std::fs::create_dir_all(&keep)?;
            tempfile::Builder::new()
                .prefix("bench")
                .tempdir_in(keep)?
                .keep()
        }
        None => dir.keep(),
    };
    let _cleanup = Cleanup(
        std::env::var_os("OPSWEAVE_BENCH_KEEP")
            .is_none()
            .then(|| dir.clone()),
    );
    let csv_path = dir.join("tasks.csv");
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .ok_or("bad time")?;
    // OPSWEAVE_BENCH_CSV=FILE reuses that CSV when it exists (or writes it there), so the Python and
    // Node benchmarks (benches/bindings/run.sh) read the very same rows.
    let csv_path = match std::env::var_os("OPSWEAVE_BENCH_CSV") {
        Some(path) => std::path::PathBuf::from(path),
        None => csv_path,
    };
    if csv_path.exists() {
        eprintln!("reusing {}", csv_path.display());
    } else {
        write_csv(&csv_path, rows, now)?;
    }
    // OPSWEAVE_BENCH_CSV_ONLY=1 stops here: other harnesses (benches/http/run.sh) ingest the CSV
    // their own way.
    if std::env::var_os("OPSWEAVE_BENCH_CSV_ONLY").is_some() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = format!("sqlite://{}", dir.join("bench.db").display());
        let mut config = Config { db, ..Config::default() };
        // OPSWEAVE_BENCH_BULK=0: batch by batch even into the fresh database (no bulk load).
        config.ingest.bulk_load = std::env::var("OPSWEAVE_BENCH_BULK").map_or(true, |v| v != "0");
        let weave = Weave::open_with(config).await?;
        let scope = weave.default_scope();
        let mapping = Mapping::from_toml(MAPPING)?;
        let t = Instant::now();
        let cpu = cpu_seconds();
        let report = weave.ingest_path(&csv_path, &mapping, &scope, None).await?;
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds().zip(cpu).map(|(after, before)| (after.0 - before.0, after.1 - before.1));
        println!(
            "ingest: {rows} rows in {secs:.2}s = {:.0} rows/s (inserted {}, rejected {})",
            rows as f64 / secs,
            report.inserted,
            report.rejected_total
        );
        if let Some((process, writer)) = cpu {
            println!(
                "  cpu: process {process:.2}s, writing threads {writer:.2}s ({:.1} µs/row)",
                writer * 1e6 / rows as f64
            );
        }
        let t = Instant::now();
        let again = weave.ingest_path(&csv_path, &mapping, &scope, None).await?;
        let secs2 = t.elapsed().as_secs_f64();
        println!(
            "re-ingest (all unchanged): {secs2:.2}s = {:.0} rows/s (unchanged {})",
            rows as f64 / secs2,
            again.unchanged
        );
        let (records, open) = weave.store().counts(&scope).await?;
        println!("store: {records} records, {open} open tasks");
        let mut times = Vec::with_capacity(calls);
        let focus_cpu = cpu_seconds();
        let focus_started = Instant::now();
        for i in 0..calls {
            // Vary "now" by minutes so no call is answered from a warm identical query only.
            let at = now + Duration::minutes((i % 600) as i64);
            let t = Instant::now();
            let focus = weave.focus(&scope, &Horizon::FOCUS, 3, Some(at)).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if i == 0 {
                for h in Horizon::FOCUS {
                    for task in focus.get(h) {
                        println!("  {h:<5} {:5.1} {}", task.priority.score, task.task.title);
                    }
                }
            }
        }
        if times.is_empty() {
            return Ok(());
        }
        let focus_wall = focus_started.elapsed().as_secs_f64();
        if let Some(((after, _), (before, _))) = cpu_seconds().zip(focus_cpu) {
            println!(
                "focus loop: {calls} calls in {focus_wall:.2}s wall, {:.2}s process CPU",
                after - before
            );
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "focus over {open} open tasks ({calls} calls): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

/// Writes `rows` synthetic task rows (deterministic) to `csv_path`.
fn write_csv(
    csv_path: &std::path::Path,
    rows: usize,
    now: chrono::DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let today = now.date_naive();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(csv_path)?);
        writeln!(out, "id,title,body,due,priority,status,updated")?;
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let priorities = ["P0", "P1", "P2", "P3", "", "High", "Low"];
        let statuses = ["open", "open", "open", "in progress", "closed", "closed"];
        for i in 0..rows {
            let r = next();
            let title = format!(
                "{} {} {} #{i}",
                WORDS[(r % 24) as usize],
                WORDS[((r >> 8) % 24) as usize],
                WORDS[((r >> 16) % 24) as usize]
            );
            // Due dates from 180 days ago to 365 days ahead; one in ten undated.
            let due = if (r >> 24) % 10 == 0 {
                String::new()
            } else {
                (today + Duration::days(((r >> 28) % 545) as i64 - 180)).to_string()
            };
            let updated = now - Duration::minutes(((r >> 40) % (60 * 24 * 90)) as i64);
            writeln!(
                out,
                "T-{i},{title},Details for {title} and follow-up,{due},{},{},{}",
                priorities[((r >> 34) % 7) as usize],
                statuses[((r >> 37) % 6) as usize],
                updated.to_rfc3339()
            )?;
        }
    }
    let size = std::fs::metadata(csv_path)?.len();
    eprintln!(
        "generated {rows} rows ({:.1} MiB) in {:.1}s",
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    Ok(())
}

/// CPU seconds used so far by the process and by the threads that write: the main thread (the
/// ingest writes its batches on the thread that awaits it) and sqlx's SQLite connection threads
/// (which run `BEGIN` and `COMMIT`) (Linux; `None` elsewhere). CPU time, unlike wall time,
/// barely moves when other work shares the machine.
fn cpu_seconds() -> Option<(f64, f64)> {
    fn ticks(stat: &str) -> Option<f64> {
        // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    }
    let process = ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let main = std::process::id().to_string();
    let mut writer = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with("sqlx-sqlite") || path.file_name().is_some_and(|tid| *tid == *main) {
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            writer += ticks(&stat).unwrap_or_default();
        }
    }
    Some((process, writer))
}

/// Removes the benchmark's folder on exit unless it is to be kept.
struct Cleanup(Option<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
