//! Embedding: which model (a spec string such as `onnx:all-minilm-l6-v2` or `openai:MODEL`), and
//! the job that embeds every record whose content changed since its last vector.
//!
//! The job is resumable by construction: it asks the vector index which records are stale (no
//! vector of this model, or one made from another content hash) and commits each batch's
//! vectors before the next, so a killed run leaves finished batches behind and the next run
//! continues with what is still stale. Runs over the same records at once share them: each
//! takes its batches in a random order and asks again before each batch which of its records
//! are still stale, so a record is embedded (and billed) twice only when both runs pick its
//! batch at the same moment.

use crate::Weave;
use chrono::Utc;
use opsweave_core::recall::embedding_text;
use opsweave_core::vector::check_stored_model;
use opsweave_core::{
    EmbedKind, Embedder, Embeddings, Error, JobId, Operation, RecordId, Result, Scope, UsageEvent,
    VectorBulkLoad, VectorIndex, VectorItem,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The job kind [`Weave::enqueue_embed`] queues and [`Weave::run_embed_job`] runs.
pub const EMBED_JOB: &str = "embed";

/// Stale records listed per query while planning an embedding run.
const STALE_PAGE: usize = 10_000;

/// The records an embedding job embeds, by scope: each scope's ids in id order.
struct StalePlan(BTreeMap<Scope, Vec<RecordId>>);

impl StalePlan {
    /// Reads the records of `scope` whose vectors of `model` are missing or stale.
    async fn read(vectors: &dyn VectorIndex, model: &str, scope: &Scope) -> Result<Self> {
        let mut plan: BTreeMap<Scope, Vec<RecordId>> = BTreeMap::new();
        let mut after: Option<RecordId> = None;
        loop {
            let page = vectors.stale(model, scope, after, STALE_PAGE).await?;
            let full = page.len() == STALE_PAGE;
            after = page.last().map(|s| s.id);
            for stale in page {
                plan.entry(stale.scope).or_default().push(stale.id);
            }
            if !full {
                break;
            }
        }
        Ok(Self(plan))
    }

    fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// Batches of at most `size` ids, none spanning two scopes.
    fn batches(&self, size: usize) -> impl Iterator<Item = (&Scope, &[RecordId])> {
        self.0
            .iter()
            .flat_map(move |(scope, ids)| ids.chunks(size).map(move |chunk| (scope, chunk)))
    }
}

/// Which embedding model to use, as written in configuration and on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EmbedderSpec {
    /// `onnx:DIR` or `onnx:PRESET`: an encoder run in-process by ONNX Runtime. A preset name
    /// (`bge-m3`, `all-minilm-l6-v2`) is looked up under the configured model directory.
    Onnx(String),
    /// `openai:MODEL`: the `/v1/embeddings` API of OpenAI or a compatible server.
    OpenAi(String),
}

/// Preset names the ONNX adapter knows; the facade keeps the list so a spec parses (and errors
/// name the presets) even in a build without the `onnx` feature.
const ONNX_PRESETS: [&str; 2] = ["bge-m3", "all-minilm-l6-v2"];

impl FromStr for EmbedderSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let text = s.trim();
        let bad = |why: &str| {
            Error::invalid(format!(
                "embedding model `{text}` {why}: expected onnx:DIR, onnx:{}, onnx:{} or openai:MODEL",
                ONNX_PRESETS[0], ONNX_PRESETS[1]
            ))
            .on_field("model")
        };
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| bad("names no provider"))?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(bad("names no model"));
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "onnx" => Ok(Self::Onnx(rest.to_string())),
            "openai" => Ok(Self::OpenAi(rest.to_string())),
            _ => Err(bad("has an unknown provider")),
        }
    }
}

impl TryFrom<String> for EmbedderSpec {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<EmbedderSpec> for String {
    fn from(spec: EmbedderSpec) -> Self {
        spec.to_string()
    }
}

impl std::fmt::Display for EmbedderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Onnx(model) => write!(f, "onnx:{model}"),
            Self::OpenAi(model) => write!(f, "openai:{model}"),
        }
    }
}

