//! `opsweave._opsweave`: the compiled half of the Python package. A thin handle around the
//! `opsweave::Weave` facade; the pure-Python `opsweave` package turns its dicts into typed objects.
//!
//! Every operation exists twice: `name` blocks with the GIL released (Ctrl-C cancels it) and
//! `aname` returns an asyncio future. Both run the same future on the binding's tokio runtime.

/// The extension's own allocator, as the `opsweave` binary's: an ingest hands every batch from
/// the mapping threads to the writer, which the system allocator does slowly (the Rust harness
/// took 15.7 s on it for a 1M-row load, 9.4 s on mimalloc; docs/benchmarks.md, issues 2 and 7).
/// Only Rust's allocations: the host's `malloc` (and SQLite's, through it) stays as it is.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod convert;
mod errors;
mod runtime;

use args::{
    mapping_of, parse_horizons, parse_id, parse_window, recall_options, resolver_of, MAX_LIMIT,
};
use convert::{from_python, to_python};
use errors::to_py;
use opsweave::matching::Resolver;
use opsweave::worker::WorkerOptions;
use opsweave::{
    Config, Error, JobId, JobStatus, NewJob, RecallOptions, Result, Scope, UsageQuery, Weave,
};
use pyo3::prelude::*;
use pyo3::types::PyList;
use runtime::{awaitable, awaitable_abandoning, block, block_stoppable, Output};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

/// A job id from Python: a positive integer.
fn job_id(id: i64) -> Result<JobId> {
    if id < 1 {
        return Err(
            Error::invalid(format!("job id {id} is not a job id (1 or more)")).on_field("id"),
        );
    }
    Ok(JobId(id))
}

/// The result of an operation as JSON, ready for `to_python`.
fn json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::internal(format!("cannot serialise a result: {e}")))
}

/// An open store: the facade's `Weave` and the scope calls work in.
#[pyclass(frozen, module = "opsweave._opsweave")]
pub struct NativeWeave {
    weave: RwLock<Option<Weave>>,
}

impl Output for NativeWeave {
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, self)?.into_any())
    }
}

/// Builds the configuration: defaults, then `config_file` (when given), then `OPSWEAVE_*`
/// variables, then the explicit arguments.
fn config_of(
    url: Option<String>,
    config_file: Option<PathBuf>,
    org: Option<String>,
    client: Option<String>,
    project: Option<String>,
) -> Result<Config> {
    let mut config = match &config_file {
        Some(path) => Config::load(Some(path))?,
        None => {
            let mut config = Config::default();
            config.apply_env(|name| std::env::var(name).ok());
            config
        }
    };
    if let Some(url) = url {
        config.db = url;
    }
    if let Some(org) = org {
        config.scope = Scope::org(org);
    }
    if client.is_some() {
        config.scope.client = client;
    }
    if project.is_some() {
        config.scope.project = project;
    }
    config.scope.validate()?;
    Ok(config)
}

async fn open_op(config: Result<Config>) -> Result<NativeWeave> {
    let weave = Weave::open_with(config?).await?;
    Ok(NativeWeave {
        weave: RwLock::new(Some(weave)),
    })
}

impl NativeWeave {
    /// The facade handle, or `Unavailable` once closed.
    fn weave(&self) -> Result<Weave> {
        self.weave
            .read()
            .map_err(|_| Error::internal("the handle's lock is poisoned"))?
            .clone()
            .ok_or_else(|| Error::unavailable("this Weave is closed"))
    }

