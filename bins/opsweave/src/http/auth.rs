//! Who is calling: an API key (`Authorization: Bearer ow_…`) or, only in dev mode, an
//! `X-Dev-User` header; every request is then scoped to the caller's org and rate limited per key.
//!
//! Keys are verified through the handle's key cache (`server.key_cache_secs`), so a busy key
//! costs one store read per second, not one per request. Reads (GET, HEAD) and writes share a
//! key's budget but not what happens while a shared limiter (Redis) is unavailable: by default
//! reads are served unmetered, writes refused with 503.

use super::problem::Problem;
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use opsweave::access::Action;
use opsweave::{KeyId, RateLimit, Role, Scope, ServerConfig, WhenUnavailable};
use std::time::Duration;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used (none in dev mode).
    pub key: Option<KeyId>,
    /// Who it is, for event actors and logs (key name or dev user).
    pub name: String,
    /// What it may reach: its org, narrowed by client / project when the key is.
    pub scope: Scope,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// `Forbidden` unless the caller's role allows `action`.
    pub fn require(&self, action: Action) -> Result<(), Problem> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "a {} key may not do this",
                self.role
            )))
        }
    }

    /// The caller's scope narrowed to `client` / `project` when asked; a key already limited to a
    /// client or project cannot widen or leave it.
    pub fn narrowed(&self, client: Option<&str>, project: Option<&str>) -> Result<Scope, Problem> {
        let mut scope = self.scope.clone();
        for (asked, held, field) in [
            (client, &mut scope.client, "client"),
            (project, &mut scope.project, "project"),
        ] {
            let Some(asked) = asked.filter(|a| !a.is_empty()) else {
                continue;
            };
            match held {
                Some(own) if own != asked => {
                    return Err(Problem::forbidden(format!(
                        "this key is limited to {field} `{own}`"
                    ))
                    .on_field(field));
                }
                _ => *held = Some(asked.to_string()),
            }
        }
        scope.validate()?;
        Ok(scope)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = identify(parts, state).await?;
        let bucket = match caller.key {
            Some(id) => format!("http:key:{id}"),
            None => format!("http:dev:{}", caller.name),
        };
        let limit = if matches!(parts.method, Method::GET | Method::HEAD) {
            &state.rate_limits.read
        } else {
            &state.rate_limits.write
        };
        let decision = state
            .limiter
            .check(&bucket, limit, 1)
            .await
            .map_err(Problem::from)?;
        if !decision.allowed {
            let secs = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Problem::rate_limited(secs));
        }
        Ok(caller)
    }
}

/// The API key a request carries (`Authorization: Bearer ow_…`), `None` without the header.
pub fn bearer_secret(headers: &axum::http::HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not text"))?;
    text.strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .map(Some)
        .ok_or_else(|| Problem::unauthorized("use `Authorization: Bearer ow_…`"))
}

async fn identify(parts: &Parts, state: &AppState) -> Result<Caller, Problem> {
    if let Some(secret) = bearer_secret(&parts.headers)? {
        let key = state.weave.authenticate(secret).await?;
        return Ok(Caller {
            key: Some(key.id),
            name: format!("key:{}", key.name),
            scope: key.scope,
            role: key.role,
        });
    }
    if state.dev_mode {
        if let Some(user) = parts.headers.get("x-dev-user") {
            let user = user
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|u| !u.is_empty() && u.len() <= 200 && !u.contains(char::is_control))
                .ok_or_else(|| Problem::unauthorized("X-Dev-User must be a short name"))?;
            return Ok(Caller {
                key: None,
                name: format!("dev:{user}"),
                scope: Scope::org(state.dev_org.clone()),
                role: Role::Admin,
            });
        }
    }
    Err(Problem::unauthorized(
        "no credentials: send `Authorization: Bearer ow_…`",
    ))
}

/// The limits a key gets: one budget (the configured requests per minute, bursts of a tenth, at
/// least 10 but at most the rate), failing open or closed as configured for reads and for writes.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// For GET and HEAD.
    pub read: RateLimit,
    /// For every other method.
    pub write: RateLimit,
}

impl RateLimits {
    /// The limits `server` configures.
    pub fn new(server: &ServerConfig) -> opsweave::Result<Self> {
        let per_minute = server.rate_limit_per_minute;
        let read = RateLimit {
            rate: per_minute,
            period: Duration::from_secs(60),
            // Never more at once than a minute allows: a limit of 3 a minute is 3 at once.
            burst: (per_minute / 10).max(10).min(per_minute),
            when_unavailable: server.rate_limit_reads_when_unavailable,
        };
        read.validate()?;
        let write = RateLimit {
            when_unavailable: server.rate_limit_writes_when_unavailable,
            ..read
        };
        Ok(Self { read, write })
    }
}

fn fails(mode: WhenUnavailable) -> &'static str {
    match mode {
        WhenUnavailable::Open => "open (served unmetered)",
        WhenUnavailable::Closed => "closed (refused with 503)",
    }
}

/// Says at start where the limits live and what they do while that is unavailable.
pub fn log_rate_limits(state: &super::AppState) {
    let limits = &state.rate_limits;
    match (state.weave.rate_limiter(), &state.weave.config().redis) {
        (Some(_), Some(url)) => tracing::info!(
            redis = %opsweave::mask_password(url),
            per_minute = limits.read.rate,
            reads = fails(limits.read.when_unavailable),
            writes = fails(limits.write.when_unavailable),
            "rate limits shared on Redis; while it is unavailable reads and writes fail as given"
        ),
        _ => tracing::info!(
            per_minute = limits.read.rate,
            "rate limits in this process (no redis configured)"
        ),
    }
}
