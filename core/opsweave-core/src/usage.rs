//! Metering: every model call is a [`UsageEvent`]; a [`UsageLedger`] stores and sums them.

use crate::{JobId, Result, Scope};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a model call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Texts to vectors.
    Embed,
    /// Messages to text or JSON.
    Chat,
}

/// One model call, attributed to a scope (and a job when it ran in one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// Who pays for it.
    pub scope: Scope,
    /// What kind of call.
    pub operation: Operation,
    /// Model name as the provider knows it (e.g. `text-embedding-3-small`, `bge-m3`).
    pub model: String,
    /// Prompt / input tokens (chat).
    pub input_tokens: u64,
    /// Completion tokens (chat).
    pub output_tokens: u64,
    /// Tokens embedded (embeddings).
    pub embedding_tokens: u64,
    /// Wall time of the call in milliseconds.
    pub latency_ms: u64,
    /// The job it ran in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
    /// When the call finished.
    pub at: DateTime<Utc>,
}

impl Operation {
    /// The name used in SQL and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embed => "embed",
            Self::Chat => "chat",
        }
    }
}

/// The most tokens of one kind one event may report. No model call comes near it (a million-token
/// context is 10^6), and it keeps sums of millions of events far from overflowing.
pub const MAX_TOKENS_PER_EVENT: u64 = 1_000_000_000_000;

impl UsageEvent {
    /// Checks every event of a batch, naming the failing one as `events[i].field`.
    pub fn validate_all(events: &[UsageEvent]) -> Result<()> {
        for (i, event) in events.iter().enumerate() {
            event.validate().map_err(|e| {
                let field = e.location().field.clone().unwrap_or_default();
                e.on_field(format!("events[{i}].{field}"))
            })?;
        }
        Ok(())
    }

    /// Checks scope and model name, that token counts are at most [`MAX_TOKENS_PER_EVENT`] and
    /// that the latency fits a signed 64-bit column.
    pub fn validate(&self) -> Result<()> {
        self.scope.validate()?;
        if self.model.trim().is_empty()
            || self.model.len() > 200
            || self.model.contains(char::is_control)
        {
            return Err(crate::Error::invalid(
                "model must be 1 to 200 bytes without control characters",
            )
            .on_field("model"));
        }
        if let Some((field, value)) = self.oversized_count() {
            return Err(crate::Error::invalid(format!(
                "{field} is too large: {value} (at most {MAX_TOKENS_PER_EVENT} per event)"
            ))
            .on_field(field));
        }
        if i64::try_from(self.latency_ms).is_err() {
            return Err(crate::Error::invalid(format!(
                "latency_ms is too large: {}",
                self.latency_ms
            ))
            .on_field("latency_ms"));
        }
        Ok(())
    }

    /// The first token count above [`MAX_TOKENS_PER_EVENT`], by field name.
    pub fn oversized_count(&self) -> Option<(&'static str, u64)> {
        [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("embedding_tokens", self.embedding_tokens),
        ]
        .into_iter()
        .find(|(_, n)| *n > MAX_TOKENS_PER_EVENT)
    }
}

/// Tokens and time of one call, as an adapter reports it (the caller adds scope and job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    /// Prompt / input tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Tokens embedded.
    pub embedding_tokens: u64,
    /// Wall time in milliseconds.
    pub latency_ms: u64,
}

/// How usage aggregates are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    /// By org.
    Org,
    /// By client (absent client is its own group).
    Client,
    /// By project (absent project is its own group).
    Project,
    /// By model.
    Model,
}

impl std::str::FromStr for UsageGroup {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "org" => Ok(Self::Org),
            "client" => Ok(Self::Client),
            "project" => Ok(Self::Project),
            "model" => Ok(Self::Model),
            other => Err(crate::Error::invalid(format!(
                "unknown group_by `{other}` (org, client, project, model)"
            ))
            .on_field("group_by")),
        }
    }
}

/// Days a usage report covers when its start is not given.
pub const DEFAULT_USAGE_DAYS: i64 = 30;

/// Reads a usage range bound: an RFC 3339 instant, or a date (its midnight, UTC); `field` names
/// it in the error.
fn parse_usage_instant(text: &str, field: &str) -> Result<DateTime<Utc>> {
    let at = match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()),
    };
    let at = at.ok_or_else(|| {
        crate::Error::invalid(format!("`{text}` is not a date or an RFC 3339 instant"))
            .on_field(field)
    })?;
    // Both stores answer the same for these years (PostgreSQL has none before 4713 BC).
    if !crate::priority::within_calendar(at) {
        return Err(
            crate::Error::invalid(format!("`{text}` is outside the years 1 to 9999"))
                .on_field(field),
        );
    }
    Ok(at)
}

/// Which usage to sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageQuery {
    /// Scope as a filter (org always; client and project when set).
    pub scope: Scope,
    /// From this instant, inclusive.
    pub from: DateTime<Utc>,
    /// To this instant, exclusive.
    pub to: DateTime<Utc>,
    /// Grouping key.
    pub group_by: UsageGroup,
}

impl UsageQuery {
    /// The query of `scope` between `from` and `to` as text (each an RFC 3339 instant, or a date
    /// meaning its midnight UTC; `to`
    /// defaults to now, included, `from` to [`DEFAULT_USAGE_DAYS`] before `to`), grouped by `group_by`
    /// (`org`, `client`, `project` or `model`).
    pub fn parse(
        scope: Scope,
        from: Option<&str>,
        to: Option<&str>,
        group_by: &str,
    ) -> Result<Self> {
        Self::parse_at(scope, from, to, group_by, Utc::now())
    }

