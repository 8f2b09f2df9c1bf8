//! What only a server store must get right: lost connections, concurrent writers, batches larger
//! than one statement, text PostgreSQL cannot hold, and search that folds words like SQLite.
#![allow(clippy::unwrap_used)]

mod support;

use chrono::Duration;
use opsweave_core::mapping::Rejection;
use opsweave_core::{
    EntityKind, ErrorKind, EventKind, EventLog, IngestItem, LinkKind, NewEvent, RecordStore, Scope,
    TaskStatus, Value,
};
use opsweave_postgres::PgStore;
use opsweave_testkit::{id_of, now, TaskFixture};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;

/// A fresh database with the store open on it, or `None` when the test may skip.
async fn fresh(test: &str) -> Option<(support::Databases, String, PgStore)> {
    let server = support::server_url(test)?;
    let databases = support::Databases::new(&server, test);
    let url = databases.create().await;
    let store = PgStore::open(&url).await.unwrap();
    Some((databases, url, store))
}

fn fixtures(prefix: &str, n: usize) -> Vec<TaskFixture> {
    (0..n)
        .map(|i| {
            TaskFixture::new(
                &format!("{prefix}-{i}"),
                &format!("task {prefix} {i}"),
                Some((i % 30) as i64 - 10),
                (i % 11) as f64 / 10.0,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_larger_than_a_statement_commit_whole() {
    let Some((databases, _, store)) = fresh("big_batch").await else {
        return;
    };
    let scope = Scope::org("acme");
    let mut fx = fixtures("B", 2_500);
    for i in (1..2_500).step_by(7) {
        fx[i]
            .links
            .push((LinkKind::References, format!("B-{}", i - 1)));
        // The same link twice in one batch is one link.
        fx[i]
            .links
            .push((LinkKind::References, format!("B-{}", i - 1)));
    }
    let mut items: Vec<IngestItem> = fx.iter().map(|f| f.item(&scope)).collect();
    // An item given twice: the later one wins and the earlier one counts as an update.
    let mut twice = fx[5].clone();
    twice.title = "task B 5, second version".into();
    items.push(twice.item(&scope));
    let rejections: Vec<Rejection> = (0..1_500)
        .map(|i| Rejection::new(i + 2, Some("due"), format!("bad row {i}")))
        .collect();
    let first = store
        .ingest_batch(&scope, "big.csv", &items, &rejections)
        .await
        .unwrap();
    assert_eq!(
        (first.inserted, first.updated, first.unchanged),
        (2_500, 1, 0)
    );
    assert_eq!(
        store
            .task(&scope, id_of(&scope, "B-5"))
            .await
            .unwrap()
            .title,
        "task B 5, second version"
    );
    let ids: Vec<_> = (0..2_500)
        .map(|i| id_of(&scope, &format!("B-{i}")))
        .collect();
    let links = store.links_among(&scope, &ids).await.unwrap();
    assert_eq!(links.len(), 357, "one link per 7th task");
    let kept = store.rejections(&scope, 2_000).await.unwrap();
    assert_eq!(kept.len(), 1_500);
    assert_eq!(
        kept[0].1.reason, "bad row 1499",
        "newest first, in file order"
    );
    let again = store
        .ingest_batch(&scope, "big.csv", &items[..2_500], &[])
        .await
        .unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.unchanged),
        (0, 1, 2_499)
    );
    assert_eq!(store.counts(&scope).await.unwrap(), (2_500, 2_500));
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_are_retried_and_batches_never_half_applied() {
    let Some((databases, url, store)) = fresh("lost_conn").await else {
        return;
    };
    let scope = Scope::org("acme");
    let fx = fixtures("L", 50);
    store
        .ingest_batch(&scope, "a.csv", &[fx[0].item(&scope)], &[])
        .await
        .unwrap();
    // Every pooled connection dies (as in a failover); the next batch meets a dead one first.
    let mut admin = PgConnection::connect(&url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND application_name = 'opsweave'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 1, "the store had a connection to end");
    let items: Vec<IngestItem> = fx.iter().map(|f| f.item(&scope)).collect();
    let outcome = store
        .ingest_batch(&scope, "a.csv", &items, &[])
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.unchanged), (49, 1));
    assert_eq!(store.counts(&scope).await.unwrap(), (50, 50));

    // A batch that fails inside the server leaves nothing, also across statements.
    let mut bad: Vec<IngestItem> = fixtures("X", 1_500)
        .iter()
        .map(|f| f.item(&scope))
        .collect();
    bad[1_400].importance = f64::NAN;
    let err = store
        .ingest_batch(&scope, "x.csv", &bad, &[])
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Unavailable, "not retried: {err}");
    assert_eq!(store.counts(&scope).await.unwrap(), (50, 50));
    admin.close().await.unwrap();
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_do_not_deadlock_or_double_complete() {
    let Some((databases, _, store)) = fresh("concurrent").await else {
        return;
    };
    let store = Arc::new(store);
    let scope = Scope::org("acme");
    let fx = fixtures("C", 3_000);
    // Four writers upsert overlapping records in different orders at once.
    let mut writers = Vec::new();
    for w in 0..4usize {
        let store = store.clone();
        let scope = scope.clone();
        let mut items: Vec<IngestItem> = fx.iter().map(|f| f.item(&scope)).collect();
        items.rotate_left(w * 700);
        if w % 2 == 1 {
            items.reverse();
        }
        writers.push(tokio::spawn(async move {
            store.ingest_batch(&scope, "c.csv", &items, &[]).await
        }));
    }
    let mut inserted = 0;
    for w in writers {
        let outcome = w.await.unwrap().unwrap();
        assert_eq!(
            outcome.inserted + outcome.updated + outcome.unchanged,
            3_000
        );
        inserted += outcome.inserted;
    }
    assert_eq!(
        inserted, 3_000,
        "each record inserted by exactly one writer"
    );
    assert_eq!(store.counts(&scope).await.unwrap(), (3_000, 3_000));

    // Eight people complete the same task at once: one wins, the others are told it changed.
    let id = id_of(&scope, "C-1");
    let mut tries = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let scope = scope.clone();
        tries.push(tokio::spawn(async move {
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
        }));
    }
    let mut won = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        store.events(&scope, Some(id), 0, 100).await.unwrap().len(),
        1
    );
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_readers_following_seq_see_every_event() {
    let Some((databases, _, store)) = fresh("events").await else {
        return;
    };
    let store = Arc::new(store);
    let scope = Scope::org("acme");
    let mut appenders = Vec::new();
    for a in 0..8 {
        let store = store.clone();
        let scope = scope.clone();
        appenders.push(tokio::spawn(async move {
            for i in 0..25 {
                store
                    .append(NewEvent {
                        scope: scope.clone(),
                        actor: format!("appender {a}\0"),
                        subject: None,
                        kind: EventKind::Ingested {
                            source: format!("s{i}"),
                            inserted: i,
                            updated: 0,
                            unchanged: 0,
                            rejected: 0,
                        },
                        at: now() + Duration::microseconds(1_234),
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    // A reader pages through the log while it grows.
    let mut seen = Vec::new();
    let mut after = 0;
    while seen.len() < 200 {
        let page = store.events(&scope, None, after, 7).await.unwrap();
        if let Some(last) = page.last() {
            after = last.seq;
        }
        seen.extend(page);
        tokio::task::yield_now().await;
    }
    for a in appenders {
        a.await.unwrap();
    }
    assert_eq!(seen.len(), 200);
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        seen[0].event.at,
        now() + Duration::milliseconds(1),
        "kept to the millisecond"
    );
    assert!(
        seen[0].event.actor.ends_with('\u{FFFD}'),
        "NUL stored as U+FFFD"
    );
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_folds_case_and_diacritics_and_nul_text_is_stored() {
    let Some((databases, url, store)) = fresh("search").await else {
        return;
    };
    let scope = Scope::org("acme");
    let items: Vec<IngestItem> = [
        ("S-1", "Café Müller: renew SOW"),
        ("S-2", "OPS-101 Globex cutover"),
        ("S-3", "title with a \0 NUL"),
        ("S-4", "build 1e5abc"),
    ]
    .iter()
    .map(|(id, title)| TaskFixture::new(id, title, Some(1), 0.5).item(&scope))
    .collect();
    store
        .ingest_batch(&scope, "s.csv", &items, &[])
        .await
        .unwrap();
    let hit = |q: &'static str| {
        let store = &store;
        let scope = &scope;
        async move {
            store
                .search(scope, q, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(hit("cafe muller").await, vec![id_of(&scope, "S-1")]);
    assert_eq!(hit("CAFÉ").await, vec![id_of(&scope, "S-1")]);
    assert_eq!(hit("ops-101").await, vec![id_of(&scope, "S-2")]);
    assert_eq!(hit("101 globex").await, vec![id_of(&scope, "S-2")]);
    assert_eq!(hit("nul").await, vec![id_of(&scope, "S-3")]);
    // One word, as SQLite cuts it (PostgreSQL's own parser reads "1e5" and "abc").
    assert_eq!(hit("1e5abc").await, vec![id_of(&scope, "S-4")]);
    assert!(hit("abc").await.is_empty());
    let hits = store.search(&scope, "globex", 10).await.unwrap();
    assert_eq!(hits[0].snippet, "body of OPS-101 [Globex] cutover");
    let record = store.record(&scope, id_of(&scope, "S-3")).await.unwrap();
    assert_eq!(record.title, "title with a \u{FFFD} NUL");
    // Opening again (a second process) applies no migration twice.
    let again = PgStore::open(&url).await.unwrap();
    assert_eq!(again.counts(&scope).await.unwrap(), (4, 4));
    drop((store, again));
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_built_by_the_store_equal_the_servers_own_parse() {
    let Some((databases, url, store)) = fresh("documents").await else {
        return;
    };
    let scope = Scope::org("acme");
    // Folded words (what the store indexes), so the server's parser sees the same words; the
    // limits: 255 positions per column and 256 per document, the last position 16,383, words of
    // 2,047 bytes and more left out.
    let a300 = "a ".repeat(300);
    let cases: Vec<(String, String)> = vec![
        ("renew renew sow".into(), "sow the seeds".into()),
        (a300.clone(), format!("{a300} b")),
        (format!("{}a b c a", "x ".repeat(16_380)), "a b a".into()),
        (
            format!("{} {} q", "y".repeat(2046), "z".repeat(2047)),
            "q".into(),
        ),
        ("only title".into(), String::new()),
        (String::new(), "only body body".into()),
        (
            "привет мир 東京 straße".into(),
            "東京 tokyo 2026 11 22".into(),
        ),
        ("ops 101".into(), "101 ops 101".into()),
    ];
    let items: Vec<IngestItem> = cases
        .iter()
        .enumerate()
        .map(|(i, (title, body))| {
            let mut item = TaskFixture::new(&format!("D-{i}"), "t", Some(1), 0.5).item(&scope);
            item.normalised.record.title = title.clone();
            item.normalised.record.body = body.clone();
            item
        })
        .collect();
    store
        .ingest_batch(&scope, "d.csv", &items, &[])
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT r.external_id, r.document::text, \
           (setweight(to_tsvector('simple', r.title), 'A') \
             || setweight(to_tsvector('simple', r.body), 'B'))::text \
         FROM core.records r ORDER BY r.external_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), cases.len());
    for (id, ours, servers) in rows {
        assert_eq!(ours, servers, "document of {id}");
    }
    conn.close().await.unwrap();
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_left_behind_by_hand_do_not_stop_a_new_record() {
    let Some((databases, url, store)) = fresh("left_behind").await else {
        return;
    };
    let scope = Scope::org("acme");
    let item = TaskFixture::new("L-1", "left behind", Some(2), 0.5).item(&scope);
    let id = item.normalised.record.id.raw();
    // A raw payload and a task without their record: the batch's fast path (rows copied in, no
    // conflict checks) meets them, rolls back and writes again with conflict checks.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO raw.items (id, source_file, line, payload, received_at) \
         VALUES ($1, 'old.csv', 9, '{\"old\": true}', now())",
    )
    .bind(id)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO core.tasks (id, org, title, source_kind, status, source_status, open, \
           importance, importance_reason, updated_at) \
         VALUES ($1, 'acme', 'stale', 'tracker', 'todo', 'todo', true, 0, '', now())",
    )
    .bind(id)
    .execute(&mut conn)
    .await
    .unwrap();
    let outcome = store
        .ingest_batch(&scope, "new.csv", std::slice::from_ref(&item), &[])
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 1);
    let record_id = item.normalised.record.id;
    assert_eq!(
        store.raw_payload(&scope, record_id).await.unwrap(),
        item.normalised.raw_json
    );
    assert_eq!(
        store.task(&scope, record_id).await.unwrap().title,
        "left behind"
    );
    conn.close().await.unwrap();
    drop(store);
    databases.drop_all().await;
}

#[tokio::test]
async fn bad_urls_are_invalid_input_and_unreachable_servers_unavailable() {
    let err = PgStore::open("postgres://h:notaport/db").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = PgStore::open("postgres://u:pw@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_stored_apart_before_migration_0030_stay_searchable() {
    let Some(server) = support::server_url("documents_0030") else {
        return;
    };
    let databases = support::Databases::new(&server, "documents_0030");
    let url = databases.create().await;
    // The database as the versions before 0030 left it: documents in search.documents.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 30)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&mut conn).await.unwrap();
    for (id, title) in [(11_i64, "Globex renewal"), (12, "Initech audit")] {
        sqlx::query(
            "INSERT INTO core.records (id, org, source_kind, external_id, entity, title, body, \
               fields, updated_at, content_hash) \
             VALUES ($1, 'acme', 'crm', $1::text, 'task', $2, 'call them', '{}', now(), 1)",
        )
        .bind(id)
        .bind(title)
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO search.documents (id, document) \
             VALUES ($1, setweight(to_tsvector('simple', lower($2)), 'A') \
               || setweight(to_tsvector('simple', 'call them'), 'B'))",
        )
        .bind(id)
        .bind(title)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    let store = PgStore::open(&url).await.unwrap();
    let scope = Scope::org("acme");
    let hits = store.search(&scope, "globex", 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.id.raw()).collect::<Vec<_>>(), [11]);
    let hits = store.search(&scope, "call", 10).await.unwrap();
    assert_eq!(hits.len(), 2);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let gone: bool = sqlx::query_scalar("SELECT to_regclass('search.documents') IS NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(gone, "search.documents is dropped once its documents moved");
    conn.close().await.unwrap();
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_copied_in_read_back_as_the_conflict_checked_writes_store_them() {
    let Some((databases, _, copied)) = fresh("copy_path").await else {
        return;
    };
    let checked_url = databases.create().await;
    let checked = PgStore::open(&checked_url).await.unwrap();
    let scope = Scope::org("acme")
        .with_client("initech")
        .with_project("tps");
    let statuses = [
        TaskStatus::Todo,
        TaskStatus::Doing,
        TaskStatus::Done,
        TaskStatus::Dropped,
    ];
    let mut items: Vec<IngestItem> = (0..8)
        .map(|i| {
            let due = (i % 3 != 0).then_some(i as i64);
            let title = format!("Überprüfung {i}: renewal");
            let mut fx = TaskFixture::new(&format!("C-{i}"), &title, due, i as f64 / 10.0);
            fx.status = statuses[i % 4];
            let mut item = fx.item(&scope);
            let record = &mut item.normalised.record;
            record.created_at = Some(now() - Duration::days(30 + i as i64));
            if i % 2 == 0 {
                record.source.url = Some(format!("https://tracker.example.com/C-{i}"));
            }
            record
                .fields
                .insert("amount".into(), Value::Integer(1_000 * i as i64));
            item.normalised.fields_json = serde_json::to_string(&record.fields).unwrap();
            item
        })
        .collect();
    let mut note = TaskFixture::new("C-note", "meeting note", None, 0.0).item(&scope);
    note.normalised.task = None;
    note.normalised.record.entity = EntityKind::Note;
    items.push(note);
    // A raw payload left behind in the second store: its batch's copy fails there, and the batch
    // is written again with the conflict-checked statements.
    let mut conn = PgConnection::connect(&checked_url).await.unwrap();
    sqlx::query(
        "INSERT INTO raw.items (id, source_file, line, payload, received_at) \
         VALUES ($1, 'old.csv', 9, '{}', now())",
    )
    .bind(items[8].normalised.record.id.raw())
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    for store in [&copied, &checked] {
        let outcome = store
            .ingest_batch(&scope, "copy.csv", &items, &[])
            .await
            .unwrap();
        assert_eq!((outcome.inserted, outcome.updated), (9, 0));
    }
    for item in &items {
        let id = item.normalised.record.id;
        let record = copied.record(&scope, id).await.unwrap();
        assert_eq!(
            record, item.normalised.record,
            "the copied record reads back whole"
        );
        assert_eq!(record, checked.record(&scope, id).await.unwrap());
        for store in [&copied, &checked] {
            assert_eq!(
                store.raw_payload(&scope, id).await.unwrap(),
                item.normalised.raw_json
            );
        }
        match &item.normalised.task {
            Some(seed) => {
                let task = copied.task(&scope, id).await.unwrap();
                assert_eq!(task, checked.task(&scope, id).await.unwrap());
                assert_eq!(Some(task.status), seed.status);
                assert_eq!(task.due, seed.due);
                assert_eq!(
                    task.completed_at.is_some(),
                    task.status == TaskStatus::Done,
                    "{}",
                    record.title
                );
            }
            None => {
                let err = copied.task(&scope, id).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NotFound);
            }
        }
    }
    let hits = copied.search(&scope, "uberprufung", 20).await.unwrap();
    assert_eq!(hits.len(), 8, "the copied documents are searchable");
    drop((copied, checked));
    databases.drop_all().await;
}
