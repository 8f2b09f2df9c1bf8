//! The conformance suite every [`VectorIndex`] must pass.
//!
//! Vectors are pseudo-random from a fixed seed, so a failure reproduces; expected answers are
//! computed here by brute force. Similarities are compared loosely (1e-2): PostgreSQL stores
//! half precision.

use crate::{id_of, Backend, TaskFixture};
use opsweave_core::{
    EntityKind, ErrorKind, ModelInfo, RecordId, Scope, VectorFilter, VectorIndex, VectorItem,
};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

/// A store under test for vectors: `stale` reads the store's records, so both seams.
pub trait VectorBackend: VectorIndex + Backend {}
impl<T: VectorIndex + Backend> VectorBackend for T {}

/// Rows in the filtered check; its small org holds 1 % of them.
pub const FILTERED_ROWS: usize = 6_000;

/// Runs every vector check, each on a fresh store from `open`.
pub async fn run_vector_conformance<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn VectorBackend>>,
{
    bad_vectors_write_nothing(open().await).await;
    a_model_keeps_its_dimension(open().await).await;
    a_model_keeps_its_fingerprint(open().await).await;
    an_emptied_model_name_takes_another_dimension(open().await).await;
    knn_is_exact_on_a_small_set(open().await).await;
    filtered_queries_return_k_rows(open().await).await;
    delete_removes_vectors_in_scope(open().await).await;
    stale_lists_missing_and_changed_records(open().await).await;
}

/// A model of `dim` dimensions.
pub fn model(name: &str, dim: usize) -> ModelInfo {
    ModelInfo {
        name: name.into(),
        dim,
        max_tokens: 512,
        fingerprint: None,
    }
}

/// `n` deterministic pseudo-random vectors of `dim` values in [-0.5, 0.5).
pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                })
                .collect()
        })
        .collect()
}

