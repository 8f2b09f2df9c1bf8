//! Two `opsweave worker` processes drain 10,000 jobs from one queue (PostgreSQL, then Redis);
//! one of them is killed (SIGKILL) halfway: its leases expire and the other finishes its jobs.
//! Every job ends done, and no job is reported done twice.
#![allow(clippy::unwrap_used)]

use opsweave::{Config, JobStatus, NewJob, Scope, Weave};
use sqlx::{Connection, Executor};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const JOBS: usize = 10_000;
const CONCURRENCY: usize = 8;

fn server(var: &str, test: &str) -> Option<String> {
    opsweave_testkit::server_url(var, test)
}

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}_{}_{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_drain_a_postgres_queue_and_survive_a_kill() {
    let test = "two_workers_drain_a_postgres_queue_and_survive_a_kill";
    let Some(server) = server("OPSWEAVE_TEST_POSTGRES_URL", test) else {
        return;
    };
    let name = unique("ow_drain");
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    let db = format!("{base}/{name}");
    drain(
        &["--db", &db],
        Config {
            db: db.clone(),
            ..Config::default()
        },
    )
    .await;
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_drain_a_redis_queue_and_survive_a_kill() {
    let test = "two_workers_drain_a_redis_queue_and_survive_a_kill";
    let Some(server) = server("OPSWEAVE_TEST_REDIS_URL", test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let queue = format!("{server}?prefix={}", unique("drain"));
    let config = Config {
        db: db.clone(),
        queue: Some(queue.clone()),
        ..Config::default()
    };
    drain(&["--db", &db, "--queue", &queue], config).await;
}

/// A worker process and the ids it reported done.
struct Worker {
    child: Child,
    done: Arc<Mutex<Vec<i64>>>,
    reader: std::thread::JoinHandle<()>,
}

fn start_worker(args: &[&str], name: &str) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(args)
        .args(["worker", "--name", name, "--kinds", "sleep", "--log-jobs"])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        // Long enough that a survivor slowed by a loaded machine keeps its own leases: only the
        // victim's jobs may run twice.
        .args(["--lease-secs", "4", "--poll-ms", "50"])
        .env_remove("OPSWEAVE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let done = Arc::new(Mutex::new(Vec::new()));
    let seen = done.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace();
            if words.next() == Some("done") {
                let id: i64 = words.next().unwrap().parse().unwrap();
                seen.lock().unwrap().push(id);
            }
        }
    });
    Worker {
        child,
        done,
        reader,
    }
}

async fn drain(args: &[&str], config: Config) {
    let weave = Weave::open_with(config).await.unwrap();
    let queue = weave.jobs().unwrap().clone();
    let scope = Scope::org(unique("drain"));
    // Enqueue from 16 tasks at once (the queue is the server's: order does not matter).
    let mut tasks = Vec::new();
    for part in 0..16 {
        let queue = queue.clone();
        let scope = scope.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (part..JOBS).step_by(16) {
                let job = NewJob::new("sleep", scope.clone(), serde_json::json!({"ms": 1, "n": n}));
                ids.push(queue.enqueue(job).await.unwrap().id.0);
            }
            ids
        }));
    }
    let mut enqueued = Vec::new();
    for task in tasks {
        enqueued.extend(task.await.unwrap());
    }
    assert_eq!(enqueued.len(), JOBS);

    let started = Instant::now();
    let mut victim = start_worker(args, "victim");
    let survivor = start_worker(args, "survivor");
    // Kill one worker, without warning, once half the jobs are done.
    loop {
        let done = victim.done.lock().unwrap().len() + survivor.done.lock().unwrap().len();
        if done >= JOBS / 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "half the jobs not done in 300 s ({done} done)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.child.kill().unwrap(); // SIGKILL
    victim.child.wait().unwrap();
    let killed_at = victim.done.lock().unwrap().len();
    // The survivor finishes everything, the victim's leased jobs included once their leases expire.
    loop {
        let done = queue
            .list(&scope, Some(JobStatus::Done), JOBS + 1)
            .await
            .unwrap()
            .len();
        if done == JOBS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {done} of {JOBS} jobs done after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    // SIGTERM: the survivor stops claiming, finishes what it holds and exits cleanly.
    let mut survivor = survivor;
    let term = Command::new("kill")
        .args(["-TERM", &survivor.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = survivor.child.wait().unwrap();
    assert!(
        status.success(),
        "the survivor stops cleanly on SIGTERM: {status}"
    );
    victim.reader.join().unwrap();
    survivor.reader.join().unwrap();

    let victim_done = victim.done.lock().unwrap().clone();
    let survivor_done = survivor.done.lock().unwrap().clone();
    eprintln!(
        "drained {JOBS} jobs in {:.1} s: victim {} (killed at {killed_at}), survivor {}",
        elapsed.as_secs_f64(),
        victim_done.len(),
        survivor_done.len()
    );
    assert!(!victim_done.is_empty() && survivor_done.len() >= JOBS / 4);
    let mut reports: HashMap<i64, usize> = HashMap::new();
    for id in victim_done.iter().chain(&survivor_done) {
        *reports.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = reports.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs reported done twice: {twice:?}");
    let jobs = queue.list(&scope, None, JOBS + 1).await.unwrap();
    assert_eq!(jobs.len(), JOBS);
    assert!(jobs.iter().all(|j| j.status == JobStatus::Done));
    // A job done but unreported can only be one the victim completed as it was killed.
    let unreported = jobs
        .iter()
        .filter(|j| !reports.contains_key(&j.id.0))
        .count();
    assert!(
        unreported <= CONCURRENCY,
        "{unreported} done jobs unreported"
    );
    // Jobs run twice are those the victim held when it died: at most one per slot.
    let retried: Vec<_> = jobs.iter().filter(|j| j.attempts > 1).collect();
    assert!(
        retried.len() <= CONCURRENCY,
        "{} jobs ran twice",
        retried.len()
    );
    assert!(retried.iter().all(|j| j.attempts == 2));
    eprintln!(
        "{} jobs the victim held ran again on the survivor",
        retried.len()
    );
    for job in &retried {
        assert!(
            survivor_done.contains(&job.id.0),
            "job {} was the victim's and the survivor finished it",
            job.id
        );
    }
}
