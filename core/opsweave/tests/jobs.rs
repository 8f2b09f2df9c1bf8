//! A handle opened from a URL carries the store's job queue.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave::jobs::{JobStatus, NewJob};
use opsweave::Scope;
use opsweave::Weave;
use std::time::Duration;

#[tokio::test]
async fn an_opened_weave_queues_and_runs_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let weave = Weave::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let jobs = weave.jobs().expect("a SQLite handle has a job queue");
    let scope = Scope::org("acme");
    let queued = jobs
        .enqueue(NewJob::new(
            "embed",
            scope.clone(),
            serde_json::json!({"batch": 1}),
        ))
        .await
        .unwrap();
    let claimed = jobs
        .claim("w1", &[], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, queued.id);
    jobs.complete(claimed.id, "w1").await.unwrap();
    let done = jobs.get(&scope, queued.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Done);
}

#[tokio::test]
async fn the_facade_queues_reads_cancels_and_runs_jobs_until_the_scope_is_idle() {
    use opsweave::worker::WorkerOptions;
    use opsweave::{ErrorKind, JobId};

    let dir = tempfile::tempdir().unwrap();
    let weave = Weave::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let acme = Scope::org("acme");
    let sleep = |ms: u64| NewJob::new("sleep", acme.clone(), serde_json::json!({ "ms": ms }));

    let first = weave
        .enqueue(sleep(30).with_idempotency_key("nightly"))
        .await
        .unwrap();
    let again = weave
        .enqueue(sleep(30).with_idempotency_key("nightly"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id, "the same key returns the first job");
    let err = weave
        .enqueue(sleep(31).with_idempotency_key("nightly"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(err.location().field.as_deref(), Some("idempotency_key"));
    let err = weave
        .enqueue(NewJob::new("", acme.clone(), serde_json::Value::Null))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let second = weave.enqueue(sleep(20)).await.unwrap();
    let doomed = weave.enqueue(sleep(10)).await.unwrap();
    let cancelled = weave.cancel_job(&acme, doomed.id).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let listed = weave
        .list_jobs(&acme, Some(JobStatus::Queued), 10)
        .await
        .unwrap();
    let ids: Vec<JobId> = listed.iter().map(|j| j.id).collect();
    assert_eq!(
        ids,
        vec![second.id, first.id],
        "newest first, cancelled left out"
    );
    assert_eq!(
        weave
            .job(&Scope::org("globex"), first.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "another org's job is not there"
    );
    assert_eq!(
        weave.list_jobs(&acme, None, 0).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let mut options = WorkerOptions::new("facade-test");
    options.idle_poll = Duration::from_millis(50);
    let report = weave.run_jobs(&acme, options, None).await.unwrap();
    assert_eq!((report.done, report.failed, report.lost), (2, 0, 0));
    for id in [first.id, second.id] {
        assert_eq!(weave.job(&acme, id).await.unwrap().status, JobStatus::Done);
    }
    assert_eq!(
        weave.job(&acme, doomed.id).await.unwrap().status,
        JobStatus::Cancelled
    );

    // Jobs of a kind only other workers run do not keep the run going, however many there are.
    let foreign = weave
        .enqueue(NewJob::new(
            "mail-merge",
            acme.clone(),
            serde_json::Value::Null,
        ))
        .await
        .unwrap();
    for n in 0..1_200 {
        let job = NewJob::new("mail-merge", acme.clone(), serde_json::json!(n));
        weave.enqueue(job).await.unwrap();
    }
    let extra = weave.enqueue(sleep(5)).await.unwrap();
    let mut options = WorkerOptions::new("facade-test-1");
    options.idle_poll = Duration::from_millis(50);
    let report = weave.run_jobs(&acme, options, None).await.unwrap();
    assert_eq!(report.done, 1);
    assert_eq!(
        weave.job(&acme, extra.id).await.unwrap().status,
        JobStatus::Done
    );
    assert_eq!(
        weave.job(&acme, foreign.id).await.unwrap().status,
        JobStatus::Queued
    );
    let kinds = ["mail-merge".to_string()];
    let open = weave.count_open_jobs(&acme, &kinds).await.unwrap();
    assert_eq!((open.queued, open.running), (1_201, 0));

    // A caller's stop: the job in hand finishes, the rest stay queued.
    let slow: Vec<_> = [
        weave.enqueue(sleep(300)).await.unwrap(),
        weave.enqueue(sleep(300)).await.unwrap(),
    ]
    .to_vec();
    let mut options = WorkerOptions::new("facade-test-stop");
    options.idle_poll = Duration::from_millis(50);
    options.concurrency = 1;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = rx.await;
    };
    let run = weave.run_jobs_until(&acme, options, None, stop, std::future::pending());
    let watcher = weave.clone();
    let first_id = slow[0].id;
    let stopper = async move {
        // Stop once the first job is in hand, however slowly the worker started.
        while watcher
            .job(&Scope::org("acme"), first_id)
            .await
            .unwrap()
            .status
            != JobStatus::Running
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.send(()).unwrap();
    };
    let (report, ()) = tokio::join!(run, stopper);
    assert_eq!(report.unwrap().done, 1, "the job in hand finished");
    assert_eq!(
        weave.job(&acme, slow[0].id).await.unwrap().status,
        JobStatus::Done
    );
    assert_eq!(
        weave.job(&acme, slow[1].id).await.unwrap().status,
        JobStatus::Queued,
        "nothing claimed after the stop"
    );
    weave.cancel_job(&acme, slow[1].id).await.unwrap();

    // Abandoned once in hand: the job stops at once and goes back to the queue.
    let long = weave.enqueue(sleep(60_000)).await.unwrap();
    let mut options = WorkerOptions::new("facade-test-abandon");
    options.idle_poll = Duration::from_millis(50);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (stop, abandon) = (rx.clone(), rx);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|now| *now).await;
    };
    let run = weave.run_jobs_until(&acme, options, None, wait(stop), wait(abandon));
    let watcher = weave.clone();
    let stopper = async move {
        while watcher
            .job(&Scope::org("acme"), long.id)
            .await
            .unwrap()
            .status
            != JobStatus::Running
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.send(true).unwrap();
    };
    let (report, ()) = tokio::join!(run, stopper);
    assert_eq!(report.unwrap().lost, 1, "handed back");
    let back = weave.job(&acme, long.id).await.unwrap();
    assert_eq!((back.status, back.attempts), (JobStatus::Queued, 0));
    weave.cancel_job(&acme, long.id).await.unwrap();

    // A job that never becomes runnable in time: the timeout ends the run.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let waiting = weave.enqueue(sleep(1).run_after(later)).await.unwrap();
    let mut options = WorkerOptions::new("facade-test-2");
    options.idle_poll = Duration::from_millis(50);
    let report = weave
        .run_jobs(&acme, options, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(report.done, 0);
    assert_eq!(
        weave.job(&acme, waiting.id).await.unwrap().status,
        JobStatus::Queued
    );
    weave.close().await;
}

/// An embed job's heartbeat lives as long as the job's run: a worker that drops the run (what
/// abandoning a job does) leaves the lease to run out, instead of a task renewing it for as
/// long as the process lives.
#[cfg(feature = "openai")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embed_jobs_heartbeat_stops_when_its_run_is_dropped() {
    use opsweave::{Config, Mapping, EMBED_JOB};

    // A server that takes connections and never answers: the embedding waits on its first
    // request (the client's timeout is a minute) while the heartbeat ticks every 5 s.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        db: format!("sqlite://{}", dir.path().join("t.db").display()),
        ..Config::default()
    };
    config.embed.openai_base_url = Some(format!("http://{addr}/v1"));
    let weave = Weave::open_with(config).await.unwrap();
    let scope = Scope::org("acme");
    let mapping = Mapping::from_toml(
        "name = \"notes\"\nsource = \"wiki\"\nentity = \"document\"\nid = \"/id\"\n\
         title = \"{/title}\"\nbody = \"{/text}\"\n",
    )
    .unwrap();
    let note = serde_json::json!({"id": "1", "title": "Acme renewal", "text": "Q3 discount"});
    weave
        .ingest_rows(vec![note], "notes", &mapping, &scope)
        .await
        .unwrap();
    let payload = serde_json::json!({"model": "openai:text-embedding-3-small"});
    let queued = weave
        .enqueue(NewJob::new(EMBED_JOB, scope.clone(), payload))
        .await
        .unwrap();
    let jobs = weave.jobs().unwrap().clone();
    let kinds = [EMBED_JOB.to_string()];
    let held = jobs
        .claim("w1", &kinds, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.id, queued.id);

    let run = {
        let (weave, job) = (weave.clone(), held.clone());
        tokio::spawn(async move { weave.run_embed_job(&job, "w1").await })
    };
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    let beaten = jobs.get(&scope, held.id).await.unwrap();
    assert!(!run.is_finished(), "the embedding waits on the server");
    assert!(
        beaten.lease_expires_at > held.lease_expires_at,
        "the heartbeat renewed the lease while the job ran: {beaten:?}"
    );

    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let dropped = jobs.get(&scope, held.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    let later = jobs.get(&scope, held.id).await.unwrap();
    assert_eq!(
        later.lease_expires_at, dropped.lease_expires_at,
        "no heartbeat after the run was dropped"
    );
    assert_eq!(later.updated_at, dropped.updated_at);
    server.abort();
    weave.close().await;
}
