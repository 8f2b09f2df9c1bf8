//! One typed configuration: defaults that run embedded, a TOML file, then `OPSWEAVE_*` variables.

use opsweave_core::{Error, PriceBook, PriorityConfig, Result, Scope, WhenUnavailable};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything opsweave can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database URL: `sqlite://./opsweave.db` (default) or a path.
    pub db: String,
    /// Shared cache on Redis (`redis://…`, `OPSWEAVE_REDIS`); none: no shared cache.
    pub redis: Option<String>,
    /// Job queue URL when it is not the database's own (`redis://…`, `OPSWEAVE_QUEUE`).
    pub queue: Option<String>,
    /// The default scope of commands.
    pub scope: Scope,
    /// Prioritisation weights and knobs.
    pub priority: PriorityConfig,
    /// Ingest settings.
    pub ingest: IngestConfig,
    /// Embedding settings.
    pub embed: EmbedConfig,
    /// The embedded store's vector graph.
    pub index: IndexConfig,
    /// Prices of model calls (`[[prices]]`: model, kind, usd_per_million, from).
    pub prices: PriceBook,
    /// The HTTP service (`opsweave serve`).
    pub server: ServerConfig,
}

/// The HTTP service's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (`OPSWEAVE_ADDR`).
    pub addr: String,
    /// Largest request body in bytes (uploads included).
    pub max_body_bytes: usize,
    /// Longest a request may take, in seconds (event streams excepted).
    pub request_timeout_secs: u64,
    /// Origins allowed by CORS (`*` for any); none: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Requests per minute per key (and a burst of a tenth of it, at least 10 or the whole
    /// minute's when that is less).
    pub rate_limit_per_minute: u32,
    /// While the shared rate limiter (`redis`) is unavailable, reads (GET, HEAD) are `open`
    /// (served unmetered; default) or `closed` (refused with 503).
    pub rate_limit_reads_when_unavailable: WhenUnavailable,
    /// The same for writes (every other method); `closed` by default.
    pub rate_limit_writes_when_unavailable: WhenUnavailable,
    /// Seconds a focus answer for "now" is reused (0: never). Any write to the org's tasks, by
    /// any process, ends it at once; so does the user's midnight.
    pub focus_cache_secs: u64,
    /// Seconds a verified API key is trusted without reading the store (0: never). A key revoked
    /// through this server is refused at once; revoked through another process, within this.
    pub key_cache_secs: u64,
    /// Trust an `X-Dev-User` header instead of keys (`OPSWEAVE_DEV_MODE=1`). Never in production.
    pub dev_mode: bool,
    /// The org dev-mode requests act in.
    pub dev_org: String,
    /// 64 hex digits: the AES-256-GCM key sealing stored secrets (`OPSWEAVE_SECRET_KEY`).
    #[serde(skip_serializing)]
    pub secret_key: Option<Secret>,
    /// In-process workers running queued jobs (0: none, when `opsweave worker` processes do it).
    pub workers: usize,
    /// The bearer token `GET /metrics` asks for (`OPSWEAVE_METRICS_TOKEN`); none: served to
    /// anyone who reaches it.
    #[serde(skip_serializing)]
    pub metrics_token: Option<Secret>,
    /// Webhook sources by name (`[server.webhooks.github]`).
    pub webhooks: std::collections::BTreeMap<String, WebhookConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 30,
            cors_origins: Vec::new(),
            rate_limit_per_minute: 6_000,
            rate_limit_reads_when_unavailable: WhenUnavailable::Open,
            rate_limit_writes_when_unavailable: WhenUnavailable::Closed,
            focus_cache_secs: 5,
            key_cache_secs: 1,
            dev_mode: false,
            dev_org: "default".into(),
            secret_key: None,
            workers: 2,
            metrics_token: None,
            webhooks: std::collections::BTreeMap::new(),
        }
    }
}

/// A secret from configuration: readable with [`Secret::expose`], shown as `***` by `Debug`, so
/// printing a config never prints it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One webhook source: who may call it and how its payloads become records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The shared secret of the `X-Opsweave-Signature: t=UNIX,v1=HEX` HMAC-SHA256 signature.
    #[serde(skip_serializing)]
    pub secret: Secret,
    /// The preset that maps a payload (e.g. `github-issue`).
    pub preset: String,
    /// The scope payloads are stored in.
    pub scope: Scope,
    /// Oldest signature timestamp accepted, in seconds (replays after that are refused).
    #[serde(default = "default_replay_window")]
    pub replay_window_secs: u64,
}

