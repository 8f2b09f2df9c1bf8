//! Candidate pairs without comparing every pair: an inverted index over words, q-grams and
//! identifiers, pruned by key frequency, keeping each record's top-k neighbours, plus equality
//! keys.

use super::compare::raw_value;
use super::spec::Blocking;
use super::table::Table;
use super::text;
use std::collections::HashMap;

/// Index work allowed per record (pairs of key holders visited), before common keys are shed.
const WORK_PER_RECORD: u64 = 4_000;

/// The candidate pairs (left row, right row), sorted and unique; in dedupe `left < right`.
pub(crate) fn candidates(
    blocking: &Blocking,
    left: &Table,
    right: Option<&Table>,
) -> Vec<(u32, u32)> {
    let mut keys: HashMap<u64, u32> = HashMap::new();
    let left_keys = record_keys(blocking, left, &mut keys);
    let right_keys = right.map(|r| record_keys(blocking, r, &mut keys));
    let n_keys = keys.len();
    let n_left = left.len();
    let n_right = right.map_or(n_left, Table::len);

    let postings = |recs: &[Vec<u32>]| -> Vec<Vec<u32>> {
        let mut p = vec![Vec::new(); n_keys];
        for (r, ks) in recs.iter().enumerate() {
            for k in ks {
                p[*k as usize].push(r as u32);
            }
        }
        p
    };
    let left_post = postings(&left_keys);
    let right_post = right_keys.as_deref().map(postings);
    let right_post_ref = right_post.as_deref().unwrap_or(&left_post);
    let right_keys_ref = right_keys.as_deref().unwrap_or(&left_keys);

    // Keys held by many records cost quadratic work and say little about identity.
    let cap = blocking
        .max_key_frequency
        .unwrap_or_else(|| ((n_left.max(n_right) as f64).sqrt() * 3.0).max(20.0) as usize);
    let total = (n_left + if right.is_some() { n_right } else { 0 }) as f64;
    let sizes = |k: usize| -> (usize, usize) {
        let l = left_post[k].len();
        let r = if right.is_some() {
            right_post_ref[k].len()
        } else {
            l
        };
        (l, r)
    };
    let mut kept: Vec<bool> = (0..n_keys)
        .map(|k| {
            let (l, r) = sizes(k);
            l <= cap && r <= cap && l > 0 && r > 0
        })
        .collect();
    // The index sweep costs the sum over keys of (left holders × right holders). Past a budget
    // linear in the data, the most common keys go first, so large inputs stay near-linear.
    let budget = WORK_PER_RECORD * (n_left + n_right) as u64;
    let work = |k: usize| -> u64 {
        let (l, r) = sizes(k);
        l as u64 * r as u64
    };
    let mut spent: u64 = (0..n_keys).filter(|k| kept[*k]).map(work).sum();
    if spent > budget {
        let mut by_cost: Vec<usize> = (0..n_keys).filter(|k| kept[*k]).collect();
        by_cost.sort_unstable_by_key(|k| std::cmp::Reverse(work(*k)));
        for k in by_cost {
            if spent <= budget {
                break;
            }
            kept[k] = false;
            spent -= work(k);
        }
    }
    let weight: Vec<f32> = (0..n_keys)
        .map(|k| {
            if !kept[k] {
                return 0.0;
            }
            let (l, r) = sizes(k);
            let holders = if right.is_some() { l + r } else { l };
            ((total / holders as f64).ln().max(0.0) + 0.1).powi(2) as f32
        })
        .collect();
    let norm = |ks: &[u32]| -> f32 {
        ks.iter()
            .map(|k| weight[*k as usize])
            .sum::<f32>()
            .sqrt()
            .max(f32::EPSILON)
    };
    let left_norm: Vec<f32> = left_keys.iter().map(|k| norm(k)).collect();
    let right_norm: Vec<f32> = right_keys_ref.iter().map(|k| norm(k)).collect();

    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let dedupe = right.is_none();
    let k = blocking.top_k;
    // One sweep from the left finds each left record's top-k; the key similarity is symmetric,
    // so the same scores also fill each right record's top-k, and no second sweep is needed.
    let mut acc = vec![0f32; n_right];
    let mut touched: Vec<u32> = Vec::new();
    let mut best_of_right: Vec<Vec<(f32, u32)>> = if dedupe {
        Vec::new()
    } else {
        vec![Vec::new(); n_right]
    };
    let mut floor_of_right: Vec<f32> = vec![0.0; if dedupe { 0 } else { n_right }];
    let mut scored: Vec<(f32, u32)> = Vec::new();
    for (i, ks) in left_keys.iter().enumerate() {
        for key in ks {
            let w = weight[*key as usize];
            if w == 0.0 {
                continue;
            }
            for j in &right_post_ref[*key as usize] {
                if dedupe && *j as usize == i {
                    continue;
                }
                if acc[*j as usize] == 0.0 {
                    touched.push(*j);
                }
                acc[*j as usize] += w;
            }
        }
        scored.clear();
        for j in touched.drain(..) {
            let ju = j as usize;
            let score = acc[ju] / (left_norm[i] * right_norm[ju]);
            acc[ju] = 0.0;
            scored.push((score, j));
            if !dedupe && score > floor_of_right[ju] {
                let best = &mut best_of_right[ju];
                if best.len() < k {
                    best.push((score, i as u32));
                } else if let Some(weakest) = best.iter_mut().min_by(|a, b| a.0.total_cmp(&b.0)) {
                    *weakest = (score, i as u32);
                }
                if best.len() == k {
                    floor_of_right[ju] = best.iter().map(|b| b.0).fold(f32::INFINITY, f32::min);
                }
            }
        }
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
        }
        for (_, j) in &scored {
            let (a, b) = (i as u32, *j);
            pairs.push(if dedupe { (a.min(b), a.max(b)) } else { (a, b) });
        }
    }
    for (j, best) in best_of_right.iter().enumerate() {
        pairs.extend(best.iter().map(|(_, i)| (*i, j as u32)));
    }

    // Equality rules: every pair sharing a rule's full value, unless the block is huge.
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
        let mut blocks: HashMap<String, (Vec<u32>, Vec<u32>)> = HashMap::new();
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
        for (_, (ls, rs)) in blocks {
            if dedupe {
                if ls.len() > cap {
                    continue;
                }
                for (x, a) in ls.iter().enumerate() {
                    for b in &ls[x + 1..] {
                        pairs.push((*a.min(b), *a.max(b)));
                    }
                }
            } else {
                if ls.len() > cap || rs.len() > cap {
                    continue;
                }
                for a in &ls {
                    for b in &rs {
                        pairs.push((*a, *b));
                    }
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Each record's blocking keys, interned into `keys`, sorted and unique.
fn record_keys(blocking: &Blocking, table: &Table, keys: &mut HashMap<u64, u32>) -> Vec<Vec<u32>> {
    let token_cols: Vec<Option<usize>> = blocking
        .token_fields
        .iter()
        .map(|f| table.column(f))
        .collect();
    let qgram_cols: Vec<Option<usize>> = blocking
        .qgram_fields
        .iter()
        .map(|f| table.column(f))
        .collect();
    let mut intern = |tag: u8, k: &str| -> u32 {
        let next = keys.len() as u32;
        *keys.entry(key_hash(tag, k)).or_insert(next)
    };
    (0..table.len())
        .map(|row| {
            let mut ks = Vec::new();
            for c in token_cols.iter().flatten() {
                for w in text::words(&table.rows[row][*c]) {
                    // One letter says nothing; one digit (a street number) may.
                    if w.chars().count() >= 2 || w.chars().all(|c| c.is_ascii_digit()) {
                        ks.push(intern(b'w', &w));
                    }
                }
            }
            let mut gram = String::new();
            for c in qgram_cols.iter().flatten() {
                for w in text::normalise(&table.rows[row][*c])
                    .split(' ')
                    .filter(|w| w.len() >= 3)
                {
                    let chars: Vec<char> = std::iter::once('^')
                        .chain(w.chars())
                        .chain(std::iter::once('$'))
                        .collect();
                    for g in chars.windows(3) {
                        gram.clear();
                        gram.extend(g);
                        ks.push(intern(b'q', &gram));
                    }
                }
            }
            ks.sort_unstable();
            ks.dedup();
            ks
        })
        .collect()
}

/// FNV-1a over a tag and the key's bytes: keys are only compared, never read back, and at 64
/// bits a collision merely merges two rare keys.
fn key_hash(tag: u8, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(tag).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
