//! `VectorIndex` on SQLite: the `vectors` table is the store of record; each model's HNSW graph
//! (see [`crate::hnsw`]) lives in memory, is saved beside the database (`<db>.vectors/`) and is
//! rebuilt from the rows when its file is missing, stale or corrupt.

use crate::error::map;
use crate::hnsw::{Graph, GraphEntry, GroupKey, VectorOptions, VectorPlan, VectorStorage};
use crate::rows::{bind_scope, get, scope_filter};
use crate::SqliteStore;
use async_trait::async_trait;
use opsweave_core::vector::{
    check_half_precision, check_model_name, check_query, check_stored_model, check_upsert,
    StoredModel, MAX_K,
};
use opsweave_core::{
    Error, ModelInfo, RecordId, Result, Scope, StaleVector, VectorFilter, VectorHit, VectorIndex,
    VectorItem,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedRwLockReadGuard, RwLock, Semaphore};

/// Ids per `IN (...)` list, well under SQLite's 32,766 parameters.
const IDS_PER_STATEMENT: usize = 500;

/// Rows per multi-row INSERT: 10 columns × 3,000 stays under SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 3_000;

/// A graph that has taken this many changes since it was saved is saved again ...
const AUTOSAVE_CHANGES: usize = 10_000;
/// ... when it was last saved at least this long ago.
const AUTOSAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Rows read per page while rebuilding a graph.
const REBUILD_PAGE: i64 = 16_384;

/// A model's graph slot: `None` until first used, and again whenever it cannot be trusted.
type Slot = Arc<RwLock<Option<Graph>>>;

/// A read lock on a model's graph slot.
type GraphGuard = OwnedRwLockReadGuard<Option<Graph>>;

/// The vector side of a store: where graphs are saved, their tuning and the graphs themselves.
pub(crate) struct Vectors {
    /// `<db>.vectors/`, or `None` for an in-memory database (graphs stay in memory).
    dir: Option<PathBuf>,
    options: VectorOptions,
    graphs: Mutex<HashMap<String, Slot>>,
    /// Writes of vectors, so graphs take changes in the order SQLite committed them.
    writes: tokio::sync::Mutex<()>,
    /// Graph searches in flight: each graph has working memory for this many at once.
    searches: Arc<Semaphore>,
}