    /// Runs `f` with the handle, as a future that owns everything it needs.
    fn with<F, Fut>(&self, f: F) -> impl Future<Output = Result<Value>> + Send + 'static
    where
        F: FnOnce(Weave) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        let weave = self.weave();
        async move { f(weave?).await }
    }

    fn ingest_path_op(
        &self,
        py: Python<'_>,
        path: PathBuf,
        preset: Option<String>,
        mapping: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<impl Future<Output = Result<Value>> + Send + 'static> {
        let mapping = mapping_of(py, preset.as_deref(), mapping)?;
        Ok(self.with(move |weave| async move {
            let scope = weave.default_scope();
            json(&weave.ingest_path(&path, &mapping, &scope, None).await?)
        }))
    }

    fn ingest_rows_op(
        &self,
        rows: &Bound<'_, PyAny>,
        name: String,
        preset: Option<String>,
        mapping: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<impl Future<Output = Result<Value>> + Send + 'static> {
        if !rows.is_instance_of::<PyList>() && !rows.is_instance_of::<pyo3::types::PyTuple>() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "rows must be a list of dicts, not {}",
                convert::type_name(rows)
            )));
        }
        let py = rows.py();
        let Value::Array(rows) = from_python(rows, "rows")? else {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "rows must be a list of dicts",
            ));
        };
        let mapping = mapping_of(py, preset.as_deref(), mapping)?;
        Ok(self.with(move |weave| async move {
            let scope = weave.default_scope();
            json(&weave.ingest_rows(rows, &name, &mapping, &scope).await?)
        }))
    }

    fn focus_op(
        &self,
        horizons: Option<Vec<String>>,
        limit: usize,
        now: Option<String>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            if limit > MAX_LIMIT {
                return Err(
                    Error::invalid(format!("limit must be at most {MAX_LIMIT}")).on_field("limit")
                );
            }
            let horizons = parse_horizons(horizons)?;
            let now = weave.parse_as_of(now.as_deref())?;
            let scope = weave.default_scope();
            json(&weave.focus(&scope, &horizons, limit, now).await?)
        })
    }

    fn task_op(
        &self,
        id: String,
        now: Option<String>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let id = parse_id(&id)?;
            let now = weave.parse_as_of(now.as_deref())?;
            json(&weave.task(&weave.default_scope(), id, now).await?)
        })
    }

    fn status_op(
        &self,
        id: String,
        actor: String,
        complete: bool,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let id = parse_id(&id)?;
            let scope = weave.default_scope();
            let task = if complete {
                weave.complete(&scope, id, &actor).await?
            } else {
                weave.undo(&scope, id, &actor).await?
            };
            json(&task)
        })
    }

    fn mark_op(
        &self,
        id: String,
        boost: f64,
        pinned: bool,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let id = parse_id(&id)?;
            if !boost.is_finite() {
                return Err(Error::invalid("boost must be a finite number").on_field("boost"));
            }
            json(
                &weave
                    .mark(&weave.default_scope(), id, boost, pinned)
                    .await?,
            )
        })
    }

    fn graph_op(
        &self,
        window: String,
        now: Option<String>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let window = parse_window(&window)?;
            let now = weave.parse_as_of(now.as_deref())?;
            json(&weave.graph(&weave.default_scope(), window, now).await?)
        })
    }

    fn search_op(
        &self,
        query: String,
        limit: usize,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            if limit > MAX_LIMIT {
                return Err(
                    Error::invalid(format!("limit must be at most {MAX_LIMIT}")).on_field("limit")
                );
            }
            json(&weave.search(&weave.default_scope(), &query, limit).await?)
        })
    }

    fn record_op(&self, id: String) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let id = parse_id(&id)?;
            json(&weave.record(&weave.default_scope(), id).await?)
        })
    }

    fn resolve_op(
        &self,
        resolver: Resolver,
        incremental: bool,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            json(
                &weave
                    .resolve(&weave.default_scope(), &resolver, incremental)
                    .await?,
            )
        })
    }

    fn review_queue_op(
        &self,
        resolver: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            if limit > MAX_LIMIT {
                return Err(
                    Error::invalid(format!("limit must be at most {MAX_LIMIT}")).on_field("limit")
                );
            }
            json(
                &weave
                    .review_queue(&weave.default_scope(), resolver.as_deref(), limit)
                    .await?,
            )
        })
    }

    fn decide_review_op(
        &self,
        resolver: Resolver,
        left: String,
        right: String,
        accept: bool,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let pair = (
                left.parse().map_err(|e: Error| e.on_field("left"))?,
                right.parse().map_err(|e: Error| e.on_field("right"))?,
            );
            json(
                &weave
                    .decide_review(&weave.default_scope(), &resolver, pair, accept)
                    .await?,
            )
        })
    }

    fn events_op(
        &self,
        subject: Option<String>,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let subject = subject.as_deref().map(parse_id).transpose()?;
            if limit > 10_000 {
                return Err(Error::invalid("limit must be at most 10000").on_field("limit"));
            }
            json(
                &weave
                    .events(&weave.default_scope(), subject, after, limit)
                    .await?,
            )
        })
    }

    fn recall_op(
        &self,
        query: String,
        options: Result<RecallOptions>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let options = options?;
            json(
                &weave
                    .recall(&weave.default_scope(), &query, &options)
                    .await?,
            )
        })
    }

    fn remember_op(
        &self,
        text: String,
        tags: Vec<String>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            json(&weave.remember(&weave.default_scope(), &text, &tags).await?)
        })
    }

    fn update_memory_op(
        &self,
        id: String,
        text: String,
        tags: Option<Vec<String>>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let id = parse_id(&id)?;
            json(
                &weave
                    .update_memory(&weave.default_scope(), id, &text, tags.as_deref())
                    .await?,
            )
        })
    }

    fn forget_op(&self, id: String) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let id = parse_id(&id)?;
            weave.forget(&weave.default_scope(), id).await?;
            Ok(Value::Null)
        })
    }

    fn embed_op(&self) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let embedder = weave.embedder().await?;
            json(
                &weave
                    .embed(&weave.default_scope(), embedder.as_ref(), None)
                    .await?,
            )
        })
    }

    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn enqueue_op(
        &self,
        kind: String,
        payload: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
        max_attempts: u32,
        backoff_ms: i64,
        run_after: Option<String>,
    ) -> PyResult<impl Future<Output = Result<Value>> + Send + 'static> {
        let payload = match payload {
            Some(payload) => from_python(payload, "payload")?,
            None => Value::Null,
        };
        Ok(self.with(move |weave| async move {
            let max_backoff =
                i64::try_from(opsweave::jobs::MAX_BACKOFF.as_millis()).unwrap_or(i64::MAX);
            // Named as the caller wrote it (the queue's own check names `backoff`).
            let Some(backoff_ms) = u64::try_from(backoff_ms)
                .ok()
                .filter(|_| backoff_ms <= max_backoff)
            else {
                return Err(Error::invalid(format!(
                    "backoff_ms is {backoff_ms}; it must be 0 to {max_backoff}"
                ))
                .on_field("backoff_ms"));
            };
            let mut job = NewJob::new(kind, weave.default_scope(), payload)
                .with_max_attempts(max_attempts)
                .with_backoff(Duration::from_millis(backoff_ms));
            if let Some(key) = idempotency_key {
                job = job.with_idempotency_key(key);
            }
            if let Some(at) =
                opsweave::parse_now(run_after.as_deref()).map_err(|e| e.on_field("run_after"))?
            {
                job = job.run_after(at);
            }
            json(&weave.enqueue(job).await?)
        }))
    }

    fn job_op(&self, id: i64) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            json(&weave.job(&weave.default_scope(), job_id(id)?).await?)
        })
    }

    fn jobs_op(
        &self,
        status: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let status = status.as_deref().map(str::parse::<JobStatus>).transpose()?;
            json(
                &weave
                    .list_jobs(&weave.default_scope(), status, limit)
                    .await?,
            )
        })
    }

    fn open_jobs_op(
        &self,
        kinds: Option<Vec<String>>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let kinds = kinds.unwrap_or_default();
            json(
                &weave
                    .count_open_jobs(&weave.default_scope(), &kinds)
                    .await?,
            )
        })
    }

    fn cancel_job_op(&self, id: i64) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            json(
                &weave
                    .cancel_job(&weave.default_scope(), job_id(id)?)
                    .await?,
            )
        })
    }

    fn run_jobs_op(
        &self,
        kinds: Option<Vec<String>>,
        concurrency: usize,
        timeout: Option<f64>,
        stop: impl Future<Output = ()> + Send + 'static,
        abandon: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let timeout = match timeout {
                Some(secs) if !(secs.is_finite() && secs > 0.0) => {
                    return Err(Error::invalid(format!(
                        "timeout is {secs}; it must be a positive number of seconds"
                    ))
                    .on_field("timeout"))
                }
                Some(secs) => Some(Duration::from_secs_f64(secs.min(31_536_000.0))),
                None => None,
            };
            // One name per run: two runs at once must not lease jobs under the same slot names.
            static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut options = WorkerOptions::new(format!("python-{}-{run}", std::process::id()));
            options.kinds = kinds.unwrap_or_default();
            options.concurrency = concurrency;
            json(
                &weave
                    .run_jobs_until(&weave.default_scope(), options, timeout, stop, abandon)
                    .await?,
            )
        })
    }

    fn usage_op(
        &self,
        start: Option<String>,
        end: Option<String>,
        group_by: String,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        self.with(move |weave| async move {
            let query = UsageQuery::parse(
                weave.default_scope(),
                start.as_deref(),
                end.as_deref(),
                &group_by,
            )?;
            json(&weave.usage_report(&query).await?)
        })
    }
}

