//! The SQLite vector index: the shared conformance suite (on both the exact and the graph path),
//! and what only an embedded index has to survive: a deleted, corrupt or stale graph file.
#![allow(clippy::unwrap_used)]

use opsweave_core::{ErrorKind, RecordId, Scope, VectorFilter, VectorHit, VectorIndex};
use opsweave_sqlite::{SqliteStore, VectorOptions, VectorPlan};
use opsweave_testkit::{model, random_vectors, run_vector_conformance, vector_item, VectorBackend};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

async fn open(path: &Path, options: VectorOptions) -> SqliteStore {
    SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
        .with_vector_options(options)
}

/// Runs the shared vector conformance suite on fresh stores opened with `options` in `dir`.
async fn conformance_with(dir: &Path, options: &VectorOptions) {
    let counter = AtomicUsize::new(0);
    run_vector_conformance(|| {
        let path = dir.join(format!("v-{}.db", counter.fetch_add(1, Ordering::SeqCst)));
        let options = options.clone();
        async move { Arc::new(open(&path, options).await) as Arc<dyn VectorBackend> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_vector_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance_with(dir.path(), &VectorOptions::default()).await;
}

/// With a low exact-scan limit every filtered check walks the graph, so the graph path must keep
/// the contract (k rows, recall) on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_vector_conformance_suite_on_the_graph_path() {
    let dir = tempfile::tempdir().unwrap();
    let options = VectorOptions {
        exact_scan_limit: 16,
        plan_by_cost: false,
        ..VectorOptions::default()
    };
    conformance_with(dir.path(), &options).await;

    // The planner really chose the graph for the 1 % org, and exact scans below the limit.
    let store = open(&dir.path().join("plan.db"), options).await;
    let scope = Scope::org("big");
    let items: Vec<_> = random_vectors(2_000, 8, 9)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let org = if i % 100 == 0 { "small" } else { "big" };
            vector_item(i as i64 + 1, &Scope::org(org), v)
        })
        .collect();
    store.upsert(&model("plan", 8), items).await.unwrap();
    let plan = |org: &str| VectorFilter {
        scope: Scope::org(org),
        ..VectorFilter::default()
    };
    assert_eq!(
        store.plan_knn("plan", &plan("small")).await.unwrap(),
        VectorPlan::FilteredGraph { matching: 20 }
    );
    assert_eq!(
        store.plan_knn("plan", &plan("nobody")).await.unwrap(),
        VectorPlan::Empty
    );
    let narrow = VectorFilter {
        scope: scope.clone(),
        source_kinds: vec!["nothing-like-this".into()],
        ..VectorFilter::default()
    };
    assert_eq!(
        store.plan_knn("plan", &narrow).await.unwrap(),
        VectorPlan::Empty
    );
    store.close().await;

    // Left to cost, a 1 % filter scans (the walk would expand most of the graph to find `ef`
    // allowed nodes), even above the exact-scan limit.
    let store = open(
        &dir.path().join("plan.db"),
        VectorOptions {
            exact_scan_limit: 16,
            ..VectorOptions::default()
        },
    )
    .await;
    assert_eq!(
        store.plan_knn("plan", &plan("small")).await.unwrap(),
        VectorPlan::Exact { matching: 20 }
    );
    store.close().await;
}

/// The graph path once more on usearch's own walk (no flat copy, `flat_walk` off): the copy is
/// retired by every insert, so this walk answers between an insert and the next save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_vector_conformance_suite_on_the_graphs_own_walk() {
    let dir = tempfile::tempdir().unwrap();
    let options = VectorOptions {
        exact_scan_limit: 16,
        plan_by_cost: false,
        flat_walk: false,
        ..VectorOptions::default()
    };
    conformance_with(dir.path(), &options).await;
}

