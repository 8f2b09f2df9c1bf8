//! opsweave-core: the pure domain of opsweave.
//!
//! Records, scopes, mappings, prioritisation, focus, graph and the storage seams. No I/O, no
//! runtime, no SQL: backends implement [`RecordStore`], [`EventLog`] and the other seams (jobs,
//! usage, keys, vectors, [`Snapshot`] for copies between backends); the facade crate
//! `opsweave` wires them together.

pub mod access;
pub mod cache;
pub mod embed;
mod error;
mod event;
pub mod focus;
pub mod graph;
mod horizon;
pub mod jobs;
mod link;
pub mod mapping;
pub mod matching;
mod model;
pub mod price;
pub mod priority;
pub mod rate;
pub mod recall;
mod scope;
pub mod snapshot;
pub mod source;
pub mod store;
mod task;
pub mod task_ops;
pub mod usage;
pub mod vector;
pub mod zone;

pub use access::{ApiKey, KeyId, KeyStore, NewApiKey, Role};
pub use cache::{Cache, MemoryCache};
pub use embed::{EmbedKind, Embedder, Embeddings, ModelInfo};
pub use error::{Error, ErrorKind, Location, Result};
pub use event::{Event, EventKind, NewEvent};
pub use focus::Focus;
pub use graph::Graph;
pub use horizon::{Horizon, Lane, Window};
pub use jobs::{Job, JobId, JobQueue, JobStatus, NewJob, OpenJobs, Progress};
pub use link::{Link, LinkKind, LinkRef};
pub use mapping::{Format, Mapping, Rejection};
pub use model::{EntityKind, Fields, Money, RawItem, Record, RecordId, SourceRef, Value};
pub use price::{Price, PriceBook, PricedTotal, TokenKind};
pub use priority::{Breakdown, Priority, PriorityConfig};
pub use rate::{MemoryRateLimiter, RateDecision, RateLimit, RateLimiter, WhenUnavailable};
pub use recall::{RecallHit, RecallMode, RecallOptions};
pub use scope::Scope;
pub use snapshot::{RowCount, Snapshot, SnapshotKey, SnapshotKind, SnapshotPage};
pub use store::{
    BatchOutcome, BulkLoad, CandidateCursor, EventLog, IngestItem, MatchRun, RecordStore,
    ReviewItem, ReviewStatus, SearchHit, TextQuery,
};
pub use task::{RankedTask, Signals, Task, TaskSeed, TaskStatus};
pub use usage::{
    ModelCall, Operation, UsageEvent, UsageGroup, UsageLedger, UsageQuery, UsageTotal,
};
pub use vector::{StaleVector, VectorBulkLoad, VectorFilter, VectorHit, VectorIndex, VectorItem};
pub use zone::Zone;
