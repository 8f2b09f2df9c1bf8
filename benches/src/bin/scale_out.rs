//! Scale-out backends: job queue throughput (claimed and completed per second) on PostgreSQL and
//! Redis, and ingest rows per second into PostgreSQL over loopback.
//!
//! ```sh
//! eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"
//! eval "$(adapters/opsweave-redis/redis-test-server.sh start)"
//! cargo run --release -p opsweave-benches --bin scale_out -- [JOBS] [WORKERS] [ROWS]
//! ```
//! (defaults: 20,000 jobs, 32 concurrent workers, 200,000 rows). Servers are read from
//! `OPSWEAVE_TEST_POSTGRES_URL` and `OPSWEAVE_TEST_REDIS_URL`; each run uses a fresh PostgreSQL
//! database and a fresh Redis key prefix.

use opsweave::{Config, JobQueue, Mapping, NewJob, Scope, Weave};
use opsweave_benches::process_cpu_seconds;
use sqlx::{Connection, Executor};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAPPING: &str = include_str!("../../bindings/tasks-mapping.toml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let jobs = arg(1, 20_000)?;
    let workers = arg(2, 32)?;
    let rows = arg(3, 200_000)?;
    let pg = std::env::var("OPSWEAVE_TEST_POSTGRES_URL")
        .map_err(|_| "set OPSWEAVE_TEST_POSTGRES_URL (pg-test-server.sh start)")?;
    let redis = std::env::var("OPSWEAVE_TEST_REDIS_URL")
        .map_err(|_| "set OPSWEAVE_TEST_REDIS_URL (redis-test-server.sh start)")?;
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let db = fresh_database(&pg, &format!("ow_bench_queue_{stamp}")).await?;
        let weave = Weave::open(&db).await?;
        let queue = weave.jobs().ok_or("no queue")?.clone();
        queue_throughput("PostgreSQL", queue, jobs, workers).await?;

        // The records store is unused here: only the queue (on Redis) is measured.
        let scratch = tempfile::tempdir()?;
        let weave = Weave::open_with(Config {
            db: format!("sqlite://{}", scratch.path().join("unused.db").display()),
            queue: Some(format!("{redis}?prefix=bench-{stamp}")),
            ..Config::default()
        })
        .await?;
        let queue = weave.jobs().ok_or("no queue")?.clone();
        queue_throughput("Redis", queue, jobs, workers).await?;

        let db = fresh_database(&pg, &format!("ow_bench_ingest_{stamp}")).await?;
        ingest(&db, rows).await
    })
}

async fn fresh_database(server: &str, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut admin = sqlx::PgConnection::connect(server).await?;
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    let (base, _) = server
        .rsplit_once('/')
        .ok_or("server URL without a database")?;
    Ok(format!("{base}/{name}"))
}

/// Enqueues `jobs` noop jobs, then `workers` concurrent claimers claim and complete them all.
async fn queue_throughput(
    backend: &str,
    queue: Arc<dyn JobQueue>,
    jobs: usize,
    workers: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let scope = Scope::org("bench");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for part in 0..workers {
        let queue = queue.clone();
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            for n in (part..jobs).step_by(workers) {
                let job = NewJob::new("noop", scope.clone(), serde_json::json!({ "n": n }));
                queue.enqueue(job).await?;
            }
            Ok::<_, opsweave::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let enqueue_secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            let mut done = 0usize;
            while let Some(job) = queue.claim(&name, &[], Duration::from_secs(60)).await? {
                queue.complete(job.id, &name).await?;
                done += 1;
            }
            Ok::<_, opsweave::Error>(done)
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu).map(|(a, b)| a - b);
    println!(
        "{backend} queue: enqueued {jobs} in {enqueue_secs:.2}s = {:.0}/s; {workers} workers claimed \
         and completed {done} in {secs:.2}s = {:.0} jobs/s (client process CPU {:.2}s)",
        jobs as f64 / enqueue_secs,
        done as f64 / secs,
        cpu.unwrap_or(f64::NAN)
    );
    if done != jobs {
        return Err(format!("{backend}: {done} of {jobs} jobs completed").into());
    }
    Ok(())
}

/// Ingests `rows` synthetic task rows (CSV) into a fresh PostgreSQL database.
async fn ingest(db: &str, rows: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("tasks.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(out, "id,title,body,due,priority,status,updated")?;
        let words = [
            "migrate", "customer", "renewal", "invoice", "deploy", "security", "review",
        ];
        for i in 0..rows {
            let w = |k: usize| words[(i / (k + 1) + k) % words.len()];
            let due = if i % 10 == 0 {
                String::new()
            } else {
                format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28)
            };
            writeln!(
                out,
                "T-{i},{} {} {} #{i},Details for task {i} and follow-up,{due},P{},open,2026-11-{:02}T09:00:00Z",
                w(0),
                w(1),
                w(2),
                i % 4,
                1 + i % 22
            )?;
        }
    }
    let weave = Weave::open(db).await?;
    let scope = weave.default_scope();
    let mapping = Mapping::from_toml(MAPPING)?;
    let cpu = process_cpu_seconds();
    let started = Instant::now();
    let report = weave.ingest_path(&csv, &mapping, &scope, None).await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu).map(|(a, b)| a - b);
    println!(
        "PostgreSQL ingest: {rows} rows in {secs:.2}s = {:.0} rows/s (inserted {}, rejected {}; \
         client process CPU {:.2}s)",
        rows as f64 / secs,
        report.inserted,
        report.rejected_total,
        cpu.unwrap_or(f64::NAN)
    );
    Ok(())
}
