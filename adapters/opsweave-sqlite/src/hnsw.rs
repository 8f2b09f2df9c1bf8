//! The in-memory HNSW graph of one embedding model (usearch), the scope groups its filters read,
//! the planner that picks exact scan or graph walk, and the file the graph is saved to.
//!
//! The graph is a cache of the `vectors` rows: it carries the generation of the rows it was built
//! from, and a saved file is only loaded when its generation, size and checksum all agree with the
//! database; anything else means a rebuild from the rows.

use crate::distance::{
    dot, normalise, quantize, use_quantized_dot, use_unit_dot, use_unit_dot_f16, SCALE_BYTES,
};
use crate::flat::{FlatGraph, SavedScalars};
use opsweave_core::{Error, Result, VectorFilter, VectorHit};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// How a model's vectors are stored, in SQLite and in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorStorage {
    /// 4 bytes a dimension.
    F32,
    /// 2 bytes a dimension (IEEE half precision): for big models such as BGE-M3's 1,024 dims.
    F16,
}

impl VectorStorage {
    /// The name stored in `vector_models.storage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }

    /// Reads a stored name.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        match text {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            other => Err(Error::internal(format!(
                "sqlite: unknown vector storage `{other}` in vector_models"
            ))),
        }
    }

    /// Encodes a vector as a BLOB (little-endian).
    pub(crate) fn encode(self, vector: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => vector.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::F16 => vector
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
        }
    }

    /// Decodes a BLOB of `dim` values; `None` when its length is wrong.
    pub(crate) fn decode(self, blob: &[u8], dim: usize) -> Option<Vec<f32>> {
        match self {
            Self::F32 if blob.len() == dim * 4 => Some(
                blob.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            Self::F16 if blob.len() == dim * 2 => Some(
                blob.chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            ),
            _ => None,
        }
    }

    fn scalar(self) -> ScalarKind {
        match self {
            Self::F32 => ScalarKind::F32,
            Self::F16 => ScalarKind::F16,
        }
    }

    /// Installs the graph's distance ([`GRAPH_DISTANCE`]) on a new or loaded index.
    fn measure(self, index: &mut Index, dim: usize) {
        match self {
            Self::F32 => use_unit_dot(index, dim),
            Self::F16 => use_unit_dot_f16(index, dim),
        }
    }
}

/// How the graphs measure distance, written in the sidecar so that a file made another way
/// (before, graphs held the vectors as given under usearch's cosine) is rebuilt: unit vectors
/// compared by dot product ([`crate::distance`]).
const GRAPH_DISTANCE: &str = "unit-dot";

/// The same for a quantized graph ([`VectorOptions::quantize_graph`]): unit vectors as 8-bit
/// integers with a scale each, compared by their dot product.
const QUANTIZED_DISTANCE: &str = "unit-dot-i8";

/// The exact vectors of a quantized graph, which ranks its candidates again by them: in the
/// store's own precision, the graph's integers being a coarser copy.
enum ExactVectors {
    /// For models stored as f32.
    F32(HashMap<u64, Box<[f32]>>),
    /// For models stored as f16.
    F16(HashMap<u64, Box<[half::f16]>>),
}

impl ExactVectors {
    fn new(storage: VectorStorage) -> Self {
        match storage {
            VectorStorage::F32 => Self::F32(HashMap::new()),
            VectorStorage::F16 => Self::F16(HashMap::new()),
        }
    }

    fn insert(&mut self, key: u64, unit: Vec<f32>) {
        match self {
            Self::F32(map) => {
                map.insert(key, unit.into_boxed_slice());
            }
            Self::F16(map) => {
                map.insert(key, unit.iter().map(|x| half::f16::from_f32(*x)).collect());
            }
        }
    }

    fn remove(&mut self, key: u64) {
        match self {
            Self::F32(map) => {
                map.remove(&key);
            }
            Self::F16(map) => {
                map.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::F32(map) => map.len(),
            Self::F16(map) => map.len(),
        }
    }

    fn contains(&self, key: u64) -> bool {
        match self {
            Self::F32(map) => map.contains_key(&key),
            Self::F16(map) => map.contains_key(&key),
        }
    }

    /// The dot product of the unit `query` with `key`'s vector (`buffer`: room to widen an f16
    /// one); `None` when the key has none.
    fn similarity(&self, key: u64, query: &[f32], buffer: &mut [f32]) -> Option<f32> {
        match self {
            Self::F32(map) => map.get(&key).map(|v| dot(query, v)),
            Self::F16(map) => map.get(&key).map(|v| {
                use half::slice::HalfFloatSliceExt;
                v.convert_to_f32_slice(buffer);
                dot(query, buffer)
            }),
        }
    }
}

/// Tuning of the embedded vector index; the defaults suit 384- to 1,024-dimension text embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorOptions {
    /// Models with at least this many dimensions store their vectors as f16.
    pub half_precision_from: usize,
    /// A query with at most this many candidates (every vector, when it has no filter) compares
    /// them all exactly. Data with thousands of near-identical texts (build notifications, a
    /// bulk import) links an HNSW graph so poorly that the one distinct record a query names can
    /// be unreachable: 4,000 such issues beside 38 others hid the exact title match from the top
    /// 200. The certainty costs time: at 10,000 × 384 a scan took p50 2.1–3.3 ms against 0.3 ms
    /// for the walk at ef 128 (recall 0.995 on well-spread data; docs/benchmarks.md).
    pub exact_scan_limit: usize,
    /// Also scan exactly when that costs less than the filtered walk is estimated to: the walk
    /// keeps expanding nodes until `ef` allowed ones are found, about `ef / selectivity`
    /// expansions of up to `2 M` distances each, so a 1 % filter costs a scan of most of the
    /// graph. `false` leaves only `exact_scan_limit` (tests use it to force the walk).
    pub plan_by_cost: bool,
    /// Links per graph node (HNSW `M`).
    pub connectivity: usize,
    /// Candidates kept while inserting (HNSW `ef_construction`).
    pub expansion_add: usize,
    /// Candidates kept while searching (HNSW `ef`); a query for more than this many hits keeps `k`.
    pub expansion_search: usize,
    /// Keep the graph's copy of each vector as 8-bit integers with a scale each (a quarter of
    /// f32's bytes) and rank the walk's `ef` candidates again by the exact vectors, kept in
    /// memory beside the graph (read from the rows when a saved graph loads); similarities and
    /// exact scans use the exact vectors. On 1M × 384 it built the graph with 40 % less CPU into
    /// a file a third the size, at the same recall, with queries about as fast and ~13 % more
    /// memory (docs/benchmarks.md, "Quantized graph"). Off by default.
    pub quantize_graph: bool,
    /// Walk a copy of the saved graph laid out for searching ([`crate::flat`]): each node's
    /// base-level links beside an 8-bit copy of its vector, the next nodes prefetched, the
    /// candidates ranked again by the exact vectors. The copy is made when the graph is saved
    /// or loaded, for graphs over `exact_scan_limit` vectors; vectors inserted since are
    /// compared exactly beside its walk, up to `FRESH_SCANNED_AT_MOST` (then the graph's own
    /// walk answers until the next save). It costs `4 · (2 M + 1) + dim + 4` bytes per
    /// vector, rounded up to 64 (576 at 384 dims and M 16), and answered queries on 1M × 384
    /// (M 32) at p50 0.85–0.93 / p99 0.97–1.21 ms against 2.07–2.22 / 2.64–4.79 ms for the
    /// graph's own walk, at the same recall (docs/benchmarks.md, "Flat walk"). On by default.
    pub flat_walk: bool,
}

