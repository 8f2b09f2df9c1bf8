//! Conversions between core types and PostgreSQL columns, and the scope filter every query uses.

use chrono::{DateTime, Utc};
use opsweave_core::{Error, Event, NewEvent, Record, RecordId, Result, Scope, SourceRef, Task};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use std::borrow::Cow;

/// An instant as the stores keep it: whole milliseconds (as the embedded store), so both
/// backends give back the same values.
pub(crate) fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Text PostgreSQL can hold: it refuses NUL characters, which become U+FFFD.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// [`text`] for optional text.
pub(crate) fn opt_text(s: Option<&str>) -> Option<Cow<'_, str>> {
    s.map(text)
}

/// Reads a column, naming it when that fails.
pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column)
        .map_err(|e| Error::internal(format!("postgres: reading column `{column}`: {e}")))
}

pub(crate) fn scope_of(row: &PgRow) -> Result<Scope> {
    Ok(Scope {
        org: get(row, "org")?,
        client: get(row, "client")?,
        project: get(row, "project")?,
    })
}

/// Appends `org = $n [AND client = $n] [AND project = $n]` for the parts of `scope` that are set.
pub(crate) fn push_scope<'a>(q: &mut QueryBuilder<'a, Postgres>, scope: &'a Scope, table: &str) {
    let prefix = if table.is_empty() {
        String::new()
    } else {
        format!("{table}.")
    };
    q.push(format!("{prefix}org = "))
        .push_bind(scope.org.as_str());
    if let Some(client) = &scope.client {
        q.push(format!(" AND {prefix}client = "))
            .push_bind(client.as_str());
    }
    if let Some(project) = &scope.project {
        q.push(format!(" AND {prefix}project = "))
            .push_bind(project.as_str());
    }
}

/// The task columns every task query selects.
pub(crate) const TASK_COLUMNS: &str = "id, org, client, project, title, source_kind, url, status, \
     due_day, importance, importance_reason, boost, pinned, updated_at, completed_at";

pub(crate) fn task_of(row: &PgRow) -> Result<Task> {
    let status: String = get(row, "status")?;
    Ok(Task {
        id: RecordId::from_raw(get(row, "id")?),
        scope: scope_of(row)?,
        title: get(row, "title")?,
        source_kind: get(row, "source_kind")?,
        url: get(row, "url")?,
        status: status.parse()?,
        due: get(row, "due_day")?,
        importance: get(row, "importance")?,
        importance_reason: get(row, "importance_reason")?,
        boost: get(row, "boost")?,
        pinned: get(row, "pinned")?,
        updated_at: get(row, "updated_at")?,
        completed_at: get(row, "completed_at")?,
    })
}

pub(crate) fn record_of(row: &PgRow) -> Result<Record> {
    let entity: String = get(row, "entity")?;
    let fields: sqlx::types::Json<opsweave_core::Fields> = get(row, "fields")?;
    Ok(Record {
        id: RecordId::from_raw(get(row, "id")?),
        scope: scope_of(row)?,
        source: SourceRef {
            kind: get(row, "source_kind")?,
            external_id: get(row, "external_id")?,
            url: get(row, "url")?,
        },
        entity: entity.parse()?,
        title: get(row, "title")?,
        body: get(row, "body")?,
        fields: fields.0,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        content_hash: get(row, "content_hash")?,
    })
}

pub(crate) fn event_of(row: &PgRow) -> Result<Event> {
    let kind: sqlx::types::Json<opsweave_core::EventKind> = get(row, "kind")?;
    let subject: Option<i64> = get(row, "subject")?;
    Ok(Event {
        seq: get(row, "seq")?,
        event: NewEvent {
            scope: scope_of(row)?,
            actor: get(row, "actor")?,
            subject: subject.map(RecordId::from_raw),
            kind: kind.0,
            at: get(row, "at")?,
        },
    })
}

/// A full-text hit from a row with `id`, `title`, `entity`, `source_kind`, `snippet` and `rank`
/// (ts_rank: higher is better).
pub(crate) fn search_hit_of(row: &PgRow) -> Result<opsweave_core::SearchHit> {
    let entity: String = get(row, "entity")?;
    Ok(opsweave_core::SearchHit {
        id: RecordId::from_raw(get(row, "id")?),
        title: get(row, "title")?,
        entity: entity.parse::<opsweave_core::EntityKind>()?,
        source_kind: get(row, "source_kind")?,
        snippet: get(row, "snippet")?,
        score: get(row, "rank")?,
    })
}
