//! Runs a whole transaction again, with backoff, when it failed for a transient reason.

use crate::error::is_transient_error;
use opsweave_core::Result;
use std::future::Future;
use std::time::Duration;

/// Attempts after the first.
const RETRIES: u32 = 5;
/// The first pause; each later one is three times longer (20, 60, 180, 540, 1620 ms), plus jitter.
const FIRST_PAUSE: Duration = Duration::from_millis(20);

/// Runs `attempt` until it succeeds, fails for a reason a retry cannot fix, or has been retried
/// [`RETRIES`] times. Each attempt must be a whole transaction: a failed one has rolled back.
pub(crate) async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut retried = 0;
    loop {
        match attempt().await {
            Err(e) if retried < RETRIES && is_transient_error(&e) => {
                tokio::time::sleep(pause(retried)).await;
                retried += 1;
            }
            done => return done,
        }
    }
}

/// The pause before retry `n` (0-based): exponential, with up to 50% jitter so that writers that
/// collided do not collide again in step.
fn pause(n: u32) -> Duration {
    let base = FIRST_PAUSE * 3u32.pow(n);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsweave_core::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn lost_connection() -> Error {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        crate::error::map("test", sqlx::Error::Io(io))
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let got = with_retries(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(lost_connection()),
                n => Ok(n),
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 2);
    }

    #[tokio::test]
    async fn other_failures_and_exhausted_retries_are_reported() {
        let calls = AtomicU32::new(0);
        let err = with_retries(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Error::conflict("changed meanwhile"))
        })
        .await
        .unwrap_err();
        assert_eq!(
            (err.kind(), calls.load(Ordering::SeqCst)),
            (opsweave_core::ErrorKind::Conflict, 1)
        );
        calls.store(0, Ordering::SeqCst);
        tokio::time::pause();
        let err = with_retries(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(lost_connection())
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), opsweave_core::ErrorKind::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), RETRIES + 1);
    }

    #[test]
    fn pauses_grow() {
        assert!(pause(0) >= FIRST_PAUSE && pause(0) < FIRST_PAUSE * 2);
        assert!(pause(4) >= FIRST_PAUSE * 81);
    }
}
