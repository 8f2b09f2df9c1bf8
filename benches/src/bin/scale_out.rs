//! Scale-out backends: job queue throughput (claimed and completed per second) on PostgreSQL and
//! Redis, and ingest rows per second into PostgreSQL over loopback.
//!
//! ```sh
//! eval "$(adapters/opsweave-postgres/pg-test-server.sh start)"
//! eval "$(adapters/opsweave-redis/redis-test-server.sh start)"
//! cargo run --release -p opsweave-benches --bin scale_out -- [JOBS] [WORKERS] [ROWS] [BATCH]
//! ```
//! (defaults: 20,000 jobs, 32 concurrent workers, 200,000 rows, batches of 32). Servers are read
//! from `OPSWEAVE_TEST_POSTGRES_URL` and `OPSWEAVE_TEST_REDIS_URL`; each run uses a fresh
//! PostgreSQL database and a fresh Redis key prefix, both dropped afterwards (a Redis left
//! holding earlier runs' jobs drains measurably slower). `OPSWEAVE_BENCH_ONLY=pg-queue,
//! redis-queue,ingest` (any of them) runs only those parts, `OPSWEAVE_BENCH_MODES=single,batched,
//! worker` only those ways of draining the queues, `OPSWEAVE_BENCH_CONCURRENCY=1,4` (the default)
//! the `ingest.concurrency` values the ingest is measured with, each into a fresh database.
//!
//! Each queue is drained in up to three ways, each from a fresh set of jobs:
//! - `single`: `WORKERS` tasks, each claims one job and completes it, one call each;
//! - `batched`: `WORKERS / 4` tasks, each claims `BATCH` jobs in one call and completes them in
//!   one call;
//! - `worker`: `WORKERS / 4` [`Worker`]s (the loop `opsweave worker` runs) with `BATCH` slots
//!   each, `noop` handler.
//!
//! Besides wall time it prints this process's CPU time and, when the server runs on this machine,
//! the server's (the postmaster with all its processes; the redis-server): CPU time barely moves
//! when other work shares the machine, wall time does. The harness runs on the `opsweave`
//! binary's allocator (mimalloc), so its client CPU is what `opsweave ingest` spends.

use opsweave::worker::{Worker, WorkerOptions};
use opsweave::{Config, JobId, JobQueue, Mapping, NewJob, Scope, Weave};
use opsweave_benches::{
    create_database, drop_database, load_average, parent_pid, process_cpu_seconds,
    server_cpu_seconds,
};
use sqlx::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAPPING: &str = include_str!("../../bindings/tasks-mapping.toml");

/// The `opsweave` binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| -> Result<usize, BoxError> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let jobs = arg(1, 20_000)?;
    let workers = arg(2, 32)?.max(1);
    let rows = arg(3, 200_000)?;
    let batch = arg(4, 32)?.clamp(1, opsweave_core::jobs::MAX_BATCH);
    let only = std::env::var("OPSWEAVE_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let modes_wanted = std::env::var("OPSWEAVE_BENCH_MODES").unwrap_or_default();
    let modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| {
            modes_wanted.is_empty() || modes_wanted.split(',').any(|w| w.trim() == m.name())
        })
        .collect();
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
        let postmaster = postmaster_pid(&pg).await;
        if run("pg-queue") {
            let server = Server {
                pid: postmaster,
                redis: None,
                marker: String::new(),
            };
            for &mode in &modes {
                let name = format!("ow_bench_queue_{stamp}_{}", mode.name());
                let db = create_database(&pg, &name).await?;
                let weave = Weave::open(&db).await?;
                let bench = QueueBench {
                    backend: "PostgreSQL",
                    weave,
                    jobs,
                    workers,
                    batch,
                    server: &server,
                };
                let result = bench.run(mode).await;
                drop(bench);
                drop_database(&pg, &name).await?;
                result?;
            }
        }
        if run("redis-queue") {
            let server = Server {
                pid: redis_pid(&redis).await,
                redis: Some(redis.clone()),
                marker: String::new(),
            };
            for &mode in &modes {
                // The records store is unused here: only the queue (on Redis) is measured.
                let scratch = tempfile::tempdir()?;
                let prefix = format!("bench-{stamp}-{}", mode.name());
                let weave = Weave::open_with(Config {
                    db: format!("sqlite://{}", scratch.path().join("unused.db").display()),
                    queue: Some(format!("{redis}?prefix={prefix}")),
                    ..Config::default()
                })
                .await?;
                let bench = QueueBench {
                    backend: "Redis",
                    weave,
                    jobs,
                    workers,
                    batch,
                    server: &server,
                };
                let result = bench.run(mode).await;
                drop(bench);
                drop_prefix(&redis, &prefix).await?;
                result?;
            }
        }
        if run("ingest") {
            let csv = tempfile::tempdir()?;
            let csv = opsweave_benches::write_task_csv(csv.path(), rows)?;
            for concurrency in ingest_concurrency()? {
                let name = format!("ow_bench_ingest_{stamp}_{concurrency}");
                let db = create_database(&pg, &name).await?;
                let server = Server {
                    pid: postmaster,
                    redis: None,
                    marker: name.clone(),
                };
                let result = ingest(&db, &csv, rows, concurrency, &server).await;
                drop_database(&pg, &name).await?;
                result?;
            }
        }
        Ok(())
    })
}

