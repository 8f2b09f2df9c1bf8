//! opsweave-redis: the pieces of opsweave that many processes share through one Redis.
//!
//! - [`RedisCache`]: the core [`Cache`](opsweave_core::Cache) (values with a TTL, tags as sets,
//!   invalidation by tag atomic in a Lua script). An unreachable Redis reads as a miss.
//! - [`RedisRateLimiter`]: GCRA limits, atomic in a Lua script; an unreachable Redis fails open
//!   or closed as each [`RateLimit`](opsweave_core::RateLimit) says, and logs which.
//! - [`RedisQueue`]: the core [`JobQueue`](opsweave_core::JobQueue) on Redis Streams with a
//!   consumer group, job state in hashes, leases and backoff in sorted sets.
//! - [`JobUpdates`]: every change of a job, published on pub/sub so every process sees it.
//!
//! All keys start with a prefix written as a hash tag (`{opsweave}` by default): several queues
//! share one server apart, and on a cluster every key a script touches is in one slot.

mod cache;
mod error;
mod events;
mod queue;
mod rate;

pub use cache::RedisCache;
pub use events::{JobUpdate, JobUpdates};
pub use queue::RedisQueue;
pub use rate::RedisRateLimiter;

use error::map;
use opsweave_core::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// The prefix keys get when none is chosen.
pub const DEFAULT_PREFIX: &str = "opsweave";

/// One Redis server: a client, a shared multiplexed connection that reconnects by itself, and the
/// key prefix. Cheap to clone; the cache, limiter and queue made from it share the connection.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    url: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`) and checks the server answers.
    pub async fn connect(url: &str) -> Result<Self> {
        let redis = Self::lazy(url)?;
        redis.ping().await?;
        Ok(redis)
    }

    /// A handle on `url` that connects on first use (and again after a lost connection), so a
    /// process starts even while Redis is down; calls fail with `Unavailable` until it is back.
    ///
    /// A `prefix=NAME` query parameter puts the keys under `{NAME}` (see [`Self::with_prefix`]).
    pub fn lazy(url: &str) -> Result<Self> {
        let (url, prefix) = split_prefix(url);
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            Error::invalid(format!("redis URL `{}`: {e}", mask_password(&url))).on_field("redis")
        })?;
        // Short timeouts and few retries: a cache or limiter that waits long for a dead server
        // is worse than none. The manager keeps reconnecting in the background.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| map("open a connection", e))?;
        let redis = Self {
            client,
            conn,
            prefix: format!("{{{DEFAULT_PREFIX}}}"),
            url: mask_password(&url),
        };
        match prefix {
            Some(prefix) => redis.with_prefix(&prefix),
            None => Ok(redis),
        }
    }

    /// The same server with keys under `{prefix}` (several queues or tenants on one Redis).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        if prefix.is_empty()
            || prefix.len() > 100
            || prefix.contains(['{', '}'])
            || prefix.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "redis key prefix must be 1 to 100 bytes without braces or control characters",
            )
            .on_field("prefix"));
        }
        self.prefix = format!("{{{prefix}}}");
        Ok(self)
    }

    /// Asks the server for PONG.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| map("ping", e))
    }

    /// The URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A cache on this server.
    pub fn cache(&self) -> RedisCache {
        RedisCache::new(self.clone())
    }

    /// A rate limiter on this server.
    pub fn rate_limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter::new(self.clone())
    }

    /// A job queue on this server.
    pub fn queue(&self) -> RedisQueue {
        RedisQueue::new(self.clone())
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }
}

/// `url` without its `prefix=` query parameter, and that parameter's value.
fn split_prefix(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut prefix = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("prefix=") {
            Some(value) => {
                prefix = Some(value.to_string());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), prefix)
    } else {
        (format!("{base}?{}", rest.join("&")), prefix)
    }
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            let masked = if user_info.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            mask_password("redis://user:pw@host/"),
            "redis://user:***@host/"
        );
        assert_eq!(mask_password("redis://host:1"), "redis://host:1");
    }

    #[tokio::test]
    async fn bad_urls_and_prefixes_are_invalid_input() {
        let err = Redis::lazy("http://nope").unwrap_err();
        assert_eq!(err.kind(), opsweave_core::ErrorKind::InvalidInput);
        let redis = Redis::lazy("redis://127.0.0.1:1").unwrap();
        let err = redis.with_prefix("a{b").unwrap_err();
        let named = Redis::lazy("redis://127.0.0.1:1/0?prefix=jobs-a").unwrap();
        assert_eq!(named.key("x"), "{jobs-a}:x");
        assert_eq!(named.url(), "redis://127.0.0.1:1/0");
        assert_eq!(err.location().field.as_deref(), Some("prefix"));
    }
}
