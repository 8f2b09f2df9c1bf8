//! What the server reuses between requests must never outlive a change: focus answers (every
//! write to tasks, by this server or by another process on the same store), verified keys
//! (revocation here at once, elsewhere within `server.key_cache_secs`), and rate limits shared
//! on Redis, with what they do while Redis is down.

use super::*;
use opsweave::{Mapping, RecordId, WhenUnavailable};
use std::time::Duration;

/// Synthetic tasks like the benchmarks' (benches/bindings/tasks-mapping.toml).
const TASKS_MAPPING: &str = r#"
name = "cache-tasks"
source = "tracker"
entity = "task"
id = "id"
title = "{title}"
updated_at = "updated"
[fields.title]
from = "title"
required = true
[fields.due]
from = "due"
type = "date"
[fields.priority]
from = "priority"
[fields.updated]
from = "updated"
type = "datetime"
[task]
due = "due"
labels = ["priority"]
[task.status]
from = "status"
map = { "open" = "todo", "closed" = "done" }
"#;

/// A task row due long ago: overdue is in today's horizon whatever the date the test runs on.
fn row(id: &str, priority: &str) -> Value {
    json!({
        "id": id,
        "title": format!("task {id}"),
        "due": "2026-01-10",
        "priority": priority,
        "status": "open",
        "updated": "2026-01-05T09:00:00Z",
    })
}

/// Another process on the server's store: a handle with its own connections.
async fn other_process(s: &Server) -> Weave {
    Weave::open_with(s.state.weave.config().clone())
        .await
        .unwrap()
}

/// The titles `GET /api/tasks` lists for `query`.
async fn titles(s: &Server, query: &str) -> Vec<String> {
    let (status, _, body) = s
        .call("GET", &format!("/api/tasks?{query}"), Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|id| format!("task {id}")).collect()
}

