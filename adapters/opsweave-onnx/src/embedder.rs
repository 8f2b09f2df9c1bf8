//! The [`Embedder`] over an ONNX encoder: tokenize, chunk, batch by length, run, pool.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use opsweave_core::embed::{EmbedKind, Embedder, Embeddings, ModelInfo};
use opsweave_core::{Error, ModelCall, Result};
use ort::session::{Session, SessionInputValue};
use ort::value::{Outlet, Tensor, TensorElementType};
use tokenizers::Encoding;

use crate::config::{ModelFiles, ModelSpec, OnnxConfig, Pooling, SentenceTransformersLayout};
use crate::fingerprint::{fingerprint, Shaping};
use crate::pool::{ort_error, SessionPool};
use crate::runtime::runtime;
use crate::tokenize::{Chunk, Prefix, TextTokenizer};

/// Embeds texts with a BERT-family encoder run in-process by ONNX Runtime.
///
/// Cheap to clone; clones share the sessions.
#[derive(Clone)]
pub struct OnnxEmbedder {
    engine: Arc<Engine>,
}

impl std::fmt::Debug for OnnxEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEmbedder")
            .field("info", &self.engine.info)
            .field("pooling", &self.engine.spec.pooling)
            .field("normalize", &self.engine.spec.normalize)
            .finish_non_exhaustive()
    }
}

/// Names of the model's inputs; `token_type_ids` only when the graph takes it.
struct Inputs {
    ids: String,
    mask: String,
    type_ids: Option<String>,
}

/// Which output to read and whether it is already one vector per row.
struct Output {
    name: String,
    pooled: bool,
}

struct Engine {
    info: ModelInfo,
    spec: ModelSpec,
    tokenizer: TextTokenizer,
    pool: SessionPool,
    inputs: Inputs,
    output: Output,
    token_budget: usize,
    sorted_batches: bool,
    query_prefix: Option<String>,
    document_prefix: Option<String>,
    /// The prefixes, tokenized for every chunk.
    query_chunk_prefix: Option<Prefix>,
    document_chunk_prefix: Option<Prefix>,
}

impl OnnxEmbedder {
    /// Loads ONNX Runtime (once per process), the tokenizer and the model, and checks them with
    /// one probe inference. Blocking: call it from a blocking thread in async code.
    pub fn open(config: OnnxConfig) -> Result<Self> {
        let files = ModelFiles::locate(&config.model_dir)?;
        let layout = SentenceTransformersLayout::read(&config.model_dir)?;
        let spec = ModelSpec::resolve(&config, &layout)?;
        let tokenizer = TextTokenizer::load(&files.tokenizer, spec.max_tokens, spec.chunk_overlap)?;
        let chunk_prefix = |text: &Option<String>, field: &str| {
            text.as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| tokenizer.prefix(t, field))
                .transpose()
        };
        let query_chunk_prefix = chunk_prefix(&config.query_prefix, "query_prefix")?;
        let document_chunk_prefix = chunk_prefix(&config.document_prefix, "document_prefix")?;
        let rt = runtime(config.ort_dylib_path.as_deref())?;
        let pool = SessionPool::new(
            rt,
            files.model.clone(),
            config.intra_threads,
            config.sessions,
        )?;
        let model_file = files.model.display().to_string();
        let (inputs, output, static_dim) = pool
            .peek(|s| inspect(s, config.output.as_deref()))?
            .map_err(|e| e.in_file(model_file.clone()))?;
        let mut engine = Engine {
            info: ModelInfo {
                name: spec.name.clone(),
                dim: static_dim.unwrap_or(0),
                max_tokens: spec.max_tokens,
                fingerprint: None,
            },
            spec,
            tokenizer,
            pool,
            inputs,
            output,
            token_budget: config.token_budget,
            sorted_batches: config.sorted_batches,
            query_prefix: config.query_prefix,
            document_prefix: config.document_prefix,
            query_chunk_prefix,
            document_chunk_prefix,
        };
        // A probe both fills a dynamic dimension and proves the graph runs with these inputs.
        let probe = engine
            .embed_texts(vec!["opsweave".to_owned()], EmbedKind::Document)
            .map_err(|e| e.in_file(model_file.clone()))?;
        let dim = probe.vectors.first().map_or(0, Vec::len);
        if static_dim.is_some_and(|d| d != dim) || dim == 0 {
            return Err(Error::internal(format!(
                "the model's output says {} dimensions but a probe produced {dim}",
                static_dim.unwrap_or(0)
            ))
            .in_file(model_file));
        }
        if let Some(expected) = engine.spec.expected_dim {
            if expected != dim {
                return Err(Error::invalid(format!(
                    "the model produces {dim}-dimensional vectors, but {} expects {expected}",
                    config.preset.map_or_else(
                        || "1_Pooling/config.json".to_owned(),
                        |p| format!("preset {p}")
                    )
                ))
                .in_file(model_file));
            }
        }
        engine.info.dim = dim;
        let print = fingerprint(
            &files,
            &Shaping {
                spec: &engine.spec,
                output: &engine.output.name,
                query_prefix: engine.query_prefix.as_deref(),
                document_prefix: engine.document_prefix.as_deref(),
            },
        )?;
        engine.info.fingerprint = Some(print);
        Ok(Self {
            engine: Arc::new(engine),
        })
    }

    /// Pooling in use.
    pub fn pooling(&self) -> Pooling {
        self.engine.spec.pooling
    }

    /// Whether vectors are scaled to unit length.
    pub fn normalizes(&self) -> bool {
        self.engine.spec.normalize
    }

    /// Whether the model takes `token_type_ids`.
    pub fn takes_token_type_ids(&self) -> bool {
        self.engine.inputs.type_ids.is_some()
    }

    /// Embeds on the calling thread; [`Embedder::embed`] runs this on a blocking thread.
    pub fn embed_blocking(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Embeddings> {
        self.engine.embed_texts(texts, kind)
    }
}

