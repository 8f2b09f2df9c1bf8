//! What the embedder is told (`OnnxConfig`) and what it works out from the model directory (`ModelSpec`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use opsweave_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The vector of the first (`[CLS]`) token.
    Cls,
    /// The mean of the token vectors, padding excluded.
    Mean,
}

impl FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cls" => Ok(Self::Cls),
            "mean" => Ok(Self::Mean),
            other => Err(Error::invalid(format!(
                "unknown pooling `{other}`: expected `cls` or `mean`"
            ))),
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cls => "cls",
            Self::Mean => "mean",
        })
    }
}

/// Known models whose settings need not be spelled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// BAAI/bge-m3: CLS pooling, 1,024 dims, 8,192 tokens, normalised (the production model).
    #[serde(rename = "bge-m3")]
    BgeM3,
    /// sentence-transformers/all-MiniLM-L6-v2: mean pooling, 384 dims, 256 tokens, normalised.
    #[serde(rename = "all-minilm-l6-v2")]
    AllMiniLmL6V2,
}

impl Preset {
    /// Every preset, for listings and error messages.
    pub const ALL: [Preset; 2] = [Preset::BgeM3, Preset::AllMiniLmL6V2];

    /// The name used in configuration and recorded with each vector.
    pub fn name(self) -> &'static str {
        match self {
            Self::BgeM3 => "bge-m3",
            Self::AllMiniLmL6V2 => "all-minilm-l6-v2",
        }
    }

    /// Pooling the model was trained with.
    pub fn pooling(self) -> Pooling {
        match self {
            Self::BgeM3 => Pooling::Cls,
            Self::AllMiniLmL6V2 => Pooling::Mean,
        }
    }

    /// Vector dimension the model must produce.
    pub fn dim(self) -> usize {
        match self {
            Self::BgeM3 => 1024,
            Self::AllMiniLmL6V2 => 384,
        }
    }

    /// Longest input in tokens before chunking.
    pub fn max_tokens(self) -> usize {
        match self {
            Self::BgeM3 => 8192,
            Self::AllMiniLmL6V2 => 256,
        }
    }

    /// Whether vectors are scaled to unit length.
    pub fn normalize(self) -> bool {
        true
    }
}

impl FromStr for Preset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                Error::invalid(format!(
                    "unknown ONNX model preset `{s}`: expected one of {}",
                    known.join(", ")
                ))
            })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings for [`crate::OnnxEmbedder`]; every `Option` left `None` is read from the model directory
/// (sentence-transformers files) or the preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxConfig {
    /// Directory holding `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`.
    pub model_dir: PathBuf,
    /// Known model whose settings fill what the directory does not say.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Model name recorded with each vector; defaults to the preset name, else the directory name.
    #[serde(default)]
    pub name: Option<String>,
    /// Pooling; overrides the directory and the preset.
    #[serde(default)]
    pub pooling: Option<Pooling>,
    /// Whether to scale vectors to unit length; overrides the directory and the preset.
    #[serde(default)]
    pub normalize: Option<bool>,
    /// Longest chunk in tokens (special tokens included); overrides the directory and the preset.
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Tokens shared by consecutive chunks of a long text; defaults to an eighth of `max_tokens`.
    #[serde(default)]
    pub chunk_overlap: Option<usize>,
    /// Padded tokens (rows × longest row) one inference call may hold.
    #[serde(default = "default_token_budget")]
    pub token_budget: usize,
    /// Whether chunks are sorted by length before batching (the default), so that each batch
    /// pads little; `false` batches them in input order, which only benchmarks want.
    #[serde(default = "default_sorted_batches")]
    pub sorted_batches: bool,
    /// Most ONNX sessions kept for concurrent calls; each holds its own copy of the weights.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Threads per session inside ONNX Runtime; `None` lets ONNX Runtime choose.
    #[serde(default)]
    pub intra_threads: Option<usize>,
    /// Graph output holding the vectors; when `None`, a well-known name (`last_hidden_state`,
    /// `token_embeddings`, `sentence_embedding`, `dense_vecs`) or the only output.
    #[serde(default)]
    pub output: Option<String>,
    /// ONNX Runtime library (`libonnxruntime.so.1.x.y`); when `None`, `ORT_DYLIB_PATH` is used.
    #[serde(default)]
    pub ort_dylib_path: Option<PathBuf>,
    /// Text put before every query (some models, e.g. E5, are trained with one); a query
    /// longer than one chunk gets it before each of its chunks.
    #[serde(default)]
    pub query_prefix: Option<String>,
    /// Text put before every document (before each chunk of a long one).
    #[serde(default)]
    pub document_prefix: Option<String>,
}

