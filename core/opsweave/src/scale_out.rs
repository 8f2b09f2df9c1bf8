//! The scale-out parts of a handle: a shared cache and rate limiter, and a job queue that is not
//! the database's.

use crate::Weave;
use opsweave_core::{Error, JobQueue, Result};
use std::sync::Arc;

impl Weave {
    /// Opens `config.redis` as the shared cache and rate limiter and `config.queue` as the job
    /// queue, when set.
    pub(crate) async fn open_scale_out(&mut self) -> Result<()> {
        if let Some(url) = self.config.redis.clone() {
            let (cache, limiter) = open_cache(&url)?;
            self.cache = Some(cache);
            self.rate_limiter = Some(limiter);
        }
        if let Some(url) = self.config.queue.clone() {
            self.jobs = Some(open_queue(&url).await?);
        }
        Ok(())
    }
}

/// The scheme of a database, cache or queue URL (`postgres` in `postgres://…`).
pub(crate) fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("", |(s, _)| s)
}

/// The shared cache and rate limiter at `url`, on one connection. It connects lazily: a cache
/// that is down at start reads as misses and each rate limit fails open or closed as it says (and
/// the log says so) rather than stopping the process.
fn open_cache(
    url: &str,
) -> Result<(
    Arc<dyn opsweave_core::Cache>,
    Arc<dyn opsweave_core::RateLimiter>,
)> {
    match scheme(url.trim()) {
        #[cfg(feature = "redis")]
        "redis" | "rediss" => {
            let redis = opsweave_redis::Redis::lazy(url.trim())?;
            Ok((Arc::new(redis.cache()), Arc::new(redis.rate_limiter())))
        }
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(no_redis()),
        other => Err(Error::invalid(format!(
            "unknown cache scheme `{other}` (expected redis://…)"
        ))
        .on_field("redis")),
    }
}

/// The job queue at `url`: Redis, or another database's own queue. It must answer now: a
/// worker without its queue has nothing to do.
async fn open_queue(url: &str) -> Result<Arc<dyn JobQueue>> {
    let url = url.trim();
    match scheme(url) {
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(opsweave_redis::Redis::connect(url).await?.queue())),
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(no_redis()),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(opsweave_postgres::PgStore::open(url).await?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(opsweave_sqlite::SqliteStore::open(url).await?)),
        other => Err(Error::invalid(format!(
            "unknown queue scheme `{other}` (expected redis://…, postgres://… or sqlite://…)"
        ))
        .on_field("queue")),
    }
}

#[cfg(not(feature = "redis"))]
fn no_redis() -> Error {
    Error::invalid("this build of opsweave has no Redis support: enable the `redis` feature")
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn passwords_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_password("postgres://app:s3cret@db.internal:5432/ops?sslmode=require"),
            "postgres://app:***@db.internal:5432/ops?sslmode=require"
        );
        assert_eq!(mask_password("redis://:pw@cache/0"), "redis://:***@cache/0");
        assert_eq!(
            mask_password("postgres://app@db/ops"),
            "postgres://app@db/ops"
        );
        assert_eq!(mask_password("sqlite://./x.db"), "sqlite://./x.db");
    }
}
