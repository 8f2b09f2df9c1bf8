//! GCRA rate limits shared by every process on one Redis: one key per limited thing holding its
//! theoretical arrival time, updated by a Lua script on the server's clock.

use crate::error::{is_unreachable, map};
use crate::Redis;
use async_trait::async_trait;
use opsweave_core::rate::{check_request, RateDecision, RateLimit, RateLimiter, WhenUnavailable};
use opsweave_core::{Error, Result};
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// A [`RateLimiter`] on Redis. While Redis is unreachable each limit fails open (allowed,
/// `unmetered`) or closed (`Unavailable`) as its [`RateLimit::when_unavailable`] says, and the
/// choice is logged.
#[derive(Clone)]
pub struct RedisRateLimiter {
    redis: Redis,
    gcra: Arc<Script>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            gcra: Arc::new(Script::new(include_str!("lua/gcra.lua"))),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, limit: &RateLimit, cost: u32) -> Result<RateDecision> {
        check_request(key, limit, cost)?;
        let mut conn = self.redis.conn();
        let answer: redis::RedisResult<(i64, i64)> = self
            .gcra
            .key(self.redis.key(&format!("rate:{key}")))
            .arg(limit.interval_micros())
            .arg(limit.burst)
            .arg(cost)
            .invoke_async(&mut conn)
            .await;
        match answer {
            Ok((allowed, retry_micros)) => Ok(RateDecision {
                allowed: allowed == 1,
                retry_after: Duration::from_micros(u64::try_from(retry_micros).unwrap_or(0)),
                unmetered: false,
            }),
            Err(e) if is_unreachable(&e) => match limit.when_unavailable {
                WhenUnavailable::Open => {
                    tracing::warn!(redis = %self.redis.url(), key, error = %e,
                        "rate limiter unavailable: failing open (this limit allows unmetered requests)");
                    Ok(RateDecision {
                        allowed: true,
                        retry_after: Duration::ZERO,
                        unmetered: true,
                    })
                }
                WhenUnavailable::Closed => {
                    tracing::warn!(redis = %self.redis.url(), key, error = %e,
                        "rate limiter unavailable: failing closed (this limit refuses requests)");
                    Err(Error::unavailable(format!(
                        "rate limiter unavailable, request refused (limit fails closed): {e}"
                    ))
                    .with_source(e))
                }
            },
            Err(e) => Err(map("rate limit", e)),
        }
    }
}
