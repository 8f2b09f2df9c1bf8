//! Embedding runs, hybrid recall and memory on SQLite with the real all-MiniLM-L6-v2 model.
//!
//! Needs the test model and ONNX Runtime (`eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"`);
//! the tests fail, never skip, when they are missing.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use async_trait::async_trait;
use opsweave::recall::{Ranker, Recency};
use opsweave::{
    Config, EmbedKind, Embedder, Embeddings, EntityKind, ErrorKind, Mapping, ModelInfo, RecallMode,
    RecallOptions, Result, Scope, TextQuery, Weave,
};
use opsweave_onnx::{OnnxConfig, OnnxEmbedder, Preset};
use opsweave_sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

fn model() -> Arc<OnnxEmbedder> {
    static MODEL: OnceLock<Arc<OnnxEmbedder>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = std::env::var_os("OPSWEAVE_TEST_MODEL_DIR")
                .map(PathBuf::from)
                .expect(
                    "OPSWEAVE_TEST_MODEL_DIR is not set: run \
                     `eval \"$(adapters/opsweave-onnx/fetch-test-model.sh)\"` first",
                );
            Arc::new(
                OnnxEmbedder::open(OnnxConfig::new(dir).with_preset(Preset::AllMiniLmL6V2))
                    .expect("the test model opens (is ORT_DYLIB_PATH set?)"),
            )
        })
        .clone()
}

const MAPPING: &str = r#"
name = "notes-test"
source = "wiki"
entity = "document"
id = "/id"
title = "{/title}"
body = "{/text}"
updated_at = "updated"

[fields.updated]
from = "/updated"
type = "datetime"
"#;

fn docs() -> Vec<serde_json::Value> {
    [
        ("1", "Acme renewal", "Acme asked for a 10% discount on the Q3 renewal of their licence.", "2026-11-20T10:00:00Z"),
        ("2", "Kitchen rota", "Whoever empties the dishwasher last on Friday buys coffee beans.", "2026-11-01T10:00:00Z"),
        ("3", "Incident 42", "The payment service returned 502 errors for twenty minutes after a deploy.", "2026-10-01T10:00:00Z"),
        ("4", "Hiring plan", "We will open two backend engineering positions in January.", "2026-11-15T10:00:00Z"),
        ("5", "Globex contract", "Globex signed the statement of work for the data migration project.", "2026-11-18T10:00:00Z"),
    ]
    .iter()
    .map(|(id, title, text, updated)| {
        serde_json::json!({"id": id, "title": title, "text": text, "updated": updated})
    })
    .collect()
}

/// Ingests the five test documents into `scope`.
async fn ingest_docs(weave: &Weave, scope: &Scope) {
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    weave
        .ingest_rows(docs(), "docs", &mapping, scope)
        .await
        .unwrap();
}

async fn weave(dir: &tempfile::TempDir, batch_size: usize) -> (Weave, Arc<SqliteStore>) {
    let path = dir.path().join("t.db");
    let store = Arc::new(
        SqliteStore::open(&path.display().to_string())
            .await
            .unwrap(),
    );
    let mut config = Config::default();
    config.embed.batch_size = batch_size;
    let weave = Weave::from_parts(store.clone(), store.clone(), config)
        .with_vectors(store.clone())
        .with_embedder(model());
    (weave, store)
}

/// An embedder that works for `ok_calls` calls and then fails, like a process killed mid-run.
struct Failing {
    inner: Arc<OnnxEmbedder>,
    ok_calls: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl Embedder for Failing {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Embeddings> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok_calls {
            return Err(opsweave::Error::unavailable("killed"));
        }
        self.inner.embed(texts, kind).await
    }
}