impl Default for VectorOptions {
    fn default() -> Self {
        Self {
            half_precision_from: 1_024,
            exact_scan_limit: 10_000,
            plan_by_cost: true,
            connectivity: 16,
            expansion_add: 128,
            // 64 found 87 % of the true top 10 on the 384-dimension benchmark, 128 found 96 %
            // (docs/benchmarks.md, "Vector search").
            expansion_search: 128,
            quantize_graph: false,
            flat_walk: true,
        }
    }
}

/// How a k-NN query is answered (see [`crate::SqliteStore::plan_knn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorPlan {
    /// No vector matches the filter.
    Empty,
    /// Every vector of the model matches: a plain graph search.
    Graph {
        /// Vectors the filter allows.
        matching: usize,
    },
    /// Few vectors match (or the model has few): each is compared with the query.
    Exact {
        /// Vectors the filter allows.
        matching: usize,
    },
    /// Many but not all match: a graph walk that only returns allowed nodes, widened (and in the
    /// end replaced by an exact scan) until it has `min(k, matching)` hits.
    FilteredGraph {
        /// Vectors the filter allows.
        matching: usize,
    },
}

/// The filter columns of a vector; vectors sharing them form one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub org: String,
    pub client: Option<String>,
    pub project: Option<String>,
    pub entity: String,
    pub source_kind: String,
}

impl GroupKey {
    fn allowed_by(&self, filter: &VectorFilter) -> bool {
        let scope = &filter.scope;
        self.org == scope.org
            && scope
                .client
                .as_ref()
                .is_none_or(|c| self.client.as_ref() == Some(c))
            && scope
                .project
                .as_ref()
                .is_none_or(|p| self.project.as_ref() == Some(p))
            && (filter.entities.is_empty()
                || filter.entities.iter().any(|e| e.as_str() == self.entity))
            && (filter.source_kinds.is_empty() || filter.source_kinds.contains(&self.source_kind))
    }
}

/// One vector to put in a graph.
pub(crate) struct GraphEntry {
    pub key: u64,
    pub group: GroupKey,
    pub vector: Vec<f32>,
}

/// Concurrent searches (and inserts) a graph has working memory for; callers hold a permit.
pub(crate) fn search_slots() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .clamp(4, 32)
}

/// A model's HNSW graph and the groups its filters read.
pub(crate) struct Graph {
    index: Index,
    /// The `vector_models.generation` the graph reflects.
    pub generation: i64,
    dim: usize,
    storage: VectorStorage,
    /// The exact vectors when the graph holds quantized ones.
    exact: Option<ExactVectors>,
    exact_scan_limit: usize,
    plan_by_cost: bool,
    connectivity: usize,
    expansion_search: usize,
    group_of: HashMap<u64, u32>,
    groups: Vec<(GroupKey, HashSet<u64>)>,
    group_ids: HashMap<GroupKey, u32>,
    flat_walk: bool,
    /// The graph laid out for walking, as of its last save or load (dropped after more than
    /// `FRESH_SCANNED_AT_MOST` inserts since).
    flat: Option<FlatGraph>,
    /// Keys removed or replaced since `flat` was laid out (it still holds them).
    removed_since_flat: HashSet<u64>,
    /// Keys inserted since `flat` was laid out: compared exactly beside its walk.
    inserted_since_flat: HashSet<u64>,
    /// Changed since it was last saved.
    pub dirty: bool,
    /// Vectors added or removed since it was last saved.
    pub unsaved: usize,
    /// When it was last saved (or made).
    pub saved_at: std::time::Instant,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("dim", &self.dim)
            .field("size", &self.index.size())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

fn usearch_error(context: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("vector index: {context}: {e}"))
}

/// The flat walk's nearest candidates (at least; four times `k` when more) ranked again by the
/// exact vectors. Its 8-bit distances are close to exact, so the true top 10 are among its first
/// 20 (on 1M × 384 the same recall at 20, 40 and all 128); each exact vector is a lookup and a
/// copy out of the graph, and ranking all 128 took ~0.25 ms of a 1.2 ms query.
const RANKED_AGAIN: usize = 40;

/// Vectors inserted since the flat copy was laid out that queries compare exactly beside its
/// walk (each an exact vector read and a dot product: ~0.5 ms at most for all of them); past this
/// many the copy is retired and the graph's own walk answers until the next save lays it out.
const FRESH_SCANNED_AT_MOST: usize = 1_024;

/// Graphs smaller than this take new vectors one at a time (see [`Graph::insert`]).
const SEQUENTIAL_BELOW: usize = 1_024;

impl Graph {
    /// An empty graph with room for `capacity` vectors.
    pub fn new(
        dim: usize,
        storage: VectorStorage,
        options: &VectorOptions,
        capacity: usize,
    ) -> Result<Self> {
        let mut index = Index::new(&Self::index_options(dim, storage, options))
            .map_err(|e| usearch_error("create", e))?;
        Self::measure(&mut index, dim, storage, options.quantize_graph);
        index
            .reserve_capacity_and_threads(capacity.max(64), search_slots())
            .map_err(|e| usearch_error("reserve", e))?;
        Ok(Self::around(index, dim, storage, options))
    }