/// A vector item for record `id` in `scope`.
pub fn vector_item(id: i64, scope: &Scope, vector: Vec<f32>) -> VectorItem {
    VectorItem {
        id: RecordId::from_raw(id),
        scope: scope.clone(),
        entity: EntityKind::Note,
        source_kind: "fixture".into(),
        content_hash: id as u64,
        vector,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The ids of the `k` items most similar to `query`, best first, by brute force.
pub fn exact_knn(items: &[VectorItem], query: &[f32], k: usize) -> Vec<(RecordId, f32)> {
    let mut scored: Vec<(RecordId, f32)> = items
        .iter()
        .map(|i| (i.id, cosine(&i.vector, query)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.raw().cmp(&b.0.raw())));
    scored.truncate(k);
    scored
}

fn org_filter(org: &str) -> VectorFilter {
    VectorFilter {
        scope: Scope::org(org),
        ..VectorFilter::default()
    }
}

/// A vector of the wrong length, a non-finite value or no direction fails the whole batch.
pub async fn bad_vectors_write_nothing(store: Arc<dyn VectorBackend>) {
    let scope = Scope::org("acme");
    let m = model("conf-bad", 4);
    let good = vector_item(1, &scope, vec![1.0, 0.0, 0.0, 0.0]);
    for (bad, why) in [
        (
            vec![1.0, 0.0, 0.0],
            "three values for a four-dimension model",
        ),
        (vec![1.0, f32::NAN, 0.0, 0.0], "a NaN"),
        (vec![0.0; 4], "all zeros"),
    ] {
        let err = store
            .upsert(&m, vec![good.clone(), vector_item(2, &scope, bad)])
            .await
            .expect_err(why);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{why}: {err}");
        assert!(
            err.message().contains("vector 1"),
            "the error names the bad vector ({why}): {err}"
        );
    }
    let hits = store
        .knn("conf-bad", &[1.0, 0.0, 0.0, 0.0], 10, &org_filter("acme"))
        .await
        .unwrap();
    assert!(
        hits.is_empty(),
        "a failed batch writes nothing, not even its good vectors: {hits:?}"
    );
    store.upsert(&m, vec![good]).await.unwrap();
    let err = store
        .knn("conf-bad", &[1.0, 0.0, 0.0], 10, &org_filter("acme"))
        .await
        .expect_err("a query of the wrong dimension");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = store
        .knn("", &[1.0, 0.0, 0.0, 0.0], 10, &org_filter("acme"))
        .await
        .expect_err("an empty model name");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// A model keeps the dimension it was first stored with while it has vectors.
pub async fn a_model_keeps_its_dimension(store: Arc<dyn VectorBackend>) {
    let scope = Scope::org("acme");
    store
        .upsert(
            &model("conf-dim", 4),
            vec![vector_item(1, &scope, vec![1.0, 2.0, 3.0, 4.0])],
        )
        .await
        .unwrap();
    let err = store
        .upsert(
            &model("conf-dim", 8),
            vec![vector_item(2, &scope, vec![1.0; 8])],
        )
        .await
        .expect_err("another dimension for the same model");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let hits = store
        .knn("conf-dim", &[1.0, 2.0, 3.0, 4.0], 5, &org_filter("acme"))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "the conflicting batch wrote nothing");
    assert!((hits[0].similarity - 1.0).abs() < 1e-2, "{hits:?}");
    // Another model of another dimension is fine.
    store
        .upsert(
            &model("conf-dim-8", 8),
            vec![vector_item(1, &scope, vec![1.0; 8])],
        )
        .await
        .unwrap();
}

/// A model keeps the first fingerprint it is stored with: vectors without one are adopted by the
/// first model that has one, vectors of another model under the same name are refused whole.
pub async fn a_model_keeps_its_fingerprint(store: Arc<dyn VectorBackend>) {
    let scope = Scope::org("acme");
    let printed = |fingerprint: Option<&str>| ModelInfo {
        fingerprint: fingerprint.map(str::to_owned),
        ..model("conf-print", 4)
    };
    assert_eq!(store.stored_model("conf-print").await.unwrap(), None);
    store
        .upsert(
            &printed(None),
            vec![vector_item(1, &scope, vec![1.0, 2.0, 3.0, 4.0])],
        )
        .await
        .unwrap();
    let fingerprint = |store: Arc<dyn VectorBackend>| async move {
        let stored = store.stored_model("conf-print").await.unwrap().unwrap();
        assert_eq!(stored.dim, 4);
        stored.fingerprint
    };
    assert_eq!(fingerprint(store.clone()).await, None);
    store
        .upsert(
            &printed(Some("b3:aaaa")),
            vec![vector_item(2, &scope, vec![4.0, 3.0, 2.0, 1.0])],
        )
        .await
        .unwrap();
    assert_eq!(
        fingerprint(store.clone()).await.as_deref(),
        Some("b3:aaaa"),
        "the first fingerprint is adopted"
    );
    let err = store
        .upsert(
            &printed(Some("b3:bbbb")),
            vec![
                vector_item(2, &scope, vec![1.0, 1.0, 1.0, 1.0]),
                vector_item(3, &scope, vec![1.0, 0.0, 0.0, 0.0]),
            ],
        )
        .await
        .expect_err("another model under the same name");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("conf-print"), "{err}");
    assert!(
        err.message().contains("b3:aaaa") && err.message().contains("b3:bbbb"),
        "{err}"
    );
    let hits = store
        .knn("conf-print", &[4.0, 3.0, 2.0, 1.0], 5, &org_filter("acme"))
        .await
        .unwrap();
    assert_eq!(hits.len(), 2, "the refused batch wrote nothing: {hits:?}");
    assert_eq!(hits[0].id, RecordId::from_raw(2));
    assert!(
        (hits[0].similarity - 1.0).abs() < 1e-2,
        "record 2 kept its vector: {hits:?}"
    );
    // The same model, and a writer that cannot tell its fingerprint, still write.
    for fingerprint in [Some("b3:aaaa"), None] {
        store
            .upsert(
                &printed(fingerprint),
                vec![vector_item(4, &scope, vec![0.0, 1.0, 0.0, 0.0])],
            )
            .await
            .unwrap();
    }
    assert_eq!(fingerprint(store.clone()).await.as_deref(), Some("b3:aaaa"));
    // Once every vector of the model is gone, so is what made them: another model may start.
    store
        .delete(&scope, &[RecordId::from_raw(1)])
        .await
        .unwrap();
    assert_eq!(
        fingerprint(store.clone()).await.as_deref(),
        Some("b3:aaaa"),
        "vectors remain"
    );
    let ids: Vec<RecordId> = (1..=4).map(RecordId::from_raw).collect();
    store.delete(&scope, &ids).await.unwrap();
    assert_eq!(
        store.stored_model("conf-print").await.unwrap(),
        None,
        "no vector left: no fingerprint, the name is free"
    );
    store
        .upsert(
            &printed(Some("b3:bbbb")),
            vec![vector_item(5, &scope, vec![0.0, 0.0, 1.0, 0.0])],
        )
        .await
        .unwrap();
    assert_eq!(fingerprint(store.clone()).await.as_deref(), Some("b3:bbbb"));
    // Dropping a model removes its vectors in every scope and frees the name; others stay.
    let elsewhere = Scope::org("globex");
    store
        .upsert(
            &printed(Some("b3:bbbb")),
            vec![vector_item(6, &elsewhere, vec![0.0, 0.0, 0.0, 1.0])],
        )
        .await
        .unwrap();
    store
        .upsert(
            &model("conf-print-kept", 4),
            vec![vector_item(7, &scope, vec![1.0, 0.0, 0.0, 0.0])],
        )
        .await
        .unwrap();
    assert_eq!(store.drop_model("conf-print").await.unwrap(), 2);
    assert_eq!(store.stored_model("conf-print").await.unwrap(), None);
    for org in ["acme", "globex"] {
        let hits = store
            .knn("conf-print", &[1.0, 1.0, 1.0, 1.0], 5, &org_filter(org))
            .await
            .unwrap();
        assert!(hits.is_empty(), "{org}: {hits:?}");
    }
    let kept = store
        .knn(
            "conf-print-kept",
            &[1.0, 0.0, 0.0, 0.0],
            5,
            &org_filter("acme"),
        )
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "another model's vectors stay");
    assert_eq!(store.drop_model("conf-print-never").await.unwrap(), 0);
    store
        .upsert(
            &printed(Some("b3:cccc")),
            vec![vector_item(8, &scope, vec![0.0, 1.0, 1.0, 0.0])],
        )
        .await
        .unwrap();
    assert_eq!(fingerprint(store.clone()).await.as_deref(), Some("b3:cccc"));
    // A new model name starts afresh.
    store
        .upsert(
            &ModelInfo {
                fingerprint: Some("b3:bbbb".into()),
                ..model("conf-print-2", 4)
            },
            vec![vector_item(1, &scope, vec![1.0, 1.0, 1.0, 1.0])],
        )
        .await
        .unwrap();
}

