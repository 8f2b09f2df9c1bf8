//! The conformance check of [`Snapshot`]: a store holding every kind of row is copied page by
//! page into another, and the copy holds the same rows and behaves like its source (undo, jobs,
//! usage, keys, vectors, search).
//!
//! [`snapshot_copies_every_kind`] runs it with the core page loop; the facade's migration tests
//! use [`fill_every_kind`], [`assert_same_rows`] and [`assert_copy_behaves`] around their own
//! copy.

use crate::{id_of, now, Metering, TaskFixture, VectorBackend};
use chrono::{DateTime, Duration, Utc};
use opsweave_core::access::{hash_key, mint_key, Role};
use opsweave_core::focus::focus;
use opsweave_core::graph::graph;
use opsweave_core::jobs::{JobQueue, JobStatus, NewJob};
use opsweave_core::mapping::Rejection;
use opsweave_core::snapshot::{copy_kind, SnapshotKey, SnapshotKind, SnapshotPage, COUNTED_TABLES};
use opsweave_core::task_ops::{plan_complete, plan_undo, StatusPlan};
use opsweave_core::{
    EntityKind, ErrorKind, EventKind, Horizon, IngestItem, JobId, Link, LinkKind, MatchRun,
    ModelInfo, NewEvent, Operation, PriorityConfig, RecordId, RecordStore, ReviewStatus, RowCount,
    Scope, Snapshot, TaskStatus, UsageEvent, UsageGroup, UsageQuery, VectorFilter, VectorItem,
    Window,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A store with every seam a copy reads and writes.
pub trait SnapshotBackend: Snapshot + VectorBackend + Metering + JobQueue {
    /// The store as its record seam (what focus and graph read).
    fn as_store(&self) -> &dyn RecordStore;
}

impl<T: Snapshot + VectorBackend + Metering + JobQueue> SnapshotBackend for T {
    fn as_store(&self) -> &dyn RecordStore {
        self
    }
}

/// Rows per page in these checks: small, so every kind spans several pages.
pub const PAGE: usize = 2;

/// The org with the most rows.
pub fn acme() -> Scope {
    Scope::org("acme")
}

/// A second org, narrowed to a client and project.
pub fn globex() -> Scope {
    Scope::org("globex")
        .with_client("initech")
        .with_project("q3")
}

/// What [`fill_every_kind`] made that later checks need.
#[derive(Debug, Clone)]
pub struct Filled {
    /// A task completed (in past7d).
    pub completed: RecordId,
    /// A task completed then undone.
    pub undone: RecordId,
    /// A boosted and pinned task.
    pub marked: RecordId,
    /// The job that is still queued, with its idempotency key.
    pub queued_job: (JobId, String),
    /// The secret of a live API key.
    pub secret: String,
    /// The vectors of model `snap-a`.
    pub vectors_a: Vec<VectorItem>,
}

/// Values that half precision holds exactly, so vectors compare equal on every backend.
fn exact_vector(seed: usize, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|i| ((seed * 7 + i * 3) % 13) as f32 / 8.0 - 0.75)
        .map(|x| if x == 0.0 { 0.125 } else { x })
        .collect()
}

fn status_event(scope: &Scope, id: RecordId, kind: EventKind) -> NewEvent {
    NewEvent {
        scope: scope.clone(),
        actor: "snapshot".into(),
        subject: Some(id),
        kind,
        at: now(),
    }
}

