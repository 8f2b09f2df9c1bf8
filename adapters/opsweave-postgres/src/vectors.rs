//! `VectorIndex` on pgvector: vectors in `search.embeddings` (halfvec), one HNSW index per model
//! (see migration 0002), filtered k-NN with pgvector 0.8's iterative index scans and an exact
//! fallback, so a filter never makes a query return fewer rows than match.

use crate::error::map;
use crate::retry::with_retries;
use crate::PgStore;
use async_trait::async_trait;
use opsweave_core::vector::{
    check_half_precision, check_model_name, check_query, check_stored_model, check_upsert,
    StoredModel, MAX_K,
};
use opsweave_core::{
    Error, ModelInfo, RecordId, Result, Scope, StaleVector, VectorBulkLoad, VectorFilter,
    VectorHit, VectorIndex, VectorItem,
};
use pgvector::HalfVector;
use std::collections::HashMap;

/// Rows per `UNNEST` statement of an upsert.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The largest dimension pgvector indexes for `halfvec`.
pub const MAX_INDEXED_DIM: usize = 4_000;

/// Fewest vectors an embedding run must write for it to load them in bulk (`begin_bulk_load`).
pub const BULK_LOAD_FROM: u64 = 10_000;

/// Bytes of index build memory per vector beyond its halves: with them pgvector keeps the graph
/// of a bulk load's build in memory (about 1.3 KiB per 384-dimension vector).
const GRAPH_BYTES_PER_VECTOR: u64 = 512;

/// The most `maintenance_work_mem` a bulk load's build asks for, MiB (larger graphs are built
/// partly on disk, slower).
const MAX_BUILD_MEMORY_MIB: u64 = 1_024;

impl PgStore {
    /// Makes sure `model`'s vectors (of `dim` dimensions) have their HNSW index (cosine distance),
    /// creating it on first use (and again when an unfinished bulk load left it missing), and
    /// returns the index name. A k-NN query uses the index when it
    /// orders by `embedding::halfvec(dim) <=> $query` and filters on `model = '<model>' AND
    /// vector_dims(embedding) = <dim>` written as literals (a bound parameter cannot prove the
    /// partial index's predicate in a generic plan). The dimension is in the predicate because
    /// an index build also reads rows deleted but not yet vacuumed: after a model name was
    /// emptied and took another dimension, the cast would fail on the old rows.
    /// `Conflict` when the model's stored vectors have another dimension; a model without any
    /// takes the new one (its index is built again).
    pub async fn ensure_vector_index(&self, model: &str, dim: usize) -> Result<String> {
        let model = ModelInfo {
            name: model.to_owned(),
            dim,
            max_tokens: 0,
            fingerprint: None,
        };
        self.ensure_model_index(&model).await
    }

    /// [`Self::ensure_vector_index`] for `model`, which also records its fingerprint (the first
    /// one given) and refuses another one (`Conflict`, see [`check_stored_model`]).
    async fn ensure_model_index(&self, model: &ModelInfo) -> Result<String> {
        let dim = model.dim;
        check_model_name(&model.name)?;
        if !(1..=MAX_INDEXED_DIM).contains(&dim) {
            return Err(Error::invalid(format!(
                "dimension {dim} is not in 1..={MAX_INDEXED_DIM} (pgvector's HNSW limit for halfvec)"
            ))
            .on_field("dim"));
        }
        let name = index_name(&model.name);
        // A named async fn, not a closure's async block: its future is Send for any lifetime,
        // which the `VectorIndex` methods (boxed by async_trait) need.
        with_retries(|| create_vector_index(&self.pool, model, &name)).await
    }
}