/// A name whose vectors are all gone (dropped, or deleted record by record) takes the next
/// model's dimension; until then searches of it find nothing, whatever the query's dimension.
pub async fn an_emptied_model_name_takes_another_dimension(store: Arc<dyn VectorBackend>) {
    let scope = Scope::org("acme");
    let items = |dim: usize, seed: u64| -> Vec<VectorItem> {
        random_vectors(5, dim, seed)
            .into_iter()
            .enumerate()
            .map(|(i, v)| vector_item(i as i64 + 1, &scope, v))
            .collect()
    };
    let search = |store: Arc<dyn VectorBackend>, query: Vec<f32>| async move {
        store
            .knn("conf-resize", &query, 3, &org_filter("acme"))
            .await
    };
    store
        .upsert(&model("conf-resize", 4), items(4, 1))
        .await
        .unwrap();
    let err = store
        .upsert(&model("conf-resize", 6), items(6, 2))
        .await
        .expect_err("vectors of 4 dimensions are stored");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("--replace"), "{err}");

    assert_eq!(store.drop_model("conf-resize").await.unwrap(), 5);
    assert_eq!(store.stored_model("conf-resize").await.unwrap(), None);
    for dim in [4, 6] {
        let hits = search(store.clone(), vec![0.5; dim]).await.unwrap();
        assert!(hits.is_empty(), "{dim} dimensions: {hits:?}");
    }
    let six = items(6, 2);
    store
        .upsert(&model("conf-resize", 6), six.clone())
        .await
        .unwrap();
    let stored = store.stored_model("conf-resize").await.unwrap().unwrap();
    assert_eq!(stored.dim, 6);
    let hits = search(store.clone(), six[2].vector.clone()).await.unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].id, six[2].id, "{hits:?}");
    assert!((hits[0].similarity - 1.0).abs() < 1e-2, "{hits:?}");
    let err = search(store.clone(), vec![0.5; 4]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = store
        .upsert(&model("conf-resize", 4), items(4, 1))
        .await
        .expect_err("the name holds 6 dimensions now");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    // Deleting every record's vector frees the name too.
    let ids: Vec<RecordId> = six.iter().map(|i| i.id).collect();
    assert_eq!(store.delete(&scope, &ids).await.unwrap(), 5);
    assert_eq!(store.stored_model("conf-resize").await.unwrap(), None);
    let eight = items(8, 3);
    store
        .upsert(&model("conf-resize", 8), eight.clone())
        .await
        .unwrap();
    let hits = search(store.clone(), eight[4].vector.clone())
        .await
        .unwrap();
    assert_eq!(hits[0].id, eight[4].id, "{hits:?}");
}