/// Writes at least three rows of every kind (in two orgs, one with client and project) through
/// the store's ordinary methods.
pub async fn fill_every_kind(store: &dyn SnapshotBackend) -> Filled {
    let (acme, globex) = (acme(), globex());

    // Records, raw payloads, tasks and links from ingests; rejections beside them.
    let mut fixtures: Vec<TaskFixture> = (0..7)
        .map(|i| {
            TaskFixture::new(
                &format!("S-{i}"),
                &format!("snapshot task {i}"),
                Some(i),
                0.1 * i as f64,
            )
        })
        .collect();
    fixtures[1].links = vec![(LinkKind::Blocks, "S-2".into())];
    fixtures[2].links = vec![(LinkKind::References, "S-3".into())];
    fixtures[3].status = TaskStatus::Doing;
    fixtures[4].links = vec![(LinkKind::ParentOf, "S-5".into())];
    let items: Vec<IngestItem> = fixtures.iter().map(|f| f.item(&acme)).collect();
    let mut bad = Rejection::new(9, Some("due"), "`2026-13-01` is not a date");
    bad.raw = Some("S-9,x,2026-13-01".into());
    let rejections = vec![
        bad,
        Rejection::new(10, None, "no id"),
        Rejection::new(11, Some("title"), "empty"),
    ];
    store
        .ingest_batch(&acme, "snapshot.csv", &items, &rejections)
        .await
        .unwrap();
    let others: Vec<IngestItem> = (0..3)
        .map(|i| {
            TaskFixture::new(&format!("G-{i}"), &format!("globex work {i}"), None, 0.5)
                .item(&globex)
        })
        .collect();
    store
        .ingest_batch(
            &globex,
            "globex.json",
            &others,
            &[Rejection::new(2, None, "bad row")],
        )
        .await
        .unwrap();
    store
        .put_links(
            &acme,
            &[Link {
                kind: LinkKind::SameEntity,
                from: id_of(&acme, "S-0"),
                to: id_of(&acme, "S-6"),
                weight: 0.75,
                evidence: "resolve:r1: p=0.75".into(),
            }],
        )
        .await
        .unwrap();

    // Task state: completed, completed then undone, boosted and pinned; events for each.
    let completed = id_of(&acme, "S-3");
    let undone = id_of(&acme, "S-1");
    for id in [completed, undone] {
        let from = store.task(&acme, id).await.unwrap().status;
        let StatusPlan::Change { to, .. } = plan_complete(from) else {
            panic!("complete must change an open task")
        };
        store
            .change_status(
                &acme,
                id,
                from,
                status_event(&acme, id, EventKind::StatusChanged { from, to }),
            )
            .await
            .unwrap();
    }
    let history = store.events(&acme, Some(undone), 0, 100).await.unwrap();
    let StatusPlan::Change { from, to, undoes } = plan_undo(TaskStatus::Done, None, history.last())
    else {
        panic!("undo must change a completed task")
    };
    let undoes = undoes.unwrap();
    store
        .change_status(
            &acme,
            undone,
            from,
            status_event(&acme, undone, EventKind::Undone { undoes, from, to }),
        )
        .await
        .unwrap();
    let marked = id_of(&acme, "S-5");
    store.mark(&acme, marked, 2.5, true).await.unwrap();
    store
        .append(NewEvent {
            scope: globex.clone(),
            actor: "cli".into(),
            subject: None,
            kind: EventKind::Ingested {
                source: "fixture".into(),
                inserted: 3,
                updated: 0,
                unchanged: 0,
                rejected: 1,
            },
            at: now(),
        })
        .await
        .unwrap();

    // Matching: three resolver states, members, pending and decided review pairs.
    let review = |r: &str, a: RecordId, b: RecordId, p: f64| opsweave_core::ReviewItem {
        resolver: r.into(),
        left: a,
        right: b,
        score: (p / (1.0 - p)).log2(),
        probability: p,
        explanation: vec![opsweave_core::matching::Contribution {
            name: "title".into(),
            similarity: Some(0.5),
            level: Some(2),
            weight: 1.25,
        }],
        status: ReviewStatus::Pending,
    };
    let ids: Vec<RecordId> = (0..7).map(|i| id_of(&acme, &format!("S-{i}"))).collect();
    for resolver in ["r1", "r2"] {
        store
            .save_match_run(
                &acme,
                &MatchRun {
                    resolver: resolver.into(),
                    state: format!("{{\"resolver\":\"{resolver}\"}}"),
                    members: ids.clone(),
                    links: vec![],
                    review: vec![
                        review(resolver, ids[0], ids[1], 0.6),
                        review(resolver, ids[2], ids[4], 0.7),
                        review(resolver, ids[5], ids[6], 0.8),
                    ],
                    replace: true,
                },
            )
            .await
            .unwrap();
    }
    let g: Vec<RecordId> = (0..3).map(|i| id_of(&globex, &format!("G-{i}"))).collect();
    store
        .save_match_run(
            &globex,
            &MatchRun {
                resolver: "r".into(),
                state: "{}".into(),
                members: g.clone(),
                links: vec![],
                review: vec![review("r", g[0], g[1], 0.9)],
                replace: true,
            },
        )
        .await
        .unwrap();
    store
        .decide_review(
            &acme,
            "r1",
            (ids[5], ids[6]),
            true,
            Some(Link {
                kind: LinkKind::SameEntity,
                from: ids[5],
                to: ids[6],
                weight: 0.8,
                evidence: "review:r1: accepted".into(),
            }),
        )
        .await
        .unwrap();
    store
        .decide_review(&acme, "r2", (ids[0], ids[1]), false, None)
        .await
        .unwrap();

    // Jobs in every status.
    let lease = std::time::Duration::from_secs(60);
    let job = |kind: &str| {
        NewJob::new(
            kind,
            acme.clone(),
            serde_json::json!({"kind": kind, "n": 1}),
        )
    };
    let done = store.enqueue(job("done")).await.unwrap();
    let claimed = store
        .claim("w", &["done".into()], lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, done.id);
    store.complete(done.id, "w").await.unwrap();
    let failed = store
        .enqueue(job("failed").with_max_attempts(1))
        .await
        .unwrap();
    store
        .claim("w", &["failed".into()], lease)
        .await
        .unwrap()
        .unwrap();
    store.fail(failed.id, "w", "it broke").await.unwrap();
    let cancelled = store.enqueue(job("cancelled")).await.unwrap();
    store.cancel(&acme, cancelled.id).await.unwrap();
    let queued = store
        .enqueue(job("queued").with_idempotency_key("snapshot-key"))
        .await
        .unwrap();
    store
        .enqueue(NewJob::new(
            "other",
            globex.clone(),
            serde_json::json!([1, 2]),
        ))
        .await
        .unwrap();

    // Usage, some attributed to jobs.
    let usage = |scope: &Scope, model: &str, tokens: u64, job: Option<JobId>| UsageEvent {
        scope: scope.clone(),
        operation: Operation::Embed,
        model: model.into(),
        input_tokens: 0,
        output_tokens: 0,
        embedding_tokens: tokens,
        latency_ms: 5,
        job,
        at: now() - Duration::hours(1),
    };
    let mut chat = usage(&acme, "gpt-x", 0, None);
    chat.operation = Operation::Chat;
    chat.input_tokens = 120;
    chat.output_tokens = 30;
    store
        .record_usage(&[
            usage(&acme, "minilm", 400, Some(done.id)),
            usage(&acme, "minilm", 250, Some(failed.id)),
            chat,
            usage(&globex, "minilm", 90, None),
        ])
        .await
        .unwrap();

    // API keys: two live, one revoked.
    let (secret, key) = mint_key([3; 32], "ci", acme.clone(), Role::Service, None);
    store.create_key(key).await.unwrap();
    let (_, key) = mint_key(
        [4; 32],
        "old",
        acme.clone(),
        Role::Member,
        Some(now() + Duration::days(30)),
    );
    let old = store.create_key(key).await.unwrap();
    store.revoke_key("acme", old.id).await.unwrap();
    let (_, key) = mint_key([5; 32], "viewer", globex.clone(), Role::Viewer, None);
    store.create_key(key).await.unwrap();

    // Vectors of two models (so pages meet a model boundary).
    let item = |scope: &Scope, id: RecordId, seed: usize, dim: usize| VectorItem {
        id,
        scope: scope.clone(),
        entity: EntityKind::Task,
        source_kind: "fixture".into(),
        content_hash: seed as u64 * 31,
        vector: exact_vector(seed, dim),
    };
    let vectors_a: Vec<VectorItem> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| item(&acme, *id, i, 4))
        .collect();
    store
        .upsert(
            &ModelInfo {
                fingerprint: Some("b3:0123456789abcdef".into()),
                ..model("snap-a", 4)
            },
            vectors_a.clone(),
        )
        .await
        .unwrap();
    let vectors_b: Vec<VectorItem> = g
        .iter()
        .enumerate()
        .map(|(i, id)| item(&globex, *id, i + 20, 3))
        .collect();
    store.upsert(&model("snap-b", 3), vectors_b).await.unwrap();

    Filled {
        completed,
        undone,
        marked,
        queued_job: (queued.id, "snapshot-key".into()),
        secret,
        vectors_a,
    }
}