#[async_trait]
impl Embedder for OnnxEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.engine.info
    }

    async fn embed(&self, texts: &[String], kind: EmbedKind) -> Result<Embeddings> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        let texts = texts.to_vec();
        // Inference is CPU-bound for milliseconds to seconds: keep it off the async workers.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let engine = Arc::clone(&self.engine);
                handle
                    .spawn_blocking(move || engine.embed_texts(texts, kind))
                    .await
                    .map_err(|e| {
                        Error::internal(format!("embedding task failed: {e}")).with_source(e)
                    })?
            }
            Err(_) => self.engine.embed_texts(texts, kind),
        }
    }
}

fn is_int64(outlet: &Outlet) -> bool {
    outlet.dtype().tensor_type() == Some(TensorElementType::Int64)
}

/// What [`choose_output`] needs to know of a graph output.
struct OutletShape<'a> {
    name: &'a str,
    rank: Option<usize>,
    float32: bool,
}

/// Output names of token vectors ([batch, tokens, dim]) in common exports.
const TOKEN_OUTPUTS: [&str; 2] = ["last_hidden_state", "token_embeddings"];
/// Output names of sentence vectors ([batch, dim]) in common exports.
const SENTENCE_OUTPUTS: [&str; 2] = ["sentence_embedding", "dense_vecs"];

/// Picks the output to read (its index, and whether it is already pooled).
///
/// Only well-known names, the configured name or a lone output are trusted: exports such as
/// BGE-M3's carry other float outputs of the same rank (ColBERT vectors), and pooling one of
/// those would give plausible but wrong vectors.
fn choose_output(outputs: &[OutletShape<'_>], wanted: Option<&str>) -> Result<(usize, bool)> {
    let names = || {
        outputs
            .iter()
            .map(|o| o.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shape_of = |i: usize| -> Result<(usize, bool)> {
        let o = &outputs[i];
        match (o.float32, o.rank) {
            (true, Some(3)) => Ok((i, false)),
            (true, Some(2)) => Ok((i, true)),
            _ => Err(Error::invalid(format!(
                "the model's output `{}` is not float32 [batch, tokens, dim] or [batch, dim]",
                o.name
            ))
            .on_field("output")),
        }
    };
    if let Some(wanted) = wanted {
        let i = outputs
            .iter()
            .position(|o| o.name == wanted)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the model has no output `{wanted}` (outputs: {})",
                    names()
                ))
                .on_field("output")
            })?;
        return shape_of(i);
    }
    // Token vectors first, so that pooling follows the configuration.
    for known in TOKEN_OUTPUTS.iter().chain(&SENTENCE_OUTPUTS) {
        if let Some(i) = outputs.iter().position(|o| o.name == *known) {
            return shape_of(i);
        }
    }
    if outputs.len() == 1 {
        return shape_of(0);
    }
    Err(Error::invalid(format!(
        "cannot tell which model output holds the embeddings (outputs: {}); name it with the \
         `output` option",
        names()
    ))
    .on_field("output"))
}

