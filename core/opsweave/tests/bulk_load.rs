//! A first ingest into an empty SQLite store goes through the bulk load (one transaction, indexes
//! built at the end): it must store exactly what batch-by-batch ingest stores, and a load that
//! stops midway must leave the empty store, indexes and all.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use chrono::{TimeZone, Utc};
use opsweave::{Config, Format, Horizon, IngestConfig, IngestProgress, Mapping, Scope, Weave};
use rusqlite::Connection;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MAPPING: &str = r#"
name = "bulk-tasks"
source = "tracker"
entity = "task"
format = "csv"
id = "id"
title = "{title}"
body = "{body}"
updated_at = "updated"
[fields.title]
from = "title"
required = true
[fields.body]
from = "body"
[fields.due]
from = "due"
type = "date"
[fields.priority]
from = "priority"
[fields.updated]
from = "updated"
type = "datetime"
[task]
due = "due"
labels = ["priority"]
[task.status]
from = "status"
map = { "open" = "todo", "in progress" = "doing", "closed" = "done" }
[[links]]
kind = "parent_of"
from = "parent"
reverse = true
"#;

/// 3,000 rows over several batches of 500: bad dates and missing titles (rejections), parent
/// links, and ids that come again later in the file, in the same batch and in later ones,
/// changed (a new title, closed) or not.
fn rows() -> String {
    let mut csv = String::from("id,title,body,due,priority,updated,status,parent\n");
    let statuses = ["open", "in progress", "closed"];
    let priorities = ["P0", "P1", "P2", "low"];
    for i in 0..2_900 {
        let due = match i % 97 {
            0 => "2026-13-40".to_string(),
            _ => format!("2026-{:02}-{:02}", 11 + i % 2, 1 + i % 28),
        };
        let title = if i % 211 == 5 {
            String::new()
        } else {
            format!("task {i} security review of invoice {}", i % 13)
        };
        let parent = if i % 7 == 3 {
            format!("T-{}", i - 3)
        } else {
            String::new()
        };
        writeln!(
            csv,
            "T-{i},{title},body of {i} follow up with customer,{due},{},2026-11-{:02}T10:00:00Z,{},{parent}",
            priorities[i % 4],
            1 + i % 20,
            statuses[i % 3],
        )
        .unwrap();
    }
    for i in 0..100 {
        // Again: 0-49 changed (closed, new title), 50-99 as they were; 2,890-2,899 in the
        // last batch, where they first came.
        let j = if i < 90 { i * 10 } else { 2_800 + i };
        let (title, status) = if i < 50 {
            (format!("task {j} renamed"), "closed")
        } else {
            (
                format!("task {j} security review of invoice {}", j % 13),
                statuses[j % 3],
            )
        };
        let due = if j % 97 == 0 {
            "2026-13-40".to_string()
        } else {
            format!("2026-{:02}-{:02}", 11 + j % 2, 1 + j % 28)
        };
        let parent = if j % 7 == 3 {
            format!("T-{}", j - 3)
        } else {
            String::new()
        };
        writeln!(
            csv,
            "T-{j},{title},body of {j} follow up with customer,{due},{},2026-11-{:02}T10:00:00Z,{status},{parent}",
            priorities[j % 4],
            1 + j % 20,
        )
        .unwrap();
    }
    csv
}

async fn weave(path: &Path, bulk_load: bool) -> Weave {
    Weave::open_with(Config {
        db: format!("sqlite://{}", path.display()),
        ingest: IngestConfig {
            batch_size: 500,
            bulk_load,
            ..IngestConfig::default()
        },
        ..Config::default()
    })
    .await
    .unwrap()
}

/// Every stored row, minus the times of storing, as text, table by table.
fn contents(path: &Path) -> Vec<(String, Vec<String>)> {
    let conn = Connection::open(path).unwrap();
    let queries = [
        ("records", "SELECT * FROM records ORDER BY seq"),
        (
            "raw_items",
            "SELECT seq, source_file, line, payload FROM raw_items ORDER BY seq",
        ),
        ("tasks", "SELECT * FROM tasks ORDER BY seq"),
        ("links", "SELECT * FROM links ORDER BY kind, from_id, to_id"),
        (
            "rejections",
            "SELECT org, client, project, source_file, line, field, reason, raw \
             FROM rejections ORDER BY line, field",
        ),
        (
            "schema",
            "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name",
        ),
        (
            "full text",
            "SELECT rowid FROM records_fts WHERE records_fts MATCH 'security OR renamed' \
             ORDER BY rowid",
        ),
    ];
    queries
        .iter()
        .map(|(table, sql)| {
            let mut statement = conn.prepare(sql).unwrap();
            let width = statement.column_count();
            let rows = statement
                .query_map([], |row| {
                    let mut line = String::new();
                    for c in 0..width {
                        let value: rusqlite::types::Value = row.get(c)?;
                        write!(line, "{value:?}|").unwrap();
                    }
                    Ok(line)
                })
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            (table.to_string(), rows)
        })
        .collect()
}

