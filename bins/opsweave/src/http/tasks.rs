//! Tasks (focus per horizon, complete, undo), records, search and the graph.

use super::auth::Caller;
use super::problem::{ApiResult, NoParams, Path, Problem, Query};
use super::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use opsweave::access::Action;
use opsweave::{Focus, Horizon, Lane, LinkKind, RankedTask, Record, RecordId, Task, Window};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use utoipa::{IntoParams, ToSchema};

/// The most tasks or hits one request returns.
const MAX_LIMIT: usize = 1000;

fn limit_of(limit: Option<usize>, default: usize) -> ApiResult<usize> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(
            Problem::invalid(format!("limit must be between 1 and {MAX_LIMIT}")).on_field("limit"),
        );
    }
    Ok(limit)
}

pub(super) fn id_of(text: &str) -> ApiResult<RecordId> {
    text.parse::<RecordId>()
        .map_err(|e| Problem::from(e.on_field("id")))
}

/// Scope narrowing every read may ask for.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    /// today, week, month, later, or past7d (done in the last 7 days).
    pub horizon: Option<String>,
    /// Tasks to return (1 to 1000, default 3).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Rank as of this date or RFC 3339 instant (default: now).
    pub now: Option<String>,
    /// Narrow to a client.
    pub client: Option<String>,
    /// Narrow to a project.
    pub project: Option<String>,
}

/// One horizon's top tasks, best first, each with its score's breakdown; written straight from a
/// (shared, possibly cached) focus answer, without copying it.
#[derive(Serialize, ToSchema)]
pub struct FocusTasks<'a> {
    /// The horizon asked for.
    horizon: Horizon,
    /// Its tasks.
    tasks: &'a [RankedTask],
}

/// Tasks done in the last 7 days, most recently done first.
#[derive(Serialize, ToSchema)]
pub struct DoneTasks {
    /// Always `past7d`.
    #[schema(schema_with = past7d)]
    horizon: &'static str,
    /// Its tasks.
    tasks: Vec<Task>,
}

fn past7d() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some([Lane::Past7d.as_str()]))
        .build()
}

/// What `/api/tasks` answers: a horizon's ranked tasks, or those done in the last 7 days.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TaskListing<'a> {
    /// today, week, month or later.
    Focus(FocusTasks<'a>),
    /// past7d.
    Done(DoneTasks),
}

/// Bodies kept at most by [`FocusBodies`].
const FOCUS_BODIES: usize = 64;

/// The JSON bodies of recent focus answers. A focus answer the handle's cache hands out again is
/// the same `Arc`, so its body is written once, not once per request (writing it was a sixth of
/// a cached request's CPU). Entries hold their answer, so a pointer is never reused while kept;
/// answers no one else holds any more (the focus cache moved on) are dropped first.
#[derive(Default)]
pub struct FocusBodies(Mutex<Vec<(Arc<Focus>, Horizon, Bytes)>>);

impl FocusBodies {
    fn body(&self, focus: &Arc<Focus>, horizon: Horizon) -> Result<Bytes, Problem> {
        if let Ok(bodies) = self.0.lock() {
            if let Some((_, _, body)) = bodies
                .iter()
                .find(|(f, h, _)| *h == horizon && Arc::ptr_eq(f, focus))
            {
                return Ok(body.clone());
            }
        }
        let body = Bytes::from(
            serde_json::to_vec(&TaskListing::Focus(FocusTasks {
                horizon,
                tasks: focus.get(horizon),
            }))
            .map_err(|e| Problem::from(opsweave::Error::internal(format!("writing tasks: {e}"))))?,
        );
        if let Ok(mut bodies) = self.0.lock() {
            bodies.retain(|(f, _, _)| Arc::strong_count(f) > 1);
            if bodies.len() >= FOCUS_BODIES {
                bodies.remove(0);
            }
            bodies.push((focus.clone(), horizon, body.clone()));
        }
        Ok(body)
    }
}