/// Records `model`'s index (creating it) under an advisory lock; see `ensure_vector_index`.
async fn create_vector_index(pool: &sqlx::PgPool, info: &ModelInfo, name: &str) -> Result<String> {
    let (model, dim) = (info.name.as_str(), info.dim);
    let mut tx = pool.begin().await.map_err(|e| map("begin", e))?;
    // One creator at a time; the others then find the row it wrote.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('opsweave:' || $1, 0))")
        .bind(model)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("lock vector index", e))?;
    // FOR UPDATE: a resize below waits for writers (which hold the row FOR SHARE) to commit,
    // so it sees their vectors; writers that come after it read the new dimension.
    let known: Option<(i32, String, Option<String>)> = sqlx::query_as(
        "SELECT dim, index_name, fingerprint FROM search.vector_indexes WHERE model = $1 \
         FOR UPDATE",
    )
    .bind(model)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| map("read vector indexes", e))?;
    if let Some((known_dim, known_name, fingerprint)) = known {
        let stored = StoredModel {
            dim: known_dim as usize,
            fingerprint,
        };
        if stored.dim != dim && !has_vectors(&mut tx, model).await? {
            // A name whose vectors are all gone takes the next model's dimension. Its index is
            // on a cast to the old one: a new index (named by its dimension) is built first, and
            // the old one dropped just before commit, so the table every model shares is locked
            // against readers only briefly.
            let name = format!("{}_d{dim}", index_name(model));
            create_index(&mut tx, model, dim, &name).await?;
            sqlx::query(
                "UPDATE search.vector_indexes SET dim = $2, index_name = $3, fingerprint = $4 \
                 WHERE model = $1",
            )
            .bind(model)
            .bind(dim as i32)
            .bind(&name)
            .bind(&info.fingerprint)
            .execute(&mut *tx)
            .await
            .map_err(|e| map("resize vector model", e))?;
            // The name is ours (`index_name`: letters, digits, underscores), safe to write inline.
            sqlx::query(&format!("DROP INDEX IF EXISTS search.{known_name}"))
                .execute(&mut *tx)
                .await
                .map_err(|e| map("drop vector index", e))?;
            tx.commit()
                .await
                .map_err(|e| map("commit vector index", e))?;
            return Ok(name);
        }
        check_stored_model(info, Some(&stored))?;
        if stored.fingerprint.is_none() && info.fingerprint.is_some() {
            sqlx::query("UPDATE search.vector_indexes SET fingerprint = $2 WHERE model = $1")
                .bind(model)
                .bind(&info.fingerprint)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("record model fingerprint", e))?;
        }
        // A bulk load that never finished left the model without its index: build it now.
        let present: bool =
            sqlx::query_scalar("SELECT to_regclass('search.' || quote_ident($1)) IS NOT NULL")
                .bind(&known_name)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| map("look up vector index", e))?;
        if !present {
            create_index(&mut tx, model, dim, &known_name).await?;
        }
        tx.commit()
            .await
            .map_err(|e| map("commit vector index", e))?;
        return Ok(known_name);
    }
    create_index(&mut tx, model, dim, name).await?;
    sqlx::query(
        "INSERT INTO search.vector_indexes (model, dim, index_name, fingerprint) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(model)
    .bind(dim as i32)
    .bind(name)
    .bind(&info.fingerprint)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("record vector index", e))?;
    tx.commit()
        .await
        .map_err(|e| map("commit vector index", e))?;
    Ok(name.to_string())
}

/// Whether any vector of `model` is stored.
async fn has_vectors(conn: &mut sqlx::PgConnection, model: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM search.embeddings WHERE model = $1)")
        .bind(model)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| map("look up vectors", e))
}

/// Creates `model`'s HNSW index `name` over the rows already stored (cosine distance on halfvec).
async fn create_index(
    conn: &mut sqlx::PgConnection,
    model: &str,
    dim: usize,
    name: &str,
) -> Result<()> {
    // The server quotes the name and the model (format's %I and %L).
    let create: String = sqlx::query_scalar(
        "SELECT format('CREATE INDEX IF NOT EXISTS %I ON search.embeddings \
         USING hnsw ((embedding::halfvec(%s)) halfvec_cosine_ops) \
         WHERE model = %L AND vector_dims(embedding) = %s', \
         $1::text, $2::int, $3::text, $2::int)",
    )
    .bind(name)
    .bind(dim as i32)
    .bind(model)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| map("build vector index statement", e))?;
    // A plain (extended-protocol) statement: raw_sql's future is not Send for every lifetime.
    sqlx::query(&create)
        .execute(&mut *conn)
        .await
        .map_err(|e| map("create vector index", e))?;
    Ok(())
}

