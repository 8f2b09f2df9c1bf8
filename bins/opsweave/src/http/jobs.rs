//! Jobs: enqueue (idempotent by key), read, list, cancel, follow as Server-Sent Events; and
//! ingest, which queues an `ingest` job the in-process workers run.

use super::auth::Caller;
use super::problem::{ApiResult, Body, NoParams, Path, Problem, Query};
use super::AppState;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use base64::Engine as _;
use futures::Stream;
use opsweave::access::Action;
use opsweave::worker::InlineIngest;
use opsweave::{EmbedderSpec, Job, JobId, JobQueue, JobStatus, Mapping, NewJob, EMBED_JOB};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

pub use opsweave::worker::{INGEST_JOB, MATCH_JOB};

pub(super) fn queue(state: &AppState) -> ApiResult<Arc<dyn JobQueue>> {
    state
        .weave
        .jobs()
        .cloned()
        .ok_or_else(|| Problem::from(opsweave::Error::unavailable("this server has no job queue")))
}

/// A job as the API shows it (payloads can be large, so they are left out).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    /// The job's id.
    pub id: i64,
    /// What it runs.
    pub kind: String,
    /// Where it runs: org, and client / project when narrowed.
    #[schema(value_type = Object)]
    pub scope: opsweave::Scope,
    /// queued, running, done, failed or cancelled.
    #[schema(schema_with = super::openapi::job_statuses)]
    pub status: JobStatus,
    /// 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub progress: f64,
    /// The latest progress note, or the run's summary once done.
    pub message: Option<String>,
    /// Why the last attempt failed (an internal error's details stay in the worker's log).
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts before it fails.
    pub max_attempts: u32,
    /// The key it was queued with.
    pub idempotency_key: Option<String>,
    /// When it was queued.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When it finished.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
}

/// What the API may show of a failed attempt: an internal error's text (SQL, paths, hosts)
/// stays in the worker's log, as a direct request's does in the server's; the job record keeps
/// it for `opsweave jobs` on the machine itself.
fn public_job_error(job: &Job) -> Option<String> {
    let error = job.error.as_deref()?;
    let internal = format!("{}:", opsweave::ErrorKind::Internal);
    Some(if error.starts_with(&internal) {
        format!(
            "{internal} details in the log of the worker that ran job {}",
            job.id
        )
    } else {
        error.to_string()
    })
}

/// The wire view of a job.
pub(super) fn view(job: &Job) -> Value {
    json!(JobView {
        id: job.id.0,
        kind: job.kind.clone(),
        scope: job.scope.clone(),
        status: job.status,
        progress: job.progress,
        message: job.message.clone(),
        error: public_job_error(job),
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        idempotency_key: job.idempotency_key.clone(),
        created_at: job.created_at,
        updated_at: job.updated_at,
        finished_at: job.finished_at,
    })
}

/// The standard header that carries an idempotency key; the body's `idempotency_key` may too.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The request's idempotency key: the `Idempotency-Key` header, else the body's field. Both
/// given and different is a bad request (which one was meant cannot be told).
pub(super) fn idempotency_key(
    headers: &HeaderMap,
    in_body: Option<String>,
) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(in_body);
    };
    let header = value
        .to_str()
        .map_err(|_| {
            Problem::invalid("the Idempotency-Key header must be visible ASCII")
                .on_field("Idempotency-Key")
        })?
        .to_string();
    match in_body {
        Some(body) if body != header => Err(Problem::invalid(format!(
            "the Idempotency-Key header (`{header}`) and the body's idempotency_key (`{body}`) \
             differ: give one, or the same in both"
        ))
        .on_field("idempotency_key")),
        _ => Ok(Some(header)),
    }
}