fn default_token_budget() -> usize {
    8192
}

fn default_sorted_batches() -> bool {
    true
}

fn default_sessions() -> usize {
    2
}

impl OnnxConfig {
    /// Settings for the model in `model_dir`, everything else read from the directory or defaulted.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            preset: None,
            name: None,
            pooling: None,
            normalize: None,
            max_tokens: None,
            chunk_overlap: None,
            token_budget: default_token_budget(),
            sorted_batches: default_sorted_batches(),
            sessions: default_sessions(),
            intra_threads: None,
            output: None,
            ort_dylib_path: None,
            query_prefix: None,
            document_prefix: None,
        }
    }

    /// Uses `preset` for what the directory does not say.
    #[must_use]
    pub fn with_preset(mut self, preset: Preset) -> Self {
        self.preset = Some(preset);
        self
    }

    /// Forces the pooling.
    #[must_use]
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = Some(pooling);
        self
    }

    /// Forces normalisation on or off.
    #[must_use]
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = Some(normalize);
        self
    }

    /// Forces the chunk length in tokens.
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the overlap between chunks of a long text.
    #[must_use]
    pub fn with_chunk_overlap(mut self, overlap: usize) -> Self {
        self.chunk_overlap = Some(overlap);
        self
    }

    /// Sets the padded-token budget of one inference call.
    #[must_use]
    pub fn with_token_budget(mut self, budget: usize) -> Self {
        self.token_budget = budget;
        self
    }

    /// Sorts chunks by length before batching (`true`, the default) or keeps input order.
    #[must_use]
    pub fn with_sorted_batches(mut self, sorted: bool) -> Self {
        self.sorted_batches = sorted;
        self
    }

    /// Sets the most sessions kept for concurrent calls.
    #[must_use]
    pub fn with_sessions(mut self, sessions: usize) -> Self {
        self.sessions = sessions;
        self
    }

    /// Sets the threads per session.
    #[must_use]
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = Some(threads);
        self
    }

    /// Loads ONNX Runtime from `path` instead of `ORT_DYLIB_PATH`.
    #[must_use]
    pub fn with_ort_dylib_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.ort_dylib_path = Some(path.into());
        self
    }

    /// Reads the vectors from the graph output `name`.
    #[must_use]
    pub fn with_output(mut self, name: impl Into<String>) -> Self {
        self.output = Some(name.into());
        self
    }

    /// Sets the model name recorded with each vector.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// The files of a model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelFiles {
    pub(crate) model: PathBuf,
    pub(crate) tokenizer: PathBuf,
}

impl ModelFiles {
    /// Finds `model.onnx` and `tokenizer.json`, naming every place looked at when one is missing.
    pub(crate) fn locate(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::invalid(format!(
                "ONNX model directory `{}` does not exist or is not a directory",
                dir.display()
            ))
            .in_file(dir.display().to_string()));
        }
        // sentence-transformers repositories that ship ONNX keep it under onnx/.
        let candidates = [dir.join("model.onnx"), dir.join("onnx").join("model.onnx")];
        let model = candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "ONNX model directory `{}` has no model.onnx (looked for {} and {})",
                    dir.display(),
                    candidates[0].display(),
                    candidates[1].display()
                ))
                .in_file(candidates[0].display().to_string())
            })?;
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(Error::invalid(format!(
                "ONNX model directory `{}` has no tokenizer.json",
                dir.display()
            ))
            .in_file(tokenizer.display().to_string()));
        }
        Ok(Self { model, tokenizer })
    }
}

/// What the sentence-transformers files of a directory say, each `None` when not said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SentenceTransformersLayout {
    pub(crate) pooling: Option<Pooling>,
    pub(crate) normalize: Option<bool>,
    pub(crate) max_tokens: Option<usize>,
    pub(crate) dim: Option<usize>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PoolingFile {
    word_embedding_dimension: Option<usize>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::invalid(format!("cannot read {}", path.display()))
                .in_file(path.display().to_string())
                .with_source(e))
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::invalid(format!("malformed {}: {e}", path.display()))
            .in_file(path.display().to_string())
            .at_line(e.line() as u64)
            .with_source(e)
    })
}

