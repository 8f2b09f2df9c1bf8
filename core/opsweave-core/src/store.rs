//! The storage seams: what every backend (SQLite, PostgreSQL) implements.

use crate::mapping::{Normalised, Rejection};
use crate::matching::Contribution;
use crate::{EntityKind, Event, Link, NewEvent, Record, RecordId, Result, Scope, Task, TaskStatus};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// One normalised item with its computed importance, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestItem {
    /// The record, task seed, links and serialised raw payload.
    pub normalised: Normalised,
    /// Importance in [0, 1] from the task's signals (0 for non-tasks).
    pub importance: f64,
    /// Why the importance is what it is.
    pub importance_reason: String,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// New records.
    pub inserted: u64,
    /// Records whose content changed.
    pub updated: u64,
    /// Records whose content hash was unchanged (nothing written).
    pub unchanged: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, rhs: Self) {
        self.inserted += rhs.inserted;
        self.updated += rhs.updated;
        self.unchanged += rhs.unchanged;
    }
}

/// Which records to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordFilter {
    /// Only this entity kind.
    pub entity: Option<EntityKind>,
    /// Only this source kind.
    pub source: Option<String>,
    /// Keyset cursor: records with an id greater than this.
    pub after: Option<RecordId>,
    /// At most this many (the store caps it at 10,000).
    pub limit: usize,
}

/// A full-text hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The record.
    pub id: RecordId,
    /// Its title.
    pub title: String,
    /// Its entity kind.
    pub entity: EntityKind,
    /// Its source kind.
    pub source_kind: String,
    /// A short excerpt around the match.
    pub snippet: String,
    /// Relevance, higher is better (BM25 negated).
    pub score: f64,
}

/// A ranked full-text query for recall: records holding any of the words, best BM25 first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextQuery {
    /// Free text; its words are looked for (operators are not interpreted).
    pub text: String,
    /// At most this many hits (the store caps it at 1,000).
    pub limit: usize,
    /// Only these entity kinds (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityKind>,
    /// Only these source kinds (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_kinds: Vec<String>,
}

/// The part of the open tasks a focus query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Slice {
    /// Unpinned, unboosted tasks due between the two dates, inclusive.
    Due(NaiveDate, NaiveDate),
    /// Unpinned, unboosted tasks due before this date.
    DueBefore(NaiveDate),
    /// Unpinned, unboosted undated tasks with importance in `[min, max)`.
    Undated(f64, f64),
    /// Pinned or boosted tasks (few: the user marks them by hand).
    Marked,
}

/// A page of open tasks from a slice, ordered by importance (high first), then last update (most
/// recent first), then id: within one importance the scores fall along the page, so a focus
/// search can stop reading a level once its most recent unread task cannot make the list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CandidateQuery {
    /// Which tasks.
    pub slice: Slice,
    /// Only tasks at least this important.
    pub min_importance: f64,
    /// Keyset cursor: tasks after this one in the order.
    pub after: Option<CandidateCursor>,
    /// Page size.
    pub limit: usize,
}

/// A position in the candidate order (importance desc, updated_at desc, id).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CandidateCursor {
    /// The importance of the last task read.
    pub importance: f64,
    /// Its last update; `None` skips every remaining task of this importance.
    pub updated_at: Option<DateTime<Utc>>,
    /// Its id.
    pub id: RecordId,
}

impl CandidateCursor {
    /// The cursor just after `task`.
    pub fn after(task: &Task) -> Self {
        Self {
            importance: task.importance,
            updated_at: Some(task.updated_at),
            id: task.id,
        }
    }

    /// The cursor past every task as important as `task`.
    pub fn below(task: &Task) -> Self {
        Self {
            updated_at: None,
            ..Self::after(task)
        }
    }
}

/// Where a pair in a resolver's review queue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Waiting for a person.
    Pending,
    /// A person said: same entity (a link was written).
    Accepted,
    /// A person said: different (later runs will not ask again).
    Rejected,
}

impl ReviewStatus {
    /// The name used in SQL and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the name [`as_str`](Self::as_str) gives.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "pending" => Ok(Self::Pending),
            "accepted" => Ok(Self::Accepted),
            "rejected" => Ok(Self::Rejected),
            other => Err(crate::Error::internal(format!(
                "unknown review status `{other}`"
            ))),
        }
    }
}

