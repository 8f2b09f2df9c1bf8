//! What the API must refuse or survive whatever a caller sends: jobs that would make a worker
//! open server-side paths, absurd usage counts, keys reaching outside their client, and errors
//! that are not problems.

use super::*;
use base64::Engine as _;
use futures::StreamExt as _;

/// A jira-issue mapping as the JSON object an inline ingest payload carries.
fn jira_mapping() -> Value {
    serde_json::to_value(opsweave::preset("jira-issue").unwrap()).unwrap()
}

#[tokio::test]
async fn jobs_queued_over_http_never_name_server_paths() {
    let s = Server::start(|_| {}).await;
    let member = s.key(&s.acme, "member").await;
    let issues: Value = serde_json::from_str::<Value>(JIRA).unwrap()["issues"].clone();
    let refused = [
        (
            json!({"kind": "ingest", "payload": {"file": "/etc/passwd", "preset": "odoo-crm-lead"}}),
            "payload.file",
        ),
        (
            json!({"kind": "ingest", "payload": {"mapping": "/etc/passwd", "rows": issues}}),
            "payload.mapping",
        ),
        (
            json!({"kind": "ingest", "payload": {"preset": "jira-issue", "rows": issues}}),
            "payload.preset",
        ),
        (
            json!({"kind": "ingest", "payload": "/etc/passwd"}),
            "payload",
        ),
        (
            json!({"kind": "ingest", "payload": {"mapping": jira_mapping()}}),
            "payload.rows",
        ),
        (
            json!({"kind": "embed", "payload": {"model": "onnx:/etc"}}),
            "payload.model",
        ),
    ];
    for (body, field) in refused {
        let (status, headers, problem) = s
            .call("POST", "/api/jobs", Some(&member), Some(body.clone()))
            .await;
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        );
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (_, _, jobs) = s.call("GET", "/api/jobs", Some(&member), None).await;
    assert_eq!(jobs["jobs"], json!([]), "nothing was queued: {jobs}");

    // The inline form (what /api/ingest queues) is accepted and runs.
    let (status, _, job) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&member),
            Some(json!({"kind": "ingest", "payload": {"mapping": jira_mapping(), "rows": issues, "name": "jira.json"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = s.finish_job(&member, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let content = base64::engine::general_purpose::STANDARD.encode(ODOO);
    let (status, _, job) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&member),
            Some(json!({"kind": "ingest", "payload": {
                "mapping": serde_json::to_value(opsweave::preset("odoo-crm-lead").unwrap()).unwrap(),
                "content_b64": content, "format": "csv", "name": "odoo.csv"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = s.finish_job(&member, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
}

#[tokio::test]
async fn usage_refuses_absurd_counts_and_sums_never_fail() {
    let s = Server::start(|_| {}).await;
    let service = s.key(&s.acme, "service").await;
    let event = |tokens: u64| json!({"events": [{"operation": "chat", "model": "m", "input_tokens": tokens, "at": "2026-11-20T10:00:00Z"}]});
    let (status, headers, problem) = s
        .call(
            "POST",
            "/api/usage/events",
            Some(&service),
            Some(event(i64::MAX as u64)),
        )
        .await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    assert_eq!(problem["field"], "events[0].input_tokens", "{problem}");
    let (status, _, body) = s
        .call("POST", "/api/usage/events", Some(&service), Some(event(1)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Rows a store may already hold from before the bound: the sums saturate, never a 500.
    let db = s.state.weave.config().db.clone();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
        .unwrap()
        .timestamp_millis();
    sqlx::query(
        "INSERT INTO usage_events (org, operation, model, input_tokens, output_tokens, \
         embedding_tokens, latency_ms, at) VALUES ('acme', 'chat', 'm', ?, 0, 0, 1, ?)",
    )
    .bind(i64::MAX)
    .bind(at)
    .execute(&mut conn)
    .await
    .unwrap();
    let (status, _, usage) = s
        .call(
            "GET",
            "/api/usage?from=2026-11-01&to=2026-12-01",
            Some(&service),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    assert_eq!(usage["totals"][0]["input_tokens"], i64::MAX, "{usage}");
    assert_eq!(usage["totals"][0]["calls"], 2, "{usage}");
}

#[tokio::test]
async fn a_client_limited_key_lists_and_revokes_only_keys_of_its_client() {
    let s = Server::start(|_| {}).await;
    let make = |admin: String, body: Value| {
        let s = &s;
        async move {
            let (status, _, made) = s.call("POST", "/api/keys", Some(&admin), Some(body)).await;
            assert_eq!(status, StatusCode::CREATED, "{made}");
            (
                made["secret"].as_str().unwrap().to_string(),
                made["key"]["id"].as_i64().unwrap(),
            )
        }
    };
    let (c1_admin, c1_admin_id) = make(
        s.acme.clone(),
        json!({"name": "c1 admin", "role": "admin", "client": "c1"}),
    )
    .await;
    let (_, org_viewer) = make(
        s.acme.clone(),
        json!({"name": "org viewer", "role": "viewer"}),
    )
    .await;
    let (_, c2_viewer) = make(
        s.acme.clone(),
        json!({"name": "c2 viewer", "role": "viewer", "client": "c2"}),
    )
    .await;
    let (_, c1_viewer) = make(
        c1_admin.clone(),
        json!({"name": "c1 viewer", "role": "viewer"}),
    )
    .await;

    let (status, _, listed) = s.call("GET", "/api/keys", Some(&c1_admin), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let mut ids: Vec<i64> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![c1_admin_id, c1_viewer], "{listed}");
    let (_, _, all) = s.call("GET", "/api/keys", Some(&s.acme), None).await;
    assert_eq!(
        all["keys"].as_array().unwrap().len(),
        5,
        "an org-wide admin sees every key of the org: {all}"
    );

    for outside in [org_viewer, c2_viewer] {
        let (status, headers, problem) = s
            .call(
                "POST",
                &format!("/api/keys/{outside}/revoke"),
                Some(&c1_admin),
                None,
            )
            .await;
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let (_, _, all) = s.call("GET", "/api/keys", Some(&s.acme), None).await;
    assert!(
        all["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_null()),
        "nothing outside c1 was revoked: {all}"
    );
    let (status, _, revoked) = s
        .call(
            "POST",
            &format!("/api/keys/{c1_viewer}/revoke"),
            Some(&c1_admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(!revoked["revoked_at"].is_null(), "{revoked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_worker_runs_the_uploads_the_api_queues() {
    use opsweave::worker::{JobOutcome, Worker, WorkerOptions};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let s = Server::start(|_| {}).await;
    let issues: Value = serde_json::from_str::<Value>(JIRA).unwrap()["issues"].clone();
    let mut ids = Vec::new();
    for body in [
        json!({"preset": "jira-issue", "rows": issues, "name": "jira.json"}),
        json!({"preset": "odoo-crm-lead", "content": ODOO, "name": "odoo.csv"}),
    ] {
        let (status, _, job) = s
            .call("POST", "/api/ingest", Some(&s.acme), Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        ids.push(job["id"].as_i64().unwrap());
    }
    // `opsweave worker` on the same queue claims them instead of the server's workers.
    let mut options = WorkerOptions::new("external");
    options.kinds = vec!["ingest".into()];
    options.idle_poll = std::time::Duration::from_millis(20);
    let worker = Worker::new(s.state.weave.clone(), options).unwrap();
    let ended = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = {
        let ended = ended.clone();
        async move {
            while ended.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let on_job = {
        let ended = ended.clone();
        let failures = failures.clone();
        move |job: &opsweave::Job, outcome: &JobOutcome| {
            if *outcome != JobOutcome::Done {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("{}: {outcome:?}", job.id));
            }
            ended.fetch_add(1, Ordering::SeqCst);
        }
    };
    let report = tokio::time::timeout(std::time::Duration::from_secs(60), worker.run(stop, on_job))
        .await
        .expect("the worker finished both jobs")
        .unwrap();
    assert_eq!(failures.lock().unwrap().as_slice(), &[] as &[String]);
    assert_eq!(report.done, 2, "{report:?}");
    for id in ids {
        let (_, _, job) = s
            .call("GET", &format!("/api/jobs/{id}"), Some(&s.acme), None)
            .await;
        assert_eq!(job["status"], "done", "{job}");
    }
    let (status, _, found) = s
        .call("GET", "/api/search?q=globex", Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert!(
        found.to_string().to_lowercase().contains("globex"),
        "the uploaded CSV is searchable: {found}"
    );
}

#[tokio::test]
async fn an_ingest_summary_stays_json_however_long_its_rejections() {
    let s = Server::start(|_| {}).await;
    // Every row misses a required field with a long name, which each rejection names: 20 of
    // them pass 4 KiB.
    let long = format!("title_{}", "x".repeat(300));
    let mapping = json!({"name": "long", "source": "tracker", "entity": "task", "id": "id",
        "title": format!("{{{long}}}"), "fields": {long.clone(): {"from": long, "required": true}}});
    let rows: Vec<Value> = (0..20).map(|i| json!({"id": format!("t{i}")})).collect();
    let (status, _, job) = s
        .call(
            "POST",
            "/api/ingest",
            Some(&s.acme),
            Some(json!({"mapping": mapping, "name": "long.json", "rows": rows})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = s.finish_job(&s.acme, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let message = done["message"].as_str().unwrap();
    assert!(message.len() <= opsweave::jobs::MAX_MESSAGE_BYTES);
    let summary: Value = serde_json::from_str(message)
        .unwrap_or_else(|e| panic!("the summary is JSON ({e}): {message}"));
    assert_eq!(summary["rejected"], 20, "{summary}");
    let listed = summary["rejections"].as_array().unwrap().len() as u64;
    assert!((1..20).contains(&listed), "some listed, not all: {summary}");
    assert_eq!(summary["rejections_omitted"], 20 - listed, "{summary}");
}

#[tokio::test]
async fn a_webhook_timestamp_far_in_the_past_never_wraps_into_the_window() {
    let s = Server::start(|_| {}).await;
    let body =
        json!({"id": 9001, "number": 42, "title": "Webhook issue", "state": "open"}).to_string();
    let now = chrono::Utc::now().timestamp();
    // now − 2^63: the difference overflows i64, and wrapped its absolute value is negative.
    for t in [now.wrapping_add(i64::MIN), i64::MIN, i64::MAX] {
        let request = Request::post("/api/webhooks/github")
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                webhooks::SIGNATURE_HEADER,
                webhooks::sign(WEBHOOK_SECRET, t, body.as_bytes()),
            )
            .body(HttpBody::from(body.clone()))
            .unwrap();
        let (status, headers, problem) = s.raw(request).await;
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::UNAUTHORIZED,
            "signature_expired",
        );
    }
}

#[tokio::test]
async fn errors_made_outside_the_handlers_are_problems_too() {
    let s = Server::start(|c| {
        c.server.max_body_bytes = 1024;
        c.server.request_timeout_secs = 1;
    })
    .await;
    // 405: axum's own answer, with its Allow header kept.
    let (status, headers, problem) = s.call("DELETE", "/api/jobs/1", Some(&s.acme), None).await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert!(
        headers[header::ALLOW].to_str().unwrap().contains("GET"),
        "{headers:?}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("Allow header"),
        "{problem}"
    );

    // 413 on the webhook route (its body is read as bytes, before the signature is checked).
    let request = Request::post("/api/webhooks/github")
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(vec![b' '; 4096]))
        .unwrap();
    let (status, headers, problem) = s.raw(request).await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );

    // 408: a body that never ends outlasts the request timeout.
    let endless = futures::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"["))
    })
    .chain(futures::stream::pending());
    let request = Request::post("/api/webhooks/github")
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from_stream(endless))
        .unwrap();
    let (status, headers, problem) = s.raw(request).await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
    );
}

#[tokio::test]
async fn a_webhook_with_an_empty_secret_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        db: format!("sqlite://{}", dir.path().join("w.db").display()),
        ..Config::default()
    };
    config.server.webhooks.insert(
        "github".into(),
        WebhookConfig {
            secret: opsweave::Secret::new("  "),
            preset: "github-issue".into(),
            scope: Scope::org("acme"),
            replay_window_secs: 300,
        },
    );
    let weave = Weave::open_with(config).await.unwrap();
    let e = AppState::new(weave).err().unwrap();
    assert_eq!(e.kind(), opsweave::ErrorKind::InvalidInput);
    assert_eq!(
        e.location().field.as_deref(),
        Some("server.webhooks.github.secret")
    );
}

/// The signature does not name the source: two sources sharing a secret would accept each
/// other's deliveries (into their own scope), so such a configuration does not start.
#[tokio::test]
async fn webhooks_sharing_a_secret_stop_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let hook = |secret: &str, org: &str| WebhookConfig {
        secret: opsweave::Secret::new(secret),
        preset: "github-issue".into(),
        scope: Scope::org(org),
        replay_window_secs: 300,
    };
    let open = |name: &str, second_secret: &str| {
        let mut config = Config {
            db: format!("sqlite://{}", dir.path().join(name).display()),
            ..Config::default()
        };
        config
            .server
            .webhooks
            .insert("github".into(), hook("s3cret", "acme"));
        config
            .server
            .webhooks
            .insert("jira".into(), hook(second_secret, "initech"));
        Weave::open_with(config)
    };
    let e = AppState::new(open("shared.db", "s3cret").await.unwrap())
        .err()
        .unwrap();
    assert_eq!(e.kind(), opsweave::ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        e.location().field.as_deref(),
        Some("server.webhooks.jira.secret")
    );
    assert!(e.message().contains("`github` and `jira`"), "{e}");
    assert!(
        !e.message().contains("s3cret"),
        "the secret is never echoed: {e}"
    );
    assert!(AppState::new(open("apart.db", "other").await.unwrap()).is_ok());
}

#[tokio::test]
async fn server_settings_that_cannot_work_stop_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    type Change = Box<dyn Fn(&mut opsweave::ServerConfig)>;
    let cases: Vec<(&str, Change)> = vec![
        ("server.max_body_bytes", Box::new(|s| s.max_body_bytes = 0)),
        (
            "server.request_timeout_secs",
            Box::new(|s| s.request_timeout_secs = 0),
        ),
        (
            "server.request_timeout_secs",
            Box::new(|s| s.request_timeout_secs = u64::MAX),
        ),
        (
            "server.rate_limit_per_minute",
            Box::new(|s| s.rate_limit_per_minute = 0),
        ),
        ("server.workers", Box::new(|s| s.workers = 100_000)),
        ("server.dev_org", Box::new(|s| s.dev_org = String::new())),
        (
            "server.cors_origins",
            Box::new(|s| s.cors_origins = vec!["https://app.example.com/".into()]),
        ),
        (
            "server.cors_origins",
            Box::new(|s| s.cors_origins = vec!["app.example.com".into()]),
        ),
        (
            "server.cors_origins",
            Box::new(|s| s.cors_origins = vec!["https://user@app.example.com".into()]),
        ),
        (
            "server.webhooks.github.replay_window_secs",
            Box::new(|s| {
                s.webhooks.insert(
                    "github".into(),
                    WebhookConfig {
                        secret: opsweave::Secret::new("s3cret"),
                        preset: "github-issue".into(),
                        scope: Scope::org("acme"),
                        replay_window_secs: 0,
                    },
                );
            }),
        ),
    ];
    for (i, (field, change)) in cases.iter().enumerate() {
        let mut config = Config {
            db: format!("sqlite://{}", dir.path().join(format!("s{i}.db")).display()),
            ..Config::default()
        };
        change(&mut config.server);
        let weave = Weave::open_with(config).await.unwrap();
        let e = AppState::new(weave).err().unwrap();
        assert_eq!(e.kind(), opsweave::ErrorKind::InvalidInput, "{field}: {e}");
        assert_eq!(e.location().field.as_deref(), Some(*field), "{e}");
    }
    // Origins as browsers send them, and `*`, are accepted.
    let mut config = Config {
        db: format!("sqlite://{}", dir.path().join("ok.db").display()),
        ..Config::default()
    };
    config.server.cors_origins = vec![
        "https://app.example.com".into(),
        "http://localhost:5173".into(),
        "chrome-extension://abcdefghijklmnop".into(),
        "*".into(),
    ];
    let weave = Weave::open_with(config).await.unwrap();
    assert!(AppState::new(weave).is_ok());
}