/// On a small set the answer is the exact one, best first; `k` past the set returns it all;
/// re-upserting a record replaces its vector.
pub async fn knn_is_exact_on_a_small_set(store: Arc<dyn VectorBackend>) {
    let scope = Scope::org("acme");
    let m = model("conf-exact", 8);
    let items: Vec<VectorItem> = random_vectors(60, 8, 1)
        .into_iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &scope, v))
        .collect();
    store.upsert(&m, items.clone()).await.unwrap();
    for (qi, query) in random_vectors(5, 8, 2).iter().enumerate() {
        let hits = store
            .knn("conf-exact", query, 5, &org_filter("acme"))
            .await
            .unwrap();
        let exact = exact_knn(&items, query, 5);
        assert_eq!(hits.len(), 5, "query {qi}");
        for (rank, (hit, (_, best))) in hits.iter().zip(&exact).enumerate() {
            let own = items
                .iter()
                .find(|i| i.id == hit.id)
                .map(|i| cosine(&i.vector, query))
                .unwrap_or_else(|| panic!("query {qi}: unknown hit {}", hit.id));
            assert!(
                (hit.similarity - own).abs() < 1e-2,
                "query {qi}: {} reported {} but is {own}",
                hit.id,
                hit.similarity
            );
            // Near-ties may swap under half precision; each rank is as close as the exact one.
            assert!(
                (own - best).abs() < 1e-2,
                "query {qi}, rank {rank}: {hits:?} vs exact {exact:?}"
            );
        }
        assert!(
            hits.windows(2).all(|w| w[0].similarity >= w[1].similarity),
            "best first: {hits:?}"
        );
    }
    let all = store
        .knn("conf-exact", &items[0].vector, 100, &org_filter("acme"))
        .await
        .unwrap();
    assert_eq!(all.len(), 60, "k past the set returns every vector");
    assert_eq!(all[0].id, items[0].id, "a stored vector is its own nearest");
    let ids: HashSet<i64> = all.iter().map(|h| h.id.raw()).collect();
    assert_eq!(ids.len(), 60, "no duplicates");
    assert!(store
        .knn("conf-exact", &items[0].vector, 0, &org_filter("acme"))
        .await
        .unwrap()
        .is_empty());
    assert!(
        store
            .knn("conf-exact", &items[0].vector, 5, &org_filter("globex"))
            .await
            .unwrap()
            .is_empty(),
        "another org sees nothing"
    );
    assert!(store
        .knn("conf-unknown", &items[0].vector, 5, &org_filter("acme"))
        .await
        .unwrap()
        .is_empty());

    // Record 2 now points where record 1 pointed; the same record twice in a batch: last wins.
    let mut moved = items[1].clone();
    moved.vector = vec![0.25; 8];
    let mut last = items[1].clone();
    last.vector = items[0].vector.clone();
    store.upsert(&m, vec![moved, last]).await.unwrap();
    let hits = store
        .knn("conf-exact", &items[0].vector, 2, &org_filter("acme"))
        .await
        .unwrap();
    let top: HashSet<i64> = hits.iter().map(|h| h.id.raw()).collect();
    assert_eq!(top, HashSet::from([1, 2]), "{hits:?}");
    let count = store
        .knn("conf-exact", &items[0].vector, 100, &org_filter("acme"))
        .await
        .unwrap()
        .len();
    assert_eq!(count, 60, "replacing a vector does not add one");
}

