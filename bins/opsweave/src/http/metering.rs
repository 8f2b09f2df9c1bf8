//! Usage events and aggregates with cost, and the admin endpoints for API keys.

use super::auth::Caller;
use super::problem::{ApiResult, Body, NoParams, Path, Problem, Query};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use opsweave::access::Action;
use opsweave::usage::{Operation, MAX_TOKENS_PER_EVENT};
use opsweave::{ApiKey, JobId, KeyId, PricedTotal, Role, UsageEvent, UsageGroup, UsageQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most events one request may report.
const MAX_EVENTS: usize = 10_000;

/// One model call reported by a service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEventBody {
    /// `embed` or `chat`.
    #[schema(schema_with = super::openapi::operations)]
    pub operation: Operation,
    /// Model name as the provider knows it.
    pub model: String,
    /// Prompt tokens (at most 10^12).
    #[serde(default)]
    #[schema(maximum = 1e12)]
    pub input_tokens: u64,
    /// Completion tokens (at most 10^12).
    #[serde(default)]
    #[schema(maximum = 1e12)]
    pub output_tokens: u64,
    /// Tokens embedded (at most 10^12).
    #[serde(default)]
    #[schema(maximum = 1e12)]
    pub embedding_tokens: u64,
    /// Wall time of the call.
    #[serde(default)]
    pub latency_ms: u64,
    /// The job it ran in.
    pub job: Option<i64>,
    /// When it finished (default: now).
    pub at: Option<DateTime<Utc>>,
    /// The client it is for (inside the key's org).
    pub client: Option<String>,
    /// The project it is for.
    pub project: Option<String>,
}

/// A batch of usage events.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"events": [{"operation": "embed", "model": "text-embedding-3-small", "embedding_tokens": 1200, "latency_ms": 40}]}))]
#[serde(deny_unknown_fields)]
pub struct UsageEventsBody {
    /// The events (at most 10,000), stored all or none.
    pub events: Vec<UsageEventBody>,
}

/// Records usage events of model calls made elsewhere (service or admin keys), all or none.
#[utoipa::path(post, path = "/api/usage/events", tag = "usage", request_body = UsageEventsBody, security(("key" = [])),
    responses((status = 201, description = "recorded", body = Recorded), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn record_events(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Body(body): Body<UsageEventsBody>,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    caller.require(Action::ReportUsage)?;
    if body.events.len() > MAX_EVENTS {
        return Err(
            Problem::invalid(format!("at most {MAX_EVENTS} events per request")).on_field("events"),
        );
    }
    let now = Utc::now();
    let mut events = Vec::with_capacity(body.events.len());
    for (i, e) in body.events.into_iter().enumerate() {
        let scope = caller
            .narrowed(e.client.as_deref(), e.project.as_deref())
            .map_err(|p| {
                let field = p.field.clone().unwrap_or_default();
                p.on_field(format!("events[{i}].{field}"))
            })?;
        events.push(UsageEvent {
            scope,
            operation: e.operation,
            model: e.model,
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            embedding_tokens: e.embedding_tokens,
            latency_ms: e.latency_ms,
            job: e.job.map(JobId),
            at: e.at.unwrap_or(now),
        });
        // A count no call comes near is a client bug or an attack on the sums: the batch is
        // refused whole, as a body the API will not process (core's rule, the HTTP status).
        if let Some((field, n)) = events.last().and_then(UsageEvent::oversized_count) {
            return Err(Problem::unprocessable(format!(
                "events[{i}].{field} is {n}: at most {MAX_TOKENS_PER_EVENT} tokens per event"
            ))
            .on_field(format!("events[{i}].{field}")));
        }
    }
    state.weave.record_usage(&events).await?;
    for e in &events {
        let model = state.metrics.models.label(&e.model);
        let op = match e.operation {
            Operation::Embed => "embed",
            Operation::Chat => "chat",
        };
        state
            .metrics
            .model_seconds
            .with_label_values(&[op, &model])
            .observe(e.latency_ms as f64 / 1000.0);
        for (kind, n) in [
            ("input", e.input_tokens),
            ("output", e.output_tokens),
            ("embedding", e.embedding_tokens),
        ] {
            if n > 0 {
                state
                    .metrics
                    .tokens
                    .with_label_values(&[kind, &model])
                    .inc_by(n);
            }
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(Recorded {
            recorded: events.len(),
        }),
    ))
}

/// Which usage to sum.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQueryParams {
    /// From this instant, inclusive (RFC 3339 or a date; default: 30 days ago).
    pub from: Option<String>,
    /// To this instant, exclusive (default: now).
    pub to: Option<String>,
    /// org, client, project or model (default: model).
    #[param(schema_with = super::openapi::usage_groups)]
    pub group_by: Option<String>,
    /// Narrow to a client.
    pub client: Option<String>,
    /// Narrow to a project.
    pub project: Option<String>,
}