/// Ingests `csv` as the file `tasks.csv`, without a progress report.
async fn ingest_csv(
    weave: &Weave,
    csv: &str,
    mapping: &Mapping,
    scope: &Scope,
) -> opsweave::Result<opsweave::IngestReport> {
    let reader = std::io::Cursor::new(csv.as_bytes().to_vec());
    weave
        .ingest_reader(reader, "tasks.csv", Format::Csv, mapping, scope, None)
        .await
}

/// SQLite's own checks of the file and of the full-text index against the records.
fn assert_intact(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    conn.execute(
        "INSERT INTO records_fts (records_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_stores_what_batches_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tasks.csv");
    std::fs::write(&file, rows()).unwrap();
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    let scope = Scope::org("acme");
    let (bulk_db, batch_db) = (dir.path().join("bulk.db"), dir.path().join("batch.db"));
    let (bulk, batch) = (weave(&bulk_db, true).await, weave(&batch_db, false).await);

    let (bulk_progress, batch_progress) = (Arc::default(), Arc::default());
    let by_bulk = bulk
        .ingest_path(&file, &mapping, &scope, Some(Arc::clone(&bulk_progress)))
        .await
        .unwrap();
    let by_batch = batch
        .ingest_path(&file, &mapping, &scope, Some(Arc::clone(&batch_progress)))
        .await
        .unwrap();
    // Only the bulk load has a finishing step to show.
    let finishing = |p: &Arc<IngestProgress>| p.finishing.load(Ordering::Relaxed);
    assert!(finishing(&bulk_progress) && !finishing(&batch_progress));
    assert_eq!(bulk_progress.items.load(Ordering::Relaxed), 3_000);
    // The load is in the database file, and its WAL is not left behind at the load's size.
    let wal = |db: &Path| std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    // (~3 MB before the fix; what the ingest writes after the load's commit takes a few pages.)
    assert!(wal(&bulk_db) < 64 * 1024, "WAL of {} bytes", wal(&bulk_db));
    let counts =
        |r: &opsweave::IngestReport| (r.inserted, r.updated, r.unchanged, r.rejected_total);
    assert_eq!(counts(&by_bulk), counts(&by_batch));
    assert_eq!(by_bulk.rejected, by_batch.rejected);
    // 2,900 ids, 100 of them again (50 changed); 30 bad dates and 14 empty titles rejected.
    assert_eq!(
        by_bulk.inserted + by_bulk.updated + by_bulk.unchanged,
        3_000 - by_bulk.rejected_total
    );
    assert!(by_bulk.updated >= 40 && by_bulk.unchanged >= 40);
    assert!(by_bulk.rejected_total >= 40);

    let (left, right) = (contents(&bulk_db), contents(&batch_db));
    for ((table, l), (_, r)) in left.iter().zip(&right) {
        assert!(!l.is_empty(), "{table}: nothing stored");
        assert_eq!(l, r, "{table} differs between the bulk and the batch load");
    }
    let schema = &left.iter().find(|(t, _)| t == "schema").unwrap().1;
    for object in [
        "records_id",
        "tasks_focus",
        "tasks_done",
        "records_fts_update",
    ] {
        assert!(
            schema
                .iter()
                .any(|row| row.contains(&format!("\"{object}\""))),
            "{object} is missing after the bulk load"
        );
    }
    assert_intact(&bulk_db);

    let now = Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0).unwrap();
    let horizons = [Horizon::Today, Horizon::Week, Horizon::Month];
    assert_eq!(
        bulk.focus(&scope, &horizons, 3, Some(now)).await.unwrap(),
        batch.focus(&scope, &horizons, 3, Some(now)).await.unwrap()
    );
    // 50 renamed rows, one of them (T-0) with a bad date.
    let found = bulk.search(&scope, "renamed", 100).await.unwrap();
    assert_eq!(found.len(), 49);
    assert_eq!(found, batch.search(&scope, "renamed", 100).await.unwrap());

    // The store holds records now: no bulk load (and no write lock left behind, or the ingest
    // below would wait for it).
    assert!(bulk
        .store()
        .begin_bulk_load(&scope)
        .await
        .unwrap()
        .is_none());
    // The store is no longer empty: the same file again goes batch by batch, in both stores
    // alike (ids that come twice in the file flip back and forth, so some count as updated).
    let again = bulk
        .ingest_path(&file, &mapping, &scope, None)
        .await
        .unwrap();
    let again_batch = batch
        .ingest_path(&file, &mapping, &scope, None)
        .await
        .unwrap();
    assert_eq!(again.inserted, 0);
    assert_eq!(counts(&again), counts(&again_batch));
    let (left, right) = (contents(&bulk_db), contents(&batch_db));
    for ((table, l), (_, r)) in left.iter().zip(&right) {
        assert_eq!(l, r, "{table} differs after ingesting the file again");
    }
    assert_intact(&bulk_db);
}

