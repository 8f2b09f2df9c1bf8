//! The one error type of the core, with a kind every edge maps from.

use std::fmt;

/// What kind of failure an [`Error`] is; bindings and HTTP map each kind once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller gave something invalid (data, arguments, configuration).
    InvalidInput,
    /// The thing asked for does not exist in the caller's scope.
    NotFound,
    /// The operation conflicts with the current state.
    Conflict,
    /// The caller is not allowed to do this.
    Unauthorized,
    /// A backend or service could not be reached; retrying may help.
    Unavailable,
    /// A bug or an unexpected state inside opsweave.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::Unauthorized => "unauthorized",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal error",
        })
    }
}

/// Where in the user's input a problem was found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The file, when the input came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// One-based line (CSV: physical line of the record's start; JSON Lines: line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The field (column, JSON pointer or record field) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Location {
    /// True when no part of the location is known.
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.line.is_none() && self.field.is_none()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            parts.push(file.clone());
        }
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        if let Some(field) = &self.field {
            parts.push(format!("field `{field}`"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The error of every opsweave operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// Boxed to keep every `Result` small; none until a part is set.
    location: Option<Box<Location>>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// Model calls made before the failure, which a paid service bills all the same.
    spent: Vec<crate::usage::ModelCall>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.location();
        if location.is_empty() {
            write!(f, "{}: {}", self.kind, self.message)
        } else {
            write!(f, "{}: {}: {}", self.kind, location, self.message)
        }
    }
}

impl Error {
    /// A new error of `kind` with a human message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            location: None,
            source: None,
            spent: Vec::new(),
        }
    }

    /// An [`ErrorKind::InvalidInput`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The [`ErrorKind::InvalidInput`] error for TOML `text` that did not parse as `what` (a
    /// mapping, a config…), at the line the parser stopped on.
    pub fn bad_toml(what: &str, text: &str, e: &toml::de::Error) -> Self {
        let err = Self::invalid(format!("{what}: {}", e.message().trim()));
        match e.span() {
            Some(span) => {
                err.at_line(text[..span.start.min(text.len())].matches('\n').count() as u64 + 1)
            }
            None => err,
        }
    }

    /// An [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// An [`ErrorKind::Conflict`] error.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// An [`ErrorKind::Unavailable`] error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// An [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Attaches the underlying cause, kept in the `source()` chain.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Sets the file the error is about.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.location.get_or_insert_with(Box::default).file = Some(file.into());
        self
    }

    /// Sets the line the error is about.
    pub fn at_line(mut self, line: u64) -> Self {
        self.location.get_or_insert_with(Box::default).line = Some(line);
        self
    }

    /// Sets the field the error is about.
    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.location.get_or_insert_with(Box::default).field = Some(field.into());
        self
    }

    /// Adds model calls that were made (and may be billed) before the operation failed, so
    /// that the caller meters them although the operation returns no result.
    pub fn with_spent(mut self, calls: impl IntoIterator<Item = crate::usage::ModelCall>) -> Self {
        self.spent.extend(calls);
        self
    }

    /// Adds `note` to the message, after a semicolon: something else that went wrong while the
    /// failure was handled, which the caller must hear of too.
    pub fn with_note(mut self, note: impl std::fmt::Display) -> Self {
        self.message = format!("{}; {note}", self.message);
        self
    }

    /// The model calls made before the failure (see [`with_spent`](Self::with_spent)).
    pub fn spent(&self) -> &[crate::usage::ModelCall] {
        &self.spent
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without kind or location.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the input the failure is, if known.
    pub fn location(&self) -> &Location {
        static UNKNOWN: Location = Location {
            file: None,
            line: None,
            field: None,
        };
        self.location.as_deref().unwrap_or(&UNKNOWN)
    }
}

/// The result of every opsweave operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with an [`ErrorKind::InvalidInput`] error unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Error::invalid(format!($($arg)+)));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_location_and_kind() {
        let err = Error::invalid("not a date: \"2026-13-01\"")
            .in_file("leads.csv")
            .at_line(7)
            .on_field("date_deadline");
        assert_eq!(
            err.to_string(),
            "invalid input: leads.csv, line 7, field `date_deadline`: not a date: \"2026-13-01\""
        );
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn source_chain_is_kept() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::unavailable("store down").with_source(io);
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
    }
}
