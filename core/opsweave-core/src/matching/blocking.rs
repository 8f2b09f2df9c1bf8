//! Candidate pairs without comparing every pair: an inverted index over words, q-grams and
//! identifiers, pruned by key frequency, keeping each record's top-k neighbours on either side,
//! plus equality keys.
//!
//! The work per record is bounded, so the whole grows linearly with the data: each record
//! walks the holders of its rarest keys only, up to [`WORK_PER_RECORD`], and an equality block
//! gives candidates only while it is small.

use super::compare::raw_value;
use super::parallel;
use super::spec::Blocking;
use super::table::Table;
use super::text;
use rustc_hash::FxHashMap;

/// Holders of its keys a record may visit in the index sweep. Its rarest keys come first (a
/// whole address, a postcode): they find its twins; a key whose holders would overrun this is
/// only checked against the records found, never walked. The cost of the sweep is this per
/// record, a random read each, so it is what keeps a million records per side in a minute:
/// at 300,000 × 300,000 synthetic people 1,000 took 2× the CPU of 300 for an F1 0.0007
/// lower, and on the issue-3 data sets 300 changes a few candidates but no F1.
const WORK_PER_RECORD: usize = 300;
/// An equality block larger than this on either side gives no candidates: it is a common
/// value, not an identity, and would cost each of its records this many comparisons.
const EQUALITY_BLOCK: usize = 100;
/// Records per piece of parallel work.
const PIECE: usize = 2_048;
/// The weight of a whole-value key (see [`record_keys`]): the least positive `f32`, so that the
/// key leads the sweep to records but adds nothing to a score (any real weight, at least 0.01,
/// absorbs it) and candidates stay those of the other keys.
const WALK_ONLY: f32 = f32::MIN_POSITIVE;
/// A shared weight above this holds at least one real key (each weighs 0.01 or more), not
/// only whole-value keys.
const REAL: f32 = 1e-6;
/// Records whose keys are hashed (in parallel) before they are interned (in order), which
/// bounds the memory of the hashes waiting to be interned.
const BATCH: usize = 65_536;

/// Per-record lists in one buffer: record `r` holds `items[start[r]..start[r + 1]]`.
struct Lists {
    start: Vec<usize>,
    items: Vec<u32>,
}

impl Lists {
    fn of(&self, r: usize) -> &[u32] {
        &self.items[self.start[r]..self.start[r + 1]]
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }
}

/// The candidate pairs (left row, right row), sorted and unique; in dedupe `left < right`.
pub(crate) fn candidates(
    blocking: &Blocking,
    left: &Table,
    right: Option<&Table>,
) -> Vec<(u32, u32)> {
    candidates_on(blocking, left, right, parallel::threads())
}

