//! The `opsweave` npm package's native addon: a thin handle around the `opsweave::Weave` facade.
//! Every method returns a Promise; the work runs on a libuv worker and the binding's tokio
//! runtime, never on the main thread. Errors carry a stable `code` per kind (see `errors`).

/// The extension's own allocator, as the `opsweave` binary's: an ingest hands every batch from
/// the mapping threads to the writer, which the system allocator does slowly (the Rust harness
/// took 15.7 s on it for a 1M-row load, 9.4 s on mimalloc; docs/benchmarks.md, issues 2 and 7).
/// Only Rust's allocations: the host's `malloc` (and SQLite's, through it) stays as it is.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod errors;
mod task;
mod types;

use args::{
    job_id, job_id_arg, job_status, limit, mapping_of, new_job, parse_horizons, parse_id,
    parse_window, recall_options, resolver_of, run_jobs_options, text_arg, texts_arg, whole,
};
use napi::bindgen_prelude::*;
use napi::{Env, ValueType};
use napi_derive::napi;
use opsweave::{Config, Error, Result, Scope, UsageQuery};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use task::Op;
use types::{
    EnqueueOptions, EventsOptions, FocusOptions, GraphOptions, IngestOptions, JobsOptions,
    MarkOptions, OpenJobsOptions, OpenOptions, RecallOptions, ReviewQueueOptions, RunJobsOptions,
    UsageOptions,
};

/// Converts a facade result into its JavaScript shape through its JSON form.
fn shape<T: DeserializeOwned, S: Serialize>(value: &S) -> Result<T> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::internal(format!("cannot convert a result: {e}")))
}

/// An open opsweave store (embedded SQLite by default).
#[napi]
pub struct Weave {
    inner: Arc<RwLock<Option<opsweave::Weave>>>,
}

/// Builds the configuration: defaults, then `options.config` (when given), then `OPSWEAVE_*`
/// variables, then the explicit arguments.
fn config_of(url: Option<String>, options: OpenOptions) -> Result<Config> {
    let mut config = match &options.config {
        Some(path) => Config::load(Some(std::path::Path::new(path)))?,
        None => {
            let mut config = Config::default();
            config.apply_env(|name| std::env::var(name).ok());
            config
        }
    };
    if let Some(url) = url {
        config.db = url;
    }
    if let Some(org) = options.org {
        config.scope = Scope::org(org);
    }
    if options.client.is_some() {
        config.scope.client = options.client;
    }
    if options.project.is_some() {
        config.scope.project = options.project;
    }
    config.scope.validate()?;
    Ok(config)
}

impl Weave {
    /// The facade handle, or `Unavailable` once closed.
    fn weave(&self) -> Result<opsweave::Weave> {
        self.inner
            .read()
            .map_err(|_| Error::internal("the handle's lock is poisoned"))?
            .clone()
            .ok_or_else(|| Error::unavailable("this Weave is closed"))
    }

    /// An operation on the handle, as a promise-returning task.
    fn op<T, F, Fut>(&self, f: F) -> AsyncTask<Op<T>>
    where
        T: Send + ToNapiValue + TypeName + 'static,
        F: FnOnce(opsweave::Weave) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let weave = self.weave();
        AsyncTask::new(Op::new(async move { f(weave?).await }))
    }
}

#[napi]
impl Weave {
    /// Opens the store at `url` (`sqlite://PATH`; default from the configuration, then
    /// `OPSWEAVE_DB`, then `sqlite://./opsweave.db`).
    #[napi(strict, ts_return_type = "Promise<Weave>")]
    pub fn open(url: Option<String>, options: Option<OpenOptions>) -> AsyncTask<Op<Weave>> {
        let config = config_of(url, options.unwrap_or_default());
        AsyncTask::new(Op::new(async move {
            let weave = opsweave::Weave::open_with(config?).await?;
            Ok(Weave {
                inner: Arc::new(RwLock::new(Some(weave))),
            })
        }))
    }

    /// Releases the store; later calls reject with code `UNAVAILABLE`.
    #[napi]
    pub fn close(&self) {
        if let Ok(mut weave) = self.inner.write() {
            weave.take();
        }
    }