    /// [`Self::parse`] with `now` given.
    fn parse_at(
        scope: Scope,
        from: Option<&str>,
        to: Option<&str>,
        group_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let to = to
            .map(|t| parse_usage_instant(t, "to"))
            .transpose()?
            // `to` is exclusive and ledgers keep milliseconds: a usage report asked for in the
            // millisecond an event was written still counts it.
            .unwrap_or(now + chrono::Duration::milliseconds(1));
        let from = match from {
            Some(f) => parse_usage_instant(f, "from")?,
            None => to
                .checked_sub_signed(chrono::Duration::days(DEFAULT_USAGE_DAYS))
                .filter(|from| crate::priority::within_calendar(*from))
                .ok_or_else(|| {
                    crate::Error::invalid(format!(
                        "usage: `to` {to} leaves no room for the default {DEFAULT_USAGE_DAYS} days \
                         before it; give `from` too"
                    ))
                    .on_field("to")
                })?,
        };
        let query = Self {
            scope,
            from,
            to,
            group_by: group_by.parse()?,
        };
        query.validate()?;
        Ok(query)
    }

    /// Checks the scope and that the range is not empty or reversed.
    pub fn validate(&self) -> Result<()> {
        self.scope.validate()?;
        if self.from >= self.to {
            return Err(crate::Error::invalid(format!(
                "usage range is empty: from {} is not before to {}",
                self.from.to_rfc3339(),
                self.to.to_rfc3339()
            ))
            .on_field("from"));
        }
        Ok(())
    }
}

/// Sums for one group and model (cost comes from a price book, per model). Stores saturate each
/// sum at `i64::MAX` rather than fail, so a ledger is always readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageTotal {
    /// The group's key (org, client, project or model name; empty when the scope part is absent).
    pub key: String,
    /// Grouped by project: the project's client (empty when absent), as projects of different
    /// clients may share a name and are summed apart. `None` for the other groupings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The model these sums are for.
    pub model: String,
    /// Number of calls.
    pub calls: u64,
    /// Sum of input tokens.
    pub input_tokens: u64,
    /// Sum of output tokens.
    pub output_tokens: u64,
    /// Sum of embedding tokens.
    pub embedding_tokens: u64,
}

/// Append-only store of usage events with aggregates.
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Stores events, all or none.
    async fn record_usage(&self, events: &[UsageEvent]) -> Result<()>;

    /// Sums by `query.group_by` and model (a project by its client and name), ordered by key,
    /// client, then model.
    async fn usage_totals(&self, query: &UsageQuery) -> Result<Vec<UsageTotal>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn usage_queries_read_dates_instants_and_defaults() {
        let now = at("2026-11-23T10:00:00Z");
        let q = UsageQuery::parse_at(Scope::org("acme"), Some("2026-11-01"), None, "client", now)
            .unwrap();
        assert_eq!(q.from, at("2026-11-01T00:00:00Z"));
        assert_eq!(
            q.to,
            now + chrono::Duration::milliseconds(1),
            "now included"
        );
        assert_eq!(q.group_by, UsageGroup::Client);
        let q = UsageQuery::parse_at(
            Scope::org("acme"),
            None,
            Some("2026-11-20T12:00:00+02:00"),
            "model",
            now,
        )
        .unwrap();
        assert_eq!(q.to, at("2026-11-20T10:00:00Z"));
        assert_eq!(q.from, q.to - chrono::Duration::days(DEFAULT_USAGE_DAYS));
    }

    #[test]
    fn absurd_token_counts_are_refused_by_field() {
        let event = |input_tokens, embedding_tokens| UsageEvent {
            scope: Scope::org("acme"),
            operation: Operation::Chat,
            model: "m".into(),
            input_tokens,
            output_tokens: 0,
            embedding_tokens,
            latency_ms: 1,
            job: None,
            at: at("2026-11-23T10:00:00Z"),
        };
        event(MAX_TOKENS_PER_EVENT, MAX_TOKENS_PER_EVENT)
            .validate()
            .unwrap();
        let err = UsageEvent::validate_all(&[event(1, 1), event(i64::MAX as u64, 0)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(
            err.location().field.as_deref(),
            Some("events[1].input_tokens")
        );
        let err = event(0, MAX_TOKENS_PER_EVENT + 1).validate().unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("embedding_tokens"));
    }

    #[test]
    fn bad_usage_queries_name_their_field() {
        let now = at("2026-11-23T10:00:00Z");
        let scope = Scope::org("acme");
        for (from, to, group, field) in [
            (None, None, "team", "group_by"),
            (Some("yesterday"), None, "model", "from"),
            (None, Some("2026-13-01"), "model", "to"),
            (Some("2026-11-23"), Some("2026-11-22"), "model", "from"),
            (None, Some("-262143-01-01"), "model", "to"),
            (Some("-0001-01-01"), None, "model", "from"),
            (None, Some("0001-01-10"), "model", "to"),
        ] {
            let err = UsageQuery::parse_at(scope.clone(), from, to, group, now).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(err.location().field.as_deref(), Some(field), "{err}");
        }
    }
}
