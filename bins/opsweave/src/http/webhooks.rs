//! Webhooks: `POST /api/webhooks/{source}` with `X-Opsweave-Signature: t=UNIX,v1=HEX`, where HEX
//! is HMAC-SHA256 of `"{t}.{body}"` under the source's secret. Signatures older than the replay
//! window, or seen before inside it, are refused; the payload (an object or an array of them) is
//! ingested with the source's preset into its configured scope.

use super::problem::{ApiResult, Path, Problem};
use super::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use utoipa::ToSchema;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-opsweave-signature";

/// Signatures accepted recently, kept until their window ends (per process: a replay to another
/// process behind a load balancer is still bounded by the window). Keyed by what was verified
/// (source, timestamp, MAC bytes), not by the header's text: a header spelled another way
/// (upper-case hex, reordered or repeated entries, `t=+T`) is the same signature.
#[derive(Debug, Default)]
pub struct SeenSignatures(Mutex<HashMap<Verified, (i64, Delivery)>>);

/// A verified signature: source, timestamp, MAC bytes.
type Verified = (String, i64, Vec<u8>);

/// Where the delivery of a signature stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Being ingested now: a retry is asked to come back shortly (503), as the first may fail.
    InFlight,
    /// Ingested: the signature is used up (409 for a replay).
    Done,
}

impl SeenSignatures {
    /// Claims the signature for a delivery until `expires` (unix seconds); the delivery it is
    /// already claimed by otherwise.
    fn claim(
        &self,
        source: &str,
        t: i64,
        mac: &[u8],
        now: i64,
        expires: i64,
    ) -> Result<Claim<'_>, Delivery> {
        let mut seen = self.lock();
        seen.retain(|_, (until, _)| *until >= now);
        let key = (source.to_string(), t, mac.to_vec());
        if let Some((_, delivery)) = seen.get(&key) {
            return Err(*delivery);
        }
        seen.insert(key.clone(), (expires, Delivery::InFlight));
        Ok(Claim {
            seen: self,
            key,
            delivered: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Verified, (i64, Delivery)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A signature claimed for one delivery. Dropped without [`Claim::delivered`] (the delivery
/// failed, or the request was dropped midway: ingest is idempotent), it lets the signature be
/// offered again, so the sender's retry is heard rather than refused as a replay.
struct Claim<'a> {
    seen: &'a SeenSignatures,
    key: Verified,
    delivered: bool,
}

impl Claim<'_> {
    /// The payload is ingested: the signature is used up until its window ends.
    fn delivered(mut self) {
        if let Some((_, delivery)) = self.seen.lock().get_mut(&self.key) {
            *delivery = Delivery::Done;
        }
        self.delivered = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.delivered {
            self.seen.lock().remove(&self.key);
        }
    }
}

/// The signature a sender computes for `body` at unix time `t` (what tests send).
#[cfg(test)]
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// `t` and `v1` of the header; `None` when either is missing, malformed or given twice.
fn parse_signature(header: &str) -> Option<(i64, Vec<u8>)> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            // Digits only (a `-` for times before 1970, which are then out of the window).
            Some(("t", value))
                if t.is_none()
                    && value
                        .strip_prefix('-')
                        .unwrap_or(value)
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                t = Some(value.parse::<i64>().ok()?);
            }
            Some(("v1", value)) if v1.is_none() && value.len() == 64 => {
                v1 = Some(
                    (0..64)
                        .step_by(2)
                        .map(|i| u8::from_str_radix(value.get(i..i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()?,
                );
            }
            Some(("t" | "v1", _)) => return None,
            _ => {}
        }
    }
    Some((t?, v1?))
}

/// Receives a signed webhook and ingests its payload.
#[utoipa::path(post, path = "/api/webhooks/{source}", tag = "ingest",
    params(("source" = String, Path, description = "a configured webhook source"),
           ("X-Opsweave-Signature" = String, Header, description = "t=UNIX,v1=HEX (HMAC-SHA256 of `{t}.{body}`)")),
    request_body(content = Object, description = "an item or an array of items"),
    responses((status = 200, description = "ingest report", body = Delivered), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, description = "the signature was already delivered", body = Problem, content_type = "application/problem+json"), (status = 503, description = "the signature's first delivery is still being ingested (Retry-After)", body = Problem, content_type = "application/problem+json")))]
