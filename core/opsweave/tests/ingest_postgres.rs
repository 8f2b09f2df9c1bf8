//! Ingest into PostgreSQL with several batches in flight: the same record in several batches
//! still ends as its last row says, the counts add up, and a second ingest changes nothing.
//!
//! The server comes from `OPSWEAVE_TEST_POSTGRES_URL` (scripts/test.sh starts one); the test
//! works in an org of its own, so it shares the database with other tests.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave::{Config, Mapping, RecordId, Scope, Weave};
use serde_json::json;

const MAPPING: &str = r#"
name = "concurrent-tasks"
source = "tracker"
entity = "task"
id = "id"
title = "{title}"
body = "{body}"
updated_at = "updated"
[fields.title]
from = "title"
required = true
[fields.body]
from = "body"
[fields.updated]
from = "updated"
type = "datetime"
[task]
[task.status]
from = "status"
map = { "open" = "todo", "closed" = "done" }
"#;

fn server_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_POSTGRES_URL", test)
}

fn row(id: usize, title: &str) -> serde_json::Value {
    json!({
        "id": format!("T-{id}"),
        "title": title,
        "body": format!("body of {id}"),
        "updated": "2026-11-20T09:00:00Z",
        "status": "open",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_keep_the_last_row_of_each_record() {
    let Some(db) = server_url("concurrent_batches_keep_the_last_row_of_each_record") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let scope = Scope::org(format!("concurrent-{}-{nanos}", std::process::id()));
    let mut config = Config {
        db,
        scope: scope.clone(),
        ..Config::default()
    };
    config.ingest.batch_size = 7;
    config.ingest.concurrency = 4;
    let weave = Weave::open_with(config).await.unwrap();
    let mapping = Mapping::from_toml(MAPPING).unwrap();

    // 300 records; record 3 comes back in later batches with new titles, and record 10 twice
    // in one batch. One row lacks its required title: a rejection, reported and kept.
    let mut rows: Vec<serde_json::Value> = (0..300).map(|i| row(i, &format!("task {i}"))).collect();
    for (at, title) in [
        (40, "second"),
        (41, "third"),
        (150, "fourth"),
        (299, "last"),
    ] {
        rows.insert(at, row(3, title));
    }
    rows.insert(60, row(10, "ten again"));
    rows.insert(61, row(10, "ten at last"));
    rows.insert(
        100,
        json!({"id": "T-bad", "body": "no title", "updated": "2026-11-20T09:00:00Z"}),
    );
    let total = rows.len();
    let report = weave
        .ingest_rows(rows.clone(), "rows.json", &mapping, &scope)
        .await
        .unwrap();
    assert_eq!(report.inserted, 300);
    assert_eq!(report.updated, 6, "each repeat of a record is an update");
    assert_eq!(report.rejected_total, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        report.inserted + report.updated + report.unchanged + report.rejected_total,
        total as u64
    );

    let title = |n: usize| {
        let weave = weave.clone();
        let scope = scope.clone();
        async move {
            let id = RecordId::derive(&scope, "tracker", &format!("T-{n}"));
            weave.record(&scope, id).await.unwrap().title
        }
    };
    assert_eq!(title(3).await, "last", "the last row of record 3 wins");
    assert_eq!(title(10).await, "ten at last");
    assert_eq!(title(299).await, "task 299");
    let task = weave
        .store()
        .task(&scope, RecordId::derive(&scope, "tracker", "T-3"))
        .await
        .unwrap();
    assert_eq!(task.title, "last", "the task follows its record");

    let again = weave
        .ingest_rows(rows, "rows.json", &mapping, &scope)
        .await
        .unwrap();
    assert_eq!((again.inserted, again.rejected_total), (0, 1));
    // The repeats differ from the stored (last) version, so they count as updates once more;
    // every other record is unchanged.
    assert_eq!(again.updated + again.unchanged, 306);
    assert_eq!(title(3).await, "last");
}
