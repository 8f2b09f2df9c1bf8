//! The export / import seam that copies a whole store to another backend (`opsweave migrate`).
//!
//! A store that implements [`Snapshot`] hands out every row it holds, one [`SnapshotKind`] at a
//! time, in pages ordered by the kind's key (keyset pagination: a page starts after the key of the
//! previous page's last row, so a copy never holds more than one page in memory), and writes such
//! pages back keeping every id: record ids are derived (the same in every store), and event
//! sequence numbers, job, usage, rejection and API key ids are kept as they are, so links, undo
//! history, usage attributed to jobs and key ids stay valid in the copy.
//!
//! [`copy_kind`] is the page loop; the facade's `migrate` adds the checks around it (empty or
//! resumed target, counts compared per table and org afterwards).

use crate::access::ApiKey;
use crate::mapping::Rejection;
use crate::store::ReviewItem;
use crate::{Error, VectorItem};
use crate::{Event, Job, Link, Record, RecordId, Result, Scope, Task, TaskStatus, UsageEvent};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most rows one page may hold.
pub const MAX_PAGE: usize = 10_000;

/// One kind of row a store holds, in the order a copy writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// Records with their raw payloads and, for tasks, the task row (status, boost, pin).
    Records,
    /// Links between records.
    Links,
    /// Rows ingests rejected.
    Rejections,
    /// The event log (status changes, undos, ingests).
    Events,
    /// Each resolver's saved spec and model.
    MatchStates,
    /// The records each resolver has seen.
    MatchMembers,
    /// Review pairs, pending and decided.
    MatchReviews,
    /// Background jobs, in every status.
    Jobs,
    /// Model calls metered.
    UsageEvents,
    /// API keys (their hashes; the secrets were never stored).
    ApiKeys,
    /// Embedding vectors of every model.
    Vectors,
}

impl SnapshotKind {
    /// Every kind, in copy order.
    pub const ALL: [SnapshotKind; 11] = [
        Self::Records,
        Self::Links,
        Self::Rejections,
        Self::Events,
        Self::MatchStates,
        Self::MatchMembers,
        Self::MatchReviews,
        Self::Jobs,
        Self::UsageEvents,
        Self::ApiKeys,
        Self::Vectors,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Records => "records",
            Self::Links => "links",
            Self::Rejections => "rejections",
            Self::Events => "events",
            Self::MatchStates => "match_states",
            Self::MatchMembers => "match_members",
            Self::MatchReviews => "match_reviews",
            Self::Jobs => "jobs",
            Self::UsageEvents => "usage_events",
            Self::ApiKeys => "api_keys",
            Self::Vectors => "vectors",
        }
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tables [`Snapshot::row_counts`] counts: every kind, plus the two a record page carries
/// beside its records.
pub const COUNTED_TABLES: [&str; 13] = [
    "records",
    "raw_items",
    "tasks",
    "links",
    "rejections",
    "events",
    "match_states",
    "match_members",
    "match_reviews",
    "jobs",
    "usage_events",
    "api_keys",
    "vectors",
];

/// A source item's raw payload as stored beside its record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRaw {
    /// The file (or feed) it came from.
    pub source_file: String,
    /// Its line there.
    pub line: u64,
    /// The payload, verbatim.
    pub payload: String,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
}

/// A task row: the task and the status its source last reported (the user's complete / undo
/// stands until the source changes that one). Its id, scope, title, source kind and url are its
/// record's (stores keep them in step).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// The task (status, due, importance, boost, pin, completion).
    pub task: Task,
    /// The status the source gave.
    pub source_status: TaskStatus,
}

/// A record with everything stored under its id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// The record.
    pub record: Record,
    /// Its fields as stored (JSON), kept verbatim.
    pub fields_json: String,
    /// Its raw payload (every ingested record has one).
    pub raw: Option<StoredRaw>,
    /// Its task row, when it is a task.
    pub task: Option<StoredTask>,
}

/// A link with the org it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLink {
    /// The org.
    pub org: String,
    /// The link.
    pub link: Link,
}

