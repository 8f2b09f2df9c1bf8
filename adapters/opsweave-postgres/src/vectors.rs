//! The HNSW index of each embedding model on `search.embeddings` (see migration 0002).

use crate::error::map;
use crate::retry::with_retries;
use crate::PgStore;
use opsweave_core::{Error, Result};

/// The largest dimension pgvector indexes for `halfvec`.
pub const MAX_INDEXED_DIM: usize = 4_000;

impl PgStore {
    /// Makes sure `model`'s vectors (of `dim` dimensions) have their HNSW index (cosine distance),
    /// creating it on first use, and returns the index name. A k-NN query uses the index when it
    /// orders by `embedding::halfvec(dim) <=> $query` and filters on `model = '<model>'` written as
    /// a literal (a bound parameter cannot prove the partial index's predicate in a generic plan).
    /// `Conflict` when the model already has an index of another dimension.
    pub async fn ensure_vector_index(&self, model: &str, dim: usize) -> Result<String> {
        if model.trim().is_empty() || model.len() > 200 || model.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "model name `{model}` must be 1 to 200 printable characters"
            ))
            .on_field("model"));
        }
        if !(1..=MAX_INDEXED_DIM).contains(&dim) {
            return Err(Error::invalid(format!(
                "dimension {dim} is not in 1..={MAX_INDEXED_DIM} (pgvector's HNSW limit for halfvec)"
            ))
            .on_field("dim"));
        }
        let name = index_name(model);
        let name = &name;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            // One creator at a time; the others then find the row it wrote.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('opsweave:' || $1, 0))")
                .bind(model)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("lock vector index", e))?;
            let known: Option<(i32, String)> = sqlx::query_as(
                "SELECT dim, index_name FROM search.vector_indexes WHERE model = $1",
            )
            .bind(model)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("read vector indexes", e))?;
            if let Some((known_dim, known_name)) = known {
                return if known_dim as usize == dim {
                    Ok(known_name)
                } else {
                    Err(Error::conflict(format!(
                        "model `{model}` is indexed with {known_dim} dimensions, not {dim}: \
                         re-embed under another model name"
                    )))
                };
            }
            // The server quotes the name and the model (format's %I and %L).
            let create: String = sqlx::query_scalar(
                "SELECT format('CREATE INDEX IF NOT EXISTS %I ON search.embeddings \
                 USING hnsw ((embedding::halfvec(%s)) halfvec_cosine_ops) WHERE model = %L', \
                 $1::text, $2::int, $3::text)",
            )
            .bind(name)
            .bind(dim as i32)
            .bind(model)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map("build vector index statement", e))?;
            sqlx::raw_sql(&create)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("create vector index", e))?;
            sqlx::query(
                "INSERT INTO search.vector_indexes (model, dim, index_name) VALUES ($1, $2, $3)",
            )
            .bind(model)
            .bind(dim as i32)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(|e| map("record vector index", e))?;
            tx.commit()
                .await
                .map_err(|e| map("commit vector index", e))?;
            Ok(name.clone())
        })
        .await
    }
}

/// A stable index name for `model` (FNV-1a of the name: identifiers are limited to 63 bytes).
fn index_name(model: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in model.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("embeddings_hnsw_{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::index_name;

    #[test]
    fn index_names_are_stable_and_short() {
        assert_eq!(index_name("bge-m3"), index_name("bge-m3"));
        assert_ne!(index_name("bge-m3"), index_name("bge-m4"));
        assert!(index_name(&"x".repeat(200)).len() <= 63);
    }
}
