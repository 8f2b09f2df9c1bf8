//! Maps sqlx and rusqlite errors into the core error, once.

use opsweave_core::{Error, ErrorKind};

/// Turns a sqlx error into the core error, keeping it as the source.
pub(crate) fn map(context: &str, e: sqlx::Error) -> Error {
    let kind = match &e {
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::Database(db) => {
            let message = db.message();
            if message.contains("locked") || message.contains("busy") {
                ErrorKind::Unavailable
            } else if db.is_unique_violation() {
                ErrorKind::Conflict
            } else {
                ErrorKind::Internal
            }
        }
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("sqlite: {context}: {e}")).with_source(e)
}

/// Turns a rusqlite error into the core error the way [`map`] does for sqlx's.
pub(crate) fn map_rusqlite(context: &str, e: rusqlite::Error) -> Error {
    use rusqlite::ffi;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(code, _) => match code.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::Conflict
            }
            _ if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
            {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        },
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("sqlite: {context}: {e}")).with_source(e)
}
