//! The HTTP API in-process (`oneshot` on the router) and once over a real socket.
#![allow(clippy::unwrap_used)]

use super::*;
use axum::body::Body as HttpBody;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use opsweave::{Config, Price, PriceBook, Role, Scope, TokenKind, WebhookConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

const JIRA: &str = include_str!("../../../../examples/data/jira-search.json");
const ODOO: &str = include_str!("../../../../examples/data/odoo-crm-lead.csv");
const SAMPLE_DAY: &str = "2026-11-23";
const WEBHOOK_SECRET: &str = "whsec-test-only";

struct Server {
    _dir: tempfile::TempDir,
    state: AppState,
    /// Admin of org `acme`.
    acme: String,
    /// Admin of org `initech`.
    initech: String,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            db: format!("sqlite://{}", dir.path().join("serve.db").display()),
            ..Config::default()
        };
        config.prices = PriceBook::new(vec![Price {
            model: "text-embedding-3-small".into(),
            kind: TokenKind::Embedding,
            usd_per_million: "0.02".parse().unwrap(),
            from: None,
        }])
        .unwrap();
        config.server.webhooks.insert(
            "github".into(),
            WebhookConfig {
                secret: opsweave::Secret::new(WEBHOOK_SECRET),
                preset: "github-issue".into(),
                scope: Scope::org("acme"),
                replay_window_secs: 300,
            },
        );
        tweak(&mut config);
        let weave = Weave::open_with(config).await.unwrap();
        let (acme, _) = weave
            .create_key("acme admin", Scope::org("acme"), Role::Admin, None)
            .await
            .unwrap();
        let (initech, _) = weave
            .create_key("initech admin", Scope::org("initech"), Role::Admin, None)
            .await
            .unwrap();
        let state = AppState::new(weave).unwrap();
        Self {
            _dir: dir,
            state,
            acme,
            initech,
        }
    }

    fn app(&self) -> Router {
        app(self.state.clone())
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                HttpBody::from(v.to_string())
            }
            None => HttpBody::empty(),
        };
        self.raw(request.body(body).unwrap()).await
    }

    async fn raw(&self, request: Request<HttpBody>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let response = self.app().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }

    async fn key(&self, admin: &str, role: &str) -> String {
        let (status, _, body) = self
            .call(
                "POST",
                "/api/keys",
                Some(admin),
                Some(json!({ "name": role, "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().unwrap().to_string()
    }

    /// Runs queued jobs with an in-process worker until `id` is final; returns it.
    async fn finish_job(&self, key: &str, id: i64) -> Value {
        let queue = self.state.weave.jobs().unwrap().clone();
        for _ in 0..100 {
            if let Some(job) = queue
                .claim("test-worker", &[], std::time::Duration::from_secs(60))
                .await
                .unwrap()
            {
                workers::run(&self.state, &*queue, "test-worker", job).await;
            }
            let (_, _, job) = self
                .call("GET", &format!("/api/jobs/{id}"), Some(key), None)
                .await;
            if ["done", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or_default())
            {
                return job;
            }
        }
        panic!("job {id} did not finish");
    }

    async fn ingest_jira(&self, key: &str) -> Value {
        let issues: Value = serde_json::from_str::<Value>(JIRA).unwrap()["issues"].clone();
        let (status, _, job) = self
            .call(
                "POST",
                "/api/ingest",
                Some(key),
                Some(json!({ "preset": "jira-issue", "rows": issues, "name": "jira.json" })),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        let done = self.finish_job(key, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["status"], "done", "{done}");
        done
    }

    async fn first_task(&self, key: &str) -> String {
        let (status, _, body) = self
            .call(
                "GET",
                &format!("/api/tasks?horizon=today&limit=5&now={SAMPLE_DAY}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["tasks"][0]["id"]
            .as_str()
            .expect("a task today")
            .to_string()
    }
}

fn assert_problem(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &Value,
    want: StatusCode,
    code: &str,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], want.as_u16(), "{body}");
    assert!(
        !body["detail"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
}

/// A `/readyz` answer of 503 `not_ready` whose detail names `part` (e.g. "postgres store").
fn assert_not_ready(status: StatusCode, headers: &axum::http::HeaderMap, body: &Value, part: &str) {
    assert_problem(
        status,
        headers,
        body,
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
    );
    assert!(
        body["detail"].as_str().unwrap_or_default().contains(part),
        "{part}: {body}"
    );
}

#[tokio::test]
async fn health_ready_metrics_openapi_and_docs() {
    let s = Server::start(|c| c.server.dev_org = "acme".into()).await;
    for n in 0..2 {
        let job = opsweave::NewJob::new("noop", Scope::org("acme"), serde_json::json!(n));
        s.state.weave.enqueue(job).await.unwrap();
    }
    let (status, headers, body) = s.call("GET", "/healthz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    assert!(
        headers.contains_key("x-request-id"),
        "a request id is made when none is sent"
    );
    let (status, _, _) = s.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, spec) = s.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/tasks",
        "/api/jobs/{id}/events",
        "/api/usage",
        "/api/ingest",
        "/api/webhooks/{source}",
    ] {
        assert!(spec["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    // Answers with a typed body describe it, down to the recall explanation's parts.
    for (path, method, status, schema) in [
        ("/api/recall", "post", "200", "RecallHits"),
        ("/api/search", "get", "200", "SearchHits"),
        ("/api/memory", "post", "201", "MemoryCreated"),
        ("/api/usage", "get", "200", "UsageReport"),
        ("/api/usage/events", "post", "201", "Recorded"),
        ("/api/keys", "get", "200", "KeyList"),
        ("/api/keys", "post", "201", "NewKey"),
        ("/api/keys/{id}/revoke", "post", "200", "ApiKey"),
        ("/api/tasks", "get", "200", "TaskListing"),
        ("/api/tasks/{id}/complete", "post", "200", "Task"),
        ("/api/tasks/{id}/undo", "post", "200", "Task"),
        ("/api/records/{id}", "get", "200", "Record"),
        ("/api/memory/{id}", "put", "200", "Record"),
        ("/api/graph", "get", "200", "Graph"),
        ("/api/graph/filters", "get", "200", "GraphFilters"),
        ("/api/match/review", "get", "200", "ReviewPairs"),
        ("/api/match/review/accept", "post", "200", "ReviewItem"),
        ("/api/webhooks/{source}", "post", "200", "Delivered"),
        ("/healthz", "get", "200", "Health"),
        ("/readyz", "get", "200", "Health"),
    ] {
        let answer = &spec["paths"][path][method]["responses"][status];
        assert_eq!(
            answer["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        spec["components"]["schemas"]["RankerHit"]["properties"]["ranker"]["$ref"],
        "#/components/schemas/Ranker"
    );
    // A schema's own example holds every property it calls required (an optional field given
    // a `value_type` without `Option` reads as required).
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for (name, schema) in schemas {
        let (Some(example), Some(required)) = (schema.get("example"), schema.get("required"))
        else {
            continue;
        };
        for field in required.as_array().unwrap() {
            assert!(
                example.get(field.as_str().unwrap()).is_some(),
                "{name}: `{field}` is required but its example lacks it"
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no schema has an example and required fields");
    let (status, _, page) = s.call("GET", "/docs", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str().unwrap_or_default().contains("openapi"),
        "docs page embeds the spec"
    );
    let (status, _, text) = s.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("opsweave_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("route=\"/readyz\""), "{text}");
    assert!(
        text.contains("opsweave_job_queue_depth{status=\"queued\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("opsweave_job_queue_depth{status=\"running\"} 0"),
        "{text}"
    );

    // A request id sent in comes back out.
    let request = Request::get("/healthz")
        .header("x-request-id", "abc-123")
        .body(HttpBody::empty())
        .unwrap();
    let (_, headers, _) = s.raw(request).await;
    assert_eq!(headers["x-request-id"], "abc-123");

    // One too long, or with spaces, is replaced by the server's own (it goes into every log line).
    for odd in ["x".repeat(129), "two words".to_string()] {
        let request = Request::get("/healthz")
            .header("x-request-id", odd.as_str())
            .body(HttpBody::empty())
            .unwrap();
        let (_, headers, _) = s.raw(request).await;
        let id = headers["x-request-id"].to_str().unwrap();
        assert_ne!(id, odd);
        assert_eq!(id.len(), 36, "{id}");
    }
    let request = Request::get("/healthz")
        .header("x-request-id", "x".repeat(128))
        .body(HttpBody::empty())
        .unwrap();
    let (_, headers, _) = s.raw(request).await;
    assert_eq!(headers["x-request-id"], "x".repeat(128));
}

/// A key store that cannot be reached: what readiness sees when the database is down.
struct Unreachable;

#[async_trait::async_trait]
impl opsweave::KeyStore for Unreachable {
    async fn create_key(&self, _: opsweave::NewApiKey) -> opsweave::Result<opsweave::ApiKey> {
        Err(opsweave::Error::unavailable("database down"))
    }
    async fn key_by_hash(&self, _: &str) -> opsweave::Result<Option<opsweave::ApiKey>> {
        Err(opsweave::Error::unavailable("database down"))
    }
    async fn keys(&self, _: &str) -> opsweave::Result<Vec<opsweave::ApiKey>> {
        Err(opsweave::Error::unavailable("database down"))
    }
    async fn revoke_key(&self, _: &str, _: opsweave::KeyId) -> opsweave::Result<opsweave::ApiKey> {
        Err(opsweave::Error::unavailable("database down"))
    }
    async fn key_count(&self) -> opsweave::Result<u64> {
        Err(opsweave::Error::unavailable("database down"))
    }
}

#[tokio::test]
async fn readyz_is_503_when_the_store_does_not_answer() {
    let s = Server::start(|_| {}).await;
    let weave = s
        .state
        .weave
        .clone()
        .with_key_store(std::sync::Arc::new(Unreachable));
    let down = Server {
        state: AppState::new(weave).unwrap(),
        ..s
    };
    let (status, headers, body) = down.call("GET", "/readyz", None, None).await;
    assert_not_ready(status, &headers, &body, "sqlite store");
    let (status, headers, body) = down.call("GET", "/api/tasks", Some(&down.acme), None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

#[tokio::test]
async fn keys_roles_and_dev_mode() {
    let s = Server::start(|_| {}).await;
    let (status, headers, body) = s.call("GET", "/api/tasks", None, None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let fake = format!("ow_{}", "0".repeat(64));
    let (status, headers, body) = s.call("GET", "/api/tasks", Some(&fake), None).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(!body.to_string().contains(&fake), "the key is never echoed");
    let (status, _, _) = s.call("GET", "/api/tasks", Some("not-a-key"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Dev mode is off: the header is ignored.
    let request = Request::get("/api/tasks")
        .header("x-dev-user", "ann")
        .body(HttpBody::empty())
        .unwrap();
    let (status, _, _) = s.raw(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    s.ingest_jira(&s.acme).await;
    let task = s.first_task(&s.acme).await;
    let viewer = s.key(&s.acme, "viewer").await;
    let (status, _, _) = s
        .call("GET", &format!("/api/records/{task}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = s
        .call(
            "POST",
            &format!("/api/tasks/{task}/complete"),
            Some(&viewer),
            None,
        )
        .await;
    assert_problem(status, &headers, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _, _) = s
        .call(
            "POST",
            "/api/keys",
            Some(&viewer),
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins make keys");

    // Listing shows no secrets; revoking stops a key at once.
    let member = s.key(&s.acme, "member").await;
    let (_, _, list) = s.call("GET", "/api/keys", Some(&s.acme), None).await;
    assert!(
        !list.to_string().contains(&member),
        "secrets are shown once only"
    );
    let id = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "member")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _, _) = s.call("GET", "/api/tasks", Some(&member), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = s
        .call(
            "POST",
            &format!("/api/keys/{id}/revoke"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = s.call("GET", "/api/tasks", Some(&member), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    // The org's last live admin key cannot be revoked: nothing could make keys again.
    let admin_ids = |list: &Value| -> Vec<i64> {
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["role"] == "admin" && k["revoked_at"].is_null())
            .map(|k| k["id"].as_i64().unwrap())
            .collect()
    };
    let (_, _, list) = s.call("GET", "/api/keys", Some(&s.acme), None).await;
    let first = admin_ids(&list);
    assert_eq!(first.len(), 1, "{list}");
    let revoke = |id: i64| {
        let s = &s;
        async move {
            s.call(
                "POST",
                &format!("/api/keys/{id}/revoke"),
                Some(&s.acme),
                None,
            )
            .await
        }
    };
    let (status, headers, problem) = revoke(first[0]).await;
    assert_problem(status, &headers, &problem, StatusCode::CONFLICT, "conflict");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("last live admin key"),
        "{problem}"
    );
    s.key(&s.acme, "admin").await;
    let (_, _, list) = s.call("GET", "/api/keys", Some(&s.acme), None).await;
    let second = *admin_ids(&list).iter().find(|id| **id != first[0]).unwrap();
    let (status, _, body) = revoke(second).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = revoke(first[0]).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // An empty client is refused, not read as "the whole org".
    let (status, headers, problem) = s
        .call(
            "POST",
            "/api/keys",
            Some(&s.acme),
            Some(json!({"name": "narrow", "role": "member", "client": ""})),
        )
        .await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );

    // A key cannot be born expired, nor nameless.
    for (body, field) in [
        (
            json!({"name": "old", "role": "member", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": " ", "role": "member"}), "name"),
    ] {
        let (status, _, problem) = s.call("POST", "/api/keys", Some(&s.acme), Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    // Expired keys are refused too.
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(600);
    let (status, _, made) = s
        .call(
            "POST",
            "/api/keys",
            Some(&s.acme),
            Some(json!({"name": "short-lived", "role": "member", "expires_at": soon})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    while chrono::Utc::now() <= soon {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _, body) = s
        .call(
            "GET",
            "/api/tasks",
            Some(made["secret"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // With dev mode on, X-Dev-User acts as admin of the dev org.
    let dev = Server::start(|c| {
        c.server.dev_mode = true;
        c.server.dev_org = "acme".into();
    })
    .await;
    let request = Request::get("/api/jobs")
        .header("x-dev-user", "ann")
        .body(HttpBody::empty())
        .unwrap();
    let (status, _, body) = dev.raw(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn tasks_complete_undo_records_search_and_graph() {
    let s = Server::start(|_| {}).await;
    let job = s.ingest_jira(&s.acme).await;
    assert_eq!(job["progress"], 1.0);
    assert!(
        job["message"].as_str().unwrap().contains("\"inserted\":8"),
        "{job}"
    );
    let (status, _, body) = s
        .call(
            "GET",
            &format!("/api/tasks?horizon=week&limit=3&now={SAMPLE_DAY}"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["tasks"].as_array().unwrap().len() <= 3);

    let task = s.first_task(&s.acme).await;
    let (status, _, done) = s
        .call(
            "POST",
            &format!("/api/tasks/{task}/complete"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("done")),
        "{done}"
    );
    let (_, _, past) = s
        .call("GET", "/api/tasks?horizon=past7d", Some(&s.acme), None)
        .await;
    assert!(
        past["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == task.as_str()),
        "{past}"
    );
    let (status, _, undone) = s
        .call(
            "POST",
            &format!("/api/tasks/{task}/undo"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(undone["status"], "done", "{undone}");

    let (status, _, record) = s
        .call("GET", &format!("/api/records/{task}"), Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["id"], task.as_str());
    let (status, _, hits) = s
        .call("GET", "/api/search?q=cutover", Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!hits["hits"].as_array().unwrap().is_empty(), "{hits}");

    let (status, _, recalled) = s
        .call(
            "POST",
            "/api/recall",
            Some(&s.acme),
            Some(json!({"query": "cutover runbook", "options": {"mode": "bm25", "k": 3}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recalled}");
    assert!(
        !recalled["hits"].as_array().unwrap().is_empty(),
        "{recalled}"
    );
    let (status, headers, body) = s
        .call(
            "POST",
            "/api/recall",
            Some(&s.acme),
            Some(json!({"query": "x", "options": {"mode": "psychic"}})),
        )
        .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    // No embedding model is configured here: a note cannot be embedded, and nothing is stored.
    let (status, _, body) = s
        .call(
            "POST",
            "/api/memory",
            Some(&s.acme),
            Some(json!({"text": "remember the milk"})),
        )
        .await;
    assert!(
        status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status} {body}"
    );
    let (_, _, none) = s
        .call("GET", "/api/search?q=milk", Some(&s.acme), None)
        .await;
    assert_eq!(none["hits"], json!([]), "{none}");

    let (status, _, graph) = s
        .call(
            "GET",
            &format!("/api/graph?window=month&now={SAMPLE_DAY}"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let all = graph["nodes"].as_array().unwrap().len();
    assert!(all > 0, "{graph}");
    let (_, _, filtered) = s
        .call(
            "GET",
            &format!("/api/graph?window=month&lane=today&now={SAMPLE_DAY}"),
            Some(&s.acme),
            None,
        )
        .await;
    assert!(
        filtered["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["lane"] == "today"),
        "{filtered}"
    );
    let (status, _, filters) = s
        .call("GET", "/api/graph/filters", Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(filters["windows"], json!(["week", "month"]));
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_and_changes_nothing() {
    let s = Server::start(|c| c.server.max_body_bytes = 64 * 1024).await;
    let json_request = |uri: &str, body: &str| {
        Request::post(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", s.acme))
            .header(header::CONTENT_TYPE, "application/json")
            .body(HttpBody::from(body.to_string()))
            .unwrap()
    };
    let cases: Vec<(Request<HttpBody>, StatusCode, &str)> = vec![
        (
            json_request("/api/jobs", "{\"kind\": "),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            json_request("/api/jobs", "{\"kind\": \"embed\", \"colour\": 1}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json_request("/api/jobs", "{\"kind\": 7}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json_request("/api/jobs", "{\"kind\": \"\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request(
                "/api/jobs",
                "{\"kind\": \"sleep\", \"payload\": {\"ms\": -1}}",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request(
                "/api/jobs",
                "{\"kind\": \"sleep\", \"payload\": {\"ms\": 1e20}}",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request(
                "/api/jobs",
                &format!(
                    "{{\"kind\": \"x\", \"payload\": \"{}\"}}",
                    "a".repeat(100_000)
                ),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            json_request("/api/ingest", "{\"preset\": \"nope\", \"rows\": []}"),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request("/api/ingest", "{\"preset\": \"jira-issue\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request(
                "/api/ingest",
                "{\"preset\": \"jira-issue\", \"content\": \"x\", \"format\": \"xml\"}",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request(
                "/api/usage/events",
                "{\"events\": [{\"operation\": \"embed\", \"model\": \"\"}]}",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request("/api/match/runs", "{\"preset\": \"nope\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request("/api/tasks/zzz/complete", ""),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            json_request("/api/jobs/abc/cancel", ""),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            Request::post("/api/jobs")
                .header(header::AUTHORIZATION, format!("Bearer {}", s.acme))
                .body(HttpBody::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (request, want, code) in cases {
        let uri = request.uri().to_string();
        let (status, headers, body) = s.raw(request).await;
        assert_eq!(status, want, "{uri}: {body}");
        assert_problem(status, &headers, &body, want, code);
    }
    // A body that does not fit names the field at fault, in JSON's words, not the server's types.
    for (uri, body, field, words) in [
        (
            "/api/recall",
            json!({"query": "x", "options": {"mode": "psychic"}}),
            Some("options.mode"),
            "psychic",
        ),
        (
            "/api/recall",
            json!({"options": {}}),
            Some("query"),
            "query",
        ),
        (
            "/api/jobs",
            json!({"kind": "embed", "colour": 1}),
            Some("colour"),
            "colour",
        ),
        (
            "/api/usage/events",
            json!({"events": [{"operation": "embed", "model": "m", "input_tokens": -1}]}),
            Some("events[0].input_tokens"),
            "whole number",
        ),
        ("/api/recall", json!([]), None, "expected a JSON object"),
    ] {
        let (status, headers, problem) = s.call("POST", uri, Some(&s.acme), Some(body)).await;
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        );
        assert_eq!(problem["field"].as_str(), field, "{uri}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{uri}: {problem}");
        assert!(
            !detail.contains("struct ") && !detail.contains("enum ") && !detail.contains(" u64"),
            "{uri}: {problem}"
        );
    }
    for (uri, code) in [
        ("/api/tasks?horizon=someday", "invalid_input"),
        ("/api/tasks?limit=0", "invalid_input"),
        ("/api/tasks?limit=-1", "malformed_request"),
        ("/api/tasks?colour=red", "malformed_request"),
        ("/api/search?q=", "invalid_input"),
        ("/api/jobs?status=later", "invalid_input"),
        ("/api/usage?group_by=planet", "invalid_input"),
        ("/api/usage?from=yesterday", "invalid_input"),
        ("/api/records/ffffffffffffffffff", "invalid_input"),
        ("/api/graph?window=year", "invalid_input"),
        // Endpoints without parameters refuse one rather than ignore it.
        ("/api/keys?org=initech", "malformed_request"),
        ("/api/graph/filters?window=week", "malformed_request"),
        ("/api/records/00000000000000ff?full=1", "malformed_request"),
        ("/api/jobs/1?verbose", "malformed_request"),
    ] {
        let (status, headers, body) = s.call("GET", uri, Some(&s.acme), None).await;
        assert_problem(status, &headers, &body, StatusCode::BAD_REQUEST, code);
    }
    let (_, _, body) = s
        .call("GET", "/api/keys?org=initech", Some(&s.acme), None)
        .await;
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("`org`")),
        "{body}"
    );
    // Writes take their input in the path and the body: a query parameter is refused by name
    // rather than ignored (`?client=` would otherwise read as a narrower scope than it is).
    for (method, uri, body) in [
        (
            "POST",
            "/api/tasks/00000000000000ff/complete?client=globex",
            None,
        ),
        (
            "POST",
            "/api/tasks/00000000000000ff/undo?client=globex",
            None,
        ),
        (
            "POST",
            "/api/recall?client=globex",
            Some(json!({"query": "renewal"})),
        ),
        (
            "POST",
            "/api/memory?client=globex",
            Some(json!({"text": "a note"})),
        ),
        (
            "PUT",
            "/api/memory/00000000000000ff?client=globex",
            Some(json!({"text": "a note"})),
        ),
        ("DELETE", "/api/memory/00000000000000ff?client=globex", None),
        ("POST", "/api/match/runs?client=globex", Some(json!({}))),
        (
            "POST",
            "/api/jobs?client=globex",
            Some(json!({"kind": "embed"})),
        ),
        ("POST", "/api/jobs/1/cancel?client=globex", None),
        (
            "POST",
            "/api/ingest?client=globex",
            Some(json!({"preset": "csv", "rows": []})),
        ),
        (
            "POST",
            "/api/usage/events?client=globex",
            Some(json!({"events": []})),
        ),
        (
            "POST",
            "/api/keys?client=globex",
            Some(json!({"name": "ci"})),
        ),
        ("POST", "/api/keys/1/revoke?client=globex", None),
    ] {
        let (status, headers, problem) = s.call(method, uri, Some(&s.acme), body).await;
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::BAD_REQUEST,
            "malformed_request",
        );
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("`client`")),
            "{method} {uri}: {problem}"
        );
    }
    let (status, headers, body) = s.call("GET", "/api/nowhere", Some(&s.acme), None).await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, headers, body) = s
        .call("GET", "/api/records/00000000000000ff", Some(&s.acme), None)
        .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");

    // Nothing was queued or recorded by any of it.
    let (_, _, jobs) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
    assert_eq!(jobs["jobs"], json!([]), "{jobs}");
    let (_, _, usage) = s
        .call("GET", "/api/usage?group_by=org", Some(&s.acme), None)
        .await;
    assert_eq!(usage["totals"], json!([]), "{usage}");
}

#[tokio::test]
async fn an_upload_with_two_files_is_refused_whole() {
    let s = Server::start(|_| {}).await;
    let boundary = "opsweave-test-boundary";
    let part = |name: &str, file: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
             filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n{ODOO}\r\n"
        )
    };
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"preset\"\r\n\r\nodoo-crm-lead\r\n{}{}--{boundary}--\r\n",
        part("file", "a.csv"),
        part("file", "b.csv")
    );
    let request = Request::post("/api/ingest")
        .header(header::AUTHORIZATION, format!("Bearer {}", s.acme))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(HttpBody::from(form))
        .unwrap();
    let (status, headers, body) = s.raw(request).await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_eq!(body["field"], "file", "{body}");
    let (_, _, jobs) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
    assert_eq!(jobs["jobs"], json!([]), "nothing queued: {jobs}");
}

#[tokio::test]
async fn org_a_cannot_read_change_or_detect_org_b() {
    let s = Server::start(|_| {}).await;
    s.ingest_jira(&s.acme).await;
    let task = s.first_task(&s.acme).await;
    let (_, _, job) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&s.acme),
            Some(json!({"kind": "agent", "payload": {"q": 1}})),
        )
        .await;
    let job = job["id"].as_i64().unwrap();
    let b = s.initech.clone();

    // Another org's ids answer exactly like ids that do not exist.
    for (method, uri) in [
        ("GET", format!("/api/records/{task}")),
        ("POST", format!("/api/tasks/{task}/complete")),
        ("POST", format!("/api/tasks/{task}/undo")),
    ] {
        let (status, headers, body) = s.call(method, &uri, Some(&b), None).await;
        assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
        let missing = s
            .call(
                method,
                &uri.replace(&task, "0000000000000001"),
                Some(&b),
                None,
            )
            .await;
        assert_eq!(
            body["detail"].as_str().map(|d| d.replace(&task, "ID")),
            missing.2["detail"]
                .as_str()
                .map(|d| d.replace("0000000000000001", "ID")),
            "{uri}: another org's id reads like a missing one"
        );
    }
    for (method, uri) in [
        ("GET", format!("/api/jobs/{job}")),
        ("POST", format!("/api/jobs/{job}/cancel")),
        ("GET", format!("/api/jobs/{job}/events")),
    ] {
        let (status, headers, body) = s.call(method, &uri, Some(&b), None).await;
        assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, _, hits) = s.call("GET", "/api/search?q=cutover", Some(&b), None).await;
    assert_eq!(hits["hits"], json!([]));
    let (_, _, tasks) = s
        .call(
            "GET",
            &format!("/api/tasks?horizon=today&now={SAMPLE_DAY}"),
            Some(&b),
            None,
        )
        .await;
    assert_eq!(tasks["tasks"], json!([]));
    let (_, _, jobs) = s.call("GET", "/api/jobs", Some(&b), None).await;
    assert_eq!(jobs["jobs"], json!([]));
    let (_, _, keys) = s.call("GET", "/api/keys", Some(&b), None).await;
    assert_eq!(
        keys["keys"].as_array().unwrap().len(),
        1,
        "only its own key: {keys}"
    );
    let acme_key_id = s.state.weave.list_keys("acme").await.unwrap()[0].id;
    let (status, _, _) = s
        .call(
            "POST",
            &format!("/api/keys/{acme_key_id}/revoke"),
            Some(&b),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // And nothing of org A changed.
    let (_, _, record) = s
        .call(
            "GET",
            &format!("/api/tasks?horizon=today&limit=5&now={SAMPLE_DAY}"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(record["tasks"][0]["id"], task.as_str());
    let (_, _, still) = s
        .call("GET", &format!("/api/jobs/{job}"), Some(&s.acme), None)
        .await;
    assert_eq!(still["status"], "queued");
    let (status, _, _) = s.call("GET", "/api/tasks", Some(&s.acme), None).await;
    assert_eq!(status, StatusCode::OK, "org A's key still works");

    // A key limited to a client cannot widen to another client.
    let (_, _, made) = s
        .call(
            "POST",
            "/api/keys",
            Some(&s.acme),
            Some(json!({"name": "globex only", "role": "viewer", "client": "globex"})),
        )
        .await;
    let narrow = made["secret"].as_str().unwrap().to_string();
    let (status, _, _) = s
        .call("GET", "/api/tasks?client=initech", Some(&narrow), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, none) = s
        .call("GET", &format!("/api/records/{task}"), Some(&narrow), None)
        .await;
    assert_eq!(
        none["code"], "not_found",
        "the unscoped record is outside the client: {none}"
    );
    // Matching state is the org's: a client's key neither sees nor changes it.
    let (_, _, made) = s
        .call(
            "POST",
            "/api/keys",
            Some(&s.acme),
            Some(json!({"name": "globex member", "role": "member", "client": "globex"})),
        )
        .await;
    let member = made["secret"].as_str().unwrap().to_string();
    for (method, path, body) in [
        ("GET", "/api/match/review", None),
        (
            "POST",
            "/api/match/runs",
            Some(json!({"preset": "task-dedupe"})),
        ),
        (
            "POST",
            "/api/match/review/accept",
            Some(
                json!({"resolver": "task-dedupe", "left": "0000000000000001", "right": "0000000000000002"}),
            ),
        ),
    ] {
        let (status, _, problem) = s.call(method, path, Some(&member), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {problem}");
    }
    let (status, _, problem) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&member),
            Some(json!({"kind": "match", "payload": {"preset": "task-dedupe"}})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a match job by the jobs route: {problem}"
    );
    let (status, _, problem) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&s.acme),
            Some(
                json!({"kind": "match", "payload": {"preset": "task-dedupe"}, "client": "globex"}),
            ),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "narrowed in the body: {problem}"
    );
    let (status, _, _) = s
        .call("GET", "/api/match/review", Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK, "an org-wide key may");
}

#[tokio::test]
async fn event_streams_end_when_their_key_is_revoked_or_the_server_stops() {
    let s = Server::start(|_| {}).await;
    // A job no worker here runs: its stream would follow it for ever.
    let (_, _, job) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&s.acme),
            Some(json!({"kind": "agent"})),
        )
        .await;
    let uri = format!("/api/jobs/{}/events", job["id"].as_i64().unwrap());
    let (_, _, made) = s
        .call(
            "POST",
            "/api/keys",
            Some(&s.acme),
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    let watcher = made["secret"].as_str().unwrap().to_string();
    let revoke = format!("/api/keys/{}/revoke", made["key"]["id"]);
    let revoked = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _, _) = s.call("POST", &revoke, Some(&s.acme), None).await;
        assert_eq!(status, StatusCode::OK);
    };
    let ((status, _, body), ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(s.call("GET", &uri, Some(&watcher), None), revoked)
    })
    .await
    .expect("the stream of a revoked key ends");
    let body = body.as_str().unwrap().to_string();
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("event: queued") && body.contains("event: error"),
        "{body}"
    );

    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.state.stopping.send_replace(true);
    };
    let ((status, _, body), ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(s.call("GET", &uri, Some(&s.acme), None), stop)
    })
    .await
    .expect("the stream ends when the server stops");
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap().contains("event: queued"), "{body}");
}

#[tokio::test]
async fn jobs_are_idempotent_listed_cancelled_and_streamed() {
    let s = Server::start(|_| {}).await;
    let body =
        json!({"kind": "agent", "payload": {"task": "summarise"}, "idempotency_key": "run-1"});
    let (status, _, first) = s
        .call("POST", "/api/jobs", Some(&s.acme), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (_, _, again) = s.call("POST", "/api/jobs", Some(&s.acme), Some(body)).await;
    assert_eq!(
        first["id"], again["id"],
        "the same key returns the same job"
    );
    let (_, _, queued) = s
        .call("GET", "/api/jobs?status=queued", Some(&s.acme), None)
        .await;
    assert_eq!(queued["jobs"].as_array().unwrap().len(), 1);
    let id = first["id"].as_i64().unwrap();
    let (status, _, cancelled) = s
        .call(
            "POST",
            &format!("/api/jobs/{id}/cancel"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (_, _, queued) = s
        .call("GET", "/api/jobs?status=queued", Some(&s.acme), None)
        .await;
    assert_eq!(queued["jobs"], json!([]));
    // EventSource polyfills add parameters of their own: the stream takes them.
    let (_, _, stream) = s
        .call(
            "GET",
            &format!("/api/jobs/{id}/events?lastEventId=0&r=0.5"),
            Some(&s.acme),
            None,
        )
        .await;
    let stream = stream.as_str().unwrap().to_string();
    assert!(stream.contains("event: cancelled"), "{stream}");

    // An ingest followed live: queued, running with progress, done.
    let (_, _, job) = s
        .call(
            "POST",
            "/api/ingest",
            Some(&s.acme),
            Some(json!({"preset": "odoo-crm-lead", "content": ODOO, "name": "odoo.csv"})),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    let request = Request::get(format!("/api/jobs/{id}/events"))
        .header(header::AUTHORIZATION, format!("Bearer {}", s.acme))
        .body(HttpBody::empty())
        .unwrap();
    let response = s.app().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("event: queued"),
        "the first state arrives before the job runs"
    );
    let job = s.finish_job(&s.acme, id).await;
    assert_eq!(job["status"], "done", "{job}");
    let rest = body.collect().await.unwrap().to_bytes();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("event: done"), "{rest}");
    assert!(rest.contains("\"percent\":100.0"), "{rest}");
}

#[tokio::test]
async fn usage_is_reported_by_services_and_summed_with_cost() {
    let s = Server::start(|_| {}).await;
    let service = s.key(&s.acme, "service").await;
    let member = s.key(&s.acme, "member").await;
    let events = json!({"events": [
        {"operation": "embed", "model": "text-embedding-3-small", "embedding_tokens": 1500000, "latency_ms": 120, "client": "globex", "at": "2026-11-20T10:00:00Z"},
        {"operation": "embed", "model": "text-embedding-3-small", "embedding_tokens": 500000, "latency_ms": 80, "at": "2026-11-21T10:00:00Z"},
        {"operation": "chat", "model": "local-llm", "input_tokens": 100, "output_tokens": 20, "at": "2026-11-21T11:00:00Z"}
    ]});
    let (status, _, _) = s
        .call(
            "POST",
            "/api/usage/events",
            Some(&member),
            Some(events.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members do not report usage");
    let (status, _, body) = s
        .call(
            "POST",
            "/api/usage/events",
            Some(&service),
            Some(events.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Another org's usage stays its own.
    let (status, _, _) = s
        .call("POST", "/api/usage/events", Some(&s.initech), Some(events))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, _, by_model) = s
        .call(
            "GET",
            "/api/usage?from=2026-11-01&to=2026-12-01&group_by=model",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_model}");
    let totals = by_model["totals"].as_array().unwrap();
    assert_eq!(totals.len(), 2, "{by_model}");
    let embed = totals
        .iter()
        .find(|t| t["model"] == "text-embedding-3-small")
        .unwrap();
    assert_eq!(embed["embedding_tokens"], 2_000_000);
    assert_eq!(embed["calls"], 2);
    assert_eq!(embed["cost_usd"], "0.04");
    let chat = totals.iter().find(|t| t["model"] == "local-llm").unwrap();
    assert_eq!(
        chat["cost_usd"],
        Value::Null,
        "no price for local-llm: {chat}"
    );

    let (_, _, by_client) = s
        .call(
            "GET",
            "/api/usage?from=2026-11-01&to=2026-12-01&group_by=client",
            Some(&member),
            None,
        )
        .await;
    let keys: Vec<_> = by_client["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, vec!["", "", "globex"], "{by_client}");
    let (_, _, globex) = s
        .call(
            "GET",
            "/api/usage?from=2026-11-01&to=2026-12-01&group_by=org&client=globex",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(
        globex["totals"][0]["embedding_tokens"], 1_500_000,
        "{globex}"
    );
}

#[tokio::test]
async fn webhooks_need_a_fresh_valid_signature() {
    let s = Server::start(|_| {}).await;
    let body = json!([{"id": 9001, "number": 42, "title": "Webhook issue", "state": "open", "html_url": "https://github.example/acme/x/issues/42",
        "body": "from a webhook", "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-21T10:00:00Z", "labels": [], "user": {"login": "octo"}}])
    .to_string();
    let post = |signature: Option<String>, source: &str| {
        let mut request = Request::post(format!("/api/webhooks/{source}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(sig) = signature {
            request = request.header(webhooks::SIGNATURE_HEADER, sig);
        }
        request.body(HttpBody::from(body.clone())).unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let good = webhooks::sign(WEBHOOK_SECRET, now, body.as_bytes());
    let (status, _, report) = s.raw(post(Some(good.clone()), "github")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["inserted"].as_u64().unwrap() + report["unchanged"].as_u64().unwrap(),
        1,
        "{report}"
    );
    let (status, headers, problem) = s.raw(post(Some(good.clone()), "github")).await;
    assert_problem(status, &headers, &problem, StatusCode::CONFLICT, "replayed");
    // The same signature spelled another way is the same signature.
    let mac = good.split_once(",v1=").unwrap().1.to_string();
    for respelled in [
        format!("t={now},v1={}", mac.to_uppercase()),
        format!("v1={mac},t={now}"),
        format!("t={now}, v1={mac}"),
        format!("t=0{now},v1={mac}"),
        format!("t={now},v1={mac},v0=abc"),
    ] {
        let (status, headers, problem) = s.raw(post(Some(respelled.clone()), "github")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{respelled}: {problem}");
        assert_problem(status, &headers, &problem, StatusCode::CONFLICT, "replayed");
    }
    // A delivery that fails does not use up its signature: the sender's retry is heard.
    let broken = b"{\"id\": 9002,";
    let signed = webhooks::sign(WEBHOOK_SECRET, now, broken);
    for attempt in 0..2 {
        let request = Request::post("/api/webhooks/github")
            .header(header::CONTENT_TYPE, "application/json")
            .header(webhooks::SIGNATURE_HEADER, signed.clone())
            .body(HttpBody::from(&broken[..]))
            .unwrap();
        let (status, _, problem) = s.raw(request).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "attempt {attempt}: {problem}"
        );
    }
    // An entry given twice, or a signed timestamp, is malformed.
    for ambiguous in [
        format!("t={now},v1={},v1={mac}", "0".repeat(64)),
        format!("t={now},t={now},v1={mac}"),
        format!("t=+{now},v1={mac}"),
    ] {
        let (status, headers, problem) = s.raw(post(Some(ambiguous.clone()), "github")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{ambiguous}: {problem}");
        assert_problem(
            status,
            &headers,
            &problem,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    let (status, headers, problem) = s
        .raw(post(
            Some(webhooks::sign("wrong", now + 1, body.as_bytes())),
            "github",
        ))
        .await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    );
    let (status, headers, problem) = s
        .raw(post(
            Some(webhooks::sign(WEBHOOK_SECRET, now - 3600, body.as_bytes())),
            "github",
        ))
        .await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::UNAUTHORIZED,
        "signature_expired",
    );
    let (status, headers, problem) = s.raw(post(None, "github")).await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, headers, problem) = s.raw(post(Some("t=1,v1=zz".into()), "github")).await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, headers, problem) = s
        .raw(post(
            Some(webhooks::sign(WEBHOOK_SECRET, now, body.as_bytes())),
            "jira",
        ))
        .await;
    assert_problem(
        status,
        &headers,
        &problem,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, _, hits) = s
        .call("GET", "/api/search?q=webhook", Some(&s.acme), None)
        .await;
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1, "{hits}");
}

#[tokio::test]
async fn match_runs_are_jobs_and_review_decisions_need_a_pair() {
    let s = Server::start(|_| {}).await;
    s.ingest_jira(&s.acme).await;
    let (status, _, job) = s
        .call(
            "POST",
            "/api/match/runs",
            Some(&s.acme),
            Some(json!({"preset": "task-dedupe"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = s.finish_job(&s.acme, job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    // A match job queued through /api/jobs is checked as a run's body is, before it is queued.
    for (payload, want) in [
        (
            json!({"preset": "task-dedupe", "incremental": "yes"}),
            (StatusCode::UNPROCESSABLE_ENTITY, "payload"),
        ),
        (
            json!({"preset": "task-dedupe", "spec": "/etc/passwd"}),
            (StatusCode::UNPROCESSABLE_ENTITY, "payload"),
        ),
        (
            json!({"preset": "nope"}),
            (StatusCode::BAD_REQUEST, "payload.preset"),
        ),
    ] {
        let (status, _, body) = s
            .call(
                "POST",
                "/api/jobs",
                Some(&s.acme),
                Some(json!({"kind": "match", "payload": payload})),
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str().unwrap_or("")),
            want,
            "{payload}: {body}"
        );
    }
    let (status, _, queued) = s
        .call(
            "POST",
            "/api/jobs",
            Some(&s.acme),
            Some(
                json!({"kind": "match", "payload": {"preset": "task-dedupe", "incremental": true}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let done = s.finish_job(&s.acme, queued["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let (status, _, review) = s
        .call(
            "GET",
            "/api/match/review?resolver=task-dedupe",
            Some(&s.acme),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{review}");
    let (status, headers, body) = s
        .call("POST", "/api/match/review/accept", Some(&s.acme), Some(json!({"resolver": "task-dedupe", "left": "0000000000000001", "right": "0000000000000002"})))
        .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let s = Server::start(|c| c.server.rate_limit_per_minute = 10).await;
    let mut limited = None;
    for _ in 0..30 {
        let (status, headers, body) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((headers, body));
            break;
        }
    }
    let (headers, body) = limited.expect("the limit is reached within 30 requests");
    assert_eq!(body["code"], "rate_limited");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, _, _) = s.call("GET", "/api/jobs", Some(&s.initech), None).await;
    assert_eq!(status, StatusCode::OK, "limits are per key");

    // Below 10 a minute, the burst is the minute's whole budget, not 10.
    let s = Server::start(|c| c.server.rate_limit_per_minute = 3).await;
    for n in 1..=3 {
        let (status, _, body) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
        assert_eq!(status, StatusCode::OK, "request {n}: {body}");
    }
    let (status, _, _) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Whether tests may skip what needs a server or the test model: only with
/// `OPSWEAVE_REQUIRE_SERVERS` unset (the project's test command sets it).
fn skip_or_fail(test: &str, what: &str) {
    assert!(
        std::env::var_os("OPSWEAVE_REQUIRE_SERVERS").is_none(),
        "{test}: {what} is not set but OPSWEAVE_REQUIRE_SERVERS is"
    );
    eprintln!("\n*** SKIPPED {test}: {what} is not set ***\n");
}

/// The real test embedding model (`onnx:DIR`), from
/// `eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"`.
fn test_model(test: &str) -> Option<String> {
    match (
        std::env::var("OPSWEAVE_TEST_MODEL_DIR"),
        std::env::var_os("ORT_DYLIB_PATH"),
    ) {
        (Ok(dir), Some(_)) if !dir.trim().is_empty() => Some(format!("onnx:{dir}")),
        _ => {
            skip_or_fail(test, "OPSWEAVE_TEST_MODEL_DIR (or ORT_DYLIB_PATH)");
            None
        }
    }
}

/// Opens a job's event stream over the socket.
async fn open_events(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    id: i64,
) -> reqwest::Response {
    let events = client
        .get(format!("{base}/api/jobs/{id}/events"))
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    events
}

/// The next piece of a job's event stream (`None` at its end), bounded in time so that a
/// stream that never ends fails the test instead of hanging it.
async fn next_chunk(events: &mut reqwest::Response, id: i64, seen: &str) -> Option<String> {
    tokio::time::timeout(std::time::Duration::from_secs(120), events.chunk())
        .await
        .unwrap_or_else(|_| panic!("job {id}'s stream stalled: {seen}"))
        .unwrap()
        .map(|chunk| String::from_utf8_lossy(&chunk).into_owned())
}

/// Follows a job's event stream over the socket to its end: the text and how many chunks it
/// arrived in.
async fn follow(client: &reqwest::Client, base: &str, auth: &str, id: i64) -> (String, usize) {
    let mut events = open_events(client, base, auth, id).await;
    let mut seen = String::new();
    let mut chunks = 0;
    while let Some(chunk) = next_chunk(&mut events, id, &seen).await {
        chunks += 1;
        seen.push_str(&chunk);
    }
    (seen, chunks)
}

/// A memory note stored, found, changed and forgotten through the API with the real test model;
/// another org can neither change nor forget it, and a record that is not a memory is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_notes_are_changed_and_forgotten_over_http() {
    let Some(model) = test_model("memory_notes_are_changed_and_forgotten_over_http") else {
        return;
    };
    let s = Server::start(|c| c.embed.model = Some(model)).await;
    // The nearest memory note to "watering plants", as acme sees it.
    let nearest_note = || async {
        let query = json!({"query": "watering plants", "options": {"mode": "dense", "k": 1, "source_kinds": ["memory"]}});
        let (status, _, hits) = s
            .call("POST", "/api/recall", Some(&s.acme), Some(query))
            .await;
        assert_eq!(status, StatusCode::OK, "{hits}");
        hits["hits"].clone()
    };
    let (status, _, made) = s
        .call(
            "POST",
            "/api/memory",
            Some(&s.acme),
            Some(
                json!({"text": "Globex wants the migration invoiced in euros", "tags": ["globex"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let uri = format!("/api/memory/{id}");

    let (status, _, changed) = s
        .call(
            "PUT",
            &uri,
            Some(&s.acme),
            Some(json!({"text": "The office plants need water on Mondays"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["id"], id.as_str());
    assert!(
        changed.to_string().contains("plants") && !changed.to_string().contains("euros"),
        "{changed}"
    );
    // Tags left out are kept.
    assert!(changed.to_string().contains("globex"), "{changed}");
    let hits = nearest_note().await;
    assert_eq!(hits[0]["id"], id.as_str(), "{hits}");

    // Another org's key, and a key of this org limited to one client: the org-wide note does not
    // exist for either.
    let (globex, _) = s
        .state
        .weave
        .create_key(
            "globex member",
            Scope::org("acme").with_client("globex"),
            Role::Member,
            None,
        )
        .await
        .unwrap();
    for key in [&s.initech, &globex] {
        let (status, headers, body) = s
            .call("PUT", &uri, Some(key), Some(json!({"text": "mine now"})))
            .await;
        assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
        let (status, headers, body) = s.call("DELETE", &uri, Some(key), None).await;
        assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    }
    // Empty text, and an id that is a task, not a memory: refused, the note unchanged.
    let (status, headers, body) = s
        .call("PUT", &uri, Some(&s.acme), Some(json!({"text": "  "})))
        .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_eq!(body["field"], "text", "{body}");
    s.ingest_jira(&s.acme).await;
    let task = s.first_task(&s.acme).await;
    let (status, headers, body) = s
        .call(
            "DELETE",
            &format!("/api/memory/{task}"),
            Some(&s.acme),
            None,
        )
        .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    let (status, _, _) = s
        .call("GET", &format!("/api/records/{task}"), Some(&s.acme), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, body) = s.call("DELETE", &uri, Some(&s.acme), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, headers, body) = s
        .call("GET", &format!("/api/records/{id}"), Some(&s.acme), None)
        .await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
    let hits = nearest_note().await;
    assert_eq!(hits, json!([]), "{hits}");
    let (status, headers, body) = s.call("DELETE", &uri, Some(&s.acme), None).await;
    assert_problem(status, &headers, &body, StatusCode::NOT_FOUND, "not_found");
}

/// Over a real socket, with the server's own workers: upload a file, follow the job's events to
/// the end, see the tasks, complete and undo one; then embed the records with the real test
/// model as an `embed` job and find its tokens in the org's usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_over_a_socket() {
    let model = test_model("end_to_end_over_a_socket");
    let s = Server::start(|c| c.embed.model = model.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio::sync::watch::channel(false);
    let app = s.app();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", s.acme);

    let boundary = "opsweave-test-boundary";
    let mut form = String::new();
    form.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"preset\"\r\n\r\nodoo-crm-lead\r\n"
    ));
    form.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"odoo.csv\"\r\nContent-Type: text/csv\r\n\r\n{ODOO}\r\n"));
    form.push_str(&format!("--{boundary}--\r\n"));
    let job: Value = client
        .post(format!("{base}/api/ingest"))
        .header("authorization", &auth)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_i64().unwrap_or_else(|| panic!("{job}"));
    // The stream tells the queued state before any worker runs, then the rest as it happens:
    // the workers start only once that first piece has arrived.
    let mut events = open_events(&client, &base, &auth, id).await;
    let mut seen = next_chunk(&mut events, id, "").await.unwrap();
    assert!(seen.contains("event: queued"), "{seen}");
    let workers = workers::spawn(s.state.clone(), 1, stop.1.clone());
    while let Some(chunk) = next_chunk(&mut events, id, &seen).await {
        seen.push_str(&chunk);
    }
    assert!(seen.contains("event: done"), "{seen}");

    let tasks: Value = client
        .get(format!("{base}/api/tasks?horizon=today&now={SAMPLE_DAY}"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = tasks["tasks"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{tasks}"))
        .to_string();
    for (action, want) in [("complete", "done"), ("undo", "todo")] {
        let response = client
            .post(format!("{base}/api/tasks/{task}/{action}"))
            .header("authorization", &auth)
            .header("x-request-id", format!("e2e-{action}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-request-id"],
            format!("e2e-{action}").as_str()
        );
        let body: Value = response.json().await.unwrap();
        if action == "complete" {
            assert_eq!(body["status"], want, "{body}");
        } else {
            assert_ne!(body["status"], "done", "{body}");
        }
    }

    if model.is_some() {
        // Embedding runs as a job on the server's model; each model call is metered to the org.
        let response = client
            .post(format!("{base}/api/jobs"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .header("idempotency-key", "e2e-embed")
            .body(json!({ "kind": "embed" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let job: Value = response.json().await.unwrap();
        let id = job["id"].as_i64().unwrap_or_else(|| panic!("{job}"));
        let (seen, _) = follow(&client, &base, &auth, id).await;
        assert!(seen.contains("event: done"), "{seen}");
        let job: Value = client
            .get(format!("{base}/api/jobs/{id}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let report: Value = serde_json::from_str(job["message"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {job}"));
        let tokens = report["tokens"].as_u64().unwrap();
        let calls = report["calls"].as_u64().unwrap();
        assert!(report["embedded"].as_u64().unwrap() > 0, "{report}");
        assert!(tokens > 0 && calls > 0, "{report}");

        let usage: Value = client
            .get(format!("{base}/api/usage?group_by=model"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let totals = usage["totals"].as_array().unwrap();
        assert_eq!(totals.len(), 1, "only the embedding model ran: {usage}");
        assert_eq!(totals[0]["model"], report["model"], "{usage}");
        assert_eq!(totals[0]["embedding_tokens"], tokens, "{usage} vs {report}");
        assert_eq!(totals[0]["calls"], calls, "{usage} vs {report}");
        let by_org: Value = client
            .get(format!("{base}/api/usage?group_by=org"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(by_org["totals"][0]["key"], "acme", "{by_org}");
        assert_eq!(by_org["totals"][0]["embedding_tokens"], tokens, "{by_org}");
        let other: Value = client
            .get(format!("{base}/api/usage?group_by=org"))
            .header("authorization", format!("Bearer {}", s.initech))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            other["totals"],
            json!([]),
            "acme's usage is acme's: {other}"
        );
    }

    let _ = stop.0.send(true);
    for worker in workers {
        worker.await.unwrap();
    }
    server.abort();
}

#[tokio::test]
async fn idempotency_key_header_or_body_and_embed_jobs_need_a_model() {
    let s = Server::start(|_| {}).await;
    let post = |key: Option<&str>, body: Value| {
        let mut request = Request::post("/api/jobs")
            .header(header::AUTHORIZATION, format!("Bearer {}", s.acme))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.body(HttpBody::from(body.to_string())).unwrap()
    };
    let (status, _, first) = s
        .raw(post(
            Some("h-1"),
            json!({"kind": "agent", "payload": {"n": 1}}),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["idempotency_key"], "h-1");
    let (_, _, again) = s
        .raw(post(
            Some("h-1"),
            json!({"kind": "agent", "payload": {"n": 1}}),
        ))
        .await;
    assert_eq!(
        again["id"], first["id"],
        "the same header key: the same job"
    );
    let (_, _, same) = s
        .raw(post(
            Some("h-1"),
            json!({"kind": "agent", "payload": {"n": 1}, "idempotency_key": "h-1"}),
        ))
        .await;
    assert_eq!(same["id"], first["id"], "header and body agreeing is fine");
    let (_, _, by_body) = s
        .raw(post(
            None,
            json!({"kind": "agent", "payload": {"n": 1}, "idempotency_key": "h-1"}),
        ))
        .await;
    assert_eq!(by_body["id"], first["id"], "the body's key is the same key");
    // The key reused for another job is a conflict, not the first job passed off as this one.
    for other in [
        json!({"kind": "agent", "payload": {"n": 2}}),
        json!({"kind": "noop", "payload": {"n": 1}}),
    ] {
        let (status, headers, body) = s.raw(post(Some("h-1"), other)).await;
        assert_problem(status, &headers, &body, StatusCode::CONFLICT, "conflict");
        assert_eq!(body["field"], "idempotency_key", "{body}");
    }
    let (status, headers, body) = s
        .raw(post(
            Some("h-2"),
            json!({"kind": "agent", "idempotency_key": "h-3"}),
        ))
        .await;
    assert_problem(
        status,
        &headers,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid_input",
    );
    assert_eq!(body["field"], "idempotency_key", "{body}");

    // The header works on ingest too.
    let issues: Value = serde_json::from_str::<Value>(JIRA).unwrap()["issues"].clone();
    let ingest = || {
        Request::post("/api/ingest")
            .header(header::AUTHORIZATION, format!("Bearer {}", s.acme))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "upload-1")
            .body(HttpBody::from(
                json!({"preset": "jira-issue", "rows": issues}).to_string(),
            ))
            .unwrap()
    };
    let (status, _, one) = s.raw(ingest()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{one}");
    let (_, _, two) = s.raw(ingest()).await;
    assert_eq!(one["id"], two["id"]);

    // No model here: an embed job must name one (for an external worker), and a valid one.
    for (payload, field) in [
        (json!({}), "payload.model"),
        (json!({"model": "tfidf:x"}), "payload.model"),
        (json!({"model": 7}), "payload.model"),
        (json!({"model": "onnx:x", "batch": 9}), "payload"),
        (json!([1]), "payload"),
    ] {
        let (status, headers, body) = s
            .raw(post(None, json!({"kind": "embed", "payload": payload})))
            .await;
        assert_problem(
            status,
            &headers,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        );
        assert_eq!(body["field"], field, "{payload}: {body}");
    }
    let (status, _, queued) = s
        .raw(post(
            None,
            json!({"kind": "embed", "payload": {"model": "openai:text-embedding-3-small"}}),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let (_, _, jobs) = s.call("GET", "/api/jobs", Some(&s.acme), None).await;
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        3,
        "agent, ingest and embed jobs, each once: {jobs}"
    );

    // A server with a model embeds with it only.
    let with_model = Server::start(|c| c.embed.model = Some("onnx:all-minilm-l6-v2".into())).await;
    let (status, _, body) = with_model
        .call(
            "POST",
            "/api/jobs",
            Some(&with_model.acme),
            Some(json!({"kind": "embed", "payload": {"model": "openai:other"}})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("payload.model")),
        "{body}"
    );
    let (status, _, job) = with_model
        .call(
            "POST",
            "/api/jobs",
            Some(&with_model.acme),
            Some(json!({"kind": "embed"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");

    // A server whose model is a folder does not tell callers where that folder is.
    let in_folder =
        Server::start(|c| c.embed.model = Some("onnx:/srv/private-models/minilm".into())).await;
    let (status, _, body) = in_folder
        .call(
            "POST",
            "/api/jobs",
            Some(&in_folder.acme),
            Some(json!({"kind": "embed", "payload": {"model": "onnx:all-minilm-l6-v2"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("/srv/private-models") && detail.contains("leave payload.model out"),
        "{detail}"
    );
}

/// A TCP relay in front of a server that can be cut (connections go silent, new ones are
/// accepted and never answered, as on a network partition) and restored (the silent ones are
/// closed, new ones relayed).
struct Proxy {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, _) = tokio::sync::watch::channel(true);
        let watch = up.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut state = watch.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    if *state.borrow_and_update() {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                            return;
                        };
                        // Biased, the cut first: a request sent after the cut must never be
                        // relayed (an unbiased select picks a ready branch at random, and the
                        // relay sometimes forwarded the readiness ping of a cut store).
                        tokio::select! {
                            biased;
                            _ = state.wait_for(|up| !*up) => {}
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                        }
                        // Cut: hold both ends open and silent until restored, then close them.
                        let _ = state.wait_for(|up| *up).await;
                    } else {
                        let _ = state.wait_for(|up| *up).await;
                    }
                });
            }
        });
        Self { addr, up, task }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `/readyz` on PostgreSQL through a proxy: 200, 503 naming the store once the proxy is cut
/// (answered, not hung on the pool), 200 again once it is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_postgres_through_a_cut_and_a_restore() {
    let test = "readyz_follows_postgres_through_a_cut_and_a_restore";
    let url = match std::env::var("OPSWEAVE_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            skip_or_fail(test, "OPSWEAVE_TEST_POSTGRES_URL");
            return;
        }
    };
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let target = format!("{}:{}", options.get_host(), options.get_port());
    let proxy = Proxy::start(target.clone()).await;
    assert!(url.contains(&target), "{url} names {target}");
    let proxied = url.replacen(&target, &proxy.addr.to_string(), 1);
    let weave = Weave::open_with(Config {
        db: proxied,
        ..Config::default()
    })
    .await
    .unwrap();
    let app = app(AppState::new(weave).unwrap());
    let ready = || async {
        let request = Request::get("/readyz").body(HttpBody::empty()).unwrap();
        // Far above the readiness check's own limit: a hang fails here instead of stalling.
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            app.clone().oneshot(request),
        )
        .await
        .expect("/readyz answers instead of hanging")
        .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        (status, headers, body)
    };
    let (status, _, body) = ready().await;
    assert_eq!(status, StatusCode::OK, "{body}");

    proxy.set_up(false);
    let (status, headers, body) = ready().await;
    assert_not_ready(status, &headers, &body, "postgres store");
    assert!(
        !body.to_string().contains(&proxy.addr.to_string()),
        "the store's address is not shown to unauthenticated callers: {body}"
    );

    proxy.set_up(true);
    let mut last = Value::Null;
    for _ in 0..50 {
        let (status, _, body) = ready().await;
        if status == StatusCode::OK {
            return;
        }
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("/readyz did not recover once the store was back: {last}");
}

#[tokio::test]
async fn a_job_api_shows_an_internal_failure_without_its_details() {
    let s = Server::start(|_| {}).await;
    let queue = s.state.weave.jobs().unwrap().clone();
    let mut failed = Vec::new();
    for error in [
        opsweave::Error::internal("sqlite: disk I/O error at /var/lib/opsweave/secret.db"),
        opsweave::Error::invalid("sleep job: ms must be at most 3600000").on_field("ms"),
    ] {
        let (status, _, job) = s
            .call(
                "POST",
                "/api/jobs",
                Some(&s.acme),
                Some(json!({"kind": "agent", "payload": {}})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        let claimed = queue
            .claim("test-worker", &[], std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id.0, job["id"].as_i64().unwrap());
        let stored = queue
            .fail_with(claimed.id, "test-worker", &error)
            .await
            .unwrap();
        assert_eq!(stored.error.as_deref(), Some(error.to_string().as_str()));
        let (_, _, shown) = s
            .call(
                "GET",
                &format!("/api/jobs/{}", claimed.id.0),
                Some(&s.acme),
                None,
            )
            .await;
        failed.push(shown["error"].as_str().unwrap().to_string());
    }
    // The record keeps the cause for the operator; the API names the job, not the path.
    assert!(
        failed[0].starts_with("internal error:") && !failed[0].contains("/var/lib"),
        "{}",
        failed[0]
    );
    assert!(failed[0].contains("worker"), "{}", failed[0]);
    // The caller's own mistakes are told in full.
    assert!(failed[1].contains("ms must be at most"), "{}", failed[1]);
}

#[tokio::test]
async fn a_metrics_token_guards_the_metrics() {
    let s =
        Server::start(|c| c.server.metrics_token = Some(opsweave::Secret::new("scrape-me"))).await;
    let acme = s.acme.clone();
    for key in [None, Some("scrape-you"), Some(acme.as_str())] {
        let (status, headers, body) = s.call("GET", "/metrics", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}: {body}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(
            body["detail"].as_str().unwrap().contains("metrics token"),
            "{body}"
        );
    }
    let (status, _, text) = s.call("GET", "/metrics", Some("scrape-me"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.as_str().unwrap().contains("opsweave_job_queue_depth"),
        "{text}"
    );
    // Health checks stay open; an empty token is refused before the server starts.
    let (status, _, _) = s.call("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let server = opsweave::ServerConfig {
        metrics_token: Some(opsweave::Secret::new("  ")),
        ..opsweave::ServerConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let weave = Weave::open_with(Config {
        db: format!("sqlite://{}", dir.path().join("other.db").display()),
        server,
        ..Config::default()
    })
    .await
    .unwrap();
    let err = AppState::new(weave).err().unwrap();
    assert_eq!(
        err.location().field.as_deref(),
        Some("server.metrics_token"),
        "{err}"
    );
}

mod caching;
mod hardening;