#[tokio::test]
async fn embedding_skips_unchanged_records_and_resumes_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, store) = weave(&dir, 2).await;
    let scope = Scope::org("acme");
    ingest_docs(&weave, &scope).await;

    // Dies on its second batch: the first batch's vectors stay (batches of 2, 2 and 1 records,
    // taken in a random order).
    let failing = Failing {
        inner: model(),
        ok_calls: 1,
        calls: AtomicUsize::new(0),
    };
    let err = weave.embed(&scope, &failing, None).await.unwrap_err();
    assert_eq!(err.message(), "killed");
    let left = opsweave::VectorIndex::stale(&*store, "all-minilm-l6-v2", &scope, None, 100)
        .await
        .unwrap()
        .len() as u64;
    assert!(
        left == 3 || left == 4,
        "one batch's vectors stayed: {left} stale"
    );

    let progress = Arc::new(opsweave::EmbedProgress::default());
    let report = weave
        .embed(&scope, &*model(), Some(progress.clone()))
        .await
        .unwrap();
    assert_eq!(report.stale, left, "{report:?}");
    assert_eq!(report.embedded, left);
    assert_eq!(report.model, "all-minilm-l6-v2");
    assert_eq!(report.dim, 384);
    assert_eq!(progress.done.load(Ordering::Relaxed), left);
    assert_eq!(progress.total.load(Ordering::Relaxed), left);

    let again = weave.embed(&scope, &*model(), None).await.unwrap();
    assert_eq!((again.stale, again.embedded), (0, 0));

    // A changed record is stale again, and only it.
    let mut changed = docs();
    changed[2]["text"] = "The payment service was down for an hour on Sunday.".into();
    weave
        .ingest_rows(
            changed,
            "docs",
            &Mapping::from_toml(MAPPING).unwrap(),
            &scope,
        )
        .await
        .unwrap();
    let third = weave.embed(&scope, &*model(), None).await.unwrap();
    assert_eq!((third.stale, third.embedded), (1, 1));
}

#[tokio::test]
async fn an_embedding_job_meters_each_call_to_the_scope_it_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, store) = weave(&dir, 256).await;
    let weave = weave.with_usage_ledger(store.clone());
    let mapping = Mapping::from_toml(MAPPING).unwrap();
    let client = |name: &str| Scope {
        org: "acme".into(),
        client: Some(name.into()),
        project: None,
    };
    let mut globex = docs();
    let initech = globex.split_off(3);
    for (rows, scope) in [(globex, client("globex")), (initech, client("initech"))] {
        weave
            .ingest_rows(rows, "docs", &mapping, &scope)
            .await
            .unwrap();
    }
    // One job over the whole org, its batch big enough to hold every record.
    let report = weave
        .embed(&Scope::org("acme"), &*model(), None)
        .await
        .unwrap();
    assert_eq!(report.embedded, 5);
    let query = opsweave::UsageQuery::parse(Scope::org("acme"), Some("2000-01-01"), None, "client")
        .unwrap();
    let totals = weave.usage_report(&query).await.unwrap();
    let by_client: Vec<(String, u64, u64)> = totals
        .iter()
        .map(|t| (t.total.key.clone(), t.total.calls, t.total.embedding_tokens))
        .collect();
    assert_eq!(
        by_client.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        ["globex", "initech"],
        "{by_client:?}"
    );
    assert!(
        by_client.iter().all(|t| t.1 == 1 && t.2 > 0),
        "{by_client:?}"
    );
    assert_eq!(by_client[0].2 + by_client[1].2, report.tokens);
}

/// An embedder like a paid service that fails after spending: its second call fails with the
/// calls it made before failing, its third answers a vector the store must refuse (NaN).
struct Spending {
    inner: Arc<OnnxEmbedder>,
    calls: AtomicUsize,
}

#[async_trait]
impl Embedder for Spending {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Embeddings> {
        let mut out = self.inner.embed(texts, kind).await?;
        let call = |tokens| opsweave::ModelCall {
            embedding_tokens: tokens,
            latency_ms: 3,
            ..Default::default()
        };
        out.calls = vec![call(10)];
        out.tokens = 10;
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => Ok(out),
            1 => Err(opsweave::Error::unavailable("the third request failed")
                .with_spent([call(7), call(5)])),
            _ => {
                out.vectors[0][0] = f32::NAN;
                Ok(out)
            }
        }
    }
}

