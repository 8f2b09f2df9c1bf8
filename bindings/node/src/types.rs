//! The shapes results take in JavaScript. Each is read from the facade's JSON (serde), so field
//! names follow the core types (in camelCase); napi generates the TypeScript interfaces from them.

#![allow(missing_docs)] // The napi macros add items without docs; every type below has one.

use napi_derive::napi;
use serde::Deserialize;
use std::collections::HashMap;

/// Who records belong to: an org, optionally narrowed to a client and a project.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Scope {
    pub org: String,
    pub client: Option<String>,
    pub project: Option<String>,
}

/// An item that could not be ingested: where it starts, the field at fault, and why.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Rejection {
    pub line: i64,
    pub field: Option<String>,
    pub reason: String,
}

/// What an ingest did.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct IngestReport {
    pub file: String,
    pub mapping: String,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: Vec<Rejection>,
    pub rejected_total: i64,
    pub seconds: f64,
}

/// One part of a score: its raw value, weight, points and reason.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Component {
    pub value: f64,
    pub weight: f64,
    pub points: f64,
    pub reason: String,
}

/// How a score was made.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Breakdown {
    pub urgency: Component,
    pub importance: Component,
    pub recency: Component,
    pub source: Component,
    pub boost: Component,
    pub pinned: bool,
}

/// A score in points (higher first) and its breakdown.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Priority {
    pub score: f64,
    pub breakdown: Breakdown,
}

/// A task as stored: a record's actionable state. Dates are ISO 8601 text.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub id: String,
    pub scope: Scope,
    pub title: String,
    pub source_kind: String,
    pub url: Option<String>,
    #[napi(ts_type = "'todo' | 'doing' | 'done' | 'dropped'")]
    pub status: String,
    pub due: Option<String>,
    pub importance: f64,
    pub importance_reason: String,
    pub boost: f64,
    pub pinned: bool,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

/// A task ranked for focus: the task's fields, its horizon and its explained score.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct RankedTask {
    pub id: String,
    pub scope: Scope,
    pub title: String,
    pub source_kind: String,
    pub url: Option<String>,
    #[napi(ts_type = "'todo' | 'doing' | 'done' | 'dropped'")]
    pub status: String,
    pub due: Option<String>,
    pub importance: f64,
    pub importance_reason: String,
    pub boost: f64,
    pub pinned: bool,
    pub updated_at: String,
    pub completed_at: Option<String>,
    #[napi(ts_type = "'today' | 'week' | 'month' | 'later'")]
    pub horizon: String,
    pub priority: Priority,
}

/// The top tasks per horizon asked for, best first.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Focus {
    pub today: Option<Vec<RankedTask>>,
    pub week: Option<Vec<RankedTask>>,
    pub month: Option<Vec<RankedTask>>,
    pub later: Option<Vec<RankedTask>>,
}

/// A node of the work graph: one task in one lane.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct GraphNode {
    pub id: String,
    pub title: String,
    pub source_kind: String,
    #[napi(ts_type = "'todo' | 'doing' | 'done' | 'dropped'")]
    pub status: String,
    #[napi(ts_type = "'past7d' | 'today' | 'week' | 'month'")]
    pub lane: String,
    pub score: Option<f64>,
    pub due: Option<String>,
    pub completed_at: Option<String>,
}

/// A directed, weighted edge between two records, with its evidence.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub kind: String,
    pub from: String,
    pub to: String,
    pub weight: f64,
    pub evidence: String,
}

/// Node ids per lane, best first (past7d: most recent first).
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Lanes {
    #[napi(js_name = "past7d")]
    pub past7d: Option<Vec<String>>,
    pub today: Option<Vec<String>>,
    pub week: Option<Vec<String>>,
    pub month: Option<Vec<String>>,
}

/// Nodes, the links among them, and the node ids of each lane.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<Link>,
    pub lanes: Lanes,
}

/// A full-text hit: the record, an excerpt around the match, and its relevance.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    pub entity: String,
    pub source_kind: String,
    pub snippet: String,
    pub score: f64,
}

/// Where a record came from: the kind of source and the item's id there.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct SourceRef {
    pub kind: String,
    pub external_id: String,
    pub url: Option<String>,
}

/// A normalised record; `fields` maps each field to `{ type: value }`.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct StoredRecord {
    pub id: String,
    pub scope: Scope,
    pub source: SourceRef,
    pub entity: String,
    pub title: String,
    pub body: String,
    pub fields: HashMap<String, serde_json::Value>,
    pub created_at: Option<String>,
    pub updated_at: String,
}

/// An entry of the append-only event log; `kind` holds its `type` and details.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub scope: Scope,
    pub actor: String,
    pub subject: Option<String>,
    pub kind: serde_json::Value,
    pub at: String,
}

