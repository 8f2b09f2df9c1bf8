//! One typed configuration: defaults that run embedded, a TOML file, then `OPSWEAVE_*` variables.

use opsweave_core::{Error, PriorityConfig, Result, Scope};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything opsweave can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL: `sqlite://./opsweave.db` (default) or a path.
    pub db: String,
    /// The default scope of commands.
    pub scope: Scope,
    /// Prioritisation weights and knobs.
    pub priority: PriorityConfig,
    /// Ingest settings.
    pub ingest: IngestConfig,
    /// Embedding settings.
    pub embed: EmbedConfig,
}

/// Embedding settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// The model recall and memory use: `onnx:DIR`, `onnx:bge-m3`, `onnx:all-minilm-l6-v2` or
    /// `openai:MODEL` (`OPSWEAVE_EMBED_MODEL`).
    pub model: Option<String>,
    /// Where `onnx:PRESET` models live: a folder holding the model, or one with a subfolder per
    /// preset (`OPSWEAVE_MODEL_DIR`).
    pub model_dir: Option<PathBuf>,
    /// The ONNX Runtime library; `ORT_DYLIB_PATH` when not set.
    pub ort_dylib_path: Option<PathBuf>,
    /// Base URL of an OpenAI-compatible server; `OPENAI_BASE_URL` or OpenAI's when not set.
    pub openai_base_url: Option<String>,
    /// Ask an OpenAI model for vectors of this many dimensions.
    pub dimensions: Option<usize>,
    /// Records per embedding call while embedding a store.
    pub batch_size: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            model: None,
            model_dir: None,
            ort_dylib_path: None,
            openai_base_url: None,
            dimensions: None,
            batch_size: 256,
        }
    }
}

/// Ingest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Items per transaction. Large batches amortise the commit: each one rewrites the index pages
    /// its random ids touch, so fewer, larger commits write far less.
    pub batch_size: usize,
    /// Rejections kept in memory for the report (all are stored in the database).
    pub report_rejections: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_size: 20_000,
            report_rejections: 10_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db: "sqlite://./opsweave.db".into(),
            scope: Scope::default(),
            priority: PriorityConfig::default(),
            ingest: IngestConfig::default(),
            embed: EmbedConfig::default(),
        }
    }
}

impl Config {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let mut err = Error::invalid(format!("config: {}", e.message().trim()));
            if let Some(span) = e.span() {
                let line = text[..span.start.min(text.len())].matches('\n').count() as u64 + 1;
                err = err.at_line(line);
            }
            err
        })
    }

    /// Loads `file` (when given, or `./opsweave.toml` when it exists), then applies the
    /// environment: `OPSWEAVE_DB`, `OPSWEAVE_ORG`, `OPSWEAVE_CLIENT`, `OPSWEAVE_PROJECT`,
    /// `OPSWEAVE_EMBED_MODEL`, `OPSWEAVE_MODEL_DIR`.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let default_file = Path::new("opsweave.toml");
        let chosen = file.or_else(|| default_file.exists().then_some(default_file));
        let mut config = match chosen {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::invalid(format!("cannot read config: {e}"))
                        .in_file(path.display().to_string())
                })?;
                Self::from_toml(&text).map_err(|e| e.in_file(path.display().to_string()))?
            }
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        config.scope.validate()?;
        Ok(config)
    }

    /// Applies `OPSWEAVE_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        if let Some(db) = set(var("OPSWEAVE_DB")) {
            self.db = db;
        }
        if let Some(org) = set(var("OPSWEAVE_ORG")) {
            self.scope.org = org;
        }
        if let Some(client) = set(var("OPSWEAVE_CLIENT")) {
            self.scope.client = Some(client);
        }
        if let Some(project) = set(var("OPSWEAVE_PROJECT")) {
            self.scope.project = Some(project);
        }
        if let Some(model) = set(var("OPSWEAVE_EMBED_MODEL")) {
            self.embed.model = Some(model);
        }
        if let Some(dir) = set(var("OPSWEAVE_MODEL_DIR")) {
            self.embed.model_dir = Some(PathBuf::from(dir));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_embedded_and_env_overrides_file() {
        let mut config =
            Config::from_toml("db = \"sqlite://x.db\"\n[priority]\nw_urgency = 0.5\n").unwrap();
        assert_eq!(config.db, "sqlite://x.db");
        assert_eq!(config.priority.w_urgency, 0.5);
        config.apply_env(|name| match name {
            "OPSWEAVE_DB" => Some("sqlite://y.db".into()),
            "OPSWEAVE_ORG" => Some("acme".into()),
            _ => None,
        });
        assert_eq!(config.db, "sqlite://y.db");
        assert_eq!(config.scope.org, "acme");
        assert_eq!(Config::default().db, "sqlite://./opsweave.db");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = Config::from_toml("db = \"a\"\n\n[priorty]\n").unwrap_err();
        assert!(err.message().contains("priorty"), "{err}");
        assert_eq!(err.location().line, Some(3));
    }
}
