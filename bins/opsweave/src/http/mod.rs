//! `opsweave serve`: the HTTP service over a [`Weave`]. [`app`] builds the whole router, so tests
//! drive it in-process; [`serve`] binds a socket, makes the first admin key on a fresh store,
//! starts the in-process job workers and serves until Ctrl-C.

mod auth;
mod jobs;
mod matching;
mod metering;
mod metrics;
mod openapi;
mod problem;
mod recall;
mod tasks;
mod webhooks;
mod workers;

pub use metrics::Metrics;
pub use problem::Problem;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use opsweave::{MemoryRateLimiter, RateLimiter, Result, Scope, ServerConfig, Weave, WebhookConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The shared parts of [`AppState`].
pub struct Shared {
    /// The store and everything on it.
    pub weave: Weave,
    /// Per-key request limits (shared on Redis when `redis` is configured).
    pub limiter: Arc<dyn RateLimiter>,
    /// The limits each key gets, for reads and for writes.
    pub rate_limits: auth::RateLimits,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Whether `X-Dev-User` is trusted.
    pub dev_mode: bool,
    /// The org dev-mode requests act in.
    pub dev_org: String,
    /// Webhook sources by name.
    pub webhooks: BTreeMap<String, WebhookConfig>,
    /// The SHA-256 of the token `GET /metrics` asks for, when one is configured.
    pub metrics_token: Option<metrics::TokenDigest>,
    /// Webhook signatures seen inside their replay window.
    pub seen_signatures: webhooks::SeenSignatures,
    /// Wakes in-process workers when a job is queued here.
    pub job_queued: tokio::sync::Notify,
    /// JSON bodies of recent focus answers, written once per answer.
    pub focus_bodies: tasks::FocusBodies,
    /// Set when the server shuts down: open event streams end, so the shutdown does not wait
    /// for jobs that may never finish.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State for `weave` with its configuration's `[server]` settings: the handle's shared rate
    /// limiter (Redis, when configured) or else an in-process one.
    pub fn new(weave: Weave) -> Result<Self> {
        let limiter: Arc<dyn RateLimiter> = match weave.rate_limiter() {
            Some(shared) => shared.clone(),
            None => Arc::new(MemoryRateLimiter::new()),
        };
        Self::with_limiter(weave, limiter)
    }

    /// State with another rate limiter. Turns on the handle's focus and key caches as
    /// `server.focus_cache_secs` and `server.key_cache_secs` say.
    pub fn with_limiter(weave: Weave, limiter: Arc<dyn RateLimiter>) -> Result<Self> {
        let server = weave.config().server.clone();
        check_settings(&server)?;
        let weave = weave
            .with_focus_cache(Duration::from_secs(server.focus_cache_secs))
            .with_key_cache(Duration::from_secs(server.key_cache_secs));
        let rate_limits = auth::RateLimits::new(&server)?;
        for (name, hook) in &server.webhooks {
            opsweave::preset(&hook.preset)
                .map_err(|e| e.on_field(format!("server.webhooks.{name}.preset")))?;
            hook.scope.validate()?;
            // An empty key signs for anyone who reads this code.
            if hook.secret.expose().trim().is_empty() {
                return Err(opsweave::Error::invalid(format!(
                    "webhook `{name}` has an empty secret: set the secret its sender signs with"
                ))
                .on_field(format!("server.webhooks.{name}.secret")));
            }
        }
        // The signature covers the body, not the source it is sent to: two sources with one
        // secret would each accept the other's deliveries, into their own scope and preset.
        let mut secrets: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, hook) in &server.webhooks {
            if let Some(other) = secrets.insert(hook.secret.expose(), name) {
                return Err(opsweave::Error::invalid(format!(
                    "webhooks `{other}` and `{name}` have the same secret: a delivery signed for                      one would be accepted by the other; give each source its own secret"
                ))
                .on_field(format!("server.webhooks.{name}.secret")));
            }
        }
        // A configured secret key must be usable before the server starts (the connectors use it).
        server
            .secret_key
            .as_ref()
            .map(|key| opsweave::SecretBox::from_hex(key.expose()))
            .transpose()
            .map_err(|e| e.on_field("server.secret_key"))?;
        let metrics_token = server
            .metrics_token
            .as_ref()
            .map(metrics::TokenDigest::of)
            .transpose()?;
        Ok(Self(Arc::new(Shared {
            weave,
            limiter,
            rate_limits,
            metrics: Metrics::new()?,
            dev_mode: server.dev_mode,
            dev_org: server.dev_org,
            webhooks: server.webhooks,
            metrics_token,
            seen_signatures: webhooks::SeenSignatures::default(),
            job_queued: tokio::sync::Notify::new(),
            focus_bodies: tasks::FocusBodies::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        })))
    }
}

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let server = state.weave.config().server.clone();
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/tasks", get(tasks::list_tasks))
        .route("/api/tasks/{id}/complete", post(tasks::complete))
        .route("/api/tasks/{id}/undo", post(tasks::undo))
        .route("/api/records/{id}", get(tasks::record))
        .route("/api/search", get(tasks::search))
        .route("/api/recall", post(recall::recall))
        .route("/api/memory", post(recall::remember))
        .route(
            "/api/memory/{id}",
            put(recall::update_memory).delete(recall::forget),
        )
        .route("/api/graph", get(tasks::graph))
        .route("/api/graph/filters", get(tasks::graph_filters))
        .route("/api/match/runs", post(matching::start_run))
        .route("/api/match/review", get(matching::review))
        .route("/api/match/review/accept", post(matching::accept))
        .route("/api/match/review/reject", post(matching::reject))
        .route("/api/jobs", post(jobs::enqueue).get(jobs::list))
        .route("/api/jobs/{id}", get(jobs::get_job))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/ingest", post(jobs::ingest))
        .route("/api/webhooks/{source}", post(webhooks::receive))
        .route("/api/usage/events", post(metering::record_events))
        .route("/api/usage", get(metering::totals))
        .route(
            "/api/keys",
            post(metering::create_key).get(metering::list_keys),
        )
        .route("/api/keys/{id}/revoke", post(metering::revoke_key))
        .route("/openapi.json", get(openapi::spec))
        .merge(openapi::docs())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(server.request_timeout_secs),
        ));
    // Event streams live as long as their job, so they are outside the request timeout.
    let streams = Router::new().route("/api/jobs/{id}/events", get(jobs::events));
    let request_id = HeaderName::from_static("x-request-id");
    api.merge(streams)
        .fallback(problem::no_route)
        .layer(axum::middleware::map_response(problem::as_problem))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(cors(&server.cors_origins))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(
            |request: &axum::http::Request<axum::body::Body>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // Method, path and request id only: headers (keys) and query strings stay out of logs.
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            },
        ))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(sane_request_id))
        .with_state(state)
}