/// The top tasks of one horizon, best first, each with the breakdown of its score.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(TasksQuery), security(("key" = [])),
    responses((status = 200, description = "tasks", body = TaskListing), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list_tasks(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<TasksQuery>,
) -> ApiResult<Response> {
    caller.require(Action::Read)?;
    let scope = caller.narrowed(q.client.as_deref(), q.project.as_deref())?;
    let limit = limit_of(q.limit, 3)?;
    let now = state.weave.parse_as_of(q.now.as_deref())?;
    let horizon = q.horizon.as_deref().unwrap_or("today");
    if horizon == Lane::Past7d.as_str() {
        let until = now.unwrap_or_else(Utc::now);
        let since = until - chrono::Duration::days(7);
        let done = state
            .weave
            .store()
            .done_between(&scope, since, until, limit)
            .await?;
        return Ok(Json(TaskListing::Done(DoneTasks {
            horizon: Lane::Past7d.as_str(),
            tasks: done,
        }))
        .into_response());
    }
    let horizon: Horizon = horizon
        .parse()
        .map_err(|e: opsweave::Error| e.on_field("horizon"))?;
    let focus = state
        .weave
        .focus_shared(&scope, &[horizon], limit, now)
        .await?;
    let body = state.focus_bodies.body(&focus, horizon)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Marks a task done (an event; completing a done task changes nothing).
#[utoipa::path(post, path = "/api/tasks/{id}/complete", tag = "tasks", security(("key" = [])),
    params(("id" = String, Path, description = "task id (16 hex digits)", pattern = "^[0-9a-fA-F]{1,16}$")),
    responses((status = 200, description = "the task", body = Task), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn complete(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    caller.require(Action::Write)?;
    let id = id_of(&id)?;
    let task = state
        .weave
        .complete(&caller.scope, id, &caller.name)
        .await?;
    Ok(Json(task))
}

/// Undoes a task's last status change.
#[utoipa::path(post, path = "/api/tasks/{id}/undo", tag = "tasks", security(("key" = [])),
    params(("id" = String, Path, description = "task id (16 hex digits)", pattern = "^[0-9a-fA-F]{1,16}$")),
    responses((status = 200, description = "the task", body = Task), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn undo(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    caller.require(Action::Write)?;
    let id = id_of(&id)?;
    let task = state.weave.undo(&caller.scope, id, &caller.name).await?;
    Ok(Json(task))
}

/// One record.
#[utoipa::path(get, path = "/api/records/{id}", tag = "records", security(("key" = [])),
    params(("id" = String, Path, description = "record id (16 hex digits)", pattern = "^[0-9a-fA-F]{1,16}$")),
    responses((status = 200, description = "the record", body = Record), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn record(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Query<NoParams>,
) -> ApiResult<Json<Record>> {
    caller.require(Action::Read)?;
    let id = id_of(&id)?;
    let record = state.weave.record(&caller.scope, id).await?;
    Ok(Json(record))
}

/// Full-text search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to look for.
    #[param(min_length = 1, max_length = 1000)]
    pub q: String,
    /// Hits (1 to 1000, default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Narrow to a client.
    pub client: Option<String>,
    /// Narrow to a project.
    pub project: Option<String>,
}

/// Full-text hits, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHits {
    /// The hits.
    pub hits: Vec<opsweave::SearchHit>,
}

/// Full-text search over titles and bodies.
#[utoipa::path(get, path = "/api/search", tag = "records", params(SearchQuery), security(("key" = [])),
    responses((status = 200, description = "hits", body = SearchHits), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchHits>> {
    caller.require(Action::Read)?;
    let scope = caller.narrowed(q.client.as_deref(), q.project.as_deref())?;
    let limit = limit_of(q.limit, 10)?;
    if q.q.trim().is_empty() || q.q.len() > 1000 {
        return Err(Problem::invalid("q must be 1 to 1000 bytes of words").on_field("q"));
    }
    let hits = state.weave.search(&scope, &q.q, limit).await?;
    Ok(Json(SearchHits { hits }))
}

/// Graph parameters and filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// week (default) or month.
    pub window: Option<String>,
    /// Only nodes from this source kind (see /api/graph/filters).
    pub source: Option<String>,
    /// Only nodes in this lane: past7d, today, week, month.
    #[param(schema_with = super::openapi::lanes)]
    pub lane: Option<String>,
    /// As of this date or RFC 3339 instant (default: now).
    pub now: Option<String>,
    /// Narrow to a client.
    pub client: Option<String>,
    /// Narrow to a project.
    pub project: Option<String>,
}

/// The work graph: nodes in lanes and the links among them, optionally filtered.
#[utoipa::path(get, path = "/api/graph", tag = "graph", params(GraphQuery), security(("key" = [])),
    responses((status = 200, description = "nodes, edges and lanes", body = opsweave::Graph), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn graph(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<GraphQuery>,
) -> ApiResult<Json<opsweave::Graph>> {
    caller.require(Action::Read)?;
    let scope = caller.narrowed(q.client.as_deref(), q.project.as_deref())?;
    let window: Window = q
        .window
        .as_deref()
        .unwrap_or("week")
        .parse()
        .map_err(|e: opsweave::Error| e.on_field("window"))?;
    let lane = match q.lane.as_deref() {
        None => None,
        Some(text) => Some(
            Lane::ALL
                .into_iter()
                .find(|l| l.as_str() == text)
                .ok_or_else(|| {
                    Problem::invalid(format!(
                        "unknown lane `{text}` (past7d, today, week, month)"
                    ))
                    .on_field("lane")
                })?,
        ),
    };
    let now = state.weave.parse_as_of(q.now.as_deref())?;
    let mut graph = state.weave.graph(&scope, window, now).await?;
    if q.source.is_some() || lane.is_some() {
        graph.nodes.retain(|n| {
            q.source.as_deref().is_none_or(|s| n.source_kind == s)
                && lane.is_none_or(|l| n.lane == l)
        });
        let kept: std::collections::HashSet<RecordId> = graph.nodes.iter().map(|n| n.id).collect();
        graph
            .edges
            .retain(|e| kept.contains(&e.from) && kept.contains(&e.to));
        for ids in graph.lanes.values_mut() {
            ids.retain(|id| kept.contains(id));
        }
        graph
            .lanes
            .retain(|l, _| lane.is_none_or(|want| *l == want));
    }
    Ok(Json(graph))
}

/// What the graph can be filtered by: windows, lanes, and the source kinds and link kinds
/// present in the caller's month graph.
#[utoipa::path(get, path = "/api/graph/filters", tag = "graph", security(("key" = [])),
    responses((status = 200, description = "filter values", body = GraphFilters)))]
pub async fn graph_filters(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
) -> ApiResult<Json<GraphFilters>> {
    caller.require(Action::Read)?;
    let graph = state
        .weave
        .graph(&caller.scope, Window::Month, None)
        .await?;
    let sources: std::collections::BTreeSet<String> =
        graph.nodes.into_iter().map(|n| n.source_kind).collect();
    let link_kinds: std::collections::BTreeSet<LinkKind> =
        graph.edges.iter().map(|e| e.kind).collect();
    Ok(Json(GraphFilters {
        windows: vec![Window::Week, Window::Month],
        lanes: Lane::ALL.to_vec(),
        sources: sources.into_iter().collect(),
        link_kinds: link_kinds.into_iter().collect(),
    }))
}

/// What the graph can be filtered by.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphFilters {
    /// Windows `/api/graph` takes.
    pub windows: Vec<Window>,
    /// Every lane.
    pub lanes: Vec<Lane>,
    /// Source kinds of the month graph's nodes.
    pub sources: Vec<String>,
    /// Link kinds among them.
    pub link_kinds: Vec<LinkKind>,
}
