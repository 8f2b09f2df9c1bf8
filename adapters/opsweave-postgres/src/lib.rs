//! The PostgreSQL backend of opsweave, for teams that outgrow one embedded file.
//!
//! Four schemas hold what the embedded store holds in one file: `raw` (source items verbatim and
//! rejected rows), `core` (records with their full-text documents under a GIN index, tasks,
//! links), `search` (pgvector embeddings) and `ops` (the event log, jobs, usage). Migrations are embedded
//! in the binary and applied on open. Batches are written about 1,000 rows per round trip, in one
//! transaction: rows new to the store with binary `COPY`, the others with `UNNEST` arrays and
//! `ON CONFLICT`. Transactions that fail for a transient reason (serialization failure,
//! deadlock, lost connection) run again with backoff.

mod copy;
mod error;
mod fulltext;
mod jobs;
mod matching;
mod recall;
mod retry;
mod rows;
mod snapshot;
mod store;
mod usage;
mod vectors;

pub use vectors::{VectorLoad, BULK_LOAD_FROM, MAX_INDEXED_DIM};

use error::map;
use opsweave_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// Connections the pool opens at most, unless the URL says otherwise (`?max_connections=N` is
/// not a libpq parameter, so it is read and removed here).
const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The PostgreSQL store: a connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`, the libpq forms sqlx
    /// accepts, plus `max_connections=N`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let (url, max_connections) = split_pool_size(url)?;
        let shown = redact(&url);
        let options = PgConnectOptions::from_str(&url)
            .map_err(|e| Error::invalid(format!("bad PostgreSQL URL `{shown}`: {e}")))?
            .application_name("opsweave");
        // One direct connection first: a refused or misconfigured connection fails here with its
        // own message, where the pool would wait out its timeout and say only that it timed out.
        let first = tokio::time::timeout(Duration::from_secs(15), options.connect())
            .await
            .map_err(|_| {
                Error::unavailable(format!("postgres: connect to `{shown}`: no answer in 15 s"))
            })?
            .map_err(|e| {
                let err = map(&format!("connect to `{shown}`"), e);
                if err.kind() == opsweave_core::ErrorKind::Internal {
                    Error::unavailable(err.message().to_string())
                } else {
                    err
                }
            })?;
        first.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(15))
            // A dead connection fails its statement; the transaction is then retried on a new one
            // (see `retry`), which costs less than a ping before every use.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| map(&format!("connect to `{shown}`"), e))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| {
                let hint = if e.to_string().contains("extension \"vector\"") {
                    " (pgvector must be installed, and `CREATE EXTENSION vector` run once by a superuser)"
                } else {
                    ""
                };
                Error::internal(format!("postgres: migrating `{shown}`: {e}{hint}")).with_source(e)
            })?;
        Ok(Self { pool })
    }

    /// Wraps a pool opened elsewhere; migrations must already be applied (see [`Self::open`]).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The connection pool, for operations outside the store traits.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Answers when the database can be read (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| map("ping", e))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Removes `max_connections=N` from the URL's query string and returns it with N (or the default).
fn split_pool_size(url: &str) -> Result<(String, u32)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_MAX_CONNECTIONS));
    };
    let mut max = DEFAULT_MAX_CONNECTIONS;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("max_connections", n)) => {
                max = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::invalid(format!(
                        "max_connections must be a positive number, not `{n}`"
                    ))
                    .on_field("max_connections")
                })?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, max))
}

/// The URL with its password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://ops:s3cr:et@db.internal:5432/opsweave?sslmode=require"),
            "postgres://ops:***@db.internal:5432/opsweave?sslmode=require"
        );
        assert_eq!(
            redact("postgres://ops@127.0.0.1/opsweave"),
            "postgres://ops@127.0.0.1/opsweave"
        );
    }

    #[test]
    fn pool_size_is_read_from_the_url() {
        assert_eq!(
            split_pool_size("postgres://h/db?max_connections=4&sslmode=disable").unwrap(),
            ("postgres://h/db?sslmode=disable".to_string(), 4)
        );
        assert_eq!(
            split_pool_size("postgres://h/db").unwrap(),
            ("postgres://h/db".to_string(), DEFAULT_MAX_CONNECTIONS)
        );
        assert!(split_pool_size("postgres://h/db?max_connections=0").is_err());
    }
}
