//! Complete and undo as events: what change each one asks for.

use crate::{Error, Event, EventKind, RecordId, Result, TaskStatus};

/// What a status operation should do given the task's state and its last status event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPlan {
    /// Nothing to do: the operation was already applied (repeating it is harmless).
    Nothing,
    /// Change `from` → `to`; for an undo, `undoes` is the event it reverts.
    Change {
        /// Current status.
        from: TaskStatus,
        /// New status.
        to: TaskStatus,
        /// The event undone, for an undo.
        undoes: Option<i64>,
    },
}

/// Plans completing a task currently in `status`.
pub fn plan_complete(status: TaskStatus) -> StatusPlan {
    if status == TaskStatus::Done {
        StatusPlan::Nothing
    } else {
        StatusPlan::Change {
            from: status,
            to: TaskStatus::Done,
            undoes: None,
        }
    }
}

/// Plans undoing the last status change of a task currently in `status`, given its last
/// status event (`StatusChanged` or `Undone`) and the status its source last gave it (when the
/// store keeps it). Undo after undo does nothing.
///
/// A user only ever completes a task, and undo restores what was there before, so the status a
/// change started from is the source's, unless the source changed it since (ingest writes a
/// source's change without an event). Then the change to undo is no longer the user's last word
/// on the task, and undo does nothing rather than reopen what the source closed.
pub fn plan_undo(
    status: TaskStatus,
    source_status: Option<&str>,
    last: Option<&Event>,
) -> StatusPlan {
    match last.map(|e| (&e.event.kind, e.seq)) {
        Some((EventKind::StatusChanged { from, to }, seq))
            if *to == status && source_status.is_none_or(|s| s == from.as_str()) =>
        {
            StatusPlan::Change {
                from: status,
                to: *from,
                undoes: Some(seq),
            }
        }
        _ => StatusPlan::Nothing,
    }
}

/// Checks, for a store about to record an undo of event `undoes` on task `id`, one event of the
/// task that came after it: `Conflict` when it is a status change or undo, because then the
/// undo was planned before it and would record the wrong change as undone.
pub fn undo_still_current(id: RecordId, undoes: i64, later: &Event) -> Result<()> {
    match later.event.kind {
        EventKind::StatusChanged { .. } | EventKind::Undone { .. } => {
            Err(Error::conflict(format!(
                "task {id} changed status after event {undoes} (event {}): undo it again",
                later.seq
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Scope};
    use chrono::Utc;

    fn event(seq: i64, kind: EventKind) -> Event {
        Event {
            seq,
            event: NewEvent {
                scope: Scope::default(),
                actor: "t".into(),
                subject: None,
                kind,
                at: Utc::now(),
            },
        }
    }

    #[test]
    fn complete_then_undo_restores_and_repeats_are_harmless() {
        assert_eq!(plan_complete(TaskStatus::Done), StatusPlan::Nothing);
        assert_eq!(
            plan_complete(TaskStatus::Doing),
            StatusPlan::Change {
                from: TaskStatus::Doing,
                to: TaskStatus::Done,
                undoes: None
            }
        );
        let completed = event(
            7,
            EventKind::StatusChanged {
                from: TaskStatus::Doing,
                to: TaskStatus::Done,
            },
        );
        assert_eq!(
            plan_undo(TaskStatus::Done, None, Some(&completed)),
            StatusPlan::Change {
                from: TaskStatus::Done,
                to: TaskStatus::Doing,
                undoes: Some(7)
            }
        );
        let undone = event(
            8,
            EventKind::Undone {
                undoes: 7,
                from: TaskStatus::Done,
                to: TaskStatus::Doing,
            },
        );
        assert_eq!(
            plan_undo(TaskStatus::Doing, None, Some(&undone)),
            StatusPlan::Nothing
        );
        assert_eq!(plan_undo(TaskStatus::Todo, None, None), StatusPlan::Nothing);
        // The source changed the status since: undo must not clobber it.
        assert_eq!(
            plan_undo(TaskStatus::Todo, None, Some(&completed)),
            StatusPlan::Nothing
        );
        // ... also when the source then closed the task itself: the status is the event's
        // `to` again, but the source says done, not the `doing` the undo would restore.
        assert_eq!(
            plan_undo(TaskStatus::Done, Some("done"), Some(&completed)),
            StatusPlan::Nothing
        );
        assert_eq!(
            plan_undo(TaskStatus::Done, Some("doing"), Some(&completed)),
            StatusPlan::Change {
                from: TaskStatus::Done,
                to: TaskStatus::Doing,
                undoes: Some(7)
            }
        );
    }
}