/// Finds the inputs and the output to read, and the dimension when the graph states it.
fn inspect(
    session: &Session,
    wanted_output: Option<&str>,
) -> Result<(Inputs, Output, Option<usize>)> {
    let mut ids = None;
    let mut mask = None;
    let mut type_ids = None;
    for input in session.inputs() {
        let slot = match input.name() {
            "input_ids" => &mut ids,
            "attention_mask" => &mut mask,
            "token_type_ids" => &mut type_ids,
            other => {
                return Err(Error::invalid(format!(
                    "the model takes an input `{other}`; only input_ids, attention_mask and \
                     token_type_ids are supported"
                )))
            }
        };
        if !is_int64(input) {
            return Err(Error::invalid(format!(
                "the model's input `{}` is {:?}; int64 is expected",
                input.name(),
                input.dtype()
            )));
        }
        *slot = Some(input.name().to_owned());
    }
    let (Some(ids), Some(mask)) = (ids, mask) else {
        return Err(Error::invalid(
            "the model must take both input_ids and attention_mask",
        ));
    };
    let outputs: Vec<OutletShape<'_>> = session
        .outputs()
        .iter()
        .map(|o| OutletShape {
            name: o.name(),
            rank: o.dtype().tensor_shape().map(|s| s.len()),
            float32: o.dtype().tensor_type() == Some(TensorElementType::Float32),
        })
        .collect();
    let (index, pooled) = choose_output(&outputs, wanted_output)?;
    let outlet = &session.outputs()[index];
    let static_dim = outlet
        .dtype()
        .tensor_shape()
        .and_then(|s| s.last().copied())
        .and_then(|d| usize::try_from(d).ok())
        .filter(|d| *d > 0);
    Ok((
        Inputs {
            ids,
            mask,
            type_ids,
        },
        Output {
            name: outlet.name().to_owned(),
            pooled,
        },
        static_dim,
    ))
}

impl Engine {
    fn embed_texts(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Embeddings> {
        if texts.is_empty() {
            return Ok(Embeddings::default());
        }
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(
                Error::invalid(format!("text {i} is empty; there is nothing to embed"))
                    .on_field(format!("texts[{i}]")),
            );
        }
        let prefix = match kind {
            EmbedKind::Query => self.query_chunk_prefix.as_ref(),
            EmbedKind::Document => self.document_chunk_prefix.as_ref(),
        };
        let count = texts.len();
        let chunks = self.tokenizer.chunks(texts, prefix)?;
        // A tokenizer without special tokens can turn text it normalises away into no tokens.
        if let Some(c) = chunks.iter().find(|c| c.encoding.is_empty()) {
            return Err(Error::invalid(format!(
                "text {} has no tokens after normalisation; there is nothing to embed",
                c.text
            ))
            .on_field(format!("texts[{}]", c.text)));
        }
        // What the model read: special tokens and the overlap of chunks count, padding does not.
        let tokens: u64 = chunks.iter().map(|c| c.encoding.len() as u64).sum();
        let started = std::time::Instant::now();
        let chunk_vectors = self.run_batches(&chunks)?;

        let dim = chunk_vectors.first().map_or(0, Vec::len);
        let mut sums = vec![vec![0.0f64; dim]; count];
        let mut parts = vec![0usize; count];
        for (chunk, vector) in chunks.iter().zip(&chunk_vectors) {
            parts[chunk.text] += 1;
            for (s, v) in sums[chunk.text].iter_mut().zip(vector) {
                *s += f64::from(*v);
            }
        }
        let vectors = sums
            .into_iter()
            .zip(parts)
            .map(|(sum, n)| {
                // Every text yields at least one chunk (it holds special tokens at least).
                let n = n.max(1) as f64;
                let mut v: Vec<f32> = sum.into_iter().map(|s| (s / n) as f32).collect();
                if self.spec.normalize {
                    normalize(&mut v);
                }
                v
            })
            .collect();
        let call = ModelCall {
            embedding_tokens: tokens,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..ModelCall::default()
        };
        Ok(Embeddings {
            vectors,
            tokens,
            calls: vec![call],
        })
    }

