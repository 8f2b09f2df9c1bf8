//! The conformance suite every opsweave store must pass, and fixtures to build test data.
//!
//! A backend's test calls [`run_conformance`] with a function that opens a fresh, empty store;
//! every check panics with a message naming what the backend got wrong.
#![allow(clippy::unwrap_used)]

mod cache;
mod queue;
mod recall;
mod servers;
mod snapshot;
mod usage;
mod vectors;

pub use cache::*;
pub use queue::*;
pub use recall::*;
pub use servers::*;
pub use snapshot::*;
pub use usage::*;
pub use vectors::*;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use opsweave_core::focus::{focus, rank_order};
use opsweave_core::mapping::{Normalised, Rejection};
use opsweave_core::store::{RecordFilter, SearchHit, TextQuery};
use opsweave_core::task_ops::{plan_complete, plan_undo, StatusPlan};
use opsweave_core::{
    EntityKind, ErrorKind, EventKind, EventLog, Fields, Horizon, IngestItem, Link, LinkKind,
    LinkRef, NewEvent, PriorityConfig, RankedTask, Record, RecordId, RecordStore, Scope, Signals,
    SourceRef, TaskSeed, TaskStatus,
};
use std::future::Future;
use std::sync::Arc;

/// A store under test: both seams in one object.
pub trait Backend: RecordStore + EventLog {}
impl<T: RecordStore + EventLog> Backend for T {}

/// The instant the suite treats as now.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap()
}

/// A task-like item built directly (no mapping), for store tests.
#[derive(Debug, Clone)]
pub struct TaskFixture {
    /// External id in source `fixture`.
    pub external_id: String,
    /// Title (also indexed for search).
    pub title: String,
    /// Status from the source.
    pub status: TaskStatus,
    /// Due date.
    pub due: Option<NaiveDate>,
    /// Importance in [0, 1].
    pub importance: f64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// References to other fixtures by external id.
    pub links: Vec<(LinkKind, String)>,
}

impl TaskFixture {
    /// An open task due `due_in` days from [`now`] (None: undated).
    pub fn new(external_id: &str, title: &str, due_in: Option<i64>, importance: f64) -> Self {
        Self {
            external_id: external_id.into(),
            title: title.into(),
            status: TaskStatus::Todo,
            due: due_in.map(|d| now().date_naive() + Duration::days(d)),
            importance,
            updated_at: now() - Duration::days(1),
            links: Vec::new(),
        }
    }

    /// The item a store ingests for this fixture in `scope`.
    pub fn item(&self, scope: &Scope) -> IngestItem {
        let fields = Fields::new();
        let seed = TaskSeed {
            status: Some(self.status),
            due: self.due,
            signals: Signals::default(),
        };
        let raw = serde_json::json!({"id": self.external_id, "title": self.title, "status": self.status.as_str()});
        let raw_json = raw.to_string();
        let fields_json = "{}".to_string();
        let hash = Record::compute_hash(&[
            &self.title,
            &raw_json,
            &format!("{:?}{}{:?}", self.due, self.importance, self.updated_at),
        ]);
        IngestItem {
            normalised: Normalised {
                record: Record {
                    id: RecordId::derive(scope, "fixture", &self.external_id),
                    scope: scope.clone(),
                    source: SourceRef {
                        kind: "fixture".into(),
                        external_id: self.external_id.clone(),
                        url: None,
                    },
                    entity: EntityKind::Task,
                    title: self.title.clone(),
                    body: format!("body of {}", self.title),
                    fields,
                    created_at: None,
                    updated_at: self.updated_at,
                    content_hash: hash,
                },
                task: Some(seed),
                links: self
                    .links
                    .iter()
                    .map(|(kind, to)| LinkRef {
                        kind: *kind,
                        to_source: "fixture".into(),
                        to_external_id: to.clone(),
                        evidence: "fixture".into(),
                    })
                    .collect(),
                raw_json,
                fields_json,
                line: 2,
            },
            importance: self.importance,
            importance_reason: format!("importance {}", self.importance),
        }
    }
}

/// The id a fixture gets in `scope`.
pub fn id_of(scope: &Scope, external_id: &str) -> RecordId {
    RecordId::derive(scope, "fixture", external_id)
}

