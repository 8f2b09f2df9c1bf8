//! Prometheus metrics: request latency per route, job durations, queue depth, model calls and
//! tokens, at `GET /metrics` in the text format.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opsweave::{JobStatus, Result};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Instant;

/// The metrics of one server.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Request latency by method, route and status.
    pub requests: HistogramVec,
    /// Job run time by kind and outcome (in-process workers).
    pub job_seconds: HistogramVec,
    /// Jobs queued through this server, by kind.
    pub jobs_enqueued: IntCounterVec,
    /// Jobs of the dev org's queue by status, read at scrape time.
    pub queue_depth: IntGaugeVec,
    /// Model call latency by operation and model (reported usage).
    pub model_seconds: HistogramVec,
    /// Tokens by kind and model (reported usage).
    pub tokens: IntCounterVec,
    /// Labels of the model names callers report.
    pub models: LabelSet,
    /// Labels of the job kinds callers queue.
    pub kinds: LabelSet,
}

/// Distinct values of one caller-named label that get a label of their own; later ones are
/// counted under `other`.
const MAX_LABEL_VALUES: usize = 64;

/// The values a caller-named label has taken: each new one is a series kept for the life of
/// the process, so there are at most [`MAX_LABEL_VALUES`].
#[derive(Clone, Default)]
pub struct LabelSet(std::sync::Arc<std::sync::Mutex<HashSet<String>>>);

impl LabelSet {
    /// The label `value` is counted under: itself, or `other` once the set is full.
    pub fn label(&self, value: &str) -> String {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() >= MAX_LABEL_VALUES {
            return "other".to_string();
        }
        seen.insert(value.to_string());
        value.to_string()
    }
}

fn internal(e: prometheus::Error) -> opsweave::Error {
    opsweave::Error::internal(format!("metrics: {e}"))
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "opsweave_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["method", "route", "status"],
        )
        .map_err(internal)?;
        let job_seconds = HistogramVec::new(
            HistogramOpts::new(
                "opsweave_job_duration_seconds",
                "Job run time in this process",
            )
            .buckets(vec![0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0]),
            &["kind", "outcome"],
        )
        .map_err(internal)?;
        let jobs_enqueued = IntCounterVec::new(
            Opts::new(
                "opsweave_jobs_enqueued_total",
                "Jobs queued through this server",
            ),
            &["kind"],
        )
        .map_err(internal)?;
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "opsweave_job_queue_depth",
                "Open jobs by status (queued, running) in the default org's queue",
            ),
            &["status"],
        )
        .map_err(internal)?;
        let model_seconds = HistogramVec::new(
            HistogramOpts::new(
                "opsweave_model_call_duration_seconds",
                "Model call latency (reported usage)",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["operation", "model"],
        )
        .map_err(internal)?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "opsweave_model_tokens_total",
                "Tokens of model calls (reported usage)",
            ),
            &["kind", "model"],
        )
        .map_err(internal)?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(job_seconds.clone()),
            Box::new(jobs_enqueued.clone()),
            Box::new(queue_depth.clone()),
            Box::new(model_seconds.clone()),
            Box::new(tokens.clone()),
        ] {
            registry.register(collector).map_err(internal)?;
        }
        Ok(Self {
            registry,
            requests,
            job_seconds,
            jobs_enqueued,
            queue_depth,
            model_seconds,
            tokens,
            models: LabelSet::default(),
            kinds: LabelSet::default(),
        })
    }
}

/// Times every request under its route template (never the raw path: ids would explode the labels).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The SHA-256 of the metrics token: requests are checked by comparing digests, so the time a
/// comparison takes says nothing about how much of the token a guess got right.
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of a configured token; an empty one is refused (it would let anyone in).
    pub fn of(token: &opsweave::Secret) -> opsweave::Result<Self> {
        let token = token.expose().trim();
        if token.is_empty() {
            return Err(opsweave::Error::invalid(
                "the metrics token is empty: set a secret, or leave it out to serve /metrics \
                 without one",
            )
            .on_field("server.metrics_token"));
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `headers` carry `Authorization: Bearer TOKEN`.
    fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                <[u8; 32]>::from(Sha256::digest(given.trim().as_bytes())) == self.0
            })
    }
}

/// The metrics in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "health", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain"),
    (status = 401, description = "A metrics token is configured and the request does not carry it as `Authorization: Bearer TOKEN`", body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        if !token.admits(&headers) {
            return super::Problem::unauthorized(
                "/metrics needs the configured metrics token as `Authorization: Bearer TOKEN`",
            )
            .into_response();
        }
    }
    if let Some(queue) = state.weave.jobs() {
        let scope = opsweave::Scope::org(state.dev_org.clone());
        if let Ok(open) = queue.count_open(&scope, &[]).await {
            for (status, n) in [
                (JobStatus::Queued, open.queued),
                (JobStatus::Running, open.running),
            ] {
                state
                    .metrics
                    .queue_depth
                    .with_label_values(&[status.as_str()])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
    let mut buffer = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&state.metrics.registry.gather(), &mut buffer) {
        return super::Problem::from(internal(e)).into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buffer,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_named_labels_are_bounded() {
        let metrics = Metrics::new().unwrap();
        for n in 0..MAX_LABEL_VALUES {
            assert_eq!(metrics.models.label(&format!("m{n}")), format!("m{n}"));
        }
        assert_eq!(metrics.models.label("one more"), "other");
        assert_eq!(
            metrics.models.label("m3"),
            "m3",
            "known names keep their label"
        );
        assert_eq!(
            metrics.kinds.label("ingest"),
            "ingest",
            "kinds are counted apart"
        );
    }
}
