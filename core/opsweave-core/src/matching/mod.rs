//! Entity resolution: find the records that are the same thing, across two sources (link) or
//! within one (dedupe).
//!
//! The pipeline is blocking → comparison → Fellegi–Sunter scoring → clustering, with no labels
//! and no tuning: [`MatchSpec::infer`] reads the data and picks comparisons, u comes from random
//! pairs, m and the match share from EM on the candidates. Every decided pair carries its
//! explanation (each comparison's similarity, level and weight).
//!
//! ```
//! use opsweave_core::matching::{run_link, Table};
//! let left = Table::from_csv("id,name\n1,Globex Corporation\n2,Initech\n".as_bytes(), "l.csv")?;
//! let right = Table::from_csv("id,name\na,Initech LLC\nb,Globex Corp\n".as_bytes(), "r.csv")?;
//! let outcome = run_link(&left, &right, None)?;
//! assert!(outcome.candidates.len() >= 2);
//! # Ok::<(), opsweave_core::Error>(())
//! ```

mod blocking;
pub mod cluster;
mod compare;
mod eval;
mod parallel;
mod resolve;
mod scoring;
mod spec;
mod table;
pub mod text;

pub use compare::similarity;
pub use eval::{evaluate_dedupe, evaluate_link, score_against_gold, Evaluation};
pub use resolve::{resolver_preset, Resolver, Side, RECORD_ATTRIBUTES, RESOLVER_PRESETS};
pub use scoring::{probability, Contribution, LevelModel, Model};
pub use spec::{
    Blocking, ClusterMode, Comparator, Comparison, FieldKind, InferredField, MatchMode, MatchSpec,
    Thresholds,
};
pub use table::{Gold, Table};

use crate::{Error, Result};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How many random pairs estimate u.
const U_SAMPLES: usize = 20_000;
/// EM stops after this many rounds if it has not converged.
const EM_ROUNDS: usize = 200;
/// Candidate pairs per piece of parallel comparison and scoring work.
const PIECE: usize = 262_144;

/// The decision band of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// Same entity.
    Match,
    /// Unsure: a person should look.
    Review,
    /// Different entities.
    NonMatch,
}

/// A scored pair with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPair {
    /// Row in the left (or only) table.
    pub left: usize,
    /// Row in the right table (dedupe: in the same table).
    pub right: usize,
    /// Id of the left record.
    pub left_id: String,
    /// Id of the right record.
    pub right_id: String,
    /// log2 odds of a match (prior included).
    pub score: f64,
    /// Match probability.
    pub probability: f64,
    /// The decision.
    pub band: Band,
    /// Each comparison's part in the score.
    pub explanation: Vec<Contribution>,
}

/// The result of one matching run.
#[derive(Debug, Clone, Serialize)]
pub struct MatchOutcome {
    /// The spec that ran (inferred when none was given).
    pub spec: MatchSpec,
    /// The fitted model.
    pub model: Model,
    /// Candidate pairs from blocking (left row, right row); in dedupe `left < right`.
    #[serde(skip)]
    pub candidates: Vec<(u32, u32)>,
    /// Pairs decided as matches (after clustering).
    pub matches: Vec<ScoredPair>,
    /// Pairs for a person to review.
    pub review: Vec<ScoredPair>,
    /// Dedupe: groups of rows that are one entity (singletons left out). Link: empty.
    pub clusters: Vec<Vec<usize>>,
}

impl MatchOutcome {
    /// The matched pairs as rows; in dedupe every pair inside a cluster, smaller row first.
    pub fn predicted_pairs(&self) -> Vec<(usize, usize)> {
        if self.spec.mode == MatchMode::Dedupe && self.spec.clustering == ClusterMode::Components {
            cluster::pairs_within(&self.clusters).collect()
        } else {
            self.matches
                .iter()
                .map(|p| {
                    if self.spec.mode == MatchMode::Dedupe {
                        (p.left.min(p.right), p.left.max(p.right))
                    } else {
                        (p.left, p.right)
                    }
                })
                .collect()
        }
    }
}

/// Links `left` to `right` with `spec`, or with the spec inferred from the data.
pub fn run_link(left: &Table, right: &Table, spec: Option<&MatchSpec>) -> Result<MatchOutcome> {
    run(left, Some(right), spec)
}

/// Finds the duplicates within `records` with `spec`, or with the spec inferred from the data.
pub fn run_dedupe(records: &Table, spec: Option<&MatchSpec>) -> Result<MatchOutcome> {
    run(records, None, spec)
}

/// Links `left` to `right` with m taken from known true pairs (`labels`, e.g. a reviewed
/// sample) instead of EM; u and the match share are still estimated from the data.
pub fn run_link_supervised(
    left: &Table,
    right: &Table,
    spec: Option<&MatchSpec>,
    labels: &Gold,
) -> Result<MatchOutcome> {
    run_with(left, Some(right), spec, Some(labels))
}

