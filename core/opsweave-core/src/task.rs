//! Tasks: the actionable view of records (issues, opportunities, messages, to-dos).

use crate::priority::Priority;
use crate::{Error, Horizon, RecordId, Result, Scope};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not started.
    Todo,
    /// In progress.
    Doing,
    /// Finished.
    Done,
    /// Abandoned (lost deal, won't fix).
    Dropped,
}

impl TaskStatus {
    /// Every status.
    pub const ALL: [TaskStatus; 4] = [Self::Todo, Self::Doing, Self::Done, Self::Dropped];

    /// The name used in files, SQL and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::Doing => "doing",
            Self::Done => "done",
            Self::Dropped => "dropped",
        }
    }

    /// True for todo and doing: the task still asks for work.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Todo | Self::Doing)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown task status `{s}` (expected todo, doing, done or dropped)"
                ))
            })
    }
}

/// What a mapping extracts from a source item to make it a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSeed {
    /// Status as the source reports it.
    pub status: Option<TaskStatus>,
    /// Due date, if any.
    pub due: Option<NaiveDate>,
    /// Signals that make it important.
    pub signals: Signals,
}

/// The source signals that feed a task's importance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Priority labels as the source gives them (`P0`, `Blocker`, `High`, Odoo stars `3`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Deal value in its currency, as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Currency of `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Win probability in percent (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Sender address of a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
}

/// A task as stored: the record's actionable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    /// The record this task is.
    pub id: RecordId,
    /// Who it belongs to.
    pub scope: Scope,
    /// The record's title.
    pub title: String,
    /// The source kind (`jira`, `odoo`…).
    pub source_kind: String,
    /// Link back to the source item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Current status (the user's complete / undo wins over the source).
    pub status: TaskStatus,
    /// Due date, if any.
    pub due: Option<NaiveDate>,
    /// Importance in [0, 1] from the source signals.
    pub importance: f64,
    /// Why the importance is what it is.
    pub importance_reason: String,
    /// Manual boost added to the score (points).
    pub boost: f64,
    /// Pinned tasks go to today and rank first.
    pub pinned: bool,
    /// When the source item last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was completed, if it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// A task ranked for focus: the task, its horizon and its explained score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RankedTask {
    /// The task.
    #[serde(flatten)]
    pub task: Task,
    /// The horizon it falls in now.
    pub horizon: Horizon,
    /// Its score and the breakdown that explains it.
    pub priority: Priority,
}
