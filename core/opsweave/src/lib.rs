//! opsweave: turn operational records (CRM and partner-network opportunities, mail, tickets,
//! issues) into one prioritised, linked, searchable work graph.
//!
//! ```no_run
//! # async fn run() -> opsweave::Result<()> {
//! use opsweave::{Horizon, Weave};
//! let weave = Weave::open("sqlite://./opsweave.db").await?;
//! let scope = weave.default_scope();
//! let mapping = opsweave::preset("jira-issue")?;
//! let report = weave.ingest_path("examples/data/jira-search.json".as_ref(), &mapping, &scope, None).await?;
//! println!("{} new, {} rejected", report.inserted, report.rejected_total);
//! let focus = weave.focus(&scope, &Horizon::FOCUS, 3, None).await?;
//! for task in focus.get(Horizon::Today) {
//!     println!("{:5.1} {}", task.priority.score, task.task.title);
//! }
//! # Ok(()) }
//! ```

mod config;
mod embedding;
mod focus_cache;
mod hybrid;
mod ingest;
mod metering;
mod migrate;
mod queue;
mod resolve;
mod scale_out;
pub mod worker;

pub use config::{
    Config, EmbedConfig, IndexConfig, IngestConfig, Secret, ServerConfig, WebhookConfig,
};
pub use embedding::{open_embedder, EmbedProgress, EmbedReport, EmbedderSpec, EMBED_JOB};
pub use focus_cache::FocusCacheStats;
pub use hybrid::MEMORY_SOURCE;
pub use ingest::{open_input, IngestProgress, IngestReport};
pub use metering::SecretBox;
pub use migrate::{
    migrate, sqlite_path, MigrateOptions, MigrateProgress, MigrateReport, TableCounts,
};
pub use opsweave_core::*;
pub use resolve::{check_matching_scope, ResolveReport};
pub use scale_out::mask_password;

use chrono::{DateTime, Utc};
use focus_cache::{FocusCache, FocusKey};
use opsweave_core::mapping::presets;
use opsweave_core::task_ops::{plan_complete, plan_undo, StatusPlan};
use std::sync::Arc;

/// `now`, or the current time: refused outside the years 1 to 9999, where the day and week
/// arithmetic of focus and graph would overflow.
fn as_of(now: Option<DateTime<Utc>>) -> Result<DateTime<Utc>> {
    let at = now.unwrap_or_else(Utc::now);
    if !opsweave_core::priority::within_calendar(at) {
        return Err(Error::invalid(format!(
            "now {} is outside the years 1 to 9999",
            at.to_rfc3339()
        ))
        .on_field("now"));
    }
    Ok(at)
}

/// Parses an instant given as text: an RFC 3339 instant, a naive ISO date-time (taken as UTC),
/// or a date (09:00 UTC that day). `None` stays `None` (now). For the "as of" of focus and
/// graph, [`Weave::parse_as_of`] reads naive times on the user's day instead.
pub fn parse_now(text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    parse_now_in(text, Zone::UTC)
}

/// [`parse_now`] with naive date-times and dates read as wall-clock times in `zone`.
pub fn parse_now_in(text: Option<&str>, zone: Zone) -> Result<Option<DateTime<Utc>>> {
    let Some(text) = text else { return Ok(None) };
    let text = text.trim();
    let local = |t: chrono::NaiveDateTime| zone.instant_of(t);
    let now = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        Some(t.with_timezone(&Utc))
    } else if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        local(t)
    } else {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .and_then(local)
    };
    let now = now.ok_or_else(|| {
        Error::invalid(format!(
            "now `{text}` is not a date (YYYY-MM-DD) or an ISO 8601 date-time"
        ))
        .on_field("now")
    })?;
    // Focus and graph count days and weeks from now: far from the calendar's ends.
    if !opsweave_core::priority::within_calendar(now) {
        return Err(
            Error::invalid(format!("now `{text}` is outside the years 1 to 9999")).on_field("now"),
        );
    }
    Ok(Some(now))
}

/// The mapping of a built-in preset (`odoo-crm-lead`, `ace-opportunity`, `gmail-message`,
/// `jira-issue`, `github-issue`).
pub fn preset(name: &str) -> Result<Mapping> {
    presets::preset(name)
}

