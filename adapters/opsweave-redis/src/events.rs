//! Job progress fan-out: the queue's scripts publish every change of a job on one pub/sub
//! channel, in the same atomic step as the change, so every process subscribed sees it. A
//! message is one update (a JSON object) or, from a script that changed a batch of jobs, the
//! batch's updates in order (a JSON array).

use crate::error::map;
use crate::Redis;
use futures::{Stream, StreamExt};
use opsweave_core::{JobId, JobStatus, Result, Scope};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::task::{Context, Poll};

/// One change of a job, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    /// The job.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Its scope (subscribers filter by it).
    pub scope: Scope,
    /// Its status after the change.
    pub status: JobStatus,
    /// Progress in [0, 1].
    pub progress: f64,
    /// The worker's last progress message.
    #[serde(default)]
    pub message: Option<String>,
    /// Attempts started so far.
    pub attempts: u32,
}

/// The updates one message on the channel holds: an update (a JSON object), or a batch's
/// updates in order (a JSON array). An update that does not parse is skipped and logged with
/// serde's reason; the others in its batch still count.
fn parse_message(payload: &[u8]) -> Vec<JobUpdate> {
    let skip = |e: serde_json::Error| {
        tracing::warn!(error = %e, "job update that does not parse: skipped");
    };
    if payload.first() != Some(&b'[') {
        return serde_json::from_slice(payload)
            .map_err(skip)
            .into_iter()
            .collect();
    }
    match serde_json::from_slice::<Vec<serde_json::Value>>(payload) {
        Ok(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).map_err(skip).ok())
            .collect(),
        Err(e) => {
            skip(e);
            Vec::new()
        }
    }
}

pub(crate) fn channel(redis: &Redis) -> String {
    redis.key("events")
}

/// The updates of one queue's jobs, from the moment of subscribing (pub/sub keeps no history:
/// read the job for its state before then). Messages that do not parse are skipped and logged.
pub struct JobUpdates {
    inner: Pin<Box<dyn Stream<Item = JobUpdate> + Send>>,
}

impl std::fmt::Debug for JobUpdates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobUpdates").finish_non_exhaustive()
    }
}

impl JobUpdates {
    pub(crate) async fn subscribe(redis: &Redis) -> Result<Self> {
        let mut pubsub = redis
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| map("subscribe to job updates", e))?;
        pubsub
            .subscribe(channel(redis))
            .await
            .map_err(|e| map("subscribe to job updates", e))?;
        let inner = pubsub
            .into_on_message()
            .flat_map(|msg| futures::stream::iter(parse_message(msg.get_payload_bytes())));
        Ok(Self {
            inner: Box::pin(inner),
        })
    }
}

impl Stream for JobUpdates {
    type Item = JobUpdate;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobUpdate>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPDATE: &str = r#"{"id":7,"status":"running","progress":0,"message":null,"kind":"embed","attempts":1,"scope":{"org":"acme"}}"#;

    #[test]
    fn a_message_is_one_update_or_a_batch_of_them() {
        let one = parse_message(UPDATE.as_bytes());
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].id, one[0].status), (JobId(7), JobStatus::Running));
        let done = UPDATE
            .replace("\"id\":7", "\"id\":8")
            .replace("running", "done");
        let batch = parse_message(format!("[{UPDATE},{done}]").as_bytes());
        let seen: Vec<_> = batch.iter().map(|u| (u.id, u.status)).collect();
        assert_eq!(
            seen,
            vec![(JobId(7), JobStatus::Running), (JobId(8), JobStatus::Done)]
        );
    }

    #[test]
    fn an_update_that_does_not_parse_loses_only_itself() {
        let unknown = UPDATE.replace("running", "paused");
        let batch = parse_message(format!("[{unknown},{UPDATE}]").as_bytes());
        assert_eq!(
            batch.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![JobId(7)]
        );
        assert!(parse_message(unknown.as_bytes()).is_empty());
        assert!(parse_message(b"[not json").is_empty());
        assert!(parse_message(b"").is_empty());
    }
}