/// A rejected row as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRejection {
    /// Its id in the store.
    pub id: i64,
    /// The scope of the ingest that rejected it.
    pub scope: Scope,
    /// The file it came from.
    pub source_file: String,
    /// Line, field, reason and raw text.
    pub rejection: Rejection,
    /// When it was rejected.
    pub at: DateTime<Utc>,
}

/// A resolver's saved state.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMatchState {
    /// The org.
    pub org: String,
    /// The resolver's name.
    pub resolver: String,
    /// Spec and fitted model (JSON).
    pub state: String,
    /// When it was saved.
    pub updated_at: DateTime<Utc>,
}

/// A record a resolver has seen.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMatchMember {
    /// The org.
    pub org: String,
    /// The resolver's name.
    pub resolver: String,
    /// The record.
    pub record: RecordId,
}

/// A review pair with when a person decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReview {
    /// The org.
    pub org: String,
    /// The pair, its score and status.
    pub item: ReviewItem,
    /// When it was accepted or rejected.
    pub decided_at: Option<DateTime<Utc>>,
}

/// A metered model call with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUsage {
    /// Its id in the store.
    pub id: i64,
    /// The call.
    pub event: UsageEvent,
}

/// An API key with the hash it is found by.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    /// The key (id, name, scope, role, dates).
    pub key: ApiKey,
    /// SHA-256 of the secret, hex.
    pub hash: String,
}

/// A vector with the model it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVector {
    /// The model's name (its dimension is the vector's length).
    pub model: String,
    /// The model's fingerprint, when the store knows one.
    pub fingerprint: Option<String>,
    /// The record's vector, scope and kinds.
    pub item: VectorItem,
}

/// A page of rows of one kind, in key order.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotPage {
    /// Records (with raw payloads and task rows).
    Records(Vec<StoredRecord>),
    /// Links.
    Links(Vec<StoredLink>),
    /// Rejections.
    Rejections(Vec<StoredRejection>),
    /// Events.
    Events(Vec<Event>),
    /// Resolver states.
    MatchStates(Vec<StoredMatchState>),
    /// Resolver members.
    MatchMembers(Vec<StoredMatchMember>),
    /// Review pairs.
    MatchReviews(Vec<StoredReview>),
    /// Jobs.
    Jobs(Vec<Job>),
    /// Usage events.
    UsageEvents(Vec<StoredUsage>),
    /// API keys.
    ApiKeys(Vec<StoredKey>),
    /// Vectors.
    Vectors(Vec<StoredVector>),
}

/// Where a page starts: just after this key in the kind's order (the store's order: text parts
/// compare as the store compares them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotKey {
    /// A rejection id, event sequence number, job, usage or key id.
    Id(i64),
    /// A record: (org, id). A store pages records in its own key order, org and id or id alone
    /// (PostgreSQL keys records by org, SQLite by id).
    Record(String, i64),
    /// A link: (kind, from, to).
    Link(String, i64, i64),
    /// A resolver state: (org, resolver).
    Resolver(String, String),
    /// A resolver member: (org, resolver, record).
    Member(String, String, i64),
    /// A review pair: (org, resolver, left, right).
    Review(String, String, i64, i64),
    /// A vector: (model, record).
    Vector(String, i64),
}

impl SnapshotPage {
    /// An empty page of `kind`.
    pub fn empty(kind: SnapshotKind) -> Self {
        match kind {
            SnapshotKind::Records => Self::Records(Vec::new()),
            SnapshotKind::Links => Self::Links(Vec::new()),
            SnapshotKind::Rejections => Self::Rejections(Vec::new()),
            SnapshotKind::Events => Self::Events(Vec::new()),
            SnapshotKind::MatchStates => Self::MatchStates(Vec::new()),
            SnapshotKind::MatchMembers => Self::MatchMembers(Vec::new()),
            SnapshotKind::MatchReviews => Self::MatchReviews(Vec::new()),
            SnapshotKind::Jobs => Self::Jobs(Vec::new()),
            SnapshotKind::UsageEvents => Self::UsageEvents(Vec::new()),
            SnapshotKind::ApiKeys => Self::ApiKeys(Vec::new()),
            SnapshotKind::Vectors => Self::Vectors(Vec::new()),
        }
    }

