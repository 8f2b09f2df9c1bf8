//! The Redis adapter against a real `redis-server` (started by
//! `adapters/opsweave-redis/redis-test-server.sh`; scripts/test.sh does it).
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use opsweave_core::jobs::JobQueue;
use opsweave_core::{
    Cache, ErrorKind, JobId, JobStatus, NewJob, Progress, RateLimit, RateLimiter, Scope,
};
use opsweave_redis::{Redis, RedisQueue};
use opsweave_testkit::{run_cache_conformance, run_queue_conformance, run_rate_limit_conformance};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The server URL, or `None` (after saying so, loudly) when tests may skip it.
fn server_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_REDIS_URL", test)
}

/// A key prefix no other test run uses, so tests share one server without flushing it.
fn fresh_prefix(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t:{test}:{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A queue handle on the server at `url`, under `prefix`.
async fn queue_on(url: &str, prefix: &str) -> RedisQueue {
    Redis::connect(url)
        .await
        .unwrap()
        .with_prefix(prefix)
        .unwrap()
        .queue()
}

async fn redis(url: &str, test: &str) -> Redis {
    Redis::connect(url)
        .await
        .unwrap()
        .with_prefix(&fresh_prefix(test))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_queue_conformance_suite() {
    let Some(url) = server_url("redis_passes_the_queue_conformance_suite") else {
        return;
    };
    run_queue_conformance(|| {
        let url = url.clone();
        async move { Arc::new(redis(&url, "queue").await.queue()) as Arc<dyn JobQueue> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_cache_suite() {
    let Some(url) = server_url("redis_passes_the_cache_suite") else {
        return;
    };
    let cache = Arc::new(redis(&url, "cache").await.cache());
    run_cache_conformance(cache as Arc<dyn Cache>, tokio::time::sleep).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_rate_limit_suite() {
    let Some(url) = server_url("redis_passes_the_rate_limit_suite") else {
        return;
    };
    let limiter = Arc::new(redis(&url, "rate").await.rate_limiter());
    run_rate_limit_conformance(limiter as Arc<dyn RateLimiter>, "api:acme").await;
}

/// Two handles on one server (two processes, in effect) share the limit.
#[tokio::test]
async fn rate_limits_are_shared_between_handles() {
    let Some(url) = server_url("rate_limits_are_shared_between_handles") else {
        return;
    };
    let prefix = fresh_prefix("shared");
    let a = Redis::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix)
        .unwrap();
    let b = Redis::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix)
        .unwrap();
    let limit = RateLimit::for_writes(2, Duration::from_secs(3600), 2);
    assert!(
        a.rate_limiter()
            .check("k", &limit, 1)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        b.rate_limiter()
            .check("k", &limit, 1)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !a.rate_limiter()
            .check("k", &limit, 1)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !b.rate_limiter()
            .check("k", &limit, 1)
            .await
            .unwrap()
            .allowed
    );
}

/// Every change of a job reaches a subscriber on another connection, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_progress_fans_out_to_subscribers() {
    let Some(url) = server_url("job_progress_fans_out_to_subscribers") else {
        return;
    };
    let prefix = fresh_prefix("events");
    let queue = queue_on(&url, &prefix).await;
    let watcher = queue_on(&url, &prefix).await;
    let mut updates = watcher.subscribe().await.unwrap();
    let scope = Scope::org("acme");
    let job = queue
        .enqueue(NewJob::new(
            "embed",
            scope.clone(),
            serde_json::json!({"n": 1}),
        ))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    queue.claim("w1", &[], lease).await.unwrap().unwrap();
    queue
        .heartbeat(job.id, "w1", lease, Some(Progress::new(0.5, "half way")))
        .await
        .unwrap();
    queue.complete(job.id, "w1").await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.next())
            .await
            .expect("an update within 10 s")
            .expect("the stream stays open");
        assert_eq!((update.id, &update.scope), (job.id, &scope));
        seen.push((update.status, update.progress, update.message));
    }
    assert_eq!(
        seen,
        vec![
            (JobStatus::Running, 0.0, None),
            (JobStatus::Running, 0.5, Some("half way".to_string())),
            (JobStatus::Done, 1.0, Some("half way".to_string())),
        ]
    );
}

/// A batch claim and a batch complete publish their jobs' updates as one message each; a
/// subscriber still sees one update per job, in order, with what a single claim would show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_changes_reach_subscribers_one_update_per_job() {
    let Some(url) = server_url("batched_changes_reach_subscribers_one_update_per_job") else {
        return;
    };
    let prefix = fresh_prefix("batch-events");
    let queue = queue_on(&url, &prefix).await;
    let watcher = queue_on(&url, &prefix).await;
    let mut updates = watcher.subscribe().await.unwrap();
    let scope = Scope::org("acme").with_client("globex");
    let mut ids = Vec::new();
    for n in 0..3 {
        let job = NewJob::new("embed", scope.clone(), serde_json::json!({"n": n}));
        ids.push(queue.enqueue(job).await.unwrap().id);
    }
    let workers: Vec<String> = ["w1", "w2", "w3"].map(String::from).to_vec();
    let claimed = queue
        .claim_batch(&workers, &[], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    for (job, worker) in claimed.iter().zip(&workers) {
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.lease_owner.as_deref(), Some(worker.as_str()));
        assert_eq!(job.attempts, 1);
        assert!(job.lease_expires_at.is_some());
    }
    let held: Vec<(JobId, String)> = ids.iter().copied().zip(workers.clone()).collect();
    let done = queue.complete_batch(&held).await.unwrap();
    assert!(done.iter().all(Result::is_ok), "{done:?}");
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.next())
            .await
            .expect("an update within 10 s")
            .expect("the stream stays open");
        assert_eq!((&update.scope, update.kind.as_str()), (&scope, "embed"));
        seen.push((update.id, update.status, update.progress, update.attempts));
    }
    let expected: Vec<_> = ids
        .iter()
        .map(|&id| (id, JobStatus::Running, 0.0, 1))
        .chain(ids.iter().map(|&id| (id, JobStatus::Done, 1.0, 1)))
        .collect();
    assert_eq!(seen, expected);
}