/// [`candidates`] on `threads` threads; the result does not depend on their number.
fn candidates_on(
    blocking: &Blocking,
    left: &Table,
    right: Option<&Table>,
    threads: usize,
) -> Vec<(u32, u32)> {
    let mut ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut walk_only = Vec::new();
    let left_keys = record_keys(blocking, left, &mut ids, &mut walk_only, threads);
    let right_keys = right.map(|r| record_keys(blocking, r, &mut ids, &mut walk_only, threads));
    let n_keys = ids.len();
    drop(ids);
    let dedupe = right.is_none();
    let right_keys_ref = right_keys.as_ref().unwrap_or(&left_keys);
    let (n_left, n_right) = (left_keys.len(), right_keys_ref.len());

    let holders = |lists: &Lists| -> Vec<u32> {
        let mut count = vec![0u32; n_keys];
        for k in &lists.items {
            count[*k as usize] += 1;
        }
        count
    };
    let left_count = holders(&left_keys);
    let right_count_own = right_keys.as_ref().map(holders);
    let right_count = right_count_own.as_deref().unwrap_or(&left_count);

    // Keys held by many records cost quadratic work and say little about identity.
    let cap = blocking
        .max_key_frequency
        .unwrap_or_else(|| ((n_left.max(n_right) as f64).sqrt() * 3.0).max(20.0) as usize);
    let total = (n_left + if dedupe { 0 } else { n_right }) as f64;
    let weight: Vec<f32> = left_count
        .iter()
        .zip(right_count)
        .enumerate()
        .map(|(key, (l, r))| {
            let (l, r) = (*l as usize, *r as usize);
            if l == 0 || r == 0 || l > cap || r > cap {
                return 0.0;
            }
            if walk_only[key] {
                return WALK_ONLY;
            }
            let holders = if dedupe { l } else { l + r };
            ((total / holders as f64).ln().max(0.0) + 0.1).powi(2) as f32
        })
        .collect();
    // From here on only the kept keys matter, each record's in key order.
    let left_kept = kept_keys(&left_keys, &weight, threads);
    drop(left_keys);
    let right_kept_own = right_keys.map(|r| kept_keys(&r, &weight, threads));
    let right_kept = right_kept_own.as_ref().unwrap_or(&left_kept);
    let norms = |lists: &Lists| -> Vec<f32> {
        (0..lists.len())
            .map(|r| {
                lists
                    .of(r)
                    .iter()
                    .map(|k| weight[*k as usize])
                    .sum::<f32>()
                    .sqrt()
                    .max(f32::EPSILON)
            })
            .collect()
    };
    let left_norm = norms(&left_kept);
    let right_norm_own = right_kept_own.as_ref().map(norms);
    let right_norm = right_norm_own.as_deref().unwrap_or(&left_norm);
    let left_sig = signatures(&left_kept);
    let right_sig_own = right_kept_own.as_ref().map(signatures);
    let right_sig = right_sig_own.as_deref().unwrap_or(&left_sig);

    let k = blocking.top_k;
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    {
        // Each side finds its records' top-k on the other; in dedupe one sweep serves both.
        let found = Sweep {
            from: &left_kept,
            from_norm: &left_norm,
            to: right_kept,
            to_post: &postings(right_kept, n_keys),
            to_norm: right_norm,
            to_sig: right_sig,
            weight: &weight,
            k,
            dedupe,
        }
        .run(threads);
        for (a, b) in found {
            pairs.push(if dedupe { (a.min(b), a.max(b)) } else { (a, b) });
        }
    }
    if let Some(right_kept) = &right_kept_own {
        let found = Sweep {
            from: right_kept,
            from_norm: right_norm,
            to: &left_kept,
            to_post: &postings(&left_kept, n_keys),
            to_norm: &left_norm,
            to_sig: &left_sig,
            weight: &weight,
            k,
            dedupe,
        }
        .run(threads);
        pairs.extend(found.into_iter().map(|(j, i)| (i, j)));
    }
    drop((left_kept, right_kept_own));

    // Equality rules: every pair sharing a rule's full value, unless the block is large.
    let block_cap = cap.min(EQUALITY_BLOCK);
    for (rule_no, rule) in blocking.equality.iter().enumerate() {
        let key_of = |t: &Table, row: usize| -> Option<String> {
            let mut parts = Vec::with_capacity(rule.len());
            for f in rule {
                let v = text::normalise(&raw_value(t, &[t.column(f)], row));
                if v.is_empty() {
                    return None;
                }
                parts.push(v);
            }
            Some(format!("{rule_no}\u{1f}{}", parts.join("\u{1f}")))
        };
        let mut blocks: FxHashMap<String, (Vec<u32>, Vec<u32>)> = FxHashMap::default();
        for row in 0..n_left {
            if let Some(key) = key_of(left, row) {
                blocks.entry(key).or_default().0.push(row as u32);
            }
        }
        if let Some(r) = right {
            for row in 0..r.len() {
                if let Some(key) = key_of(r, row) {
                    blocks.entry(key).or_default().1.push(row as u32);
                }
            }
        }
        for (ls, rs) in blocks.values() {
            if dedupe {
                if ls.len() > block_cap {
                    continue;
                }
                for (x, a) in ls.iter().enumerate() {
                    for b in &ls[x + 1..] {
                        pairs.push((*a.min(b), *a.max(b)));
                    }
                }
            } else {
                if ls.len() > block_cap || rs.len() > block_cap {
                    continue;
                }
                for a in ls {
                    for b in rs {
                        pairs.push((*a, *b));
                    }
                }
            }
        }
    }
    sorted_unique(pairs, n_left)
}