/// The payload of an `embed` job queued here: `{"model": SPEC}` (plus the configured
/// `embed.model_name` when it names that model: see `Weave::embed_payload`). Without a model the server's
/// own `embed.model` is used; a server with a model embeds only with it (its workers would run
/// the job), one without one queues for external workers (`opsweave worker`), which need a model.
fn embed_payload(state: &AppState, payload: Value) -> ApiResult<Value> {
    let asked = match &payload {
        Value::Null => None,
        Value::Object(fields) => {
            if let Some(other) = fields.keys().find(|k| k.as_str() != "model") {
                return Err(Problem::invalid(format!(
                    "an embed job's payload takes only `model`, not `{other}`"
                ))
                .on_field("payload"));
            }
            match fields.get("model") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(
                    text.parse::<EmbedderSpec>()
                        .map_err(|e| e.on_field("payload.model"))?,
                ),
                Some(_) => {
                    return Err(
                        Problem::invalid("payload.model must be a model spec string")
                            .on_field("payload.model"),
                    )
                }
            }
        }
        _ => {
            return Err(Problem::invalid(
                "an embed job's payload is an object: {\"model\": \"onnx:…\" | \"openai:…\"}",
            )
            .on_field("payload"))
        }
    };
    let configured = state
        .weave
        .config()
        .embed
        .model
        .as_deref()
        .map(str::parse::<EmbedderSpec>)
        .transpose()?;
    if let (Some(asked), None) = (&asked, &configured) {
        // `onnx:DIR` would make the worker that claims the job load that path with its own
        // rights; a preset names a model under the worker's configured model directory.
        if matches!(asked, EmbedderSpec::Onnx(_)) && asked.onnx_preset().is_none() {
            return Err(Problem::unprocessable(format!(
                "payload.model `{asked}` names a directory on the server, which jobs queued over \
                 HTTP may not do: name an ONNX preset (onnx:bge-m3, onnx:all-minilm-l6-v2) or \
                 openai:MODEL"
            ))
            .on_field("payload.model"));
        }
    }
    let spec = match (asked, configured) {
        (Some(asked), Some(own)) if asked != own => {
            // A model folder's path is the server's business, not the caller's.
            let own = match own {
                EmbedderSpec::Onnx(_) if own.onnx_preset().is_none() => {
                    "its own ONNX model folder".to_string()
                }
                own => format!("`{own}`"),
            };
            return Err(Problem::invalid(format!(
                "this server embeds with {own}, not `{asked}`: leave payload.model out"
            ))
            .on_field("payload.model"));
        }
        (Some(spec), _) | (None, Some(spec)) => spec,
        (None, None) => {
            return Err(Problem::invalid(
                "this server has no embedding model (embed.model): name one in payload.model \
                 for an external worker",
            )
            .on_field("payload.model"))
        }
    };
    Ok(state.weave.embed_payload(&spec)?)
}

/// The payload of an `ingest` job queued at `/api/jobs`: only the inline form `/api/ingest`
/// queues (a mapping object, and rows or base64 content), checked as `/api/ingest` checks it.
/// The worker-side file form (`file`, `mapping` as a path) is refused with 422: whichever worker
/// claims the job would open those paths on its own machine with its own rights.
/// A `match` job's payload checked as `POST /api/match/runs` checks its body, before it is
/// queued: `{"preset": NAME, "incremental": BOOL}` (a resolver file names a server path, which
/// jobs queued over HTTP may not). A worker ran `"incremental": "yes"` as a full run.
fn match_job_payload(payload: Value) -> ApiResult<Value> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MatchPayload {
        preset: String,
        #[serde(default)]
        incremental: bool,
    }
    let asked: MatchPayload = serde_json::from_value(payload).map_err(|e| {
        Problem::unprocessable(format!(
            "a match job's payload is {{\"preset\": NAME, \"incremental\": true|false}}: {e}"
        ))
        .on_field("payload")
    })?;
    opsweave::matching::resolver_preset(&asked.preset).map_err(|e| e.on_field("payload.preset"))?;
    Ok(json!({ "preset": asked.preset, "incremental": asked.incremental }))
}