    /// Runs every chunk, longest first (unless `sorted_batches` is off), in batches that fit
    /// the token budget; vectors come back in chunk order.
    fn run_batches(&self, chunks: &[Chunk]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        if self.sorted_batches {
            // Similar lengths share a batch, so little of each batch is padding.
            order.sort_by_key(|&i| std::cmp::Reverse(chunks[i].encoding.len()));
        }
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); chunks.len()];
        let mut session = self.pool.take()?;
        let mut start = 0;
        while start < order.len() {
            let rows = batch_rows(&order[start..], self.token_budget, |i| {
                chunks[i].encoding.len()
            });
            let batch = &order[start..start + rows];
            let mut encodings: Vec<Encoding> =
                batch.iter().map(|&i| chunks[i].encoding.clone()).collect();
            self.tokenizer.pad(&mut encodings)?;
            let pooled = self.run_batch(session.get_mut(), &encodings)?;
            for (&i, v) in batch.iter().zip(pooled) {
                vectors[i] = v;
            }
            start += rows;
        }
        Ok(vectors)
    }

    fn run_batch(&self, session: &mut Session, batch: &[Encoding]) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let len = batch.first().map_or(0, Encoding::len);
        let mut ids = Vec::with_capacity(rows * len);
        let mut mask = Vec::with_capacity(rows * len);
        let mut type_ids = Vec::with_capacity(rows * len);
        for e in batch {
            if e.len() != len {
                return Err(Error::internal("padding left rows of different lengths"));
            }
            ids.extend(e.get_ids().iter().map(|&x| i64::from(x)));
            mask.extend(e.get_attention_mask().iter().map(|&x| i64::from(x)));
            type_ids.extend(e.get_type_ids().iter().map(|&x| i64::from(x)));
        }
        let shape = [rows, len];
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = vec![
            (
                Cow::from(self.inputs.ids.as_str()),
                Tensor::from_array((shape, ids)).map_err(ort_error)?.into(),
            ),
            (
                Cow::from(self.inputs.mask.as_str()),
                Tensor::from_array((shape, mask.clone()))
                    .map_err(ort_error)?
                    .into(),
            ),
        ];
        if let Some(name) = &self.inputs.type_ids {
            inputs.push((
                Cow::from(name.as_str()),
                Tensor::from_array((shape, type_ids))
                    .map_err(ort_error)?
                    .into(),
            ));
        }
        let outputs = session.run(inputs).map_err(ort_error)?;
        let value = outputs.get(&self.output.name).ok_or_else(|| {
            Error::internal(format!("the model did not return `{}`", self.output.name))
        })?;
        let (out_shape, data) = value.try_extract_tensor::<f32>().map_err(ort_error)?;
        let dims: Vec<usize> = out_shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect();
        if self.output.pooled {
            let [r, dim] = dims[..] else {
                return Err(Error::internal(format!("unexpected output shape {dims:?}")));
            };
            if r != rows || dim == 0 || data.len() != r * dim {
                return Err(Error::internal(format!("unexpected output shape {dims:?}")));
            }
            return Ok(data
                .chunks_exact(dim)
                .map(|row| self.finish(row.to_vec()))
                .collect());
        }
        let [r, t, dim] = dims[..] else {
            return Err(Error::internal(format!("unexpected output shape {dims:?}")));
        };
        if r != rows || t != len || dim == 0 || data.len() != r * t * dim {
            return Err(Error::internal(format!(
                "unexpected output shape {dims:?} for a batch of {rows} × {len} tokens"
            )));
        }
        Ok((0..rows)
            .map(|row| {
                let tokens = &data[row * t * dim..(row + 1) * t * dim];
                let row_mask = &mask[row * len..(row + 1) * len];
                self.finish(pool(self.spec.pooling, tokens, row_mask, dim))
            })
            .collect())
    }

    /// Normalises one chunk's vector when the model's pipeline does.
    fn finish(&self, mut v: Vec<f32>) -> Vec<f32> {
        if self.spec.normalize {
            normalize(&mut v);
        }
        v
    }
}