/// One side's sweep over the other side's index.
struct Sweep<'a> {
    /// Each record's kept keys, in key order.
    from: &'a Lists,
    from_norm: &'a [f32],
    /// The other side's kept keys, in key order.
    to: &'a Lists,
    /// Key → its holders on the other side.
    to_post: &'a Lists,
    to_norm: &'a [f32],
    /// The other side's key signatures (see [`signatures`]).
    to_sig: &'a [u64],
    weight: &'a [f32],
    k: usize,
    dedupe: bool,
}

/// A record on the other side, as a sweep sees it.
#[derive(Clone, Copy)]
struct Slot {
    /// The weight of the keys shared so far.
    shared: f32,
    /// Its norm and signature, beside the sum: all three are read at random, and one cache
    /// line then serves them.
    norm: f32,
    sig: u64,
}

/// A thread's scratch space for [`Sweep::run`].
struct SweepScratch {
    slots: Vec<Slot>,
    touched: Vec<u32>,
    keys: Vec<(u32, u32)>,
    skipped: Vec<u32>,
    skipped_bits: Vec<(u64, f32)>,
    shared: Vec<(f32, u32)>,
    best: Vec<(f32, u32)>,
}

/// Best first; equal scores go to the lower row, so that the top k are one and the same.
fn better(x: &(f32, u32), y: &(f32, u32)) -> std::cmp::Ordering {
    y.0.total_cmp(&x.0).then(x.1.cmp(&y.1))
}

/// The k best of a stream of scored rows: a row worse than the k-th best so far is dropped at
/// once, and the list is cut back to k whenever it doubles.
struct TopK<'a> {
    k: usize,
    best: &'a mut Vec<(f32, u32)>,
    kth: Option<(f32, u32)>,
}

impl<'a> TopK<'a> {
    fn new(k: usize, best: &'a mut Vec<(f32, u32)>) -> Self {
        best.clear();
        TopK { k, best, kth: None }
    }

    /// Whether `row` could still be among the k best.
    fn admits(&self, row: &(f32, u32)) -> bool {
        self.kth.is_none_or(|kth| better(row, &kth).is_le())
    }

    fn offer(&mut self, row: (f32, u32)) {
        if !self.admits(&row) {
            return;
        }
        self.best.push(row);
        if self.best.len() >= 2 * self.k {
            self.cut();
            self.kth = Some(self.best[self.k - 1]);
        }
    }

    fn cut(&mut self) {
        if self.best.len() > self.k {
            self.best.select_nth_unstable_by(self.k - 1, better);
            self.best.truncate(self.k);
        }
    }
}