/// Every call a paid model answered is metered, also when the embedding fails afterwards: the
/// calls an error reports, and a call whose vectors are refused.
#[tokio::test]
async fn model_calls_before_a_failure_are_metered() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, store) = weave(&dir, 2).await;
    let weave = weave.with_usage_ledger(store.clone());
    let scope = Scope::org("acme");
    ingest_docs(&weave, &scope).await;
    let spending = Spending {
        inner: model(),
        calls: AtomicUsize::new(0),
    };
    let totals = || async {
        let query =
            opsweave::UsageQuery::parse(scope.clone(), Some("2000-01-01"), None, "org").unwrap();
        let totals = weave.usage_report(&query).await.unwrap();
        totals
            .first()
            .map_or((0, 0), |t| (t.total.calls, t.total.embedding_tokens))
    };
    let err = weave.embed(&scope, &spending, None).await.unwrap_err();
    assert_eq!(err.message(), "the third request failed");
    assert_eq!(
        totals().await,
        (3, 10 + 7 + 5),
        "first batch, then two spent calls"
    );

    let err = weave.embed(&scope, &spending, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(err.message().contains("NaN"), "{err}");
    assert_eq!(totals().await, (4, 32), "the refused answer was billed too");

    let memory = Weave::from_parts(store.clone(), store.clone(), Config::default())
        .with_vectors(store.clone())
        .with_embedder(Arc::new(Spending {
            inner: model(),
            calls: AtomicUsize::new(1),
        }))
        .with_usage_ledger(store.clone());
    memory
        .recall(&scope, "website outage", &RecallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        totals().await,
        (6, 44),
        "a failed query embedding is metered"
    );
}

/// A usage ledger that is down.
struct DownLedger;

#[async_trait]
impl opsweave::UsageLedger for DownLedger {
    async fn record_usage(&self, _events: &[opsweave::UsageEvent]) -> Result<()> {
        Err(opsweave::Error::unavailable("the usage ledger is down"))
    }

    async fn usage_totals(
        &self,
        _query: &opsweave::UsageQuery,
    ) -> Result<Vec<opsweave::UsageTotal>> {
        Err(opsweave::Error::unavailable("the usage ledger is down"))
    }
}

/// When billed calls before a model failure cannot be metered either, the error says so: the
/// model's failure first, then the unmetered calls and why.
#[tokio::test]
async fn unmetered_calls_before_a_failure_are_reported_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, _store) = weave(&dir, 2).await;
    let scope = Scope::org("acme");
    ingest_docs(&weave, &scope).await;
    let weave = weave.with_usage_ledger(Arc::new(DownLedger));
    let spending = Spending {
        inner: model(),
        calls: AtomicUsize::new(1),
    };
    let err = weave.embed(&scope, &spending, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.message()
            .starts_with("the third request failed; 2 model call(s)"),
        "{err}"
    );
    assert!(err.message().contains("(12 tokens)"), "{err}");
    assert!(err.message().contains("the usage ledger is down"), "{err}");
}