    /// True once closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.read().map_or(true, |w| w.is_none())
    }

    /// The scope this handle works in.
    #[napi(getter, ts_return_type = "Scope")]
    pub fn scope(&self, env: Env) -> napi::Result<types::Scope> {
        self.weave()
            .and_then(|w| shape(&w.default_scope()))
            .map_err(|e| errors::to_js(&env, &e))
    }

    /// Ingests a file (CSV, JSON Lines, JSON) or rows (an array of objects) with a preset or a
    /// mapping. Bad rows do not stop it: they are in `report.rejected` (line, field, reason).
    #[napi(
        strict,
        ts_args_type = "source: string | Array<Record<string, any>>, options: IngestOptions",
        ts_return_type = "Promise<IngestReport>"
    )]
    pub fn ingest(
        &self,
        env: Env,
        source: Unknown<'_>,
        options: Option<IngestOptions>,
    ) -> napi::Result<AsyncTask<Op<types::IngestReport>>> {
        let options = options.unwrap_or_default();
        let mapping = mapping_of(options.preset.as_deref(), options.mapping.as_ref());
        let source = match source.get_type()? {
            ValueType::String => Source::Path(PathBuf::from(
                source.coerce_to_string()?.into_utf8()?.as_str()?,
            )),
            ValueType::Object if source.is_array()? => {
                let rows: Vec<serde_json::Value> = env.from_js_value(source)?;
                Source::Rows(rows)
            }
            other => {
                return Err(errors::type_error(
                    &env,
                    &format!(
                        "The \"source\" argument must be a file path (string) or an array of objects; received {other}"
                    ),
                ))
            }
        };
        let name = options.name.unwrap_or_else(|| "rows".to_string());
        Ok(self.op(move |weave| async move {
            let mapping = mapping?;
            let scope = weave.default_scope();
            let report = match source {
                Source::Path(path) => weave.ingest_path(&path, &mapping, &scope, None).await?,
                Source::Rows(rows) => weave.ingest_rows(rows, &name, &mapping, &scope).await?,
            };
            shape(&report)
        }))
    }

    /// The top `limit` (default 3) open tasks of each horizon (today, week, month by default).
    #[napi(strict, ts_return_type = "Promise<Focus>")]
    pub fn focus(&self, options: Option<FocusOptions>) -> AsyncTask<Op<types::Focus>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let limit = limit(options.limit, 3)?;
            let horizons = parse_horizons(options.horizons)?;
            let now = weave.parse_as_of(options.now.as_deref())?;
            shape(
                &weave
                    .focus(&weave.default_scope(), &horizons, limit, now)
                    .await?,
            )
        })
    }

    /// One task, ranked now (or at `now`).
    #[napi(strict, ts_return_type = "Promise<RankedTask>")]
    pub fn task(&self, id: String, now: Option<String>) -> AsyncTask<Op<types::RankedTask>> {
        self.op(move |weave| async move {
            let id = parse_id(&id)?;
            let now = weave.parse_as_of(now.as_deref())?;
            shape(&weave.task(&weave.default_scope(), id, now).await?)
        })
    }

    /// Marks a task done (completing a done task changes nothing).
    #[napi(strict, ts_return_type = "Promise<Task>")]
    pub fn complete(&self, id: String, actor: Option<String>) -> AsyncTask<Op<types::Task>> {
        self.op(move |weave| async move {
            let id = parse_id(&id)?;
            let actor = actor.unwrap_or_else(|| "node".to_string());
            shape(&weave.complete(&weave.default_scope(), id, &actor).await?)
        })
    }

    /// Undoes the task's last status change (undoing twice changes nothing more).
    #[napi(strict, ts_return_type = "Promise<Task>")]
    pub fn undo(&self, id: String, actor: Option<String>) -> AsyncTask<Op<types::Task>> {
        self.op(move |weave| async move {
            let id = parse_id(&id)?;
            let actor = actor.unwrap_or_else(|| "node".to_string());
            shape(&weave.undo(&weave.default_scope(), id, &actor).await?)
        })
    }

    /// Pins a task to today and/or boosts its score by `boost` points.
    #[napi(strict, ts_return_type = "Promise<Task>")]
    pub fn mark(&self, id: String, options: Option<MarkOptions>) -> AsyncTask<Op<types::Task>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let id = parse_id(&id)?;
            let boost = options.boost.unwrap_or(0.0);
            if !boost.is_finite() {
                return Err(Error::invalid("boost must be a finite number").on_field("boost"));
            }
            let pinned = options.pinned.unwrap_or(false);
            shape(
                &weave
                    .mark(&weave.default_scope(), id, boost, pinned)
                    .await?,
            )
        })
    }

    /// The work graph: nodes, edges and lanes (past7d, today, week[, month]).
    #[napi(strict, ts_return_type = "Promise<Graph>")]
    pub fn graph(&self, options: Option<GraphOptions>) -> AsyncTask<Op<types::Graph>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let window = parse_window(options.window.as_deref())?;
            let now = weave.parse_as_of(options.now.as_deref())?;
            shape(&weave.graph(&weave.default_scope(), window, now).await?)
        })
    }

    /// Full-text search over titles and bodies, best first (default 10 hits).
    #[napi(strict, ts_return_type = "Promise<Array<SearchHit>>")]
    pub fn search(
        &self,
        query: String,
        limit: Option<f64>,
    ) -> AsyncTask<Op<Vec<types::SearchHit>>> {
        self.op(move |weave| async move {
            let limit = args::limit(limit, 10)?;
            shape(&weave.search(&weave.default_scope(), &query, limit).await?)
        })
    }

    /// One record.
    #[napi(strict, ts_return_type = "Promise<StoredRecord>")]
    pub fn record(&self, id: String) -> AsyncTask<Op<types::StoredRecord>> {
        self.op(move |weave| async move {
            let id = parse_id(&id)?;
            shape(&weave.record(&weave.default_scope(), id).await?)
        })
    }

    /// Matches stored records with a resolver (a preset name such as `odoo-ace-opportunities`,
    /// or an object of its fields): writes links and queues unsure pairs for review.
    #[napi(
        ts_args_type = "resolver: string | Record<string, any>, incremental?: boolean | undefined | null",
        ts_return_type = "Promise<ResolveReport>"
    )]
    pub fn resolve(
        &self,
        resolver: serde_json::Value,
        incremental: Option<bool>,
    ) -> AsyncTask<Op<types::ResolveReport>> {
        self.op(move |weave| async move {
            let resolver = resolver_of(&resolver)?;
            let incremental = incremental.unwrap_or(false);
            shape(
                &weave
                    .resolve(&weave.default_scope(), &resolver, incremental)
                    .await?,
            )
        })
    }

    /// Pending review pairs, most likely matches first.
    #[napi(strict, ts_return_type = "Promise<Array<ReviewItem>>")]
    pub fn review_queue(
        &self,
        options: Option<ReviewQueueOptions>,
    ) -> AsyncTask<Op<Vec<types::ReviewItem>>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let limit = limit(options.limit, 100)?;
            shape(
                &weave
                    .review_queue(&weave.default_scope(), options.resolver.as_deref(), limit)
                    .await?,
            )
        })
    }

    /// Accepts (links the pair) or rejects a review pair of `resolver`.
    #[napi(
        ts_args_type = "resolver: string | Record<string, any>, left: string, right: string, accept: boolean",
        ts_return_type = "Promise<ReviewItem>"
    )]
    pub fn decide_review(
        &self,
        resolver: serde_json::Value,
        left: String,
        right: String,
        accept: bool,
    ) -> AsyncTask<Op<types::ReviewItem>> {
        self.op(move |weave| async move {
            let resolver = resolver_of(&resolver)?;
            let pair = (
                left.parse().map_err(|e: Error| e.on_field("left"))?,
                right.parse().map_err(|e: Error| e.on_field("right"))?,
            );
            shape(
                &weave
                    .decide_review(&weave.default_scope(), &resolver, pair, accept)
                    .await?,
            )
        })
    }

    /// Events (about `subject` when given) after sequence `after`, oldest first.
    #[napi(strict, ts_return_type = "Promise<Array<Event>>")]
    pub fn events(&self, options: Option<EventsOptions>) -> AsyncTask<Op<Vec<types::Event>>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let subject = options.subject.as_deref().map(parse_id).transpose()?;
            let limit = args::limit_up_to(options.limit, 100, 10_000)?;
            let after = options.after.unwrap_or(0);
            shape(
                &weave
                    .events(&weave.default_scope(), subject, after, limit)
                    .await?,
            )
        })
    }

    /// The `k` (default 10) records that best answer `query`, best first: dense k-NN over the
    /// embedding model's vectors and BM25 over the full-text index (`mode: 'hybrid'`), or either
    /// alone (`'dense'`, `'bm25'`), fused by reciprocal rank; only of `entities` and `sources`
    /// when given; `recency` favours recent records. Each hit's `explanation` says which rankers
    /// found it and why it ranked.
    #[napi(
        strict,
        ts_args_type = "query: string, options?: RecallOptions | undefined | null",
        ts_return_type = "Promise<Array<RecallHit>>"
    )]
    pub fn recall(
        &self,
        env: Env,
        query: Unknown<'_>,
        options: Option<RecallOptions>,
    ) -> napi::Result<AsyncTask<Op<Vec<types::RecallHit>>>> {
        let query = text_arg(&env, query, "query")?;
        let options = recall_options(options.unwrap_or_default());
        Ok(self.op(move |weave| async move {
            let options = options?;
            shape(
                &weave
                    .recall(&weave.default_scope(), &query, &options)
                    .await?,
            )
        }))
    }

    /// Stores a memory note (entity `note`, source `memory`) and its vector, so recall finds it
    /// at once; resolves to its id. Needs an embedding model (`embed.model`).
    #[napi(
        strict,
        ts_args_type = "text: string, tags?: Array<string> | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn remember(
        &self,
        env: Env,
        text: Unknown<'_>,
        tags: Option<Unknown<'_>>,
    ) -> napi::Result<AsyncTask<Op<String>>> {
        let text = text_arg(&env, text, "text")?;
        let tags = texts_arg(&env, tags, "tags")?.unwrap_or_default();
        Ok(self.op(move |weave| async move {
            let id = weave.remember(&weave.default_scope(), &text, &tags).await?;
            Ok(id.to_string())
        }))
    }

    /// Replaces a memory's text (and its tags, when given) and its vector.
    #[napi(
        strict,
        ts_args_type = "id: string, text: string, tags?: Array<string> | undefined | null",
        ts_return_type = "Promise<StoredRecord>"
    )]
    pub fn update_memory(
        &self,
        env: Env,
        id: Unknown<'_>,
        text: Unknown<'_>,
        tags: Option<Unknown<'_>>,
    ) -> napi::Result<AsyncTask<Op<types::StoredRecord>>> {
        let id = text_arg(&env, id, "id")?;
        let text = text_arg(&env, text, "text")?;
        let tags = texts_arg(&env, tags, "tags")?;
        Ok(self.op(move |weave| async move {
            let id = parse_id(&id)?;
            shape(
                &weave
                    .update_memory(&weave.default_scope(), id, &text, tags.as_deref())
                    .await?,
            )
        }))
    }

    /// Removes a memory for good: its record, full-text row and vectors.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<void>")]
    pub fn forget(&self, env: Env, id: Unknown<'_>) -> napi::Result<AsyncTask<Op<()>>> {
        let id = text_arg(&env, id, "id")?;
        Ok(self.op(move |weave| async move {
            let id = parse_id(&id)?;
            weave.forget(&weave.default_scope(), id).await
        }))
    }

    /// Embeds every record whose text changed since its last vector (or that has none) with the
    /// configured model (`embed.model`), in batches that each commit; a stopped run resumes.
    #[napi(strict, ts_return_type = "Promise<EmbedReport>")]
    pub fn embed(&self) -> AsyncTask<Op<types::EmbedReport>> {
        self.op(move |weave| async move {
            let embedder = weave.embedder().await?;
            shape(
                &weave
                    .embed(&weave.default_scope(), embedder.as_ref(), None)
                    .await?,
            )
        })
    }

    /// Model calls, tokens and cost (from the configured price book) per group and model, from
    /// `start` (inclusive; default 30 days before `end`) to `end` (exclusive; default now).
    #[napi(strict, ts_return_type = "Promise<Array<UsageTotal>>")]
    pub fn usage(&self, options: Option<UsageOptions>) -> AsyncTask<Op<Vec<types::UsageTotal>>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let query = UsageQuery::parse(
                weave.default_scope(),
                options.start.as_deref(),
                options.end.as_deref(),
                options.group_by.as_deref().unwrap_or("model"),
            )?;
            shape(&weave.usage_report(&query).await?)
        })
    }

    /// Queues a background job of `kind` (`sleep`, `noop`, `ingest`, `embed`, `match`, or a kind
    /// of your own that your own workers run) with `payload` as its arguments, in this handle's
    /// scope; resolves to the stored job (`status: 'queued'`). Enqueueing an `idempotencyKey`
    /// again resolves to the job stored first, whatever its status; reusing the key for another
    /// kind or payload rejects with `CONFLICT`. `runJobs` runs the built-in kinds.
    #[napi(
        ts_args_type = "kind: string, payload?: any, options?: EnqueueOptions | undefined | null",
        ts_return_type = "Promise<Job>"
    )]
    pub fn enqueue(
        &self,
        env: Env,
        kind: Unknown<'_>,
        payload: Option<serde_json::Value>,
        options: Option<EnqueueOptions>,
    ) -> napi::Result<AsyncTask<Op<types::Job>>> {
        let kind = text_arg(&env, kind, "kind")?;
        let payload = payload.unwrap_or(serde_json::Value::Null);
        let options = options.unwrap_or_default();
        Ok(self.op(move |weave| async move {
            let job = new_job(kind, payload, weave.default_scope(), options)?;
            shape(&weave.enqueue(job).await?)
        }))
    }

    /// One job of this handle's scope by its id (a whole number); `NOT_FOUND` for a job of
    /// another scope.
    #[napi(ts_args_type = "id: number", ts_return_type = "Promise<Job>")]
    pub fn job(&self, env: Env, id: Unknown<'_>) -> napi::Result<AsyncTask<Op<types::Job>>> {
        let id = job_id_arg(&env, id)?;
        Ok(self.op(move |weave| async move {
            let id = job_id(id)?;
            shape(&weave.job(&weave.default_scope(), id).await?)
        }))
    }

    /// Jobs of this handle's scope, newest first: only those of `status` when given, at most
    /// `limit` (1 to 1000, default 50).
    #[napi(strict, ts_return_type = "Promise<Array<Job>>")]
    pub fn jobs(&self, options: Option<JobsOptions>) -> AsyncTask<Op<Vec<types::Job>>> {
        let options = options.unwrap_or_default();
        self.op(move |weave| async move {
            let status = job_status(options.status.as_deref())?;
            let limit = whole(options.limit.unwrap_or(50.0), "limit", "limit", 1, 1000)?;
            shape(
                &weave
                    .list_jobs(&weave.default_scope(), status, limit as usize)
                    .await?,
            )
        })
    }

    /// How many jobs of this handle's scope (only of `kinds` when given) are queued or running.
    #[napi(strict, ts_return_type = "Promise<OpenJobs>")]
    pub fn open_jobs(&self, options: Option<OpenJobsOptions>) -> AsyncTask<Op<types::OpenJobs>> {
        let kinds = options.unwrap_or_default().kinds.unwrap_or_default();
        self.op(move |weave| async move {
            shape(
                &weave
                    .count_open_jobs(&weave.default_scope(), &kinds)
                    .await?,
            )
        })
    }

    /// Cancels a queued or running job of this handle's scope (a running one stops at its
    /// worker's next heartbeat); resolves to it, `status: 'cancelled'`. Cancelling a cancelled
    /// job changes nothing; a finished one (`done`, `failed`) rejects with `CONFLICT`.
    #[napi(ts_args_type = "id: number", ts_return_type = "Promise<Job>")]
    pub fn cancel_job(&self, env: Env, id: Unknown<'_>) -> napi::Result<AsyncTask<Op<types::Job>>> {
        let id = job_id_arg(&env, id)?;
        Ok(self.op(move |weave| async move {
            let id = job_id(id)?;
            shape(&weave.cancel_job(&weave.default_scope(), id).await?)
        }))
    }

    /// Runs the built-in worker (kinds `ingest`, `embed`, `match`, `sleep`, `noop`, or only
    /// `kinds`) in this process, `concurrency` jobs at once (default 2), until no job of this
    /// handle's scope of a kind it runs is queued or running (jobs waiting out a retry backoff
    /// included; jobs of kinds of your own are left for your workers), until `timeoutMs` has
    /// passed, or until `signal` aborts; the jobs in hand then finish before it resolves. The
    /// worker claims jobs of every scope, as `opsweave worker` does; it is named `node-PID-RUN`.
    #[napi(
        ts_args_type = "options?: RunJobsOptions | undefined | null, signal?: AbortSignal | undefined | null",
        ts_return_type = "Promise<WorkerReport>"
    )]
    pub fn run_jobs(
        &self,
        env: Env,
        options: Option<RunJobsOptions>,
        signal: Option<Object<'_>>,
    ) -> napi::Result<AsyncTask<Op<types::WorkerReport>>> {
        let options = options.unwrap_or_default();
        let (stop, settle) = match args::abort_arg(&env, signal)? {
            Some((aborted, settle)) => (Some(aborted), settle),
            None => (None, None),
        };
        let weave = self.weave();
        let run = async move {
            let weave = weave?;
            let (worker, timeout) = run_jobs_options(options)?;
            let stop = async move {
                match stop {
                    // A dropped sender (the signal collected unaborted) never stops the run.
                    Some(mut aborted) => {
                        if aborted.wait_for(|a| *a).await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            shape(
                &weave
                    .run_jobs_until(
                        &weave.default_scope(),
                        worker,
                        timeout,
                        stop,
                        std::future::pending(),
                    )
                    .await?,
            )
        };
        Ok(AsyncTask::new(Op::new(run).on_settle(settle)))
    }
}

/// What `ingest` reads.
enum Source {
    Path(PathBuf),
    Rows(Vec<serde_json::Value>),
}

/// The names of the built-in presets.
#[napi]
pub fn presets() -> Vec<&'static str> {
    opsweave::mapping::presets::names()
}

/// A built-in preset's mapping as an object, to adapt and pass as `mapping`.
#[napi(strict, ts_return_type = "Record<string, any>")]
pub fn preset(env: Env, name: String) -> napi::Result<serde_json::Value> {
    opsweave::preset(&name)
        .map_err(|e| e.on_field("preset"))
        .and_then(|m| shape::<serde_json::Value, _>(&m))
        .map_err(|e| errors::to_js(&env, &e))
}

/// Rejects with the error opsweave gives for an error of `kind` (`invalid_input`, `not_found`,
/// `conflict`, `unauthorized`, `unavailable`, `internal`): lets tests check the error mapping for
/// kinds a store cannot be made to produce on demand.
#[napi(js_name = "_errorForTest", ts_return_type = "Promise<void>")]
pub fn error_for_test(
    kind: String,
    message: String,
    field: Option<String>,
    cause: Option<String>,
) -> AsyncTask<Op<()>> {
    let parsed: std::result::Result<opsweave::ErrorKind, _> =
        serde_json::from_value(serde_json::Value::String(kind.clone()));
    let err = match parsed {
        Ok(kind) => {
            let mut err = Error::new(kind, message).in_file("test.csv").at_line(7);
            if let Some(field) = field {
                err = err.on_field(field);
            }
            if let Some(cause) = cause {
                err = err.with_source(std::io::Error::other(cause));
            }
            err
        }
        Err(_) => Error::invalid(format!("unknown error kind `{kind}`")).on_field("kind"),
    };
    AsyncTask::new(Op::failed(err))
}