impl Sweep<'_> {
    /// For each record, its top-k on the other side by key similarity (the weighted cosine of
    /// the two kept key sets), as pairs (record, other).
    fn run(&self, threads: usize) -> Vec<(u32, u32)> {
        let pieces = parallel::map_pieces(
            self.from.len(),
            PIECE,
            threads,
            || SweepScratch {
                slots: self
                    .to_norm
                    .iter()
                    .zip(self.to_sig)
                    .map(|(norm, sig)| Slot {
                        shared: 0.0,
                        norm: *norm,
                        sig: *sig,
                    })
                    .collect(),
                touched: Vec::new(),
                keys: Vec::new(),
                skipped: Vec::new(),
                skipped_bits: Vec::new(),
                shared: Vec::new(),
                best: Vec::new(),
            },
            |scratch, rows| {
                let mut out = Vec::with_capacity(rows.len() * self.k);
                for a in rows {
                    self.top_k(a, scratch, &mut out);
                }
                out
            },
        );
        pieces.concat()
    }

    fn top_k(&self, a: usize, s: &mut SweepScratch, out: &mut Vec<(u32, u32)>) {
        // Walk the holders of the rarest keys, as far as the budget goes; the keys left over
        // are checked only against the records the walk found.
        s.keys.clear();
        s.keys.extend(
            self.from
                .of(a)
                .iter()
                .map(|key| (self.to_post.of(*key as usize).len() as u32, *key)),
        );
        s.keys.sort_unstable();
        let mut work = 0;
        let mut walked = 0;
        for (holders, _) in &s.keys {
            if work + *holders as usize > WORK_PER_RECORD {
                break;
            }
            work += *holders as usize;
            walked += 1;
        }
        s.skipped.clear();
        s.skipped
            .extend(s.keys[walked..].iter().map(|(_, key)| *key));
        s.skipped.sort_unstable();
        let skipped_holders: usize = s.keys[walked..].iter().map(|(h, _)| *h as usize).sum();
        s.keys.truncate(walked);
        // Summed in key order, so that a score does not depend on which side found the pair.
        s.keys.sort_unstable_by_key(|(_, key)| *key);
        // Every holder is written to `touched`, and the end moves on only at a first touch:
        // a branch there would be mispredicted half the time.
        s.touched.resize(work.max(s.touched.len()), 0);
        let mut touched = 0;
        for (_, key) in &s.keys {
            let w = self.weight[*key as usize];
            for b in self.to_post.of(*key as usize) {
                let slot = &mut s.slots[*b as usize];
                s.touched[touched] = *b;
                touched += usize::from(slot.shared == 0.0);
                slot.shared += w;
            }
        }
        let norm_a = self.from_norm[a];
        let touched = &s.touched[..touched];
        let mut top = TopK::new(self.k, &mut s.best);
        // With keys skipped, these scores are lower bounds, and a record found by whole-value
        // keys alone may still share a skipped key; without, they are final.
        let last = s.skipped.is_empty();
        for b in touched {
            let slot = &s.slots[*b as usize];
            if !(self.dedupe && *b as usize == a) && (!last || slot.shared > REAL) {
                top.offer((slot.shared / (norm_a * slot.norm), *b));
            }
        }
        top.cut();
        if !s.skipped.is_empty() {
            // The walked keys give each record found a lower bound on its score. The k best
            // by that bound are scored in full, and the k-th of those scores is a floor: a
            // record whose upper bound (its signature may hold the skipped keys) is below it
            // is out. The rest are scored in full.
            let full = |shared: f32, b: u32| {
                add_shared(shared, &s.skipped, self.to.of(b as usize), self.weight)
                    / (norm_a * self.to_norm[b as usize])
            };
            let floor = (s.best.len() == self.k).then(|| {
                s.best
                    .iter()
                    .map(|(_, b)| full(s.slots[*b as usize].shared, *b))
                    .fold(f32::INFINITY, f32::min)
            });
            s.skipped_bits.clear();
            s.skipped_bits.extend(
                s.skipped
                    .iter()
                    .map(|k| (key_bit(*k), self.weight[*k as usize])),
            );
            let any_bit = s.skipped_bits.iter().fold(0, |all, (bit, _)| all | bit);
            s.shared.clear();
            for b in touched {
                let slot = &s.slots[*b as usize];
                if self.dedupe && *b as usize == a {
                    continue;
                }
                if let Some(floor) = floor {
                    let mut upper = slot.shared;
                    if slot.sig & any_bit != 0 {
                        for (bit, w) in &s.skipped_bits {
                            if slot.sig & bit != 0 {
                                upper += w;
                            }
                        }
                    }
                    if upper / (norm_a * slot.norm) < floor {
                        continue;
                    }
                }
                s.shared.push((slot.shared, *b));
            }
            // Scoring a record in full reads its key list, a cache miss or two; walking a
            // skipped key's holders reads them in a row. Whichever is less work.
            if s.shared.len() * 32 > skipped_holders {
                for key in &s.skipped {
                    let w = self.weight[*key as usize];
                    for b in self.to_post.of(*key as usize) {
                        let slot = &mut s.slots[*b as usize];
                        if slot.shared > 0.0 {
                            slot.shared += w;
                        }
                    }
                }
                for (shared, b) in s.shared.iter_mut() {
                    *shared = s.slots[*b as usize].shared;
                }
            } else {
                for (shared, b) in s.shared.iter_mut() {
                    *shared = add_shared(*shared, &s.skipped, self.to.of(*b as usize), self.weight);
                }
            }
            let mut top = TopK::new(self.k, &mut s.best);
            for (shared, b) in &s.shared {
                if *shared > REAL {
                    top.offer((shared / (norm_a * self.to_norm[*b as usize]), *b));
                }
            }
            top.cut();
        }
        for b in touched {
            s.slots[*b as usize].shared = 0.0;
        }
        out.extend(s.best.iter().map(|(_, b)| (a as u32, *b)));
    }
}