pub async fn receive(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Delivered>)> {
    let hook = state
        .webhooks
        .get(&source)
        .ok_or_else(|| Problem::not_found(format!("no webhook source `{source}`")))?;
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Problem::unauthorized("missing X-Opsweave-Signature header"))?;
    let (t, given) = parse_signature(header).ok_or_else(|| {
        Problem::unauthorized(
            "malformed X-Opsweave-Signature (expected t=UNIX,v1=64 hex digits, each once)",
        )
    })?;
    let now = chrono::Utc::now().timestamp();
    let window = i64::try_from(hook.replay_window_secs).unwrap_or(i64::MAX);
    // Checked: a timestamp near i64::MIN would overflow the difference, and wrapped it reads as
    // inside the window.
    let age = now.checked_sub(t).and_then(i64::checked_abs);
    if age.is_none_or(|age| age > window) {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "signature_expired",
            "Signature expired",
            format!("the signature's timestamp is outside the {window} s replay window"),
        ));
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(hook.secret.expose().as_bytes())
        .map_err(|_| Problem::from(opsweave::Error::internal("webhook secret unusable")))?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    // Constant-time comparison.
    mac.verify_slice(&given).map_err(|_| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "Bad signature",
            "the signature does not match the body",
        )
    })?;
    let claim = match state
        .seen_signatures
        .claim(&source, t, &given, now, t.saturating_add(window))
    {
        Ok(claim) => claim,
        Err(Delivery::Done) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "replayed",
                "Replayed",
                "this signature was already used",
            ))
        }
        Err(Delivery::InFlight) => {
            let mut busy = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "delivery_in_progress",
                "Delivery in progress",
                "the first delivery of this signature is still being ingested; retry shortly",
            );
            busy.retry_after = Some(1);
            return Err(busy);
        }
    };
    let delivered = async {
        let payload: Value = serde_json::from_slice(&body)
            .map_err(|e| Problem::invalid(format!("the body is not JSON: {e}")))?;
        let rows = match payload {
            Value::Array(items) => items,
            item @ Value::Object(_) => vec![item],
            _ => {
                return Err(Problem::invalid(
                    "the body must be a JSON object or an array of objects",
                ))
            }
        };
        let mapping = opsweave::preset(&hook.preset)?;
        Ok(state
            .weave
            .ingest_rows(rows, &format!("webhook:{source}"), &mapping, &hook.scope)
            .await?)
    }
    .await;
    // A failed delivery drops the claim, freeing the signature for the sender's retry.
    let report = delivered?;
    claim.delivered();
    Ok((
        StatusCode::OK,
        Json(Delivered {
            inserted: report.inserted,
            updated: report.updated,
            unchanged: report.unchanged,
            rejected: report.rejected,
        }),
    ))
}

/// What a delivery's items did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivered {
    /// New records.
    pub inserted: u64,
    /// Changed records.
    pub updated: u64,
    /// Records whose content was unchanged.
    pub unchanged: u64,
    /// Items that could not be read as records, each with its reason.
    pub rejected: Vec<opsweave::Rejection>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_claimed_once_and_freed_when_its_delivery_fails() {
        let seen = SeenSignatures::default();
        let claim = |t: i64| seen.claim("github", t, b"mac", 100, 400).map(|_| ());
        let first = seen.claim("github", 1, b"mac", 100, 400).unwrap();
        // While it is being ingested, a retry is told to come back.
        assert_eq!(claim(1), Err(Delivery::InFlight));
        // Another signature is its own.
        assert_eq!(claim(2), Ok(()));
        // Failed (dropped undelivered): the retry is heard.
        drop(first);
        let again = seen.claim("github", 1, b"mac", 100, 400).unwrap();
        again.delivered();
        assert_eq!(claim(1), Err(Delivery::Done));
        // Past its window the entry is gone.
        assert!(seen.claim("github", 1, b"mac", 401, 700).is_ok());
    }
}
