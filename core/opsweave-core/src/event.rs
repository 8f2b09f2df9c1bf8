//! Events: the append-only history every state change leaves.

use crate::{RecordId, Scope, TaskStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened, with the data needed to replay or undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A task's status changed (complete, reopen, drop).
    StatusChanged {
        /// Status before the change.
        from: TaskStatus,
        /// Status after the change.
        to: TaskStatus,
    },
    /// An earlier status change was undone.
    Undone {
        /// Sequence number of the event that was undone.
        undoes: i64,
        /// Status before the undo.
        from: TaskStatus,
        /// Status restored.
        to: TaskStatus,
    },
    /// An ingest run finished.
    Ingested {
        /// Source kind ingested.
        source: String,
        /// Items inserted.
        inserted: u64,
        /// Items updated.
        updated: u64,
        /// Items unchanged.
        unchanged: u64,
        /// Items rejected.
        rejected: u64,
    },
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Who it belongs to.
    pub scope: Scope,
    /// Who did it (`cli`, a user, an API key name).
    pub actor: String,
    /// The record it is about, if any.
    pub subject: Option<RecordId>,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: DateTime<Utc>,
}

/// An appended event with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log: strictly increasing.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: NewEvent,
}
