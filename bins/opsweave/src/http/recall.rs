//! Recall (hybrid search: dense + BM25 fused by reciprocal rank) and memory notes.

use super::auth::Caller;
use super::problem::{ApiResult, Body, NoParams, Path, Problem, Query};
use super::tasks::id_of;
use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use opsweave::access::Action;
use opsweave::RecallOptions;
use serde::{Deserialize, Serialize};
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

/// Recall's hits, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecallHits {
    /// The hits, each with the rankers that found it and its fused score.
    pub hits: Vec<opsweave::RecallHit>,
}

/// The records that best answer `query`, each hit explained.
#[utoipa::path(post, path = "/api/recall", tag = "records", request_body = RecallBody, security(("key" = [])),
    responses((status = 200, description = "hits", body = RecallHits), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the store's vectors of this model name were made by another model", body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn recall(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Body(body): Body<RecallBody>,
) -> ApiResult<Json<RecallHits>> {
    caller.require(Action::Read)?;
    let hits = state
        .weave
        .recall(&caller.scope, &body.query, &body.options)
        .await?;
    Ok(Json(RecallHits { hits }))
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

/// A stored memory note.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryCreated {
    /// Its id, for PUT and DELETE /api/memory/{id}.
    pub id: opsweave::RecordId,
}

/// Stores a memory note that recall finds at once (needs an embedding model: `[embed] model`).
#[utoipa::path(post, path = "/api/memory", tag = "records", request_body = MemoryBody, security(("key" = [])),
    responses((status = 201, description = "the note's id", body = MemoryCreated), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the store's vectors of this model name were made by another model", body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn remember(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Body(body): Body<MemoryBody>,
) -> ApiResult<(StatusCode, Json<MemoryCreated>)> {
    caller.require(Action::Write)?;
    if body.text.trim().is_empty() {
        return Err(Problem::invalid("text must not be empty").on_field("text"));
    }
    let id = state
        .weave
        .remember(&caller.scope, &body.text, &body.tags)
        .await?;
    Ok((StatusCode::CREATED, Json(MemoryCreated { id })))
}

/// A memory note's new text.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"text": "Globex wants the migration invoiced in dollars after all"}))]
#[serde(deny_unknown_fields)]
pub struct MemoryUpdateBody {
    /// The note's new text (at most 32 KiB).
    #[schema(min_length = 1)]
    pub text: String,
    /// Its new tags; left out, the note keeps the ones it has.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Replaces a memory note's text (and tags, when given) and its vector; recall finds the new
/// text at once.
#[utoipa::path(put, path = "/api/memory/{id}", tag = "records",
    params(("id" = String, Path, description = "memory id (16 hex digits)", pattern = "^[0-9a-fA-F]{1,16}$")),
    request_body = MemoryUpdateBody, security(("key" = [])),
    responses((status = 200, description = "the note as stored now", body = opsweave::Record), (status = 400, description = "bad text or tags, or the id is a record that is not a memory", body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the store's vectors of this model name were made by another model", body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn update_memory(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Path(id): Path<String>,
    Body(body): Body<MemoryUpdateBody>,
) -> ApiResult<Json<opsweave::Record>> {
    caller.require(Action::Write)?;
    let id = id_of(&id)?;
    let record = state
        .weave
        .update_memory(&caller.scope, id, &body.text, body.tags.as_deref())
        .await?;
    Ok(Json(record))
}

/// Removes a memory note for good: its record, full-text row and vectors.
#[utoipa::path(delete, path = "/api/memory/{id}", tag = "records",
    params(("id" = String, Path, description = "memory id (16 hex digits)", pattern = "^[0-9a-fA-F]{1,16}$")),
    security(("key" = [])),
    responses((status = 204, description = "forgotten"), (status = 400, description = "the id is a record that is not a memory", body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn forget(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::Write)?;
    state.weave.forget(&caller.scope, id_of(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