/// What a resolve (matching) run did.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct ResolveReport {
    pub resolver: String,
    /// `full` (model fitted anew) or `incremental`.
    pub mode: String,
    pub left_records: i64,
    pub right_records: i64,
    pub new_records: i64,
    pub candidates: i64,
    pub matched: i64,
    pub review: i64,
    pub seconds: f64,
}

/// A pair a resolver was unsure about, with each comparison's part in its score.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewItem {
    pub resolver: String,
    pub left: String,
    pub right: String,
    pub score: f64,
    pub probability: f64,
    pub explanation: Vec<serde_json::Value>,
    #[napi(ts_type = "'pending' | 'accepted' | 'rejected'")]
    pub status: String,
}

/// Options of `reviewQueue`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct ReviewQueueOptions {
    /// Only this resolver's pairs.
    pub resolver: Option<String>,
    /// At most this many (default 100).
    pub limit: Option<f64>,
}

/// How to open a store.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// A TOML configuration file.
    pub config: Option<String>,
    /// The organisation to work in (default `default`).
    pub org: Option<String>,
    /// Narrow to a client.
    pub client: Option<String>,
    /// Narrow to a project.
    pub project: Option<String>,
}

/// How to ingest: a preset by name, or a mapping (an object of its fields, or a file path).
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    pub preset: Option<String>,
    #[napi(ts_type = "Record<string, any> | string")]
    pub mapping: Option<serde_json::Value>,
    /// The name rows are reported under (default `rows`).
    pub name: Option<String>,
}

/// Which focus to compute.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct FocusOptions {
    /// Tasks per horizon (default 3, at most 1000).
    pub limit: Option<f64>,
    /// Horizons to list (default today, week, month).
    #[napi(ts_type = "Array<'today' | 'week' | 'month' | 'later'>")]
    pub horizons: Option<Vec<String>>,
    /// Rank as of this ISO 8601 instant or date (default: now); `date.toISOString()` fits.
    pub now: Option<String>,
}

/// Options of `graph`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct GraphOptions {
    /// `week` (default) or `month`.
    #[napi(ts_type = "'week' | 'month'")]
    pub window: Option<String>,
    /// As of this ISO 8601 instant or date (default: now).
    pub now: Option<String>,
}

/// Options of `mark`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct MarkOptions {
    /// Points added to the score.
    pub boost: Option<f64>,
    /// Pin to today.
    pub pinned: Option<bool>,
}

/// Options of `events`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Only events about this record.
    pub subject: Option<String>,
    /// Events after this sequence number.
    pub after: Option<i64>,
    /// At most this many (default 100).
    pub limit: Option<f64>,
}

/// Where one ranker placed a recall hit: its rank (1 = first), raw score and share of the
/// fused score.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct RankerHit {
    #[napi(ts_type = "'dense' | 'bm25'")]
    pub ranker: String,
    pub rank: i64,
    pub score: f64,
    pub contribution: f64,
}

/// Why a recall hit ranked where it did: the fused score, its reciprocal-rank part, the recency
/// factor and age when recency was asked for, and each ranker that found it.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct RecallExplanation {
    pub id: String,
    pub score: f64,
    pub rrf: f64,
    pub recency: Option<f64>,
    pub age_days: Option<f64>,
    pub found_by: Vec<RankerHit>,
}

/// A recall hit: the record, the start of its text, and the explained fused score.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct RecallHit {
    pub id: String,
    pub title: String,
    pub entity: String,
    pub source_kind: String,
    pub snippet: String,
    pub explanation: RecallExplanation,
}

/// What an embedding run did: the model, records found stale, embedded and skipped (no text),
/// those another run embedded meanwhile (`embeddedElsewhere`), model calls and tokens, whether the vectors were loaded in bulk (the index built once at the
/// end: a large first embedding on PostgreSQL), and the wall time.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct EmbedReport {
    pub model: String,
    pub dim: i64,
    pub stale: i64,
    pub embedded: i64,
    pub skipped_empty: i64,
    #[serde(default)]
    pub embedded_elsewhere: i64,
    pub calls: i64,
    pub tokens: i64,
    #[serde(default)]
    pub bulk_load: bool,
    pub seconds: f64,
}

/// How much age lowers a recall hit: its score is multiplied by
/// `(1 - weight) + weight * 0.5 ** (ageDays / halfLifeDays)`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct RecencyOptions {
    /// Age in days at which the decaying part is halved.
    pub half_life_days: f64,
    /// Share of the score that decays, in [0, 1] (default 1).
    pub weight: Option<f64>,
}

