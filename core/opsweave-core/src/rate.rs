//! Rate limits with GCRA (the generic cell rate algorithm): each key keeps one instant, its
//! "theoretical arrival time" (TAT); a request of cost `c` is allowed when pushing the TAT by
//! `c` emission intervals keeps it within the burst tolerance of now.
//!
//! [`gcra`] is the rule as a pure function; [`MemoryRateLimiter`] applies it inside one process
//! and the Redis adapter applies the same arithmetic atomically in a Lua script, so every
//! process behind one Redis shares a limit.

use crate::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a limiter does when its backend cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenUnavailable {
    /// Allow the request (reads: better served unmetered than not at all).
    Open,
    /// Refuse the request with `Unavailable` (writes: better refused than unmetered).
    Closed,
}

/// A limit: `rate` requests per `period`, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests allowed per period on average.
    pub rate: u32,
    /// The period `rate` is counted over.
    #[serde(with = "crate::jobs::millis")]
    pub period: Duration,
    /// Requests allowed at once after a quiet spell (at least 1).
    pub burst: u32,
    /// What to do when the limiter's backend is unavailable.
    pub when_unavailable: WhenUnavailable,
}

impl RateLimit {
    /// A limit for writes: fails closed when the backend is unavailable.
    pub fn for_writes(rate: u32, period: Duration, burst: u32) -> Self {
        Self {
            rate,
            period,
            burst,
            when_unavailable: WhenUnavailable::Closed,
        }
    }

    /// A limit for reads: fails open when the backend is unavailable.
    pub fn for_reads(rate: u32, period: Duration, burst: u32) -> Self {
        Self {
            when_unavailable: WhenUnavailable::Open,
            ..Self::for_writes(rate, period, burst)
        }
    }

    /// The pause between two requests at the average rate, in microseconds (at least 1).
    pub fn interval_micros(&self) -> u64 {
        let period = u64::try_from(self.period.as_micros()).unwrap_or(u64::MAX);
        (period / u64::from(self.rate.max(1))).max(1)
    }

    /// Checks rate, period and burst, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if self.rate == 0 {
            return Err(Error::invalid("rate limit rate must be at least 1").on_field("rate"));
        }
        if self.period.is_zero() || self.period > Duration::from_secs(366 * 24 * 3600) {
            return Err(Error::invalid(
                "rate limit period must be longer than 0 and at most a year",
            )
            .on_field("period"));
        }
        if self.burst == 0 {
            return Err(Error::invalid("rate limit burst must be at least 1").on_field("burst"));
        }
        Ok(())
    }
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDecision {
    /// True when the request may go ahead (and was counted).
    pub allowed: bool,
    /// When refused: how long until the same request would be allowed.
    #[serde(with = "crate::jobs::millis")]
    pub retry_after: Duration,
    /// True when the backend was unavailable and the limit failed open (nothing was counted).
    pub unmetered: bool,
}

/// One GCRA step at `now_micros` for a key whose stored TAT is `tat_micros` (0: never seen).
/// Returns the decision and the TAT to store (unchanged when refused).
pub fn gcra(limit: &RateLimit, tat_micros: u64, now_micros: u64, cost: u32) -> (RateDecision, u64) {
    let interval = limit.interval_micros();
    let tolerance = interval.saturating_mul(u64::from(limit.burst));
    let tat = tat_micros.max(now_micros);
    let new_tat = tat.saturating_add(interval.saturating_mul(u64::from(cost)));
    // Allowed when the new TAT lies within one burst of now.
    let allow_at = new_tat.saturating_sub(tolerance);
    if allow_at <= now_micros {
        let decision = RateDecision {
            allowed: true,
            retry_after: Duration::ZERO,
            unmetered: false,
        };
        (decision, new_tat)
    } else {
        let decision = RateDecision {
            allowed: false,
            retry_after: Duration::from_micros(allow_at - now_micros),
            unmetered: false,
        };
        (decision, tat_micros)
    }
}

/// Counts requests against limits.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts a request of `cost` (usually 1) against `key` under `limit`.
    async fn check(&self, key: &str, limit: &RateLimit, cost: u32) -> Result<RateDecision>;
}

/// Checks a key and cost before a limiter call.
pub fn check_request(key: &str, limit: &RateLimit, cost: u32) -> Result<()> {
    crate::cache::check_key("key", key)?;
    limit.validate()?;
    if cost == 0 || cost > limit.burst {
        return Err(Error::invalid(format!(
            "rate limit cost must be between 1 and the burst ({}), not {cost}",
            limit.burst
        ))
        .on_field("cost"));
    }
    Ok(())
}

/// A limiter inside this process (one TAT per key behind a lock).
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    tats: Mutex<HashMap<String, u64>>,
}

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`RateLimiter::check`] at an explicit instant (microseconds since the Unix epoch).
    pub fn check_at(
        &self,
        key: &str,
        limit: &RateLimit,
        cost: u32,
        now_micros: u64,
    ) -> Result<RateDecision> {
        check_request(key, limit, cost)?;
        let mut tats = self
            .tats
            .lock()
            .map_err(|_| Error::internal("rate limiter lock poisoned by a panic"))?;
        let stored = tats.get(key).copied().unwrap_or(0);
        let (decision, tat) = gcra(limit, stored, now_micros, cost);
        if tat <= now_micros {
            // The key is back to full burst: forget it (what a Redis TTL does).
            tats.remove(key);
        } else {
            tats.insert(key.to_string(), tat);
        }
        Ok(decision)
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, limit: &RateLimit, cost: u32) -> Result<RateDecision> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.check_at(key, limit, cost, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let limit = RateLimit::for_writes(10, Duration::from_secs(1), 3);
        let limiter = MemoryRateLimiter::new();
        let t0 = 1_000_000_000;
        for _ in 0..3 {
            assert!(limiter.check_at("k", &limit, 1, t0).unwrap().allowed);
        }
        let refused = limiter.check_at("k", &limit, 1, t0).unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        // Refusals are not counted: after one interval exactly one more is allowed.
        assert!(
            limiter
                .check_at("k", &limit, 1, t0 + 100_000)
                .unwrap()
                .allowed
        );
        assert!(
            !limiter
                .check_at("k", &limit, 1, t0 + 100_000)
                .unwrap()
                .allowed
        );
        // Other keys have their own budget.
        assert!(limiter.check_at("other", &limit, 1, t0).unwrap().allowed);
        // A quiet spell refills the burst.
        for _ in 0..3 {
            assert!(
                limiter
                    .check_at("k", &limit, 1, t0 + 5_000_000)
                    .unwrap()
                    .allowed
            );
        }
    }

    #[test]
    fn costs_and_limits_are_checked() {
        let limiter = MemoryRateLimiter::new();
        let limit = RateLimit::for_reads(10, Duration::from_secs(1), 3);
        let err = limiter.check_at("k", &limit, 4, 0).unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("cost"));
        let bad = RateLimit { rate: 0, ..limit };
        let err = limiter.check_at("k", &bad, 1, 0).unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("rate"));
        let err = limiter.check_at("", &limit, 1, 0).unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("key"));
        assert!(limiter.check_at("k", &limit, 3, 0).unwrap().allowed);
    }
}