#[pymethods]
impl NativeWeave {
    /// Opens the store named by `url` (default: configuration, then `sqlite://./opsweave.db`).
    #[staticmethod]
    #[pyo3(signature = (url=None, *, config=None, org=None, client=None, project=None))]
    fn open(
        py: Python<'_>,
        url: Option<String>,
        config: Option<PathBuf>,
        org: Option<String>,
        client: Option<String>,
        project: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        block(py, open_op(config_of(url, config, org, client, project)))
    }

    /// Like `open`, as an awaitable.
    #[staticmethod]
    #[pyo3(signature = (url=None, *, config=None, org=None, client=None, project=None))]
    fn aopen(
        py: Python<'_>,
        url: Option<String>,
        config: Option<PathBuf>,
        org: Option<String>,
        client: Option<String>,
        project: Option<String>,
    ) -> PyResult<Bound<'_, PyAny>> {
        awaitable(py, open_op(config_of(url, config, org, client, project)))
    }

    /// Releases the store; later calls raise `UnavailableError`.
    fn close(&self) -> PyResult<()> {
        if let Ok(mut weave) = self.weave.write() {
            weave.take();
        }
        Ok(())
    }

    /// True once `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.weave.read().map_or(true, |w| w.is_none())
    }

    /// The scope calls work in, as a dict.
    fn scope(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let weave = self.weave().map_err(|e| to_py(py, &e))?;
        let value = json(&weave.default_scope()).map_err(|e| to_py(py, &e))?;
        to_python(py, &value)
    }

    /// Ingests the file at `path` with a preset or a mapping.
    #[pyo3(signature = (path, *, preset=None, mapping=None))]
    fn ingest_path(
        &self,
        py: Python<'_>,
        path: PathBuf,
        preset: Option<String>,
        mapping: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.ingest_path_op(py, path, preset, mapping)?)
    }

    /// Like `ingest_path`, as an awaitable.
    #[pyo3(signature = (path, *, preset=None, mapping=None))]
    fn aingest_path<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        preset: Option<String>,
        mapping: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.ingest_path_op(py, path, preset, mapping)?)
    }

    /// Ingests rows (a list of dicts), named `name` in reports.
    #[pyo3(signature = (rows, *, name, preset=None, mapping=None))]
    fn ingest_rows(
        &self,
        py: Python<'_>,
        rows: &Bound<'_, PyAny>,
        name: String,
        preset: Option<String>,
        mapping: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.ingest_rows_op(rows, name, preset, mapping)?)
    }

    /// Like `ingest_rows`, as an awaitable.
    #[pyo3(signature = (rows, *, name, preset=None, mapping=None))]
    fn aingest_rows<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, PyAny>,
        name: String,
        preset: Option<String>,
        mapping: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.ingest_rows_op(rows, name, preset, mapping)?)
    }

    /// The top `limit` open tasks per horizon.
    #[pyo3(signature = (*, horizons=None, limit=3, now=None))]
    fn focus(
        &self,
        py: Python<'_>,
        horizons: Option<Vec<String>>,
        limit: usize,
        now: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.focus_op(horizons, limit, now))
    }

    /// Like `focus`, as an awaitable.
    #[pyo3(signature = (*, horizons=None, limit=3, now=None))]
    fn afocus<'py>(
        &self,
        py: Python<'py>,
        horizons: Option<Vec<String>>,
        limit: usize,
        now: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.focus_op(horizons, limit, now))
    }

    /// One task, ranked now.
    #[pyo3(signature = (id, *, now=None))]
    fn task(&self, py: Python<'_>, id: String, now: Option<String>) -> PyResult<Py<PyAny>> {
        block(py, self.task_op(id, now))
    }

    /// Like `task`, as an awaitable.
    #[pyo3(signature = (id, *, now=None))]
    fn atask<'py>(
        &self,
        py: Python<'py>,
        id: String,
        now: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.task_op(id, now))
    }

    /// Marks a task done.
    #[pyo3(signature = (id, *, actor="python"))]
    fn complete(&self, py: Python<'_>, id: String, actor: &str) -> PyResult<Py<PyAny>> {
        block(py, self.status_op(id, actor.to_string(), true))
    }

    /// Like `complete`, as an awaitable.
    #[pyo3(signature = (id, *, actor="python"))]
    fn acomplete<'py>(
        &self,
        py: Python<'py>,
        id: String,
        actor: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.status_op(id, actor.to_string(), true))
    }

    /// Undoes a task's last status change.
    #[pyo3(signature = (id, *, actor="python"))]
    fn undo(&self, py: Python<'_>, id: String, actor: &str) -> PyResult<Py<PyAny>> {
        block(py, self.status_op(id, actor.to_string(), false))
    }

    /// Like `undo`, as an awaitable.
    #[pyo3(signature = (id, *, actor="python"))]
    fn aundo<'py>(&self, py: Python<'py>, id: String, actor: &str) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.status_op(id, actor.to_string(), false))
    }

    /// Pins a task to today and/or boosts its score.
    #[pyo3(signature = (id, *, boost=0.0, pinned=false))]
    fn mark(&self, py: Python<'_>, id: String, boost: f64, pinned: bool) -> PyResult<Py<PyAny>> {
        block(py, self.mark_op(id, boost, pinned))
    }

    /// Like `mark`, as an awaitable.
    #[pyo3(signature = (id, *, boost=0.0, pinned=false))]
    fn amark<'py>(
        &self,
        py: Python<'py>,
        id: String,
        boost: f64,
        pinned: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.mark_op(id, boost, pinned))
    }

    /// The work graph for a window (`week` or `month`).
    #[pyo3(signature = (*, window="week", now=None))]
    fn graph(&self, py: Python<'_>, window: &str, now: Option<String>) -> PyResult<Py<PyAny>> {
        block(py, self.graph_op(window.to_string(), now))
    }

    /// Like `graph`, as an awaitable.
    #[pyo3(signature = (*, window="week", now=None))]
    fn agraph<'py>(
        &self,
        py: Python<'py>,
        window: &str,
        now: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.graph_op(window.to_string(), now))
    }

    /// Full-text search over titles and bodies.
    #[pyo3(signature = (query, *, limit=10))]
    fn search(&self, py: Python<'_>, query: String, limit: usize) -> PyResult<Py<PyAny>> {
        block(py, self.search_op(query, limit))
    }

    /// Like `search`, as an awaitable.
    #[pyo3(signature = (query, *, limit=10))]
    fn asearch<'py>(
        &self,
        py: Python<'py>,
        query: String,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.search_op(query, limit))
    }

    /// One record.
    fn record(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
        block(py, self.record_op(id))
    }

    /// Like `record`, as an awaitable.
    fn arecord<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.record_op(id))
    }

    /// Matches stored records with a resolver (a preset name or a dict).
    #[pyo3(signature = (resolver, *, incremental=false))]
    fn resolve(
        &self,
        py: Python<'_>,
        resolver: &Bound<'_, PyAny>,
        incremental: bool,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.resolve_op(resolver_of(py, resolver)?, incremental))
    }

    /// Like `resolve`, as an awaitable.
    #[pyo3(signature = (resolver, *, incremental=false))]
    fn aresolve<'py>(
        &self,
        py: Python<'py>,
        resolver: &Bound<'py, PyAny>,
        incremental: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.resolve_op(resolver_of(py, resolver)?, incremental))
    }

    /// Pending review pairs (of `resolver` when given), most likely matches first.
    #[pyo3(signature = (*, resolver=None, limit=100))]
    fn review_queue(
        &self,
        py: Python<'_>,
        resolver: Option<String>,
        limit: usize,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.review_queue_op(resolver, limit))
    }

    /// Like `review_queue`, as an awaitable.
    #[pyo3(signature = (*, resolver=None, limit=100))]
    fn areview_queue<'py>(
        &self,
        py: Python<'py>,
        resolver: Option<String>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.review_queue_op(resolver, limit))
    }

    /// Accepts (links the pair) or rejects a review pair of `resolver`.
    #[pyo3(signature = (resolver, left, right, *, accept))]
    fn decide_review(
        &self,
        py: Python<'_>,
        resolver: &Bound<'_, PyAny>,
        left: String,
        right: String,
        accept: bool,
    ) -> PyResult<Py<PyAny>> {
        let resolver = resolver_of(py, resolver)?;
        block(py, self.decide_review_op(resolver, left, right, accept))
    }

    /// Like `decide_review`, as an awaitable.
    #[pyo3(signature = (resolver, left, right, *, accept))]
    fn adecide_review<'py>(
        &self,
        py: Python<'py>,
        resolver: &Bound<'py, PyAny>,
        left: String,
        right: String,
        accept: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let resolver = resolver_of(py, resolver)?;
        awaitable(py, self.decide_review_op(resolver, left, right, accept))
    }

    /// Events (about `subject` when given) after sequence `after`, oldest first.
    #[pyo3(signature = (*, subject=None, after=0, limit=100))]
    fn events(
        &self,
        py: Python<'_>,
        subject: Option<String>,
        after: i64,
        limit: usize,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.events_op(subject, after, limit))
    }

    /// Like `events`, as an awaitable.
    #[pyo3(signature = (*, subject=None, after=0, limit=100))]
    fn aevents<'py>(
        &self,
        py: Python<'py>,
        subject: Option<String>,
        after: i64,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.events_op(subject, after, limit))
    }

    /// Hybrid recall: the records that best answer `query`, each with why it ranked.
    #[pyo3(signature = (query, *, k=10, mode="hybrid", entities=None, sources=None, half_life_days=None, recency_weight=1.0))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn recall(
        &self,
        py: Python<'_>,
        query: String,
        k: i64,
        mode: &str,
        entities: Option<Vec<String>>,
        sources: Option<Vec<String>>,
        half_life_days: Option<f64>,
        recency_weight: f64,
    ) -> PyResult<Py<PyAny>> {
        let options = recall_options(k, mode, entities, sources, half_life_days, recency_weight);
        block(py, self.recall_op(query, options))
    }

    /// Like `recall`, as an awaitable.
    #[pyo3(signature = (query, *, k=10, mode="hybrid", entities=None, sources=None, half_life_days=None, recency_weight=1.0))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn arecall<'py>(
        &self,
        py: Python<'py>,
        query: String,
        k: i64,
        mode: &str,
        entities: Option<Vec<String>>,
        sources: Option<Vec<String>>,
        half_life_days: Option<f64>,
        recency_weight: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = recall_options(k, mode, entities, sources, half_life_days, recency_weight);
        awaitable(py, self.recall_op(query, options))
    }

    /// Stores a memory note, embedded at once; returns its id.
    #[pyo3(signature = (text, *, tags=Vec::new()))]
    fn remember(&self, py: Python<'_>, text: String, tags: Vec<String>) -> PyResult<Py<PyAny>> {
        block(py, self.remember_op(text, tags))
    }

    /// Like `remember`, as an awaitable.
    #[pyo3(signature = (text, *, tags=Vec::new()))]
    fn aremember<'py>(
        &self,
        py: Python<'py>,
        text: String,
        tags: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.remember_op(text, tags))
    }

    /// Replaces a memory's text (and tags, when given); returns the record.
    #[pyo3(signature = (id, text, *, tags=None))]
    fn update_memory(
        &self,
        py: Python<'_>,
        id: String,
        text: String,
        tags: Option<Vec<String>>,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.update_memory_op(id, text, tags))
    }

    /// Like `update_memory`, as an awaitable.
    #[pyo3(signature = (id, text, *, tags=None))]
    fn aupdate_memory<'py>(
        &self,
        py: Python<'py>,
        id: String,
        text: String,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.update_memory_op(id, text, tags))
    }

    /// Removes a memory: its record, full-text row and vectors.
    fn forget(&self, py: Python<'_>, id: String) -> PyResult<Py<PyAny>> {
        block(py, self.forget_op(id))
    }

    /// Like `forget`, as an awaitable.
    fn aforget<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.forget_op(id))
    }

    /// Embeds every record changed since its last vector with the configured model.
    fn embed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        block(py, self.embed_op())
    }

    /// Like `embed`, as an awaitable.
    fn aembed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.embed_op())
    }

    /// Queues a job of `kind` with a JSON-able `payload` in this handle's scope; the same
    /// `idempotency_key` again returns the first job.
    #[pyo3(signature = (kind, payload=None, *, idempotency_key=None, max_attempts=3, backoff_ms=1000, run_after=None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn enqueue(
        &self,
        py: Python<'_>,
        kind: String,
        payload: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
        max_attempts: u32,
        backoff_ms: i64,
        run_after: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        block(
            py,
            self.enqueue_op(
                kind,
                payload,
                idempotency_key,
                max_attempts,
                backoff_ms,
                run_after,
            )?,
        )
    }

    /// Like `enqueue`, as an awaitable.
    #[pyo3(signature = (kind, payload=None, *, idempotency_key=None, max_attempts=3, backoff_ms=1000, run_after=None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn aenqueue<'py>(
        &self,
        py: Python<'py>,
        kind: String,
        payload: Option<&Bound<'py, PyAny>>,
        idempotency_key: Option<String>,
        max_attempts: u32,
        backoff_ms: i64,
        run_after: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(
            py,
            self.enqueue_op(
                kind,
                payload,
                idempotency_key,
                max_attempts,
                backoff_ms,
                run_after,
            )?,
        )
    }

    /// The job `id` of this handle's scope.
    fn job(&self, py: Python<'_>, id: i64) -> PyResult<Py<PyAny>> {
        block(py, self.job_op(id))
    }

    /// Like `job`, as an awaitable.
    fn ajob<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.job_op(id))
    }

    /// Jobs of this handle's scope (of `status` when given), newest first.
    #[pyo3(signature = (*, status=None, limit=50))]
    fn jobs(&self, py: Python<'_>, status: Option<String>, limit: usize) -> PyResult<Py<PyAny>> {
        block(py, self.jobs_op(status, limit))
    }

    /// Like `jobs`, as an awaitable.
    #[pyo3(signature = (*, status=None, limit=50))]
    fn ajobs<'py>(
        &self,
        py: Python<'py>,
        status: Option<String>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.jobs_op(status, limit))
    }

    /// How many jobs of this handle's scope (of `kinds` when given) are queued or running.
    #[pyo3(signature = (*, kinds=None))]
    fn open_jobs(&self, py: Python<'_>, kinds: Option<Vec<String>>) -> PyResult<Py<PyAny>> {
        block(py, self.open_jobs_op(kinds))
    }

    /// Like `open_jobs`, as an awaitable.
    #[pyo3(signature = (*, kinds=None))]
    fn aopen_jobs<'py>(
        &self,
        py: Python<'py>,
        kinds: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.open_jobs_op(kinds))
    }

    /// Cancels a queued or running job of this handle's scope.
    fn cancel_job(&self, py: Python<'_>, id: i64) -> PyResult<Py<PyAny>> {
        block(py, self.cancel_job_op(id))
    }

    /// Like `cancel_job`, as an awaitable.
    fn acancel_job<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.cancel_job_op(id))
    }

    /// Runs queued jobs in this process until none of this handle's scope is queued or running,
    /// or `timeout` seconds have passed.
    #[pyo3(signature = (*, kinds=None, concurrency=2, timeout=None))]
    fn run_jobs(
        &self,
        py: Python<'_>,
        kinds: Option<Vec<String>>,
        concurrency: usize,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        block_stoppable(py, |stop, abandon| {
            self.run_jobs_op(kinds, concurrency, timeout, stop, abandon)
        })
    }

    /// Like `run_jobs`, as an awaitable, with a callable that asks the run to hand the jobs in
    /// hand back to the queue (their attempts not used) and end: `(future, abandon)`.
    #[pyo3(signature = (*, kinds=None, concurrency=2, timeout=None))]
    fn arun_jobs<'py>(
        &self,
        py: Python<'py>,
        kinds: Option<Vec<String>>,
        concurrency: usize,
        timeout: Option<f64>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        awaitable_abandoning(py, |abandon| {
            self.run_jobs_op(kinds, concurrency, timeout, std::future::pending(), abandon)
        })
    }

    /// Model calls, tokens and cost (from the configured price book) per group and model, from
    /// `start` (inclusive; default 30 days before `end`) to `end` (exclusive; default now).
    #[pyo3(signature = (*, start=None, end=None, group_by="model"))]
    fn usage(
        &self,
        py: Python<'_>,
        start: Option<String>,
        end: Option<String>,
        group_by: &str,
    ) -> PyResult<Py<PyAny>> {
        block(py, self.usage_op(start, end, group_by.to_string()))
    }

    /// Like `usage`, as an awaitable.
    #[pyo3(signature = (*, start=None, end=None, group_by="model"))]
    fn ausage<'py>(
        &self,
        py: Python<'py>,
        start: Option<String>,
        end: Option<String>,
        group_by: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.usage_op(start, end, group_by.to_string()))
    }
}