/// What a filter allows, computed by hand.
type Allowed = Box<dyn Fn(&VectorItem) -> bool>;

/// Filters by org (a 1 % tenant), client, project, entity and source kind return
/// `min(k, matching)` rows, all matching, close to the exact answer.
pub async fn filtered_queries_return_k_rows(store: Arc<dyn VectorBackend>) {
    let dim = 16;
    let m = model("conf-filtered", dim);
    let vectors = random_vectors(FILTERED_ROWS, dim, 3);
    let items: Vec<VectorItem> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut scope = if i % 100 == 0 {
                Scope::org("small")
            } else {
                Scope::org("big")
            };
            if i % 3 == 0 {
                scope = scope.with_client("initech");
                if i % 2 == 0 {
                    scope = scope.with_project("tps");
                }
            }
            let mut item = vector_item(i as i64 + 1, &scope, v);
            if i % 7 == 0 {
                item.entity = EntityKind::Message;
                item.source_kind = "gmail".into();
            }
            item
        })
        .collect();
    for chunk in items.chunks(1_000) {
        store.upsert(&m, chunk.to_vec()).await.unwrap();
    }
    let filters: Vec<(&str, VectorFilter, Allowed)> = vec![
        (
            "the 1 % org",
            org_filter("small"),
            Box::new(|i: &VectorItem| i.scope.org == "small"),
        ),
        (
            "a client",
            VectorFilter {
                scope: Scope::org("big").with_client("initech"),
                ..VectorFilter::default()
            },
            Box::new(|i: &VectorItem| {
                i.scope.org == "big" && i.scope.client.as_deref() == Some("initech")
            }),
        ),
        (
            "a project",
            VectorFilter {
                scope: Scope::org("big").with_client("initech").with_project("tps"),
                ..VectorFilter::default()
            },
            Box::new(|i: &VectorItem| {
                i.scope.org == "big" && i.scope.project.as_deref() == Some("tps")
            }),
        ),
        (
            "an entity",
            VectorFilter {
                scope: Scope::org("big"),
                entities: vec![EntityKind::Message],
                ..VectorFilter::default()
            },
            Box::new(|i: &VectorItem| i.scope.org == "big" && i.entity == EntityKind::Message),
        ),
        (
            "a source kind in the small org",
            VectorFilter {
                scope: Scope::org("small"),
                source_kinds: vec!["gmail".into()],
                ..VectorFilter::default()
            },
            Box::new(|i: &VectorItem| i.scope.org == "small" && i.source_kind == "gmail"),
        ),
    ];
    let queries = random_vectors(10, dim, 4);
    for (name, filter, allowed) in &filters {
        let matching: Vec<VectorItem> = items.iter().filter(|i| allowed(i)).cloned().collect();
        let mut found = 0;
        let mut expected = 0;
        for query in &queries {
            let hits = store.knn("conf-filtered", query, 10, filter).await.unwrap();
            assert_eq!(
                hits.len(),
                10.min(matching.len()),
                "{name}: {} of {} matching rows",
                hits.len(),
                matching.len()
            );
            let ids: HashSet<i64> = matching.iter().map(|i| i.id.raw()).collect();
            assert!(
                hits.iter().all(|h| ids.contains(&h.id.raw())),
                "{name}: a hit outside the filter"
            );
            let exact: HashSet<i64> = exact_knn(&matching, query, 10)
                .iter()
                .map(|(id, _)| id.raw())
                .collect();
            found += hits.iter().filter(|h| exact.contains(&h.id.raw())).count();
            expected += exact.len();
        }
        let recall = found as f64 / expected as f64;
        assert!(recall >= 0.9, "{name}: recall@10 {recall}");
    }
}

