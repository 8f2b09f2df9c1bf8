//! The one place errors become HTTP answers: `application/problem+json` (RFC 9457) with a stable
//! `code`, mapped from the core [`ErrorKind`] and from axum's extractor rejections.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opsweave::{Error, ErrorKind};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// Stable machine-readable code (`invalid_input`, `not_found`, `unauthorized`, …).
    pub code: &'static str,
    /// Short human title of the code.
    pub title: &'static str,
    /// What was wrong, specifically.
    pub detail: String,
    /// The field at fault, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The line at fault in an uploaded file, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Seconds to wait before retrying (rate limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of `status` with `code`, `title` and `detail`.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status: status.as_u16(),
            code,
            title,
            detail: detail.into(),
            field: None,
            line: None,
            retry_after: None,
        }
    }

    /// 400 with code `invalid_input`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "Invalid input",
            detail,
        )
    }

    /// 422 with code `invalid_body`: the body parses but asks for something the API refuses.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "Invalid request body",
            detail,
        )
    }

    /// 404 with code `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    /// 401 with code `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403 with code `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 429 with code `rate_limited`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("rate limit reached for this key: retry in {retry_after_secs} s"),
        );
        p.retry_after = Some(retry_after_secs);
        p
    }

    /// Names the field at fault.
    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A rejection from one of axum's extractors (its status and text).
    fn rejection(status: StatusCode, text: String) -> Self {
        let (code, title) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "Request body too large"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "Request timeout"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "Unsupported media type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ("invalid_body", "Invalid request body"),
            _ if status.is_client_error() => ("malformed_request", "Malformed request"),
            _ => ("internal", "Internal error"),
        };
        Self::new(status, code, title, text)
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        let (status, code, title) = match e.kind() {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_input", "Invalid input"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ErrorKind::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        };
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The cause goes to the log (with the request id), not to the caller.
            tracing::error!(error = %e, "internal error");
            "an internal error occurred; the server log has the details".to_string()
        } else {
            e.message().to_string()
        };
        Self {
            field: e.location().field.clone(),
            line: e.location().line,
            ..Self::new(status, code, title, detail)
        }
    }
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Self {
        let field = match &r {
            JsonRejection::JsonDataError(e) => field_of(e),
            _ => None,
        };
        Self {
            field,
            ..Self::rejection(r.status(), plain_types(&r.body_text()))
        }
    }
}

/// The body field a JSON data error is about (`options.mode`, `events[0].model`), from the path
/// axum's extractor tracks; serde reports a missing field at the object that lacks it, with the
/// name only in its message.
fn field_of(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(e) = error.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            return match (path.as_str(), missing) {
                (".", None) => None,
                (".", Some(name)) => Some(name.to_string()),
                (path, Some(name)) => Some(format!("{path}.{name}")),
                (path, None) => Some(path.to_string()),
            };
        }
        next = error.source();
    }
    None
}

