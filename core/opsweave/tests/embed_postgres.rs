//! A large first embedding on PostgreSQL loads its vectors in bulk: the model's HNSW index is
//! built once at the end (also when the run fails halfway), and k-NN finds every vector after.
//! Small runs insert into the index as before.
//!
//! The server comes from `OPSWEAVE_TEST_POSTGRES_URL` (scripts/test.sh starts one); the test
//! works in an org and under model names of its own, so it shares the database with other tests.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

mod common;

use common::{hashed, Hashed, NOTES_MAPPING};
use opsweave::{Config, Mapping, RecordId, Scope, VectorFilter, Weave};
use opsweave_postgres::BULK_LOAD_FROM;
use serde_json::json;
use sqlx::{Connection, PgConnection};

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
    let mapping = Mapping::from_toml(NOTES_MAPPING).unwrap();
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