/// The graph path again with the graph's vectors quantized to 8 bits: the contract (k rows,
/// recall, exact similarities) holds as it does on f32 graphs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_vector_conformance_suite_on_a_quantized_graph() {
    let dir = tempfile::tempdir().unwrap();
    let options = VectorOptions {
        exact_scan_limit: 16,
        plan_by_cost: false,
        quantize_graph: true,
        ..VectorOptions::default()
    };
    conformance_with(dir.path(), &options).await;
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A quantized graph walks 8-bit vectors (on 24 dimensions their dot products are off by up to
/// ~1e-2) but answers with the exact vectors: every similarity is the exact cosine, the order is
/// the exact order, and the exact copies come back when the saved graph is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quantized_graph_answers_with_the_exact_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("quantized.db");
    let scope = Scope::org("acme");
    let vectors = random_vectors(3_000, 24, 21);
    let items: Vec<_> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &scope, v.clone()))
        .collect();
    let queries = random_vectors(20, 24, 22);
    let quantized = VectorOptions {
        quantize_graph: true,
        // A graph this small would be scanned exactly: walk it.
        exact_scan_limit: 0,
        ..VectorOptions::default()
    };
    let check = |answers: &[Vec<VectorHit>], what: &str| {
        let mut found = 0;
        for (q, hits) in queries.iter().zip(answers) {
            assert_eq!(hits.len(), 10, "{what}");
            for hit in hits {
                let exact = cosine(q, &vectors[hit.id.raw() as usize - 1]);
                assert!(
                    (hit.similarity - exact).abs() < 1e-5,
                    "{what}: {} against {exact}",
                    hit.similarity
                );
            }
            assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
            let mut truth: Vec<(f32, usize)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (cosine(q, v), i + 1))
                .collect();
            truth.sort_by(|a, b| b.0.total_cmp(&a.0));
            found += hits
                .iter()
                .filter(|h| truth[..10].iter().any(|t| t.1 as i64 == h.id.raw()))
                .count();
        }
        assert!(found >= 190, "{what}: {found} of 200 true neighbours");
    };

    let store = open(&db, quantized.clone()).await;
    store.upsert(&model("files", 24), items).await.unwrap();
    assert_eq!(
        store
            .plan_knn(
                "files",
                &VectorFilter {
                    scope: scope.clone(),
                    ..VectorFilter::default()
                }
            )
            .await
            .unwrap(),
        VectorPlan::Graph { matching: 3_000 }
    );
    let before = answers(&store, &queries).await;
    check(&before, "built");
    store.close().await;
    let files = graph_files(&db);
    let graph = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "usearch"))
        .unwrap()
        .clone();
    let sidecar = graph.with_extension("json");
    let distance = || {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&sidecar).unwrap()).unwrap()
            ["distance"]
            .clone()
    };
    assert_eq!(distance(), "unit-dot-i8");

    // Loaded from the file (not written again), its exact vectors from the rows.
    let saved_at = std::fs::metadata(&graph).unwrap().modified().unwrap();
    let store = open(&db, quantized.clone()).await;
    let loaded = answers(&store, &queries).await;
    assert_eq!(loaded, before, "loaded from the file");
    assert_eq!(
        std::fs::metadata(&graph).unwrap().modified().unwrap(),
        saved_at,
        "loaded, not rebuilt"
    );
    // A delete leaves neither the graph node nor its exact copy behind.
    let top = loaded[0][0].id;
    store.delete(&scope, &[top]).await.unwrap();
    let after = store
        .knn(
            "files",
            &queries[0],
            10,
            &VectorFilter {
                scope: scope.clone(),
                ..VectorFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(after.iter().all(|h| h.id != top), "{after:?}");
    assert_eq!(after[..9], loaded[0][1..10], "the rest keep their order");
    store.close().await;

    // A handle that does not quantize rebuilds the graph in f32, and one that does, back again.
    let store = open(&db, VectorOptions::default()).await;
    assert_eq!(answers(&store, &queries).await.len(), queries.len());
    store.close().await;
    assert_eq!(distance(), "unit-dot");
    let store = open(&db, quantized).await;
    let rebuilt = answers(&store, &queries).await;
    assert!(rebuilt[0].iter().all(|h| h.id != top), "{rebuilt:?}");
    for (q, hits) in queries.iter().zip(&rebuilt) {
        for hit in hits {
            let exact = cosine(q, &vectors[hit.id.raw() as usize - 1]);
            assert!((hit.similarity - exact).abs() < 1e-5, "rebuilt");
        }
    }
    store.close().await;
    assert_eq!(distance(), "unit-dot-i8");
}

/// The graph file and its sidecar, as the store names them.
fn graph_files(db: &Path) -> Vec<PathBuf> {
    let dir = PathBuf::from(format!("{}.vectors", db.display()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The answers are those of a graph over the same rows: a rebuilt graph is another approximate
/// graph, so most (not necessarily all) hits agree.
fn assert_agree(got: &[Vec<VectorHit>], want: &[Vec<VectorHit>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let mut same = 0;
    let mut total = 0;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "{what}: k rows");
        same += g.iter().filter(|h| w.iter().any(|x| x.id == h.id)).count();
        total += w.len();
    }
    assert!(
        same as f64 >= 0.9 * total as f64,
        "{what}: {same} of {total} hits agree"
    );
}

async fn answers(store: &SqliteStore, queries: &[Vec<f32>]) -> Vec<Vec<VectorHit>> {
    let filter = VectorFilter {
        scope: Scope::org("acme"),
        ..VectorFilter::default()
    };
    let mut out = Vec::new();
    for q in queries {
        out.push(store.knn("files", q, 10, &filter).await.unwrap());
    }
    out
}

/// A new handle on `db` answers `queries` as `before` did (see [`assert_agree`]).
async fn assert_reopened_agrees(
    db: &Path,
    queries: &[Vec<f32>],
    before: &[Vec<VectorHit>],
    what: &str,
) {
    let store = open(db, VectorOptions::default()).await;
    assert_agree(&answers(&store, queries).await, before, what);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_corrupt_or_stale_graph_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("files.db");
    let scope = Scope::org("acme");
    let items: Vec<_> = random_vectors(3_000, 24, 11)
        .into_iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &scope, v))
        .collect();
    let queries = random_vectors(8, 24, 12);

    let store = open(&db, VectorOptions::default()).await;
    store
        .upsert(&model("files", 24), items[..2_000].to_vec())
        .await
        .unwrap();
    let before = answers(&store, &queries).await;
    store.close().await;
    let files = graph_files(&db);
    assert_eq!(files.len(), 2, "a graph file and its sidecar: {files:?}");
    let graph = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "usearch"))
        .unwrap()
        .clone();

    // Loaded from the file: same answers.
    let store = open(&db, VectorOptions::default()).await;
    assert_eq!(answers(&store, &queries).await, before, "loaded from file");
    store.close().await;

    // Saved by a version whose f32 graphs held the vectors as given under usearch's cosine (its
    // sidecar names no distance): not loaded, rebuilt, and saved with today's distance.
    let sidecar = graph.with_extension("json");
    let read_sidecar =
        || serde_json::from_slice::<serde_json::Value>(&std::fs::read(&sidecar).unwrap()).unwrap();
    let mut older = read_sidecar();
    assert_eq!(older["distance"], "unit-dot");
    older.as_object_mut().unwrap().remove("distance");
    std::fs::write(&sidecar, older.to_string()).unwrap();
    assert_reopened_agrees(&db, &queries, &before, "after an older graph format").await;
    assert_eq!(read_sidecar()["distance"], "unit-dot", "saved again");

    // Deleted: rebuilt from the rows, same answers, file written again.
    std::fs::remove_file(&graph).unwrap();
    let store = open(&db, VectorOptions::default()).await;
    assert_agree(&answers(&store, &queries).await, &before, "after deleting");
    assert!(graph.is_file(), "the rebuilt graph is saved");
    store.close().await;

    // Garbage of the same length, then a truncated file, then a garbage sidecar: rebuilt.
    let length = std::fs::metadata(&graph).unwrap().len() as usize;
    let garbage: Vec<u8> = (0..length).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&graph, &garbage).unwrap();
    assert_reopened_agrees(&db, &queries, &before, "after garbage").await;
    let bytes = std::fs::read(&graph).unwrap();
    std::fs::write(&graph, &bytes[..bytes.len() / 3]).unwrap();
    assert_reopened_agrees(&db, &queries, &before, "after truncation").await;
    std::fs::write(&sidecar, b"{not json").unwrap();
    assert_reopened_agrees(&db, &queries, &before, "after a bad sidecar").await;

    // Stale: another handle writes more vectors and never saves; the file's generation is old.
    let writer = open(&db, VectorOptions::default()).await;
    writer
        .upsert(&model("files", 24), items[2_000..].to_vec())
        .await
        .unwrap();
    let reader = open(&db, VectorOptions::default()).await;
    let after = answers(&reader, &queries).await;
    let filter = VectorFilter {
        scope: scope.clone(),
        ..VectorFilter::default()
    };
    let newest = reader
        .knn("files", &items[2_999].vector, 1, &filter)
        .await
        .unwrap();
    assert_eq!(
        newest[0].id,
        RecordId::from_raw(3_000),
        "rows written after the file was saved are found"
    );
    assert_eq!(after.len(), before.len());
    // The first handle sees its own and the other's later writes too (generation check).
    reader
        .delete(&scope, &[RecordId::from_raw(3_000)])
        .await
        .unwrap();
    let gone = writer
        .knn("files", &items[2_999].vector, 1, &filter)
        .await
        .unwrap();
    assert_ne!(
        gone[0].id,
        RecordId::from_raw(3_000),
        "a delete by another handle is seen"
    );
    writer.close().await;
    reader.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_models_store_half_precision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("half.db");
    let store = open(&db, VectorOptions::default()).await;
    let scope = Scope::org("acme");
    let items: Vec<_> = random_vectors(300, 1_024, 13)
        .into_iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &scope, v))
        .collect();
    store
        .upsert(&model("bge-m3", 1_024), items.clone())
        .await
        .unwrap();
    let filter = VectorFilter {
        scope: scope.clone(),
        ..VectorFilter::default()
    };
    let hits = store
        .knn("bge-m3", &items[17].vector, 3, &filter)
        .await
        .unwrap();
    assert_eq!(hits[0].id, items[17].id);
    assert!((hits[0].similarity - 1.0).abs() < 1e-3, "{hits:?}");
    let mut too_big = items[0].clone();
    too_big.vector[5] = 1.0e6;
    let err = store
        .upsert(&model("bge-m3", 1_024), vec![too_big])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (storage, bytes): (String, i64) = sqlx::query_as(
        "SELECT m.storage, length(v.vector) FROM vector_models m \
         JOIN vectors v ON v.model = m.name WHERE m.name = 'bge-m3' LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((storage.as_str(), bytes), ("f16", 2_048));
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_run_beside_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir.path().join("busy.db"), VectorOptions::default()).await);
    let scope = Scope::org("acme");
    let vectors = random_vectors(4_000, 16, 21);
    let items: Vec<_> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &scope, v.clone()))
        .collect();
    store
        .upsert(&model("busy", 16), items[..1_000].to_vec())
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        let items = items.clone();
        tokio::spawn(async move {
            for chunk in items[1_000..].chunks(250) {
                store.upsert(&model("busy", 16), chunk.to_vec()).await?;
            }
            Ok::<_, opsweave_core::Error>(())
        })
    };
    let readers: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            let query = vectors[i * 7].clone();
            tokio::spawn(async move {
                let filter = VectorFilter {
                    scope: Scope::org("acme"),
                    ..VectorFilter::default()
                };
                store.knn("busy", &query, 10, &filter).await
            })
        })
        .collect();
    writer.await.unwrap().unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap().len(), 10);
    }
    let filter = VectorFilter {
        scope,
        ..VectorFilter::default()
    };
    let all = store
        .knn("busy", &vectors[3_999], 10_000, &filter)
        .await
        .unwrap();
    assert_eq!(all.len(), 4_000, "every write reached the graph");
}