impl EmbedderSpec {
    /// The preset an `onnx:` spec names, when it names one rather than a directory.
    pub fn onnx_preset(&self) -> Option<&'static str> {
        match self {
            Self::Onnx(model) => ONNX_PRESETS
                .into_iter()
                .find(|p| p.eq_ignore_ascii_case(model)),
            Self::OpenAi(_) => None,
        }
    }
}

/// Where an `onnx:` spec's model lives: a directory given outright, or for a preset
/// `<model_dir>/<preset>` when that holds a model, else `model_dir` itself.
// Only the ONNX embedder opens a model directory; the function stays testable without it.
#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
pub fn onnx_model_dir(spec: &str, model_dir: Option<&Path>) -> Result<(PathBuf, Option<String>)> {
    let as_dir = Path::new(spec);
    let preset = ONNX_PRESETS
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case(spec));
    let Some(preset) = preset else {
        if as_dir.is_dir() {
            return Ok((as_dir.to_path_buf(), None));
        }
        return Err(Error::invalid(format!(
            "onnx:{spec}: `{spec}` is neither a model directory nor a preset ({})",
            ONNX_PRESETS.join(", ")
        ))
        .on_field("model"));
    };
    if as_dir.is_dir() && spec.contains(std::path::MAIN_SEPARATOR) {
        return Ok((as_dir.to_path_buf(), Some(preset.to_string())));
    }
    let Some(base) = model_dir else {
        return Err(Error::invalid(format!(
            "onnx:{preset} needs the model's directory: set embed.model_dir in the configuration \
             or OPSWEAVE_MODEL_DIR (a folder holding model.onnx and tokenizer.json, or one with a \
             `{preset}` subfolder that does)"
        ))
        .on_field("model_dir"));
    };
    let nested = base.join(preset);
    let dir = if nested.join("model.onnx").is_file() || nested.join("onnx/model.onnx").is_file() {
        nested
    } else {
        base.to_path_buf()
    };
    Ok((dir, Some(preset.to_string())))
}

/// Live progress of an embedding run, readable from another task (for progress bars).
#[derive(Debug, Default)]
pub struct EmbedProgress {
    /// Records planned for this run (known once the stale list is read).
    pub total: AtomicU64,
    /// Records handled so far (embedded or skipped).
    pub done: AtomicU64,
    /// True while a bulk load's index is built, after the last record (it can take minutes).
    pub indexing: AtomicBool,
}

impl EmbedProgress {
    /// The share done (below 1 until the run ends: a bulk load's index build comes last) and
    /// its message, `DONE/PLANNED records`.
    pub fn share(&self) -> (f64, String) {
        let planned = self.total.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        let fraction = if planned == 0 {
            0.0
        } else {
            (done as f64 / planned as f64).min(1.0) * 0.99
        };
        (fraction, format!("{done}/{planned} records"))
    }
}

/// What an embedding run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedReport {
    /// The model's name as recorded with each vector.
    pub model: String,
    /// Its dimension.
    pub dim: usize,
    /// Records found stale at the start.
    pub stale: u64,
    /// Records embedded and stored.
    pub embedded: u64,
    /// Records with no text to embed (left without a vector).
    pub skipped_empty: u64,
    /// Records found current (or deleted) when their batch came up: another run embedded
    /// (or removed) them meanwhile.
    #[serde(default)]
    pub embedded_elsewhere: u64,
    /// Model calls made.
    pub calls: u64,
    /// Tokens the model reported.
    pub tokens: u64,
    /// Whether the vectors were loaded in bulk, the index built once over them at the end (a
    /// large first embedding on PostgreSQL; see `VectorIndex::begin_bulk_load`).
    #[serde(default)]
    pub bulk_load: bool,
    /// Wall time.
    pub seconds: f64,
}