fn ingest_job_payload(payload: Value) -> ApiResult<Value> {
    let Value::Object(mut fields) = payload else {
        return Err(Problem::unprocessable(
            "an ingest job's payload is an object: {\"mapping\": {…}, \"rows\": […]} or \
             {\"mapping\": {…}, \"content_b64\": \"…\", \"format\": \"csv\"} (or use POST /api/ingest)",
        )
        .on_field("payload"));
    };
    if fields.contains_key("file") {
        return Err(Problem::unprocessable(
            "payload.file names a file on the server, which jobs queued over HTTP may not read: \
             send the file's content to POST /api/ingest instead",
        )
        .on_field("payload.file"));
    }
    if let Some(Value::String(_)) = fields.get("mapping") {
        return Err(Problem::unprocessable(
            "payload.mapping names a mapping file on the server, which jobs queued over HTTP may \
             not read: give the mapping as a JSON object (or use POST /api/ingest with a preset)",
        )
        .on_field("payload.mapping"));
    }
    if let Some(other) = fields
        .keys()
        .find(|k| !InlineIngest::FIELDS.contains(&k.as_str()))
    {
        return Err(Problem::unprocessable(format!(
            "an ingest job's payload takes only {}, not `{other}` (or use POST /api/ingest)",
            InlineIngest::FIELDS.join(", ")
        ))
        .on_field(format!("payload.{other}")));
    }
    // As on /api/ingest, an unnamed upload is `upload` in reports and rejections.
    fields
        .entry("name")
        .or_insert_with(|| Value::String("upload".into()));
    let payload: InlineIngest = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Problem::unprocessable(format!("payload: {e}")).on_field("payload"))?;
    let mapping = mapping_of(None, Some(payload.mapping))?;
    check_name(&payload.name)?;
    let content = payload.content_b64.as_deref().map(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| {
                Problem::unprocessable(format!("payload.content_b64 is not base64: {e}"))
                    .on_field("payload.content_b64")
            })
    });
    match (&payload.rows, content) {
        (Some(_), None) => {}
        (None, Some(content)) => {
            content?;
            if payload.format.is_none() && mapping.format.is_none() {
                return Err(Problem::unprocessable(
                    "payload.format is needed with content_b64 (csv, jsonl, json)",
                )
                .on_field("payload.format"));
            }
        }
        _ => {
            return Err(Problem::unprocessable(
                "an ingest job's payload has rows or content_b64, not both or neither",
            )
            .on_field("payload.rows"))
        }
    }
    let checked = InlineIngest {
        format: payload.format.or(mapping.format),
        mapping,
        ..payload
    };
    serde_json::to_value(&checked)
        .map_err(|e| Problem::from(opsweave::Error::internal(format!("ingest payload: {e}"))))
}

/// Queues `job` and wakes the in-process workers.
pub(super) async fn submit(state: &AppState, job: NewJob) -> ApiResult<(StatusCode, Json<Value>)> {
    // Checked here for the server's own wording of a missing queue.
    queue(state)?;
    // A retried request gets its first job back; another request reusing the key is a mistake
    // the facade refuses (409).
    let job = state.weave.enqueue(job).await?;
    state
        .metrics
        .jobs_enqueued
        .with_label_values(&[&state.metrics.kinds.label(&job.kind)])
        .inc();
    state.job_queued.notify_waiters();
    Ok((StatusCode::ACCEPTED, Json(view(&job))))
}

/// A job to queue.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"kind": "agent", "payload": {"task": "summarise"}, "max_attempts": 3}))]
#[serde(deny_unknown_fields)]
pub struct NewJobBody {
    /// What to run: `ingest`, `match`, `embed`, or a kind external workers serve.
    pub kind: String,
    /// The job's arguments.
    #[serde(default)]
    pub payload: Value,
    /// The same key in the same scope returns the first job instead of a new one.
    pub idempotency_key: Option<String>,
    /// Attempts before the job fails (1 to 100, default 3).
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Narrow the job's scope to a client.
    pub client: Option<String>,
    /// Narrow the job's scope to a project.
    pub project: Option<String>,
}