fn model(name: &str, dim: usize) -> ModelInfo {
    ModelInfo {
        name: name.into(),
        dim,
        max_tokens: 0,
        fingerprint: None,
    }
}

/// Every page of `kind`, read `PAGE` rows at a time.
pub async fn export_all(store: &dyn Snapshot, kind: SnapshotKind) -> Vec<SnapshotPage> {
    let mut pages = Vec::new();
    let mut after: Option<SnapshotKey> = None;
    loop {
        let page = store.export(kind, after.as_ref(), PAGE).await.unwrap();
        assert_eq!(page.kind(), kind);
        assert!(page.len() <= PAGE, "{kind}: a page holds at most the limit");
        let Some(last) = page.last_key() else { break };
        after = Some(last);
        pages.push(normalised(page));
    }
    pages
}

/// The records of `pages` in one page, by id.
fn records_by_id(pages: Vec<SnapshotPage>) -> Vec<SnapshotPage> {
    let mut rows: Vec<_> = pages
        .into_iter()
        .flat_map(|page| match page {
            SnapshotPage::Records(rows) => rows,
            other => panic!("a page of records holds {:?} rows", other.kind()),
        })
        .collect();
    rows.sort_by_key(|row| row.record.id);
    vec![SnapshotPage::Records(rows)]
}