/// A pair in a resolver's review band, with the explanation of its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewItem {
    /// The resolver that scored it.
    pub resolver: String,
    /// Left (or first) record.
    pub left: RecordId,
    /// Right (or second) record.
    pub right: RecordId,
    /// log2 odds of a match.
    pub score: f64,
    /// Match probability.
    pub probability: f64,
    /// Each comparison's part in the score.
    pub explanation: Vec<Contribution>,
    /// Pending, accepted or rejected.
    pub status: ReviewStatus,
}

/// What one resolver run leaves in the store, written in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRun {
    /// The resolver's name.
    pub resolver: String,
    /// The spec and fitted model as JSON, for incremental runs.
    pub state: String,
    /// Records this run has seen (incremental runs only score records not seen before).
    pub members: Vec<RecordId>,
    /// Links decided as matches.
    pub links: Vec<Link>,
    /// Pairs for the review queue; pairs a person already decided are left as they are.
    pub review: Vec<ReviewItem>,
    /// A full run: the resolver's earlier match links (evidence starting `resolve:{resolver}:`),
    /// pending reviews and members are replaced; links a person accepted stay.
    pub replace: bool,
}

/// A first load into an empty store: every batch in one transaction, the store's secondary
/// indexes built once at the end instead of row by row. Dropped before
/// [`finish`](Self::finish), it stores nothing.
#[async_trait]
pub trait BulkLoad: Send {
    /// Stores a batch as [`RecordStore::ingest_batch`] would; nothing is visible to readers
    /// before [`finish`](Self::finish). After an error the load is spoilt: every later call
    /// fails, and dropping it stores nothing.
    async fn write(
        &mut self,
        source_file: &str,
        items: &[IngestItem],
        rejections: &[Rejection],
    ) -> Result<BatchOutcome>;

    /// Builds the indexes and commits the whole load.
    async fn finish(self: Box<Self>) -> Result<()>;
}

