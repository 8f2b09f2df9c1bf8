//! Matching: start a resolver run (a `match` job), list the review band, accept or reject pairs.

use super::auth::Caller;
use super::jobs::MATCH_JOB;
use super::problem::{ApiResult, Body, NoParams, Problem, Query};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use opsweave::access::Action;
use opsweave::matching::resolver_preset;
use opsweave::{NewJob, RecordId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

/// A matching run to start.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"preset": "task-dedupe", "incremental": false}))]
#[serde(deny_unknown_fields)]
pub struct MatchRunBody {
    /// A built-in resolver: `odoo-ace-opportunities` or `task-dedupe`.
    pub preset: String,
    /// Score only records the last run has not seen, with its model.
    #[serde(default)]
    pub incremental: bool,
    /// The same key returns the same job.
    pub idempotency_key: Option<String>,
}

/// Starts a resolver run as a `match` job (202 with the job).
#[utoipa::path(post, path = "/api/match/runs", tag = "matching", request_body = MatchRunBody, security(("key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key in the same scope returns the first job (409 when that job differs)")),
    responses((status = 202, description = "the match job", body = super::jobs::JobView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the idempotency key was used for another job", body = Problem, content_type = "application/problem+json"), (status = 403, description = "a key limited to a client or project", body = Problem, content_type = "application/problem+json")))]
pub async fn start_run(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    headers: axum::http::HeaderMap,
    Body(body): Body<MatchRunBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Action::Write)?;
    org_wide(&caller.scope)?;
    resolver_preset(&body.preset).map_err(|e| e.on_field("preset"))?;
    let mut job = NewJob::new(
        MATCH_JOB,
        caller.scope.clone(),
        json!({ "preset": body.preset, "incremental": body.incremental }),
    )
    .with_max_attempts(1);
    job.idempotency_key = super::jobs::idempotency_key(&headers, body.idempotency_key)?;
    job.validate()?;
    super::jobs::submit(&state, job).await
}

/// A key limited to a client or project may not match: it would see and change other
/// clients' pairs (the facade's rule, answered as 403 here, also before a match job is queued).
pub(super) fn org_wide(scope: &opsweave::Scope) -> ApiResult<()> {
    opsweave::check_matching_scope(scope).map_err(|e| Problem::forbidden(e.message().to_string()))
}

/// Which review pairs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Only this resolver's pairs.
    pub resolver: Option<String>,
    /// Pairs (1 to 1000, default 20).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Pairs in the review band, most likely matches first, each with its explanation.
#[utoipa::path(get, path = "/api/match/review", tag = "matching", params(ReviewQuery), security(("key" = [])),
    responses((status = 200, description = "pairs", body = ReviewPairs), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, description = "a key limited to a client or project", body = Problem, content_type = "application/problem+json")))]
pub async fn review(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ReviewQuery>,
) -> ApiResult<Json<ReviewPairs>> {
    caller.require(Action::Read)?;
    org_wide(&caller.scope)?;
    let limit = q.limit.unwrap_or(20);
    if limit == 0 || limit > 1000 {
        return Err(Problem::invalid("limit must be between 1 and 1000").on_field("limit"));
    }
    let pairs = state
        .weave
        .review_queue(&caller.scope, q.resolver.as_deref(), limit)
        .await?;
    Ok(Json(ReviewPairs { pairs }))
}

/// Pairs in the review band, most likely matches first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewPairs {
    /// Each with the comparisons that made its score.
    pub pairs: Vec<opsweave::ReviewItem>,
}

/// A decision on one review pair.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"resolver": "task-dedupe", "left": "0000000000000001", "right": "0000000000000002"}))]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// The built-in resolver that queued the pair.
    pub resolver: String,
    /// Left record id (16 hex digits).
    pub left: String,
    /// Right record id (16 hex digits).
    pub right: String,
}

async fn decide(
    caller: Caller,
    state: AppState,
    body: DecisionBody,
    accept: bool,
) -> ApiResult<Json<opsweave::ReviewItem>> {
    caller.require(Action::Write)?;
    org_wide(&caller.scope)?;
    let resolver = resolver_preset(&body.resolver).map_err(|e| e.on_field("resolver"))?;
    let left: RecordId = body
        .left
        .parse()
        .map_err(|e: opsweave::Error| e.on_field("left"))?;
    let right: RecordId = body
        .right
        .parse()
        .map_err(|e: opsweave::Error| e.on_field("right"))?;
    let item = state
        .weave
        .decide_review(&caller.scope, &resolver, (left, right), accept)
        .await?;
    Ok(Json(item))
}

/// Same entity: link the pair.
#[utoipa::path(post, path = "/api/match/review/accept", tag = "matching", request_body = DecisionBody, security(("key" = [])),
    responses((status = 200, description = "the decided pair", body = opsweave::ReviewItem), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 403, description = "a key limited to a client or project", body = Problem, content_type = "application/problem+json")))]
pub async fn accept(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Body(body): Body<DecisionBody>,
) -> ApiResult<Json<opsweave::ReviewItem>> {
    decide(caller, state, body, true).await
}

/// Different entities: never ask again.
#[utoipa::path(post, path = "/api/match/review/reject", tag = "matching", request_body = DecisionBody, security(("key" = [])),
    responses((status = 200, description = "the decided pair", body = opsweave::ReviewItem), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 403, description = "a key limited to a client or project", body = Problem, content_type = "application/problem+json")))]
pub async fn reject(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Body(body): Body<DecisionBody>,
) -> ApiResult<Json<opsweave::ReviewItem>> {
    decide(caller, state, body, false).await
}
