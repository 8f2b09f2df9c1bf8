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

/// One message on the channel: an update, or a batch's updates in order.
#[derive(Deserialize)]
#[serde(untagged)]
enum Message {
    One(JobUpdate),
    Batch(Vec<JobUpdate>),
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
        let inner = pubsub.into_on_message().flat_map(|msg| {
            let updates = match serde_json::from_slice::<Message>(msg.get_payload_bytes()) {
                Ok(Message::One(update)) => vec![update],
                Ok(Message::Batch(updates)) => updates,
                Err(e) => {
                    tracing::warn!(error = %e, "job update that does not parse: skipped");
                    Vec::new()
                }
            };
            futures::stream::iter(updates)
        });
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