impl std::fmt::Debug for Vectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vectors")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Vectors {
    /// The vector side of the database at `path` (as given to `open`, without the scheme).
    pub(crate) fn new(path: &str, options: VectorOptions) -> Self {
        let file = path.split('?').next().unwrap_or(path);
        let in_memory = file.is_empty() || file == ":memory:" || path.contains("mode=memory");
        Self {
            dir: (!in_memory).then(|| PathBuf::from(format!("{file}.vectors"))),
            options,
            graphs: Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
            searches: Arc::new(Semaphore::new(crate::hnsw::search_slots())),
        }
    }

    fn slot(&self, model: &str) -> Slot {
        let mut graphs = self
            .graphs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        graphs.entry(model.to_string()).or_default().clone()
    }

    fn slots(&self) -> Vec<(String, Slot)> {
        let graphs = self
            .graphs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        graphs.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A model's row in `vector_models`.
#[derive(Debug, Clone)]
struct ModelRow {
    dim: usize,
    storage: VectorStorage,
    generation: i64,
    count: i64,
    fingerprint: Option<String>,
}

/// The statement both readers (the pool and the point reader) fetch a `vector_models` row with.
const MODEL_ROW: &str =
    "SELECT dim, storage, generation, count, fingerprint FROM vector_models WHERE name = ?1";

/// A `vector_models` row's columns, in `MODEL_ROW`'s order.
type ModelColumns = (i64, String, i64, i64, Option<String>);

impl ModelRow {
    fn from_columns((dim, storage, generation, count, fingerprint): ModelColumns) -> Result<Self> {
        Ok(Self {
            dim: dim as usize,
            storage: VectorStorage::parse(&storage)?,
            generation,
            count,
            fingerprint,
        })
    }

    /// What `VectorIndex::stored_model` tells of it.
    fn stored(&self) -> StoredModel {
        StoredModel {
            dim: self.dim,
            fingerprint: self.fingerprint.clone(),
        }
    }
}

async fn model_row(conn: &mut SqliteConnection, model: &str) -> Result<Option<ModelRow>> {
    let row: Option<ModelColumns> = sqlx::query_as(MODEL_ROW)
        .bind(model)
        .fetch_optional(conn)
        .await
        .map_err(|e| map("read vector model", e))?;
    row.map(ModelRow::from_columns).transpose()
}

impl SqliteStore {
    /// `model`'s row read on this thread (see `point_reader`): a k-NN query's generation check,
    /// which through the pool cost more than a small graph walk. `None` when there is no such
    /// connection or SQLite refused (busy): the caller then asks the pool.
    fn model_row_here(&self, model: &str) -> Option<Result<Option<ModelRow>>> {
        use rusqlite::OptionalExtension;
        let guard = self.point_reader.lock().ok()?;
        let conn = guard.as_ref()?;
        let mut statement = conn.prepare_cached(MODEL_ROW).ok()?;
        let row = statement
            .query_row([model], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .optional()
            .ok()?;
        Some(row.map(ModelRow::from_columns).transpose())
    }

    /// `model`'s row, on this thread when the point reader can, else through the pool.
    async fn read_model_row(&self, model: &str) -> Result<Option<ModelRow>> {
        match self.model_row_here(model) {
            Some(row) => row,
            None => {
                let mut conn = self.pool.acquire().await.map_err(|e| map("acquire", e))?;
                model_row(&mut conn, model).await
            }
        }
    }

    /// Uses `options` for the vector index (before any vector is read or written).
    pub fn with_vector_options(mut self, options: VectorOptions) -> Self {
        self.vectors = Arc::new(Vectors::new(&self.path, options));
        self
    }

    /// How a k-NN query of `model` with `filter` would be answered (loading the model's graph).
    pub async fn plan_knn(&self, model: &str, filter: &VectorFilter) -> Result<VectorPlan> {
        let Some((guard, _)) = self.fresh_graph(model).await? else {
            return Ok(VectorPlan::Empty);
        };
        Ok(guard.as_ref().map_or(VectorPlan::Empty, |g| g.plan(filter)))
    }

    /// Saves every graph changed since it was last saved (the store also does so on `close`),
    /// so the next process loads it instead of rebuilding it.
    pub async fn save_vector_indexes(&self) -> Result<()> {
        let Some(dir) = self.vectors.dir.clone() else {
            return Ok(());
        };
        for (model, slot) in self.vectors.slots() {
            let mut guard = slot.write_owned().await;
            if !guard.as_ref().is_some_and(|g| g.dirty) {
                continue;
            }
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || match guard.as_mut() {
                Some(graph) => graph.save(&dir, &model),
                None => Ok(()),
            })
            .await
            .map_err(|e| Error::internal(format!("vector index: saving stopped: {e}")))??;
        }
        Ok(())
    }

    /// The graph of `model`, current with the database, read-locked; `None` when the model has
    /// no vectors yet.
    async fn fresh_graph(&self, model: &str) -> Result<Option<(GraphGuard, ModelRow)>> {
        let Some(row) = self.read_model_row(model).await? else {
            return Ok(None);
        };
        let slot = self.vectors.slot(model);
        let guard = slot.clone().read_owned().await;
        if guard
            .as_ref()
            .is_some_and(|g| g.generation >= row.generation)
        {
            return Ok(Some((guard, row)));
        }
        drop(guard);
        // Loading or rebuilding runs as a task of its own: a caller that gives up (an HTTP
        // request past its timeout) no longer throws the work away, so the next caller, waiting
        // on the slot, finds the graph done instead of starting over.
        let store = self.clone();
        let name = model.to_string();
        let generation = row.generation;
        let guard = tokio::spawn(async move {
            let mut guard = slot.write_owned().await;
            if guard.as_ref().is_none_or(|g| g.generation < generation) {
                *guard = None;
                *guard = Some(store.open_graph(&name).await?);
            }
            Ok::<_, Error>(guard)
        })
        .await
        .map_err(|e| Error::internal(format!("vector index: loading stopped: {e}")))??;
        Ok(Some((guard.downgrade(), row)))
    }

    /// Loads the saved graph of `model` when it is current and intact, else rebuilds it from the
    /// rows (and saves it). Reads one snapshot, so the graph matches one generation exactly.
    async fn open_graph(&self, model: &str) -> Result<Graph> {
        let options = self.vectors.options.clone();
        let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
        let row = model_row(&mut tx, model)
            .await?
            .ok_or_else(|| Error::not_found(format!("no vectors of model `{model}`")))?;
        if let Some(dir) = self.vectors.dir.clone() {
            if crate::hnsw::sidecar_matches(&dir, model, row.generation, row.count) {
                // A quantized graph's exact vectors come from the rows, read with the groups.
                let (groups, exact) = match options.quantize_graph {
                    true => {
                        let (groups, vectors) =
                            read_groups_and_vectors(&mut tx, model, &row).await?;
                        (groups, Some(vectors))
                    }
                    false => (read_groups(&mut tx, model).await?, None),
                };
                let model = model.to_string();
                let options = options.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    Graph::load(
                        &dir,
                        &model,
                        row.dim,
                        row.storage,
                        &options,
                        row.generation,
                        groups,
                        exact,
                    )
                })
                .await
                .map_err(|e| Error::internal(format!("vector index: loading stopped: {e}")))?;
                if let Some(graph) = loaded {
                    return Ok(graph);
                }
            }
        }
        let mut graph = Graph::new(row.dim, row.storage, &options, row.count as usize)?;
        graph.generation = row.generation;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut after = -1i64;
        loop {
            let rows: Vec<VectorRow> = sqlx::query_as(
                "SELECT id, org, client, project, entity, source_kind, vector FROM vectors \
                     WHERE model = ? AND id > ? ORDER BY id LIMIT ?",
            )
            .bind(model)
            .bind(after)
            .bind(REBUILD_PAGE)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("read vectors", e))?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let mut entries = Vec::with_capacity(rows.len());
            for (id, org, client, project, entity, source_kind, blob) in rows {
                let vector = row
                    .storage
                    .decode(&blob, row.dim)
                    .ok_or_else(|| bad_blob(id, model, &blob, &row))?;
                entries.push(GraphEntry {
                    key: id as u64,
                    group: GroupKey {
                        org,
                        client,
                        project,
                        entity,
                        source_kind,
                    },
                    vector,
                });
            }
            graph =
                tokio::task::spawn_blocking(move || graph.insert(entries, threads).map(|_| graph))
                    .await
                    .map_err(|e| {
                        Error::internal(format!("vector index: rebuild stopped: {e}"))
                    })??;
        }
        drop(tx);
        if let Some(dir) = self.vectors.dir.clone() {
            let model = model.to_string();
            // A graph that cannot be saved still answers; `save_vector_indexes` reports why.
            graph = tokio::task::spawn_blocking(move || {
                let _ = graph.save(&dir, &model);
                graph
            })
            .await
            .map_err(|e| Error::internal(format!("vector index: saving stopped: {e}")))?;
        }
        Ok(graph)
    }

    /// Makes sure `model`'s graph is loaded and current before a write changes it, so the write
    /// can be applied to it instead of making it stale.
    async fn graph_before_write(&self, model: &str) -> Result<()> {
        self.fresh_graph(model).await.map(|_| ())
    }

    /// Applies a committed write to `model`'s graph when the graph is at the generation the
    /// write started from; otherwise (another process wrote too) drops it to be rebuilt.
    async fn apply_to_graph(
        &self,
        model: &str,
        from_generation: i64,
        change: GraphChange,
    ) -> Result<()> {
        let slot = self.vectors.slot(model);
        let mut guard = slot.write_owned().await;
        if guard
            .as_ref()
            .is_none_or(|g| g.generation != from_generation)
        {
            *guard = None;
            return Ok(());
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let dir = self.vectors.dir.clone();
        let model = model.to_string();
        tokio::task::spawn_blocking(move || {
            let Some(graph) = guard.as_mut() else {
                return;
            };
            let done = match change {
                GraphChange::Insert(entries) => graph.insert(entries, threads),
                GraphChange::Remove(keys) => graph.remove(&keys),
            };
            match done {
                Ok(()) => graph.generation = from_generation + 1,
                // The rows are committed; a graph that missed them is rebuilt from them.
                Err(_) => *guard = None,
            }
            // A process that ends without `close` leaves a file at most a minute behind, so the
            // next one rebuilds a big graph only when it really changed since; a graph walking
            // without its flat copy is saved (and laid out again) a minute after its last save.
            if let (Some(graph), Some(dir)) = (guard.as_mut(), dir) {
                let due = graph.unsaved >= AUTOSAVE_CHANGES || graph.wants_a_flat_copy();
                if due && graph.saved_at.elapsed() >= AUTOSAVE_EVERY {
                    // Not saved: the next save (or `close`) tries again.
                    let _ = graph.save(&dir, &model);
                }
            }
        })
        .await
        .map_err(|e| Error::internal(format!("vector index: update stopped: {e}")))
    }
}