/// serde's messages in JSON's words: `expected struct RecallBody` and `expected u32` name the
/// server's Rust types, which a client never sees.
fn plain_types(text: &str) -> String {
    const NAMES: [(&str, &str); 11] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected an array"),
    ];
    let mut out = text.to_string();
    // `expected struct Name` and the like: the JSON shape, without the name. Longer prefixes
    // first (`struct variant` before `struct`).
    for (rust, json) in [
        ("expected struct variant ", "expected a JSON object"),
        ("expected tuple struct ", "expected an array"),
        ("expected struct ", "expected a JSON object"),
        ("expected enum ", "expected one of the documented values"),
    ] {
        while let Some(at) = out.find(rust) {
            let name_from = at + rust.len();
            let name_len = out[name_from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(out.len() - name_from);
            out.replace_range(at..name_from + name_len, json);
        }
    }
    for (rust, json) in NAMES {
        // Whole words only: `expected u64` must not rewrite `expected u64x`.
        let mut from = 0;
        while let Some(found) = out[from..].find(rust) {
            let at = from + found;
            let end = at + rust.len();
            if out[end..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                from = end;
                continue;
            }
            out.replace_range(at..end, json);
            from = at + json.len();
        }
    }
    out
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Self {
        Self::rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Self {
        // A path that does not parse (a bad id) is a bad request, never a server error.
        let status = if r.status().is_server_error() {
            StatusCode::BAD_REQUEST
        } else {
            r.status()
        };
        Self::rejection(status, r.body_text())
    }
}

impl From<MultipartRejection> for Problem {
    fn from(r: MultipartRejection) -> Self {
        Self::rejection(r.status(), r.body_text())
    }
}

impl From<MultipartError> for Problem {
    fn from(r: MultipartError) -> Self {
        Self::rejection(r.status(), r.body_text())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, Problem>;

/// A JSON request body whose rejections (malformed JSON, wrong types, unknown fields, too large,
/// wrong content type) are problems.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Body<T>(pub T);

/// A query string whose rejections are problems.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

/// The query string of an endpoint that takes none: any parameter is refused by name, where it
/// would otherwise be ignored without a word (`?org=other` on a key listing reads as a filter).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Path parameters whose rejections (a bad id) are problems.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

/// The most bytes of a plain-text error body kept as a problem's detail.
const MAX_DETAIL_BYTES: usize = 1024;

/// Turns the error answers made outside the handlers (axum's 405, the timeout layer's empty 408,
/// the `Bytes` extractor's plain-text 413) into problems like every other error. Headers such as
/// `Allow` stay; answers that already are problems pass through.
pub async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_DETAIL_BYTES)
        .await
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // axum adds `Allow` outside the router's layers, so here it is usually not set yet.
            if allowed.is_empty() {
                "this endpoint does not take that method (the Allow header lists those it takes)"
                    .to_string()
            } else {
                format!("this endpoint does not take that method (it takes: {allowed})")
            }
        }
        StatusCode::REQUEST_TIMEOUT => {
            "the request took longer than the server allows (server.request_timeout_secs)".into()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts (server.max_body_bytes)".into()
        }
        // A server error's text may say more than callers should see (as in `From<Error>`).
        _ if !text.is_empty() && status.is_client_error() => text,
        _ => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string(),
    };
    let problem = Problem::rejection(status, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let (problem_parts, body) = problem.into_parts();
    parts.headers.extend(problem_parts.headers);
    Response::from_parts(parts, body)
}

/// A fallback for unknown routes: a problem, like every other error.
pub async fn no_route() -> Problem {
    Problem::not_found("no such endpoint (see /openapi.json)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_json_shapes_not_rust_types() {
        for (serde, plain) in [
            (
                "invalid type: sequence, expected struct RecallBody at line 1 column 2",
                "invalid type: sequence, expected a JSON object at line 1 column 2",
            ),
            (
                "invalid type: string \"x\", expected struct variant Value::Money",
                "invalid type: string \"x\", expected a JSON object",
            ),
            (
                "invalid type: map, expected tuple struct Pair",
                "invalid type: map, expected an array",
            ),
            (
                "invalid type: integer `1`, expected enum RecallMode",
                "invalid type: integer `1`, expected one of the documented values",
            ),
            (
                "invalid value: integer `-1`, expected u64",
                "invalid value: integer `-1`, expected a whole number of 0 or more",
            ),
            ("expected u64x stays", "expected u64x stays"),
        ] {
            assert_eq!(plain_types(serde), plain);
        }
    }

    #[test]
    fn every_kind_maps_to_a_4xx_or_5xx_with_a_code() {
        let cases = [
            (Error::invalid("x").on_field("limit"), 400, "invalid_input"),
            (Error::not_found("x"), 404, "not_found"),
            (Error::conflict("x"), 409, "conflict"),
            (
                Error::new(ErrorKind::Unauthorized, "x"),
                401,
                "unauthorized",
            ),
            (Error::unavailable("x"), 503, "unavailable"),
            (Error::internal("secret detail"), 500, "internal"),
        ];
        for (err, status, code) in cases {
            let p = Problem::from(err);
            assert_eq!((p.status, p.code), (status, code));
        }
        let p = Problem::from(Error::internal("secret detail"));
        assert!(
            !p.detail.contains("secret"),
            "internal causes are not shown"
        );
        let p = Problem::from(Error::invalid("bad").on_field("limit"));
        assert_eq!(p.field.as_deref(), Some("limit"));
    }
}