/// The names of the built-in presets.
#[pyfunction]
fn presets() -> Vec<&'static str> {
    opsweave::mapping::presets::names()
}

/// A built-in preset's mapping as a dict, to adapt and pass as `mapping=`.
#[pyfunction]
fn preset(py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
    let value = opsweave::preset(name)
        .and_then(|m| json(&m))
        .map_err(|e| to_py(py, &e.on_field("preset")))?;
    to_python(py, &value)
}

/// Raises the exception opsweave raises for an error of `kind` (`invalid_input`, `not_found`,
/// `conflict`, `unauthorized`, `unavailable`, `internal`): lets tests check the error mapping for
/// kinds a store cannot be made to produce on demand.
#[pyfunction]
#[pyo3(signature = (kind, message, *, file=None, line=None, field=None, cause=None))]
fn _raise_error(
    py: Python<'_>,
    kind: &str,
    message: &str,
    file: Option<String>,
    line: Option<u64>,
    field: Option<String>,
    cause: Option<String>,
) -> PyResult<()> {
    let kind: opsweave::ErrorKind = serde_json::from_value(Value::String(kind.to_string()))
        .map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!("unknown error kind `{kind}`"))
        })?;
    let mut err = Error::new(kind, message);
    if let Some(file) = file {
        err = err.in_file(file);
    }
    if let Some(line) = line {
        err = err.at_line(line);
    }
    if let Some(field) = field {
        err = err.on_field(field);
    }
    if let Some(cause) = cause {
        err = err.with_source(std::io::Error::other(cause));
    }
    Err(to_py(py, &err))
}

/// The compiled module `opsweave._opsweave`.
#[pymodule]
fn _opsweave(module: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(module)?;
    module.add_class::<NativeWeave>()?;
    module.add_function(wrap_pyfunction!(presets, module)?)?;
    module.add_function(wrap_pyfunction!(preset, module)?)?;
    module.add_function(wrap_pyfunction!(_raise_error, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