fn default_replay_window() -> u64 {
    300
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
    /// The name an `onnx:` model's vectors are recorded under; by default the preset's name or
    /// the model folder's. A store refuses vectors of a name it knows from a model with other
    /// files (see `ModelInfo::fingerprint`): a new name keeps both sets apart.
    pub model_name: Option<String>,
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
            model_name: None,
            ort_dylib_path: None,
            openai_base_url: None,
            dimensions: None,
            batch_size: 256,
        }
    }
}

impl EmbedConfig {
    /// Checks what the file can get wrong: a batch of no records would embed one at a time.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid(
                "embed: `batch_size` must be at least 1 (records per embedding call)",
            )
            .on_field("embed.batch_size"));
        }
        Ok(())
    }
}

/// The HNSW graph the embedded (SQLite) store keeps beside its vectors; PostgreSQL's pgvector
/// index is tuned on the server. `m` and `ef_construction` shape graphs built from then on (a
/// saved graph keeps the shape it was built with: delete the `.vectors` folder beside the
/// database to rebuild it); `ef_search` applies at once; switching `quantize` rebuilds the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Links per node (HNSW `M`): more find more true neighbours and cost build time and memory.
    pub m: usize,
    /// Candidates kept while inserting (`ef_construction`).
    pub ef_construction: usize,
    /// Candidates kept while searching (`ef`): recall against query time.
    pub ef_search: usize,
    /// Keep the graph's vectors as 8-bit integers and rank candidates again by the exact ones:
    /// about half the build CPU and a third of the file, the same recall, ~13 % more memory
    /// (docs/benchmarks.md, "Quantized graph").
    pub quantize: bool,
    /// Walk a copy of the saved graph laid out for searching (links beside 8-bit vectors,
    /// prefetched): faster queries for ~576 more bytes per vector at 384 dimensions
    /// (docs/benchmarks.md, "Flat walk"). Used from the graph's next save or load.
    pub flat_walk: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let graph = embedded_graph_defaults();
        Self {
            m: graph.0,
            ef_construction: graph.1,
            ef_search: graph.2,
            quantize: false,
            flat_walk: true,
        }
    }
}

/// The embedded store's own defaults (M, ef_construction, ef_search), so the two never drift.
fn embedded_graph_defaults() -> (usize, usize, usize) {
    #[cfg(feature = "sqlite")]
    {
        let d = opsweave_sqlite::VectorOptions::default();
        (d.connectivity, d.expansion_add, d.expansion_search)
    }
    #[cfg(not(feature = "sqlite"))]
    {
        (16, 128, 128)
    }
}

impl IndexConfig {
    /// Checks the values are ones a graph can be built with.
    pub fn validate(&self) -> Result<()> {
        let check = |value: usize, low: usize, high: usize, field: &str| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "index.{field} must be between {low} and {high}, not {value}"
                ))
                .on_field(format!("index.{field}")))
            }
        };
        check(self.m, 2, 128, "m")?;
        check(self.ef_construction, 1, 4_096, "ef_construction")?;
        check(self.ef_search, 1, 4_096, "ef_search")
    }
}