    fn index_options(dim: usize, storage: VectorStorage, options: &VectorOptions) -> IndexOptions {
        let (dimensions, quantization) = if options.quantize_graph {
            (dim + SCALE_BYTES, ScalarKind::I8)
        } else {
            (dim, storage.scalar())
        };
        IndexOptions {
            dimensions,
            metric: MetricKind::Cos,
            quantization,
            connectivity: options.connectivity,
            expansion_add: options.expansion_add,
            expansion_search: options.expansion_search,
            multi: false,
        }
    }

    /// Installs the graph's distance on a new or loaded index.
    fn measure(index: &mut Index, dim: usize, storage: VectorStorage, quantized: bool) {
        if quantized {
            use_quantized_dot(index, dim);
        } else {
            storage.measure(index, dim);
        }
    }

    /// The distance named in the sidecar of a graph made with `options`.
    fn distance(options: &VectorOptions) -> &'static str {
        if options.quantize_graph {
            QUANTIZED_DISTANCE
        } else {
            GRAPH_DISTANCE
        }
    }

    fn around(index: Index, dim: usize, storage: VectorStorage, options: &VectorOptions) -> Self {
        Self {
            index,
            generation: 0,
            dim,
            storage,
            exact: options.quantize_graph.then(|| ExactVectors::new(storage)),
            exact_scan_limit: options.exact_scan_limit,
            plan_by_cost: options.plan_by_cost,
            connectivity: options.connectivity.max(1),
            expansion_search: options.expansion_search.max(1),
            group_of: HashMap::new(),
            groups: Vec::new(),
            group_ids: HashMap::new(),
            flat_walk: options.flat_walk,
            flat: None,
            removed_since_flat: HashSet::new(),
            inserted_since_flat: HashSet::new(),
            dirty: false,
            unsaved: 0,
            saved_at: std::time::Instant::now(),
        }
    }

    fn group_id(&mut self, group: GroupKey) -> u32 {
        if let Some(id) = self.group_ids.get(&group) {
            return *id;
        }
        let id = self.groups.len() as u32;
        self.groups.push((group.clone(), HashSet::new()));
        self.group_ids.insert(group, id);
        id
    }

    fn forget(&mut self, key: u64) -> Result<bool> {
        let Some(group) = self.group_of.remove(&key) else {
            return Ok(false);
        };
        self.groups[group as usize].1.remove(&key);
        if let Some(exact) = &mut self.exact {
            exact.remove(key);
        }
        self.index
            .remove(key)
            .map_err(|e| usearch_error("remove", e))?;
        Ok(true)
    }

    fn make_room(&mut self, more: usize) -> Result<()> {
        let needed = self.index.size() + more;
        if needed > self.index.capacity() {
            let capacity = needed.max(self.index.capacity() * 2);
            self.index
                .reserve(capacity)
                .map_err(|e| usearch_error("reserve", e))?;
        }
        Ok(())
    }

    /// Adds or replaces `entries`, inserting on up to `threads` threads.
    pub fn insert(&mut self, entries: Vec<GraphEntry>, threads: usize) -> Result<()> {
        if self.flat.is_some() && !entries.is_empty() {
            // The copy cannot follow an insert's new links: the new vectors are compared exactly
            // beside its walk, up to a point.
            if self.inserted_since_flat.len() + entries.len() > FRESH_SCANNED_AT_MOST {
                self.retire_flat();
            } else {
                for entry in &entries {
                    if self.group_of.contains_key(&entry.key) {
                        // Replaced: the copy holds the old vector.
                        self.removed_since_flat.insert(entry.key);
                    }
                    self.inserted_since_flat.insert(entry.key);
                }
            }
        }
        for entry in &entries {
            self.forget(entry.key)?;
        }
        self.make_room(entries.len())?;
        let mut keyed = Vec::with_capacity(entries.len());
        for mut entry in entries {
            normalise(&mut entry.vector);
            let group = self.group_id(entry.group);
            self.group_of.insert(entry.key, group);
            self.groups[group as usize].1.insert(entry.key);
            let vector = match &mut self.exact {
                Some(exact) => {
                    let quantized = quantize(&entry.vector);
                    exact.insert(entry.key, entry.vector);
                    GraphVector::Quantized(quantized)
                }
                None => GraphVector::Exact(entry.vector),
            };
            keyed.push((entry.key, vector));
        }
        // Threads inserting at once into a small graph link it poorly (they race near the entry
        // point: 60 vectors inserted on two threads lost a true neighbour in 4 of 30 runs), so
        // the graph's first SEQUENTIAL_BELOW nodes go in one at a time.
        let index = &self.index;
        let head = SEQUENTIAL_BELOW
            .saturating_sub(index.size())
            .min(keyed.len());
        let (first, keyed) = keyed.split_at(head);
        let mut failed: Option<String> = first
            .iter()
            .find_map(|(key, vector)| vector.add_to(index, *key).err());
        let threads = threads.clamp(1, search_slots());
        let chunk = keyed.len().div_ceil(threads).max(1);
        if failed.is_none() && !keyed.is_empty() {
            failed = std::thread::scope(|s| {
                let workers: Vec<_> = keyed
                    .chunks(chunk)
                    .map(|part| {
                        s.spawn(move || {
                            for (key, vector) in part {
                                vector.add_to(index, *key)?;
                            }
                            Ok::<(), String>(())
                        })
                    })
                    .collect();
                workers.into_iter().find_map(|w| match w.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some("an insert thread panicked".to_string()),
                })
            });
        }
        self.dirty = true;
        self.unsaved += head + keyed.len();
        match failed {
            Some(e) => Err(usearch_error("add", e)),
            None => Ok(()),
        }
    }

    /// Removes `keys` (those absent are skipped).
    pub fn remove(&mut self, keys: &[u64]) -> Result<()> {
        for key in keys {
            if self.forget(*key)? && self.flat.is_some() {
                self.removed_since_flat.insert(*key);
                self.inserted_since_flat.remove(key);
            }
        }
        self.dirty = true;
        self.unsaved += keys.len();
        Ok(())
    }

    /// Groups allowed by `filter` and how many vectors they hold.
    fn allowed(&self, filter: &VectorFilter) -> (Vec<bool>, usize) {
        let mut matching = 0;
        let mask = self
            .groups
            .iter()
            .map(|(key, members)| {
                let ok = key.allowed_by(filter);
                if ok {
                    matching += members.len();
                }
                ok
            })
            .collect();
        (mask, matching)
    }

    /// How a query with `filter` would be answered.
    pub fn plan(&self, filter: &VectorFilter) -> VectorPlan {
        let (_, matching) = self.allowed(filter);
        self.plan_for(matching)
    }

    fn plan_for(&self, matching: usize) -> VectorPlan {
        if matching == 0 {
            VectorPlan::Empty
        } else if matching <= self.exact_scan_limit {
            VectorPlan::Exact { matching }
        } else if matching == self.index.size() {
            VectorPlan::Graph { matching }
        } else if self.plan_by_cost && self.walk_costs_more(matching) {
            VectorPlan::Exact { matching }
        } else {
            VectorPlan::FilteredGraph { matching }
        }
    }

    /// Whether a filtered walk is expected to compute more distances than scanning the
    /// `matching` vectors: `ef / selectivity` expansions of `2 M` neighbours each.
    fn walk_costs_more(&self, matching: usize) -> bool {
        let size = self.index.size() as f64;
        let walk =
            self.expansion_search as f64 * size / matching as f64 * 2.0 * self.connectivity as f64;
        walk.min(size) >= matching as f64
    }

    /// The `k` nearest allowed vectors, best first; always `min(k, matching)` of them.
    pub fn knn(&self, query: &[f32], k: usize, filter: &VectorFilter) -> Result<Vec<VectorHit>> {
        let (mask, matching) = self.allowed(filter);
        let want = k.min(matching);
        // The graph holds unit vectors; so does the query, for the walk and the scan alike.
        let mut query = query.to_vec();
        normalise(&mut query);
        let query = query.as_slice();
        match self.plan_for(matching) {
            VectorPlan::Empty => Ok(Vec::new()),
            VectorPlan::Exact { .. } => self.exact(query, k, &mask),
            plan => {
                let filtered = matches!(plan, VectorPlan::FilteredGraph { .. });
                let allowed = |key| self.group_of.get(&key).is_some_and(|g| mask[*g as usize]);
                if let Some(flat) = &self.flat {
                    let ef = self.expansion_search.max(k);
                    let current = |key| {
                        self.removed_since_flat.is_empty()
                            || !self.removed_since_flat.contains(&key)
                    };
                    let walked = match filtered {
                        true => flat.search(query, ef, |key| current(key) && allowed(key)),
                        false => flat.search(query, ef, current),
                    };
                    let ranked = walked.len().min((4 * k).max(RANKED_AGAIN));
                    let inserted = self.inserted_since_flat.iter().filter(|key| allowed(**key));
                    // Short only when removals since the copy took most of its candidates (or a
                    // filter most of the graph); a key the graph cannot give the exact vector of
                    // (never expected: the copy is checked against the graph when made). Either
                    // leaves the answer to the graph's own walk, then a scan.
                    let mut buffer = vec![0f32; self.dim];
                    let exact: Option<Vec<VectorHit>> = walked[..ranked]
                        .iter()
                        .chain(inserted)
                        .map(|key| {
                            self.exact_similarity(*key, query, &mut buffer)
                                .map(|s| hit(*key, s))
                        })
                        .collect::<Result<Vec<_>>>()
                        .ok();
                    if let Some(mut hits) = exact.filter(|hits| hits.len() >= want) {
                        sort_hits(&mut hits);
                        hits.truncate(k);
                        return Ok(hits);
                    }
                }
                // Asking for more results widens the walk (usearch keeps max(ef, count)
                // candidates); past a few thousand an exact scan is as cheap and certain. A
                // quantized graph hands back all `ef` candidates, to be ranked exactly.
                let mut count = match self.exact {
                    Some(_) => k.max(self.expansion_search),
                    None => k,
                };
                let quantized = self.exact.as_ref().map(|_| quantize(query));
                loop {
                    let found = match (&quantized, filtered) {
                        (Some(q), true) => self.index.filtered_search(q, count, allowed),
                        (Some(q), false) => self.index.search(q, count),
                        (None, true) => self.index.filtered_search(query, count, allowed),
                        (None, false) => self.index.search(query, count),
                    }
                    .map_err(|e| usearch_error("search", e))?;
                    if found.keys.len() >= want {
                        let mut hits: Vec<VectorHit> = match &self.exact {
                            Some(_) => {
                                let mut buffer = vec![0f32; self.dim];
                                found
                                    .keys
                                    .iter()
                                    .map(|key| {
                                        self.exact_similarity(*key, query, &mut buffer)
                                            .map(|s| hit(*key, s))
                                    })
                                    .collect::<Result<_>>()?
                            }
                            None => found
                                .keys
                                .iter()
                                .zip(&found.distances)
                                .map(|(key, distance)| hit(*key, 1.0 - distance))
                                .collect(),
                        };
                        sort_hits(&mut hits);
                        hits.truncate(k);
                        return Ok(hits);
                    }
                    // A filtered walk that came back short has already expanded about as many
                    // nodes as it could reach; a wider one costs more than scanning the allowed
                    // vectors, which is exact.
                    if filtered || count >= 4 * self.expansion_search.max(k).max(1_024) {
                        break;
                    }
                    count *= 4;
                }
                self.exact(query, k, &mask)
            }
        }
    }

    /// Compares the unit `query` with every allowed vector: all unit vectors (or zero), so the
    /// dot product is the cosine.
    fn exact(&self, query: &[f32], k: usize, mask: &[bool]) -> Result<Vec<VectorHit>> {
        let mut buffer = vec![0f32; self.dim];
        // A min-heap of the best k so far.
        let mut best: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
        for (group, (_, members)) in self.groups.iter().enumerate() {
            if !mask[group] {
                continue;
            }
            for key in members {
                let similarity = self.exact_similarity(*key, query, &mut buffer)?;
                best.push(Worst(hit(*key, similarity)));
                if best.len() > k {
                    best.pop();
                }
            }
        }
        let mut hits: Vec<VectorHit> = best.into_iter().map(|w| w.0).collect();
        sort_hits(&mut hits);
        Ok(hits)
    }

    /// The exact similarity of the unit `query` and the vector of `key`, read into `buffer`.
    fn exact_similarity(&self, key: u64, query: &[f32], buffer: &mut [f32]) -> Result<f32> {
        match &self.exact {
            Some(exact) => exact
                .similarity(key, query, buffer)
                .ok_or_else(|| missing_exact(key)),
            None => {
                let got = self
                    .index
                    .get(key, buffer)
                    .map_err(|e| usearch_error("read vector", e))?;
                if got == 0 {
                    return Err(usearch_error(
                        "read vector",
                        format!("key {key} is grouped but not in the graph"),
                    ));
                }
                Ok(dot(query, buffer))
            }
        }
    }

    /// Lays the graph saved at `file` out for walking ([`VectorOptions::flat_walk`]), when it
    /// is big enough to be walked at all; a file it cannot read leaves the graph's own walk.
    fn lay_out(&mut self, file: &Path) {
        self.retire_flat();
        if !self.flat_walk || self.index.size() <= self.exact_scan_limit {
            return;
        }
        let scalars = match (&self.exact, self.storage) {
            (Some(_), _) => SavedScalars::Quantized,
            (None, VectorStorage::F32) => SavedScalars::F32,
            (None, VectorStorage::F16) => SavedScalars::F16,
        };
        match FlatGraph::read(file, self.dim, scalars) {
            // The file is shared by every process on this database: one that saved another
            // generation in between would leave a copy of other vectors, never to be walked.
            Ok(flat) if !self.holds_the_same_keys(&flat) => tracing::warn!(
                file = %file.display(),
                "vector index: the saved file no longer matches the graph; walking without the flat copy"
            ),
            Ok(flat) => self.flat = Some(flat),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e.0, "vector index: walking without the flat copy")
            }
        }
    }

    fn retire_flat(&mut self) {
        self.flat = None;
        self.removed_since_flat.clear();
        self.inserted_since_flat.clear();
    }

    /// Whether saving the graph would give it a flat copy it now walks without (it grew past
    /// the exact-scan limit, or took more inserts than the copy compares exactly).
    pub fn wants_a_flat_copy(&self) -> bool {
        self.flat_walk && self.flat.is_none() && self.index.size() > self.exact_scan_limit
    }

    /// Whether `flat` holds exactly the graph's keys.
    fn holds_the_same_keys(&self, flat: &FlatGraph) -> bool {
        let mut live = 0;
        let all_grouped = flat.live_keys().all(|key| {
            live += 1;
            self.group_of.contains_key(&key)
        });
        all_grouped && live == self.group_of.len()
    }

    /// Whether every grouped key is in the graph and the graph holds nothing else.
    fn is_whole(&self) -> bool {
        self.index.size() == self.group_of.len()
            && self.group_of.keys().all(|key| self.index.contains(*key))
            && self.exact.as_ref().is_none_or(|exact| {
                exact.len() == self.group_of.len()
                    && self.group_of.keys().all(|key| exact.contains(*key))
            })
    }

    /// Saves the graph into `dir` as the file of `model`, with a sidecar naming the generation,
    /// size and checksum it must match to be loaded again.
    pub fn save(&mut self, dir: &Path, model: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create folder", dir, e))?;
        let (file, meta) = files(dir, model);
        let temp = file.with_extension("usearch.tmp");
        let temp_text = temp
            .to_str()
            .ok_or_else(|| Error::internal(format!("path {} is not UTF-8", temp.display())))?;
        self.index
            .save(temp_text)
            .map_err(|e| usearch_error(&format!("save {}", temp.display()), e))?;
        let checksum = checksum(&temp)?;
        self.lay_out(&temp);
        std::fs::rename(&temp, &file).map_err(|e| io_error("rename", &temp, e))?;
        let sidecar = serde_json::json!({
            "model": model,
            "generation": self.generation,
            "count": self.index.size(),
            "dim": self.dim,
            "storage": self.storage.as_str(),
            "distance": if self.exact.is_some() { QUANTIZED_DISTANCE } else { GRAPH_DISTANCE },
            "blake3": checksum,
        });
        let temp = meta.with_extension("json.tmp");
        std::fs::write(&temp, sidecar.to_string()).map_err(|e| io_error("write", &temp, e))?;
        std::fs::rename(&temp, &meta).map_err(|e| io_error("rename", &temp, e))?;
        self.dirty = false;
        self.unsaved = 0;
        self.saved_at = std::time::Instant::now();
        Ok(())
    }

    /// Loads the saved graph of `model` when it matches `generation`, `count` vectors and its
    /// checksum; `None` when there is no usable file (missing, stale or corrupt). A quantized
    /// graph takes its exact vectors from `exact` (the rows'); `None` there when it is not.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        dir: &Path,
        model: &str,
        dim: usize,
        storage: VectorStorage,
        options: &VectorOptions,
        generation: i64,
        groups: HashMap<u64, GroupKey>,
        exact: Option<Vec<(u64, Vec<f32>)>>,
    ) -> Option<Self> {
        let (file, meta) = files(dir, model);
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta).ok()?).ok()?;
        let matches = sidecar["generation"].as_i64() == Some(generation)
            && sidecar["count"].as_u64() == Some(groups.len() as u64)
            && sidecar["dim"].as_u64() == Some(dim as u64)
            && sidecar["storage"].as_str() == Some(storage.as_str())
            && sidecar["distance"].as_str() == Some(Self::distance(options));
        if !matches {
            return None;
        }
        // A file whose bytes are not the ones saved is never handed to the loader.
        if sidecar["blake3"].as_str() != Some(checksum(&file).ok()?.as_str()) {
            return None;
        }
        let mut index = Index::new(&Self::index_options(dim, storage, options)).ok()?;
        index.load(file.to_str()?).ok()?;
        let expected = Self::index_options(dim, storage, options);
        if index.dimensions() != expected.dimensions || index.scalar_kind() != expected.quantization
        {
            return None;
        }
        // Loading puts back the metric named in the file; ours is a custom one.
        Self::measure(&mut index, dim, storage, options.quantize_graph);
        index
            .reserve_capacity_and_threads(index.size().max(64), search_slots())
            .ok()?;
        index.change_expansion_search(options.expansion_search);
        let mut graph = Self::around(index, dim, storage, options);
        graph.generation = generation;
        if let (Some(store), Some(rows)) = (&mut graph.exact, exact) {
            for (key, mut vector) in rows {
                if vector.len() != dim {
                    return None;
                }
                normalise(&mut vector);
                store.insert(key, vector);
            }
        }
        for (key, group) in groups {
            let id = graph.group_id(group);
            graph.group_of.insert(key, id);
            graph.groups[id as usize].1.insert(key);
        }
        if !graph.is_whole() {
            return None;
        }
        graph.lay_out(&file);
        Some(graph)
    }
}

