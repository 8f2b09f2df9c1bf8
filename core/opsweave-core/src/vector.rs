//! The vector seam: embeddings stored per (model, record) and k-NN over them with filters.
//!
//! Every backend keeps the vectors in its store of record (SQLite BLOBs, pgvector columns) and
//! may keep an index beside them; an index is a cache that can always be rebuilt from the store.

use crate::{EntityKind, ModelInfo, RecordId, Result, Scope};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One vector to store: the record it embeds, copied filter columns and the content it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorItem {
    /// The record (or memory note) the vector embeds.
    pub id: RecordId,
    /// Its scope, copied so a filtered query needs no join.
    pub scope: Scope,
    /// Its entity kind, copied for filters.
    pub entity: EntityKind,
    /// Its source kind, copied for filters.
    pub source_kind: String,
    /// The record's content hash when it was embedded: an equal hash needs no new vector.
    pub content_hash: u64,
    /// The vector; its length must equal the model's dimension.
    pub vector: Vec<f32>,
}

/// Which vectors a k-NN query may return.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VectorFilter {
    /// Scope as a filter: the org always, client and project when set.
    pub scope: Scope,
    /// Only these entity kinds (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityKind>,
    /// Only these source kinds (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_kinds: Vec<String>,
}

/// A k-NN hit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VectorHit {
    /// The record.
    pub id: RecordId,
    /// Cosine similarity to the query, higher is closer.
    pub similarity: f32,
}

/// A record whose vector is missing or was made from other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleVector {
    /// The record.
    pub id: RecordId,
    /// Its current content hash (to be stored with the new vector).
    pub content_hash: u64,
}

/// Stores vectors and answers filtered k-NN queries.
///
/// Contract (checked by the testkit on every backend):
/// - `upsert` of a vector whose length is not the model's dimension is `InvalidInput` and writes nothing;
/// - a model keeps one dimension for life: another dimension is `Conflict`;
/// - `knn` returns `min(k, matching rows)` hits, best first, never fewer because of the filter.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Stores (or replaces) vectors of `model`, all or none.
    async fn upsert(&self, model: &ModelInfo, items: Vec<VectorItem>) -> Result<()>;

    /// Removes the vectors of `ids` for every model; returns how many rows went.
    async fn delete(&self, scope: &Scope, ids: &[RecordId]) -> Result<u64>;

    /// The `k` nearest vectors of `model` to `query` among those `filter` allows.
    async fn knn(
        &self,
        model: &str,
        query: &[f32],
        k: usize,
        filter: &VectorFilter,
    ) -> Result<Vec<VectorHit>>;

    /// Records in `scope` with no vector of `model` or one made from other content, in id order
    /// after `after`, at most `limit`: the work list of an embedding job (resumable by cursor).
    async fn stale(
        &self,
        model: &str,
        scope: &Scope,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<StaleVector>>;
}