/// RAW + CORE records, tasks, links and their events.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// A bulk load for an ingest in `scope` when the store holds no records yet and has such a
    /// path; `None` otherwise, and the ingest writes batch by batch. While it is open it holds
    /// the store's write lock.
    async fn begin_bulk_load(&self, scope: &Scope) -> Result<Option<Box<dyn BulkLoad>>> {
        let _ = scope;
        Ok(None)
    }

    /// Stores a batch in one transaction: raw payloads, records, tasks, links and rejections.
    /// Unchanged items (same content hash) are not written. The batch commits whole or not at all.
    async fn ingest_batch(
        &self,
        scope: &Scope,
        source_file: &str,
        items: &[IngestItem],
        rejections: &[Rejection],
    ) -> Result<BatchOutcome>;

    /// One record; `NotFound` when it is not in `scope`.
    async fn record(&self, scope: &Scope, id: RecordId) -> Result<Record>;

    /// The raw payload a record came from, verbatim.
    async fn raw_payload(&self, scope: &Scope, id: RecordId) -> Result<String>;

    /// Records in `scope`, ordered by id.
    async fn records(&self, scope: &Scope, filter: &RecordFilter) -> Result<Vec<Record>>;

    /// Rejections kept from ingests, newest first.
    async fn rejections(&self, scope: &Scope, limit: usize) -> Result<Vec<(String, Rejection)>>;

    /// Full-text search over titles and bodies.
    async fn search(&self, scope: &Scope, query: &str, limit: usize) -> Result<Vec<SearchHit>>;

    /// Records holding any word of `query.text`, best BM25 first, within the filters (recall's
    /// full-text ranker; [`search`](Self::search) wants every word).
    async fn rank_text(&self, scope: &Scope, query: &TextQuery) -> Result<Vec<SearchHit>> {
        let _ = (scope, query);
        Err(unsupported("ranked full-text queries"))
    }

    /// The records of `ids` in `scope` that exist, in no particular order.
    async fn records_by_id(&self, scope: &Scope, ids: &[RecordId]) -> Result<Vec<Record>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            match self.record(scope, *id).await {
                Ok(record) => found.push(record),
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Removes records of `scope` with their raw payloads, tasks, links and full-text rows, in
    /// one transaction; returns how many records went. Events stay (the log is append-only).
    async fn delete_records(&self, scope: &Scope, ids: &[RecordId]) -> Result<u64> {
        let _ = (scope, ids);
        Err(unsupported("deleting records"))
    }

    /// One task; `NotFound` when it is not a task in `scope`.
    async fn task(&self, scope: &Scope, id: RecordId) -> Result<Task>;

    /// [`Self::task`] with the status its source last gave it (what undo checks), read at
    /// once; `None` from a store that does not keep it.
    async fn task_with_source_status(
        &self,
        scope: &Scope,
        id: RecordId,
    ) -> Result<(Task, Option<String>)> {
        Ok((self.task(scope, id).await?, None))
    }

    /// A page of open tasks for the focus search.
    async fn task_candidates(&self, scope: &Scope, query: &CandidateQuery) -> Result<Vec<Task>>;

    /// Tasks completed from `since` to `until` (both included), most recent first.
    async fn done_between(
        &self,
        scope: &Scope,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Task>>;

    /// Changes a task's status and appends its event in one transaction; `Conflict` when the
    /// status is no longer `expected` (someone else changed it first), or when the event is an
    /// undo and the task's status changed after the event it undoes
    /// ([`crate::task_ops::undo_still_current`]).
    async fn change_status(
        &self,
        scope: &Scope,
        id: RecordId,
        expected: TaskStatus,
        event: NewEvent,
    ) -> Result<Event>;

    /// Sets a task's manual boost and pin.
    async fn mark(&self, scope: &Scope, id: RecordId, boost: f64, pinned: bool) -> Result<Task>;

    /// Links with both ends among `ids`.
    async fn links_among(&self, scope: &Scope, ids: &[RecordId]) -> Result<Vec<Link>>;

    /// Stores links (e.g. from matching); existing (kind, from, to) links are updated.
    async fn put_links(&self, scope: &Scope, links: &[Link]) -> Result<()>;

    /// Counts of records and of open tasks in `scope`.
    async fn counts(&self, scope: &Scope) -> Result<(u64, u64)>;

    /// The task revision of `org`: a number raised in the same transaction as every write to the
    /// org's tasks (ingest, status change, mark, delete), by any process. An answer computed from
    /// the tasks after reading revision `n` may be reused while the revision is still `n`.
    /// `None`: this store keeps no revision, so nothing computed from it may be reused.
    async fn task_revision(&self, org: &str) -> Result<Option<i64>> {
        let _ = org;
        Ok(None)
    }

    /// Stores a resolver run: links, review queue, members and model, in one transaction.
    async fn save_match_run(&self, scope: &Scope, run: &MatchRun) -> Result<()> {
        let _ = (scope, run);
        Err(unsupported("saving match runs"))
    }

    /// The saved state (spec and model JSON) and members of a resolver, if it has run.
    async fn match_state(
        &self,
        scope: &Scope,
        resolver: &str,
    ) -> Result<Option<(String, Vec<RecordId>)>> {
        let _ = (scope, resolver);
        Err(unsupported("reading match state"))
    }

    /// Pending review pairs (of one resolver, or all), most likely matches first.
    async fn review_queue(
        &self,
        scope: &Scope,
        resolver: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>> {
        let _ = (scope, resolver, limit);
        Err(unsupported("the review queue"))
    }

    /// Records a person's decision on a review pair; accepting writes `link` in the same
    /// transaction. Deciding the same way twice is harmless; `NotFound` when there is no such pair.
    async fn decide_review(
        &self,
        scope: &Scope,
        resolver: &str,
        pair: (RecordId, RecordId),
        accept: bool,
        link: Option<Link>,
    ) -> Result<ReviewItem> {
        let _ = (scope, resolver, pair, accept, link);
        Err(unsupported("the review queue"))
    }
}

fn unsupported(what: &str) -> crate::Error {
    crate::Error::unavailable(format!("this storage backend does not support {what} yet"))
}

/// The append-only event log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends an event.
    async fn append(&self, event: NewEvent) -> Result<Event>;

    /// Events in `scope` (about `subject` when given) after sequence `after`, oldest first.
    async fn events(
        &self,
        scope: &Scope,
        subject: Option<RecordId>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>>;
}