/// Whether `model`'s saved sidecar names `generation` and `count` (a cheap look before reading
/// anything else; the checksum is verified when loading).
pub(crate) fn sidecar_matches(dir: &Path, model: &str, generation: i64, count: i64) -> bool {
    let (file, meta) = files(dir, model);
    let Some(sidecar) = std::fs::read(&meta)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    else {
        return false;
    };
    file.is_file()
        && sidecar["generation"].as_i64() == Some(generation)
        && sidecar["count"].as_i64() == Some(count)
}

/// The graph file and its sidecar for `model` in `dir`: a readable name plus a hash, since model
/// names may hold characters no file name should.
pub(crate) fn files(dir: &Path, model: &str) -> (PathBuf, PathBuf) {
    let readable: String = model
        .chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = blake3::hash(model.as_bytes()).to_hex();
    let stem = format!("{readable}-{}", &hash.as_str()[..12]);
    (
        dir.join(format!("{stem}.usearch")),
        dir.join(format!("{stem}.json")),
    )
}

fn checksum(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error("open", path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| io_error("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::internal(format!("vector index: {what} {}: {e}", path.display())).with_source(e)
}

/// A vector as a graph holds it: as given, or quantized ([`VectorOptions::quantize_graph`]).
enum GraphVector {
    Exact(Vec<f32>),
    Quantized(Vec<i8>),
}

impl GraphVector {
    fn add_to(&self, index: &Index, key: u64) -> std::result::Result<(), String> {
        match self {
            Self::Exact(v) => index.add(key, v),
            Self::Quantized(v) => index.add(key, v),
        }
        .map_err(|e| e.to_string())
    }
}

/// A quantized graph found `key`, which has no exact vector: the two went out of step.
fn missing_exact(key: u64) -> Error {
    usearch_error(
        "read vector",
        format!("key {key} is in the graph but has no exact vector"),
    )
}

fn hit(key: u64, similarity: f32) -> VectorHit {
    VectorHit {
        id: opsweave_core::RecordId::from_raw(key as i64),
        similarity,
    }
}

/// Best first; equal similarities in id order, so answers are stable.
pub(crate) fn sort_hits(hits: &mut [VectorHit]) {
    hits.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(a.id.raw().cmp(&b.id.raw()))
    });
}

