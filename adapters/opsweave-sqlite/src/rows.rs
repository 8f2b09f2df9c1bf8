//! Conversions between core types and SQLite columns.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use opsweave_core::{Error, RecordId, Result, Scope, Task, TaskStatus};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use std::collections::HashMap;

/// The days-since-epoch number of a date (the `due_day` column).
pub(crate) fn day_number(date: NaiveDate) -> i64 {
    (date - NaiveDate::default()).num_days()
}

/// The date of a days-since-epoch number.
pub(crate) fn day_date(day: i64) -> Option<NaiveDate> {
    NaiveDate::default().checked_add_signed(chrono::Duration::days(day))
}

/// Milliseconds since the epoch.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of a milliseconds-since-epoch number.
pub(crate) fn instant(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn scope_of(row: &impl Columns) -> Result<Scope> {
    Ok(Scope {
        org: row.column("org")?,
        client: row.column("client")?,
        project: row.column("project")?,
    })
}

/// A value both sqlx and rusqlite read from a column.
pub(crate) trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + rusqlite::types::FromSql
{
}

/// A result row whose columns are read by name, from sqlx or, where bulk reads go around sqlx,
/// from rusqlite: one conversion to core types serves both.
pub(crate) trait Columns {
    /// The value of the column `name`.
    fn column<T: Column>(&self, name: &str) -> Result<T>;
}

impl Columns for SqliteRow {
    fn column<T: Column>(&self, name: &str) -> Result<T> {
        get(self, name)
    }
}

/// A rusqlite row whose columns are found through a map made once per statement: rusqlite
/// finds a name by comparing it with every column's (a tenth of a records export's time).
pub(crate) struct NamedRow<'a> {
    /// The row.
    pub(crate) row: &'a rusqlite::Row<'a>,
    /// Column index by name.
    pub(crate) columns: &'a HashMap<String, usize>,
}

impl NamedRow<'_> {
    /// The column index of each of `statement`'s column names.
    pub(crate) fn columns(statement: &rusqlite::Statement<'_>) -> HashMap<String, usize> {
        statement
            .column_names()
            .into_iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), i))
            .collect()
    }
}

impl Columns for NamedRow<'_> {
    fn column<T: Column>(&self, name: &str) -> Result<T> {
        let index = self.columns.get(name).copied().ok_or_else(|| {
            Error::internal(format!("sqlite: reading column `{name}`: no such column"))
        })?;
        self.row
            .get(index)
            .map_err(|e| Error::internal(format!("sqlite: reading column `{name}`: {e}")))
    }
}

pub(crate) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column)
        .map_err(|e| Error::internal(format!("sqlite: reading column `{column}`: {e}")))
}

/// The task columns every task query selects.
pub(crate) const TASK_COLUMNS: &str = "id, org, client, project, title, source_kind, url, status, \
     due_day, importance, importance_reason, boost, pinned, updated_at, completed_at";

pub(crate) fn task_of(row: &SqliteRow) -> Result<Task> {
    let status: String = get(row, "status")?;
    let due: Option<i64> = get(row, "due_day")?;
    let completed: Option<i64> = get(row, "completed_at")?;
    Ok(Task {
        id: RecordId::from_raw(get(row, "id")?),
        scope: scope_of(row)?,
        title: get(row, "title")?,
        source_kind: get(row, "source_kind")?,
        url: get(row, "url")?,
        status: status.parse::<TaskStatus>()?,
        due: due.and_then(day_date),
        importance: get(row, "importance")?,
        importance_reason: get(row, "importance_reason")?,
        boost: get(row, "boost")?,
        pinned: get::<i64>(row, "pinned")? != 0,
        updated_at: instant(get(row, "updated_at")?),
        completed_at: completed.map(instant),
    })
}

/// Appends `AND client = ? AND project = ?` for the parts of `scope` that are set.
pub(crate) fn scope_filter(sql: &mut String, scope: &Scope, table: &str) {
    let prefix = if table.is_empty() {
        String::new()
    } else {
        format!("{table}.")
    };
    sql.push_str(&format!("{prefix}org = ?"));
    if scope.client.is_some() {
        sql.push_str(&format!(" AND {prefix}client = ?"));
    }
    if scope.project.is_some() {
        sql.push_str(&format!(" AND {prefix}project = ?"));
    }
}

/// Binds the parts of `scope` that [`scope_filter`] named, in order.
pub(crate) fn bind_scope<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    scope: &'q Scope,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    query = query.bind(&scope.org);
    if let Some(client) = &scope.client {
        query = query.bind(client);
    }
    if let Some(project) = &scope.project {
        query = query.bind(project);
    }
    query
}

/// A full-text hit from a row with `id`, `title`, `entity`, `source_kind`, `snippet` and `rank`
/// (BM25 negated: higher is better).
pub(crate) fn search_hit_of(row: &SqliteRow) -> Result<opsweave_core::SearchHit> {
    let entity: String = get(row, "entity")?;
    Ok(opsweave_core::SearchHit {
        id: RecordId::from_raw(get(row, "id")?),
        title: get(row, "title")?,
        entity: entity.parse::<opsweave_core::EntityKind>()?,
        source_kind: get(row, "source_kind")?,
        snippet: get(row, "snippet")?,
        score: -get::<f64>(row, "rank")?,
    })
}
