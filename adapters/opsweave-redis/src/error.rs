//! Maps redis errors into the core error, once.

use opsweave_core::{Error, ErrorKind};

/// Turns a redis error into the core error, keeping it as the source: a server that cannot be
/// reached (refused, dropped, timed out) is `Unavailable`, anything else `Internal`.
pub(crate) fn map(context: &str, e: redis::RedisError) -> Error {
    let kind = if is_unreachable(&e) {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Internal
    };
    Error::new(kind, format!("redis: {context}: {e}")).with_source(e)
}

/// True when the server could not be reached or stopped answering.
pub(crate) fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}