/// The bit a key sets in a record's signature: one of 64, by a hash of the key.
fn key_bit(key: u32) -> u64 {
    1 << (u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

/// Each record's signature: the bits of its kept keys, so that "might it hold this key?" is
/// answered without reading its key list (no means surely not).
fn signatures(lists: &Lists) -> Vec<u64> {
    (0..lists.len())
        .map(|r| lists.of(r).iter().fold(0, |sig, k| sig | key_bit(*k)))
        .collect()
}

/// `sum` plus the weight of each key the sorted key lists `x` and `y` share, added in key
/// order (the order a walk over the keys' holders adds them in, so both give the same sum).
fn add_shared(mut sum: f32, x: &[u32], y: &[u32], weight: &[f32]) -> f32 {
    let (mut i, mut j) = (0, 0);
    // The lists step on by flags, not by a three-way branch that is mispredicted at random.
    while i < x.len() && j < y.len() {
        let (a, b) = (x[i], y[j]);
        if a == b {
            sum += weight[a as usize];
        }
        i += usize::from(a <= b);
        j += usize::from(b <= a);
    }
    sum
}

/// Each record's kept keys (those with a weight), in key order.
fn kept_keys(lists: &Lists, weight: &[f32], threads: usize) -> Lists {
    let pieces = parallel::map_pieces(
        lists.len(),
        PIECE,
        threads,
        || (),
        |_, rows| {
            let mut lens = Vec::with_capacity(rows.len());
            let mut items: Vec<u32> = Vec::new();
            for r in rows {
                let from = items.len();
                items.extend(lists.of(r).iter().filter(|k| weight[**k as usize] > 0.0));
                items[from..].sort_unstable();
                lens.push(items.len() - from);
            }
            (lens, items)
        },
    );
    let mut start = Vec::with_capacity(lists.len() + 1);
    start.push(0);
    let mut items = Vec::new();
    for (lens, piece) in pieces {
        for len in lens {
            start.push(start[start.len() - 1] + len);
        }
        items.extend(piece);
    }
    Lists { start, items }
}

/// Key → the records holding it, each list in record order.
fn postings(lists: &Lists, n_keys: usize) -> Lists {
    let mut start = vec![0usize; n_keys + 1];
    for k in &lists.items {
        start[*k as usize + 1] += 1;
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut fill = start.clone();
    let mut items = vec![0u32; start[n_keys]];
    for r in 0..lists.len() {
        for k in lists.of(r) {
            items[fill[*k as usize]] = r as u32;
            fill[*k as usize] += 1;
        }
    }
    Lists { start, items }
}

/// `pairs` sorted and without repeats, by a counting sort on the left row (linear, where a
/// comparison sort of tens of millions of pairs is not).
fn sorted_unique(pairs: Vec<(u32, u32)>, n_left: usize) -> Vec<(u32, u32)> {
    let mut start = vec![0usize; n_left + 1];
    for (i, _) in &pairs {
        start[*i as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut fill = start.clone();
    let mut right = vec![0u32; pairs.len()];
    for (i, j) in &pairs {
        right[fill[*i as usize]] = *j;
        fill[*i as usize] += 1;
    }
    drop(pairs);
    drop(fill);
    let mut out = Vec::with_capacity(right.len());
    for i in 0..n_left {
        let row = &mut right[start[i]..start[i + 1]];
        row.sort_unstable();
        let mut last = None;
        for j in row.iter() {
            if last != Some(*j) {
                out.push((i as u32, *j));
                last = Some(*j);
            }
        }
    }
    out
}

/// Each record's blocking keys, interned into `ids`, unique.
fn record_keys(
    blocking: &Blocking,
    table: &Table,
    ids: &mut FxHashMap<u64, u32>,
    walk_only: &mut Vec<bool>,
    threads: usize,
) -> Lists {
    let token_cols: Vec<usize> = blocking
        .token_fields
        .iter()
        .filter_map(|f| table.column(f))
        .collect();
    let qgram_cols: Vec<usize> = blocking
        .qgram_fields
        .iter()
        .filter_map(|f| table.column(f))
        .collect();
    let n = table.len();
    let mut start = Vec::with_capacity(n + 1);
    start.push(0);
    let mut items = Vec::new();
    for batch in (0..n).step_by(BATCH) {
        let end = (batch + BATCH).min(n);
        let hashed = parallel::map_pieces(
            end - batch,
            PIECE,
            threads,
            Vec::new,
            |chars: &mut Vec<char>, rows| {
                let mut ends = Vec::with_capacity(rows.len());
                let mut hashes = Vec::new();
                for row in rows {
                    let from = hashes.len();
                    let row = &table.rows[batch + row];
                    for c in &token_cols {
                        for w in text::words(&row[*c]) {
                            // One letter says nothing; one digit (a street number) may.
                            if w.chars().nth(1).is_some() || w.chars().all(|c| c.is_ascii_digit()) {
                                hashes.push(KeyHash::new(b'w').str(&w).key());
                            }
                        }
                    }
                    for c in &qgram_cols {
                        let value = text::normalise(&row[*c]);
                        // A value of several words (an address) is also one key as a whole:
                        // rarer than any of its words or q-grams, it leads a record to its
                        // exact twins within a small walk on large inputs. It only leads: its
                        // weight is nil (see WALK_ONLY), so scores are those of the other keys.
                        if value.contains(' ') {
                            hashes.push(KeyHash::new(b'v').str(&value).walk_only());
                        }
                        for w in value.split(' ').filter(|w| w.len() >= 3) {
                            chars.clear();
                            chars.push('^');
                            chars.extend(w.chars());
                            chars.push('$');
                            for g in chars.windows(3) {
                                hashes.push(g.iter().fold(KeyHash::new(b'q'), KeyHash::char).key());
                            }
                        }
                    }
                    hashes[from..].sort_unstable();
                    let mut kept = from;
                    for x in from..hashes.len() {
                        if x == from || hashes[x] != hashes[kept - 1] {
                            hashes[kept] = hashes[x];
                            kept += 1;
                        }
                    }
                    hashes.truncate(kept);
                    ends.push(hashes.len());
                }
                (ends, hashes)
            },
        );
        for (ends, hashes) in hashed {
            let mut from = 0;
            for end in ends {
                for h in &hashes[from..end] {
                    let next = ids.len() as u32;
                    let id = *ids.entry(*h).or_insert(next);
                    if id == next {
                        walk_only.push(KeyHash::is_walk_only(*h));
                    }
                    items.push(id);
                }
                start.push(items.len());
                from = end;
            }
        }
    }
    Lists { start, items }
}

/// FNV-1a over a tag and the key's bytes: keys are only compared, never read back, and at 64
/// bits a collision merely merges two rare keys.
#[derive(Clone, Copy)]
struct KeyHash(u64);

impl KeyHash {
    fn new(tag: u8) -> KeyHash {
        KeyHash(0xcbf2_9ce4_8422_2325).byte(tag)
    }

    fn byte(self, b: u8) -> KeyHash {
        KeyHash((self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    fn str(self, s: &str) -> KeyHash {
        s.bytes().fold(self, KeyHash::byte)
    }

    fn char(self, c: &char) -> KeyHash {
        self.str(c.encode_utf8(&mut [0; 4]))
    }

    /// The finished hash of a key that is scored.
    fn key(self) -> u64 {
        self.0 & !1
    }

    /// The finished hash of a walk-only key: its low bit set, every other key's clear.
    fn walk_only(self) -> u64 {
        self.0 | 1
    }

    fn is_walk_only(h: u64) -> bool {
        h & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> Table {
        Table::from_csv(csv.as_bytes(), "t.csv").unwrap()
    }

    #[test]
    fn finds_shared_tokens_and_skips_strangers() {
        let l = table("id,name\n1,alpha widget 100\n2,beta gadget\n3,gamma gizmo\n");
        let r = table("id,name\na,widget alpha\nb,gadget beta deluxe\nc,omega\n");
        let blocking = Blocking {
            token_fields: vec!["name".into()],
            qgram_fields: vec![],
            top_k: 2,
            max_key_frequency: None,
            equality: vec![],
        };
        let pairs = candidates(&blocking, &l, Some(&r));
        assert!(
            pairs.contains(&(0, 0)) && pairs.contains(&(1, 1)),
            "{pairs:?}"
        );
        assert!(!pairs.iter().any(|p| p.1 == 2), "{pairs:?}");
    }

    #[test]
    fn a_whole_value_leads_but_never_makes_a_pair_alone() {
        // "ab cd" has no word of three letters, so no q-grams: only its whole-value key.
        let l = table("id,addr\n1,ab cd\n2,abc de\n");
        let r = table("id,addr\na,ab cd\nb,abc de\n");
        let blocking = Blocking {
            token_fields: vec![],
            qgram_fields: vec!["addr".into()],
            top_k: 5,
            max_key_frequency: None,
            equality: vec![],
        };
        assert_eq!(candidates(&blocking, &l, Some(&r)), vec![(1, 1)]);
    }

    #[test]
    fn shared_weight_adds_the_common_keys_in_order() {
        let weight: Vec<f32> = (0..10).map(|k| 1.0 + k as f32 / 8.0).collect();
        let cases: [(&[u32], &[u32]); 4] = [
            (&[1, 3, 5, 7], &[0, 3, 4, 7, 9]),
            (&[], &[1, 2]),
            (&[2, 4, 6], &[1, 3, 5]),
            (&[0, 1, 2, 9], &[0, 1, 2, 9]),
        ];
        for (x, y) in cases {
            let expected = x
                .iter()
                .filter(|k| y.contains(k))
                .fold(0.5, |sum, k| sum + weight[*k as usize]);
            assert_eq!(add_shared(0.5, x, y, &weight), expected, "{x:?} {y:?}");
            assert_eq!(add_shared(0.5, y, x, &weight), expected, "{y:?} {x:?}");
        }
    }

    #[test]
    fn dedupe_pairs_are_ordered_and_equality_keys_join() {
        let t = table("id,name,dob\n1,anna smith,1990-01-01\n2,ana smyth,1990-01-01\n3,bob jones,1970-05-05\n");
        let blocking = Blocking {
            token_fields: vec![],
            qgram_fields: vec![],
            top_k: 1,
            max_key_frequency: None,
            equality: vec![vec!["dob".into()]],
        };
        assert_eq!(candidates(&blocking, &t, None), vec![(0, 1)]);
    }
}