#[tokio::test]
async fn hybrid_recall_explains_hits_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, _store) = weave(&dir, 64).await;
    let scope = Scope::org("acme");
    ingest_docs(&weave, &scope).await;
    weave.embed(&scope, &*model(), None).await.unwrap();

    // No word in common with doc 3: only the dense ranker can find it.
    let options = RecallOptions {
        k: 3,
        ..RecallOptions::default()
    };
    let hits = weave
        .recall(&scope, "website outage", &options)
        .await
        .unwrap();
    assert_eq!(hits[0].title, "Incident 42", "{hits:#?}");
    let rankers: Vec<Ranker> = hits[0]
        .explanation
        .found_by
        .iter()
        .map(|h| h.ranker)
        .collect();
    assert_eq!(rankers, [Ranker::Dense]);
    assert_eq!(hits.len(), 3);

    // Both rankers agree on a keyword-and-meaning match.
    let hits = weave
        .recall(&scope, "Acme discount renewal", &options)
        .await
        .unwrap();
    assert_eq!(hits[0].title, "Acme renewal");
    let found = &hits[0].explanation.found_by;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|h| h.rank == 1));
    let rrf = 1.0 / 61.0 + 1.0 / 61.0;
    assert!((hits[0].explanation.score - rrf).abs() < 1e-12);
    assert!(
        hits[0].snippet.contains('['),
        "BM25 marks the match: {}",
        hits[0].snippet
    );

    // BM25 alone: only records holding a word; dense alone: always k.
    let bm25 = RecallOptions {
        mode: RecallMode::Bm25,
        ..options.clone()
    };
    let hits = weave.recall(&scope, "Globex", &bm25).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].explanation.found_by[0].ranker, Ranker::Bm25);
    let dense = RecallOptions {
        mode: RecallMode::Dense,
        ..options.clone()
    };
    assert_eq!(
        weave.recall(&scope, "Globex", &dense).await.unwrap().len(),
        3
    );

    // Filters: no record is a note yet.
    let notes = RecallOptions {
        entities: vec![EntityKind::Note],
        ..options.clone()
    };
    assert!(weave
        .recall(&scope, "Acme", &notes)
        .await
        .unwrap()
        .is_empty());
    // Another org sees nothing.
    assert!(weave
        .recall(&Scope::org("other"), "Acme", &options)
        .await
        .unwrap()
        .is_empty());

    // Recency: the October incident loses to newer records on a vague query.
    let recent = RecallOptions {
        k: 5,
        recency: Some(Recency::half_life(7.0)),
        ..options.clone()
    };
    let hits = weave.recall(&scope, "news", &recent).await.unwrap();
    let incident = hits.iter().find(|h| h.title == "Incident 42").unwrap();
    assert!(incident.explanation.recency.unwrap() < 0.1, "{incident:?}");
    assert!(incident.explanation.age_days.unwrap() > 30.0);

    let err = weave.recall(&scope, "  ", &options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = weave
        .recall(&scope, "x", &RecallOptions { k: 0, ..options })
        .await
        .unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("k"));
}

#[tokio::test]
async fn a_memory_updated_from_a_wider_scope_stays_one_note() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, _store) = weave(&dir, 64).await;
    let org = Scope::org("acme");
    let globex = org.clone().with_client("globex");
    let id = weave
        .remember(&globex, "Globex pays in dollars", &[])
        .await
        .unwrap();
    let updated = weave
        .update_memory(&org, id, "Globex pays in euros", None)
        .await
        .unwrap();
    assert_eq!((updated.id, updated.scope.clone()), (id, globex.clone()));
    assert_eq!(updated.body, "Globex pays in euros");
    let text = RecallOptions {
        mode: RecallMode::Bm25,
        ..RecallOptions::default()
    };
    for scope in [&org, &globex] {
        let hits = weave.recall(scope, "Globex pays", &text).await.unwrap();
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            [id],
            "one note in {scope}"
        );
    }

    // A query is held to a note's size: a model embeds every chunk of a long one.
    let long = "invoice ".repeat(5_000);
    let err = weave
        .recall(&org, &long, &RecallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("query"), "{err}");
}

