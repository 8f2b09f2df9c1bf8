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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleVector {
    /// The record.
    pub id: RecordId,
    /// Its current content hash (to be stored with the new vector).
    pub content_hash: u64,
    /// Its scope: an embedding job meters each model call to the scope of the records embedded.
    pub scope: Scope,
}

/// What a store knows of a model whose vectors it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredModel {
    /// The dimension every vector of the model has.
    pub dim: usize,
    /// The fingerprint of what made them, when the writer told one (see [`ModelInfo::fingerprint`]).
    pub fingerprint: Option<String>,
}

/// Stores vectors and answers filtered k-NN queries.
///
/// Contract (checked by the testkit on every backend):
/// - `upsert` of a vector whose length is not the model's dimension is `InvalidInput` and writes nothing;
/// - a model keeps its dimension while it has vectors: another dimension is `Conflict`; a name
///   whose vectors are all gone (deleted, or [`VectorIndex::drop_model`]) takes the next one;
/// - a model keeps the first fingerprint it is written with: another one is `Conflict` (see
///   [`check_stored_model`]);
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

    /// Those of `ids` in `scope` whose vector of `model` is missing or was made from other
    /// content, in id order (ids of no record in `scope` are left out): an embedding run asks
    /// before each batch, so records another run embedded meanwhile are not embedded (and
    /// billed) twice. The default pages through [`Self::stale`] over the ids' range.
    async fn stale_among(
        &self,
        model: &str,
        scope: &Scope,
        ids: &[RecordId],
    ) -> Result<Vec<RecordId>> {
        let wanted: std::collections::BTreeSet<RecordId> = ids.iter().copied().collect();
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        let mut after = Some(RecordId::from_raw(first.raw() - 1));
        loop {
            let page = self.stale(model, scope, after, MAX_K).await?;
            let full = page.len() == MAX_K;
            after = page.last().map(|s| s.id);
            found.extend(
                page.iter()
                    .map(|s| s.id)
                    .take_while(|id| id <= last)
                    .filter(|id| wanted.contains(id)),
            );
            if !full || after.is_none_or(|a| a >= *last) {
                return Ok(found);
            }
        }
    }

    /// What the store knows of `model`'s vectors (dimension, fingerprint); `None` when it holds
    /// none (never stored, or all gone: the name is free).
    async fn stored_model(&self, model: &str) -> Result<Option<StoredModel>>;

    /// Removes every vector of `model`, in every scope; returns how many went. The name is then
    /// free: another model, of any dimension and fingerprint, may take it.
    async fn drop_model(&self, model: &str) -> Result<u64>;

    /// A bulk load for writing `count` vectors of `model` in one go (a first embedding of a large
    /// corpus), or `None` when upserts one batch at a time cost the same (the default). A store
    /// whose index is far cheaper to build over stored rows than to grow row by row (pgvector's
    /// HNSW) stops maintaining it until [`VectorBulkLoad::finish`]; k-NN stays right meanwhile.
    async fn begin_bulk_load<'a>(
        &'a self,
        model: &ModelInfo,
        count: u64,
    ) -> Result<Option<Box<dyn VectorBulkLoad + 'a>>> {
        let _ = (model, count);
        Ok(None)
    }
}

/// Vectors of one model written in bulk (see [`VectorIndex::begin_bulk_load`]).
#[async_trait]
pub trait VectorBulkLoad: Send + Sync {
    /// Stores vectors as [`VectorIndex::upsert`] does, all or none, without maintaining the index.
    async fn write(&self, items: Vec<VectorItem>) -> Result<()>;

    /// Builds the model's index over every stored vector. A load that never finishes leaves the
    /// vectors stored and k-NN right; the model's next upsert builds the index.
    async fn finish(self: Box<Self>) -> Result<()>;
}

/// The most hits one k-NN query may ask for.
pub const MAX_K: usize = 10_000;

/// Checks a model name the same way on every backend: 1 to 200 printable characters.
pub fn check_model_name(model: &str) -> Result<()> {
    if model.trim().is_empty() || model.len() > 200 || model.chars().any(char::is_control) {
        return Err(crate::Error::invalid(format!(
            "model name `{model}` must be 1 to 200 printable characters"
        ))
        .on_field("model"));
    }
    Ok(())
}

/// Checks a batch before any of it is written: every vector has the model's dimension, finite
/// values and a direction (not all zeros), and every scope is valid.
pub fn check_upsert(model: &ModelInfo, items: &[VectorItem]) -> Result<()> {
    check_model_name(&model.name)?;
    if model.dim == 0 {
        return Err(
            crate::Error::invalid(format!("model `{}` has dimension 0", model.name))
                .on_field("dim"),
        );
    }
    for (i, item) in items.iter().enumerate() {
        let what = format!("vector {i} (record {})", item.id);
        if item.vector.len() != model.dim {
            return Err(crate::Error::invalid(format!(
                "{what} has {} dimensions; model `{}` has {}",
                item.vector.len(),
                model.name,
                model.dim
            ))
            .on_field("vector"));
        }
        check_vector(&item.vector, &what)?;
        item.scope.validate()?;
        if item.id.raw() < 0 {
            return Err(
                crate::Error::invalid(format!("{what}: record id is negative")).on_field("id"),
            );
        }
    }
    Ok(())
}