/// Delete removes a record's vectors in its scope only, and reports how many went.
pub async fn delete_removes_vectors_in_scope(store: Arc<dyn VectorBackend>) {
    let acme = Scope::org("acme");
    let vectors = random_vectors(20, 8, 5);
    let items: Vec<VectorItem> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| vector_item(i as i64 + 1, &acme, v.clone()))
        .collect();
    store
        .upsert(&model("conf-del", 8), items.clone())
        .await
        .unwrap();
    store
        .upsert(&model("conf-del-2", 8), items[..5].to_vec())
        .await
        .unwrap();
    let gone = store
        .delete(
            &Scope::org("globex"),
            &[RecordId::from_raw(1), RecordId::from_raw(2)],
        )
        .await
        .unwrap();
    assert_eq!(gone, 0, "another org's delete removes nothing");
    let gone = store
        .delete(&acme, &[RecordId::from_raw(1), RecordId::from_raw(2)])
        .await
        .unwrap();
    assert_eq!(gone, 4, "two records, each in two models");
    for model in ["conf-del", "conf-del-2"] {
        let hits = store
            .knn(model, &items[0].vector, 100, &org_filter("acme"))
            .await
            .unwrap();
        assert!(
            hits.iter().all(|h| h.id.raw() > 2),
            "{model}: deleted vectors come back: {hits:?}"
        );
        assert_eq!(hits.len(), if model == "conf-del" { 18 } else { 3 });
    }
    assert_eq!(store.delete(&acme, &[]).await.unwrap(), 0);
}