/// The handle users hold: a store, its event log, its job queue and the configuration.
#[derive(Clone)]
pub struct Weave {
    store: Arc<dyn RecordStore>,
    events: Arc<dyn EventLog>,
    jobs: Option<Arc<dyn opsweave_core::JobQueue>>,
    vectors: Option<Arc<dyn opsweave_core::VectorIndex>>,
    embedder: Option<Arc<dyn Embedder>>,
    /// The model `embed.model` names, opened on first use and shared by clones.
    opened_embedder: Arc<tokio::sync::OnceCell<Arc<dyn Embedder>>>,
    usage: Option<Arc<dyn UsageLedger>>,
    keys: Option<Arc<dyn KeyStore>>,
    cache: Option<Arc<dyn opsweave_core::Cache>>,
    /// The backend's own shutdown (saving in-memory state, closing connections), when it has one.
    backend: Option<Arc<dyn Backend>>,
    /// Export and import of every row, for copies to another backend (see [`migrate`]).
    snapshot: Option<Arc<dyn Snapshot>>,
    /// Rate limits shared by every process (on Redis when `redis` is configured).
    rate_limiter: Option<Arc<dyn opsweave_core::RateLimiter>>,
    /// Focus answers reused while the tasks did not change (off unless turned on).
    focus_cache: Option<Arc<FocusCache>>,
    /// API keys verified recently (off unless turned on).
    key_cache: Option<Arc<metering::KeyCache>>,
    config: Arc<Config>,
}

/// What an opened backend does when its handle closes.
#[async_trait::async_trait]
trait Backend: Send + Sync {
    /// Saves what it keeps in memory and closes its connections.
    async fn close(&self);
}

#[cfg(feature = "sqlite")]
#[async_trait::async_trait]
impl Backend for opsweave_sqlite::SqliteStore {
    async fn close(&self) {
        opsweave_sqlite::SqliteStore::close(self).await;
    }
}

#[cfg(feature = "postgres")]
#[async_trait::async_trait]
impl Backend for opsweave_postgres::PgStore {
    async fn close(&self) {
        opsweave_postgres::PgStore::close(self).await;
    }
}

impl std::fmt::Debug for Weave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weave")
            .field("db", &mask_password(&self.config.db))
            .finish_non_exhaustive()
    }
}