/// id, org, client, project, entity, source kind: a vector's filter columns as read.
type GroupRow = (i64, String, Option<String>, Option<String>, String, String);

/// A [`GroupRow`] followed by the vector's BLOB.
type VectorRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Vec<u8>,
);

/// A committed change to apply to a graph.
enum GraphChange {
    Insert(Vec<GraphEntry>),
    Remove(Vec<u64>),
}

/// The groups of `model`'s vectors and the vectors themselves, decoded, in one pass read a page
/// at a time (the exact copies a quantized graph keeps beside its integers): the rows hold their
/// BLOBs inline, so reading the groups alone costs as much.
async fn read_groups_and_vectors(
    conn: &mut SqliteConnection,
    model: &str,
    row: &ModelRow,
) -> Result<(HashMap<u64, GroupKey>, Vec<(u64, Vec<f32>)>)> {
    let count = row.count.max(0) as usize;
    let (mut groups, mut vectors) = (HashMap::with_capacity(count), Vec::with_capacity(count));
    let mut after = -1i64;
    loop {
        let page: Vec<VectorRow> = sqlx::query_as(
            "SELECT id, org, client, project, entity, source_kind, vector FROM vectors \
             WHERE model = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(model)
        .bind(after)
        .bind(REBUILD_PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| map("read vectors", e))?;
        let Some(last) = page.last() else { break };
        after = last.0;
        for (id, org, client, project, entity, source_kind, blob) in page {
            let vector = row
                .storage
                .decode(&blob, row.dim)
                .ok_or_else(|| bad_blob(id, model, &blob, row))?;
            let group = GroupKey {
                org,
                client,
                project,
                entity,
                source_kind,
            };
            groups.insert(id as u64, group);
            vectors.push((id as u64, vector));
        }
    }
    Ok((groups, vectors))
}

/// A stored vector whose BLOB is not `row.dim` values of the model's storage.
fn bad_blob(id: i64, model: &str, blob: &[u8], row: &ModelRow) -> Error {
    Error::internal(format!(
        "sqlite: vector of record {id} (model `{model}`) has {} bytes, not {} {} values",
        blob.len(),
        row.dim,
        row.storage.as_str()
    ))
}

async fn read_groups(conn: &mut SqliteConnection, model: &str) -> Result<HashMap<u64, GroupKey>> {
    let rows: Vec<GroupRow> = sqlx::query_as(
        "SELECT id, org, client, project, entity, source_kind FROM vectors WHERE model = ?",
    )
    .bind(model)
    .fetch_all(conn)
    .await
    .map_err(|e| map("read vector groups", e))?;
    Ok(rows
        .into_iter()
        .map(|(id, org, client, project, entity, source_kind)| {
            (
                id as u64,
                GroupKey {
                    org,
                    client,
                    project,
                    entity,
                    source_kind,
                },
            )
        })
        .collect())
}

#[async_trait]
impl VectorIndex for SqliteStore {
    async fn upsert(&self, model: &ModelInfo, items: Vec<VectorItem>) -> Result<()> {
        check_upsert(model, &items)?;
        if model.dim > 65_536 {
            return Err(Error::invalid(format!(
                "model `{}` has dimension {}; at most 65536",
                model.name, model.dim
            ))
            .on_field("dim"));
        }
        if items.is_empty() {
            return Ok(());
        }
        // The same record twice in one batch: the later vector wins.
        let mut latest: HashMap<i64, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            latest.insert(item.id.raw(), i);
        }
        let items: Vec<VectorItem> = items
            .into_iter()
            .enumerate()
            .filter(|(i, item)| latest.get(&item.id.raw()) == Some(i))
            .map(|(_, item)| item)
            .collect();

        let _writing = self.vectors.writes.lock().await;
        self.graph_before_write(&model.name).await?;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let storage_for = |dim: usize| {
            if dim >= self.vectors.options.half_precision_from {
                VectorStorage::F16
            } else {
                VectorStorage::F32
            }
        };
        // A name whose vectors are all gone takes the next model's dimension (the row stays:
        // its generation only grows, so no process mistakes an old graph for a current one).
        let mut resized = false;
        let row = match model_row(&mut tx, &model.name).await? {
            Some(row) if row.count == 0 && row.dim != model.dim => {
                let storage = storage_for(model.dim);
                sqlx::query(
                    "UPDATE vector_models SET dim = ?, storage = ?, fingerprint = ? WHERE name = ?",
                )
                .bind(model.dim as i64)
                .bind(storage.as_str())
                .bind(&model.fingerprint)
                .bind(&model.name)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("resize vector model", e))?;
                resized = true;
                ModelRow {
                    dim: model.dim,
                    storage,
                    fingerprint: model.fingerprint.clone(),
                    ..row
                }
            }
            Some(row) => {
                check_stored_model(model, Some(&row.stored()).filter(|_| row.count > 0))?;
                if row.fingerprint.is_none() && model.fingerprint.is_some() {
                    sqlx::query("UPDATE vector_models SET fingerprint = ? WHERE name = ?")
                        .bind(&model.fingerprint)
                        .bind(&model.name)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map("record model fingerprint", e))?;
                }
                row
            }
            None => {
                let storage = storage_for(model.dim);
                sqlx::query(
                    "INSERT INTO vector_models (name, dim, storage, generation, count, \
                     fingerprint) VALUES (?, ?, ?, 0, 0, ?)",
                )
                .bind(&model.name)
                .bind(model.dim as i64)
                .bind(storage.as_str())
                .bind(&model.fingerprint)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("register vector model", e))?;
                ModelRow {
                    dim: model.dim,
                    storage,
                    generation: 0,
                    count: 0,
                    fingerprint: model.fingerprint.clone(),
                }
            }
        };
        if row.storage == VectorStorage::F16 {
            check_half_precision(&items)?;
        }
        let mut existing = 0i64;
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT count(*) FROM vectors WHERE model = ");
            q.push_bind(&model.name).push(" AND id IN (");
            let mut ids = q.separated(", ");
            for item in chunk {
                ids.push_bind(item.id.raw());
            }
            q.push(")");
            let n: i64 = q
                .build_query_scalar()
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| map("count existing vectors", e))?;
            existing += n;
        }
        let now = chrono::Utc::now().timestamp_millis();
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO vectors (model, id, org, client, project, entity, source_kind, \
                 content_hash, vector, embedded_at) ",
            );
            q.push_values(chunk, |mut b, item| {
                b.push_bind(&model.name)
                    .push_bind(item.id.raw())
                    .push_bind(&item.scope.org)
                    .push_bind(&item.scope.client)
                    .push_bind(&item.scope.project)
                    .push_bind(item.entity.as_str())
                    .push_bind(&item.source_kind)
                    .push_bind(item.content_hash as i64)
                    .push_bind(row.storage.encode(&item.vector))
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (model, id) DO UPDATE SET org = excluded.org, \
                 client = excluded.client, project = excluded.project, entity = excluded.entity, \
                 source_kind = excluded.source_kind, content_hash = excluded.content_hash, \
                 vector = excluded.vector, embedded_at = excluded.embedded_at",
            );
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| map("write vectors", e))?;
        }
        let added = items.len() as i64 - existing;
        sqlx::query(
            "UPDATE vector_models SET generation = generation + 1, count = count + ? \
             WHERE name = ?",
        )
        .bind(added)
        .bind(&model.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("bump vector generation", e))?;
        tx.commit().await.map_err(|e| map("commit vectors", e))?;
        if resized {
            // The graph in memory has the old dimension: the next search builds it from the rows
            // (unless one already did, at this write's generation or later).
            let mut graph = self.vectors.slot(&model.name).write_owned().await;
            if graph
                .as_ref()
                .is_some_and(|g| g.generation <= row.generation)
            {
                *graph = None;
            }
            return Ok(());
        }

        let entries = items
            .into_iter()
            .map(|item| GraphEntry {
                key: item.id.raw() as u64,
                group: GroupKey {
                    org: item.scope.org,
                    client: item.scope.client,
                    project: item.scope.project,
                    entity: item.entity.as_str().to_string(),
                    source_kind: item.source_kind,
                },
                vector: item.vector,
            })
            .collect();
        self.apply_to_graph(&model.name, row.generation, GraphChange::Insert(entries))
            .await
    }

    async fn stored_model(&self, model: &str) -> Result<Option<StoredModel>> {
        check_model_name(model)?;
        Ok(self
            .read_model_row(model)
            .await?
            .filter(|row| row.count > 0)
            .map(|row| row.stored()))
    }

    async fn delete(&self, scope: &Scope, ids: &[RecordId]) -> Result<u64> {
        scope.validate()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let _writing = self.vectors.writes.lock().await;
        let models: Vec<String> = sqlx::query_scalar("SELECT name FROM vector_models")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("list vector models", e))?;
        for model in &models {
            self.graph_before_write(model).await?;
        }
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let mut removed: HashMap<String, Vec<u64>> = HashMap::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from("DELETE FROM vectors WHERE ");
            scope_filter(&mut sql, scope, "");
            sql.push_str(" AND id IN (");
            sql.push_str(&vec!["?"; chunk.len()].join(", "));
            sql.push_str(") RETURNING model, id");
            let mut query = bind_scope(sqlx::query(&sql), scope);
            for id in chunk {
                query = query.bind(id.raw());
            }
            let rows = query
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| map("delete vectors", e))?;
            for row in rows {
                let model: String = get(&row, "model")?;
                let id: i64 = get(&row, "id")?;
                removed.entry(model).or_default().push(id as u64);
            }
        }
        let mut generations = Vec::with_capacity(removed.len());
        for (model, keys) in &removed {
            let generation: i64 = sqlx::query_scalar(
                // A model with no vector left forgets what made its vectors: there is nothing
                // left that another model could be mixed with (its next upsert may resize it).
                "UPDATE vector_models SET generation = generation + 1, count = count - ?1, \
                 fingerprint = CASE WHEN count - ?1 <= 0 THEN NULL ELSE fingerprint END \
                 WHERE name = ?2 RETURNING generation",
            )
            .bind(keys.len() as i64)
            .bind(model)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map("bump vector generation", e))?;
            generations.push((model.clone(), generation - 1));
        }
        tx.commit().await.map_err(|e| map("commit delete", e))?;
        let mut total = 0u64;
        for (model, from) in generations {
            let keys = removed.remove(&model).unwrap_or_default();
            total += keys.len() as u64;
            self.apply_to_graph(&model, from, GraphChange::Remove(keys))
                .await?;
        }
        Ok(total)
    }

    async fn drop_model(&self, model: &str) -> Result<u64> {
        check_model_name(model)?;
        let _writing = self.vectors.writes.lock().await;
        self.graph_before_write(model).await?;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let keys: Vec<i64> = sqlx::query_scalar("DELETE FROM vectors WHERE model = ? RETURNING id")
            .bind(model)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("drop a model's vectors", e))?;
        let generation: Option<i64> = sqlx::query_scalar(
            "UPDATE vector_models SET generation = generation + 1, count = 0, \
             fingerprint = NULL WHERE name = ? RETURNING generation",
        )
        .bind(model)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| map("bump vector generation", e))?;
        tx.commit().await.map_err(|e| map("commit drop", e))?;
        let removed = keys.len() as u64;
        if let Some(generation) = generation {
            let keys = keys.into_iter().map(|k| k as u64).collect();
            self.apply_to_graph(model, generation - 1, GraphChange::Remove(keys))
                .await?;
        }
        Ok(removed)
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
        let Some((guard, ModelRow { dim, count, .. })) = self.fresh_graph(model).await? else {
            return Ok(Vec::new());
        };
        if count == 0 {
            // An emptied name: no vectors, whatever dimension it had.
            return Ok(Vec::new());
        }
        if query.len() != dim {
            return Err(Error::invalid(format!(
                "the query vector has {} dimensions; model `{model}` has {dim}",
                query.len()
            ))
            .on_field("vector"));
        }
        let permit = self
            .vectors
            .searches
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal(format!("vector index: search slots closed: {e}")))?;
        let query = query.to_vec();
        let filter = filter.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match guard.as_ref() {
                Some(graph) => graph.knn(&query, k, &filter),
                None => Ok(Vec::new()),
            }
        })
        .await
        .map_err(|e| Error::internal(format!("vector index: search stopped: {e}")))?
    }

    async fn stale_among(
        &self,
        model: &str,
        scope: &Scope,
        ids: &[RecordId],
    ) -> Result<Vec<RecordId>> {
        check_model_name(model)?;
        scope.validate()?;
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut sql = format!(
                "SELECT r.id FROM records r LEFT JOIN vectors v ON v.model = ? AND v.id = r.id \
                 WHERE r.id IN ({}) AND (v.id IS NULL OR v.content_hash <> r.content_hash) AND ",
                vec!["?"; chunk.len()].join(", ")
            );
            scope_filter(&mut sql, scope, "r");
            let mut q = sqlx::query(&sql).bind(model);
            for id in chunk {
                q = q.bind(id.raw());
            }
            let rows = bind_scope(q, scope)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("stale vectors", e))?;
            for row in &rows {
                found.push(RecordId::from_raw(get(row, "id")?));
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
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
        let mut sql = String::from(
            "SELECT r.id, r.content_hash, r.org, r.client, r.project FROM records r \
             LEFT JOIN vectors v ON v.model = ? AND v.id = r.id WHERE ",
        );
        scope_filter(&mut sql, scope, "r");
        sql.push_str(
            " AND r.id > ? AND (v.id IS NULL OR v.content_hash <> r.content_hash) \
             ORDER BY r.id LIMIT ?",
        );
        let rows = bind_scope(sqlx::query(&sql).bind(model), scope)
            .bind(after.map_or(-1, RecordId::raw))
            .bind(limit.min(MAX_K) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("stale vectors", e))?;
        rows.iter()
            .map(|row| {
                Ok(StaleVector {
                    id: RecordId::from_raw(get(row, "id")?),
                    content_hash: get::<i64>(row, "content_hash")? as u64,
                    scope: Scope {
                        org: get(row, "org")?,
                        client: get(row, "client")?,
                        project: get(row, "project")?,
                    },
                })
            })
            .collect()
    }
}