/// XPENDING's summary: count, lowest and highest id, pending entries per consumer.
type Pending = (i64, Option<String>, Option<String>, Vec<(String, String)>);

/// The queue really uses a consumer group: a claimed job is pending for its worker, and
/// completing acknowledges it.
#[tokio::test]
async fn claims_show_in_the_consumer_group() {
    let Some(url) = server_url("claims_show_in_the_consumer_group") else {
        return;
    };
    let prefix = fresh_prefix("group");
    let queue = queue_on(&url, &prefix).await;
    let job = queue
        .enqueue(NewJob::new(
            "embed",
            Scope::org("acme"),
            serde_json::json!(1),
        ))
        .await
        .unwrap();
    queue
        .claim("w1", &[], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{{{prefix}}}:stream:embed");
    let pending: Pending = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.0, 1, "one entry pending");
    assert_eq!(pending.3, vec![("w1".to_string(), "1".to_string())]);
    queue.complete(job.id, "w1").await.unwrap();
    let pending: Pending = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending.0, 0, "completing acknowledges the entry");
}

#[tokio::test]
async fn a_payload_damaged_outside_opsweave_fails_its_job_not_every_claim() {
    let Some(url) = server_url("a_payload_damaged_outside_opsweave_fails_its_job_not_every_claim")
    else {
        return;
    };
    let prefix = fresh_prefix("damaged");
    let queue = queue_on(&url, &prefix).await;
    let job = queue
        .enqueue(NewJob::new(
            "sleep",
            Scope::org("acme"),
            serde_json::json!({"ms": 1}),
        ))
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{{{prefix}}}:job:{}", job.id.0))
        .arg("payload")
        .arg("{\"ms\": 1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let claimed = queue
        .claim("w1", &[], Duration::from_secs(30))
        .await
        .expect("a claim despite the damaged payload")
        .expect("the job");
    assert_eq!(claimed.id, job.id);
    assert_eq!(
        claimed.payload,
        serde_json::json!("{\"ms\": 1"),
        "the text kept"
    );
}

/// Jobs enqueued before the open-jobs index existed (no `open:ORG` set, no `org` field in their
/// hash) are counted and listed once the index is built from the org's history, and leave it
/// when they finish.
#[tokio::test]
async fn open_jobs_from_before_the_open_index_are_found() {
    let Some(url) = server_url("open_jobs_from_before_the_open_index_are_found") else {
        return;
    };
    let prefix = fresh_prefix("open-index");
    let queue = queue_on(&url, &prefix).await;
    let acme = Scope::org("acme");
    let mut ids = Vec::new();
    for n in 0..1_200 {
        let job = NewJob::new("noop", acme.clone(), serde_json::json!({ "n": n }));
        ids.push(queue.enqueue(job).await.unwrap().id);
    }
    let done = queue
        .claim("w1", &[], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    queue.complete(done.id, "w1").await.unwrap();
    let running = queue
        .claim("w1", &[], Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();

    // Back to the layout of earlier versions.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{{{prefix}}}:open:acme"))
        .arg(format!("{{{prefix}}}:open-mark:acme"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in &ids {
        let _: () = redis::cmd("HDEL")
            .arg(format!("{{{prefix}}}:job:{}", id.0))
            .arg("org")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // A fresh handle, as a process of the new version would start.
    let queue = queue_on(&url, &prefix).await;
    let open = queue.count_open(&acme, &[]).await.unwrap();
    assert_eq!((open.queued, open.running), (1_198, 1));
    let listed = queue
        .list(&acme, Some(JobStatus::Running), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, running.id);

    // Finishing a job whose hash has no `org` takes it out of the index.
    queue.complete(running.id, "w1").await.unwrap();
    queue.cancel(&acme, ids[500]).await.unwrap();
    let open = queue.count_open(&acme, &[]).await.unwrap();
    assert_eq!((open.queued, open.running), (1_197, 0));
    let members: i64 = redis::cmd("ZCARD")
        .arg(format!("{{{prefix}}}:open:acme"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, 1_197, "finished jobs left the index");

    // A process of the earlier version still running: its enqueue (a hash and the history, no
    // index) is found by the next look; its finish (the status only) leaves the index then.
    let template: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(format!("{{{prefix}}}:job:{}", ids[0].0))
        .query_async(&mut conn)
        .await
        .unwrap();
    let old_id: i64 = redis::cmd("INCR")
        .arg(format!("{{{prefix}}}:next_id"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut hset = redis::cmd("HSET");
    hset.arg(format!("{{{prefix}}}:job:{old_id}"));
    for (field, value) in &template {
        let value = match field.as_str() {
            "id" => old_id.to_string(),
            "status" => "queued".to_string(),
            _ => value.clone(),
        };
        hset.arg(field).arg(value);
    }
    let _: () = hset.query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("ZADD")
        .arg(format!("{{{prefix}}}:org:acme"))
        .arg(old_id)
        .arg(old_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{{{prefix}}}:job:{}", ids[600].0))
        .arg("status")
        .arg("done")
        .query_async(&mut conn)
        .await
        .unwrap();
    let open = queue.count_open(&acme, &[]).await.unwrap();
    assert_eq!((open.queued, open.running), (1_197, 0), "one in, one out");
    let listed = queue.list(&acme, Some(JobStatus::Queued), 1).await.unwrap();
    assert_eq!(
        listed[0].id.0, old_id,
        "the newest queued job is the old process's"
    );
    let members: i64 = redis::cmd("ZCARD")
        .arg(format!("{{{prefix}}}:open:acme"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        members, 1_197,
        "the old process's finished job left the index"
    );
    // A new enqueue keeps the index caught up: the next look reads no history.
    let fresh = queue
        .enqueue(NewJob::new("noop", acme.clone(), serde_json::json!(null)))
        .await
        .unwrap();
    let mark: i64 = redis::cmd("GET")
        .arg(format!("{{{prefix}}}:open-mark:acme"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(mark, fresh.id.0);
}

/// Redis unreachable: cache reads are misses and writes are dropped (the caller goes to the
/// store), invalidation reports `Unavailable`, read limits fail open and write limits closed.
#[tokio::test]
async fn an_unreachable_redis_degrades_as_configured() {
    // Port 1 on loopback refuses connections; the handle is lazy, so it opens anyway.
    let down = Redis::lazy("redis://127.0.0.1:1/").unwrap();
    let cache = down.cache();
    assert_eq!(cache.get("focus:acme").await.unwrap(), None);
    cache
        .set("focus:acme", b"x", Duration::from_secs(60), &[])
        .await
        .unwrap();
    let err = cache.invalidate_tag("scope:acme").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let limiter = down.rate_limiter();
    let read = limiter
        .check("k", &RateLimit::for_reads(1, Duration::from_secs(1), 1), 1)
        .await
        .unwrap();
    assert!(read.allowed && read.unmetered, "{read:?}");
    let err = limiter
        .check("k", &RateLimit::for_writes(1, Duration::from_secs(1), 1), 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let err = down
        .queue()
        .claim("w1", &[], Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let err = Redis::connect("redis://127.0.0.1:1/").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

/// A server that goes away while in use: the same degradation, and the handle recovers once a
/// server is back on the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_degrades_then_recovers() {
    if server_url("a_lost_server_degrades_then_recovers").is_none() {
        return;
    }
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let start = || {
        tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH (see redis-test-server.sh)")
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let mut server = start();
    let redis = connect_within(&url, Duration::from_secs(10)).await;
    let cache = redis.cache();
    let limit = RateLimit::for_writes(100, Duration::from_secs(1), 10);
    cache
        .set("k", b"v", Duration::from_secs(60), &[])
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    server.kill().await.unwrap();
    assert_eq!(
        cache.get("k").await.unwrap(),
        None,
        "a lost server is a miss"
    );
    let err = redis
        .rate_limiter()
        .check("w", &limit, 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let _server = start();
    let mut recovered = false;
    for _ in 0..100 {
        if redis.rate_limiter().check("w", &limit, 1).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the handle reconnects to a server back on its address"
    );
    cache
        .set("k", b"v2", Duration::from_secs(60), &[])
        .await
        .unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
}

async fn connect_within(url: &str, wait: Duration) -> Redis {
    let started = std::time::Instant::now();
    loop {
        match Redis::connect(url).await {
            Ok(redis) => return redis,
            Err(e) if started.elapsed() < wait => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("redis-server did not start on {url}: {e}"),
        }
    }
}
