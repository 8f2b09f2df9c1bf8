//! `opsweave worker` on the embedded queue: an ingest job and a match job leave their reports
//! as the job's message (as the server's own workers do), and a second SIGTERM stops a worker
//! whose job would run for a minute without waiting for it.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use opsweave::worker::{InlineIngest, INGEST_JOB, MATCH_JOB};
use opsweave::{Job, JobStatus, NewJob, Scope, Weave};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn worker(db: &str, kinds: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(["--db", db, "worker", "--kinds", kinds, "--poll-ms", "50"])
        .env_remove("OPSWEAVE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to two minutes) until job `id` satisfies `done`.
async fn wait_for(
    weave: &Weave,
    scope: &Scope,
    id: opsweave::JobId,
    done: impl Fn(&Job) -> bool,
) -> Job {
    let queue = weave.jobs().unwrap();
    let started = Instant::now();
    loop {
        let job = queue.get(scope, id).await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job stuck: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_keeps_each_jobs_report_as_its_message() {
    let (_dir, db, weave) = common::embedded("jobs.db").await;
    let scope = Scope::org("acme");
    let queue = weave.jobs().unwrap().clone();
    let upload = |file: &str, preset: &str, format| {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/data")
                .join(file),
        )
        .unwrap();
        let upload = InlineIngest {
            mapping: opsweave::preset(preset).unwrap(),
            name: file.into(),
            rows: None,
            content_b64: Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            format: Some(format),
        };
        NewJob::new(
            INGEST_JOB,
            scope.clone(),
            serde_json::to_value(&upload).unwrap(),
        )
    };
    let ingest = queue
        .enqueue(upload(
            "odoo-crm-lead-bad-rows.csv",
            "odoo-crm-lead",
            opsweave::Format::Csv,
        ))
        .await
        .unwrap();
    let issues = queue
        .enqueue(upload(
            "jira-search.json",
            "jira-issue",
            opsweave::Format::Json,
        ))
        .await
        .unwrap();
    let mut child = worker(&db, "ingest,match");
    let ingested = wait_for(&weave, &scope, ingest.id, |j| j.status.is_final()).await;
    let issues = wait_for(&weave, &scope, issues.id, |j| j.status.is_final()).await;
    assert_eq!(issues.status, JobStatus::Done, "{issues:?}");
    // Queued once there is something to match.
    let matching = queue
        .enqueue(NewJob::new(
            MATCH_JOB,
            scope.clone(),
            serde_json::json!({"preset": "task-dedupe"}),
        ))
        .await
        .unwrap();
    let matched = wait_for(&weave, &scope, matching.id, |j| j.status.is_final()).await;
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());

    assert_eq!(ingested.status, JobStatus::Done, "{ingested:?}");
    assert_eq!(ingested.progress, 1.0);
    let report: serde_json::Value =
        serde_json::from_str(ingested.message.as_deref().unwrap()).unwrap();
    assert!(report["inserted"].as_u64().unwrap() > 0, "{report}");
    assert!(report["rejected"].as_u64().unwrap() > 0, "{report}");
    let first = &report["rejections"][0];
    assert!(
        first["line"].as_u64().unwrap() > 1 && first["reason"].is_string(),
        "{report}"
    );

    assert_eq!(matched.status, JobStatus::Done, "{matched:?}");
    let report: serde_json::Value =
        serde_json::from_str(matched.message.as_deref().unwrap()).unwrap();
    assert!(report.is_object(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_a_worker_without_waiting_for_its_job() {
    let (_dir, db, weave) = common::embedded("jobs.db").await;
    let scope = Scope::org("acme");
    let queue = weave.jobs().unwrap().clone();
    let long = queue
        .enqueue(NewJob::new(
            "sleep",
            scope.clone(),
            serde_json::json!({"ms": 60_000}),
        ))
        .await
        .unwrap();
    let mut child = worker(&db, "sleep");
    wait_for(&weave, &scope, long.id, |j| j.status == JobStatus::Running).await;
    signal(&child, "TERM");
    // The first signal is heard (the worker says so) but the job goes on.
    let mut stderr = child.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&said).contains("again to stop now") {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&said)
        );
        said.push(byte[0]);
    }
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    stderr.read_to_end(&mut said).unwrap();
    let said = String::from_utf8_lossy(&said);
    assert!(status.success(), "{said}");
    assert!(said.contains("1 lost or handed back"), "{said}");
    // Handed back, its attempt not counted: the next worker runs it from the start.
    let job = queue.get(&scope, long.id).await.unwrap();
    assert_eq!(
        (job.status, job.attempts),
        (JobStatus::Queued, 0),
        "{job:?}"
    );
    assert!(job.lease_owner.is_none(), "{job:?}");
}