#[tokio::test]
async fn focus_answers_follow_every_write_here_and_in_other_processes() {
    let s = Server::start(|_| {}).await;
    let other = other_process(&s).await;
    let acme = Scope::org("acme");
    let mapping = Mapping::from_toml(TASKS_MAPPING).unwrap();
    let id = |external: &str| RecordId::derive(&acme, "tracker", external);
    let report = other
        .ingest_rows(
            vec![row("A", "P0"), row("B", "P1"), row("C", "P3")],
            "rows",
            &mapping,
            &acme,
        )
        .await
        .unwrap();
    assert_eq!(report.inserted, 3);
    let now = "horizon=today&limit=5";
    let at = "horizon=today&limit=5&now=2026-11-23";
    assert_eq!(titles(&s, now).await, names(&["A", "B", "C"]));
    assert_eq!(titles(&s, at).await, names(&["A", "B", "C"]));
    let before = s.state.weave.focus_cache_stats().unwrap();
    assert_eq!(titles(&s, now).await, names(&["A", "B", "C"]));
    assert_eq!(titles(&s, at).await, names(&["A", "B", "C"]));
    let after = s.state.weave.focus_cache_stats().unwrap();
    assert_eq!(
        after.hits,
        before.hits + 2,
        "repeated questions are answered from the cache"
    );

    // Writes through this server.
    let complete = format!("/api/tasks/{}/complete", id("A"));
    let (status, _, body) = s.call("POST", &complete, Some(&s.acme), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(titles(&s, now).await, names(&["B", "C"]));
    assert_eq!(titles(&s, at).await, names(&["B", "C"]));
    let undo = format!("/api/tasks/{}/undo", id("A"));
    let (status, _, body) = s.call("POST", &undo, Some(&s.acme), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(titles(&s, now).await, names(&["A", "B", "C"]));
    assert_eq!(titles(&s, at).await, names(&["A", "B", "C"]));

    // Writes by another process on the same store: complete, undo, mark, ingest, delete.
    other.complete(&acme, id("B"), "other").await.unwrap();
    assert_eq!(titles(&s, now).await, names(&["A", "C"]));
    assert_eq!(titles(&s, at).await, names(&["A", "C"]));
    other.undo(&acme, id("B"), "other").await.unwrap();
    assert_eq!(titles(&s, now).await, names(&["A", "B", "C"]));
    other.mark(&acme, id("C"), 1000.0, false).await.unwrap();
    assert_eq!(titles(&s, now).await, names(&["C", "A", "B"]));
    assert_eq!(titles(&s, at).await, names(&["C", "A", "B"]));
    let mut closed = row("A", "P0");
    closed["status"] = json!("closed");
    other
        .ingest_rows(vec![closed, row("D", "P2")], "rows", &mapping, &acme)
        .await
        .unwrap();
    assert_eq!(titles(&s, now).await, names(&["C", "B", "D"]));
    assert_eq!(titles(&s, at).await, names(&["C", "B", "D"]));
    let gone = other
        .store()
        .delete_records(&acme, &[id("C")])
        .await
        .unwrap();
    assert_eq!(gone, 1);
    assert_eq!(titles(&s, now).await, names(&["B", "D"]));
    assert_eq!(titles(&s, at).await, names(&["B", "D"]));

    // Another org's writes are not this org's, and its answers are its own.
    let initech = Scope::org("initech");
    other
        .ingest_rows(vec![row("Z", "P0")], "rows", &mapping, &initech)
        .await
        .unwrap();
    assert_eq!(titles(&s, now).await, names(&["B", "D"]));
    let (_, _, body) = s
        .call(
            "GET",
            "/api/tasks?horizon=today&limit=5",
            Some(&s.initech),
            None,
        )
        .await;
    assert_eq!(body["tasks"][0]["title"], "task Z", "{body}");
}

#[tokio::test]
async fn revoked_keys_are_refused_here_at_once_and_elsewhere_within_the_ttl() {
    let s = Server::start(|c| c.server.key_cache_secs = 1).await;
    let tasks = "/api/tasks?horizon=today";
    let make = || async {
        let (status, _, body) = s
            .call(
                "POST",
                "/api/keys",
                Some(&s.acme),
                Some(json!({ "name": "reader", "role": "viewer" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["secret"].as_str().unwrap().to_string(),
            body["key"]["id"].as_i64().unwrap(),
        )
    };

    // Revoked through this server: refused on the very next request, though it was just verified.
    let (secret, id) = make().await;
    for _ in 0..2 {
        let (status, _, body) = s.call("GET", tasks, Some(&secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let revoke = format!("/api/keys/{id}/revoke");
    let (status, _, body) = s.call("POST", &revoke, Some(&s.acme), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = s.call("GET", tasks, Some(&secret), None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // Revoked by another process: refused once the cache's second has passed.
    let (secret, id) = make().await;
    let (status, _, body) = s.call("GET", tasks, Some(&secret), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other = other_process(&s).await;
    other.revoke_key("acme", opsweave::KeyId(id)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, headers, body) = s.call("GET", tasks, Some(&secret), None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

/// `OPSWEAVE_TEST_REDIS_URL`, or `None` (and a loud skip) when it is not set; a panic when
/// `OPSWEAVE_REQUIRE_SERVERS` says servers must be there.
fn redis_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_REDIS_URL", test)
}

/// A key prefix no other test run shares.
fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// Requests `GET /api/jobs` until one is refused; how many were allowed.
async fn allowed_before_429(s: &Server, key: &str) -> usize {
    for allowed in 0..100 {
        let (status, _, body) = s.call("GET", "/api/jobs", Some(key), None).await;
        match status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => return allowed,
            other => panic!("{other}: {body}"),
        }
    }
    panic!("no request refused in 100")
}

#[tokio::test]
async fn rate_limits_are_shared_by_every_server_on_one_redis() {
    let Some(url) = redis_url("rate_limits_are_shared_by_every_server_on_one_redis") else {
        return;
    };
    let redis = format!("{url}?prefix={}", prefix("shared-limits"));
    let a = Server::start(|c| {
        c.redis = Some(redis.clone());
        c.server.rate_limit_per_minute = 10;
    })
    .await;
    // A second server process on the same store and the same Redis.
    let b = Server {
        state: AppState::new(other_process(&a).await).unwrap(),
        _dir: tempfile::tempdir().unwrap(),
        acme: a.acme.clone(),
        initech: a.initech.clone(),
    };
    assert!(a.state.weave.rate_limiter().is_some());
    // The burst (10) is spent on server a; server b refuses the same key at once.
    let spent = allowed_before_429(&a, &a.acme).await;
    assert!((10..=11).contains(&spent), "{spent}");
    let (status, headers, body) = b.call("GET", "/api/jobs", Some(&b.acme), None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    let (status, _, body) = b.call("GET", "/api/jobs", Some(&b.initech), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "other keys have their own budget: {body}"
    );
}

/// A `redis-server` of one test, stopped (killed) when dropped, a failed test included.
struct OwnRedis(std::process::Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_reads_open_and_writes_closed_as_configured() {
    let test = "a_redis_outage_fails_reads_open_and_writes_closed_as_configured";
    if redis_url(test).is_none() {
        return;
    }
    // A Redis of this test's own, to stop and start.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = || {
        OwnRedis(
            std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server on PATH (see redis-test-server.sh)"),
        )
    };
    let redis = start();
    let url = format!("redis://127.0.0.1:{port}/");
    let s = Server::start(|c| {
        c.redis = Some(url.clone());
        c.server.rate_limit_per_minute = 10;
    })
    .await;
    let missing = format!("/api/tasks/{}/complete", RecordId::from_raw(1));
    // Metered while Redis is up (waiting for it to accept connections first).
    let mut up = false;
    for _ in 0..100 {
        let (status, _, _) = s.call("GET", "/api/jobs", Some(&s.initech), None).await;
        if status == StatusCode::OK {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the test's Redis did not come up");
    let (status, _, body) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "store and cache answer: {body}");
    let spent = allowed_before_429(&s, &s.acme).await;
    assert!((10..=11).contains(&spent), "{spent}");

    drop(redis);
    // Down: not ready, naming the cache (its reads quietly fall back to misses).
    let (status, headers, body) = s.call("GET", "/readyz", None, None).await;
    assert_not_ready(status, &headers, &body, "redis cache");
    // Down, defaults: reads are served (unmetered: past the spent budget), writes refused.
    for _ in 0..3 {
        let (status, _, body) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
        assert_eq!(status, StatusCode::OK, "reads fail open: {body}");
    }
    let (status, headers, body) = s.call("POST", &missing, Some(&s.acme), None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );

    // Down, the other way round by configuration.
    let mut config = s.state.weave.config().clone();
    config.server.rate_limit_reads_when_unavailable = WhenUnavailable::Closed;
    config.server.rate_limit_writes_when_unavailable = WhenUnavailable::Open;
    let flipped = Server {
        state: AppState::new(Weave::open_with(config).await.unwrap()).unwrap(),
        _dir: tempfile::tempdir().unwrap(),
        acme: s.acme.clone(),
        initech: s.initech.clone(),
    };
    let (status, headers, body) = flipped
        .call("GET", "/api/jobs", Some(&flipped.acme), None)
        .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    let (status, headers, body) = flipped
        .call("POST", &missing, Some(&flipped.acme), None)
        .await;
    // Let through unmetered: the handler answers (no such task), not the limiter.
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");

    // Back up (a fresh server: its budgets start full): metered again, refused past the burst.
    let _redis = start();
    let mut metered = false;
    for _ in 0..100 {
        let (status, _, _) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            metered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metered, "limits are metered again once Redis is back");
    let (status, _, body) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "ready again once Redis is back: {body}"
    );
}
