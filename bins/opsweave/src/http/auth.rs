//! Who is calling: an API key (`Authorization: Bearer ow_…`) or, only in dev mode, an
//! `X-Dev-User` header; every request is then scoped to the caller's org and rate limited per key.

use super::problem::Problem;
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use opsweave::access::Action;
use opsweave::{KeyId, Role, Scope};
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
        let decision = state
            .limiter
            .check(&bucket, &state.rate_limit, 1)
            .await
            .map_err(Problem::from)?;
        if !decision.allowed {
            let secs = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            return Err(Problem::rate_limited(secs));
        }
        Ok(caller)
    }
}

async fn identify(parts: &Parts, state: &AppState) -> Result<Caller, Problem> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| Problem::unauthorized("the Authorization header is not text"))?;
        let secret = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| Problem::unauthorized("use `Authorization: Bearer ow_…`"))?;
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

/// The per-key limit from the configured requests per minute (burst: a tenth, at least 10).
pub fn rate_limit(per_minute: u32) -> opsweave::RateLimit {
    let per_minute = per_minute.max(1);
    opsweave::RateLimit::for_reads(
        per_minute,
        Duration::from_secs(60),
        (per_minute / 10).max(10),
    )
}