/// Options of `recall`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct RecallOptions {
    /// Hits to return (default 10, at most 1000).
    pub k: Option<f64>,
    /// Which rankers run (default `hybrid`).
    #[napi(ts_type = "'hybrid' | 'bm25' | 'dense'")]
    pub mode: Option<String>,
    /// Only these entity kinds (`note`, `task`, `issue`, ...).
    pub entities: Option<Vec<String>>,
    /// Only these source kinds (`memory`, `jira`, ...).
    pub sources: Option<Vec<String>>,
    /// Favour recent records.
    pub recency: Option<RecencyOptions>,
}

/// Options of `usage`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct UsageOptions {
    /// From this RFC 3339 instant or date (its midnight, UTC), inclusive; default 30 days before
    /// `end`.
    pub start: Option<String>,
    /// To this instant or date, exclusive; default now.
    pub end: Option<String>,
    /// What totals are grouped by (then by model); default `model`.
    #[napi(ts_type = "'org' | 'client' | 'project' | 'model'")]
    pub group_by: Option<String>,
}

/// Model calls and tokens of one group (`key`: its org, client, project or model; empty when the
/// scope part is absent) and model, with their cost in US dollars as decimal text from the
/// configured price book (`null` when some of the tokens have no price).
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct UsageTotal {
    pub key: String,
    /// Grouped by project: the project's client (empty when absent), as projects of two clients
    /// are summed apart.
    pub client: Option<String>,
    pub model: String,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub embedding_tokens: i64,
    pub cost_usd: Option<String>,
}

/// A background job as the queue holds it. Dates are ISO 8601 text; `payload` is the job's
/// arguments as given to `enqueue`.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    /// Assigned by the queue: a whole number, what `job` and `cancelJob` take.
    pub id: i64,
    /// What runs it: `sleep`, `noop`, `ingest`, `embed`, `match`, or a kind of your own.
    pub kind: String,
    #[napi(ts_type = "any")]
    pub payload: serde_json::Value,
    pub scope: Scope,
    #[napi(ts_type = "'queued' | 'running' | 'done' | 'failed' | 'cancelled'")]
    pub status: String,
    /// Attempts started so far (claims, including reclaims after a lost lease).
    pub attempts: i64,
    /// Attempts allowed before the job fails.
    pub max_attempts: i64,
    /// The pause after the first failed attempt, in milliseconds (doubled after each further one).
    #[serde(rename = "backoff")]
    pub backoff_ms: i64,
    /// Progress in [0, 1] reported by the worker.
    pub progress: f64,
    /// The worker's last progress note, or the run's summary (JSON) once done.
    pub message: Option<String>,
    pub idempotency_key: Option<String>,
    /// The worker holding the lease while it runs.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<String>,
    /// Not claimed before this instant.
    pub run_after: String,
    /// The last attempt's error.
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// Jobs still to finish: `queued` (retries waiting out a backoff and jobs waiting for their
/// `runAfter` included) and `running`.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct OpenJobs {
    pub queued: i64,
    pub running: i64,
}

/// Options of `openJobs`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct OpenJobsOptions {
    /// Only jobs of these kinds (absent or empty: every kind).
    pub kinds: Option<Vec<String>>,
}

/// What `runJobs` did: jobs completed, attempts that failed, and jobs lost to a cancel or an
/// expired lease.
#[napi(object)]
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerReport {
    pub done: i64,
    pub failed: i64,
    pub lost: i64,
}

/// Options of `enqueue`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Enqueueing the same key again in this scope returns the job stored first (the same kind
    /// and payload) or rejects with `CONFLICT` (another kind or payload).
    pub idempotency_key: Option<String>,
    /// Attempts allowed before the job fails (1 to 100, default 3).
    pub max_attempts: Option<f64>,
    /// The pause after the first failed attempt in milliseconds (default 1000, at most an hour);
    /// it doubles after each further one.
    pub backoff_ms: Option<f64>,
    /// Not run before this ISO 8601 instant or date (default: at once); `date.toISOString()`
    /// fits.
    pub run_after: Option<String>,
}

/// Options of `jobs`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct JobsOptions {
    /// Only jobs of this status.
    #[napi(ts_type = "'queued' | 'running' | 'done' | 'failed' | 'cancelled'")]
    pub status: Option<String>,
    /// At most this many, newest first (1 to 1000, default 50).
    pub limit: Option<f64>,
}

/// Options of `runJobs`.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct RunJobsOptions {
    /// Only jobs of these kinds (default: every built-in kind: ingest, embed, match, sleep,
    /// noop).
    pub kinds: Option<Vec<String>>,
    /// Jobs run at once (1 to 1024, default 2).
    pub concurrency: Option<f64>,
    /// Stop claiming after this many milliseconds (the jobs in hand still finish); default: run
    /// until no job of this scope is queued or running.
    pub timeout_ms: Option<f64>,
}