/// Runs every conformance check, each on a fresh store from `open`.
pub async fn run_conformance<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Backend>>,
{
    ingest_is_idempotent(open().await).await;
    failed_batch_leaves_nothing(open().await).await;
    scopes_are_isolated(open().await).await;
    search_finds_words_in_scope(open().await).await;
    equal_scores_come_in_id_order(open().await).await;
    search_follows_changed_records(open().await).await;
    complete_and_undo_are_events(open().await).await;
    user_status_survives_unchanged_source_status(open().await).await;
    focus_equals_scoring_every_task(open().await).await;
    candidate_pages_follow_the_order(open().await).await;
    marked_tasks_rank_first(open().await).await;
    links_and_done_lanes(open().await).await;
    rejections_are_kept(open().await).await;
    task_revision_follows_task_writes(open().await).await;
    a_new_priority_config_rescores_unchanged_records(open().await).await;
}

async fn ingest(
    store: &dyn Backend,
    scope: &Scope,
    fixtures: &[TaskFixture],
) -> opsweave_core::BatchOutcome {
    let items: Vec<IngestItem> = fixtures.iter().map(|f| f.item(scope)).collect();
    store
        .ingest_batch(scope, "fixtures.csv", &items, &[])
        .await
        .unwrap()
}

/// Re-ingesting records whose content is unchanged but whose task the priority config now
/// rates otherwise (a VIP sender or label weight added) stores the new importance, as an update.
pub async fn a_new_priority_config_rescores_unchanged_records(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let fixtures: Vec<TaskFixture> = (0..3)
        .map(|i| TaskFixture::new(&format!("T-{i}"), &format!("task {i}"), None, 0.2))
        .collect();
    ingest(&*store, &scope, &fixtures).await;
    let revision = store.task_revision(&scope.org).await.unwrap();
    let mut items: Vec<IngestItem> = fixtures.iter().map(|f| f.item(&scope)).collect();
    items[1].importance = 0.95;
    items[1].importance_reason = "VIP sender ceo@bigcustomer.com".into();
    let outcome = store
        .ingest_batch(&scope, "fixtures.csv", &items, &[])
        .await
        .unwrap();
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (0, 1, 2),
        "rescored ingest"
    );
    let task = store.task(&scope, id_of(&scope, "T-1")).await.unwrap();
    assert_eq!(task.importance, 0.95);
    assert_eq!(task.importance_reason, "VIP sender ceo@bigcustomer.com");
    let other = store.task(&scope, id_of(&scope, "T-0")).await.unwrap();
    assert_eq!(other.importance, 0.2);
    if revision.is_some() {
        assert_ne!(
            store.task_revision(&scope.org).await.unwrap(),
            revision,
            "a rescore is a task write: cached focus lists must not outlive it"
        );
    }
    let again = store
        .ingest_batch(&scope, "fixtures.csv", &items, &[])
        .await
        .unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 0, 3),
        "the same config again"
    );
}