    /// The kind of its rows.
    pub fn kind(&self) -> SnapshotKind {
        match self {
            Self::Records(_) => SnapshotKind::Records,
            Self::Links(_) => SnapshotKind::Links,
            Self::Rejections(_) => SnapshotKind::Rejections,
            Self::Events(_) => SnapshotKind::Events,
            Self::MatchStates(_) => SnapshotKind::MatchStates,
            Self::MatchMembers(_) => SnapshotKind::MatchMembers,
            Self::MatchReviews(_) => SnapshotKind::MatchReviews,
            Self::Jobs(_) => SnapshotKind::Jobs,
            Self::UsageEvents(_) => SnapshotKind::UsageEvents,
            Self::ApiKeys(_) => SnapshotKind::ApiKeys,
            Self::Vectors(_) => SnapshotKind::Vectors,
        }
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        match self {
            Self::Records(rows) => rows.len(),
            Self::Links(rows) => rows.len(),
            Self::Rejections(rows) => rows.len(),
            Self::Events(rows) => rows.len(),
            Self::MatchStates(rows) => rows.len(),
            Self::MatchMembers(rows) => rows.len(),
            Self::MatchReviews(rows) => rows.len(),
            Self::Jobs(rows) => rows.len(),
            Self::UsageEvents(rows) => rows.len(),
            Self::ApiKeys(rows) => rows.len(),
            Self::Vectors(rows) => rows.len(),
        }
    }

    /// True when it holds no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key of its last row: where the next page starts.
    pub fn last_key(&self) -> Option<SnapshotKey> {
        Some(match self {
            Self::Records(rows) => {
                let record = &rows.last()?.record;
                SnapshotKey::Record(record.scope.org.clone(), record.id.raw())
            }
            Self::Links(rows) => {
                let l = &rows.last()?.link;
                SnapshotKey::Link(l.kind.as_str().to_string(), l.from.raw(), l.to.raw())
            }
            Self::Rejections(rows) => SnapshotKey::Id(rows.last()?.id),
            Self::Events(rows) => SnapshotKey::Id(rows.last()?.seq),
            Self::MatchStates(rows) => {
                let s = rows.last()?;
                SnapshotKey::Resolver(s.org.clone(), s.resolver.clone())
            }
            Self::MatchMembers(rows) => {
                let m = rows.last()?;
                SnapshotKey::Member(m.org.clone(), m.resolver.clone(), m.record.raw())
            }
            Self::MatchReviews(rows) => {
                let r = rows.last()?;
                SnapshotKey::Review(
                    r.org.clone(),
                    r.item.resolver.clone(),
                    r.item.left.raw(),
                    r.item.right.raw(),
                )
            }
            Self::Jobs(rows) => SnapshotKey::Id(rows.last()?.id.0),
            Self::UsageEvents(rows) => SnapshotKey::Id(rows.last()?.id),
            Self::ApiKeys(rows) => SnapshotKey::Id(rows.last()?.key.id.0),
            Self::Vectors(rows) => {
                let v = rows.last()?;
                SnapshotKey::Vector(v.model.clone(), v.item.id.raw())
            }
        })
    }
}

/// Rows of one table and org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCount {
    /// One of [`COUNTED_TABLES`].
    pub table: String,
    /// The org.
    pub org: String,
    /// How many rows.
    pub rows: u64,
}

/// A store that can hand out every row it holds and take such rows back, ids kept.
#[async_trait]
pub trait Snapshot: Send + Sync {
    /// Rows of `kind` in key order, starting after `after` (from the first when `None`), at
    /// most `limit` (capped at [`MAX_PAGE`]). An empty page means the kind is exhausted.
    async fn export(
        &self,
        kind: SnapshotKind,
        after: Option<&SnapshotKey>,
        limit: usize,
    ) -> Result<SnapshotPage>;

    /// Writes `page` in one transaction: every row keeps its id, and a row whose key is already
    /// stored is replaced by the page's (so importing the same page twice stores it once). The
    /// page commits whole or not at all. Identity sequences move past the imported ids, so later
    /// appends, jobs and keys get new ones.
    async fn import(&self, page: SnapshotPage) -> Result<()>;

    /// Rows per table (see [`COUNTED_TABLES`]) and org; tables and orgs without rows are left out.
    async fn row_counts(&self) -> Result<Vec<RowCount>>;