/// Refuses `model` when the store holds vectors of its name made by another model: both have a
/// fingerprint and they differ. Vectors of two models live in different spaces; mixed, every
/// similarity between them is noise, silently.
fn check_fingerprint(model: &ModelInfo, stored: Option<&str>) -> Result<()> {
    match (stored, model.fingerprint.as_deref()) {
        (Some(stored), Some(now)) if stored != now => Err(crate::Error::conflict(format!(
            "the vectors of model `{}` in this store were made by another model (fingerprint \
             {stored}; this one is {now}: its weights, tokenizer or pooling differ): point the \
             model back at the files that made them, record this one under another name \
             (embed.model_name) and embed again, or replace the old vectors (opsweave embed \
             --replace: every org's)",
            model.name
        ))
        .on_field("model")),
        _ => Ok(()),
    }
}

/// Refuses to embed or query with `model` when the store's vectors of its name have another
/// dimension or were made by another model (both fingerprinted, differing): stores check it in
/// every write, callers before any work. A name with no vectors left (all deleted, or dropped
/// with [`VectorIndex::drop_model`]) is stored as `None`: any model may take it.
pub fn check_stored_model(model: &ModelInfo, stored: Option<&StoredModel>) -> Result<()> {
    let Some(stored) = stored else {
        return Ok(());
    };
    if stored.dim != model.dim {
        return Err(crate::Error::conflict(format!(
            "the vectors of model `{}` in this store have {} dimensions; this model makes {}: \
             ask an openai: model for the stored size ([embed] dimensions), record another \
             model under a name of its own (embed.model_name, onnx: models) and embed again, \
             or replace the old vectors (opsweave embed --replace: every org's)",
            model.name, stored.dim, model.dim
        ))
        .on_field("model"));
    }
    check_fingerprint(model, stored.fingerprint.as_deref())
}

/// Checks a k-NN query: a valid model name and filter scope, `k` at most [`MAX_K`], and a query
/// vector that has a direction. Its dimension is the backend's to check against the model.
pub fn check_query(model: &str, query: &[f32], k: usize, filter: &VectorFilter) -> Result<()> {
    check_model_name(model)?;
    filter.scope.validate()?;
    if k > MAX_K {
        return Err(crate::Error::invalid(format!("k is {k}; at most {MAX_K}")).on_field("k"));
    }
    check_vector(query, "the query vector")
}

/// Checks that every value fits IEEE half precision (|x| ≤ 65,504), for backends that store
/// vectors as f16: a larger value would turn into infinity.
pub fn check_half_precision(items: &[VectorItem]) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        if let Some(p) = item.vector.iter().position(|x| x.abs() > 65_504.0) {
            return Err(crate::Error::invalid(format!(
                "vector {i} (record {}) has {} at position {p}: out of half-precision range \
                 (±65,504) this model is stored in",
                item.id, item.vector[p]
            ))
            .on_field("vector"));
        }
    }
    Ok(())
}

/// Finite values, not all zero: what cosine similarity needs.
fn check_vector(vector: &[f32], what: &str) -> Result<()> {
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(crate::Error::invalid(format!(
            "{what} has a non-finite value at position {i}"
        ))
        .on_field("vector"));
    }
    if vector.iter().all(|x| *x == 0.0) {
        return Err(crate::Error::invalid(format!(
            "{what} is all zeros: it has no direction to compare"
        ))
        .on_field("vector"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn item(vector: Vec<f32>) -> VectorItem {
        VectorItem {
            id: RecordId::from_raw(1),
            scope: Scope::org("acme"),
            entity: EntityKind::Note,
            source_kind: "memory".into(),
            content_hash: 0,
            vector,
        }
    }

    #[test]
    fn bad_batches_are_named() {
        let model = ModelInfo {
            name: "m".into(),
            dim: 2,
            max_tokens: 8,
            fingerprint: None,
        };
        assert!(check_upsert(&model, &[item(vec![1.0, 0.0])]).is_ok());
        for (bad, field) in [
            (vec![1.0], "vector"),
            (vec![f32::NAN, 1.0], "vector"),
            (vec![0.0, 0.0], "vector"),
        ] {
            let err = check_upsert(&model, &[item(vec![1.0, 0.0]), item(bad)]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(err.location().field.as_deref(), Some(field));
            assert!(err.message().contains("vector 1"), "{err}");
        }
        let filter = VectorFilter {
            scope: Scope::org("acme"),
            ..VectorFilter::default()
        };
        assert!(check_query("m", &[1.0], MAX_K + 1, &filter).is_err());
        assert!(check_query("", &[1.0], 1, &filter).is_err());
        assert!(check_query("m", &[1.0], 1, &filter).is_ok());
    }
}