/// A model name emptied and given another dimension through one handle: another handle, which
/// searched the old graph, builds the new one from the rows instead of reusing the old one, and
/// a reopened store loads the new one (not the old graph file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resized_model_is_rebuilt_in_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("resize.db");
    let options = VectorOptions {
        exact_scan_limit: 16,
        plan_by_cost: false,
        ..VectorOptions::default()
    };
    let scope = Scope::org("acme");
    let items = |dim: usize, seed: u64| -> Vec<_> {
        random_vectors(300, dim, seed)
            .into_iter()
            .enumerate()
            .map(|(i, v)| vector_item(i as i64 + 1, &scope, v))
            .collect()
    };
    let filter = VectorFilter {
        scope: scope.clone(),
        ..VectorFilter::default()
    };
    let writer = open(&db, options.clone()).await;
    let reader = open(&db, options.clone()).await;
    let small = items(8, 1);
    writer
        .upsert(&model("resize", 8), small.clone())
        .await
        .unwrap();
    let hits = reader
        .knn("resize", &small[7].vector, 5, &filter)
        .await
        .unwrap();
    assert_eq!(
        hits[0].id, small[7].id,
        "the reader built the 8-dimension graph"
    );

    assert_eq!(writer.drop_model("resize").await.unwrap(), 300);
    let wide = items(24, 2);
    writer
        .upsert(&model("resize", 24), wide.clone())
        .await
        .unwrap();
    for (name, store) in [("writer", &writer), ("reader", &reader)] {
        let hits = store
            .knn("resize", &wide[42].vector, 5, &filter)
            .await
            .unwrap();
        assert_eq!(hits.len(), 5, "{name}");
        assert_eq!(hits[0].id, wide[42].id, "{name}: {hits:?}");
        let err = store
            .knn("resize", &small[7].vector, 5, &filter)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
    }
    writer.close().await;
    reader.close().await;
    let reopened = open(&db, options).await;
    let hits = reopened
        .knn("resize", &wide[42].vector, 5, &filter)
        .await
        .unwrap();
    assert_eq!(hits[0].id, wide[42].id, "reopened: {hits:?}");
}

