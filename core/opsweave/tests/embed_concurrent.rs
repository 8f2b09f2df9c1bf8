//! Two embedding runs over the same stale records at once (two `embed` jobs on two workers, or a
//! CLI run beside a job) share the work instead of each embedding, and billing, every record.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

mod common;

use common::{Hashed, NOTES_MAPPING};
use opsweave::{Config, Mapping, Scope, VectorIndex, Weave};
use opsweave_sqlite::SqliteStore;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Records ingested; batches of ten make forty batches per run.
const RECORDS: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_embed_each_record_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap(),
    );
    let mut config = Config::default();
    config.embed.batch_size = 10;
    let weave = Weave::from_parts(store.clone(), store.clone(), config).with_vectors(store.clone());
    let scope = Scope::org("acme");
    let rows: Vec<serde_json::Value> = (0..RECORDS)
        .map(|i| json!({"id": i.to_string(), "title": format!("note {i}"), "body": format!("about thing {i}")}))
        .collect();
    weave
        .ingest_rows(
            rows,
            "notes",
            &Mapping::from_toml(NOTES_MAPPING).unwrap(),
            &scope,
        )
        .await
        .unwrap();
    // A few milliseconds per call, like a model server, so that the two runs interleave.
    let model = Hashed::slow("concurrent-test", Duration::from_millis(3));
    let (a, b) = tokio::join!(
        weave.embed(&scope, &*model, None),
        weave.embed(&scope, &*model, None)
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(
        (a.stale, b.stale),
        (RECORDS, RECORDS),
        "both planned every record"
    );
    // Two runs meet on a batch when one picks the batch the other is embedding: a few of the
    // forty batches (ln 40 ≈ 4 on average; 1 to 7 in eight runs), never the 800 texts of two
    // runs that each embed everything.
    let billed = model.texts.load(Ordering::SeqCst);
    assert_eq!(
        a.embedded + b.embedded,
        billed,
        "reports count what the model was sent"
    );
    assert!(
        (RECORDS..RECORDS * 3 / 2).contains(&billed),
        "each record embedded about once, not once per run: {billed} texts for {RECORDS} records \
         ({} + {}, skipped as done elsewhere {} + {})",
        a.embedded,
        b.embedded,
        a.embedded_elsewhere,
        b.embedded_elsewhere
    );
    assert_eq!(
        a.embedded + a.embedded_elsewhere,
        RECORDS,
        "every record of run a embedded by it or the other"
    );
    assert_eq!(b.embedded + b.embedded_elsewhere, RECORDS);
    assert!(
        store
            .stale("concurrent-test", &scope, None, 1_000)
            .await
            .unwrap()
            .is_empty(),
        "every record has its vector"
    );
}