/// Queues a job (202; the same idempotency key returns the same job). An `embed` job embeds the
/// records of the caller's scope whose text changed, with the server's model. Payloads never name
/// paths on the server (422): an `ingest` job carries its mapping and rows or content inline, an
/// `embed` job's model is a preset or a remote model, not a directory, a `match` job names a
/// built-in resolver (`{"preset": NAME, "incremental": BOOL}`, checked as `/api/match/runs` is).
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = NewJobBody, security(("key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key in the same scope returns the first job (409 when that job's kind or payload differ; or give `idempotency_key` in the body)")),
    responses((status = 202, description = "the job", body = JobView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the idempotency key was used for another job", body = Problem, content_type = "application/problem+json"), (status = 422, description = "a payload of the wrong shape for its kind, or one naming a path on the server", body = Problem, content_type = "application/problem+json")))]
pub async fn enqueue(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    headers: HeaderMap,
    Body(body): Body<NewJobBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Action::Write)?;
    let scope = caller.narrowed(body.client.as_deref(), body.project.as_deref())?;
    if body.kind == MATCH_JOB {
        super::matching::org_wide(&scope)?;
    }
    let key = idempotency_key(&headers, body.idempotency_key)?;
    let payload = match body.kind.as_str() {
        EMBED_JOB => embed_payload(&state, body.payload)?,
        INGEST_JOB => ingest_job_payload(body.payload)?,
        MATCH_JOB => match_job_payload(body.payload)?,
        opsweave::worker::SLEEP_JOB => {
            opsweave::worker::sleep_millis(&body.payload).map_err(|e| e.on_field("payload.ms"))?;
            body.payload
        }
        _ => body.payload,
    };
    let mut job = NewJob::new(body.kind, scope, payload);
    job.idempotency_key = key;
    if let Some(n) = body.max_attempts {
        job.max_attempts = n;
    }
    job.validate()?;
    submit(&state, job).await
}

/// Which jobs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// queued, running, done, failed or cancelled.
    pub status: Option<String>,
    /// Jobs (1 to 1000, default 50), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Jobs of the caller's scope, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(JobsQuery), security(("key" = [])),
    responses((status = 200, description = "jobs", body = JobList), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<JobsQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Action::Read)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 1000 {
        return Err(Problem::invalid("limit must be between 1 and 1000").on_field("limit"));
    }
    let jobs = queue(&state)?.list(&caller.scope, status, limit).await?;
    Ok(Json(
        json!({ "jobs": jobs.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// One job.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", security(("key" = [])),
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "the job", body = JobView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_job(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    _: Query<NoParams>,
) -> ApiResult<Json<Value>> {
    caller.require(Action::Read)?;
    let job = queue(&state)?.get(&caller.scope, JobId(id)).await?;
    Ok(Json(view(&job)))
}

/// Cancels a queued or running job (409 when it already finished).
#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "jobs", security(("key" = [])),
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "the job", body = JobView), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    caller.require(Action::Write)?;
    let job = queue(&state)?.cancel(&caller.scope, JobId(id)).await?;
    Ok(Json(view(&job)))
}

/// One step of a job's life as an event stream sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Step {
    status: JobStatus,
    progress: f64,
    message: Option<String>,
    error: Option<String>,
}

/// How often a followed job is read again.
const POLL: Duration = Duration::from_millis(100);

/// How often an event stream checks that its key still works (revoked or expired keys end it).
const RECHECK_KEY: Duration = if cfg!(test) {
    Duration::from_millis(500)
} else {
    Duration::from_secs(30)
};

/// What a stream may tell its client of `e`: an internal error's text (SQL, paths) stays in the
/// server's log.
fn public_message(e: &opsweave::Error) -> String {
    if e.kind() == opsweave::ErrorKind::Internal {
        tracing::error!(error = %e, "job event stream");
        "internal error (details in the server log)".to_string()
    } else {
        e.message().to_string()
    }
}

/// The job's life as Server-Sent Events: one event per change (`queued`, `running` with
/// progress, then `done`, `failed` or `cancelled`), sent as it happens; the stream ends with the job.
#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "jobs", security(("key" = [])),
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "text/event-stream of job states", content_type = "text/event-stream"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>> {
    caller.require(Action::Read)?;
    let queue = queue(&state)?;
    let scope = caller.scope.clone();
    let secret = super::auth::bearer_secret(&headers)?.map(str::to_string);
    // The first read answers 404 before the stream starts, for ids outside the caller's scope.
    let first = queue.get(&scope, JobId(id)).await?;
    let checked = tokio::time::Instant::now();
    let stream = futures::stream::unfold(
        (Some(first), None::<Step>, false, checked),
        move |(pending, last, finished, mut checked)| {
            let queue = queue.clone();
            let scope = scope.clone();
            let state = state.clone();
            let secret = secret.clone();
            async move {
                if finished {
                    return None;
                }
                let mut stopping = state.stopping.subscribe();
                let mut pending = pending;
                loop {
                    let job = match pending.take() {
                        Some(job) => job,
                        None => {
                            tokio::select! {
                                () = tokio::time::sleep(POLL) => {}
                                // The server is shutting down: the client reconnects elsewhere.
                                _ = stopping.wait_for(|stop| *stop) => return None,
                            }
                            if let Some(secret) = &secret {
                                if checked.elapsed() >= RECHECK_KEY {
                                    match state.weave.authenticate(secret).await {
                                        Ok(_) => checked = tokio::time::Instant::now(),
                                        // A store that does not answer now is asked again at
                                        // the next poll; only a key that no longer works ends
                                        // the stream.
                                        Err(e) if e.kind() != opsweave::ErrorKind::Unauthorized => {
                                        }
                                        Err(e) => {
                                            let event = Event::default().event("error").data(
                                                json!({ "error": public_message(&e) }).to_string(),
                                            );
                                            return Some((Ok(event), (None, last, true, checked)));
                                        }
                                    }
                                }
                            }
                            match queue.get(&scope, JobId(id)).await {
                                Ok(job) => job,
                                Err(e) => {
                                    let event = Event::default()
                                        .event("error")
                                        .data(json!({ "error": public_message(&e) }).to_string());
                                    return Some((Ok(event), (None, last, true, checked)));
                                }
                            }
                        }
                    };
                    let step = Step {
                        status: job.status,
                        progress: job.progress,
                        message: job.message.clone(),
                        error: public_job_error(&job),
                    };
                    if last.as_ref() == Some(&step) {
                        continue;
                    }
                    let data = json!({
                        "id": job.id,
                        "status": step.status,
                        "progress": step.progress,
                        "percent": (step.progress * 100.0).round(),
                        "message": step.message,
                        "error": step.error,
                    });
                    let event = Event::default()
                        .event(step.status.as_str())
                        .data(data.to_string());
                    let done = step.status.is_final();
                    return Some((Ok(event), (None, Some(step), done, checked)));
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// An ingest as a JSON body: a preset or a mapping, and rows or file content.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"preset": "odoo-crm-lead", "name": "odoo.csv", "content":
    "id,name,partner_name,email_from,website,expected_revenue,probability,date_deadline,stage_id,user_id,priority\n\
     __export__.crm_lead_900_fz,Fuzzed opportunity,Globex Corporation,hank@globex.com,globex.com,1000,50,2026-11-23,Qualified,Alan Turing,2\n"}))]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// A built-in mapping (`odoo-crm-lead`, `ace-opportunity`, `gmail-message`, `jira-issue`,
    /// `github-issue`).
    pub preset: Option<String>,
    /// A mapping (the JSON form of a mapping file).
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<Value>,
    /// Items as JSON objects.
    #[schema(value_type = Option<Vec<Object>>)]
    pub rows: Option<Vec<Value>>,
    /// File content (CSV, JSON Lines or JSON), as text.
    pub content: Option<String>,
    /// The format of `content`: csv, jsonl or json (default: the mapping's, else from `name`).
    pub format: Option<String>,
    /// A name for reports and rejections (default `upload`).
    pub name: Option<String>,
    /// The same key in the same scope returns the first job.
    pub idempotency_key: Option<String>,
}

fn mapping_of(preset: Option<&str>, mapping: Option<Mapping>) -> ApiResult<Mapping> {
    let mapping = match (preset, mapping) {
        (Some(_), Some(_)) => {
            return Err(Problem::invalid("give a preset or a mapping, not both").on_field("mapping"))
        }
        (Some(name), None) => opsweave::preset(name).map_err(|e| e.on_field("preset"))?,
        (None, Some(m)) => m,
        (None, None) => {
            return Err(Problem::invalid("give a preset or a mapping").on_field("preset"))
        }
    };
    mapping.compile().map_err(|e| {
        let field = e
            .location()
            .field
            .clone()
            .unwrap_or_else(|| "mapping".into());
        e.on_field(field)
    })?;
    Ok(mapping)
}

fn format_of(
    text: Option<&str>,
    name: &str,
    mapping: &Mapping,
) -> ApiResult<Option<opsweave::Format>> {
    let format = match text {
        Some("csv") => Some(opsweave::Format::Csv),
        Some("jsonl") => Some(opsweave::Format::Jsonl),
        Some("json") => Some(opsweave::Format::Json),
        Some(other) => {
            return Err(
                Problem::invalid(format!("unknown format `{other}` (csv, jsonl, json)"))
                    .on_field("format"),
            )
        }
        None => mapping.format.or_else(|| {
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".csv") {
                Some(opsweave::Format::Csv)
            } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
                Some(opsweave::Format::Jsonl)
            } else if lower.ends_with(".json") {
                Some(opsweave::Format::Json)
            } else {
                None
            }
        }),
    };
    Ok(format)
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 200 || name.contains(char::is_control) {
        return Err(
            Problem::invalid("name must be 1 to 200 bytes without control characters")
                .on_field("name"),
        );
    }
    Ok(())
}

