//! Recall (hybrid search: dense + BM25 fused by reciprocal rank) and memory notes.

use super::auth::Caller;
use super::problem::{ApiResult, Body, Problem};
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use opsweave::access::Action;
use opsweave::RecallOptions;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// A recall request.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"query": "cutover runbook", "options": {"mode": "bm25", "k": 3}}))]
#[serde(deny_unknown_fields)]
pub struct RecallBody {
    /// What to look for.
    #[schema(min_length = 1)]
    pub query: String,
    /// k, mode (hybrid | bm25 | dense), entities, source_kinds, recency, depth, fusion.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub options: RecallOptions,
}

/// The records that best answer `query`, each hit explained.
#[utoipa::path(post, path = "/api/recall", tag = "records", request_body = RecallBody, security(("key" = [])),
    responses((status = 200, description = "hits", body = Object), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the store's vectors of this model name were made by another model", body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn recall(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<RecallBody>,
) -> ApiResult<Json<Value>> {
    caller.require(Action::Read)?;
    let hits = state
        .weave
        .recall(&caller.scope, &body.query, &body.options)
        .await?;
    Ok(Json(json!({ "hits": hits })))
}

/// A memory note to store.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"text": "Globex wants the migration invoiced in euros", "tags": ["globex"]}))]
#[serde(deny_unknown_fields)]
pub struct MemoryBody {
    /// The note (at most 32 KiB; ingest longer texts as documents).
    #[schema(min_length = 1)]
    pub text: String,
    /// Tags recall can filter on.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Stores a memory note that recall finds at once (needs an embedding model: `[embed] model`).
#[utoipa::path(post, path = "/api/memory", tag = "records", request_body = MemoryBody, security(("key" = [])),
    responses((status = 201, description = "the note's id", body = Object), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the store's vectors of this model name were made by another model", body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn remember(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<MemoryBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Action::Write)?;
    if body.text.trim().is_empty() {
        return Err(Problem::invalid("text must not be empty").on_field("text"));
    }
    let id = state
        .weave
        .remember(&caller.scope, &body.text, &body.tags)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}