impl SentenceTransformersLayout {
    /// Reads `modules.json`, the pooling module's `config.json` and `sentence_bert_config.json`.
    pub(crate) fn read(dir: &Path) -> Result<Self> {
        let mut layout = Self::default();
        let modules: Option<Vec<ModuleEntry>> = read_json(&dir.join("modules.json"))?;
        let mut pooling_dir = None;
        if let Some(modules) = &modules {
            layout.normalize = Some(modules.iter().any(|m| m.kind.ends_with(".Normalize")));
            pooling_dir = modules
                .iter()
                .find(|m| m.kind.ends_with(".Pooling"))
                .map(|m| dir.join(&m.path));
        }
        // Some exports keep 1_Pooling/ without modules.json.
        let pooling_dir = pooling_dir.unwrap_or_else(|| dir.join("1_Pooling"));
        let pooling_path = pooling_dir.join("config.json");
        if let Some(file) = read_json::<PoolingFile>(&pooling_path)? {
            layout.dim = file.word_embedding_dimension;
            let unsupported = [
                (file.pooling_mode_max_tokens, "max"),
                (file.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len"),
                (file.pooling_mode_weightedmean_tokens, "weightedmean"),
                (file.pooling_mode_lasttoken, "lasttoken"),
            ];
            if let Some((_, mode)) = unsupported.iter().find(|(on, _)| *on) {
                return Err(Error::invalid(format!(
                    "pooling mode `{mode}` is not supported (only cls and mean)"
                ))
                .in_file(pooling_path.display().to_string()));
            }
            layout.pooling =
                match (file.pooling_mode_cls_token, file.pooling_mode_mean_tokens) {
                    (true, false) => Some(Pooling::Cls),
                    (false, true) => Some(Pooling::Mean),
                    (false, false) => None,
                    (true, true) => return Err(Error::invalid(
                        "both cls and mean pooling are on; concatenated pooling is not supported",
                    )
                    .in_file(pooling_path.display().to_string())),
                };
        }
        let sbert: Option<SentenceBertFile> = read_json(&dir.join("sentence_bert_config.json"))?;
        layout.max_tokens = sbert.and_then(|s| s.max_seq_length);
        Ok(layout)
    }
}

/// The settings the embedder runs with, resolved from config, directory and preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelSpec {
    pub(crate) name: String,
    pub(crate) pooling: Pooling,
    pub(crate) normalize: bool,
    pub(crate) max_tokens: usize,
    pub(crate) chunk_overlap: usize,
    /// The dimension the preset or the pooling config promises, checked against the model output.
    pub(crate) expected_dim: Option<usize>,
}