/// `[index]` in the configuration reaches the embedded store's graph: with `quantize` on, the
/// saved graph is the quantized one, and recall works through it.
#[tokio::test]
async fn the_index_configuration_shapes_the_embedded_graph() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let mut config = Config {
        db: format!("sqlite://{}", db.display()),
        ..Config::default()
    };
    config.index.quantize = true;
    config.index.m = 8;
    let weave = Weave::open_with(config.clone())
        .await
        .unwrap()
        .with_embedder(model());
    let scope = Scope::org("acme");
    ingest_docs(&weave, &scope).await;
    weave.embed(&scope, &*model(), None).await.unwrap();
    let hits = weave
        .recall(
            &scope,
            "discount on the licence renewal",
            &RecallOptions {
                k: 1,
                mode: RecallMode::Dense,
                ..RecallOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hits[0].title, "Acme renewal", "{hits:#?}");
    weave.close().await;
    let sidecars: Vec<_> = std::fs::read_dir(dir.path().join("q.db.vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(sidecars.len(), 1, "{sidecars:?}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecars[0]).unwrap()).unwrap();
    assert_eq!(sidecar["distance"], "unit-dot-i8", "{sidecar}");

    // A bad value stops the store from opening, naming the key.
    config.index.m = 0;
    let err = Weave::open_with(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.location().field.as_deref(), Some("index.m"));
}

