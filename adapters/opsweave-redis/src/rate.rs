//! GCRA rate limits shared by every process on one Redis: one key per limited thing holding its
//! theoretical arrival time, updated by a Lua script on the server's clock.

use crate::error::{is_unreachable, map};
use crate::Redis;
use async_trait::async_trait;
use opsweave_core::rate::{check_request, RateDecision, RateLimit, RateLimiter, WhenUnavailable};
use opsweave_core::{Error, Result};
use redis::Script;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A [`RateLimiter`] on Redis. While Redis is unreachable each limit fails open (allowed,
/// `unmetered`) or closed (`Unavailable`) as its [`RateLimit::when_unavailable`] says, and the
/// choice is logged: a warning the first time each way in an outage (then at debug level, so a
/// busy server does not write one line per request), and a note when Redis answers again.
#[derive(Clone)]
pub struct RedisRateLimiter {
    redis: Redis,
    gcra: Arc<Script>,
    /// Whether an outage was already logged, failing open and failing closed.
    logged: Arc<[AtomicBool; 2]>,
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
            logged: Arc::new([AtomicBool::new(false), AtomicBool::new(false)]),
        }
    }

    /// True the first time `mode` is taken in this outage.
    fn first_in_outage(&self, mode: WhenUnavailable) -> bool {
        let slot = match mode {
            WhenUnavailable::Open => 0,
            WhenUnavailable::Closed => 1,
        };
        !self.logged[slot].swap(true, Ordering::Relaxed)
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
            Ok((allowed, retry_micros)) => {
                // Loaded first: a swap on every request would be a write to a shared line.
                let mut was_down = false;
                for logged in self.logged.iter() {
                    if logged.load(Ordering::Relaxed) {
                        was_down |= logged.swap(false, Ordering::Relaxed);
                    }
                }
                if was_down {
                    tracing::info!(redis = %self.redis.url(), "rate limiter available again: limits are metered");
                }
                Ok(RateDecision {
                    allowed: allowed == 1,
                    retry_after: Duration::from_micros(u64::try_from(retry_micros).unwrap_or(0)),
                    unmetered: false,
                })
            }
            Err(e) if is_unreachable(&e) => match limit.when_unavailable {
                WhenUnavailable::Open => {
                    if self.first_in_outage(WhenUnavailable::Open) {
                        tracing::warn!(redis = %self.redis.url(), key, error = %e,
                            "rate limiter unavailable: failing open (this limit allows unmetered requests)");
                    } else {
                        tracing::debug!(key, error = %e, "rate limiter unavailable: failing open");
                    }
                    Ok(RateDecision {
                        allowed: true,
                        retry_after: Duration::ZERO,
                        unmetered: true,
                    })
                }
                WhenUnavailable::Closed => {
                    if self.first_in_outage(WhenUnavailable::Closed) {
                        tracing::warn!(redis = %self.redis.url(), key, error = %e,
                            "rate limiter unavailable: failing closed (this limit refuses requests)");
                    } else {
                        tracing::debug!(key, error = %e, "rate limiter unavailable: failing closed");
                    }
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