impl Weave {
    /// The embedding model recall and memory use: the one given with [`Self::with_embedder`],
    /// else the one `embed.model` in the configuration names (opened once, on first use).
    pub async fn embedder(&self) -> Result<Arc<dyn Embedder>> {
        if let Some(embedder) = &self.embedder {
            return Ok(embedder.clone());
        }
        let Some(spec) = self.config().embed.model.clone() else {
            return Err(Error::invalid(
                "no embedding model is configured: set embed.model (or OPSWEAVE_EMBED_MODEL) to \
                 onnx:DIR, onnx:bge-m3, onnx:all-minilm-l6-v2 or openai:MODEL",
            )
            .on_field("model"));
        };
        let config = self.config.clone();
        self.opened_embedder
            .get_or_try_init(|| async move { open_embedder(&spec, &config).await })
            .await
            .cloned()
    }

    /// Removes every vector stored under `model`'s name, in every scope, and the fingerprint of
    /// the model that made them (see [`VectorIndex::drop_model`]); returns how many went. What
    /// `opsweave embed --replace` does before embedding again with a swapped model.
    pub async fn drop_vectors(&self, model: &str) -> Result<u64> {
        self.vector_index()?.drop_model(model).await
    }

    /// Embeds every record of `scope` whose content changed since its last vector of
    /// `embedder`'s model (or that has none), in batches, each stored before the next.
    pub async fn embed(
        &self,
        scope: &Scope,
        embedder: &dyn Embedder,
        progress: Option<Arc<EmbedProgress>>,
    ) -> Result<EmbedReport> {
        self.embed_in_job(scope, embedder, progress, None).await
    }