/// Orders hits so the heap's top is the worst one (lowest similarity, then highest id).
struct Worst(VectorHit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .similarity
            .total_cmp(&self.0.similarity)
            .then(self.0.id.raw().cmp(&other.0.id.raw()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_round_trips_blobs() {
        let v = vec![0.5f32, -1.25, 3.0];
        for storage in [VectorStorage::F32, VectorStorage::F16] {
            let blob = storage.encode(&v);
            assert_eq!(storage.decode(&blob, 3), Some(v.clone()));
            assert_eq!(storage.decode(&blob, 4), None, "wrong length is refused");
        }
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let dir = Path::new("/x");
        let (a, _) = files(dir, "org/model:v1");
        let (b, _) = files(dir, "org_model_v1");
        assert_ne!(a, b);
        assert!(a.file_name().is_some_and(|n| n
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))));
    }

    /// Options that walk the graph for every query of a test-sized model.
    fn walking() -> VectorOptions {
        VectorOptions {
            exact_scan_limit: 0,
            plan_by_cost: false,
            expansion_search: 64,
            ..VectorOptions::default()
        }
    }

    fn group(org: &str) -> GroupKey {
        GroupKey {
            org: org.into(),
            client: None,
            project: None,
            entity: "task".into(),
            source_kind: "test".into(),
        }
    }

    fn of_org(org: &str) -> VectorFilter {
        VectorFilter {
            scope: opsweave_core::Scope::org(org),
            ..VectorFilter::default()
        }
    }

    /// `n` random vectors of `dim`, every tenth in org `b`, the rest in `a`; saved into `dir`.
    fn saved_graph(
        dir: &Path,
        n: usize,
        dim: usize,
        storage: VectorStorage,
        options: &VectorOptions,
    ) -> (Graph, Vec<Vec<f32>>) {
        let vectors = opsweave_testkit::random_vectors(n, dim, 7);
        let mut graph = Graph::new(dim, storage, options, n).unwrap();
        let entries = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| GraphEntry {
                key: i as u64 + 1,
                group: group(if i % 10 == 0 { "b" } else { "a" }),
                vector: v.clone(),
            })
            .collect();
        graph.insert(entries, 2).unwrap();
        assert!(graph.flat.is_none(), "no copy before the graph is saved");
        graph.save(dir, "m").unwrap();
        (graph, vectors)
    }

    /// The keys of the `k` vectors most similar to `query` among those `keep` accepts.
    fn true_nearest(
        vectors: &[Vec<f32>],
        query: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        let mut query = query.to_vec();
        normalise(&mut query);
        let mut scored: Vec<(f32, u64)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut v = v.clone();
                normalise(&mut v);
                (dot(&query, &v), i as u64 + 1)
            })
            .filter(|(_, key)| keep(*key))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, key)| key).collect()
    }

    fn recall(got: &[VectorHit], want: &[u64]) -> f64 {
        let found = got
            .iter()
            .filter(|h| want.contains(&(h.id.raw() as u64)))
            .count();
        found as f64 / want.len() as f64
    }

    /// A saved graph is walked through its flat copy, in every storage the graph can have: the
    /// copy's own walk finds the true neighbours, and the answers carry exact similarities.
    #[test]
    fn a_saved_graph_is_walked_through_its_flat_copy() {
        let quantized = VectorOptions {
            quantize_graph: true,
            ..walking()
        };
        for (storage, options) in [
            (VectorStorage::F32, walking()),
            (VectorStorage::F16, walking()),
            (VectorStorage::F32, quantized),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (graph, vectors) = saved_graph(dir.path(), 3_000, 24, storage, &options);
            let flat = graph.flat.as_ref().expect("the save laid the graph out");
            assert_eq!(flat.len(), 3_000);
            let queries = opsweave_testkit::random_vectors(40, 24, 11);
            let (mut walked, mut answered) = (0.0, 0.0);
            for query in &queries {
                let want = true_nearest(&vectors, query, 10, |_| true);
                let mut unit = query.clone();
                normalise(&mut unit);
                let copy = flat.search(&unit, 64, |_| true);
                walked += want.iter().filter(|k| copy[..10].contains(k)).count() as f64 / 10.0;
                // Org `a` is 90 % of the graph, `b` 10 %: both filtered walks of the copy.
                let tenant = graph.knn(query, 10, &of_org("b")).unwrap();
                assert_eq!(tenant.len(), 10);
                assert!(
                    tenant.iter().all(|h| (h.id.raw() - 1) % 10 == 0),
                    "{tenant:?}"
                );
                let every = graph.knn(query, 10, &of_org("a")).unwrap();
                answered += recall(
                    &every,
                    &true_nearest(&vectors, query, 10, |k| (k - 1) % 10 != 0),
                );
                for hit in every.iter().chain(&tenant) {
                    let mut v = vectors[hit.id.raw() as usize - 1].clone();
                    normalise(&mut v);
                    let exact = dot(&unit, &v);
                    let tolerance = if storage == VectorStorage::F16 {
                        2e-3
                    } else {
                        1e-5
                    };
                    assert!(
                        (hit.similarity - exact).abs() < tolerance,
                        "{storage:?}: similarity {} vs exact {exact}",
                        hit.similarity
                    );
                }
            }
            // Each of the 80 answers came from the copy (40 direct searches beside them).
            assert_eq!(flat.searches(), 120, "{storage:?}");
            let (walked, answered) = (walked / 40.0, answered / 40.0);
            assert!(
                walked >= 0.9,
                "{storage:?}: the copy's walk found {walked} of the true top 10"
            );
            assert!(
                answered >= 0.9,
                "{storage:?}: the filtered answers held {answered} of the true top 10"
            );
        }
    }

    /// Every query of a model that is all one group goes through the unfiltered walk; removals
    /// after the save are skipped by the copy, a few inserts are compared exactly beside it,
    /// many retire it, and the next save or load lays the graph out again.
    #[test]
    fn the_flat_copy_follows_removals_and_inserts() {
        let dir = tempfile::tempdir().unwrap();
        let vectors = opsweave_testkit::random_vectors(2_000, 16, 3);
        let options = walking();
        let mut graph = Graph::new(16, VectorStorage::F32, &options, 2_000).unwrap();
        let entries = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| GraphEntry {
                key: i as u64 + 1,
                group: group("a"),
                vector: v.clone(),
            })
            .collect();
        graph.insert(entries, 2).unwrap();
        graph.save(dir.path(), "m").unwrap();
        assert!(graph.flat.is_some());
        assert_eq!(
            graph.plan(&of_org("a")),
            VectorPlan::Graph { matching: 2_000 }
        );

        // Half the keys go; the copy still holds them but never answers with one.
        let removed: Vec<u64> = (1..=2_000).filter(|k| k % 2 == 0).collect();
        graph.remove(&removed).unwrap();
        assert!(graph.flat.is_some(), "removals keep the copy");
        let queries = opsweave_testkit::random_vectors(20, 16, 5);
        let before = graph.flat.as_ref().map(FlatGraph::searches);
        for query in &queries {
            let hits = graph.knn(query, 10, &of_org("a")).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(
                hits.iter().all(|h| h.id.raw() % 2 == 1),
                "a removed key came back: {hits:?}"
            );
            let want = true_nearest(&vectors, query, 10, |k| k % 2 == 1);
            assert!(recall(&hits, &want) >= 0.7, "{hits:?} vs {want:?}");
        }

        assert_eq!(
            graph.flat.as_ref().map(FlatGraph::searches),
            before.map(|n| n + 20),
            "the copy answered every query"
        );

        // A few inserts keep the copy: the new vectors are compared exactly beside its walk,
        // and a replaced vector's old copy is never answered with.
        // The replacement lies near the old vector, so both rank key 1 high.
        let newcomer = queries[0].clone();
        let replacement: Vec<f32> = vectors[0].iter().map(|x| x + 0.02).collect();
        let entry = |key: u64, vector: &Vec<f32>| GraphEntry {
            key,
            group: group("a"),
            vector: vector.clone(),
        };
        graph
            .insert(vec![entry(5_000, &newcomer), entry(1, &replacement)], 1)
            .unwrap();
        assert!(graph.flat.is_some(), "a few inserts keep the copy");
        let searched = graph.flat.as_ref().map(FlatGraph::searches);
        assert_eq!(
            graph.knn(&newcomer, 1, &of_org("a")).unwrap()[0].id.raw(),
            5_000
        );
        let top = graph.knn(&replacement, 1, &of_org("a")).unwrap();
        assert_eq!(top[0].id.raw(), 1);
        assert!((top[0].similarity - 1.0).abs() < 1e-5, "{top:?}");
        let (mut old, mut new) = (vectors[0].clone(), replacement.clone());
        normalise(&mut old);
        normalise(&mut new);
        // Found by the walk (its old vector is near) and compared as new: once, as new.
        let near_old = graph.knn(&vectors[0], 10, &of_org("a")).unwrap();
        let ids: HashSet<i64> = near_old.iter().map(|h| h.id.raw()).collect();
        assert_eq!(
            ids.len(),
            near_old.len(),
            "a key answered twice: {near_old:?}"
        );
        for hit in near_old {
            if hit.id.raw() == 1 {
                assert!((hit.similarity - dot(&old, &new)).abs() < 1e-5, "{hit:?}");
            }
        }
        assert_eq!(
            graph.flat.as_ref().map(FlatGraph::searches),
            searched.map(|n| n + 3),
            "the copy answered beside the exact comparisons"
        );

        // Past FRESH_SCANNED_AT_MOST the copy is retired: the graph walks on its own (and asks
        // to be saved), and the next save lays it out again.
        assert!(!graph.wants_a_flat_copy());
        let many = opsweave_testkit::random_vectors(FRESH_SCANNED_AT_MOST, 16, 9)
            .iter()
            .enumerate()
            .map(|(i, v)| entry(10_000 + i as u64, v))
            .collect();
        graph.insert(many, 2).unwrap();
        assert!(graph.flat.is_none());
        assert!(graph.wants_a_flat_copy());
        assert_eq!(
            graph.knn(&newcomer, 1, &of_org("a")).unwrap()[0].id.raw(),
            5_000
        );
        graph.save(dir.path(), "m").unwrap();
        assert!(graph.flat.is_some(), "the next save lays it out again");
        assert!(!graph.wants_a_flat_copy());
        assert_eq!(
            graph.knn(&newcomer, 1, &of_org("a")).unwrap()[0].id.raw(),
            5_000
        );

        // Loading the saved file lays it out too.
        let groups: HashMap<u64, GroupKey> =
            graph.group_of.keys().map(|k| (*k, group("a"))).collect();
        let loaded = Graph::load(
            dir.path(),
            "m",
            16,
            VectorStorage::F32,
            &options,
            graph.generation,
            groups,
            None,
        )
        .expect("the saved graph loads");
        assert!(loaded.flat.is_some());
        assert_eq!(
            loaded.knn(&newcomer, 1, &of_org("a")).unwrap()[0].id.raw(),
            5_000
        );

        // Turned off, or for a model small enough to be scanned, there is no copy.
        let mut off = Graph::load(
            dir.path(),
            "m",
            16,
            VectorStorage::F32,
            &VectorOptions {
                flat_walk: false,
                ..options.clone()
            },
            graph.generation,
            graph.group_of.keys().map(|k| (*k, group("a"))).collect(),
            None,
        )
        .unwrap();
        assert!(off.flat.is_none());
        off.save(dir.path(), "m").unwrap();
        assert!(off.flat.is_none());
        let scanned = Graph::load(
            dir.path(),
            "m",
            16,
            VectorStorage::F32,
            &VectorOptions::default(),
            graph.generation,
            graph.group_of.keys().map(|k| (*k, group("a"))).collect(),
            None,
        )
        .unwrap();
        assert!(
            scanned.flat.is_none(),
            "1,001 vectors are under the default exact-scan limit"
        );
    }

    /// A file that is not what usearch saves (cut short anywhere, or linking past its last
    /// node) is refused with a reason, never a panic; the graph then walks on its own.
    #[test]
    fn a_damaged_file_is_not_laid_out() {
        let dir = tempfile::tempdir().unwrap();
        let (graph, _) = saved_graph(dir.path(), 1_200, 8, VectorStorage::F32, &walking());
        assert!(graph.flat.is_some());
        let (file, _) = files(dir.path(), "m");
        let bytes = std::fs::read(&file).unwrap();
        let damaged = dir.path().join("damaged");
        for cut in [0, 7, 1_000, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&damaged, &bytes[..cut]).unwrap();
            assert!(
                FlatGraph::read(&damaged, 8, SavedScalars::F32).is_err(),
                "cut at {cut}"
            );
        }
        // A count of vectors far past the file's size is refused before anything is allocated.
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&damaged, &huge).unwrap();
        let refused = FlatGraph::read(&damaged, 8, SavedScalars::F32).unwrap_err();
        assert!(refused.0.contains("do not fit"), "{}", refused.0);
        // So is a header claiming far more links per node than the file holds.
        let mut wide = bytes.clone();
        let base_links_at = 8 + 1_200 * 8 * 4 + 64 + 16;
        wide[base_links_at..base_links_at + 8].copy_from_slice(&8_192u64.to_le_bytes());
        std::fs::write(&damaged, &wide).unwrap();
        let refused = FlatGraph::read(&damaged, 8, SavedScalars::F32).unwrap_err();
        assert!(refused.0.contains("links do not fit"), "{}", refused.0);
        assert!(
            FlatGraph::read(&file, 9, SavedScalars::F32).is_err(),
            "wrong dimensions"
        );
        assert!(
            FlatGraph::read(&file, 8, SavedScalars::F16).is_err(),
            "wrong scalars"
        );
        // The first node's first link, set past the last node: vectors, head, header, levels,
        // then the node's key, level and link count.
        let mut wild = bytes.clone();
        let first_link = 8 + 1_200 * 8 * 4 + 64 + 40 + 1_200 * 2 + 8 + 2 + 4;
        wild[first_link..first_link + 4].copy_from_slice(&5_000u32.to_le_bytes());
        let count_at = first_link - 4;
        wild[count_at..first_link].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&damaged, &wild).unwrap();
        let refused = FlatGraph::read(&damaged, 8, SavedScalars::F32).unwrap_err();
        assert!(refused.0.contains("past the last node"), "{}", refused.0);
    }

    /// A file that holds another graph (another process saved another generation over it) is
    /// not laid out: the copy would answer with keys the graph does not have.
    #[test]
    fn a_file_of_other_vectors_is_not_laid_out() {
        let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_, _) = saved_graph(one.path(), 1_200, 8, VectorStorage::F32, &walking());
        let (mut graph, vectors) =
            saved_graph(other.path(), 1_100, 8, VectorStorage::F32, &walking());
        assert!(graph.flat.is_some());
        let (foreign, _) = files(one.path(), "m");
        graph.lay_out(&foreign);
        assert!(
            graph.flat.is_none(),
            "1,200 keys laid out for a graph of 1,100"
        );
        // Its queries go through the graph's own walk.
        let hits = graph.knn(&vectors[5], 3, &of_org("a")).unwrap();
        assert_eq!(hits[0].id.raw(), 6);
    }

    #[test]
    fn worst_hit_is_on_top_of_the_heap() {
        let mut heap = BinaryHeap::new();
        for (id, s) in [(1, 0.9f32), (2, 0.1), (3, 0.5)] {
            heap.push(Worst(hit(id, s)));
        }
        assert_eq!(heap.pop().map(|w| w.0.id.raw()), Some(2));
    }
}