/// `stale` lists the records of a scope with no vector or one made from other content, in id
/// order, page by page.
pub async fn stale_lists_missing_and_changed_records(store: Arc<dyn VectorBackend>) {
    let acme = Scope::org("acme");
    let fixtures: Vec<TaskFixture> = (0..12)
        .map(|i| TaskFixture::new(&format!("S-{i}"), &format!("stale task {i}"), None, 0.5))
        .collect();
    let records: Vec<_> = fixtures.iter().map(|f| f.item(&acme)).collect();
    store
        .ingest_batch(&acme, "stale.csv", &records, &[])
        .await
        .unwrap();
    let other = Scope::org("globex");
    store
        .ingest_batch(&other, "stale.csv", &[fixtures[0].item(&other)], &[])
        .await
        .unwrap();
    let m = model("conf-stale", 4);
    // Records 0..6 embedded from their current content, 6..9 from older content, 9.. never.
    let embedded: Vec<VectorItem> = records[..9]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let record = &r.normalised.record;
            let mut item = vector_item(record.id.raw(), &acme, vec![1.0, i as f32, 0.0, 0.0]);
            item.content_hash = if i < 6 {
                record.content_hash as u64
            } else {
                record.content_hash as u64 ^ 1
            };
            item
        })
        .collect();
    store.upsert(&m, embedded).await.unwrap();
    let mut expected: Vec<(i64, u64)> = records[6..]
        .iter()
        .map(|r| {
            (
                r.normalised.record.id.raw(),
                r.normalised.record.content_hash as u64,
            )
        })
        .collect();
    expected.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.stale("conf-stale", &acme, after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|s| (s.id.raw(), s.content_hash)));
    }
    assert_eq!(
        seen, expected,
        "missing and changed records, in id order, with their current hash"
    );
    // The same list for a batch of ids (unsorted, repeated, of another org, of no record), by
    // the store's own query and by the trait's default over `stale`.
    let mut asked: Vec<RecordId> = records
        .iter()
        .rev()
        .map(|r| r.normalised.record.id)
        .collect();
    asked.extend([
        records[7].normalised.record.id,
        id_of(&other, "S-0"),
        RecordId::from_raw(12_345),
    ]);
    let stale_ids: Vec<RecordId> = expected
        .iter()
        .map(|(id, _)| RecordId::from_raw(*id))
        .collect();
    let by_store = store
        .stale_among("conf-stale", &acme, &asked)
        .await
        .unwrap();
    assert_eq!(
        by_store, stale_ids,
        "stale_among: the stale ones of the batch, in id order"
    );
    let by_default = ByStale(store.as_ref())
        .stale_among("conf-stale", &acme, &asked)
        .await
        .unwrap();
    assert_eq!(by_default, stale_ids, "the trait's default stale_among");
    assert!(store
        .stale_among("conf-stale", &acme, &[])
        .await
        .unwrap()
        .is_empty());
    let everything = store
        .stale("conf-other-model", &acme, None, 100)
        .await
        .unwrap();
    assert_eq!(everything.len(), 12, "another model has embedded nothing");
    let globex = store.stale("conf-stale", &other, None, 100).await.unwrap();
    assert_eq!(
        globex.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![id_of(&other, "S-0")],
        "scoped to the org"
    );
    assert!(store
        .stale("conf-stale", &acme, None, 0)
        .await
        .unwrap()
        .is_empty());
    // Embedding the changed ones empties the list.
    let fresh: Vec<VectorItem> = records[6..]
        .iter()
        .map(|r| {
            let record = &r.normalised.record;
            let mut item = vector_item(record.id.raw(), &acme, vec![0.0, 1.0, 0.0, 0.0]);
            item.content_hash = record.content_hash as u64;
            item
        })
        .collect();
    store.upsert(&m, fresh).await.unwrap();
    assert!(store
        .stale("conf-stale", &acme, None, 100)
        .await
        .unwrap()
        .is_empty());
    let _ = store.record(&acme, id_of(&acme, "S-0")).await.unwrap();
}

/// A store seen only through the required methods of [`VectorIndex`], so that the trait's
/// default methods run.
struct ByStale<'a>(&'a dyn VectorBackend);

#[async_trait::async_trait]
impl VectorIndex for ByStale<'_> {
    async fn upsert(&self, model: &ModelInfo, items: Vec<VectorItem>) -> opsweave_core::Result<()> {
        self.0.upsert(model, items).await
    }

    async fn delete(&self, scope: &Scope, ids: &[RecordId]) -> opsweave_core::Result<u64> {
        self.0.delete(scope, ids).await
    }

    async fn knn(
        &self,
        model: &str,
        query: &[f32],
        k: usize,
        filter: &VectorFilter,
    ) -> opsweave_core::Result<Vec<opsweave_core::VectorHit>> {
        self.0.knn(model, query, k, filter).await
    }

    async fn stale(
        &self,
        model: &str,
        scope: &Scope,
        after: Option<RecordId>,
        limit: usize,
    ) -> opsweave_core::Result<Vec<opsweave_core::StaleVector>> {
        self.0.stale(model, scope, after, limit).await
    }

    async fn stored_model(
        &self,
        model: &str,
    ) -> opsweave_core::Result<Option<opsweave_core::vector::StoredModel>> {
        self.0.stored_model(model).await
    }

    async fn drop_model(&self, model: &str) -> opsweave_core::Result<u64> {
        self.0.drop_model(model).await
    }
}