/// Dedupes `records` with m taken from known duplicate pairs instead of EM.
pub fn run_dedupe_supervised(
    records: &Table,
    spec: Option<&MatchSpec>,
    labels: &Gold,
) -> Result<MatchOutcome> {
    run_with(records, None, spec, Some(labels))
}

/// Scores `left` against `right` (or `left` within itself when `right` is `None`) with a model
/// fitted by an earlier run: no EM, so records that arrive later are judged by the same weights.
pub fn run_with_model(
    left: &Table,
    right: Option<&Table>,
    spec: &MatchSpec,
    model: &Model,
) -> Result<MatchOutcome> {
    if model.comparisons.len() != spec.comparisons.len() {
        return Err(Error::invalid(format!(
            "the saved model has {} comparisons but the spec has {}: run the full match again",
            model.comparisons.len(),
            spec.comparisons.len()
        )));
    }
    run_inner(left, right, Some(spec), None, Some(model))
}

fn run(left: &Table, right: Option<&Table>, spec: Option<&MatchSpec>) -> Result<MatchOutcome> {
    run_with(left, right, spec, None)
}

fn run_with(
    left: &Table,
    right: Option<&Table>,
    spec: Option<&MatchSpec>,
    labels: Option<&Gold>,
) -> Result<MatchOutcome> {
    run_inner(left, right, spec, labels, None)
}