/// Re-ingesting identical items writes nothing; a changed one is an update.
pub async fn ingest_is_idempotent(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let mut fixtures: Vec<TaskFixture> = (0..25)
        .map(|i| {
            TaskFixture::new(
                &format!("T-{i}"),
                &format!("task number {i}"),
                Some(i % 9),
                0.5,
            )
        })
        .collect();
    let first = ingest(&*store, &scope, &fixtures).await;
    assert_eq!(
        (first.inserted, first.updated, first.unchanged),
        (25, 0, 0),
        "first ingest"
    );
    let again = ingest(&*store, &scope, &fixtures).await;
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 0, 25),
        "second ingest"
    );
    fixtures[3].title = "task number three, renamed".into();
    let changed = ingest(&*store, &scope, &fixtures).await;
    assert_eq!(
        (changed.inserted, changed.updated, changed.unchanged),
        (0, 1, 24),
        "changed ingest"
    );
    let record = store.record(&scope, id_of(&scope, "T-3")).await.unwrap();
    assert_eq!(record.title, "task number three, renamed");
    let raw = store
        .raw_payload(&scope, id_of(&scope, "T-3"))
        .await
        .unwrap();
    assert!(raw.contains("renamed"), "raw payload kept verbatim: {raw}");
    let listed = store
        .records(
            &scope,
            &RecordFilter {
                limit: 10,
                ..RecordFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 10);
    let rest = store
        .records(
            &scope,
            &RecordFilter {
                limit: 100,
                after: listed.last().map(|r| r.id),
                ..RecordFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        rest.len(),
        15,
        "keyset pagination continues after the cursor"
    );
    assert!(listed
        .iter()
        .chain(&rest)
        .zip(listed.iter().chain(&rest).skip(1))
        .all(|(a, b)| a.id < b.id));
    assert_eq!(store.counts(&scope).await.unwrap(), (25, 25));
}

/// A batch that fails part-way leaves the store as it was.
pub async fn failed_batch_leaves_nothing(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let mut items: Vec<IngestItem> = (0..5)
        .map(|i| TaskFixture::new(&format!("A-{i}"), "atomic", Some(1), 0.5).item(&scope))
        .collect();
    // NaN importance violates the store's NOT NULL / CHECK rules: the whole batch must roll back.
    items[4].importance = f64::NAN;
    let result = store.ingest_batch(&scope, "f", &items, &[]).await;
    assert!(result.is_err(), "a batch with an unstorable item must fail");
    assert_eq!(
        store.counts(&scope).await.unwrap(),
        (0, 0),
        "nothing of a failed batch may stay"
    );
}

/// Another org's records are invisible: not found, not listed, not searchable.
pub async fn scopes_are_isolated(store: Arc<dyn Backend>) {
    let a = Scope::org("org-a");
    let b = Scope::org("org-b");
    ingest(
        &*store,
        &a,
        &[TaskFixture::new("X-1", "secret merger plan", Some(0), 0.9)],
    )
    .await;
    let id = id_of(&a, "X-1");
    assert_eq!(
        store.record(&b, id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.task(&b, id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.search(&b, "merger", 10).await.unwrap().is_empty());
    assert_eq!(store.search(&a, "merger", 10).await.unwrap().len(), 1);
    let narrowed = Scope::org("org-a").with_client("globex");
    assert_eq!(
        store.record(&narrowed, id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let ev = NewEvent {
        scope: b.clone(),
        actor: "t".into(),
        subject: Some(id),
        kind: EventKind::StatusChanged {
            from: TaskStatus::Todo,
            to: TaskStatus::Done,
        },
        at: now(),
    };
    assert_eq!(
        store
            .change_status(&b, id, TaskStatus::Todo, ev)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound,
        "another org cannot change the task"
    );
}

/// Full-text search finds words in titles and bodies, best first, and refuses empty queries.
pub async fn search_finds_words_in_scope(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    ingest(
        &*store,
        &scope,
        &[
            TaskFixture::new("S-1", "Renew Globex support contract", Some(3), 0.5),
            TaskFixture::new("S-2", "Globex migration cutover", Some(1), 0.5),
            TaskFixture::new("S-3", "Unrelated chore", None, 0.1),
        ],
    )
    .await;
    let hits = store.search(&scope, "globex cutover", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, id_of(&scope, "S-2"));
    let hits = store.search(&scope, "Globex", 10).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits[0].score >= hits[1].score);
    assert!(
        store.search(&scope, "\"*() -", 10).await.is_err(),
        "a query without words is invalid input"
    );
}

/// Hits of equal score come in record id order, so that the same query over the same records
/// answers the same list, and a limit cuts it at the same place, in every store.
pub async fn equal_scores_come_in_id_order(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let names = ["E-1", "E-2", "E-3", "E-4", "E-5", "E-6", "E-7"];
    let fixtures: Vec<TaskFixture> = names
        .iter()
        .map(|n| TaskFixture::new(n, "Quarterly invoice review", None, 0.5))
        .collect();
    ingest(&*store, &scope, &fixtures).await;
    let mut ids: Vec<i64> = names.iter().map(|n| id_of(&scope, n).raw()).collect();
    ids.sort_unstable();
    let found = |hits: Vec<SearchHit>| -> Vec<i64> { hits.iter().map(|h| h.id.raw()).collect() };
    let hits = store.search(&scope, "invoice", 10).await.unwrap();
    assert!(
        hits.windows(2).all(|w| w[0].score == w[1].score),
        "{hits:?}"
    );
    assert_eq!(found(hits), ids, "search");
    let hits = store.search(&scope, "invoice", 3).await.unwrap();
    assert_eq!(found(hits), ids[..3], "search, cut at 3");
    let query = TextQuery {
        text: "quarterly invoice".into(),
        limit: 4,
        ..TextQuery::default()
    };
    let hits = store.rank_text(&scope, &query).await.unwrap();
    assert_eq!(found(hits), ids[..4], "rank_text, cut at 4");
}

/// Search follows what batches write: a changed title replaces the old words, new records are
/// found beside updated ones, and an item given twice in a batch is found by its later words only.
pub async fn search_follows_changed_records(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    ingest(
        &*store,
        &scope,
        &[
            TaskFixture::new("F-1", "alpha renewal", Some(1), 0.5),
            TaskFixture::new("F-2", "beta invoice", Some(2), 0.5),
        ],
    )
    .await;
    let outcome = ingest(
        &*store,
        &scope,
        &[
            TaskFixture::new("F-1", "gamma renewal", Some(1), 0.5),
            TaskFixture::new("F-3", "alpha delta", Some(3), 0.5),
            TaskFixture::new("F-4", "epsilon first", Some(4), 0.5),
            TaskFixture::new("F-4", "zeta second", Some(4), 0.5),
        ],
    )
    .await;
    assert_eq!(
        (outcome.inserted, outcome.updated, outcome.unchanged),
        (2, 2, 0),
        "F-3 and F-4 new; F-1 changed, and F-4's first item counts as replaced"
    );
    let found = |query: &'static str| {
        let store = store.clone();
        let scope = scope.clone();
        async move {
            let mut ids: Vec<RecordId> = store
                .search(&scope, query, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|hit| hit.id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        found("alpha").await,
        vec![id_of(&scope, "F-3")],
        "the old title is gone"
    );
    assert_eq!(found("gamma").await, vec![id_of(&scope, "F-1")]);
    assert_eq!(found("beta").await, vec![id_of(&scope, "F-2")], "untouched");
    assert_eq!(found("zeta").await, vec![id_of(&scope, "F-4")]);
    assert!(
        found("epsilon").await.is_empty(),
        "the earlier duplicate was replaced"
    );
    assert_eq!(
        found("renewal").await,
        vec![id_of(&scope, "F-1")],
        "one entry per record"
    );
}

/// Complete then undo restores the status; both are events; stale writers get a conflict.
pub async fn complete_and_undo_are_events(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let mut doing = TaskFixture::new("C-1", "ship it", Some(0), 0.5);
    doing.status = TaskStatus::Doing;
    ingest(&*store, &scope, &[doing]).await;
    let id = id_of(&scope, "C-1");
    let task = store.task(&scope, id).await.unwrap();
    let StatusPlan::Change { from, to, .. } = plan_complete(task.status) else {
        panic!("complete must change")
    };
    let event = NewEvent {
        scope: scope.clone(),
        actor: "t".into(),
        subject: Some(id),
        kind: EventKind::StatusChanged { from, to },
        at: now(),
    };
    let done = store
        .change_status(&scope, id, from, event.clone())
        .await
        .unwrap();
    assert_eq!(
        store.task(&scope, id).await.unwrap().status,
        TaskStatus::Done
    );
    assert_eq!(
        store.task(&scope, id).await.unwrap().completed_at,
        Some(now())
    );
    let stale = store
        .change_status(&scope, id, TaskStatus::Doing, event)
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::Conflict);
    let history = store.events(&scope, Some(id), 0, 100).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0], done);
    // The user's complete leaves the source's status as the source gave it.
    let (read, source_status) = store.task_with_source_status(&scope, id).await.unwrap();
    assert_eq!(read, store.task(&scope, id).await.unwrap());
    assert_eq!(source_status.as_deref(), Some(from.as_str()));
    let missing = store
        .task_with_source_status(&scope, RecordId::from_raw(id.raw() ^ 1))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let StatusPlan::Change { from, to, undoes } =
        plan_undo(TaskStatus::Done, source_status.as_deref(), history.last())
    else {
        panic!("undo must change")
    };
    assert_eq!(undoes, Some(done.seq));
    let undo = NewEvent {
        scope: scope.clone(),
        actor: "t".into(),
        subject: Some(id),
        kind: EventKind::Undone {
            undoes: done.seq,
            from,
            to,
        },
        at: now(),
    };
    let undone = store
        .change_status(&scope, id, from, undo.clone())
        .await
        .unwrap();
    assert!(undone.seq > done.seq, "sequence numbers increase");
    let task = store.task(&scope, id).await.unwrap();
    assert_eq!((task.status, task.completed_at), (TaskStatus::Doing, None));
    let history = store.events(&scope, Some(id), done.seq, 100).await.unwrap();
    assert_eq!(history, vec![undone.clone()]);

    // Completed again: an undo planned before that (of the first complete, from the same
    // status) is refused, so the log never records the wrong change as undone.
    let again = NewEvent {
        kind: EventKind::StatusChanged {
            from: TaskStatus::Doing,
            to: TaskStatus::Done,
        },
        ..undo.clone()
    };
    let redone = store
        .change_status(&scope, id, TaskStatus::Doing, again)
        .await
        .unwrap();
    let stale_undo = store
        .change_status(&scope, id, TaskStatus::Done, undo.clone())
        .await
        .unwrap_err();
    assert_eq!(stale_undo.kind(), ErrorKind::Conflict, "{stale_undo}");
    assert_eq!(
        store.task(&scope, id).await.unwrap().status,
        TaskStatus::Done,
        "the refused undo changed nothing"
    );
    let current = NewEvent {
        kind: EventKind::Undone {
            undoes: redone.seq,
            from: TaskStatus::Done,
            to: TaskStatus::Doing,
        },
        ..undo
    };
    store
        .change_status(&scope, id, TaskStatus::Done, current)
        .await
        .unwrap();
    let history = store
        .events(&scope, Some(id), undone.seq, 100)
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
}

/// The user's complete stands over re-ingests until the source's own status changes.
pub async fn user_status_survives_unchanged_source_status(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let mut fixture = TaskFixture::new("U-1", "reply to Hank", Some(0), 0.5);
    ingest(&*store, &scope, std::slice::from_ref(&fixture)).await;
    let id = id_of(&scope, "U-1");
    let event = NewEvent {
        scope: scope.clone(),
        actor: "t".into(),
        subject: Some(id),
        kind: EventKind::StatusChanged {
            from: TaskStatus::Todo,
            to: TaskStatus::Done,
        },
        at: now(),
    };
    store
        .change_status(&scope, id, TaskStatus::Todo, event)
        .await
        .unwrap();
    fixture.title = "reply to Hank (edited)".into();
    ingest(&*store, &scope, std::slice::from_ref(&fixture)).await;
    assert_eq!(
        store.task(&scope, id).await.unwrap().status,
        TaskStatus::Done,
        "an edit must not reopen the task"
    );
    fixture.status = TaskStatus::Doing;
    ingest(&*store, &scope, std::slice::from_ref(&fixture)).await;
    assert_eq!(
        store.task(&scope, id).await.unwrap().status,
        TaskStatus::Doing,
        "a new source status wins"
    );
}

/// A tiny deterministic generator, so the suite needs no RNG crate and failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The focus search returns exactly what scoring every open task would.
pub async fn focus_equals_scoring_every_task(store: Arc<dyn Backend>) {
    let config = PriorityConfig::default();
    // The last seed crowds 800 tasks onto five days, two importances and 40 update times: each
    // (day, importance) holds far more tasks than a page, with exact ties on every sort key.
    for seed in [1u64, 7, 42, 99] {
        let crowded = seed == 99;
        let scope = Scope::org(format!("acme-{seed}"));
        let mut rng = Lcg(seed);
        let fixtures: Vec<TaskFixture> = (0..if crowded { 800 } else { 600 })
            .map(|i| {
                let due = match (crowded, rng.below(10)) {
                    (false, 0 | 1) | (true, 0) => None,
                    (false, _) => Some(rng.below(200) as i64 - 120),
                    (true, _) => Some(rng.below(5) as i64 - 2),
                };
                // Coarse importances make ties, which the order must break the same way.
                let importance = if crowded {
                    0.5 + rng.below(2) as f64 / 2.0
                } else {
                    rng.below(11) as f64 / 10.0
                };
                let mut f = TaskFixture::new(
                    &format!("F{seed}-{i}"),
                    &format!("task {i}"),
                    due,
                    importance,
                );
                let hours = if crowded {
                    rng.below(40) * 12
                } else {
                    rng.below(24 * 60)
                };
                f.updated_at = now() - Duration::hours(hours as i64);
                f.status = match rng.below(6) {
                    0 => TaskStatus::Done,
                    1 => TaskStatus::Doing,
                    _ => TaskStatus::Todo,
                };
                f
            })
            .collect();
        ingest(&*store, &scope, &fixtures).await;
        let horizons = [
            Horizon::Today,
            Horizon::Week,
            Horizon::Month,
            Horizon::Later,
        ];
        for limit in [1usize, 3, 10] {
            let got = focus(&*store, &config, &scope, now(), &horizons, limit)
                .await
                .unwrap();
            let today = config.today(now());
            let mut all: Vec<RankedTask> = Vec::new();
            for f in &fixtures {
                let task = store
                    .task(&scope, id_of(&scope, &f.external_id))
                    .await
                    .unwrap();
                if task.status.is_open() {
                    let horizon = config.horizon(&task, today);
                    let priority = config.score(&task, now());
                    all.push(RankedTask {
                        task,
                        horizon,
                        priority,
                    });
                }
            }
            all.sort_by(rank_order);
            for h in horizons {
                let want: Vec<RecordId> = all
                    .iter()
                    .filter(|t| t.horizon == h)
                    .take(limit)
                    .map(|t| t.task.id)
                    .collect();
                let have: Vec<RecordId> = got.get(h).iter().map(|t| t.task.id).collect();
                assert_eq!(have, want, "seed {seed}, limit {limit}, horizon {h}");
            }
        }
    }
}

/// Candidate pages walk (importance desc, updated_at desc, id) with exact ties on every key, and
/// a `below` cursor skips the rest of an importance level.
pub async fn candidate_pages_follow_the_order(store: Arc<dyn Backend>) {
    use opsweave_core::store::{CandidateQuery, Slice};
    use opsweave_core::{CandidateCursor, Task};
    let scope = Scope::org("pages");
    let mut rng = Lcg(5);
    let fixtures: Vec<TaskFixture> = (0..90)
        .map(|i| {
            let mut f = TaskFixture::new(
                &format!("P-{i}"),
                &format!("page task {i}"),
                Some(0),
                [0.2, 0.5, 0.9][rng.below(3) as usize],
            );
            f.updated_at = now() - Duration::hours(rng.below(6) as i64);
            f
        })
        .collect();
    ingest(&*store, &scope, &fixtures).await;
    let today = PriorityConfig::default().today(now());
    let slice = Slice::Due(today, today);
    let mut want: Vec<Task> = Vec::new();
    for f in &fixtures {
        want.push(
            store
                .task(&scope, id_of(&scope, &f.external_id))
                .await
                .unwrap(),
        );
    }
    want.sort_by(|a, b| {
        b.importance
            .total_cmp(&a.importance)
            .then(b.updated_at.cmp(&a.updated_at))
            .then(a.id.cmp(&b.id))
    });
    let mut have: Vec<Task> = Vec::new();
    let mut after = None;
    loop {
        let query = CandidateQuery {
            slice,
            min_importance: f64::NEG_INFINITY,
            after,
            limit: 7,
        };
        let page = store.task_candidates(&scope, &query).await.unwrap();
        after = page.last().map(CandidateCursor::after);
        let done = page.len() < 7;
        have.extend(page);
        if done {
            break;
        }
    }
    let ids = |tasks: &[Task]| tasks.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(&have), ids(&want), "pages of 7 walk the whole order");
    // Past the first task with a `below` cursor: only less important tasks remain.
    let query = CandidateQuery {
        slice,
        min_importance: f64::NEG_INFINITY,
        after: Some(CandidateCursor::below(&want[0])),
        limit: 1000,
    };
    let rest = store.task_candidates(&scope, &query).await.unwrap();
    let lower: Vec<Task> = want
        .iter()
        .filter(|t| t.importance < want[0].importance)
        .cloned()
        .collect();
    assert!(!lower.is_empty() && lower.len() < want.len());
    assert_eq!(
        ids(&rest),
        ids(&lower),
        "below skips the whole importance level"
    );
}

/// Pinned tasks go to today and rank first; boosts add points.
pub async fn marked_tasks_rank_first(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let config = PriorityConfig::default();
    ingest(
        &*store,
        &scope,
        &[
            TaskFixture::new("M-1", "urgent thing", Some(0), 1.0),
            TaskFixture::new("M-2", "someday thing", Some(90), 0.0),
            TaskFixture::new("M-3", "boosted", Some(5), 0.1),
        ],
    )
    .await;
    store
        .mark(&scope, id_of(&scope, "M-2"), 0.0, true)
        .await
        .unwrap();
    store
        .mark(&scope, id_of(&scope, "M-3"), 500.0, false)
        .await
        .unwrap();
    // A boost that would carry a score to infinity (JSON null) is bad input, and changes nothing.
    for bad in [f64::NAN, f64::INFINITY, 1e308, -1e308] {
        let err = store
            .mark(&scope, id_of(&scope, "M-3"), bad, false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    assert_eq!(
        store
            .task(&scope, id_of(&scope, "M-3"))
            .await
            .unwrap()
            .boost,
        500.0
    );
    let got = focus(
        &*store,
        &config,
        &scope,
        now(),
        &[Horizon::Today, Horizon::Week],
        3,
    )
    .await
    .unwrap();
    let today: Vec<RecordId> = got.get(Horizon::Today).iter().map(|t| t.task.id).collect();
    assert_eq!(today, vec![id_of(&scope, "M-2"), id_of(&scope, "M-1")]);
    assert_eq!(got.get(Horizon::Week)[0].task.id, id_of(&scope, "M-3"));
    assert!(got.get(Horizon::Week)[0].priority.score > 500.0);
    assert!(store
        .mark(&scope, id_of(&scope, "nope"), 1.0, false)
        .await
        .is_err());
}

/// The task revision of an org rises with every write to its tasks (ingest, status change, mark,
/// delete) and stays put when nothing was written or another org was: what lets a process reuse
/// a focus answer while the revision has not moved.
pub async fn task_revision_follows_task_writes(store: Arc<dyn Backend>) {
    let (acme, initech) = (Scope::org("acme"), Scope::org("initech"));
    let revision = |org: &'static str| {
        let store = store.clone();
        async move {
            store
                .task_revision(org)
                .await
                .unwrap()
                .expect("a conforming store keeps a task revision")
        }
    };
    let start = revision("acme").await;
    let fixtures = [
        TaskFixture::new("R-1", "first", Some(0), 0.5),
        TaskFixture::new("R-2", "second", Some(1), 0.4),
    ];
    ingest(&*store, &acme, &fixtures).await;
    let ingested = revision("acme").await;
    assert!(ingested > start, "ingest raises it: {start} -> {ingested}");
    ingest(&*store, &acme, &fixtures).await;
    assert_eq!(
        revision("acme").await,
        ingested,
        "an unchanged re-ingest writes nothing"
    );
    let other = revision("initech").await;
    ingest(&*store, &initech, &fixtures).await;
    assert!(revision("initech").await > other, "per org");
    assert_eq!(revision("acme").await, ingested, "another org's write");

    let id = id_of(&acme, "R-1");
    let event = |from, to| NewEvent {
        scope: acme.clone(),
        actor: "t".into(),
        subject: Some(id),
        kind: EventKind::StatusChanged { from, to },
        at: now(),
    };
    store
        .change_status(
            &acme,
            id,
            TaskStatus::Todo,
            event(TaskStatus::Todo, TaskStatus::Done),
        )
        .await
        .unwrap();
    let completed = revision("acme").await;
    assert!(completed > ingested, "a status change raises it");
    let conflict = store
        .change_status(
            &acme,
            id,
            TaskStatus::Todo,
            event(TaskStatus::Todo, TaskStatus::Done),
        )
        .await
        .unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    assert_eq!(revision("acme").await, completed, "a refused change");

    store
        .mark(&acme, id_of(&acme, "R-2"), 5.0, true)
        .await
        .unwrap();
    let marked = revision("acme").await;
    assert!(marked > completed, "a mark raises it");
    assert!(store
        .mark(&acme, id_of(&acme, "nope"), 5.0, true)
        .await
        .is_err());
    assert_eq!(revision("acme").await, marked, "a mark of nothing");

    let gone = store
        .delete_records(&acme, &[id_of(&acme, "R-2")])
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let deleted = revision("acme").await;
    assert!(deleted > marked, "a delete raises it");
    store
        .delete_records(&acme, &[id_of(&acme, "nope")])
        .await
        .unwrap();
    assert_eq!(revision("acme").await, deleted, "a delete of nothing");
}

/// Links between stored records come back; completed tasks appear in the done lane.
pub async fn links_and_done_lanes(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let mut child = TaskFixture::new("L-2", "child", Some(1), 0.5);
    child.links.push((LinkKind::References, "L-1".into()));
    let mut done = TaskFixture::new("L-3", "finished", Some(-1), 0.5);
    done.status = TaskStatus::Done;
    done.updated_at = now() - Duration::days(2);
    ingest(
        &*store,
        &scope,
        &[TaskFixture::new("L-1", "parent", Some(0), 0.5), child, done],
    )
    .await;
    let ids = [id_of(&scope, "L-1"), id_of(&scope, "L-2")];
    let links = store.links_among(&scope, &ids).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].from, links[0].to, links[0].kind),
        (ids[1], ids[0], LinkKind::References)
    );
    store
        .put_links(
            &scope,
            &[Link {
                kind: LinkKind::SameEntity,
                from: ids[0],
                to: ids[1],
                weight: 0.93,
                evidence: "match".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(store.links_among(&scope, &ids).await.unwrap().len(), 2);
    let bad = Link {
        kind: LinkKind::SameEntity,
        from: ids[0],
        to: ids[1],
        weight: 2.0,
        evidence: String::new(),
    };
    assert_eq!(
        store.put_links(&scope, &[bad]).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let recent = store
        .done_between(&scope, now() - Duration::days(7), now(), 10)
        .await
        .unwrap();
    assert_eq!(
        recent.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![id_of(&scope, "L-3")]
    );
    assert!(store
        .done_between(&scope, now() - Duration::days(1), now(), 10)
        .await
        .unwrap()
        .is_empty());
    // Both ends count; a completion after `until` is not in the window (a graph "as of" a past
    // day must not show what was done later).
    let at = recent[0]
        .completed_at
        .expect("a done task has its completion time");
    assert_eq!(
        store.done_between(&scope, at, at, 10).await.unwrap().len(),
        1
    );
    assert!(store
        .done_between(
            &scope,
            at - Duration::days(7),
            at - Duration::milliseconds(1),
            10
        )
        .await
        .unwrap()
        .is_empty());
}

/// Rejections are stored with their file, line, field and reason.
pub async fn rejections_are_kept(store: Arc<dyn Backend>) {
    let scope = Scope::org("acme");
    let mut r = Rejection::new(7, Some("date_deadline"), "`2026-13-01` is not a date");
    r.raw = Some("1,x,2026-13-01".into());
    store
        .ingest_batch(&scope, "leads.csv", &[], &[r.clone()])
        .await
        .unwrap();
    let kept = store.rejections(&scope, 10).await.unwrap();
    assert_eq!(kept, vec![("leads.csv".to_string(), r)]);
    assert!(store
        .rejections(&Scope::org("other"), 10)
        .await
        .unwrap()
        .is_empty());
}

/// A review pair of resolver `r` between records `a` and `b`.
fn review_item(r: &str, a: i64, b: i64, p: f64) -> opsweave_core::ReviewItem {
    opsweave_core::ReviewItem {
        resolver: r.into(),
        left: RecordId::from_raw(a),
        right: RecordId::from_raw(b),
        score: (p / (1.0 - p)).log2(),
        probability: p,
        explanation: vec![opsweave_core::matching::Contribution {
            name: "company".into(),
            similarity: Some(0.8),
            level: Some(1),
            weight: 3.5,
        }],
        status: opsweave_core::ReviewStatus::Pending,
    }
}

/// Resolver runs: links and queue are stored whole, a full run replaces its own links and
/// pending pairs, decisions stick and write their link. Backends that store match runs call this
/// beside [`run_conformance`].
pub async fn match_runs_and_review(store: Arc<dyn Backend>) {
    use opsweave_core::{MatchRun, ReviewStatus};
    let scope = Scope::org("acme");
    assert!(store.match_state(&scope, "r").await.unwrap().is_none());
    let link = |a: i64, b: i64| Link {
        kind: LinkKind::SameEntity,
        from: RecordId::from_raw(a),
        to: RecordId::from_raw(b),
        weight: 0.99,
        evidence: "resolve:r: p=0.99".into(),
    };
    let mut run = MatchRun {
        resolver: "r".into(),
        state: "{\"model\":1}".into(),
        members: (1..=6).map(RecordId::from_raw).collect(),
        links: vec![link(1, 2)],
        review: vec![review_item("r", 3, 4, 0.6), review_item("r", 5, 6, 0.8)],
        replace: true,
    };
    store.save_match_run(&scope, &run).await.unwrap();
    let (state, members) = store.match_state(&scope, "r").await.unwrap().unwrap();
    assert_eq!(state, "{\"model\":1}");
    assert_eq!(members.len(), 6);
    let queue = store.review_queue(&scope, Some("r"), 10).await.unwrap();
    assert_eq!(
        queue.iter().map(|q| q.probability).collect::<Vec<_>>(),
        vec![0.8, 0.6],
        "most likely first"
    );
    assert_eq!(queue[0].explanation[0].name, "company");
    let other = Scope::org("globex");
    assert!(store
        .review_queue(&other, None, 10)
        .await
        .unwrap()
        .is_empty());

    // Accepting writes the link; accepting again is harmless; rejecting it now conflicts.
    let pair = (RecordId::from_raw(5), RecordId::from_raw(6));
    let accepted_link = |a: i64, b: i64| Link {
        evidence: "review:r: accepted".into(),
        ..link(a, b)
    };
    let accepted = store
        .decide_review(&scope, "r", pair, true, Some(accepted_link(5, 6)))
        .await
        .unwrap();
    assert_eq!(accepted.status, ReviewStatus::Accepted);
    store
        .decide_review(&scope, "r", pair, true, Some(accepted_link(5, 6)))
        .await
        .unwrap();
    let err = store
        .decide_review(&scope, "r", pair, false, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let ids: Vec<RecordId> = (1..=6).map(RecordId::from_raw).collect();
    assert_eq!(store.links_among(&scope, &ids).await.unwrap().len(), 2);
    let err = store
        .decide_review(
            &scope,
            "r",
            (RecordId::from_raw(9), RecordId::from_raw(8)),
            true,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // A full re-run replaces the run's own links and pending pairs; the decided pair stays.
    run.links = vec![link(3, 4)];
    run.review = vec![review_item("r", 5, 6, 0.7), review_item("r", 1, 2, 0.65)];
    store.save_match_run(&scope, &run).await.unwrap();
    let links = store.links_among(&scope, &ids).await.unwrap();
    let pairs: Vec<(i64, i64)> = links.iter().map(|l| (l.from.raw(), l.to.raw())).collect();
    assert!(
        pairs.contains(&(3, 4)) && pairs.contains(&(5, 6)),
        "{pairs:?}"
    );
    assert!(!pairs.contains(&(1, 2)), "old run link replaced: {pairs:?}");
    let queue = store.review_queue(&scope, Some("r"), 10).await.unwrap();
    assert_eq!(queue.len(), 1, "decided pair not queued again: {queue:?}");
    assert_eq!((queue[0].left.raw(), queue[0].right.raw()), (1, 2));
}