/// A bulk load of one model's vectors, begun by [`PgStore::begin_vector_load`]: the model's HNSW
/// index is dropped first and built once over every row by [`VectorLoad::finish`] — pgvector
/// builds an index over stored rows many times faster than it inserts rows into one. Until then
/// k-NN queries of the model are exact scans (right, slower). A load that never finishes is
/// repaired by the next upsert of the model, which builds the missing index (so does an upsert of
/// the model from elsewhere during the load: right, but the load then inserts into that index).
pub struct VectorLoad<'a> {
    store: &'a PgStore,
    model: ModelInfo,
    index: String,
}

impl PgStore {
    /// Begins a bulk load of `model`'s vectors (see [`VectorLoad`]).
    pub async fn begin_vector_load(&self, model: &ModelInfo) -> Result<VectorLoad<'_>> {
        let index = self.ensure_model_index(model).await?;
        // The name is ours (`index_name`: letters, digits, underscores), safe to write inline.
        let drop = format!("DROP INDEX IF EXISTS search.{index}");
        with_retries(|| async {
            sqlx::query(&drop)
                .execute(&self.pool)
                .await
                .map_err(|e| map("drop vector index for a bulk load", e))
        })
        .await?;
        Ok(VectorLoad {
            store: self,
            model: model.clone(),
            index,
        })
    }
}

/// How many vectors of `model` are stored.
async fn stored_vectors(pool: &sqlx::PgPool, model: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM search.embeddings WHERE model = $1")
        .bind(model)
        .fetch_one(pool)
        .await
        .map_err(|e| map("count vectors", e))?;
    Ok(n.max(0) as u64)
}

/// A [`VectorLoad`] behind the [`VectorBulkLoad`] seam, building with the memory its size asks for.
struct BulkLoad<'a> {
    load: VectorLoad<'a>,
    /// The model's vectors once the load is written (stored before it + the load's).
    vectors: u64,
}

#[async_trait]
impl VectorBulkLoad for BulkLoad<'_> {
    async fn write(&self, items: Vec<VectorItem>) -> Result<()> {
        self.load.write(items).await
    }

    async fn finish(self: Box<Self>) -> Result<()> {
        let per_vector = 2 * self.load.model.dim as u64 + GRAPH_BYTES_PER_VECTOR;
        let mib = (self.vectors.saturating_mul(per_vector))
            .div_ceil(1 << 20)
            .clamp(64, MAX_BUILD_MEMORY_MIB);
        self.load.finish(mib as u32).await
    }
}

impl VectorLoad<'_> {
    /// Writes vectors as [`VectorIndex::upsert`] does, without maintaining the index.
    pub async fn write(&self, items: Vec<VectorItem>) -> Result<()> {
        if check_items(&self.model, &items)? {
            write_items(self.store, &self.model, &items).await?;
        }
        Ok(())
    }

    /// Builds the model's index over every stored row, giving the build `memory_mib` of
    /// `maintenance_work_mem` (a graph that does not fit is built on disk, much slower: about
    /// 1.3 KiB per 384-dimension vector).
    pub async fn finish(self, memory_mib: u32) -> Result<()> {
        let (store, model, index) = (self.store, &self.model, &self.index);
        // The new rows' visibility and statistics settled before the build: otherwise the
        // insert-triggered autovacuum comes after it and walks the new graph while queries run,
        // and the planner costs filtered queries with stale row counts.
        with_retries(|| async {
            sqlx::query("VACUUM (ANALYZE) search.embeddings")
                .execute(&store.pool)
                .await
                .map_err(|e| map("vacuum vectors after a bulk load", e))
        })
        .await?;
        with_retries(|| async move {
            let mut tx = store.pool.begin().await.map_err(|e| map("begin", e))?;
            sqlx::query("SELECT set_config('maintenance_work_mem', $1, true)")
                .bind(format!("{}MB", memory_mib.max(64)))
                .execute(&mut *tx)
                .await
                .map_err(|e| map("set index build memory", e))?;
            // The model may have been resized meanwhile (emptied and written at another size):
            // then the index it has now is the one to keep, and this load's is not built.
            let now: Option<(i32, String)> = sqlx::query_as(
                "SELECT dim, index_name FROM search.vector_indexes WHERE model = $1 FOR SHARE",
            )
            .bind(&model.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("read vector model", e))?;
            if let Some((dim, name)) = now.filter(|(d, n)| *d as usize != model.dim || n != index) {
                return Err(Error::conflict(format!(
                    "model `{}` was given vectors of {dim} dimensions (index {name}) during this \
                     load of {}: the load's index is not built",
                    model.name, model.dim
                ))
                .on_field("model"));
            }
            create_index(&mut tx, &model.name, model.dim, index).await?;
            tx.commit().await.map_err(|e| map("commit vector index", e))
        })
        .await
    }
}