/// Ingest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Items per transaction (0: the store's choice). SQLite takes 20,000: each commit rewrites
    /// the index pages its random ids touch, so fewer, larger commits write far less. PostgreSQL
    /// takes 5,000: its commits only log the rows, and smaller batches keep the pipeline busy
    /// with less memory in flight (2 µs less client CPU per row than 20,000, measured).
    pub batch_size: usize,
    /// Rejections kept in memory for the report (all are stored in the database).
    pub report_rejections: usize,
    /// Batches written at once, each in its own transaction (0: the store's choice: 1 on SQLite,
    /// which has one writer; 4 on PostgreSQL, whose server spreads them over its cores). Batches
    /// that share a record are written one after the other, in source order, so the later item
    /// still wins. With more than one, a failed ingest may have stored batches that came after
    /// the one that failed (each batch is still stored whole or not at all).
    pub concurrency: usize,
    /// A first ingest into a store with no records is loaded in one transaction, its indexes
    /// built once at the end (SQLite; on by default, always off in `opsweave serve` and
    /// `opsweave worker` and for ingest jobs, which write through the same single writer
    /// meanwhile). Faster, but readers see nothing until it ends, other writes wait for it (and
    /// give up after 60 s in the same process, 10 s in another), and an interrupted load stores
    /// nothing: run it again. When no other connection has the file open, the load is written
    /// straight into it rather than through the WAL (a rollback journal undoes a killed load);
    /// readers that come meanwhile wait for it (up to their 10 s busy timeout). Off: batch by
    /// batch, each visible once committed.
    pub bulk_load: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_size: 0,
            report_rejections: 10_000,
            concurrency: 0,
            bulk_load: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            db: "sqlite://./opsweave.db".into(),
            redis: None,
            queue: None,
            scope: Scope::default(),
            priority: PriorityConfig::default(),
            ingest: IngestConfig::default(),
            embed: EmbedConfig::default(),
            index: IndexConfig::default(),
            prices: PriceBook::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Config {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::bad_toml("config", text, &e))
    }

    /// Loads `file` (when given, or `./opsweave.toml` when it exists), then applies the
    /// environment: `OPSWEAVE_DB`, `OPSWEAVE_ORG`, `OPSWEAVE_CLIENT`, `OPSWEAVE_PROJECT`,
    /// `OPSWEAVE_EMBED_MODEL`, `OPSWEAVE_MODEL_DIR`, `OPSWEAVE_REDIS`, `OPSWEAVE_QUEUE`.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let default_file = Path::new("opsweave.toml");
        let chosen = file.or_else(|| default_file.exists().then_some(default_file));
        let mut config = match chosen {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        config.scope.validate()?;
        // These come from the file alone (no environment variable sets them): name it.
        let checked = config
            .priority
            .validate()
            .and_then(|()| config.prices.validate())
            .and_then(|()| config.index.validate())
            .and_then(|()| config.embed.validate());
        if let Err(e) = checked {
            return Err(match chosen {
                Some(path) => e.in_file(path.display().to_string()),
                None => e,
            });
        }
        Ok(config)
    }

    /// Reads a configuration file, its relative paths taken from its folder; no environment.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(format!("cannot read config: {e}")).in_file(path.display().to_string())
        })?;
        let mut config =
            Self::from_toml(&text).map_err(|e| e.in_file(path.display().to_string()))?;
        let sets_db = text
            .parse::<toml::Table>()
            .is_ok_and(|table| table.contains_key("db"));
        config.root_paths_at(path.parent().unwrap_or(Path::new("")), sets_db);
        Ok(config)
    }

    /// Reads the relative paths a config file names (`db` when `sets_db`, `[embed] model_dir`
    /// and `ort_dylib_path`) from the file's folder `dir`, not from wherever the command runs:
    /// `--config ../opsweave.toml` finds the same database as a command run beside it.
    fn root_paths_at(&mut self, dir: &Path, sets_db: bool) {
        let rooted = |path: &Path| {
            if path.is_relative() && !dir.as_os_str().is_empty() {
                dir.join(path)
            } else {
                path.to_path_buf()
            }
        };
        if sets_db {
            let url = self.db.trim();
            let (scheme, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (scheme, rest),
                None => ("", url),
            };
            if scheme.is_empty() || scheme == "sqlite" {
                let path = rooted(Path::new(rest));
                self.db = format!("sqlite://{}", path.display());
            }
        }
        if let Some(dir) = self.embed.model_dir.take() {
            self.embed.model_dir = Some(rooted(&dir));
        }
        if let Some(lib) = self.embed.ort_dylib_path.take() {
            self.embed.ort_dylib_path = Some(rooted(&lib));
        }
    }

    /// Applies `OPSWEAVE_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        if let Some(db) = set(var("OPSWEAVE_DB")) {
            self.db = db;
        }
        if let Some(redis) = set(var("OPSWEAVE_REDIS")) {
            self.redis = Some(redis);
        }
        if let Some(queue) = set(var("OPSWEAVE_QUEUE")) {
            self.queue = Some(queue);
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
        if let Some(addr) = set(var("OPSWEAVE_ADDR")) {
            self.server.addr = addr;
        }
        if let Some(dev) = set(var("OPSWEAVE_DEV_MODE")) {
            self.server.dev_mode = matches!(dev.trim(), "1" | "true" | "yes");
        }
        if let Some(key) = set(var("OPSWEAVE_SECRET_KEY")) {
            self.server.secret_key = Some(Secret::new(key));
        }
        if let Some(token) = set(var("OPSWEAVE_METRICS_TOKEN")) {
            self.server.metrics_token = Some(Secret::new(token));
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

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_index_section_tunes_the_embedded_graph_within_bounds() {
        let defaults = opsweave_sqlite::VectorOptions::default();
        let index = Config::default().index;
        assert_eq!(
            (
                index.m,
                index.ef_construction,
                index.ef_search,
                index.quantize
            ),
            (
                defaults.connectivity,
                defaults.expansion_add,
                defaults.expansion_search,
                false
            )
        );
        let config =
            Config::from_toml("[index]\nm = 32\nef_construction = 200\nquantize = true\n").unwrap();
        assert_eq!(
            (
                config.index.m,
                config.index.ef_construction,
                config.index.ef_search
            ),
            (32, 200, defaults.expansion_search)
        );
        assert!(config.index.quantize);
        assert!(index.flat_walk, "on unless turned off");
        assert!(
            !Config::from_toml("[index]\nflat_walk = false\n")
                .unwrap()
                .index
                .flat_walk
        );
        config.index.validate().unwrap();
        for (text, field) in [
            ("[index]\nm = 1\n", "index.m"),
            ("[index]\nef_search = 0\n", "index.ef_search"),
            (
                "[index]\nef_construction = 100000\n",
                "index.ef_construction",
            ),
        ] {
            let err = Config::from_toml(text)
                .unwrap()
                .index
                .validate()
                .unwrap_err();
            assert_eq!(err.kind(), opsweave_core::ErrorKind::InvalidInput, "{text}");
            assert_eq!(err.location().field.as_deref(), Some(field), "{text}");
        }
        assert!(
            Config::from_toml("[index]\nM = 32\n").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn defaults_run_embedded_and_env_overrides_file() {
        let mut config =
            Config::from_toml("db = \"sqlite://x.db\"\n[priority]\nw_urgency = 0.5\n").unwrap();
        assert_eq!(config.db, "sqlite://x.db");
        assert_eq!(config.priority.w_urgency, 0.5);
        config.apply_env(|name| match name {
            "OPSWEAVE_DB" => Some("sqlite://y.db".into()),
            "OPSWEAVE_ORG" => Some("acme".into()),
            "OPSWEAVE_METRICS_TOKEN" => Some("scrape-me".into()),
            _ => None,
        });
        assert_eq!(config.db, "sqlite://y.db");
        assert_eq!(config.scope.org, "acme");
        assert_eq!(
            config.server.metrics_token.as_ref().map(Secret::expose),
            Some("scrape-me")
        );
        // Printing a configuration never prints the token.
        assert!(!format!("{config:?}").contains("scrape-me"));
        assert_eq!(Config::default().db, "sqlite://./opsweave.db");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = Config::from_toml("db = \"a\"\n\n[priorty]\n").unwrap_err();
        assert!(err.message().contains("priorty"), "{err}");
        assert_eq!(err.location().line, Some(3));
    }

    #[test]
    fn a_misspelt_scope_key_is_an_error_not_the_whole_org() {
        let err = Config::from_toml("[scope]\norg = \"acme\"\nprojetc = \"p1\"\n").unwrap_err();
        assert!(err.message().contains("projetc"), "{err}");
        assert_eq!(err.location().line, Some(3));
    }

    #[test]
    fn paths_in_a_config_file_are_read_from_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("conf");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("opsweave.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::from_file(&path).unwrap()
        };
        let config = load(
            "db = \"sqlite://./ops.db\"\n[embed]\nmodel_dir = \"models\"\nort_dylib_path = \"/opt/ort.so\"\n",
        );
        assert_eq!(
            config.db,
            format!("sqlite://{}", sub.join("./ops.db").display())
        );
        assert_eq!(config.embed.model_dir, Some(sub.join("models")));
        assert_eq!(
            config.embed.ort_dylib_path,
            Some(PathBuf::from("/opt/ort.so"))
        );
        // Absolute paths, other backends and a file that names no db are left alone.
        assert_eq!(
            load("db = \"sqlite:///var/ops.db\"\n").db,
            "sqlite:///var/ops.db"
        );
        assert_eq!(load("db = \"postgres://h/db\"\n").db, "postgres://h/db");
        assert_eq!(load("[scope]\norg = \"acme\"\n").db, Config::default().db);
        assert_eq!(
            load("db = \"ops.db\"\n").db,
            format!("sqlite://{}", sub.join("ops.db").display())
        );
    }

    #[test]
    fn a_bad_value_names_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opsweave.toml");
        for (text, field) in [
            (
                "[priority]\nutc_offset_minutes = 100000\n",
                "priority.utc_offset_minutes",
            ),
            (
                "[priority]\ntime_zone = \"Mars/Olympus\"\n",
                "priority.time_zone",
            ),
            ("[index]\nm = 1\n", "index.m"),
            ("[embed]\nbatch_size = 0\n", "embed.batch_size"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Config::load(Some(&path)).unwrap_err();
            assert_eq!(err.location().field.as_deref(), Some(field), "{err}");
            assert_eq!(
                err.location().file.as_deref(),
                Some(path.display().to_string().as_str()),
                "{err}"
            );
        }
    }
}
