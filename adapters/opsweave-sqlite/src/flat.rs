//! A read-only copy of a saved graph laid out for searching: every node's base-level links and
//! its vector (8-bit, [`quantize`]d) side by side in one array, walked with the next nodes'
//! vectors prefetched while the current ones are compared.
//!
//! usearch keeps a node's links and its vector in two separate allocations reached through
//! per-slot pointers and walks them without prefetching, so each visited node costs a chain of
//! dependent cache and TLB misses; on 1M × 384 vectors that made its walk 2.1–2.7× slower than
//! hnswlib's on the same graph (docs/benchmarks.md, "On a 16-core server"). This copy is read
//! from the file usearch saved (its layout: the vectors, a 64-byte head, then the graph), so it
//! reflects the graph as of the last save or load; the graph keeps what changed since beside it
//! (removed keys, a bounded number of inserted vectors compared exactly) and lays it out again
//! at its next save.

use crate::distance::{as_i8, dot_quantized, prefetch, quantize, SCALE_BYTES};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};
use std::sync::Mutex;

/// How the saved file holds each vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SavedScalars {
    /// f32 components, little-endian.
    F32,
    /// IEEE half components, little-endian.
    F16,
    /// Already [`quantize`]d: the components as i8, then the scale.
    Quantized,
}

impl SavedScalars {
    fn bytes_per_vector(self, dim: usize) -> usize {
        match self {
            Self::F32 => dim * 4,
            Self::F16 => dim * 2,
            Self::Quantized => dim + SCALE_BYTES,
        }
    }
}

/// The key usearch gives a removed node's slot.
const FREE_KEY: u64 = u64::MAX;

/// The alignment of every node in the array: a cache line.
const LINE: usize = 64;

/// The graph laid out for walking; see the module docs.
pub(crate) struct FlatGraph {
    /// `size` nodes of `stride` bytes from `start`: a u32 link count, `base_links` u32 slots,
    /// then the vector.
    nodes: Vec<u8>,
    start: usize,
    stride: usize,
    base_links: usize,
    dim: usize,
    keys: Vec<u64>,
    /// The links of the nodes above the base level: per level from 1 up, a count and
    /// `upper_links` slots.
    upper: HashMap<u32, Box<[u32]>>,
    upper_links: usize,
    entry: u32,
    max_level: usize,
    /// Visit marks, one bit per node, kept between searches.
    visits: Mutex<Vec<Vec<u64>>>,
    /// Searches it has answered.
    searches: AtomicU64,
}

impl std::fmt::Debug for FlatGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatGraph")
            .field("size", &self.keys.len())
            .field("stride", &self.stride)
            .finish_non_exhaustive()
    }
}

/// Why a saved file could not be laid out (the graph then walks with usearch).
#[derive(Debug)]
pub(crate) struct Unreadable(pub String);

impl From<std::io::Error> for Unreadable {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

fn bad(what: impl Into<String>) -> Unreadable {
    Unreadable(what.into())
}

/// A candidate node and its distance from the query, ordered by distance.
#[derive(Clone, Copy)]
struct Scored(f32, u32);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

fn read_u32(reader: &mut impl Read) -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64(reader: &mut impl Read) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    reader.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn read_i16(reader: &mut impl Read) -> std::io::Result<i16> {
    let mut bytes = [0u8; 2];
    reader.read_exact(&mut bytes)?;
    Ok(i16::from_le_bytes(bytes))
}

impl FlatGraph {
    /// Lays out the graph usearch saved at `path`, whose vectors are unit vectors of `dim`
    /// components held as `scalars`.
    pub fn read(path: &Path, dim: usize, scalars: SavedScalars) -> Result<Self, Unreadable> {
        let file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        Self::from_reader(
            std::io::BufReader::with_capacity(1 << 20, file),
            length,
            dim,
            scalars,
        )
    }