    /// What names this database whatever URL reached it (a file's device and inode on Unix,
    /// its canonical path elsewhere; a server's system identifier and database), so a copy can
    /// refuse to write into its own source; `None` where the store cannot tell.
    async fn database_identity(&self) -> Result<Option<DatabaseIdentity>> {
        Ok(None)
    }
}

/// A database as [`Snapshot::database_identity`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseIdentity {
    /// Equal for any two handles of one database, different for two databases.
    pub key: String,
    /// The database in words, for messages.
    pub label: String,
}

/// The key an `after` of `kind` must be, or `InvalidInput`.
pub fn check_key(kind: SnapshotKind, after: Option<&SnapshotKey>) -> Result<()> {
    let ok = matches!(
        (kind, after),
        (_, None)
            | (SnapshotKind::Records, Some(SnapshotKey::Record(..)))
            | (
                SnapshotKind::Rejections
                    | SnapshotKind::Events
                    | SnapshotKind::Jobs
                    | SnapshotKind::UsageEvents
                    | SnapshotKind::ApiKeys,
                Some(SnapshotKey::Id(_)),
            )
            | (SnapshotKind::Links, Some(SnapshotKey::Link(..)))
            | (SnapshotKind::MatchStates, Some(SnapshotKey::Resolver(..)))
            | (SnapshotKind::MatchMembers, Some(SnapshotKey::Member(..)))
            | (SnapshotKind::MatchReviews, Some(SnapshotKey::Review(..)))
            | (SnapshotKind::Vectors, Some(SnapshotKey::Vector(..)))
    );
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "a page of {kind} cannot start after {after:?}: that key is of another kind"
        )))
    }
}

/// Copies every row of `kind` from `source` to `target`, `batch` rows per page (each page one
/// transaction on the target), calling `on_page` with the rows copied so far after each commit.
/// The next page is read while the current one is written, so the two stores work at once; at
/// most two pages are in memory. Returns how many rows were copied.
pub async fn copy_kind(
    source: &dyn Snapshot,
    target: &dyn Snapshot,
    kind: SnapshotKind,
    batch: usize,
    on_page: &mut (dyn FnMut(u64) + Send),
) -> Result<u64> {
    let batch = batch.clamp(1, MAX_PAGE);
    let mut page = source.export(kind, None, batch).await?;
    let mut after: Option<SnapshotKey> = None;
    let mut copied = 0u64;
    loop {
        if page.kind() != kind {
            return Err(Error::internal(format!(
                "asked for a page of {kind}, got one of {}",
                page.kind()
            )));
        }
        let Some(last) = page.last_key() else {
            return Ok(copied);
        };
        if after.as_ref() == Some(&last) {
            // A store that ignored the cursor would hand out the same page forever.
            return Err(Error::internal(format!(
                "the source's {kind} pages do not advance (after {last:?} came {last:?} again)"
            )));
        }
        let rows = page.len() as u64;
        let (imported, next) =
            futures::future::join(target.import(page), source.export(kind, Some(&last), batch))
                .await;
        imported?;
        copied += rows;
        on_page(copied);
        page = next?;
        after = Some(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_wrong_kind_are_refused() {
        assert!(check_key(SnapshotKind::Events, Some(&SnapshotKey::Id(3))).is_ok());
        assert!(check_key(SnapshotKind::Links, None).is_ok());
        let err = check_key(SnapshotKind::Links, Some(&SnapshotKey::Id(3))).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(err.message().contains("links"), "{err}");
        let record = SnapshotKey::Record("acme".into(), 3);
        assert!(check_key(SnapshotKind::Records, Some(&record)).is_ok());
        assert!(check_key(SnapshotKind::Records, Some(&SnapshotKey::Id(3))).is_err());
    }

    #[test]
    fn every_kind_has_an_empty_page_of_itself() {
        for kind in SnapshotKind::ALL {
            let page = SnapshotPage::empty(kind);
            assert_eq!(page.kind(), kind);
            assert!(page.is_empty());
            assert_eq!(page.last_key(), None);
            assert!(COUNTED_TABLES.contains(&kind.as_str()));
        }
    }
}