/// Reads the first `limit` bytes of `csv`, then fails as a broken disk or connection would, or
/// (`panics`) as a reader with a bug would.
struct Cut {
    inner: std::io::Cursor<Vec<u8>>,
    limit: usize,
    panics: bool,
}

impl Cut {
    /// Two thirds of `csv`, then the failure.
    fn two_thirds(csv: &str, panics: bool) -> Self {
        Self {
            inner: std::io::Cursor::new(csv.as_bytes().to_vec()),
            limit: csv.len() * 2 / 3,
            panics,
        }
    }
}

impl Read for Cut {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.limit == 0 {
            assert!(!self.panics, "a reader bug, on purpose");
            return Err(std::io::Error::other("the source went away"));
        }
        let n = buf.len().min(self.limit);
        let n = self.inner.read(&mut buf[..n])?;
        self.limit -= n;
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_that_fails_midway_stores_nothing_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = rows();
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    let scope = Scope::org("acme");
    let db = dir.path().join("bulk.db");
    let weave = weave(&db, true).await;
    let before = contents(&db);

    let broken = Cut::two_thirds(&csv, false);
    let failed = weave
        .ingest_reader(broken, "tasks.csv", Format::Csv, &mapping, &scope, None)
        .await;
    assert!(failed.is_err(), "{failed:?}");
    // Over 1,500 rows (three batches) were written before the failure; none stayed, and every
    // index and trigger is back.
    assert_eq!(contents(&db), before);
    assert_intact(&db);

    let report = ingest_csv(&weave, &csv, &mapping, &scope).await.unwrap();
    assert!(report.inserted > 2_800, "{report:?}");
    assert_eq!(
        weave.search(&scope, "renamed", 100).await.unwrap().len(),
        49
    );
    assert_intact(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_whose_reader_panics_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = rows();
    let db = dir.path().join("bulk.db");
    let weave = weave(&db, true).await;
    let before = contents(&db);
    let panics = Cut::two_thirds(&csv, true);
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    let failed = weave
        .ingest_reader(
            panics,
            "tasks.csv",
            Format::Csv,
            &mapping,
            &Scope::org("acme"),
            None,
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(
        contents(&db),
        before,
        "the batches before the panic were committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_jobs_go_batch_by_batch_even_into_an_empty_store() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let weave = weave(&db, true).await;
    let payload = opsweave::worker::InlineIngest {
        mapping: Mapping::from_toml(MAPPING).unwrap(),
        name: "tasks.csv".into(),
        rows: None,
        content_b64: Some(base64::engine::general_purpose::STANDARD.encode(rows())),
        format: Some(Format::Csv),
    };
    let progress = Arc::new(IngestProgress::default());
    let report = weave
        .run_inline_ingest(payload, &Scope::org("acme"), Some(Arc::clone(&progress)))
        .await
        .unwrap();
    assert!(report.inserted > 2_800);
    // A job's lease and progress go through the same single writer: no bulk load holds it.
    assert!(!progress.finishing.load(Ordering::Relaxed));
    assert_intact(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_cancelled_at_any_point_leaves_the_store_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    let scope = Scope::org("acme");
    let csv = rows();
    for round in 0..40u64 {
        // A fresh store each round, so every ingest starts with the bulk load's begin.
        let db = dir.path().join(format!("cancel-{round}.db"));
        let weave = weave(&db, true).await;
        let cut = Duration::from_micros(round * 25);
        let _ = tokio::time::timeout(cut, ingest_csv(&weave, &csv, &mapping, &scope)).await;
        let report = ingest_csv(&weave, &csv, &mapping, &scope)
            .await
            .unwrap_or_else(|e| panic!("round {round} (cancelled after {cut:?}): {e}"));
        assert_eq!(
            report.inserted + report.updated + report.unchanged,
            3_000 - report.rejected_total
        );
    }
}
