//! The in-process cache and rate limiter pass the same suites as the Redis ones.

use opsweave_core::{Cache, MemoryCache, MemoryRateLimiter, RateLimiter};
use opsweave_testkit::{run_cache_conformance, run_rate_limit_conformance};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test]
async fn memory_cache_passes_the_cache_suite() {
    // A clock the test moves by hand: no sleeping, and expiry is exact.
    let offset = Arc::new(Mutex::new(Duration::ZERO));
    let start = Instant::now();
    let clock = offset.clone();
    let cache = Arc::new(MemoryCache::with_clock(Arc::new(move || {
        start + *clock.lock().expect("clock")
    })));
    run_cache_conformance(cache.clone() as Arc<dyn Cache>, |d| {
        *offset.lock().expect("clock") += d;
        async {}
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_rate_limiter_passes_the_rate_limit_suite() {
    run_rate_limit_conformance(
        Arc::new(MemoryRateLimiter::new()) as Arc<dyn RateLimiter>,
        "api:acme",
    )
    .await;
}
