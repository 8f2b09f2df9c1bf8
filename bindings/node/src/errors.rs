//! The one place opsweave errors become JavaScript errors: an `Error` whose `code` names the kind
//! (`INVALID_INPUT`, `NOT_FOUND`, `CONFLICT`, `UNAUTHORIZED`, `UNAVAILABLE`, `INTERNAL`), with
//! `file`, `line` and `field` when known, and the cause chain as `cause` and in the message.

use napi::bindgen_prelude::*;
use napi::Env;
use opsweave::{Error, ErrorKind};

/// The stable `code` of an error kind.
pub fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "INVALID_INPUT",
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::Conflict => "CONFLICT",
        ErrorKind::Unauthorized => "UNAUTHORIZED",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::Internal => "INTERNAL",
        _ => "OPSWEAVE_ERROR",
    }
}

/// The JavaScript error for `err`, ready to reject a promise or be thrown.
pub fn to_js(env: &Env, err: &Error) -> napi::Error {
    match build(env, err) {
        Ok(object) => napi::Error::from(object.to_unknown()),
        // Only when the environment is going away: a plain error with the same text.
        Err(_) => napi::Error::new(Status::GenericFailure, message(err)),
    }
}

/// The message: the error, then each cause after a colon.
fn message(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn build<'env>(env: &'env Env, err: &Error) -> Result<Object<'env>> {
    let mut object = env.create_error(napi::Error::new(Status::GenericFailure, message(err)))?;
    object.set("code", code(err.kind()))?;
    let location = err.location();
    if let Some(file) = &location.file {
        object.set("file", file.as_str())?;
    }
    if let Some(line) = location.line {
        object.set("line", line as f64)?;
    }
    if let Some(field) = &location.field {
        object.set("field", field.as_str())?;
    }
    if let Some(cause) = causes(env, std::error::Error::source(err))? {
        object.set("cause", cause)?;
    }
    Ok(object)
}

/// The underlying causes as a chain of plain `Error`s linked by `cause`, outermost first.
fn causes<'env>(
    env: &'env Env,
    source: Option<&(dyn std::error::Error + 'static)>,
) -> Result<Option<Object<'env>>> {
    let Some(source) = source else {
        return Ok(None);
    };
    let mut object =
        env.create_error(napi::Error::new(Status::GenericFailure, source.to_string()))?;
    if let Some(next) = causes(env, source.source())? {
        object.set("cause", next)?;
    }
    Ok(Some(object))
}

/// Throws a `TypeError` with Node's `ERR_INVALID_ARG_TYPE` code, naming the argument.
pub fn type_error(env: &Env, message: &str) -> napi::Error {
    match env.throw_type_error(message, Some("ERR_INVALID_ARG_TYPE")) {
        Ok(()) => napi::Error::new(Status::PendingException, message.to_string()),
        Err(e) => e,
    }
}