    fn from_reader(
        mut reader: impl Read,
        length: u64,
        dim: usize,
        scalars: SavedScalars,
    ) -> Result<Self, Unreadable> {
        // The vectors, one per slot.
        let rows = read_u32(&mut reader)? as usize;
        let columns = read_u32(&mut reader)? as usize;
        if columns != scalars.bytes_per_vector(dim) {
            return Err(bad(format!(
                "{columns} bytes per vector, expected {}",
                scalars.bytes_per_vector(dim)
            )));
        }
        // Sizes are checked against the file before anything is allocated for them.
        if (rows as u64).saturating_mul(columns as u64 + 16) > length {
            return Err(bad(format!("{rows} vectors do not fit in {length} bytes")));
        }
        let mut vectors = vec![0i8; rows * (dim + SCALE_BYTES)];
        let mut row = vec![0u8; columns];
        let mut wide = vec![0f32; dim];
        for slot in 0..rows {
            reader.read_exact(&mut row)?;
            let out = &mut vectors[slot * (dim + SCALE_BYTES)..(slot + 1) * (dim + SCALE_BYTES)];
            match scalars {
                SavedScalars::Quantized => {
                    for (o, b) in out.iter_mut().zip(&row) {
                        *o = *b as i8;
                    }
                }
                SavedScalars::F32 => {
                    for (w, b) in wide.iter_mut().zip(row.chunks_exact(4)) {
                        *w = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                    out.copy_from_slice(&quantize(&wide));
                }
                SavedScalars::F16 => {
                    for (w, b) in wide.iter_mut().zip(row.chunks_exact(2)) {
                        *w = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                    }
                    out.copy_from_slice(&quantize(&wide));
                }
            }
        }
        let mut head = [0u8; 64];
        reader.read_exact(&mut head)?;
        if !head.starts_with(b"usearch") {
            return Err(bad("no usearch head after the vectors"));
        }
        // The graph: its header, every node's level, then every node's key, level and links.
        let size = read_u64(&mut reader)? as usize;
        let connectivity = read_u64(&mut reader)? as usize;
        let base_links = read_u64(&mut reader)? as usize;
        let max_level = read_u64(&mut reader)? as usize;
        let entry = read_u64(&mut reader)? as usize;
        if size != rows || size > u32::MAX as usize || (size > 0 && entry >= size) {
            return Err(bad(format!(
                "{size} nodes for {rows} vectors, entry {entry}"
            )));
        }
        if max_level > 64 {
            return Err(bad(format!("{max_level} levels")));
        }
        if connectivity == 0 || base_links == 0 || connectivity > 4_096 || base_links > 8_192 {
            return Err(bad(format!("links per node {connectivity} / {base_links}")));
        }
        // Every node's tape holds its key, level, count and base links: the file must too.
        let tapes = (size as u64).saturating_mul(8 + 2 + 4 + 4 * base_links as u64);
        if tapes > length {
            return Err(bad(format!(
                "{size} nodes of {base_links} links do not fit in {length} bytes"
            )));
        }
        let mut levels = Vec::with_capacity(size);
        for _ in 0..size {
            let level = read_i16(&mut reader)?;
            if level < 0 || level as usize > max_level {
                return Err(bad(format!("a node on level {level} of {max_level}")));
            }
            levels.push(level as usize);
        }
        let vector_offset = 4 + 4 * base_links;
        let stride = (vector_offset + dim + SCALE_BYTES).div_ceil(LINE) * LINE;
        let mut nodes = Vec::with_capacity(size * stride + LINE);
        advise_huge_pages(&mut nodes);
        nodes.resize(size * stride + LINE, 0);
        let start = (LINE - nodes.as_ptr() as usize % LINE) % LINE;
        let mut keys = Vec::with_capacity(size);
        let mut upper = HashMap::new();
        let mut links = vec![0u8; 4 * base_links.max(connectivity)];
        for (slot, level) in levels.iter().enumerate() {
            let key = read_u64(&mut reader)?;
            if read_i16(&mut reader)? as usize != *level {
                return Err(bad(format!("node {slot}'s level differs from the list")));
            }
            keys.push(key);
            let node = &mut nodes[start + slot * stride..start + (slot + 1) * stride];
            let count = read_u32(&mut reader)? as usize;
            reader.read_exact(&mut links[..4 * base_links])?;
            check_links(slot, count, base_links, &links, size)?;
            node[..4].copy_from_slice(&(count as u32).to_le_bytes());
            node[4..vector_offset].copy_from_slice(&links[..4 * base_links]);
            let vector = &vectors[slot * (dim + SCALE_BYTES)..(slot + 1) * (dim + SCALE_BYTES)];
            for (o, v) in node[vector_offset..].iter_mut().zip(vector) {
                *o = *v as u8;
            }
            if *level > 0 {
                let mut above = Vec::with_capacity(level * (1 + connectivity));
                for _ in 0..*level {
                    let count = read_u32(&mut reader)? as usize;
                    reader.read_exact(&mut links[..4 * connectivity])?;
                    check_links(slot, count, connectivity, &links, size)?;
                    above.push(count as u32);
                    above.extend(
                        links[..4 * connectivity]
                            .chunks_exact(4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                }
                upper.insert(slot as u32, above.into_boxed_slice());
            }
        }
        if size > 0 && levels[entry] != max_level {
            return Err(bad("the entry node is not on the top level"));
        }
        Ok(Self {
            nodes,
            start,
            stride,
            base_links,
            dim,
            keys,
            upper,
            upper_links: connectivity,
            entry: entry as u32,
            max_level,
            visits: Mutex::new(Vec::new()),
            searches: AtomicU64::new(0),
        })
    }

    /// Nodes in the copy, removed ones included.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys of the nodes that are not removed.
    pub fn live_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.iter().copied().filter(|key| *key != FREE_KEY)
    }

    /// Searches it has answered so far.
    #[cfg(test)]
    pub fn searches(&self) -> u64 {
        self.searches.load(Atomic::Relaxed)
    }

    fn node(&self, slot: u32) -> &[u8] {
        let at = self.start + slot as usize * self.stride;
        &self.nodes[at..at + self.stride]
    }

    fn vector_bytes(&self, slot: u32) -> &[u8] {
        &self.node(slot)[4 + 4 * self.base_links..][..self.dim + SCALE_BYTES]
    }

    fn base_links(&self, slot: u32) -> impl Iterator<Item = u32> + '_ {
        let node = self.node(slot);
        let count = u32::from_le_bytes([node[0], node[1], node[2], node[3]]) as usize;
        node[4..4 + 4 * count]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn upper_links(&self, slot: u32, level: usize) -> &[u32] {
        match self.upper.get(&slot) {
            Some(above) if above.len() >= level * (1 + self.upper_links) => {
                let at = (level - 1) * (1 + self.upper_links);
                let count = above[at] as usize;
                &above[at + 1..at + 1 + count]
            }
            _ => &[],
        }
    }

    fn distance(&self, query: &[i8], slot: u32) -> f32 {
        1.0 - dot_quantized(query, as_i8(self.vector_bytes(slot)), self.dim)
    }

    /// The keys of up to `ef` nodes nearest the unit `query` by their 8-bit vectors, nearest
    /// first, among those `allowed` accepts (removed nodes never are).
    pub fn search(&self, query: &[f32], ef: usize, allowed: impl Fn(u64) -> bool) -> Vec<u64> {
        if self.keys.is_empty() || ef == 0 || query.len() != self.dim {
            return Vec::new();
        }
        self.searches.fetch_add(1, Atomic::Relaxed);
        let query = quantize(query);
        let query = query.as_slice();
        // The upper levels: a greedy descent to the base level's starting node.
        let mut current = self.entry;
        let mut nearest = self.distance(query, current);
        for level in (1..=self.max_level).rev() {
            loop {
                let mut moved = false;
                for &next in self.upper_links(current, level) {
                    let distance = self.distance(query, next);
                    if distance < nearest {
                        (nearest, current, moved) = (distance, next, true);
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        let admits = |slot: u32| {
            let key = self.keys[slot as usize];
            key != FREE_KEY && allowed(key)
        };
        let mut visited = self.visited();
        let mut mark = |slot: u32| {
            let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
            let seen = visited[word] & bit != 0;
            visited[word] |= bit;
            seen
        };
        mark(current);
        let mut candidates = BinaryHeap::with_capacity(ef * 4);
        let mut found: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
        candidates.push(Reverse(Scored(nearest, current)));
        if admits(current) {
            found.push(Scored(nearest, current));
        }
        // The neighbours to compare, every one's vector prefetched before the first is read (a
        // window of four ahead measured the same on 1M × 384).
        let mut fresh = Vec::with_capacity(self.base_links);
        while let Some(Reverse(Scored(distance, slot))) = candidates.pop() {
            if found.len() >= ef && found.peek().is_some_and(|worst| distance > worst.0) {
                break;
            }
            // The next node to expand: its links, read after this one's neighbours are compared.
            if let Some(Reverse(Scored(_, next))) = candidates.peek() {
                prefetch(&self.node(*next)[..LINE]);
            }
            fresh.clear();
            for neighbour in self.base_links(slot) {
                // In range: every link was checked against the node count when read.
                if !mark(neighbour) {
                    prefetch(self.vector_bytes(neighbour));
                    fresh.push(neighbour);
                }
            }
            for &neighbour in &fresh {
                let distance = self.distance(query, neighbour);
                let worst = found.peek().map_or(f32::INFINITY, |w| w.0);
                if found.len() < ef || distance < worst {
                    candidates.push(Reverse(Scored(distance, neighbour)));
                    if admits(neighbour) {
                        found.push(Scored(distance, neighbour));
                        if found.len() > ef {
                            found.pop();
                        }
                    }
                }
            }
        }
        self.put_back(visited);
        found
            .into_sorted_vec()
            .into_iter()
            .map(|Scored(_, slot)| self.keys[slot as usize])
            .collect()
    }

    /// A cleared visit bitmap, reused from an earlier search when one is free.
    fn visited(&self) -> Vec<u64> {
        let words = self.keys.len().div_ceil(64);
        let reused = self.visits.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some(mut bits) => {
                bits.clear();
                bits.resize(words, 0);
                bits
            }
            None => vec![0; words],
        }
    }

    fn put_back(&self, bits: Vec<u64>) {
        if let Ok(mut free) = self.visits.lock() {
            free.push(bits);
        }
    }
}

/// Asks Linux to back the (still untouched) capacity of `buffer` with transparent huge pages
/// where the system leaves that to each program (`madvise`, the usual default): a walk reads a
/// few lines of a random node at each step, and with 4 KiB pages each read is also a TLB miss.
#[allow(unsafe_code)]
fn advise_huge_pages(buffer: &mut Vec<u8>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let from = buffer.as_mut_ptr() as usize;
        let (start, end) = (
            from.next_multiple_of(HUGE),
            (from + buffer.capacity()) & !(HUGE - 1),
        );
        if end > start {
            // SAFETY: the range lies inside `buffer`'s own allocation, and the advice changes
            // how its pages are backed, never their contents or validity.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

fn check_links(
    slot: usize,
    count: usize,
    room: usize,
    links: &[u8],
    size: usize,
) -> Result<(), Unreadable> {
    if count > room {
        return Err(bad(format!(
            "node {slot} has {count} links, room for {room}"
        )));
    }
    let out_of_range = links[..4 * count]
        .chunks_exact(4)
        .any(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize >= size);
    if out_of_range {
        return Err(bad(format!("node {slot} links past the last node")));
    }
    Ok(())
}
