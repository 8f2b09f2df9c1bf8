//! `opsweave migrate` throughput and memory: a SQLite database of N synthetic tasks (with raw
//! payloads, full text, a completed task per 100, events and usage) copied into a fresh
//! PostgreSQL database over loopback, then copied again with `resume` (every row rewritten).
//!
//! ```sh
//! eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"
//! cargo run --release -p opsweave-benches --bin migrate -- [ROWS] [BATCH]
//! ```
//! (defaults: 200,000 rows, batches of 1,000). A first child process only reads every page from
//! the source (the export side alone). Each copy runs in a child process (`migrate copy
//! FROM TO BATCH RESUME`), so its CPU time and peak memory (VmHWM) are the copy's alone.
//! `OPSWEAVE_BENCH_KEEP=DIR` keeps the source database in DIR.

use opsweave::{
    migrate, Mapping, MigrateOptions, MigrateProgress, Operation, Scope, UsageEvent, Weave,
};
use opsweave_benches::{create_database, drop_database, process_cpu_seconds};
use std::time::Instant;

const MAPPING: &str = include_str!("../../bindings/tasks-mapping.toml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("copy") {
        // The copy itself, in a process of its own so its peak memory is the copy's alone.
        let [_, _, from, to, batch, resume] = args.as_slice() else {
            return Err("usage: migrate copy FROM TO BATCH RESUME".into());
        };
        let options = MigrateOptions {
            batch: batch.parse()?,
            resume: resume == "1",
        };
        return runtime.block_on(copy(from, to, &options));
    }
    if args.get(1).map(String::as_str) == Some("read") {
        let [_, _, from, batch] = args.as_slice() else {
            return Err("usage: migrate read FROM BATCH".into());
        };
        return runtime.block_on(read(from, batch.parse()?));
    }
    let arg = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let rows = arg(1, 200_000)?;
    let batch = arg(2, 1_000)?;
    let pg = std::env::var("OPSWEAVE_TEST_POSTGRES_URL")
        .map_err(|_| "set OPSWEAVE_TEST_POSTGRES_URL (pg-test-server.sh start)")?;
    let dir = tempfile::tempdir()?;
    // OPSWEAVE_BENCH_KEEP=DIR keeps the source database there for inspection.
    let keep = std::env::var_os("OPSWEAVE_BENCH_KEEP").map(std::path::PathBuf::from);
    let folder = keep.as_deref().unwrap_or(dir.path());
    let source = format!("sqlite://{}", folder.join("source.db").display());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let target_name = format!("ow_bench_migrate_{stamp}");
    let target = runtime.block_on(async {
        build_source(folder, &source, rows).await?;
        create_database(&pg, &target_name).await
    })?;
    let batch = batch.to_string();
    let runs: [&[&str]; 3] = [
        &["read", &source, &batch],
        &["copy", &source, &target, &batch, "0"],
        &["copy", &source, &target, &batch, "1"],
    ];
    let mut failed = None;
    for run in runs {
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(run)
            .status()?;
        if !status.success() {
            failed = Some(format!("the copy failed: {status}"));
            break;
        }
    }
    runtime.block_on(drop_database(&pg, &target_name))?;
    match failed {
        Some(failed) => Err(failed.into()),
        None => Ok(()),
    }
}

/// Every page of every kind read from the source and dropped: the read side of a copy alone.
async fn read(from: &str, batch: usize) -> Result<(), Box<dyn std::error::Error>> {
    let weave = Weave::open(from).await?;
    let source = weave.snapshot().ok_or("no snapshot")?;
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let mut rows = 0;
    for kind in opsweave::SnapshotKind::ALL {
        let mut after = None;
        loop {
            let page = source.export(kind, after.as_ref(), batch).await?;
            let Some(last) = page.last_key() else { break };
            rows += page.len();
            after = Some(last);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu).map(|(a, b)| a - b);
    println!(
        "read only (SQLite export, batch {batch}): {rows} rows in {secs:.2} s = {:.0} rows/s; \
         process CPU {:.2} s",
        rows as f64 / secs,
        cpu.unwrap_or(f64::NAN)
    );
    Ok(())
}

/// One copy, timed, with this process's CPU and peak memory.
async fn copy(
    from: &str,
    to: &str,
    options: &MigrateOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let report = migrate(from, to, options, &mut |_: &MigrateProgress| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu).map(|(a, b)| a - b);
    let copied: u64 = report.copied.values().sum();
    println!(
        "{} copy SQLite -> PostgreSQL, batch {}: {copied} rows ({} records) in {secs:.2} s = {:.0} \
         rows/s; copy process CPU {:.2} s; its peak RSS {} MiB; counts verified (load average {})",
        if options.resume { "resumed" } else { "first" },
        options.batch,
        report.copied["records"],
        copied as f64 / secs,
        cpu.unwrap_or(f64::NAN),
        peak_memory_mib().map_or("?".into(), |m| m.to_string()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    Ok(())
}

/// Ingests `rows` synthetic tasks into `db`, completes one in a hundred, records usage.
async fn build_source(
    dir: &std::path::Path,
    db: &str,
    rows: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let csv = opsweave_benches::write_task_csv(dir, rows)?;
    let weave = Weave::open(db).await?;
    let scope = weave.default_scope();
    let started = Instant::now();
    weave
        .ingest_path(&csv, &Mapping::from_toml(MAPPING)?, &scope, None)
        .await?;
    let mut after = None;
    let mut completed = 0;
    loop {
        let filter = opsweave::store::RecordFilter {
            after,
            limit: 10_000,
            ..Default::default()
        };
        let page = weave.store().records(&scope, &filter).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for record in page.iter().step_by(100) {
            weave.complete(&scope, record.id, "bench").await?;
            completed += 1;
        }
    }
    let usage: Vec<UsageEvent> = (0..rows / 10)
        .map(|i| UsageEvent {
            scope: Scope::org("default"),
            operation: Operation::Embed,
            model: "minilm".into(),
            input_tokens: 0,
            output_tokens: 0,
            embedding_tokens: 100 + i as u64,
            latency_ms: 3,
            job: None,
            at: chrono::Utc::now(),
        })
        .collect();
    weave.record_usage(&usage).await?;
    println!(
        "source: {rows} tasks, {completed} completed (events), {} usage events, built in {:.1} s",
        usage.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// This process's peak resident memory, in MiB; `None` off Linux.
fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