/// Ingests a file upload (multipart: `file`, and `preset` or `mapping` as TOML / JSON text) or a
/// JSON body; answers 202 with the `ingest` job, whose events show its progress.
#[utoipa::path(post, path = "/api/ingest", tag = "ingest", request_body(content = IngestBody, description = "JSON body, or multipart/form-data with `file` and `preset` / `mapping`"), security(("key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key in the same scope returns the first job")),
    responses((status = 202, description = "the ingest job", body = JobView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the idempotency key was used for another job", body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json")))]
pub async fn ingest(
    caller: Caller,
    State(state): State<AppState>,
    _: Query<NoParams>,
    request: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Action::Write)?;
    let headers = request.headers().clone();
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (payload, key) = if multipart {
        (
            from_upload(
                Multipart::from_request(request, &state)
                    .await
                    .map_err(Problem::from)?,
            )
            .await?,
            None,
        )
    } else {
        let Body(body) = Body::<IngestBody>::from_request(request, &state).await?;
        let mapping = body
            .mapping
            .map(|m| {
                serde_json::from_value::<Mapping>(m)
                    .map_err(|e| Problem::invalid(format!("mapping: {e}")).on_field("mapping"))
            })
            .transpose()?;
        let mapping = mapping_of(body.preset.as_deref(), mapping)?;
        let name = body.name.unwrap_or_else(|| "upload".into());
        check_name(&name)?;
        let payload = match (body.rows, body.content) {
            (Some(rows), None) => InlineIngest {
                mapping,
                name,
                rows: Some(rows),
                content_b64: None,
                format: None,
            },
            (None, Some(content)) => {
                let format = format_of(body.format.as_deref(), &name, &mapping)?;
                InlineIngest {
                    mapping,
                    name,
                    rows: None,
                    content_b64: Some(
                        base64::engine::general_purpose::STANDARD.encode(content.as_bytes()),
                    ),
                    format,
                }
            }
            _ => {
                return Err(
                    Problem::invalid("give rows or content, not both or neither").on_field("rows"),
                )
            }
        };
        (payload, body.idempotency_key)
    };
    if payload.rows.is_none() && payload.format.is_none() {
        return Err(Problem::invalid(format!(
            "cannot tell the format of `{}`: give format (csv, jsonl, json)",
            payload.name
        ))
        .on_field("format"));
    }
    let value = serde_json::to_value(&payload)
        .map_err(|e| Problem::from(opsweave::Error::internal(format!("ingest payload: {e}"))))?;
    let mut job = NewJob::new(INGEST_JOB, caller.scope.clone(), value).with_max_attempts(1);
    job.idempotency_key = idempotency_key(&headers, key)?;
    job.validate()?;
    super::jobs::submit(&state, job).await
}

