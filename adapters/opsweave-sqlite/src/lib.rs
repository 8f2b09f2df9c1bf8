//! The embedded SQLite backend of opsweave.
//!
//! One file in WAL mode holds RAW (verbatim payloads), CORE (records, tasks, links), SEARCH (an
//! FTS5 index kept in step by triggers) and OPS (events, rejections, jobs). Migrations are
//! embedded in the binary and applied on open.

mod error;
mod hnsw;
mod jobs;
mod recall;
mod rows;
mod snapshot;
mod store;
mod usage;
mod vectors;

pub use hnsw::{VectorOptions, VectorPlan, VectorStorage};

use error::map;
use opsweave_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The embedded store: one SQLite file, read through a pool and written through one connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one writer. SQLite serialises writers anyway; one connection keeps its page cache warm
    /// (a connection's cache is dropped whenever another connection has written) and lets a batch
    /// allocate row numbers without racing another batch.
    writer: SqlitePool,
    /// Reads task revisions, asked on every cached focus call: a connection of its own, because a
    /// pooled query also pings its connection on the way in and out (three trips to SQLite's
    /// thread instead of one).
    revisions: Arc<tokio::sync::Mutex<SqliteConnection>>,
    /// The path as opened (where the vector index files go, beside it).
    path: String,
    /// Vector models' graphs (see `vectors`).
    vectors: Arc<vectors::Vectors>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`, `sqlite:path` or a
    /// plain path) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(Error::invalid("empty SQLite database path"));
        }
        if let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            if !parent.is_dir() {
                return Err(Error::invalid(format!(
                    "cannot open database `{path}`: folder `{}` does not exist",
                    parent.display()
                )));
            }
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| Error::invalid(format!("bad SQLite path `{path}`: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory");
        // The writer's cache holds the indexes that take random inserts (about 100 MB at a
        // million records); pages are only allocated as they are used.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-262144")
                    .pragma("wal_autocheckpoint", "25000"),
            )
            .await
            .map_err(|e| map(&format!("open `{path}`"), e))?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(|e| {
                Error::internal(format!("sqlite: migrating `{path}`: {e}")).with_source(e)
            })?;
        let revisions =
            SqliteConnection::connect_with(&options.clone().pragma("cache_size", "-256"))
                .await
                .map_err(|e| map(&format!("open `{path}`"), e))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options.pragma("cache_size", "-65536"))
            .await
            .map_err(|e| map(&format!("open `{path}`"), e))?;
        Ok(Self {
            pool,
            writer,
            revisions: Arc::new(tokio::sync::Mutex::new(revisions)),
            path: path.to_string(),
            vectors: Arc::new(vectors::Vectors::new(path, VectorOptions::default())),
        })
    }

    /// Answers when the database can be read (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| map("ping", e))
    }

    /// Saves changed vector graphs and closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        // A graph that cannot be saved is rebuilt from the rows on next use.
        let _ = self.save_vector_indexes().await;
        self.pool.close().await;
        self.writer.close().await;
    }
}