/// A server process on this machine, to read its CPU time (`pid` None: not readable here).
struct Server {
    pid: Option<u32>,
    /// A Redis server's URL, to read its per-command times (`INFO commandstats`).
    redis: Option<String>,
    /// Counts apart the processes whose command line holds it (PostgreSQL: the database name).
    marker: String,
}

impl Server {
    fn cpu(&self) -> Option<(f64, f64)> {
        server_cpu_seconds(self.pid?, &self.marker)
    }

    /// Redis only: clears the per-command statistics (`CONFIG RESETSTAT`).
    async fn reset_command_stats(&self) -> Option<()> {
        let client = redis::Client::open(self.redis.as_deref()?).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async::<()>(&mut conn)
            .await
            .ok()
    }

    /// Redis only: server time per command since the reset, the costliest first, per job.
    async fn command_stats(&self, jobs: usize) -> Option<String> {
        let client = redis::Client::open(self.redis.as_deref()?).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .ok()?;
        let mut costs: Vec<(String, u64, f64)> = info
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |key: &str| {
                    rest.split(',')
                        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                };
                let calls: u64 = field("calls")?.parse().ok()?;
                let usec: f64 = field("usec")?.parse().ok()?;
                Some((name.to_string(), calls, usec))
            })
            .filter(|(name, _, _)| !name.starts_with("config") && name != "info")
            .collect();
        costs.sort_by(|a, b| b.2.total_cmp(&a.2));
        let per_job = |usec: f64| usec / jobs.max(1) as f64;
        Some(
            costs
                .iter()
                .take(8)
                .map(|(name, calls, usec)| {
                    format!("{name} {calls} calls {:.1} µs/job", per_job(*usec))
                })
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

/// The postmaster's pid, when the server runs on this machine.
async fn postmaster_pid(server: &str) -> Option<u32> {
    let mut conn = sqlx::PgConnection::connect(server).await.ok()?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    parent_pid(u32::try_from(backend).ok()?)
}

/// Deletes a run's keys (those under `{prefix}`), as the PostgreSQL runs drop their database:
/// a server left holding earlier runs' jobs drains a queue measurably slower.
async fn drop_prefix(url: &str, prefix: &str) -> Result<(), BoxError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{{{prefix}}}*");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The redis-server's pid, when it runs on this machine.
async fn redis_pid(url: &str) -> Option<u32> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .ok()?;
    let pid: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))?
        .trim()
        .parse()
        .ok()?;
    std::fs::metadata(format!("/proc/{pid}"))
        .is_ok()
        .then_some(pid)
}

/// How the jobs are drained.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Single,
    Batched,
    Worker,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Single, Mode::Batched, Mode::Worker];

    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Batched => "batched",
            Self::Worker => "worker",
        }
    }
}

struct QueueBench<'a> {
    backend: &'static str,
    weave: Weave,
    jobs: usize,
    workers: usize,
    batch: usize,
    server: &'a Server,
}