async fn from_upload(mut form: Multipart) -> ApiResult<InlineIngest> {
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut preset = None;
    let mut mapping_text = None;
    let mut format = None;
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        // A second part of one name would replace the first without a word: one file (and one
        // of each setting) per request.
        let given = match name.as_str() {
            "file" => file.is_some(),
            "preset" => preset.is_some(),
            "mapping" => mapping_text.is_some(),
            "format" => format.is_some(),
            _ => false,
        };
        if given {
            return Err(Problem::invalid(format!(
                "the form has two `{name}` fields: send one file per request (one of each field)"
            ))
            .on_field(name));
        }
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or("upload").to_string();
                let bytes = field.bytes().await?;
                file = Some((file_name, bytes.to_vec()));
            }
            "preset" => preset = Some(field.text().await?),
            "mapping" => mapping_text = Some(field.text().await?),
            "format" => format = Some(field.text().await?),
            other => {
                return Err(Problem::invalid(format!(
                    "unknown form field `{other}` (file, preset, mapping, format)"
                ))
                .on_field(other.to_string()))
            }
        }
    }
    let (name, bytes) =
        file.ok_or_else(|| Problem::invalid("the form has no `file` field").on_field("file"))?;
    check_name(&name)?;
    let mapping = mapping_text
        .map(|text| {
            let trimmed = text.trim_start();
            if trimmed.starts_with('{') {
                Mapping::from_json(&text)
            } else {
                Mapping::from_toml(&text)
            }
            .map_err(|e| Problem::from(e.on_field("mapping")))
        })
        .transpose()?;
    let mapping = mapping_of(preset.as_deref(), mapping)?;
    let format = format_of(format.as_deref(), &name, &mapping)?;
    Ok(InlineIngest {
        mapping,
        name,
        rows: None,
        content_b64: Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        format,
    })
}