/// Checks `items` of `model` before anything is written; true when there is something to write.
fn check_items(model: &ModelInfo, items: &[VectorItem]) -> Result<bool> {
    check_upsert(model, items)?;
    // Every vector is stored as halfvec.
    check_half_precision(items)?;
    Ok(!items.is_empty())
}

/// Writes checked `items` of `model` (the later of two vectors of one record wins).
async fn write_items(store: &PgStore, model: &ModelInfo, items: &[VectorItem]) -> Result<()> {
    // The same record twice in one batch: the later vector wins (ON CONFLICT cannot touch a
    // row twice in one statement).
    let mut latest: HashMap<i64, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        latest.insert(item.id.raw(), i);
    }
    let items: Vec<&VectorItem> = items
        .iter()
        .enumerate()
        .filter(|(i, item)| latest.get(&item.id.raw()) == Some(i))
        .map(|(_, item)| item)
        .collect();
    let batches: Vec<Columns> = items.chunks(ROWS_PER_STATEMENT).map(Columns::of).collect();
    with_retries(|| write_batches(&store.pool, model, &batches)).await
}

/// `model` as an SQL string literal. A k-NN query names its model as a literal so the planner can
/// prove the partial HNSW index's predicate; the escape-string form (`E'…'`) reads the same
/// whatever `standard_conforming_strings` says.
fn model_literal(model: &str) -> String {
    format!("E'{}'", model.replace('\\', "\\\\").replace('\'', "''"))
}

/// The filter columns of `search.embeddings`, as parameters `$first..$first+3`: org, client,
/// project (NULL: any), entities and source kinds (empty: any).
fn filter_sql(first: usize) -> String {
    format!(
        "org = ${a} AND (${b}::text IS NULL OR client = ${b}) \
         AND (${c}::text IS NULL OR project = ${c}) \
         AND (cardinality(${d}::text[]) = 0 OR entity = ANY(${d})) \
         AND (cardinality(${e}::text[]) = 0 OR source_kind = ANY(${e}))",
        a = first,
        b = first + 1,
        c = first + 2,
        d = first + 3,
        e = first + 4
    )
}

/// The values [`filter_sql`] names, in order.
type FilterValues = (
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
    Vec<String>,
);

fn filter_values(filter: &VectorFilter) -> FilterValues {
    (
        filter.scope.org.clone(),
        filter.scope.client.clone(),
        filter.scope.project.clone(),
        filter
            .entities
            .iter()
            .map(|e| e.as_str().to_string())
            .collect(),
        filter.source_kinds.clone(),
    )
}

/// The columns of one `UNNEST` upsert statement.
struct Columns {
    ids: Vec<i64>,
    orgs: Vec<String>,
    clients: Vec<Option<String>>,
    projects: Vec<Option<String>>,
    entities: Vec<String>,
    source_kinds: Vec<String>,
    hashes: Vec<i64>,
    vectors: Vec<HalfVector>,
}

impl Columns {
    fn of(items: &[&VectorItem]) -> Self {
        Self {
            ids: items.iter().map(|i| i.id.raw()).collect(),
            orgs: items.iter().map(|i| i.scope.org.clone()).collect(),
            clients: items.iter().map(|i| i.scope.client.clone()).collect(),
            projects: items.iter().map(|i| i.scope.project.clone()).collect(),
            entities: items
                .iter()
                .map(|i| i.entity.as_str().to_string())
                .collect(),
            source_kinds: items.iter().map(|i| i.source_kind.clone()).collect(),
            hashes: items.iter().map(|i| i.content_hash as i64).collect(),
            vectors: items
                .iter()
                .map(|i| HalfVector::from_f32_slice(&i.vector))
                .collect(),
        }
    }
}

