//! Maps sqlx errors into the core error, once, and tells which failures are worth retrying.

use opsweave_core::{Error, ErrorKind};
use std::error::Error as _;

/// Turns a sqlx error into the core error, keeping it as the source.
pub(crate) fn map(context: &str, e: sqlx::Error) -> Error {
    let kind = match &e {
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ErrorKind::Unavailable
        }
        e if is_transient(e) => ErrorKind::Unavailable,
        sqlx::Error::Database(db) if db.is_unique_violation() => ErrorKind::Conflict,
        sqlx::Error::Database(db) if db.is_check_violation() => ErrorKind::InvalidInput,
        // 22xxx: data exceptions (a date out of range, a value the column cannot hold).
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => {
            ErrorKind::InvalidInput
        }
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("postgres: {context}: {e}")).with_source(e)
}

/// True for failures that a fresh attempt of the whole transaction may not meet again:
/// serialization failures, deadlocks, lost or refused connections, a server shutting down.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(
                code.as_ref(),
                // serialization_failure, deadlock_detected
                "40001" | "40P01"
                // admin_shutdown, crash_shutdown, cannot_connect_now
                | "57P01" | "57P02" | "57P03"
            ) || code.starts_with("08")
        }),
        _ => false,
    }
}

/// True when `e` came from a sqlx failure that [`is_transient`] accepts.
pub(crate) fn is_transient_error(e: &Error) -> bool {
    e.kind() == ErrorKind::Unavailable
        && e.source()
            .and_then(|s| s.downcast_ref::<sqlx::Error>())
            .is_some_and(is_transient)
}