/// The longest `X-Request-ID` kept from a client (a UUID is 36 bytes).
const MAX_REQUEST_ID_BYTES: usize = 128;

/// Drops a client's `X-Request-ID` that is long, repeated, or not visible ASCII, so that the
/// server makes its own: the id goes into every log line of the request and back out.
async fn sane_request_id(
    mut request: axum::http::Request<axum::body::Body>,
) -> axum::http::Request<axum::body::Body> {
    let mut given = request.headers().get_all("x-request-id").iter();
    let sane = match (given.next(), given.next()) {
        (Some(id), None) => {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_BYTES
                && id.as_bytes().iter().all(u8::is_ascii_graphic)
        }
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !sane {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// Refuses `[server]` settings that would start a server unable to do its job (a body limit no
/// request fits under, a zero timeout, an origin no browser ever sends) instead of starting it.
fn check_settings(server: &ServerConfig) -> opsweave::Result<()> {
    let bad = |field: &str, message: String| {
        Err(opsweave::Error::invalid(message).on_field(format!("server.{field}")))
    };
    if server.max_body_bytes < 1024 {
        return bad(
            "max_body_bytes",
            format!(
                "{} bytes is below any request's size: give at least 1024 (default 16777216)",
                server.max_body_bytes
            ),
        );
    }
    if !(1..=86_400).contains(&server.request_timeout_secs) {
        return bad(
            "request_timeout_secs",
            format!(
                "{} s: give 1 to 86400 seconds (default 30)",
                server.request_timeout_secs
            ),
        );
    }
    if server.rate_limit_per_minute == 0 {
        return bad(
            "rate_limit_per_minute",
            "0 would refuse every request: give at least 1 (there is no unlimited setting; a \
             large number such as 1000000 is one)"
                .into(),
        );
    }
    if server.workers > 256 {
        return bad(
            "workers",
            format!(
                "{} in-process workers: give 0 to 256 (run `opsweave worker` processes for more)",
                server.workers
            ),
        );
    }
    if let Err(e) = Scope::org(server.dev_org.clone()).validate() {
        return bad("dev_org", format!("not an org name: {e}"));
    }
    for origin in &server.cors_origins {
        if origin != "*" && !is_origin(origin) {
            return bad(
                "cors_origins",
                format!(
                    "`{origin}` is not an origin: give scheme://host[:port] as browsers send it \
                     (no path, no trailing slash), or `*` for any"
                ),
            );
        }
    }
    for (name, hook) in &server.webhooks {
        if !(1..=86_400).contains(&hook.replay_window_secs) {
            return bad(
                &format!("webhooks.{name}.replay_window_secs"),
                format!(
                    "{} s: give 1 to 86400 seconds (default 300)",
                    hook.replay_window_secs
                ),
            );
        }
    }
    Ok(())
}

/// True for `scheme://host[:port]` with nothing after it, the form of an `Origin` header (any
/// scheme: browser extensions and app webviews send their own, e.g. `chrome-extension://ID`).
fn is_origin(text: &str) -> bool {
    let Ok(uri) = text.parse::<axum::http::Uri>() else {
        return false;
    };
    let Some((_, rest)) = text.split_once("://") else {
        return false;
    };
    uri.scheme_str().is_some()
        && uri.authority().is_some_and(|a| !a.host().is_empty())
        && !rest.contains(['/', '?', '#', '@'])
        && HeaderValue::from_str(text).is_ok()
}

fn cors(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id")])
}

/// A probe's answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` (the process is up) or `ready` (its store answers).
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long readiness waits for the store: well under a probe's usual timeout, so a store that
/// hangs (a partition, a pool waiting for a connection) reads as not ready instead of stalling.
const READY_WITHIN: Duration = Duration::from_secs(2);

/// The store and, when one is configured, the shared cache answer (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "ready", body = Health),
    (status = 503, description = "the store or the shared cache does not answer", body = Problem, content_type = "application/problem+json")
))]
pub async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let ready = || Json(Health { status: "ready" }).into_response();
    // The kind of store only: its address stays out of an unauthenticated answer.
    let db = state.weave.config().db.trim();
    let store = match db.split_once("://").map_or("sqlite", |(scheme, _)| scheme) {
        "postgres" | "postgresql" => "postgres",
        "sqlite" => "sqlite",
        _ => "database",
    };
    let ping = tokio::time::timeout(READY_WITHIN, state.weave.ping()).await;
    let detail = match ping {
        Ok(Ok(())) => match state.weave.cache() {
            // The shared cache too: its reads fall back to misses, so only a ping tells.
            Some(cache) => match tokio::time::timeout(READY_WITHIN, cache.ping()).await {
                Ok(Ok(())) => return ready(),
                Ok(Err(e)) => format!("the redis cache does not answer: {}", e.message()),
                Err(_) => format!(
                    "the redis cache did not answer within {} s",
                    READY_WITHIN.as_secs()
                ),
            },
            None => return ready(),
        },
        Ok(Err(e)) => format!("the {store} store does not answer: {}", e.message()),
        Err(_) => format!(
            "the {store} store did not answer within {} s",
            READY_WITHIN.as_secs()
        ),
    };
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "Not ready",
        detail,
    )
    .into_response()
}

