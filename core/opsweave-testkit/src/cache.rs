//! The conformance suites every [`Cache`] and [`RateLimiter`] must pass.

use opsweave_core::{Cache, ErrorKind, RateLimit, RateLimiter};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs every cache check on `cache`. `pass` lets `d` go by: a real sleep for a shared cache,
/// a clock moved by hand for an in-process one.
pub async fn run_cache_conformance<P, Fut>(cache: Arc<dyn Cache>, pass: P)
where
    P: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    let long = Duration::from_secs(600);
    assert_eq!(cache.get("focus:acme").await.unwrap(), None, "empty cache");
    let tags = vec!["scope:acme".to_string(), "kind:focus".to_string()];
    cache
        .set("focus:acme", b"answer \x00 bytes", long, &tags)
        .await
        .unwrap();
    assert_eq!(
        cache.get("focus:acme").await.unwrap().as_deref(),
        Some(&b"answer \x00 bytes"[..]),
        "values are bytes, kept verbatim"
    );
    cache
        .set("recall:acme", b"hits", long, &["scope:acme".to_string()])
        .await
        .unwrap();
    cache
        .set(
            "focus:globex",
            b"other",
            long,
            &["scope:globex".to_string()],
        )
        .await
        .unwrap();
    // Setting a key again replaces its value and its tags.
    cache
        .set(
            "recall:acme",
            b"hits v2",
            long,
            &["kind:recall".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(
        cache.get("recall:acme").await.unwrap().as_deref(),
        Some(&b"hits v2"[..])
    );
    let removed = cache.invalidate_tag("scope:acme").await.unwrap();
    assert_eq!(removed, 1, "only focus:acme is still tagged scope:acme");
    assert_eq!(cache.get("focus:acme").await.unwrap(), None);
    assert!(cache.get("recall:acme").await.unwrap().is_some());
    assert!(cache.get("focus:globex").await.unwrap().is_some());
    assert_eq!(cache.invalidate_tag("scope:acme").await.unwrap(), 0);
    assert_eq!(cache.invalidate_tag("kind:recall").await.unwrap(), 1);
    assert_eq!(cache.get("recall:acme").await.unwrap(), None);

    // Time to live.
    let short = Duration::from_millis(200);
    cache
        .set("short", b"soon gone", short, &["t".to_string()])
        .await
        .unwrap();
    assert!(cache.get("short").await.unwrap().is_some());
    pass(short * 4).await;
    assert_eq!(cache.get("short").await.unwrap(), None, "expired");
    assert!(cache.get("focus:globex").await.unwrap().is_some());

    // Bad input names its field and stores nothing.
    let err = cache.set("", b"x", long, &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = cache.set("k", b"x", Duration::ZERO, &[]).await.unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("ttl"));
    let err = cache
        .set("k", b"x", long, &["".to_string()])
        .await
        .unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("tag"));
    assert_eq!(cache.get("k").await.unwrap(), None);
}

/// Runs every rate limiter check on `limiter`; `key` must be unused in it.
///
/// The limits are slow (a few per hour) so nothing refills while the checks run.
pub async fn run_rate_limit_conformance(limiter: Arc<dyn RateLimiter>, key: &str) {
    let limit = RateLimit::for_writes(6, Duration::from_secs(3600), 3);
    for n in 0..3 {
        let d = limiter.check(key, &limit, 1).await.unwrap();
        assert!(d.allowed && !d.unmetered, "request {n} of the burst: {d:?}");
    }
    let refused = limiter.check(key, &limit, 1).await.unwrap();
    assert!(!refused.allowed, "the burst is spent");
    // One interval is 10 minutes; the next request is allowed after at most one of them.
    assert!(
        refused.retry_after > Duration::from_secs(500)
            && refused.retry_after <= Duration::from_secs(600),
        "{:?}",
        refused.retry_after
    );
    let other = format!("{key}:other");
    let d = limiter.check(&other, &limit, 3).await.unwrap();
    assert!(d.allowed, "keys have their own budget");
    assert!(!limiter.check(&other, &limit, 1).await.unwrap().allowed);

    // Concurrent requests against one fresh key: exactly the burst goes through.
    let racing = format!("{key}:race");
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let limiter = limiter.clone();
        let racing = racing.clone();
        tasks.push(tokio::spawn(async move {
            limiter.check(&racing, &limit, 1).await.unwrap().allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        if task.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3, "concurrent requests share one budget");

    let err = limiter.check(key, &limit, 0).await.unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("cost"));
    let bad = RateLimit { burst: 0, ..limit };
    let err = limiter.check(key, &bad, 1).await.unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("burst"));
}