impl ModelSpec {
    /// Explicit config wins over the directory's files, which win over the preset.
    pub(crate) fn resolve(
        config: &OnnxConfig,
        layout: &SentenceTransformersLayout,
    ) -> Result<Self> {
        let preset = config.preset;
        let name = config
            .name
            .clone()
            .or_else(|| preset.map(|p| p.name().to_owned()))
            .or_else(|| {
                config
                    .model_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "onnx".to_owned());
        let pooling = config
            .pooling
            .or(layout.pooling)
            .or(preset.map(Preset::pooling))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "cannot tell the pooling of the model in `{}`: it has no sentence-transformers \
                     1_Pooling/config.json; give a preset or pooling = \"cls\" | \"mean\"",
                    config.model_dir.display()
                ))
            })?;
        let normalize = config
            .normalize
            .or(layout.normalize)
            .or(preset.map(Preset::normalize))
            .unwrap_or(true);
        let max_tokens = config
            .max_tokens
            .or(layout.max_tokens)
            .or(preset.map(Preset::max_tokens))
            .unwrap_or(512);
        // Room for [CLS] / [SEP] or <s> / </s> plus at least a few tokens of text.
        if max_tokens < 8 {
            return Err(Error::invalid(format!(
                "max_tokens is {max_tokens}; it must be at least 8"
            ))
            .on_field("max_tokens"));
        }
        let chunk_overlap = config.chunk_overlap.unwrap_or(max_tokens / 8);
        if config.token_budget == 0 {
            return Err(Error::invalid("token_budget must be positive").on_field("token_budget"));
        }
        if config.sessions == 0 {
            return Err(Error::invalid("sessions must be at least 1").on_field("sessions"));
        }
        let expected_dim = preset.map(Preset::dim).or(layout.dim);
        if let (Some(p), Some(d)) = (preset, layout.dim) {
            if p.dim() != d {
                return Err(Error::invalid(format!(
                    "preset {p} expects {} dimensions but 1_Pooling/config.json says {d}",
                    p.dim()
                )));
            }
        }
        Ok(Self {
            name,
            pooling,
            normalize,
            max_tokens,
            chunk_overlap,
            expected_dim,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_round_trip_by_name() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().ok(), Some(p));
        }
        assert!("bge-m4".parse::<Preset>().is_err());
        assert_eq!("CLS".parse::<Pooling>().ok(), Some(Pooling::Cls));
    }

    #[test]
    fn config_deserialises_with_defaults() {
        let cfg: OnnxConfig = from_json(
            r#"{"model_dir": "/m", "preset": "bge-m3", "pooling": "mean", "max_tokens": 512}"#,
        );
        assert_eq!(cfg.preset, Some(Preset::BgeM3));
        assert_eq!(cfg.pooling, Some(Pooling::Mean));
        assert_eq!(cfg.token_budget, 8192);
        assert_eq!(cfg.sessions, 2);
    }

    fn from_json(json: &str) -> OnnxConfig {
        serde_json::from_str(json).expect("valid config")
    }

    #[test]
    fn explicit_beats_layout_beats_preset() {
        let layout = SentenceTransformersLayout {
            pooling: Some(Pooling::Mean),
            normalize: Some(false),
            max_tokens: Some(128),
            dim: None,
        };
        let cfg = OnnxConfig::new("/models/x").with_preset(Preset::BgeM3);
        let spec = ModelSpec::resolve(&cfg, &layout).expect("resolves");
        assert_eq!(spec.pooling, Pooling::Mean);
        assert!(!spec.normalize);
        assert_eq!(spec.max_tokens, 128);
        assert_eq!(spec.chunk_overlap, 16);
        assert_eq!(spec.name, "bge-m3");
        assert_eq!(spec.expected_dim, Some(1024));

        let cfg = cfg.with_pooling(Pooling::Cls).with_max_tokens(64);
        let spec = ModelSpec::resolve(&cfg, &layout).expect("resolves");
        assert_eq!(spec.pooling, Pooling::Cls);
        assert_eq!(spec.max_tokens, 64);

        let spec = ModelSpec::resolve(
            &OnnxConfig::new("/models/x").with_preset(Preset::BgeM3),
            &SentenceTransformersLayout::default(),
        )
        .expect("resolves");
        assert_eq!(
            (spec.pooling, spec.normalize, spec.max_tokens),
            (Pooling::Cls, true, 8192)
        );
    }

    #[test]
    fn unknown_pooling_without_preset_is_an_error() {
        let err = ModelSpec::resolve(
            &OnnxConfig::new("/models/x"),
            &SentenceTransformersLayout::default(),
        )
        .expect_err("no pooling");
        assert!(err.message().contains("pooling"), "{err}");
    }

    #[test]
    fn reads_sentence_transformers_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .expect("write");
        std::fs::create_dir(dir.path().join("1_Pooling")).expect("mkdir");
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
                "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#,
        )
        .expect("write");
        std::fs::write(
            dir.path().join("sentence_bert_config.json"),
            r#"{"max_seq_length": 256, "do_lower_case": false}"#,
        )
        .expect("write");
        let layout = SentenceTransformersLayout::read(dir.path()).expect("reads");
        assert_eq!(
            layout,
            SentenceTransformersLayout {
                pooling: Some(Pooling::Mean),
                normalize: Some(true),
                max_tokens: Some(256),
                dim: Some(384),
            }
        );
    }

    #[test]
    fn malformed_layout_file_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sentence_bert_config.json"), "{ nope").expect("write");
        let err = SentenceTransformersLayout::read(dir.path()).expect_err("malformed");
        assert!(err
            .location()
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("sentence_bert_config.json")));
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ModelFiles::locate(dir.path()).expect_err("empty dir");
        assert!(err.message().contains("model.onnx"), "{err}");
        std::fs::write(dir.path().join("model.onnx"), b"x").expect("write");
        let err = ModelFiles::locate(dir.path()).expect_err("no tokenizer");
        assert!(err.message().contains("tokenizer.json"), "{err}");
        let err = ModelFiles::locate(&dir.path().join("nope")).expect_err("no dir");
        assert!(err.message().contains("does not exist"), "{err}");
    }
}