/// Job times in whole milliseconds (PostgreSQL keeps microseconds, SQLite milliseconds).
fn normalised(page: SnapshotPage) -> SnapshotPage {
    let ms = |t: DateTime<Utc>| DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap();
    match page {
        SnapshotPage::Jobs(jobs) => SnapshotPage::Jobs(
            jobs.into_iter()
                .map(|mut j| {
                    j.created_at = ms(j.created_at);
                    j.updated_at = ms(j.updated_at);
                    j.run_after = ms(j.run_after);
                    j.lease_expires_at = j.lease_expires_at.map(ms);
                    j.finished_at = j.finished_at.map(ms);
                    j
                })
                .collect(),
        ),
        other => other,
    }
}

/// Counts per (table, org), without empty ones.
pub fn count_map(rows: Vec<RowCount>) -> BTreeMap<(String, String), u64> {
    rows.into_iter()
        .filter(|r| r.rows > 0)
        .map(|r| ((r.table, r.org), r.rows))
        .collect()
}

/// `a` and `b` hold the same rows of every kind, and the same counts per table and org.
pub async fn assert_same_rows(a: &dyn Snapshot, b: &dyn Snapshot) {
    for kind in SnapshotKind::ALL {
        let (mut left, mut right) = (export_all(a, kind).await, export_all(b, kind).await);
        assert!(
            !left.is_empty(),
            "{kind}: the source should hold rows of it"
        );
        if kind == SnapshotKind::Records {
            // Each store pages records in its own key order: compare them in one order.
            (left, right) = (records_by_id(left), records_by_id(right));
        }
        assert_eq!(
            left, right,
            "{kind}: the copy's rows differ from the source's"
        );
    }
    let (left, right) = (
        count_map(a.row_counts().await.unwrap()),
        count_map(b.row_counts().await.unwrap()),
    );
    for table in COUNTED_TABLES {
        assert!(
            left.keys().any(|(t, _)| t == table),
            "{table}: the source should count rows of it: {left:?}"
        );
    }
    assert_eq!(left, right, "row counts per table and org differ");
}