/// Writes all batches of vectors of `model` in one transaction.
async fn write_batches(pool: &sqlx::PgPool, model: &ModelInfo, batches: &[Columns]) -> Result<()> {
    let mut tx = pool.begin().await.map_err(|e| map("begin", e))?;
    // The dimension checked before this transaction still holds until it commits: a name
    // emptied meanwhile may have taken another one (see `create_vector_index`).
    let dim: Option<i32> =
        sqlx::query_scalar("SELECT dim FROM search.vector_indexes WHERE model = $1 FOR SHARE")
            .bind(&model.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("read vector model", e))?;
    if let Some(stored) = dim.filter(|d| *d as usize != model.dim) {
        return Err(Error::conflict(format!(
            "model `{}` was given vectors of {stored} dimensions meanwhile; this model makes {}",
            model.name, model.dim
        ))
        .on_field("model"));
    }
    for columns in batches {
        write_columns(&mut tx, &model.name, columns).await?;
    }
    tx.commit().await.map_err(|e| map("commit vectors", e))
}

/// Writes one batch of vectors of `model`.
async fn write_columns(
    conn: &mut sqlx::PgConnection,
    model: &str,
    columns: &Columns,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO search.embeddings (model, id, org, client, project, entity, \
             source_kind, content_hash, embedding, embedded_at) \
             SELECT $1, n.id, n.org, n.client, n.project, n.entity, n.source_kind, \
             n.content_hash, n.embedding, now() \
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::bigint[], $9::halfvec[]) \
             AS n(id, org, client, project, entity, source_kind, content_hash, embedding) \
             ON CONFLICT (model, id) DO UPDATE SET org = excluded.org, \
             client = excluded.client, project = excluded.project, \
             entity = excluded.entity, source_kind = excluded.source_kind, \
             content_hash = excluded.content_hash, embedding = excluded.embedding, \
             embedded_at = excluded.embedded_at",
    )
    .bind(model)
    .bind(&columns.ids)
    .bind(&columns.orgs)
    .bind(&columns.clients)
    .bind(&columns.projects)
    .bind(&columns.entities)
    .bind(&columns.source_kinds)
    .bind(&columns.hashes)
    .bind(&columns.vectors)
    .execute(&mut *conn)
    .await
    .map_err(|e| map("write vectors", e))?;
    Ok(())
}

/// The HNSW candidate list for a query of `k` (pgvector's default is 40).
fn ef_search(k: usize) -> usize {
    (2 * k).clamp(64, 1_000)
}

#[async_trait]
impl VectorIndex for PgStore {
    async fn upsert(&self, model: &ModelInfo, items: Vec<VectorItem>) -> Result<()> {
        if !check_items(model, &items)? {
            return Ok(());
        }
        self.ensure_model_index(model).await?;
        write_items(self, model, &items).await
    }

