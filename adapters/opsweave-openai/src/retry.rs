//! When to retry and how long to wait: status classes, `Retry-After`, backoff with full jitter.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::config::RetryPolicy;

/// Whether a response status is worth another attempt: the server was busy or broken, not the
/// request wrong.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// How long the server asked the client to wait: `retry-after-ms` (OpenAI's, milliseconds)
/// first, then `Retry-After` as seconds or as an HTTP date.
pub(crate) fn server_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(seconds(ms / 1000.0));
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| seconds(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // A date in the past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A wait of `secs` (finite, not negative); one too long for a `Duration` is the longest, more
/// than any `max_retry_after`, so the retries end instead of the process.
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// The backoff before retry `retry` (1 for the first retry): uniform in
/// `0..=min(max_backoff, initial_backoff * 2^(retry-1))`.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let ceiling = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    ceiling.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_in_seconds_ms_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            server_wait(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            server_wait(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        // retry-after-ms wins over Retry-After.
        assert_eq!(
            server_wait(
                &headers(&[("retry-after", "20"), ("retry-after-ms", "250")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            server_wait(&headers(&[("retry-after", &later)]), now),
            Some(Duration::from_secs(7))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(
            server_wait(&headers(&[("retry-after", &earlier)]), now),
            Some(Duration::ZERO)
        );
        // Waits no Duration holds are the longest wait, not a panic.
        for (name, huge) in [
            ("retry-after", "1e20"),
            ("retry-after", "99999999999999999999"),
            ("retry-after-ms", "1e23"),
        ] {
            assert_eq!(
                server_wait(&headers(&[(name, huge)]), now),
                Some(Duration::MAX),
                "{name}: {huge}"
            );
        }
        assert_eq!(server_wait(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(server_wait(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(server_wait(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_stays_under_the_doubling_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..200 {
            assert!(backoff(&policy, 1) <= Duration::from_millis(100));
            assert!(backoff(&policy, 3) <= Duration::from_millis(400));
            assert!(backoff(&policy, 9) <= Duration::from_millis(1000));
            assert!(backoff(&policy, u32::MAX) <= Duration::from_millis(1000));
        }
        // Full jitter: not always the ceiling.
        let draws: Vec<_> = (0..50).map(|_| backoff(&policy, 4)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(790)));
    }

    #[test]
    fn statuses_that_are_retried() {
        assert!(is_retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_retryable(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(is_retryable(StatusCode::BAD_GATEWAY));
        assert!(is_retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(is_retryable(StatusCode::REQUEST_TIMEOUT));
        assert!(!is_retryable(StatusCode::BAD_REQUEST));
        assert!(!is_retryable(StatusCode::UNAUTHORIZED));
        assert!(!is_retryable(StatusCode::NOT_FOUND));
    }
}