    pub(crate) async fn embed_in_job(
        &self,
        scope: &Scope,
        embedder: &dyn Embedder,
        progress: Option<Arc<EmbedProgress>>,
        job: Option<JobId>,
    ) -> Result<EmbedReport> {
        scope.validate()?;
        let started = Instant::now();
        let vectors = self.vector_index()?;
        let info = embedder.info().clone();
        // Before any work: vectors of a swapped model would fail at the first batch's write.
        check_stored_model(&info, vectors.stored_model(&info.name).await?.as_ref())?;
        let progress = progress.unwrap_or_default();
        let stale = StalePlan::read(vectors.as_ref(), &info.name, scope).await?;
        progress.total.store(stale.len() as u64, Ordering::Relaxed);
        let mut report = EmbedReport {
            model: info.name.clone(),
            dim: info.dim,
            stale: stale.len() as u64,
            ..EmbedReport::default()
        };
        let bulk = vectors.begin_bulk_load(&info, stale.len() as u64).await?;
        report.bulk_load = bulk.is_some();
        let written = self
            .embed_batches(
                embedder,
                &stale,
                bulk.as_deref(),
                &progress,
                job,
                &mut report,
            )
            .await;
        // Also after a failure: the vectors written so far get their index back at once.
        let finished = match bulk {
            Some(bulk) => {
                progress.indexing.store(true, Ordering::Relaxed);
                let finished = bulk.finish().await;
                progress.indexing.store(false, Ordering::Relaxed);
                finished
            }
            None => Ok(()),
        };
        written?;
        finished?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Embeds the records of `stale` batch by batch, each stored (through `bulk` when given)
    /// before the next, and counts them in `report`. A batch holds records of one scope, so
    /// each model call is metered to the scope whose records it embedded.
    async fn embed_batches(
        &self,
        embedder: &dyn Embedder,
        stale: &StalePlan,
        bulk: Option<&dyn VectorBulkLoad>,
        progress: &EmbedProgress,
        job: Option<JobId>,
        report: &mut EmbedReport,
    ) -> Result<()> {
        let vectors = self.vector_index()?;
        let info = embedder.info().clone();
        let batch_size = self.config().embed.batch_size.max(1);
        let mut batches: Vec<(&Scope, &[RecordId])> = stale.batches(batch_size).collect();
        // Runs over the same records at once (two embed jobs, two workers) each take the
        // batches in their own random order and skip what another run already embedded, so
        // they meet on a batch rarely instead of embedding (and paying for) everything twice.
        fastrand::Rng::new().shuffle(&mut batches);
        for (n, (scope, planned)) in batches.into_iter().enumerate() {
            let still_stale;
            let ids = if n == 0 {
                planned
            } else {
                still_stale = vectors.stale_among(&info.name, scope, planned).await?;
                report.embedded_elsewhere += (planned.len() - still_stale.len()) as u64;
                &still_stale[..]
            };
            let records = self.store().records_by_id(scope, ids).await?;
            let mut texts = Vec::with_capacity(records.len());
            let mut items = Vec::with_capacity(records.len());
            for record in records {
                let text = embedding_text(&record);
                if text.is_empty() {
                    report.skipped_empty += 1;
                    continue;
                }
                texts.push(text);
                items.push(VectorItem {
                    id: record.id,
                    scope: record.scope,
                    entity: record.entity,
                    source_kind: record.source.kind,
                    content_hash: record.content_hash as u64,
                    vector: Vec::new(),
                });
            }
            if !texts.is_empty() {
                let out = self
                    .embed_metered(embedder, &texts, EmbedKind::Document, scope, job)
                    .await?;
                report.calls += out.calls.len().max(1) as u64;
                report.tokens += out.tokens;
                for (item, vector) in items.iter_mut().zip(out.vectors) {
                    item.vector = vector;
                }
                report.embedded += items.len() as u64;
                match bulk {
                    Some(bulk) => bulk.write(items).await?,
                    None => vectors.upsert(&info, items).await?,
                }
            }
            // Records deleted since the plan was made count as handled too.
            progress
                .done
                .fetch_add(planned.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Embeds `texts` and meters the model calls to `scope`: those of a result before it is
    /// checked, and those an error reports were made before it (a paid service bills them).
    pub(crate) async fn embed_metered(
        &self,
        embedder: &dyn Embedder,
        texts: &[String],
        kind: EmbedKind,
        scope: &Scope,
        job: Option<JobId>,
    ) -> Result<Embeddings> {
        let model = &embedder.info().name;
        let out = match embedder.embed(texts, kind).await {
            Ok(out) => out,
            Err(e) => {
                if !e.spent().is_empty() {
                    let spent = Embeddings {
                        vectors: Vec::new(),
                        tokens: e.spent().iter().map(|c| c.embedding_tokens).sum(),
                        calls: e.spent().to_vec(),
                    };
                    // The model's error is the one to report, saying that its billed calls
                    // went unmetered when the ledger fails as well.
                    if let Err(ledger) = self.meter_embedding(scope, model, &spent, job).await {
                        let (calls, tokens) = (spent.calls.len(), spent.tokens);
                        return Err(e.with_note(format!(
                            "{calls} model call(s) made before it ({tokens} tokens) could not \
                             be metered: {ledger}"
                        )));
                    }
                }
                return Err(e);
            }
        };
        self.meter_embedding(scope, model, &out, job).await?;
        check_vectors(&out, texts.len(), embedder.info().dim)?;
        Ok(out)
    }

    /// Writes one usage event per model call in `out` when a usage ledger is attached.
    pub(crate) async fn meter_embedding(
        &self,
        scope: &Scope,
        model: &str,
        out: &Embeddings,
        job: Option<JobId>,
    ) -> Result<()> {
        let Some(ledger) = &self.usage else {
            return Ok(());
        };
        let at = Utc::now();
        let events: Vec<UsageEvent> = if out.calls.is_empty() {
            vec![UsageEvent {
                scope: scope.clone(),
                operation: Operation::Embed,
                model: model.to_string(),
                input_tokens: 0,
                output_tokens: 0,
                embedding_tokens: out.tokens,
                latency_ms: 0,
                job,
                at,
            }]
        } else {
            out.calls
                .iter()
                .map(|call| UsageEvent {
                    scope: scope.clone(),
                    operation: Operation::Embed,
                    model: model.to_string(),
                    input_tokens: call.input_tokens,
                    output_tokens: call.output_tokens,
                    embedding_tokens: call.embedding_tokens,
                    latency_ms: call.latency_ms,
                    job,
                    at,
                })
                .collect()
        };
        ledger.record_usage(&events).await
    }

    /// The vector index, or a clear error when this handle has none.
    pub(crate) fn vector_index(&self) -> Result<Arc<dyn VectorIndex>> {
        self.vectors().cloned().ok_or_else(|| {
            Error::unavailable(
                "this opsweave handle has no vector index (give one with with_vectors)",
            )
        })
    }

    /// Queues an embedding run of `scope` with the model `spec` names. No idempotency key: keys
    /// are kept for good, and a later run must embed what changed since; a run that finds
    /// nothing stale finishes at once.
    pub async fn enqueue_embed(
        &self,
        scope: &Scope,
        spec: &EmbedderSpec,
    ) -> Result<opsweave_core::Job> {
        let job = opsweave_core::NewJob::new(EMBED_JOB, scope.clone(), self.embed_payload(spec)?);
        self.enqueue(job).await
    }

    /// An [`EMBED_JOB`]'s payload for `spec`: `{"model": SPEC}`, plus `"name"` when
    /// `embed.model_name` names this model, so that whichever worker runs the job stores the
    /// vectors under the name this handle recalls with.
    pub fn embed_payload(&self, spec: &EmbedderSpec) -> Result<serde_json::Value> {
        let mut payload = serde_json::json!({ "model": spec.to_string() });
        if let Some(name) = model_name_for(spec, self.config())? {
            payload["name"] = serde_json::Value::String(name);
        }
        Ok(payload)
    }

    /// Runs a claimed [`EMBED_JOB`]: opens the model its payload names, embeds, and reports
    /// progress through the queue's heartbeat while it runs. The caller completes or fails the job.
    pub async fn run_embed_job(
        &self,
        job: &opsweave_core::Job,
        worker: &str,
    ) -> Result<EmbedReport> {
        let embedder = self.job_embedder(job).await?;
        let progress = Arc::new(EmbedProgress::default());
        let jobs = self.jobs().cloned();
        let watch = progress.clone();
        let id = job.id;
        let worker_name = worker.to_string();
        let beat = jobs.map(|jobs| {
            tokio::spawn(async move {
                let lease = std::time::Duration::from_secs(60);
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    let (fraction, message) = watch.share();
                    let update = opsweave_core::Progress::new(fraction, message);
                    if jobs
                        .heartbeat(id, &worker_name, lease, Some(update))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            })
        });
        // Stopped however the embedding ends, a worker dropping it (abandoning the job) included.
        let _beat = beat.map(StopOnDrop);
        self.embed_for_job(job, &*embedder, Some(progress)).await
    }
}

/// A spawned task that stops when its owner ends or is dropped.
struct StopOnDrop(tokio::task::JoinHandle<()>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Weave {
    /// Opens the model an [`EMBED_JOB`]'s payload names (`{"model": SPEC}`).
    pub(crate) async fn job_embedder(&self, job: &opsweave_core::Job) -> Result<Arc<dyn Embedder>> {
        if job.kind != EMBED_JOB {
            return Err(Error::invalid(format!(
                "job {} is a `{}` job, not `{EMBED_JOB}`",
                job.id, job.kind
            )));
        }
        let spec: EmbedderSpec = job
            .payload
            .get("model")
            .and_then(|m| m.as_str())
            .ok_or_else(|| Error::invalid("embed job payload has no `model`").on_field("model"))?
            .parse()?;
        // The name travels with the job; without one, this worker's embed.model_name applies
        // when the job names the worker's own configured model (see `open_embedder`).
        match job.payload.get("name") {
            None | Some(serde_json::Value::Null) => {
                open_embedder(&spec.to_string(), self.config()).await
            }
            Some(serde_json::Value::String(name)) => {
                let mut config = self.config().clone();
                config.embed.model = Some(spec.to_string());
                config.embed.model_name = Some(name.clone());
                open_embedder(&spec.to_string(), &config).await
            }
            Some(_) => {
                Err(Error::invalid("an embed job's `name` must be a string")
                    .on_field("payload.name"))
            }
        }
    }

    /// Runs a claimed [`EMBED_JOB`] with an embedder already open (a server's configured model,
    /// shared by its jobs); every model call is metered with the job's id. The caller reports
    /// progress, and completes or fails the job.
    pub async fn embed_for_job(
        &self,
        job: &opsweave_core::Job,
        embedder: &dyn Embedder,
        progress: Option<Arc<EmbedProgress>>,
    ) -> Result<EmbedReport> {
        if job.kind != EMBED_JOB {
            return Err(Error::invalid(format!(
                "job {} is a `{}` job, not `{EMBED_JOB}`",
                job.id, job.kind
            )));
        }
        self.embed_in_job(&job.scope, embedder, progress, Some(job.id))
            .await
    }
}

/// Checks an embedder's answer: one vector per text, each of the model's dimension and finite.
pub(crate) fn check_vectors(out: &Embeddings, texts: usize, dim: usize) -> Result<()> {
    if out.vectors.len() != texts {
        return Err(Error::internal(format!(
            "the embedding model returned {} vectors for {texts} texts",
            out.vectors.len()
        )));
    }
    for (i, v) in out.vectors.iter().enumerate() {
        if v.len() != dim {
            return Err(Error::internal(format!(
                "the embedding model returned a {}-dimensional vector for text {i}, expected {dim}",
                v.len()
            )));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::internal(format!(
                "the embedding model returned a vector with NaN or infinity for text {i}"
            )));
        }
    }
    Ok(())
}

/// Opens the embedder `spec` names, with paths and keys from `config` and the environment.
/// `embed.model_name` names the configured model only (or any model when none is configured):
/// another model opened with the same configuration keeps its own name.
pub async fn open_embedder(spec: &str, config: &crate::Config) -> Result<Arc<dyn Embedder>> {
    let parsed: EmbedderSpec = spec.parse()?;
    let name = model_name_for(&parsed, config)?;
    match parsed {
        EmbedderSpec::Onnx(model) => open_onnx(&model, name, config).await,
        EmbedderSpec::OpenAi(model) => open_openai(&model, name, config).await,
    }
}

/// The `embed.model_name` that applies to `spec`: set, and `spec` is the configured model (or
/// none is configured).
fn model_name_for(spec: &EmbedderSpec, config: &crate::Config) -> Result<Option<String>> {
    let Some(name) = &config.embed.model_name else {
        return Ok(None);
    };
    let configured = config
        .embed
        .model
        .as_deref()
        .map(str::parse::<EmbedderSpec>)
        .transpose()?;
    if configured.is_some_and(|c| &c != spec) {
        return Ok(None);
    }
    opsweave_core::vector::check_model_name(name).map_err(|e| e.on_field("model_name"))?;
    Ok(Some(name.clone()))
}

#[cfg(feature = "onnx")]
async fn open_onnx(
    model: &str,
    name: Option<String>,
    config: &crate::Config,
) -> Result<Arc<dyn Embedder>> {
    let (dir, preset) = onnx_model_dir(model, config.embed.model_dir.as_deref())?;
    let mut onnx = opsweave_onnx::OnnxConfig::new(dir);
    if let Some(preset) = preset {
        onnx = onnx.with_preset(preset.parse()?);
    }
    if let Some(path) = &config.embed.ort_dylib_path {
        onnx = onnx.with_ort_dylib_path(path);
    }
    if let Some(name) = name {
        onnx = onnx.with_name(name);
    }
    let embedder = tokio::task::spawn_blocking(move || opsweave_onnx::OnnxEmbedder::open(onnx))
        .await
        .map_err(|e| Error::internal(format!("opening the ONNX model failed: {e}")))??;
    Ok(Arc::new(embedder))
}

#[cfg(not(feature = "onnx"))]
async fn open_onnx(
    model: &str,
    _name: Option<String>,
    _config: &crate::Config,
) -> Result<Arc<dyn Embedder>> {
    Err(Error::invalid(format!(
        "onnx:{model}: this build of opsweave has no ONNX embedder: enable the `onnx` feature"
    ))
    .on_field("model"))
}

#[cfg(feature = "openai")]
async fn open_openai(
    model: &str,
    name: Option<String>,
    config: &crate::Config,
) -> Result<Arc<dyn Embedder>> {
    if name.is_some() {
        return Err(Error::invalid(format!(
            "embed.model_name names onnx: models only; openai:{model} records its vectors under \
             the model the server is asked for"
        ))
        .on_field("model_name"));
    }
    let mut openai = opsweave_openai::OpenAiConfig::from_env(model);
    if let Some(url) = &config.embed.openai_base_url {
        openai = openai.with_base_url(url.clone());
    }
    if let Some(dimensions) = config.embed.dimensions {
        openai = openai.with_dimensions(dimensions);
    }
    // A model whose dimension is neither configured nor one of OpenAI's own is asked of the server
    // with one short request, tried once (a retried probe would hold an offline user for a
    // minute); with the dimension known, `connect` sends nothing.
    let probe = opsweave_openai::OpenAiEmbedder::connect(openai.clone().with_max_attempts(1))
        .await
        .map_err(|e| match e.kind() {
            opsweave_core::ErrorKind::Unavailable => Error::unavailable(format!(
                "{} (the vector dimension of `{model}` is asked of the server unless \
                 `[embed] dimensions` sets it)",
                e.message()
            )),
            _ => e,
        })?;
    let dim = probe.info().dim;
    let embedder = opsweave_openai::OpenAiEmbedder::new(openai.with_dim(dim))?;
    Ok(Arc::new(embedder))
}

#[cfg(not(feature = "openai"))]
async fn open_openai(
    model: &str,
    _name: Option<String>,
    _config: &crate::Config,
) -> Result<Arc<dyn Embedder>> {
    Err(Error::invalid(format!(
        "openai:{model}: this build of opsweave has no OpenAI embedder: enable the `openai` feature"
    ))
    .on_field("model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_name_what_is_wrong() {
        assert_eq!(
            "onnx:bge-m3".parse::<EmbedderSpec>().unwrap(),
            EmbedderSpec::Onnx("bge-m3".into())
        );
        assert_eq!(
            "openai:text-embedding-3-small"
                .parse::<EmbedderSpec>()
                .unwrap(),
            EmbedderSpec::OpenAi("text-embedding-3-small".into())
        );
        assert_eq!(
            "onnx:/models/x"
                .parse::<EmbedderSpec>()
                .unwrap()
                .to_string(),
            "onnx:/models/x"
        );
        assert_eq!(
            "ONNX:All-MiniLM-L6-v2"
                .parse::<EmbedderSpec>()
                .unwrap()
                .onnx_preset(),
            Some("all-minilm-l6-v2")
        );
        for bad in ["bge-m3", "onnx:", "cohere:embed", ""] {
            let err = bad.parse::<EmbedderSpec>().unwrap_err();
            assert_eq!(err.location().field.as_deref(), Some("model"), "{bad}");
            assert!(err.message().contains("openai:MODEL"), "{err}");
        }
    }

    #[test]
    fn preset_dirs_come_from_the_model_dir() {
        let base = tempfile::tempdir().unwrap();
        let err = onnx_model_dir("bge-m3", None).unwrap_err();
        assert!(err.message().contains("OPSWEAVE_MODEL_DIR"), "{err}");
        let (dir, preset) = onnx_model_dir("bge-m3", Some(base.path())).unwrap();
        assert_eq!(
            (dir.as_path(), preset.as_deref()),
            (base.path(), Some("bge-m3"))
        );
        let nested = base.path().join("bge-m3");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(nested.join("model.onnx"), b"x").unwrap();
        let (dir, _) = onnx_model_dir("bge-m3", Some(base.path())).unwrap();
        assert_eq!(dir, nested);
        let (dir, preset) = onnx_model_dir(base.path().to_str().unwrap(), None).unwrap();
        assert_eq!((dir.as_path(), preset), (base.path(), None));
        let err = onnx_model_dir("no-such-model", None).unwrap_err();
        assert!(
            err.message()
                .contains("neither a model directory nor a preset"),
            "{err}"
        );
    }
}