impl QueueBench<'_> {
    /// Enqueues the jobs `noop` jobs, then drains them the `mode` way; prints both.
    async fn run(&self, mode: Mode) -> Result<(), BoxError> {
        let queue = self.weave.jobs().ok_or("no queue")?.clone();
        let scope = Scope::org("bench");
        let started = Instant::now();
        let mut tasks = Vec::new();
        for part in 0..self.workers {
            let queue = queue.clone();
            let scope = scope.clone();
            let (jobs, workers) = (self.jobs, self.workers);
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
        self.server.reset_command_stats().await;
        let server_cpu = self.server.cpu();
        let load = load_average();
        let started = Instant::now();
        let (done, how) = match mode {
            Mode::Single => (
                self.single(queue.clone()).await?,
                format!("{} tasks", self.workers),
            ),
            Mode::Batched => {
                let tasks = self.loop_count();
                (
                    self.batched(queue.clone(), tasks).await?,
                    format!("{tasks} tasks x batches of {}", self.batch),
                )
            }
            Mode::Worker => (
                self.worker_loops().await?,
                format!("{} worker loops x {} slots", self.loop_count(), self.batch),
            ),
        };
        let secs = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds().zip(cpu).map(|(a, b)| a - b);
        let server_cpu = self.server.cpu().zip(server_cpu).map(|(a, b)| a.0 - b.0);
        let per_job = |s: Option<f64>| {
            s.map_or("n/a".to_string(), |s| {
                format!("{s:.2}s = {:.0} µs/job", s * 1e6 / done as f64)
            })
        };
        println!(
            "{} queue, {} ({how}): enqueued {} in {enqueue_secs:.2}s = {:.0}/s; claimed and \
             completed {done} in {secs:.2}s = {:.0} jobs/s at load {load}; CPU: client {}, \
             server {}",
            self.backend,
            mode.name(),
            self.jobs,
            self.jobs as f64 / enqueue_secs,
            done as f64 / secs,
            per_job(cpu),
            per_job(server_cpu),
        );
        if let Some(stats) = self.server.command_stats(done).await {
            // Scripts' time includes the commands they call.
            println!("  redis commands while draining: {stats}");
        }
        if done != self.jobs {
            return Err(format!("{}: {done} of {} jobs completed", self.backend, self.jobs).into());
        }
        self.look(&queue, &scope).await
    }

    /// Times what `run_jobs` does between claims once the queue holds a history: with the
    /// drained jobs done, 10 new ones queued, a count of the open jobs (median of 21), against
    /// listing failed jobs (there are none: on Redis a walk of the whole history, as listing
    /// queued jobs was before the open-jobs index).
    async fn look(&self, queue: &Arc<dyn JobQueue>, scope: &Scope) -> Result<(), BoxError> {
        for n in 0..10 {
            let job = NewJob::new("noop", scope.clone(), serde_json::json!({ "late": n }));
            queue.enqueue(job).await?;
        }
        let kinds = ["noop".to_string()];
        let median = |mut times: Vec<f64>| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        let mut counts = Vec::new();
        for _ in 0..21 {
            let started = Instant::now();
            let open = queue.count_open(scope, &kinds).await?;
            counts.push(started.elapsed().as_secs_f64() * 1e3);
            if open.queued != 10 {
                return Err(format!("{}: {} open jobs, not 10", self.backend, open.queued).into());
            }
        }
        let mut walks = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            queue
                .list(scope, Some(opsweave::JobStatus::Failed), 1_000)
                .await?;
            walks.push(started.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "  with {} done jobs and 10 queued: count_open {:.2} ms (median of 21); listing \
             failed jobs (none) {:.1} ms (median of 3)",
            self.jobs,
            median(counts),
            median(walks)
        );
        Ok(())
    }

    /// Claims and completes one job per call.
    async fn single(&self, queue: Arc<dyn JobQueue>) -> Result<usize, BoxError> {
        let mut tasks = Vec::new();
        for w in 0..self.workers {
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
        Ok(done)
    }

    /// Claims a batch per call and completes it in one call.
    async fn batched(&self, queue: Arc<dyn JobQueue>, tasks: usize) -> Result<usize, BoxError> {
        let mut running = Vec::new();
        for t in 0..tasks {
            let queue = queue.clone();
            let names: Vec<String> = (0..self.batch).map(|s| format!("bench-{t}/{s}")).collect();
            running.push(tokio::spawn(async move {
                let mut done = 0usize;
                loop {
                    let jobs = queue
                        .claim_batch(&names, &[], Duration::from_secs(60))
                        .await?;
                    if jobs.is_empty() {
                        return Ok::<_, opsweave::Error>(done);
                    }
                    let held: Vec<(JobId, String)> = jobs
                        .into_iter()
                        .map(|j| (j.id, j.lease_owner.unwrap_or_default()))
                        .collect();
                    for result in queue.complete_batch(&held).await? {
                        result?;
                        done += 1;
                    }
                }
            }));
        }
        let mut done = 0;
        for task in running {
            done += task.await??;
        }
        Ok(done)
    }

    /// Runs [`Self::loop_count`] workers with `batch` slots each until every job is done.
    async fn worker_loops(&self) -> Result<usize, BoxError> {
        let done = Arc::new(AtomicUsize::new(0));
        let (all_done, stop) = tokio::sync::watch::channel(false);
        let all_done = Arc::new(all_done);
        let mut loops = Vec::new();
        let counted = Arc::new(Counted {
            inner: self.weave.jobs().ok_or("no queue")?.clone(),
            claims: AtomicUsize::new(0),
            claimed: AtomicUsize::new(0),
            completes: AtomicUsize::new(0),
        });
        let weave = self.weave.clone().with_jobs(counted.clone());
        for w in 0..self.loop_count() {
            let mut options = WorkerOptions::new(format!("bench-{w}"));
            options.concurrency = self.batch;
            options.idle_poll = Duration::from_millis(10);
            let worker = Worker::new(weave.clone(), options)?;
            let (done, all_done, jobs) = (done.clone(), all_done.clone(), self.jobs);
            let mut stop = stop.clone();
            loops.push(tokio::spawn(async move {
                worker
                    .run(
                        async move {
                            let _ = stop.wait_for(|all| *all).await;
                        },
                        move |_, outcome| {
                            if *outcome == opsweave::worker::JobOutcome::Done
                                && done.fetch_add(1, Ordering::SeqCst) + 1 == jobs
                            {
                                let _ = all_done.send(true);
                            }
                        },
                    )
                    .await
            }));
        }
        let mut finished = 0;
        for task in loops {
            finished += task.await??.done;
        }
        let calls = |n: &AtomicUsize| n.load(Ordering::SeqCst).max(1);
        println!(
            "  worker loops: {} claim calls ({:.1} jobs each), {} complete calls ({:.1} jobs each)",
            calls(&counted.claims),
            counted.claimed.load(Ordering::SeqCst) as f64 / calls(&counted.claims) as f64,
            calls(&counted.completes),
            finished as f64 / calls(&counted.completes) as f64,
        );
        Ok(usize::try_from(finished)?)
    }

    /// Worker loops (and batched-mode tasks): a quarter of `workers`.
    fn loop_count(&self) -> usize {
        (self.workers / 4).max(1)
    }
}

/// A queue that counts the batch calls made on it (to see how full the worker's batches are).
struct Counted {
    inner: Arc<dyn JobQueue>,
    claims: AtomicUsize,
    claimed: AtomicUsize,
    completes: AtomicUsize,
}

#[async_trait::async_trait]
impl JobQueue for Counted {
    async fn enqueue(&self, job: NewJob) -> opsweave::Result<opsweave::Job> {
        self.inner.enqueue(job).await
    }

    async fn claim(
        &self,
        worker: &str,
        kinds: &[String],
        lease: Duration,
    ) -> opsweave::Result<Option<opsweave::Job>> {
        self.inner.claim(worker, kinds, lease).await
    }

    async fn claim_batch(
        &self,
        workers: &[String],
        kinds: &[String],
        lease: Duration,
    ) -> opsweave::Result<Vec<opsweave::Job>> {
        let jobs = self.inner.claim_batch(workers, kinds, lease).await?;
        self.claims.fetch_add(1, Ordering::SeqCst);
        self.claimed.fetch_add(jobs.len(), Ordering::SeqCst);
        Ok(jobs)
    }

    async fn heartbeat(
        &self,
        id: JobId,
        worker: &str,
        lease: Duration,
        progress: Option<opsweave::Progress>,
    ) -> opsweave::Result<opsweave::Job> {
        self.inner.heartbeat(id, worker, lease, progress).await
    }

    async fn complete(&self, id: JobId, worker: &str) -> opsweave::Result<opsweave::Job> {
        self.inner.complete(id, worker).await
    }

    async fn complete_batch(
        &self,
        held: &[(JobId, String)],
    ) -> opsweave::Result<Vec<opsweave::Result<()>>> {
        self.completes.fetch_add(1, Ordering::SeqCst);
        self.inner.complete_batch(held).await
    }

    async fn record_failure(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry: bool,
    ) -> opsweave::Result<opsweave::Job> {
        self.inner.record_failure(id, worker, error, retry).await
    }

    async fn release(&self, id: JobId, worker: &str) -> opsweave::Result<opsweave::Job> {
        self.inner.release(id, worker).await
    }

    async fn cancel(&self, scope: &Scope, id: JobId) -> opsweave::Result<opsweave::Job> {
        self.inner.cancel(scope, id).await
    }

    async fn get(&self, scope: &Scope, id: JobId) -> opsweave::Result<opsweave::Job> {
        self.inner.get(scope, id).await
    }

    async fn list(
        &self,
        scope: &Scope,
        status: Option<opsweave::JobStatus>,
        limit: usize,
    ) -> opsweave::Result<Vec<opsweave::Job>> {
        self.inner.list(scope, status, limit).await
    }

    async fn count_open(
        &self,
        scope: &Scope,
        kinds: &[String],
    ) -> opsweave::Result<opsweave::OpenJobs> {
        self.inner.count_open(scope, kinds).await
    }
}

/// The `ingest.concurrency` values to measure: `OPSWEAVE_BENCH_CONCURRENCY` (comma-separated),
/// else 1 and 4.
fn ingest_concurrency() -> Result<Vec<usize>, BoxError> {
    match std::env::var("OPSWEAVE_BENCH_CONCURRENCY") {
        Ok(list) if !list.trim().is_empty() => Ok(list
            .split(',')
            .map(|n| n.trim().parse())
            .collect::<Result<_, _>>()?),
        _ => Ok(vec![1, 4]),
    }
}

/// Ingests the CSV twice into a fresh PostgreSQL database, `concurrency` batches at once.
async fn ingest(
    db: &str,
    csv: &std::path::Path,
    rows: usize,
    concurrency: usize,
    server: &Server,
) -> Result<(), BoxError> {
    let mut config = Config {
        db: db.to_string(),
        ..Config::default()
    };
    config.ingest.concurrency = concurrency;
    let weave = Weave::open_with(config).await?;
    let scope = weave.default_scope();
    let mapping = Mapping::from_toml(MAPPING)?;
    for pass in ["first ingest", "re-ingest (unchanged)"] {
        let cpu = process_cpu_seconds();
        let server_cpu = server.cpu();
        let load = load_average();
        let started = Instant::now();
        let report = weave.ingest_path(csv, &mapping, &scope, None).await?;
        let secs = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds().zip(cpu).map(|(a, b)| a - b);
        let server_cpu = server
            .cpu()
            .zip(server_cpu)
            .map(|(a, b)| (a.0 - b.0, a.1 - b.1));
        let per_row = |s: f64| s * 1e6 / rows as f64;
        println!(
            "PostgreSQL {pass}, {concurrency} batch(es) at once: {rows} rows in {secs:.2}s = {:.0} \
             rows/s at load {load} (inserted {}, unchanged {}, rejected {}); CPU: client {}, \
             server {}",
            rows as f64 / secs,
            report.inserted,
            report.unchanged,
            report.rejected_total,
            cpu.map_or("n/a".into(), |c| format!("{c:.2}s = {:.1} µs/row", per_row(c))),
            server_cpu.map_or("n/a".into(), |(all, backends)| format!(
                "{all:.2}s = {:.1} µs/row (this database's backends {backends:.2}s, other \
                 server processes {:.2}s)",
                per_row(all),
                all - backends
            )),
        );
    }
    Ok(())
}