fn run_inner(
    left: &Table,
    right: Option<&Table>,
    spec: Option<&MatchSpec>,
    labels: Option<&Gold>,
    fixed: Option<&Model>,
) -> Result<MatchOutcome> {
    let spec = match spec {
        Some(s) => s.clone(),
        None => MatchSpec::infer(left, right),
    };
    match (spec.mode, right) {
        (MatchMode::Link, None) => return Err(Error::invalid("a link spec needs two tables")),
        (MatchMode::Dedupe, Some(_)) => {
            return Err(Error::invalid("a dedupe spec takes one table"))
        }
        _ => {}
    }
    if spec.comparisons.is_empty() {
        let empty: Vec<String> = std::iter::once(left)
            .chain(right)
            .flat_map(|table| {
                table
                    .fields()
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, field)| {
                        let blank = table.rows.iter().all(|row| row[i + 1].trim().is_empty());
                        blank.then(|| format!("column `{field}` of {}", table.name))
                    })
            })
            .collect();
        let hint = if empty.is_empty() {
            String::new()
        } else {
            format!(
                "; empty in every row: {} (a misspelt field name?)",
                empty.join(", ")
            )
        };
        return Err(Error::invalid(format!(
            "nothing to compare: the tables share no field that could be compared (the spec has \
             no comparisons){hint}"
        )));
    }
    spec.validate(left, right)?;
    let dedupe = right.is_none();
    let n_left = left.len();
    let n_right = right.map_or(n_left, Table::len);

    let threads = parallel::threads();
    // Each comparison is prepared on its own (one per piece of work).
    let prepared = parallel::map_pieces(
        spec.comparisons.len(),
        1,
        threads,
        || (),
        |_, c| compare::prepare(&spec.comparisons[c.start], left, right),
    );
    let candidates = blocking::candidates(&spec.blocking, left, right);

    let width = spec.comparisons.len();
    // Similarities are computed once, piece by piece on every thread: EM needs their levels,
    // scoring their values. Each piece counts its level patterns; the counts are whole numbers,
    // so their sum does not depend on how the pieces were shared out.
    let pieces = parallel::map_pieces(
        candidates.len(),
        PIECE,
        threads,
        || (vec![scoring::MISSING; width], Vec::new()),
        |(levels, order): &mut (Vec<u8>, Vec<(u32, u32)>), range| {
            let mut sims = vec![f32::NAN; range.len() * width];
            let mut patterns: FxHashMap<Vec<u8>, f64> = FxHashMap::default();
            // The piece's pairs share a short run of left rows; taken in right-row order, the
            // right values are read front to back instead of at random, and one comparison at
            // a time, so that only its values compete for the cache.
            let pairs = &candidates[range];
            order.clear();
            order.extend(pairs.iter().enumerate().map(|(x, (_, j))| (*j, x as u32)));
            order.sort_unstable();
            for (c, (cmp, prep)) in spec.comparisons.iter().zip(&prepared).enumerate() {
                for (j, x) in order.iter() {
                    let i = pairs[*x as usize].0;
                    if let Some(s) = prep.similarity(cmp.comparator, i as usize, *j as usize) {
                        sims[*x as usize * width + c] = s as f32;
                    }
                }
            }
            for row in sims.chunks_exact(width) {
                for (c, cmp) in spec.comparisons.iter().enumerate() {
                    // Levels are cut on the stored (f32) value so that scoring agrees with EM.
                    levels[c] = if row[c].is_nan() {
                        scoring::MISSING
                    } else {
                        cmp.level_of(f64::from(row[c])) as u8
                    };
                }
                match patterns.get_mut(levels.as_slice()) {
                    Some(n) => *n += 1.0,
                    None => {
                        patterns.insert(levels.clone(), 1.0);
                    }
                }
            }
            (sims, patterns)
        },
    );
    let mut patterns: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    let mut sims: Vec<Vec<f32>> = Vec::with_capacity(pieces.len());
    for (piece_sims, piece_patterns) in pieces {
        for (pattern, n) in piece_patterns {
            *patterns.entry(pattern).or_default() += n;
        }
        sims.push(piece_sims);
    }
    let sims_of = |p: usize| -> &[f32] {
        let at = (p % PIECE) * width;
        &sims[p / PIECE][at..at + width]
    };
    let model = match fixed {
        Some(model) => model.clone(),
        None => {
            let u = scoring::estimate_u(
                &spec.comparisons,
                &prepared,
                n_left,
                n_right,
                dedupe,
                U_SAMPLES,
            );
            // Prior guess: about half the smaller side has a twin among the candidates.
            let lambda0 = 0.5 * n_left.min(n_right) as f64 / candidates.len().max(1) as f64;
            let known_m = labels.filter(|g| !g.pairs.is_empty()).map(|g| {
                let pairs: Vec<(usize, usize)> = g.pairs.iter().copied().collect();
                scoring::m_from_labels(&spec.comparisons, &prepared, &pairs)
            });
            scoring::fit(
                &spec.comparisons,
                &patterns,
                u,
                lambda0,
                EM_ROUNDS,
                spec.refine_u,
                known_m,
            )
        }
    };
    let scorer = scoring::Scorer::new(&model, &spec.comparisons, &prepared, dedupe);

    let review_cut = spec.thresholds.review;
    let kept = parallel::map_pieces(
        candidates.len(),
        PIECE,
        threads,
        || (),
        |_, range| {
            let mut kept = Vec::new();
            for p in range {
                let (i, j) = (candidates[p].0 as usize, candidates[p].1 as usize);
                let s = scorer.score_similarities(i, j, sims_of(p), None);
                if scoring::probability(s) >= review_cut {
                    kept.push((i, j, s, p));
                }
            }
            kept
        },
    );
    let mut scored: Vec<(usize, usize, f64)> = Vec::new();
    let mut scored_at: Vec<usize> = Vec::new();
    for (i, j, s, p) in kept.into_iter().flatten() {
        scored.push((i, j, s));
        scored_at.push(p);
    }

    let other = right.unwrap_or(left);
    let decide = |k: usize, band: Band| -> ScoredPair {
        let (i, j, _) = scored[k];
        let p = scored_at[k];
        let mut explanation = Vec::with_capacity(width);
        let score = scorer.score_similarities(i, j, sims_of(p), Some(&mut explanation));
        ScoredPair {
            left: i,
            right: j,
            left_id: left.id(i).to_string(),
            right_id: other.id(j).to_string(),
            score,
            probability: scoring::probability(score),
            band,
            explanation,
        }
    };
    let band_of = |s: f64| {
        if scoring::probability(s) >= spec.thresholds.matched {
            Band::Match
        } else {
            Band::Review
        }
    };
    let mut matches = Vec::new();
    let mut review = Vec::new();
    let mut clusters = Vec::new();
    match spec.clustering {
        ClusterMode::OneToOne => {
            for k in cluster::one_to_one(&scored) {
                let band = band_of(scored[k].2);
                let pair = decide(k, band);
                if band == Band::Match {
                    matches.push(pair);
                } else {
                    review.push(pair);
                }
            }
        }
        ClusterMode::Pairs | ClusterMode::Components => {
            for (k, (_, _, s)) in scored.iter().enumerate() {
                if band_of(*s) == Band::Match {
                    matches.push(decide(k, Band::Match));
                }
            }
            if spec.clustering == ClusterMode::Components {
                let n = if dedupe { n_left } else { n_left + n_right };
                let offset = if dedupe { 0 } else { n_left };
                let edges = matches.iter().map(|p| (p.left, p.right + offset));
                clusters = cluster::components(n, edges);
            }
            let mut cluster_of = HashMap::new();
            for (c, members) in clusters.iter().enumerate() {
                for m in members {
                    cluster_of.insert(*m, c);
                }
            }
            let offset = if dedupe { 0 } else { n_left };
            for (k, (i, j, s)) in scored.iter().enumerate() {
                if band_of(*s) == Band::Review {
                    let same = matches!((cluster_of.get(i), cluster_of.get(&(j + offset))), (Some(a), Some(b)) if a == b);
                    if !same {
                        review.push(decide(k, Band::Review));
                    }
                }
            }
        }
    }
    Ok(MatchOutcome {
        spec,
        model,
        candidates,
        matches,
        review,
        clusters,
    })
}

#[cfg(test)]
mod tests;