/// Tokens, calls and cost (from the configured price book) per group and model.
#[utoipa::path(get, path = "/api/usage", tag = "usage", params(UsageQueryParams), security(("key" = [])),
    responses((status = 200, description = "totals", body = UsageReport), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn totals(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<UsageQueryParams>,
) -> ApiResult<Json<UsageReport>> {
    caller.require(Action::Read)?;
    let scope = caller.narrowed(q.client.as_deref(), q.project.as_deref())?;
    let query = UsageQuery::parse(
        scope,
        q.from.as_deref(),
        q.to.as_deref(),
        q.group_by.as_deref().unwrap_or("model"),
    )?;
    let totals = state.weave.usage_report(&query).await?;
    Ok(Json(UsageReport {
        from: query.from,
        to: query.to,
        group_by: query.group_by,
        totals,
    }))
}

/// Usage sums of a time range.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    /// From this instant, included.
    pub from: DateTime<Utc>,
    /// To this instant, excluded.
    pub to: DateTime<Utc>,
    /// How the totals are grouped.
    pub group_by: UsageGroup,
    /// One row per group and model, ordered by group.
    pub totals: Vec<PricedTotal>,
}

/// Usage events stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recorded {
    /// How many (all of the request's).
    pub recorded: usize,
}

/// A new key and its secret, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// `ow_` and 64 hex digits, for `Authorization: Bearer`.
    pub secret: String,
    /// The key as stored.
    pub key: ApiKey,
}

/// Keys of the caller's scope, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// The keys, without secrets.
    pub keys: Vec<ApiKey>,
}

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"name": "dashboard", "role": "viewer"}))]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// What it is for.
    pub name: String,
    /// admin, member, viewer or service.
    #[schema(schema_with = super::openapi::roles)]
    pub role: String,
    /// Limit the key to a client of the org.
    pub client: Option<String>,
    /// Limit the key to a project.
    pub project: Option<String>,
    /// When it stops working (later than now).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Makes a key in the caller's org (admin keys); the answer holds the key, shown only this once.
#[utoipa::path(post, path = "/api/keys", tag = "keys", request_body = NewKeyBody, security(("key" = [])),
    responses((status = 201, description = "the key, with its secret", body = NewKey), (status = 400, description = "bad role, empty name, client or project, or an expiry in the past", body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn create_key(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Body(body): Body<NewKeyBody>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    caller.require(Action::ManageKeys)?;
    let role: Role = body.role.parse()?;
    // An empty name would make an org-wide key where a narrow one was meant.
    for (name, field) in [(&body.client, "client"), (&body.project, "project")] {
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(Problem::invalid(format!(
                "{field} must not be empty (leave it out for a key over the whole org)"
            ))
            .on_field(field));
        }
    }
    let scope = caller.narrowed(body.client.as_deref(), body.project.as_deref())?;
    let (secret, key) = state
        .weave
        .create_key(&body.name, scope, role, body.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(NewKey { secret, key })))
}

/// Keys of the caller's scope (without secrets), newest first: every key of the org for an org-wide
/// key, only the keys inside its client / project for a key limited to one (as it may only
/// create keys there).
#[utoipa::path(get, path = "/api/keys", tag = "keys", security(("key" = [])),
    responses((status = 200, description = "keys", body = KeyList), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_keys(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
) -> ApiResult<Json<KeyList>> {
    caller.require(Action::ManageKeys)?;
    let mut keys = state.weave.list_keys(&caller.scope.org).await?;
    keys.retain(|key| caller.scope.contains(&key.scope));
    Ok(Json(KeyList { keys }))
}

/// Revokes a key of the caller's scope (404 for one outside it, as for one that does not exist);
/// it stops working at once on this server (on other server processes of the same store within
/// `server.key_cache_secs`).
#[utoipa::path(post, path = "/api/keys/{id}/revoke", tag = "keys", security(("key" = [])),
    params(("id" = i64, Path, description = "key id")),
    responses((status = 200, description = "the revoked key", body = ApiKey), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the org's last live admin key", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_key(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ApiKey>> {
    caller.require(Action::ManageKeys)?;
    let id = KeyId(id);
    if caller.scope.client.is_some() || caller.scope.project.is_some() {
        // A key limited to a client must not revoke org-wide keys or another client's: the
        // same answer as for no key at all, so it cannot probe ids outside its scope either.
        let inside = state
            .weave
            .list_keys(&caller.scope.org)
            .await?
            .iter()
            .any(|key| key.id == id && caller.scope.contains(&key.scope));
        if !inside {
            return Err(Problem::not_found(format!("no key {id}")).on_field("id"));
        }
    }
    let key = state.weave.revoke_key(&caller.scope.org, id).await?;
    Ok(Json(key))
}