impl Weave {
    /// Opens the backend named by `url` with default configuration.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(Config {
            db: url.to_string(),
            ..Config::default()
        })
        .await
    }

    /// Opens the backend named by `config.db`, with the shared cache `config.redis` and the job
    /// queue `config.queue` when they are set.
    pub async fn open_with(config: Config) -> Result<Self> {
        let mut weave = Self::open_store(config).await?;
        weave.open_scale_out().await?;
        Ok(weave)
    }

    /// Opens the store named by `config.db` (with its own job queue).
    async fn open_store(config: Config) -> Result<Self> {
        config.scope.validate()?;
        config.priority.validate()?;
        let url = config.db.trim();
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" | "" => {
                config.index.validate()?;
                let graph = opsweave_sqlite::VectorOptions {
                    connectivity: config.index.m,
                    expansion_add: config.index.ef_construction,
                    expansion_search: config.index.ef_search,
                    quantize_graph: config.index.quantize,
                    flat_walk: config.index.flat_walk,
                    ..opsweave_sqlite::VectorOptions::default()
                };
                let store = Arc::new(
                    opsweave_sqlite::SqliteStore::open(url)
                        .await?
                        .with_vector_options(graph),
                );
                Ok(Self {
                    store: store.clone(),
                    events: store.clone(),
                    jobs: Some(store.clone()),
                    vectors: Some(store.clone()),
                    embedder: None,
                    opened_embedder: Arc::default(),
                    usage: Some(store.clone()),
                    keys: Some(store.clone()),
                    cache: None,
                    backend: Some(store.clone()),
                    snapshot: Some(store),
                    rate_limiter: None,
                    focus_cache: None,
                    key_cache: None,
                    config: Arc::new(config),
                })
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let store = Arc::new(opsweave_postgres::PgStore::open(url).await?);
                Ok(Self {
                    store: store.clone(),
                    events: store.clone(),
                    jobs: Some(store.clone()),
                    vectors: Some(store.clone()),
                    embedder: None,
                    opened_embedder: Arc::default(),
                    usage: Some(store.clone()),
                    keys: Some(store.clone()),
                    cache: None,
                    backend: Some(store.clone()),
                    snapshot: Some(store),
                    rate_limiter: None,
                    focus_cache: None,
                    key_cache: None,
                    config: Arc::new(config),
                })
            }
            #[cfg(not(feature = "postgres"))]
            "postgres" | "postgresql" => Err(Error::invalid(
                "this build of opsweave has no PostgreSQL backend: enable the `postgres` feature",
            )),
            other => Err(Error::invalid(format!(
                "unknown database scheme `{other}` (expected sqlite://PATH or postgres://…)"
            ))),
        }
    }

    /// Wraps an already opened store (for tests and other backends).
    pub fn from_parts(
        store: Arc<dyn RecordStore>,
        events: Arc<dyn EventLog>,
        config: Config,
    ) -> Self {
        Self {
            store,
            events,
            jobs: None,
            vectors: None,
            embedder: None,
            opened_embedder: Arc::default(),
            usage: None,
            keys: None,
            cache: None,
            backend: None,
            snapshot: None,
            rate_limiter: None,
            focus_cache: None,
            key_cache: None,
            config: Arc::new(config),
        }
    }

    /// Saves what the backend keeps in memory (the embedded store's vector graphs, so the next
    /// process loads them instead of rebuilding) and closes its connections. Clones share the
    /// backend: none of them can be used afterwards. Dropping a handle without closing it loses no
    /// data, only the saved graphs, which are rebuilt from the rows when next needed.
    pub async fn close(&self) {
        if let Some(backend) = &self.backend {
            backend.close().await;
        }
    }

    /// The shared cache behind this handle, when one is configured.
    pub fn cache(&self) -> Option<&Arc<dyn opsweave_core::Cache>> {
        self.cache.as_ref()
    }

    /// Adds a shared cache to this handle.
    pub fn with_cache(mut self, cache: Arc<dyn opsweave_core::Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The rate limiter every process shares, when one is configured (`redis`).
    pub fn rate_limiter(&self) -> Option<&Arc<dyn opsweave_core::RateLimiter>> {
        self.rate_limiter.as_ref()
    }

    /// Adds a rate limiter shared by every process.
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn opsweave_core::RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Reuses focus answers: until any process writes a task of the org (the store's task
    /// revision, read on every call), until the user's midnight, and for "now" (no explicit
    /// instant) for at most `max_age`, as scores drift with the clock. `Duration::ZERO` turns it
    /// off. Clones share the cache. A store without a task revision is never cached.
    pub fn with_focus_cache(mut self, max_age: std::time::Duration) -> Self {
        self.focus_cache = (!max_age.is_zero()).then(|| Arc::new(FocusCache::new(max_age)));
        self
    }

    /// How often the focus cache answered; `None` without one.
    pub fn focus_cache_stats(&self) -> Option<FocusCacheStats> {
        self.focus_cache.as_ref().map(|cache| cache.stats())
    }

    /// Adds a job queue to a handle made with [`Self::from_parts`].
    pub fn with_jobs(mut self, jobs: Arc<dyn opsweave_core::JobQueue>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Adds a vector index to a handle.
    pub fn with_vectors(mut self, vectors: Arc<dyn opsweave_core::VectorIndex>) -> Self {
        self.vectors = Some(vectors);
        self
    }

    /// The vector index behind this handle (always present when opened from a URL).
    pub fn vectors(&self) -> Option<&Arc<dyn opsweave_core::VectorIndex>> {
        self.vectors.as_ref()
    }

    /// Sets the embedding model recall and memory use (instead of `embed.model` in the config).
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Adds a usage ledger: every model call this handle makes is then recorded in it.
    pub fn with_usage_ledger(mut self, ledger: Arc<dyn UsageLedger>) -> Self {
        self.usage = Some(ledger);
        self
    }

    /// The job queue behind this handle (always present when opened from a URL).
    pub fn jobs(&self) -> Option<&Arc<dyn opsweave_core::JobQueue>> {
        self.jobs.as_ref()
    }

    /// Parses the "as of" instant of focus, graph and task calls: as [`parse_now`], with naive
    /// date-times and dates (09:00 that day) as wall-clock times in the user's zone
    /// (`priority.time_zone` or `priority.utc_offset_minutes`), the one focus counts days in.
    pub fn parse_as_of(&self, text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
        parse_now_in(text, self.config().priority.zone())
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The scope commands use when none is given.
    pub fn default_scope(&self) -> Scope {
        self.config.scope.clone()
    }

    /// The store behind this handle.
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.store
    }

    /// The event log behind this handle.
    pub fn events_log(&self) -> &Arc<dyn EventLog> {
        &self.events
    }

    /// The top `limit` open tasks of each horizon at `now` (default: the current time).
    pub async fn focus(
        &self,
        scope: &Scope,
        horizons: &[Horizon],
        limit: usize,
        now: Option<DateTime<Utc>>,
    ) -> Result<Focus> {
        self.focus_shared(scope, horizons, limit, now)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Self::focus`], shared: with a focus cache (see [`Self::with_focus_cache`]) a repeated
    /// question is answered without copying the answer.
    pub async fn focus_shared(
        &self,
        scope: &Scope,
        horizons: &[Horizon],
        limit: usize,
        now: Option<DateTime<Utc>>,
    ) -> Result<Arc<Focus>> {
        let at = as_of(now)?;
        let compute = || {
            opsweave_core::focus::focus(
                &*self.store,
                &self.config.priority,
                scope,
                at,
                horizons,
                limit,
            )
        };
        let Some(cache) = &self.focus_cache else {
            return compute().await.map(Arc::new);
        };
        // Read before computing: a write racing the computation then only makes the next call
        // compute again, never keeps an answer older than the write.
        let Some(revision) = cache.revision(&*self.store, &scope.org).await? else {
            return compute().await.map(Arc::new);
        };
        let today = self.config.priority.today(at);
        let key = FocusKey {
            scope: scope.clone(),
            horizons: horizons.to_vec(),
            limit,
            now,
        };
        if let Some(hit) = cache.get(&key, revision, today) {
            return Ok(hit);
        }
        let focus = Arc::new(compute().await?);
        cache.put(key, revision, today, focus.clone());
        Ok(focus)
    }

    /// One task, scored now.
    pub async fn task(
        &self,
        scope: &Scope,
        id: RecordId,
        now: Option<DateTime<Utc>>,
    ) -> Result<RankedTask> {
        let now = as_of(now)?;
        let task = self.store.task(scope, id).await?;
        let priority = self.config.priority.score(&task, now);
        let horizon = self
            .config
            .priority
            .horizon(&task, self.config.priority.today(now));
        Ok(RankedTask {
            task,
            horizon,
            priority,
        })
    }

    /// Marks a task done (an event; completing a done task changes nothing).
    pub async fn complete(&self, scope: &Scope, id: RecordId, actor: &str) -> Result<Task> {
        let mut attempt = 0;
        loop {
            let task = self.store.task(scope, id).await?;
            let plan = plan_complete(task.status);
            match self.apply(scope, task, plan, actor).await {
                Err(e) if lost_race(&e, &mut attempt) => continue,
                done => return done,
            }
        }
    }

    /// Undoes the task's last status change (undoing twice changes nothing more).
    pub async fn undo(&self, scope: &Scope, id: RecordId, actor: &str) -> Result<Task> {
        let mut attempt = 0;
        loop {
            // The events before the task: a change landing between the two reads then shows in
            // the task, which no longer matches the change to undo (nothing to do, and the
            // answer is the task as it is now); read the other way round, the task would be
            // the older read and a plan of nothing would answer a stale status.
            let last = last_status_event(&*self.events, scope, id, EVENT_PAGE).await?;
            let (task, source_status) = self.store.task_with_source_status(scope, id).await?;
            let plan = plan_undo(task.status, source_status.as_deref(), last.as_ref());
            match self.apply(scope, task, plan, actor).await {
                Err(e) if lost_race(&e, &mut attempt) => continue,
                done => return done,
            }
        }
    }

    async fn apply(
        &self,
        scope: &Scope,
        task: Task,
        plan: StatusPlan,
        actor: &str,
    ) -> Result<Task> {
        let StatusPlan::Change { from, to, undoes } = plan else {
            return Ok(task);
        };
        let kind = match undoes {
            Some(seq) => EventKind::Undone {
                undoes: seq,
                from,
                to,
            },
            None => EventKind::StatusChanged { from, to },
        };
        let event = NewEvent {
            scope: task.scope.clone(),
            actor: actor.to_string(),
            subject: Some(task.id),
            kind,
            at: Utc::now(),
        };
        self.store
            .change_status(scope, task.id, from, event)
            .await?;
        self.store.task(scope, task.id).await
    }

    /// Pins a task to today and/or boosts its score by `boost` points.
    pub async fn mark(
        &self,
        scope: &Scope,
        id: RecordId,
        boost: f64,
        pinned: bool,
    ) -> Result<Task> {
        self.store.mark(scope, id, boost, pinned).await
    }

    /// The work graph for `window` at `now` (default: the current time).
    pub async fn graph(
        &self,
        scope: &Scope,
        window: Window,
        now: Option<DateTime<Utc>>,
    ) -> Result<Graph> {
        let now = as_of(now)?;
        opsweave_core::graph::graph(&*self.store, &self.config.priority, scope, now, window, 50)
            .await
    }

    /// Full-text search over titles and bodies.
    pub async fn search(&self, scope: &Scope, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        self.store.search(scope, query, limit).await
    }

    /// One record.
    pub async fn record(&self, scope: &Scope, id: RecordId) -> Result<Record> {
        self.store.record(scope, id).await
    }

    /// Events of `scope` (about `subject` when given) after sequence `after`.
    pub async fn events(
        &self,
        scope: &Scope,
        subject: Option<RecordId>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.events.events(scope, subject, after, limit).await
    }
}

/// Times a complete or undo plans again after another change to the task got in first.
const STATUS_RETRIES: u32 = 8;

/// Whether `error` says the task's status changed between reading it and writing it, and there
/// are tries left (counted in `attempt`): the change is planned again on what is there now, so
/// two people completing a task at once both succeed, with one event, as one after the other
/// would.
fn lost_race(error: &Error, attempt: &mut u32) -> bool {
    if error.kind() != ErrorKind::Conflict || *attempt >= STATUS_RETRIES {
        return false;
    }
    *attempt += 1;
    true
}

/// Events read per call while looking for a task's last status change.
const EVENT_PAGE: usize = 10_000;

/// The last status change (or undo) of task `id`, reading its events `page` at a time: a task
/// may have more events than one read returns.
async fn last_status_event(
    events: &dyn EventLog,
    scope: &Scope,
    id: RecordId,
    page: usize,
) -> Result<Option<Event>> {
    let mut last = None;
    let mut after = 0;
    loop {
        let read = events.events(scope, Some(id), after, page).await?;
        let Some(end) = read.last() else {
            return Ok(last);
        };
        after = end.seq;
        let full = read.len() >= page;
        if let Some(found) = read.into_iter().rev().find(|e| {
            matches!(
                e.event.kind,
                EventKind::StatusChanged { .. } | EventKind::Undone { .. }
            )
        }) {
            last = Some(found);
        }
        if !full {
            return Ok(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task with more events than one read holds: its last status change is still found.
    #[tokio::test]
    async fn the_last_status_change_is_found_past_the_first_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            opsweave_sqlite::SqliteStore::open(&dir.path().join("e.db").display().to_string())
                .await
                .unwrap(),
        );
        let weave = Weave::from_parts(store.clone(), store.clone(), Config::default());
        let scope = Scope::org("acme");
        let item = opsweave_testkit::TaskFixture::new("T-1", "renew", Some(2), 0.5).item(&scope);
        store
            .ingest_batch(&scope, "t.csv", &[item], &[])
            .await
            .unwrap();
        let id = opsweave_testkit::id_of(&scope, "T-1");
        weave.complete(&scope, id, "me").await.unwrap();
        weave.undo(&scope, id, "me").await.unwrap();
        weave.complete(&scope, id, "me").await.unwrap();
        let all = store.events(&scope, Some(id), 0, 100).await.unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        for page in [1, 2, 3, 4, 100] {
            let last = last_status_event(&*store, &scope, id, page)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(last.seq, all[2].seq, "page {page}");
        }
        // Undo then acts on the last change: the task is open again.
        let undone = weave.undo(&scope, id, "me").await.unwrap();
        assert_eq!(undone.status, TaskStatus::Todo);
    }

    /// Completes and undos of one task at the same time all succeed and leave the events one
    /// after the other would: one status change each way, not a conflict error for the slower.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_completes_and_undos_all_succeed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            opsweave_sqlite::SqliteStore::open(&dir.path().join("c.db").display().to_string())
                .await
                .unwrap(),
        );
        let weave = Arc::new(Weave::from_parts(
            store.clone(),
            store.clone(),
            Config::default(),
        ));
        let scope = Scope::org("acme");
        let items: Vec<_> = (0..5)
            .map(|i| {
                opsweave_testkit::TaskFixture::new(&format!("T-{i}"), "renew", Some(2), 0.5)
                    .item(&scope)
            })
            .collect();
        store
            .ingest_batch(&scope, "t.csv", &items, &[])
            .await
            .unwrap();
        for i in 0..5 {
            let id = opsweave_testkit::id_of(&scope, &format!("T-{i}"));
            for undo in [false, true] {
                let runs: Vec<_> = (0..8)
                    .map(|_| {
                        let (weave, scope) = (weave.clone(), scope.clone());
                        tokio::spawn(async move {
                            match undo {
                                false => weave.complete(&scope, id, "me").await,
                                true => weave.undo(&scope, id, "me").await,
                            }
                        })
                    })
                    .collect();
                let want = if undo {
                    TaskStatus::Todo
                } else {
                    TaskStatus::Done
                };
                for run in runs {
                    assert_eq!(run.await.unwrap().unwrap().status, want, "T-{i}");
                }
            }
            let events = store.events(&scope, Some(id), 0, 100).await.unwrap();
            assert_eq!(events.len(), 2, "T-{i}: {events:?}");
        }
    }

    #[test]
    fn now_accepts_dates_date_times_and_instants() {
        assert_eq!(
            parse_now(Some("2026-11-23")).unwrap().unwrap().to_rfc3339(),
            "2026-11-23T09:00:00+00:00"
        );
        assert_eq!(
            parse_now(Some("2026-11-23T10:00:00+02:00"))
                .unwrap()
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T08:00:00+00:00"
        );
        assert_eq!(
            parse_now(Some("2026-11-23T10:00:00"))
                .unwrap()
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T10:00:00+00:00"
        );
        assert_eq!(parse_now(None).unwrap(), None);
        let err = parse_now(Some("tomorrow")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.location().field.as_deref(), Some("now"));
        // Dates chrono reads but focus could not count weeks from.
        for far in ["+262142-12-31", "-262143-01-05", "+10000-01-01T00:00:00Z"] {
            let err = parse_now(Some(far)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{far}");
            assert_eq!(err.location().field.as_deref(), Some("now"), "{far}");
        }
        assert!(parse_now(Some("9999-12-31")).is_ok());
    }

    #[test]
    fn a_naive_now_is_on_the_users_day() {
        let in_zone = |text: &str, priority: PriorityConfig| {
            let now = parse_now_in(Some(text), priority.zone()).unwrap().unwrap();
            (now.to_rfc3339(), priority.today(now).to_string())
        };
        let at = |text: &str, offset: i32| {
            let priority = PriorityConfig {
                utc_offset_minutes: offset,
                ..PriorityConfig::default()
            };
            in_zone(text, priority)
        };
        // Ten hours west of UTC, 09:00 on the 23rd is 19:00 UTC: still the 23rd there.
        assert_eq!(
            at("2026-11-23", -600),
            ("2026-11-23T19:00:00+00:00".into(), "2026-11-23".into())
        );
        assert_eq!(
            at("2026-11-23T00:30:00", 60),
            ("2026-11-22T23:30:00+00:00".into(), "2026-11-23".into())
        );
        // An instant with its own offset is that instant, whatever the user's day.
        assert_eq!(
            at("2026-11-23T00:30:00+01:00", -600).0,
            "2026-11-22T23:30:00+00:00"
        );
        // A named zone follows daylight saving time: 09:00 in Berlin is 07:00 UTC in July and
        // 08:00 UTC in December; 00:30 on 1 July is still 30 June in UTC.
        let berlin = || PriorityConfig {
            time_zone: Some("Europe/Berlin".into()),
            ..PriorityConfig::default()
        };
        assert_eq!(
            in_zone("2026-07-01", berlin()),
            ("2026-07-01T07:00:00+00:00".into(), "2026-07-01".into())
        );
        assert_eq!(
            in_zone("2026-12-01", berlin()),
            ("2026-12-01T08:00:00+00:00".into(), "2026-12-01".into())
        );
        assert_eq!(
            in_zone("2026-07-01T00:30:00", berlin()),
            ("2026-06-30T22:30:00+00:00".into(), "2026-07-01".into())
        );
    }
}