#[tokio::test]
async fn memories_are_found_at_once_replaced_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, store) = weave(&dir, 64).await;
    let scope = Scope::org("acme");
    let options = RecallOptions {
        k: 3,
        ..RecallOptions::default()
    };
    // Warm the model so the timing below is one note's work.
    weave.remember(&scope, "warm up", &[]).await.unwrap();

    let started = Instant::now();
    let id = weave
        .remember(
            &scope,
            "Acme wants the Q3 renewal invoiced in euros",
            &["acme".into()],
        )
        .await
        .unwrap();
    eprintln!("remember took {:?}", started.elapsed());
    let hits = weave
        .recall(&scope, "which currency does Acme pay in?", &options)
        .await
        .unwrap();
    assert_eq!(hits[0].id, id, "{hits:#?}");
    assert_eq!(hits[0].entity, EntityKind::Note);
    assert_eq!(hits[0].source_kind, "memory");

    // Nothing is stale: remember stored the vector itself.
    let report = weave.embed(&scope, &*model(), None).await.unwrap();
    assert_eq!(report.stale, 0);

    let updated = weave
        .update_memory(&scope, id, "Globex prefers phone calls to email", None)
        .await
        .unwrap();
    assert_eq!(updated.id, id);
    assert_eq!(
        updated.fields.get("tags"),
        Some(&opsweave::Value::List(vec![opsweave::Value::Text(
            "acme".into()
        )]))
    );
    let bm25 = RecallOptions {
        mode: RecallMode::Bm25,
        ..options.clone()
    };
    assert!(weave
        .recall(&scope, "euros", &bm25)
        .await
        .unwrap()
        .is_empty());
    let hits = weave
        .recall(&scope, "how to contact Globex", &options)
        .await
        .unwrap();
    assert_eq!(hits[0].id, id);
    assert_eq!(weave.embed(&scope, &*model(), None).await.unwrap().stale, 0);

    weave.forget(&scope, id).await.unwrap();
    assert_eq!(
        weave.record(&scope, id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let text = TextQuery {
        text: "Globex phone".into(),
        limit: 10,
        ..TextQuery::default()
    };
    use opsweave::RecordStore;
    assert!(store.rank_text(&scope, &text).await.unwrap().is_empty());
    let dense = RecallOptions {
        mode: RecallMode::Dense,
        ..options.clone()
    };
    let hits = weave
        .recall(&scope, "how to contact Globex", &dense)
        .await
        .unwrap();
    assert!(hits.iter().all(|h| h.id != id), "{hits:#?}");
    assert_eq!(
        weave.forget(&scope, id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Bad notes write nothing; ingested records are not memories.
    let err = weave.remember(&scope, "   ", &[]).await.unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("text"));
    ingest_docs(&weave, &scope).await;
    let doc = opsweave::RecordId::derive(&scope, "wiki", "1");
    let err = weave.forget(&scope, doc).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("not a memory"), "{err}");
    assert!(weave.record(&scope, doc).await.is_ok());
}

/// Copies every file of the test model's folder (its sentence-transformers files too) to `to`.
fn copy_model(to: &std::path::Path) {
    let from = PathBuf::from(std::env::var_os("OPSWEAVE_TEST_MODEL_DIR").unwrap());
    for entry in walk(&from) {
        let target = to.join(entry.strip_prefix(&from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_model_swapped_behind_its_name_is_refused_until_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("minilm");
    copy_model(&model_dir);
    let mut config = Config {
        db: format!("sqlite://{}", dir.path().join("t.db").display()),
        ..Config::default()
    };
    config.embed.model = Some(format!("onnx:{}", model_dir.display()));
    let scope = Scope::org("acme");
    let options = RecallOptions {
        k: 2,
        mode: RecallMode::Dense,
        ..RecallOptions::default()
    };

    let weave = Weave::open_with(config.clone()).await.unwrap();
    ingest_docs(&weave, &scope).await;
    let embedder = weave.embedder().await.unwrap();
    assert_eq!(embedder.info().name, "minilm");
    let report = weave.embed(&scope, &*embedder, None).await.unwrap();
    assert_eq!(report.embedded, 5);
    let before = weave
        .recall(&scope, "website outage", &options)
        .await
        .unwrap();
    assert_eq!(before[0].title, "Incident 42", "{before:#?}");
    weave.close().await;

    // Other files in the same folder: another model as far as anyone can tell from outside.
    let tokenizer = model_dir.join("tokenizer.json");
    let mut text = std::fs::read(&tokenizer).unwrap();
    text.push(b'\n');
    std::fs::write(&tokenizer, text).unwrap();

    let weave = Weave::open_with(config.clone()).await.unwrap();
    let embedder = weave.embedder().await.unwrap();
    assert_eq!(embedder.info().name, "minilm");
    let err = weave.embed(&scope, &*embedder, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("embed.model_name"), "{err}");
    let err = weave
        .recall(&scope, "website outage", &options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    // Words alone still answer.
    let words = RecallOptions {
        mode: RecallMode::Bm25,
        ..options.clone()
    };
    let hits = weave.recall(&scope, "payment", &words).await.unwrap();
    assert_eq!(hits[0].title, "Incident 42", "{hits:#?}");
    weave.close().await;

    // Under a name of its own it embeds everything again, beside the old vectors.
    config.embed.model_name = Some("minilm-edited".into());
    let weave = Weave::open_with(config.clone()).await.unwrap();
    let embedder = weave.embedder().await.unwrap();
    assert_eq!(embedder.info().name, "minilm-edited");
    let report = weave.embed(&scope, &*embedder, None).await.unwrap();
    assert_eq!((report.stale, report.embedded), (5, 5), "{report:?}");
    let after = weave
        .recall(&scope, "website outage", &options)
        .await
        .unwrap();
    assert_eq!(after[0].title, "Incident 42", "{after:#?}");

    // The name belongs to the configured model: embed jobs carry it to whichever worker runs
    // them, and another model opened with the same configuration keeps its own name.
    let configured: opsweave::EmbedderSpec =
        config.embed.model.as_deref().unwrap().parse().unwrap();
    assert_eq!(
        weave.embed_payload(&configured).unwrap(),
        serde_json::json!({"model": configured.to_string(), "name": "minilm-edited"})
    );
    let other_dir = dir.path().join("other-minilm");
    copy_model(&other_dir);
    let other: opsweave::EmbedderSpec = format!("onnx:{}", other_dir.display()).parse().unwrap();
    assert_eq!(
        weave.embed_payload(&other).unwrap(),
        serde_json::json!({"model": other.to_string()})
    );
    let opened = opsweave::open_embedder(&other.to_string(), &config)
        .await
        .unwrap();
    assert_eq!(opened.info().name, "other-minilm");

    // A worker stores a job's vectors under the name the job carries, not its own setting.
    let job = weave
        .enqueue(opsweave::NewJob::new(
            opsweave::EMBED_JOB,
            scope.clone(),
            serde_json::json!({"model": other.to_string(), "name": "via-job"}),
        ))
        .await
        .unwrap();
    let mut worker = opsweave::worker::WorkerOptions::new("recall-test");
    worker.idle_poll = std::time::Duration::from_millis(50);
    let report = weave.run_jobs(&scope, worker, None).await.unwrap();
    assert_eq!(
        report.done,
        1,
        "{:?}",
        weave.job(&scope, job.id).await.unwrap()
    );
    let vectors = weave.vectors().unwrap();
    let stored = vectors.stored_model("via-job").await.unwrap().unwrap();
    assert_eq!(stored.dim, 384);
    assert_eq!(
        vectors.stored_model("other-minilm").await.unwrap(),
        None,
        "not under the folder's name"
    );
    // A job for the configured model without a name (queued from a binding, say) gets the
    // configured name, the one recall uses.
    let job = weave
        .enqueue(opsweave::NewJob::new(
            opsweave::EMBED_JOB,
            Scope::org("globex"),
            serde_json::json!({"model": configured.to_string()}),
        ))
        .await
        .unwrap();
    ingest_docs(&weave, &Scope::org("globex")).await;
    let mut worker = opsweave::worker::WorkerOptions::new("recall-test-2");
    worker.idle_poll = std::time::Duration::from_millis(50);
    let report = weave
        .run_jobs(&Scope::org("globex"), worker, None)
        .await
        .unwrap();
    assert_eq!(
        report.done,
        1,
        "{:?}",
        weave.job(&Scope::org("globex"), job.id).await
    );
    let globex = weave
        .recall(&Scope::org("globex"), "website outage", &options)
        .await
        .unwrap();
    assert_eq!(globex[0].title, "Incident 42", "{globex:#?}");
    weave.close().await;
}

/// The test model's name with fewer dimensions and no fingerprint, like a remote server's model
/// of the same name asked for shorter vectors.
struct Shorter {
    info: ModelInfo,
}

#[async_trait]
impl Embedder for Shorter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Embeddings> {
        let mut out = model().embed(texts, kind).await?;
        for v in &mut out.vectors {
            v.truncate(self.info.dim);
        }
        Ok(out)
    }
}

#[tokio::test]
async fn another_dimension_under_a_known_name_is_refused_until_its_vectors_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (weave, store) = weave(&dir, 64).await;
    let scope = Scope::org("acme");
    ingest_docs(&weave, &scope).await;
    weave.embed(&scope, &*model(), None).await.unwrap();
    let shorter = || Shorter {
        info: ModelInfo {
            dim: 64,
            fingerprint: None,
            ..model().info().clone()
        },
    };
    // Every record has a vector of this name: nothing is stale, and still it is refused.
    let err = weave.embed(&scope, &shorter(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("384 dimensions"), "{err}");
    let other_scope = weave
        .embed(&Scope::org("globex"), &shorter(), None)
        .await
        .unwrap_err();
    assert_eq!(other_scope.kind(), ErrorKind::Conflict, "{other_scope}");

    let asking = Weave::from_parts(store.clone(), store.clone(), Config::default())
        .with_vectors(store.clone())
        .with_embedder(Arc::new(shorter()));
    let err = asking
        .recall(&scope, "website outage", &RecallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("--replace"), "{err}");

    // Once the name's vectors are dropped (`opsweave embed --replace`), it takes the new size.
    let name = model().info().name.clone();
    assert!(weave.drop_vectors(&name).await.unwrap() > 0);
    let report = weave.embed(&scope, &shorter(), None).await.unwrap();
    assert!(report.embedded > 0, "{report:?}");
    let stored = opsweave::VectorIndex::stored_model(&*store, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.dim, 64);
    let hits = asking
        .recall(&scope, "website outage", &RecallOptions::default())
        .await
        .unwrap();
    assert!(
        hits.iter().any(|h| h
            .explanation
            .found_by
            .iter()
            .any(|r| r.ranker == Ranker::Dense)),
        "dense k-NN answers at 64 dimensions: {hits:?}"
    );
}