/// Thousands of near-identical vectors beside a few distinct ones (a bulk import of look-alike
/// issues next to real work): a model this small is scanned exactly, so the distinct vector a
/// query matches is found first, wherever the graph linked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_model_is_scanned_exactly_even_without_a_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("dupes.db"), VectorOptions::default()).await;
    let scope = Scope::org("acme");
    let distinct = random_vectors(38, 24, 31);
    let base = &random_vectors(1, 24, 32)[0];
    let noise = random_vectors(4_000, 24, 33);
    let mut items: Vec<_> = noise
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let v: Vec<f32> = base.iter().zip(n).map(|(b, e)| b + 0.01 * e).collect();
            vector_item(i as i64 + 1_000, &scope, v)
        })
        .collect();
    items.extend(
        distinct
            .iter()
            .enumerate()
            .map(|(i, v)| vector_item(i as i64 + 1, &scope, v.clone())),
    );
    store.upsert(&model("files", 24), items).await.unwrap();
    let all = VectorFilter {
        scope: scope.clone(),
        ..VectorFilter::default()
    };
    assert_eq!(
        store.plan_knn("files", &all).await.unwrap(),
        VectorPlan::Exact { matching: 4_038 }
    );
    for (i, v) in distinct.iter().enumerate() {
        let hits = store.knn("files", v, 3, &all).await.unwrap();
        assert_eq!(hits[0].id.raw(), i as i64 + 1, "distinct vector {i}");
    }
    store.close().await;
}

