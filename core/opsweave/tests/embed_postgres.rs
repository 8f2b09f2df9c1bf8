//! A large first embedding on PostgreSQL loads its vectors in bulk: the model's HNSW index is
//! built once at the end (also when the run fails halfway), and k-NN finds every vector after.
//! Small runs insert into the index as before.
//!
//! The server comes from `OPSWEAVE_TEST_POSTGRES_URL` (scripts/test.sh starts one); the test
//! works in an org and under model names of its own, so it shares the database with other tests.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use async_trait::async_trait;
use opsweave::{
    Config, EmbedKind, Embedder, Embeddings, Mapping, ModelInfo, RecordId, Result, Scope,
    VectorFilter, Weave,
};
use opsweave_postgres::BULK_LOAD_FROM;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const MAPPING: &str = r#"
name = "bulk-notes"
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

/// Eight dimensions hashed from the text: the same text always gives the same vector, different
/// texts (almost always) different ones. It stands in for a model: the subject is the store.
/// Fails every call after `ok_calls`, like a model server going away mid-run.
struct Hashed {
    info: ModelInfo,
    ok_calls: usize,
    calls: AtomicUsize,
}

impl Hashed {
    fn new(model: &str, ok_calls: usize) -> Arc<Self> {
        Arc::new(Self {
            info: ModelInfo {
                name: model.to_string(),
                dim: 8,
                max_tokens: 512,
                fingerprint: None,
            },
            ok_calls,
            calls: AtomicUsize::new(0),
        })
    }
}

fn hashed(text: &str) -> Vec<f32> {
    let mut state = 0xcbf2_9ce4_8422_2325_u64;
    (0..8)
        .map(|i| {
            for b in text.bytes().chain([i as u8]) {
                state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

#[async_trait]
impl Embedder for Hashed {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, texts: &[String], _kind: EmbedKind) -> Result<Embeddings> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok_calls {
            return Err(opsweave::Error::unavailable("model server went away"));
        }
        Ok(Embeddings {
            vectors: texts.iter().map(|t| hashed(t)).collect(),
            tokens: texts.len() as u64,
            calls: Vec::new(),
        })
    }
}

/// Whether `model` has its HNSW index on the server now.
async fn has_index(url: &str, model: &str) -> bool {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let exists: bool = sqlx::query_scalar(
        "SELECT to_regclass('search.' || index_name) IS NOT NULL \
         FROM search.vector_indexes WHERE model = $1",
    )
    .bind(model)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    exists
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_first_embeddings_load_in_bulk_and_build_the_index_once() {
    let Some(db) = opsweave_testkit::server_url("OPSWEAVE_TEST_POSTGRES_URL", "embed_bulk") else {
        return;
    };
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let scope = Scope::org(format!("bulk-{tag}"));
    let mut config = Config {
        db: db.clone(),
        scope: scope.clone(),
        ..Config::default()
    };
    config.embed.batch_size = 1_000;
    let weave = Weave::open_with(config).await.unwrap();
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    let n = BULK_LOAD_FROM as usize;
    let rows: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({"id": format!("N-{i}"), "title": format!("note {i}"), "body": "text"}))
        .collect();
    weave
        .ingest_rows(rows, "notes.json", &mapping, &scope)
        .await
        .unwrap();

    // A run that fails halfway still leaves the index built over what it wrote.
    let failing_model = format!("hashed-failing-{tag}");
    let failing = Hashed::new(&failing_model, 4);
    let err = weave.embed(&scope, &*failing, None).await.unwrap_err();
    assert!(err.to_string().contains("went away"), "{err}");
    assert!(has_index(&db, &failing_model).await);

    let model = format!("hashed-{tag}");
    let embedder = Hashed::new(&model, usize::MAX);
    let report = weave.embed(&scope, &*embedder, None).await.unwrap();
    assert_eq!((report.stale, report.embedded), (n as u64, n as u64));
    assert!(report.bulk_load, "{n} vectors of a new model load in bulk");
    assert!(has_index(&db, &model).await, "the load builds the index");
    let vectors = weave.vectors().unwrap();
    for i in [0, 4_321, n - 1] {
        let record = weave
            .record(&scope, RecordId::derive(&scope, "notes", &format!("N-{i}")))
            .await
            .unwrap();
        let query = hashed(&opsweave::recall::embedding_text(&record));
        let filter = VectorFilter {
            scope: scope.clone(),
            ..VectorFilter::default()
        };
        let hits = vectors.knn(&model, &query, 3, &filter).await.unwrap();
        assert_eq!(hits[0].id, record.id, "record {i} finds its own vector");
    }

    // A few changed records afterwards go into the index one batch at a time.
    let changed: Vec<serde_json::Value> = (0..10)
        .map(
            |i| json!({"id": format!("N-{i}"), "title": format!("note {i} again"), "body": "text"}),
        )
        .collect();
    weave
        .ingest_rows(changed, "notes.json", &mapping, &scope)
        .await
        .unwrap();
    let report = weave.embed(&scope, &*embedder, None).await.unwrap();
    assert_eq!((report.stale, report.embedded), (10, 10));
    assert!(!report.bulk_load);
    assert!(has_index(&db, &model).await);
}