    async fn stored_model(&self, model: &str) -> Result<Option<StoredModel>> {
        check_model_name(model)?;
        with_retries(|| async move {
            // A name with no vectors left is free (see `create_vector_index`).
            let row: Option<(i32, Option<String>)> = sqlx::query_as(
                "SELECT dim, fingerprint FROM search.vector_indexes i WHERE model = $1 \
                 AND EXISTS (SELECT 1 FROM search.embeddings e WHERE e.model = i.model)",
            )
            .bind(model)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map("read vector model", e))?;
            Ok(row.map(|(dim, fingerprint)| StoredModel {
                dim: dim as usize,
                fingerprint,
            }))
        })
        .await
    }

    /// A [`VectorLoad`] when `count` is at least [`BULK_LOAD_FROM`] and at least the model's stored
    /// vectors: the build then walks every vector of the model, so a load that adds fewer than are
    /// already there costs more than inserting them into the index.
    async fn begin_bulk_load<'a>(
        &'a self,
        model: &ModelInfo,
        count: u64,
    ) -> Result<Option<Box<dyn VectorBulkLoad + 'a>>> {
        if count < BULK_LOAD_FROM {
            return Ok(None);
        }
        check_model_name(&model.name)?;
        let stored = with_retries(|| stored_vectors(&self.pool, &model.name)).await?;
        if count < stored {
            return Ok(None);
        }
        let load = self.begin_vector_load(model).await?;
        Ok(Some(Box::new(BulkLoad {
            load,
            vectors: stored + count,
        })))
    }

    async fn delete(&self, scope: &Scope, ids: &[RecordId]) -> Result<u64> {
        scope.validate()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let raw: Vec<i64> = ids.iter().map(|id| id.raw()).collect();
        let raw = &raw;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            let models: Vec<String> = sqlx::query_scalar(
                "DELETE FROM search.embeddings WHERE id = ANY($1) AND org = $2 \
                 AND ($3::text IS NULL OR client = $3) AND ($4::text IS NULL OR project = $4) \
                 RETURNING model",
            )
            .bind(raw)
            .bind(&scope.org)
            .bind(&scope.client)
            .bind(&scope.project)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("delete vectors", e))?;
            let removed = models.len() as u64;
            let mut emptied: Vec<String> = models;
            emptied.sort_unstable();
            emptied.dedup();
            // A model with no vector left forgets what made its vectors: there is nothing left
            // that another model could be mixed with (its next upsert may change the dimension).
            sqlx::query(
                "UPDATE search.vector_indexes i SET fingerprint = NULL \
                 WHERE i.model = ANY($1) AND i.fingerprint IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM search.embeddings e WHERE e.model = i.model)",
            )
            .bind(&emptied)
            .execute(&mut *tx)
            .await
            .map_err(|e| map("forget an emptied model's fingerprint", e))?;
            tx.commit().await.map_err(|e| map("commit delete", e))?;
            Ok(removed)
        })
        .await
    }

    async fn drop_model(&self, model: &str) -> Result<u64> {
        check_model_name(model)?;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            let done = sqlx::query("DELETE FROM search.embeddings WHERE model = $1")
                .bind(model)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("drop a model's vectors", e))?;
            sqlx::query("UPDATE search.vector_indexes SET fingerprint = NULL WHERE model = $1")
                .bind(model)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("forget a model's fingerprint", e))?;
            tx.commit().await.map_err(|e| map("commit drop", e))?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn knn(
        &self,
        model: &str,
        query: &[f32],
        k: usize,
        filter: &VectorFilter,
    ) -> Result<Vec<VectorHit>> {
        check_query(model, query, k, filter)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let query = HalfVector::from_f32_slice(query);
        let query = &query;
        let values = filter_values(filter);
        let (org, client, project, entities, source_kinds) = &values;
        let dims = query.as_slice().len();
        let mut hits = with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            // Iterative scans go on walking the graph until `k` rows pass the filter (up to
            // hnsw.max_scan_tuples); relaxed order lets them, and the hits are re-sorted below.
            let dim: Option<i32> = sqlx::query_scalar(
                "SELECT dim, set_config('hnsw.iterative_scan', 'relaxed_order', true), \
                 set_config('hnsw.ef_search', $2, true) FROM search.vector_indexes i \
                 WHERE model = $1 \
                 AND EXISTS (SELECT 1 FROM search.embeddings e WHERE e.model = i.model)",
            )
            .bind(model)
            .bind(ef_search(k).to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("read vector model", e))?;
            let Some(dim) = dim else {
                return Ok(Vec::new());
            };
            if dims != dim as usize {
                return Err(Error::invalid(format!(
                    "the query vector has {dims} dimensions; model `{model}` has {dim}"
                ))
                .on_field("vector"));
            }
            let knn = format!(
                "SELECT id, (embedding::halfvec({dim}) <=> $1::halfvec({dim}))::real AS distance \
                 FROM search.embeddings WHERE model = {} AND vector_dims(embedding) = {dim} \
                 AND {} ORDER BY embedding::halfvec({dim}) <=> $1::halfvec({dim}) LIMIT $7",
                model_literal(model),
                filter_sql(2)
            );
            let rows: Vec<(i64, f32)> = sqlx::query_as(&knn)
                .bind(query)
                .bind(org)
                .bind(client)
                .bind(project)
                .bind(entities)
                .bind(source_kinds)
                .bind(k as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| map("k-NN", e))?;
            if rows.len() < k {
                // The graph walk stopped early (max_scan_tuples, a sparse filter): if more rows
                // match, compare them all instead.
                let matching: i64 = sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM (SELECT 1 FROM search.embeddings \
                     WHERE model = {} AND vector_dims(embedding) = {dim} AND {} LIMIT $6) AS m",
                    model_literal(model),
                    filter_sql(1)
                ))
                .bind(org)
                .bind(client)
                .bind(project)
                .bind(entities)
                .bind(source_kinds)
                .bind(k as i64)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| map("count matching vectors", e))?;
                if matching as usize > rows.len() {
                    sqlx::query("SELECT set_config('enable_indexscan', 'off', true)")
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map("exact k-NN", e))?;
                    let rows: Vec<(i64, f32)> = sqlx::query_as(&knn)
                        .bind(query)
                        .bind(org)
                        .bind(client)
                        .bind(project)
                        .bind(entities)
                        .bind(source_kinds)
                        .bind(k as i64)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(|e| map("exact k-NN", e))?;
                    tx.commit().await.map_err(|e| map("commit", e))?;
                    return Ok(rows);
                }
            }
            tx.commit().await.map_err(|e| map("commit", e))?;
            Ok(rows)
        })
        .await?
        .into_iter()
        .map(|(id, distance)| VectorHit {
            id: RecordId::from_raw(id),
            similarity: 1.0 - distance,
        })
        .collect::<Vec<_>>();
        hits.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.id.raw().cmp(&b.id.raw()))
        });
        Ok(hits)
    }

    async fn stale_among(
        &self,
        model: &str,
        scope: &Scope,
        ids: &[RecordId],
    ) -> Result<Vec<RecordId>> {
        check_model_name(model)?;
        scope.validate()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw: Vec<i64> = ids.iter().map(|id| id.raw()).collect();
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT r.id FROM core.records r \
             LEFT JOIN search.embeddings e ON e.model = $1 AND e.id = r.id \
             WHERE r.id = ANY($2) AND r.org = $3 AND ($4::text IS NULL OR r.client = $4) \
             AND ($5::text IS NULL OR r.project = $5) \
             AND (e.id IS NULL OR e.content_hash <> r.content_hash) ORDER BY r.id",
        )
        .bind(model)
        .bind(&raw)
        .bind(&scope.org)
        .bind(&scope.client)
        .bind(&scope.project)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map("stale vectors", e))?;
        Ok(rows.into_iter().map(RecordId::from_raw).collect())
    }

    async fn stale(
        &self,
        model: &str,
        scope: &Scope,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<StaleVector>> {
        check_model_name(model)?;
        scope.validate()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT r.id, r.content_hash, r.org, r.client, r.project FROM core.records r \
             LEFT JOIN search.embeddings e ON e.model = $1 AND e.id = r.id \
             WHERE r.org = $2 AND ($3::text IS NULL OR r.client = $3) \
             AND ($4::text IS NULL OR r.project = $4) AND r.id > $5 \
             AND (e.id IS NULL OR e.content_hash <> r.content_hash) \
             ORDER BY r.id LIMIT $6",
        )
        .bind(model)
        .bind(&scope.org)
        .bind(&scope.client)
        .bind(&scope.project)
        .bind(after.map_or(-1, RecordId::raw))
        .bind(limit.min(MAX_K) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map("stale vectors", e))?;
        Ok(rows
            .into_iter()
            .map(|(id, hash, org, client, project)| StaleVector {
                id: RecordId::from_raw(id),
                content_hash: hash as u64,
                scope: Scope {
                    org,
                    client,
                    project,
                },
            })
            .collect())
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
    use super::{index_name, model_literal};

    #[test]
    fn model_literals_escape_quotes_and_backslashes() {
        assert_eq!(model_literal("bge-m3"), "E'bge-m3'");
        assert_eq!(model_literal(r"it's\x"), r"E'it''s\\x'");
    }

    #[test]
    fn index_names_are_stable_and_short() {
        assert_eq!(index_name("bge-m3"), index_name("bge-m3"));
        assert_ne!(index_name("bge-m3"), index_name("bge-m4"));
        assert!(index_name(&"x".repeat(200)).len() <= 63);
    }
}