/// A search that gives up while the graph is being rebuilt (an HTTP request past its timeout)
/// leaves the rebuild running: the graph is saved all the same, so the next search finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_outlives_the_search_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outlive.db");
    let scope = Scope::org("acme");
    let items: Vec<_> = random_vectors(3_000, 24, 41)
        .into_iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &scope, v))
        .collect();
    let store = open(&db, VectorOptions::default()).await;
    store.upsert(&model("files", 24), items).await.unwrap();
    store.close().await;
    for file in graph_files(&db) {
        std::fs::remove_file(file).unwrap();
    }
    let store = open(&db, VectorOptions::default()).await;
    let query = random_vectors(1, 24, 42).remove(0);
    let filter = VectorFilter {
        scope,
        ..VectorFilter::default()
    };
    // Dropped at its first wait: long before 3,000 vectors are read and linked.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_micros(1),
        store.knn("files", &query, 10, &filter),
    )
    .await;
    assert!(gave_up.is_err(), "the search was meant to be dropped");
    let mut waited = 0;
    while graph_files(&db).len() < 2 {
        waited += 1;
        assert!(
            waited < 600,
            "the dropped search's rebuild never saved the graph"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.knn("files", &query, 10, &filter).await.unwrap().len(),
        10
    );
    store.close().await;
}