/// Binds `addr`, prepares the store (a first admin key when there is none) and serves until
/// Ctrl-C, with the configured number of in-process workers running queued jobs.
pub async fn serve(weave: Weave, addr: &str) -> Result<()> {
    init_logging();
    let server = weave.config().server.clone();
    if server.dev_mode {
        let banner = "!".repeat(78);
        eprintln!(
            "{banner}\n!! DEV MODE: requests with an `X-Dev-User` header act as admin of org `{}`\n!! WITHOUT A KEY. Never expose this server to anyone else.\n{banner}",
            server.dev_org
        );
        tracing::warn!(org = %server.dev_org, "dev mode: X-Dev-User is trusted without a key");
    }
    let closing = weave.clone();
    let state = AppState::new(weave)?;
    auth::log_rate_limits(&state);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        opsweave::Error::invalid(format!("cannot listen on {addr}: {e}")).on_field("addr")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| opsweave::Error::internal(format!("no local address: {e}")))?;
    // After the settings are checked and the address bound: a start that fails makes no key.
    if state.weave.key_count().await? == 0 {
        let scope = state.weave.default_scope();
        let (secret, key) = state
            .weave
            .create_key(
                "first admin",
                opsweave::Scope::org(scope.org.clone()),
                opsweave::Role::Admin,
                None,
            )
            .await?;
        // Shown once, on the terminal only (never logged): store it now.
        eprintln!(
            "First start: an admin key for org `{}` (id {}). It is shown only now:\n\n    {secret}\n",
            scope.org, key.id
        );
    }
    let stop = tokio::sync::watch::channel(false);
    let workers = workers::spawn(state.clone(), server.workers, stop.1.clone());
    tracing::info!(%local, workers = server.workers, "listening");
    eprintln!("opsweave serve: listening on http://{local} (docs at /docs)");
    let stopping = state.clone();
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            stopping.stopping.send_replace(true);
        })
        .await
        .map_err(|e| opsweave::Error::unavailable(format!("server stopped: {e}")));
    let _ = stop.0.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    closing.close().await;
    result
}

/// JSON logs on stderr; `RUST_LOG` filters them (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests;