/// How many of `order`'s next chunks form one batch: as many as fit `budget` padded tokens
/// (rows × longest row), at least one. On chunks sorted longest first this is
/// `budget / longest`.
fn batch_rows(order: &[usize], budget: usize, len: impl Fn(usize) -> usize) -> usize {
    let mut longest = 0;
    let mut rows = 0;
    for &i in order {
        let next_longest = longest.max(len(i)).max(1);
        if rows > 0 && (rows + 1) * next_longest > budget {
            break;
        }
        longest = next_longest;
        rows += 1;
    }
    rows
}

/// Pools one row of token vectors (`tokens`: len × dim, row-major).
fn pool(pooling: Pooling, tokens: &[f32], mask: &[i64], dim: usize) -> Vec<f32> {
    match pooling {
        Pooling::Cls => tokens[..dim].to_vec(),
        Pooling::Mean => {
            let mut sum = vec![0.0f32; dim];
            let mut n = 0.0f32;
            for (token, &m) in tokens.chunks_exact(dim).zip(mask) {
                if m != 0 {
                    n += 1.0;
                    for (s, x) in sum.iter_mut().zip(token) {
                        *s += x;
                    }
                }
            }
            // sentence-transformers clamps the count the same way.
            let n = n.max(1e-9);
            sum.iter_mut().for_each(|s| *s /= n);
            sum
        }
    }
}

/// Scales to unit length, like `torch.nn.functional.normalize` (eps 1e-12).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let norm = norm.max(1e-12) as f32;
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlet(name: &str, rank: usize) -> OutletShape<'_> {
        OutletShape {
            name,
            rank: Some(rank),
            float32: true,
        }
    }

    #[test]
    fn output_choice_trusts_known_names_only() {
        // BGE-M3's multi-vector export: dense_vecs is right, colbert_vecs is rank 3 but wrong.
        let bge = [
            outlet("dense_vecs", 2),
            outlet("sparse_vecs", 3),
            outlet("colbert_vecs", 3),
        ];
        assert_eq!(choose_output(&bge, None).ok(), Some((0, true)));
        let st = [
            outlet("token_embeddings", 3),
            outlet("sentence_embedding", 2),
        ];
        assert_eq!(choose_output(&st, None).ok(), Some((0, false)));
        assert_eq!(
            choose_output(&[outlet("out", 3)], None).ok(),
            Some((0, false))
        );
        let unknown = [outlet("a", 3), outlet("b", 2)];
        let err = choose_output(&unknown, None).expect_err("ambiguous");
        assert!(err.message().contains("a, b"), "{err}");
        assert_eq!(choose_output(&unknown, Some("b")).ok(), Some((1, true)));
        assert!(choose_output(&unknown, Some("c")).is_err());
        let ints = [OutletShape {
            name: "last_hidden_state",
            rank: Some(3),
            float32: false,
        }];
        assert!(choose_output(&ints, None).is_err());
    }

    #[test]
    fn batches_fill_the_padded_token_budget() {
        let lens = [10, 10, 8, 3, 3, 2];
        let len = |i: usize| lens[i];
        let all: Vec<usize> = (0..lens.len()).collect();
        // Longest first: 30 / 10 = 3 rows.
        assert_eq!(batch_rows(&all, 30, len), 3);
        // A long chunk after short ones ends the batch when the padded size would overflow.
        let mixed = [3, 4, 0, 1];
        assert_eq!(batch_rows(&mixed, 25, len), 2);
        assert_eq!(batch_rows(&mixed, 40, len), 4);
        // One chunk over the budget still goes, alone.
        assert_eq!(batch_rows(&all, 5, len), 1);
        assert_eq!(batch_rows(&[], 5, len), 0);
    }

    #[test]
    fn mean_pooling_skips_padding() {
        let tokens = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        let v = pool(Pooling::Mean, &tokens, &[1, 1, 0], 2);
        assert_eq!(v, vec![2.0, 3.0]);
        let v = pool(Pooling::Cls, &tokens, &[1, 1, 0], 2);
        assert_eq!(v, vec![1.0, 2.0]);
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut z = [0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }
}