/// The copy works like its source: task state and undo, past7d, new events, jobs, keys and usage
/// ids after the imported ones, usage sums, vectors and search.
pub async fn assert_copy_behaves(
    source: &dyn SnapshotBackend,
    copy: &dyn SnapshotBackend,
    filled: &Filled,
) {
    let acme = acme();
    // Focus (which reads the marked and open flags through its own indexes) and the graph.
    let config = PriorityConfig::default();
    let horizons = [
        Horizon::Today,
        Horizon::Week,
        Horizon::Month,
        Horizon::Later,
    ];
    for scope in [acme.clone(), globex()] {
        let want = focus(source.as_store(), &config, &scope, now(), &horizons, 50)
            .await
            .unwrap();
        let got = focus(copy.as_store(), &config, &scope, now(), &horizons, 50)
            .await
            .unwrap();
        assert_eq!(got, want, "focus of {scope}");
        for window in [Window::Week, Window::Month] {
            let want = graph(source.as_store(), &config, &scope, now(), window, 50)
                .await
                .unwrap();
            let got = graph(copy.as_store(), &config, &scope, now(), window, 50)
                .await
                .unwrap();
            assert_eq!(got, want, "graph of {scope}");
        }
    }
    let today = focus(copy.as_store(), &config, &acme, now(), &[Horizon::Today], 1)
        .await
        .unwrap();
    assert_eq!(
        today.get(Horizon::Today)[0].task.id,
        filled.marked,
        "the pinned task leads today"
    );
    for id in [filled.completed, filled.undone, filled.marked] {
        assert_eq!(
            source.task(&acme, id).await.unwrap(),
            copy.task(&acme, id).await.unwrap(),
            "task {id}"
        );
    }
    let marked = copy.task(&acme, filled.marked).await.unwrap();
    assert_eq!((marked.boost, marked.pinned), (2.5, true));
    let done = copy
        .done_between(&acme, now() - Duration::days(7), now(), 10)
        .await
        .unwrap();
    assert_eq!(
        done.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![filled.completed],
        "past7d"
    );

    // Undo on the copy reads the copied history and appends after it.
    let mut max_seq = 0;
    for org in ["acme", "globex"] {
        let events = source
            .events(&Scope::org(org), None, 0, 1000)
            .await
            .unwrap();
        max_seq = max_seq.max(events.last().map_or(0, |e| e.seq));
    }
    let history = copy
        .events(&acme, Some(filled.completed), 0, 100)
        .await
        .unwrap();
    let StatusPlan::Change { from, to, undoes } = plan_undo(TaskStatus::Done, None, history.last())
    else {
        panic!("the copied history lets the completed task be undone")
    };
    let undone = copy
        .change_status(
            &acme,
            filled.completed,
            from,
            status_event(
                &acme,
                filled.completed,
                EventKind::Undone {
                    undoes: undoes.unwrap(),
                    from,
                    to,
                },
            ),
        )
        .await
        .unwrap();
    assert!(
        undone.seq > max_seq,
        "new events come after the copied ones"
    );
    assert!(copy
        .task(&acme, filled.completed)
        .await
        .unwrap()
        .status
        .is_open());

    // Jobs keep ids, statuses and idempotency keys; new ones get new ids.
    let (queued, key) = &filled.queued_job;
    let job = copy.get(&acme, *queued).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    let again = copy
        .enqueue(
            NewJob::new("queued", acme.clone(), serde_json::json!({}))
                .with_idempotency_key(key.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        again.id, *queued,
        "the idempotency key still finds the copied job"
    );
    let statuses: Vec<JobStatus> = copy
        .list(&acme, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|j| j.status)
        .collect();
    for status in [
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Queued,
    ] {
        assert!(statuses.contains(&status), "{status}: {statuses:?}");
    }
    let max_job = copy
        .list(&acme, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .max()
        .unwrap();
    let fresh = copy
        .enqueue(NewJob::new("fresh", acme.clone(), serde_json::json!({})))
        .await
        .unwrap();
    assert!(fresh.id > max_job, "new jobs get ids after the copied ones");

    // Usage sums and keys.
    let query = UsageQuery {
        scope: acme.clone(),
        from: now() - Duration::days(1),
        to: now() + Duration::days(1),
        group_by: UsageGroup::Model,
    };
    let sums = copy.usage_totals(&query).await.unwrap();
    assert_eq!(sums, source.usage_totals(&query).await.unwrap());
    assert!(
        sums.iter()
            .any(|s| s.model == "minilm" && s.embedding_tokens == 650),
        "{sums:?}"
    );
    let key = copy
        .key_by_hash(&hash_key(&filled.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key.name, "ci");
    assert_eq!(
        copy.keys("acme").await.unwrap(),
        source.keys("acme").await.unwrap()
    );
    let (_, new) = mint_key([9; 32], "after", acme.clone(), Role::Member, None);
    let new = copy.create_key(new).await.unwrap();
    assert!(
        copy.keys("acme")
            .await
            .unwrap()
            .iter()
            .all(|k| k.id <= new.id),
        "new keys after copied ones"
    );
    copy.record_usage(&[UsageEvent {
        scope: acme.clone(),
        operation: Operation::Embed,
        model: "minilm".into(),
        input_tokens: 0,
        output_tokens: 0,
        embedding_tokens: 1,
        latency_ms: 1,
        job: None,
        at: now(),
    }])
    .await
    .unwrap();

    // Vectors answer k-NN; the matching state and review queue are the same.
    let filter = VectorFilter {
        scope: acme.clone(),
        ..VectorFilter::default()
    };
    let query = &filled.vectors_a[3];
    let hits = copy.knn("snap-a", &query.vector, 1, &filter).await.unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(query.id), "{hits:?}");
    for model in ["snap-a", "snap-b"] {
        assert_eq!(
            copy.stored_model(model).await.unwrap(),
            source.stored_model(model).await.unwrap(),
            "{model}'s dimension and fingerprint"
        );
    }
    let stored = copy.stored_model("snap-a").await.unwrap().unwrap();
    assert_eq!(stored.dim, 4);
    assert_eq!(stored.fingerprint.as_deref(), Some("b3:0123456789abcdef"));
    assert_eq!(
        copy.review_queue(&acme, None, 10).await.unwrap(),
        source.review_queue(&acme, None, 10).await.unwrap()
    );
    assert_eq!(
        copy.match_state(&acme, "r1").await.unwrap(),
        source.match_state(&acme, "r1").await.unwrap()
    );
    assert_eq!(
        copy.rejections(&acme, 10).await.unwrap(),
        source.rejections(&acme, 10).await.unwrap()
    );
    let hits = copy.search(&acme, "snapshot task", 10).await.unwrap();
    assert_eq!(hits.len(), 7, "full text is indexed in the copy: {hits:?}");
}

/// Copies every kind with the core page loop, twice (the second copy changes nothing), checks
/// the rows and the behaviour, and that a page with a bad row writes nothing.
pub async fn snapshot_copies_every_kind(
    source: Arc<dyn SnapshotBackend>,
    target: Arc<dyn SnapshotBackend>,
) {
    let filled = fill_every_kind(&*source).await;
    for round in 0..2 {
        for kind in SnapshotKind::ALL {
            let mut pages = 0;
            let copied = copy_kind(&*source, &*target, kind, PAGE, &mut |_| pages += 1)
                .await
                .unwrap();
            assert!(
                copied >= 3,
                "round {round}: {kind}: only {copied} rows copied"
            );
            assert!(
                pages >= 2,
                "round {round}: {kind}: {copied} rows in {pages} pages"
            );
        }
        assert_same_rows(&*source, &*target).await;
    }

    let err = source
        .export(SnapshotKind::Links, Some(&SnapshotKey::Id(1)), PAGE)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // A page whose second row cannot be stored (NaN importance) leaves the target as it was.
    let SnapshotPage::Records(mut rows) =
        source.export(SnapshotKind::Records, None, 2).await.unwrap()
    else {
        panic!("a records page")
    };
    for (i, row) in rows.iter_mut().enumerate() {
        row.record.id = RecordId::from_raw(row.record.id.raw() ^ 0x5a5a_5a5a);
        let task = row.task.as_mut().expect("fixtures are tasks");
        task.task.id = row.record.id;
        if i == 1 {
            task.task.importance = f64::NAN;
        }
    }
    let fresh = rows[0].record.id;
    let before = count_map(target.row_counts().await.unwrap());
    assert!(target.import(SnapshotPage::Records(rows)).await.is_err());
    assert_eq!(
        count_map(target.row_counts().await.unwrap()),
        before,
        "a failed page writes nothing"
    );
    assert_eq!(
        target.record(&acme(), fresh).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    assert_copy_behaves(&*source, &*target, &filled).await;
}
