//! Two embedding runs over the same stale records at once (two `embed` jobs on two workers, or a
//! CLI run beside a job) share the work instead of each embedding, and billing, every record.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use async_trait::async_trait;
use opsweave::{
    Config, EmbedKind, Embedder, Embeddings, Mapping, ModelInfo, Result, Scope, VectorIndex, Weave,
};
use opsweave_sqlite::SqliteStore;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAPPING: &str = r#"
name = "concurrent-notes"
source = "notes"
entity = "note"
id = "id"
title = "{title}"
body = "{body}"
[fields.title]
from = "title"
required = true
[fields.body]
from = "body"
"#;

/// Records ingested; batches of ten make forty batches per run.
const RECORDS: u64 = 400;

/// Eight dimensions hashed from the text, each call taking a few milliseconds like a model
/// server, and every text it was given counted (what a paid service bills). It stands in for a
/// model: the subject is how runs share the records.
struct Counting {
    info: ModelInfo,
    texts: AtomicU64,
}

#[async_trait]
impl Embedder for Counting {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, texts: &[String], _kind: EmbedKind) -> Result<Embeddings> {
        self.texts.fetch_add(texts.len() as u64, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(3)).await;
        let vectors = texts
            .iter()
            .map(|t| {
                let mut state = 0xcbf2_9ce4_8422_2325_u64;
                (0..8u8)
                    .map(|i| {
                        for b in t.bytes().chain([i]) {
                            state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                        }
                        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect()
            })
            .collect();
        Ok(Embeddings {
            vectors,
            tokens: texts.len() as u64,
            calls: Vec::new(),
        })
    }
}

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
        .ingest_rows(rows, "notes", &Mapping::from_toml(MAPPING).unwrap(), &scope)
        .await
        .unwrap();
    let model = Counting {
        info: ModelInfo {
            name: "concurrent-test".into(),
            dim: 8,
            max_tokens: 512,
            fingerprint: None,
        },
        texts: AtomicU64::new(0),
    };

    let (a, b) = tokio::join!(
        weave.embed(&scope, &model, None),
        weave.embed(&scope, &model, None)
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
