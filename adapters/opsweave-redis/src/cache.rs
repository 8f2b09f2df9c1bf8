//! The shared cache: values under `{prefix}:cache:v:KEY` with a TTL, each key's tags in a set,
//! each tag's keys in a set; set and invalidate are Lua scripts, so concurrent callers never see
//! an entry half filed.

use crate::error::{is_unreachable, map};
use crate::Redis;
use async_trait::async_trait;
use opsweave_core::cache::{check_entry, check_key, Cache};
use opsweave_core::Result;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// A [`Cache`] on Redis. Reads and writes while Redis is unreachable are logged and treated as
/// misses (the caller goes to the store); invalidation then fails (`Unavailable`), since the
/// caller must know stale entries may remain until their TTL.
#[derive(Clone)]
pub struct RedisCache {
    redis: Redis,
    set: Arc<Script>,
    invalidate: Arc<Script>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            set: Arc::new(Script::new(include_str!("lua/cache_set.lua"))),
            invalidate: Arc::new(Script::new(include_str!("lua/cache_invalidate.lua"))),
        }
    }

    fn value_key(&self, key: &str) -> String {
        self.redis.key(&format!("cache:v:{key}"))
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key("key", key)?;
        let mut conn = self.redis.conn();
        match redis::cmd("GET")
            .arg(self.value_key(key))
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await
        {
            Ok(value) => Ok(value),
            Err(e) if is_unreachable(&e) => {
                tracing::warn!(redis = %self.redis.url(), error = %e, "cache unavailable: reading as a miss");
                Ok(None)
            }
            Err(e) => Err(map("cache get", e)),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration, tags: &[String]) -> Result<()> {
        check_entry(key, ttl, tags)?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut call = self.set.prepare_invoke();
        call.key(self.value_key(key))
            .key(self.redis.key(&format!("cache:k:{key}")))
            .arg(self.redis.key("cache:t:"))
            .arg(ttl_ms)
            .arg(value);
        for tag in tags {
            call.arg(tag);
        }
        let mut conn = self.redis.conn();
        match call.invoke_async::<i64>(&mut conn).await {
            Ok(_) => Ok(()),
            Err(e) if is_unreachable(&e) => {
                tracing::warn!(redis = %self.redis.url(), error = %e, "cache unavailable: entry not stored");
                Ok(())
            }
            Err(e) => Err(map("cache set", e)),
        }
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<u64> {
        check_key("tag", tag)?;
        let mut conn = self.redis.conn();
        let removed: i64 = self
            .invalidate
            .key(self.redis.key(&format!("cache:t:{tag}")))
            .arg(self.redis.key("cache:t:"))
            .arg(self.redis.key("cache:k:"))
            .arg(self.redis.key("cache:v:"))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map("cache invalidate", e))?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }

    async fn ping(&self) -> Result<()> {
        self.redis.ping().await
    }
}
