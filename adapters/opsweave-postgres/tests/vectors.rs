//! The pgvector side of the search schema: one HNSW index per model, and filtered k-NN that keeps
//! its recall with pgvector 0.8's iterative index scans.
#![allow(clippy::unwrap_used)]

mod support;

use opsweave_core::ErrorKind;
use opsweave_postgres::PgStore;
use sqlx::Row;

const DIM: usize = 16;

/// Deterministic pseudo-random vectors, so a failure reproduces.
fn vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            (0..DIM)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_knn_uses_the_model_index_and_keeps_recall() {
    let Some(server) = support::server_url("filtered_knn_uses_the_model_index_and_keeps_recall")
    else {
        return;
    };
    let databases = support::Databases::new(&server, "vectors");
    let store = PgStore::open(&databases.create().await).await.unwrap();
    let name = store.ensure_vector_index("test-model", DIM).await.unwrap();
    assert_eq!(
        store.ensure_vector_index("test-model", DIM).await.unwrap(),
        name
    );
    // No vector stored yet: the name may still take another dimension (and back); the index
    // is built again, under a name of its size.
    let wider = store
        .ensure_vector_index("test-model", DIM + 1)
        .await
        .unwrap();
    assert_ne!(wider, name);
    let name = store.ensure_vector_index("test-model", DIM).await.unwrap();
    assert_ne!(name, wider);
    assert_eq!(
        store
            .ensure_vector_index("m", 5_000)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );

    // 4,000 vectors; org `small` owns only one in twenty, the case where a filter after a plain
    // HNSW scan (ef_search 40) returns too few rows.
    let all = vectors(4_000, 7);
    let ids: Vec<i64> = (0..all.len() as i64).collect();
    let orgs: Vec<&str> = (0..all.len())
        .map(|i| if i % 20 == 0 { "small" } else { "big" })
        .collect();
    let texts: Vec<String> = all
        .iter()
        .map(|v| {
            format!(
                "[{}]",
                v.iter().map(f32::to_string).collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    sqlx::query(
        "INSERT INTO search.embeddings (model, id, org, entity, source_kind, content_hash, \
           embedding, embedded_at) \
         SELECT 'test-model', id, org, 'task', 'fixture', 0, v::halfvec, now() \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS n(id, org, v)",
    )
    .bind(&ids)
    .bind(&orgs)
    .bind(&texts)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE search.embeddings")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store
        .ensure_vector_index("test-model", DIM + 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "vectors are stored: {err}");

    let knn = format!(
        "SELECT id FROM search.embeddings WHERE model = 'test-model' AND org = 'small' \
         AND vector_dims(embedding) = {DIM} \
         ORDER BY embedding::halfvec({DIM}) <=> $1::halfvec({DIM}) LIMIT 10"
    );
    let queries = vectors(20, 99);
    let mut found = 0;
    for q in &queries {
        let q = format!(
            "[{}]",
            q.iter().map(f32::to_string).collect::<Vec<_>>().join(",")
        );
        let mut tx = store.pool().begin().await.unwrap();
        // At this size the planner would rightly sort the 200 rows of `small`; forbidding the
        // sort stands in for a table large enough that walking the HNSW graph is cheaper.
        sqlx::query("SET LOCAL enable_sort = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        // Without iterative scans, HNSW hands back ef_search (40) candidates and the filter keeps
        // about one in twenty of them; with them, the scan goes on until ten rows pass.
        sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order")
            .execute(&mut *tx)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN {knn}"))
            .bind(&q)
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        assert!(
            plan.iter().any(|line| line.contains(&name)),
            "the k-NN query must use {name}: {plan:#?}"
        );
        let approx: Vec<i64> = sqlx::query_scalar(&knn)
            .bind(&q)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(approx.len(), 10, "the filter must not starve the result");
        assert!(approx.iter().all(|id| id % 20 == 0), "only org `small`");
        sqlx::raw_sql("SET LOCAL enable_indexscan = off; SET LOCAL enable_sort = on")
            .execute(&mut *tx)
            .await
            .unwrap();
        let exact: Vec<i64> = sqlx::query_scalar(&knn)
            .bind(&q)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        found += approx.iter().filter(|id| exact.contains(id)).count();
        tx.rollback().await.unwrap();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    assert!(recall >= 0.9, "recall@10 {recall}");
    drop(store);
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_vector_conformance_suite() {
    let Some(server) = support::server_url("postgres_passes_the_vector_conformance_suite") else {
        return;
    };
    let databases = support::Databases::new(&server, "vector_conformance");
    opsweave_testkit::run_vector_conformance(|| async {
        let url = databases.create().await;
        let store = PgStore::open(&url).await.unwrap();
        std::sync::Arc::new(store) as std::sync::Arc<dyn opsweave_testkit::VectorBackend>
    })
    .await;
    databases.drop_all().await;
}

/// A filter so sparse that the graph walk stops (max_scan_tuples) before k rows pass: the exact
/// fallback still returns k.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starved_graph_walk_falls_back_to_exact() {
    use opsweave_core::{Scope, VectorFilter, VectorIndex};
    let Some(server) = support::server_url("a_starved_graph_walk_falls_back_to_exact") else {
        return;
    };
    let databases = support::Databases::new(&server, "vector_starved");
    let url = databases.create().await;
    // Every connection of the store's pool walks the graph (sorting is what a small table would
    // rather do) and gives up after 50 tuples: 6 rare rows in 3,000 are unlikely to be met.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "DO $$ BEGIN \
         EXECUTE format('ALTER DATABASE %I SET hnsw.max_scan_tuples = 50', current_database()); \
         EXECUTE format('ALTER DATABASE %I SET enable_sort = off', current_database()); END $$",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    drop(admin);
    let store = PgStore::open(&url).await.unwrap();
    let items: Vec<_> = opsweave_testkit::random_vectors(3_000, DIM, 31)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let org = if i % 500 == 0 { "rare" } else { "common" };
            opsweave_testkit::vector_item(i as i64 + 1, &Scope::org(org), v)
        })
        .collect();
    store
        .upsert(&opsweave_testkit::model("starved", DIM), items.clone())
        .await
        .unwrap();
    sqlx::query("ANALYZE search.embeddings")
        .execute(store.pool())
        .await
        .unwrap();
    let filter = VectorFilter {
        scope: Scope::org("rare"),
        ..VectorFilter::default()
    };
    for query in opsweave_testkit::random_vectors(5, DIM, 32) {
        let hits = store.knn("starved", &query, 10, &filter).await.unwrap();
        assert_eq!(hits.len(), 6, "all six rare rows, whatever the walk found");
    }
    drop(store);
    databases.drop_all().await;
}

/// recall@10 of model `bulk`'s k-NN in org `acme` against the exact top 10 by cosine similarity
/// over `all` (stored as ids 1..), on 20 queries.
async fn recall_at_10(store: &PgStore, all: &[Vec<f32>]) -> f64 {
    use opsweave_core::{Scope, VectorFilter, VectorIndex};
    let filter = VectorFilter {
        scope: Scope::org("acme"),
        ..VectorFilter::default()
    };
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut found = 0;
    for q in &opsweave_testkit::random_vectors(20, DIM, 77) {
        let mut scored: Vec<(f32, i64)> = all
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let dot: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                (dot / (norm(v) * norm(q)), i as i64 + 1)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: Vec<i64> = scored.iter().take(10).map(|s| s.1).collect();
        let hits = store.knn("bulk", q, 10, &filter).await.unwrap();
        assert_eq!(hits.len(), 10);
        found += hits.iter().filter(|h| truth.contains(&h.id.raw())).count();
    }
    found as f64 / 200.0
}

/// A bulk load drops the model's index, writes the rows, and builds the index once at the end;
/// queries stay right meanwhile (exact scans), and a load that never finished is repaired by the
/// model's next upsert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_load_builds_the_index_at_the_end_and_an_unfinished_one_is_repaired() {
    use opsweave_core::{Scope, VectorIndex};
    let Some(server) = support::server_url("a_bulk_load_builds_the_index_at_the_end") else {
        return;
    };
    let databases = support::Databases::new(&server, "vector_bulk");
    let store = PgStore::open(&databases.create().await).await.unwrap();
    let model = opsweave_testkit::model("bulk", DIM);
    let all = opsweave_testkit::random_vectors(3_000, DIM, 5);
    let items: Vec<_> = all
        .iter()
        .enumerate()
        .map(|(i, v)| opsweave_testkit::vector_item(i as i64 + 1, &Scope::org("acme"), v.clone()))
        .collect();
    let index_count = |store: &PgStore| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = 'search' \
                 AND indexname LIKE 'embeddings_hnsw_%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let load = store.begin_vector_load(&model).await.unwrap();
    assert_eq!(
        index_count(&store).await,
        0,
        "the index is dropped for the load"
    );
    for chunk in items.chunks(1_000) {
        load.write(chunk.to_vec()).await.unwrap();
    }
    assert_eq!(index_count(&store).await, 0, "rows go in without an index");
    // Exact scans meanwhile (half precision may swap a near tie).
    let before = recall_at_10(&store, &all).await;
    assert!(before >= 0.97, "recall@10 during the load {before}");
    load.finish(64).await.unwrap();
    assert_eq!(
        index_count(&store).await,
        1,
        "the index is built at the end"
    );
    let after = recall_at_10(&store, &all).await;
    assert!(after >= 0.9, "recall@10 through the index {after}");
    // A bad vector is refused by the load as by upsert.
    let load = store.begin_vector_load(&model).await.unwrap();
    let mut bad = items[0].clone();
    bad.vector.pop();
    assert!(load.write(vec![bad]).await.is_err());
    // Never finished: the next upsert of the model builds the missing index.
    drop(load);
    assert_eq!(index_count(&store).await, 0);
    store.upsert(&model, items[..1].to_vec()).await.unwrap();
    assert_eq!(
        index_count(&store).await,
        1,
        "the next upsert repairs the index"
    );
    assert!(recall_at_10(&store, &all).await >= 0.9);
    drop(store);
    databases.drop_all().await;
}

/// A writer that read a model name's dimension before another writer gave the emptied name
/// another one is refused at its write instead of mixing two sizes under one name; the resize
/// leaves one index, of the new size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_between_check_and_write_refuses_the_old_size() {
    use opsweave_core::{Scope, VectorFilter, VectorIndex};
    let Some(server) = support::server_url("a_resize_between_check_and_write_refuses_the_old_size")
    else {
        return;
    };
    let databases = support::Databases::new(&server, "vector_resize");
    let url = databases.create().await;
    let first = PgStore::open(&url).await.unwrap();
    let second = PgStore::open(&url).await.unwrap();
    let items = |dim: usize| -> Vec<_> {
        opsweave_testkit::random_vectors(20, dim, dim as u64)
            .into_iter()
            .enumerate()
            .map(|(i, v)| opsweave_testkit::vector_item(i as i64 + 1, &Scope::org("acme"), v))
            .collect()
    };
    let four = opsweave_testkit::model("race", 4);
    first.upsert(&four, items(4)).await.unwrap();
    assert_eq!(first.drop_model("race").await.unwrap(), 20);
    // The name is empty and still recorded at 4 dimensions: this load checks 4 and goes on.
    let load = first.begin_vector_load(&four).await.unwrap();
    second
        .upsert(&opsweave_testkit::model("race", 6), items(6))
        .await
        .unwrap();
    let err = load.write(items(4)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = load.finish(64).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Conflict,
        "the load's index is not built: {err}"
    );

    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'search' \
         AND indexname LIKE 'embeddings_hnsw_%'",
    )
    .fetch_all(first.pool())
    .await
    .unwrap();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(indexes[0].contains("halfvec(6)"), "{indexes:?}");
    let six = items(6);
    let filter = VectorFilter {
        scope: Scope::org("acme"),
        ..VectorFilter::default()
    };
    let hits = first.knn("race", &six[3].vector, 3, &filter).await.unwrap();
    assert_eq!(hits[0].id, six[3].id, "{hits:?}");
    databases.drop_all().await;
}
