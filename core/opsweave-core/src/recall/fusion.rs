//! Reciprocal rank fusion with an optional recency decay, each fused hit explained.
//!
//! RRF (Cormack, Clarke and Büttcher, 2009) scores an item `Σ w / (k + rank)` over the rankers
//! that found it. It needs no score calibration between rankers (a cosine and a BM25 score are not
//! comparable), which is why hybrid search uses it; `k` = 60 is the constant from the paper.

use crate::{Error, RecordId, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Who produced a ranked list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Ranker {
    /// Dense k-NN over embeddings (score: cosine similarity).
    Dense,
    /// BM25 over the full-text index (score: BM25, higher is better).
    Bm25,
}

/// One ranker's list, best first, with the ranker's own scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// The ranker.
    pub ranker: Ranker,
    /// Ids with the ranker's score, best first; a repeated id keeps its first (best) place.
    pub hits: Vec<(RecordId, f64)>,
}

/// Reciprocal rank fusion settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fusion {
    /// The RRF constant: larger values flatten the gap between top and lower ranks.
    pub k: f64,
    /// Weight of the dense ranker's votes.
    pub dense_weight: f64,
    /// Weight of the BM25 ranker's votes.
    pub bm25_weight: f64,
}

impl Default for Fusion {
    fn default() -> Self {
        Self {
            k: 60.0,
            dense_weight: 1.0,
            bm25_weight: 1.0,
        }
    }
}

impl Fusion {
    /// Checks that the constant and weights are finite and non-negative (k > 0).
    pub fn validate(&self) -> Result<()> {
        if !(self.k.is_finite() && self.k > 0.0) {
            return Err(
                Error::invalid(format!("fusion k must be above 0, not {}", self.k))
                    .on_field("fusion.k"),
            );
        }
        for (name, w) in [
            ("fusion.dense_weight", self.dense_weight),
            ("fusion.bm25_weight", self.bm25_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(
                    Error::invalid(format!("{name} must be 0 or more, not {w}")).on_field(name)
                );
            }
        }
        Ok(())
    }

    /// The weight of `ranker`'s votes.
    pub fn weight(&self, ranker: Ranker) -> f64 {
        match ranker {
            Ranker::Dense => self.dense_weight,
            Ranker::Bm25 => self.bm25_weight,
        }
    }
}

/// How much age lowers a hit: its fused score is multiplied by
/// `(1 − weight) + weight × 0.5^(age / half_life)`, so `weight` is the most it can lose.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recency {
    /// Age in days at which the decaying part is halved.
    pub half_life_days: f64,
    /// Share of the score that decays, in [0, 1].
    #[serde(default = "full_weight")]
    pub weight: f64,
}

fn full_weight() -> f64 {
    1.0
}

impl Recency {
    /// A decay with this half-life that can take the whole score.
    pub fn half_life(days: f64) -> Self {
        Self {
            half_life_days: days,
            weight: 1.0,
        }
    }

    /// Checks the half-life (> 0) and weight (in [0, 1]).
    pub fn validate(&self) -> Result<()> {
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return Err(Error::invalid(format!(
                "recency half-life must be above 0 days, not {}",
                self.half_life_days
            ))
            .on_field("recency.half_life_days"));
        }
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(Error::invalid(format!(
                "recency weight must be between 0 and 1, not {}",
                self.weight
            ))
            .on_field("recency.weight"));
        }
        Ok(())
    }
}

/// The factor [`Recency`] applies at `age_days` (ages below 0, from clock skew, count as 0).
pub fn recency_factor(recency: &Recency, age_days: f64) -> f64 {
    let age = if age_days.is_finite() {
        age_days.max(0.0)
    } else {
        0.0
    };
    (1.0 - recency.weight) + recency.weight * 0.5f64.powf(age / recency.half_life_days)
}

/// Where one ranker placed a fused hit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RankerHit {
    /// The ranker.
    pub ranker: Ranker,
    /// One-based rank in its list.
    pub rank: usize,
    /// The ranker's own score.
    pub score: f64,
    /// What this placing added to the fused score: `weight / (k + rank)`.
    pub contribution: f64,
}

/// A fused hit and why it scored what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FusedHit {
    /// The record.
    pub id: RecordId,
    /// The final score: `rrf × recency` (just `rrf` without recency).
    pub score: f64,
    /// The reciprocal rank fusion score: the sum of the contributions.
    pub rrf: f64,
    /// The recency factor, when recency was asked for and the record's age is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recency: Option<f64>,
    /// The record's age in days, when recency was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<f64>,
    /// Each ranker that found it, in ranker order.
    pub found_by: Vec<RankerHit>,
}

impl FusedHit {
    /// The best (lowest) rank any ranker gave it.
    pub fn best_rank(&self) -> usize {
        self.found_by
            .iter()
            .map(|h| h.rank)
            .min()
            .unwrap_or(usize::MAX)
    }
}

/// Fuses ranked lists by reciprocal rank; with `recency`, scales each score by
/// [`recency_factor`] of the age `age_days` gives (unknown ages are not scaled).
///
/// The result holds every id of every list once, best first; ties go to the better best rank,
/// then the lower id, so the order is deterministic.
pub fn fuse(
    lists: &[Ranked],
    fusion: &Fusion,
    recency: Option<&Recency>,
    age_days: impl Fn(RecordId) -> Option<f64>,
) -> Vec<FusedHit> {
    let mut at: HashMap<RecordId, usize> = HashMap::new();
    let mut hits: Vec<FusedHit> = Vec::new();
    for list in lists {
        let weight = fusion.weight(list.ranker);
        let mut rank = 0;
        for &(id, score) in &list.hits {
            let slot = *at.entry(id).or_insert_with(|| {
                hits.push(FusedHit {
                    id,
                    score: 0.0,
                    rrf: 0.0,
                    recency: None,
                    age_days: None,
                    found_by: Vec::new(),
                });
                hits.len() - 1
            });
            let hit = &mut hits[slot];
            if hit.found_by.iter().any(|h| h.ranker == list.ranker) {
                continue; // a repeat within one list: its first place stands
            }
            rank += 1;
            let contribution = weight / (fusion.k + rank as f64);
            hit.rrf += contribution;
            hit.found_by.push(RankerHit {
                ranker: list.ranker,
                rank,
                score,
                contribution,
            });
        }
    }
    for hit in &mut hits {
        hit.found_by.sort_by_key(|h| h.ranker);
        hit.score = hit.rrf;
        if let Some(recency) = recency {
            hit.age_days = age_days(hit.id);
            if let Some(age) = hit.age_days {
                let factor = recency_factor(recency, age);
                hit.recency = Some(factor);
                hit.score = hit.rrf * factor;
            }
        }
    }
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.best_rank().cmp(&b.best_rank()))
            .then_with(|| a.id.cmp(&b.id))
    });
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn id(n: i64) -> RecordId {
        RecordId::from_raw(n)
    }

    fn list(ranker: Ranker, ids: &[i64]) -> Ranked {
        Ranked {
            ranker,
            hits: ids
                .iter()
                .enumerate()
                .map(|(i, &n)| (id(n), 1.0 / (i as f64 + 1.0)))
                .collect(),
        }
    }

    fn no_age(_: RecordId) -> Option<f64> {
        None
    }

    #[test]
    fn hand_computed_rrf() {
        // dense: a b c; bm25: c a. a = 1/61 + 1/62, c = 1/63 + 1/61, b = 1/62.
        let lists = [list(Ranker::Dense, &[1, 2, 3]), list(Ranker::Bm25, &[3, 1])];
        let fused = fuse(&lists, &Fusion::default(), None, no_age);
        let ids: Vec<i64> = fused.iter().map(|h| h.id.raw()).collect();
        assert_eq!(ids, [1, 3, 2]);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-12);
        assert!((fused[1].score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert!((fused[2].score - 1.0 / 62.0).abs() < 1e-12);
        let c = &fused[1];
        assert_eq!(c.found_by.len(), 2);
        assert_eq!(
            (c.found_by[0].ranker, c.found_by[0].rank),
            (Ranker::Dense, 3)
        );
        assert_eq!(
            (c.found_by[1].ranker, c.found_by[1].rank),
            (Ranker::Bm25, 1)
        );
        assert_eq!(c.found_by[1].score, 1.0);
        assert_eq!(c.recency, None);
    }

    #[test]
    fn recency_halves_at_the_half_life() {
        let r = Recency::half_life(30.0);
        assert!((recency_factor(&r, 0.0) - 1.0).abs() < 1e-12);
        assert!((recency_factor(&r, 30.0) - 0.5).abs() < 1e-12);
        assert!((recency_factor(&r, 60.0) - 0.25).abs() < 1e-12);
        assert!((recency_factor(&r, -5.0) - 1.0).abs() < 1e-12);
        let half = Recency {
            half_life_days: 30.0,
            weight: 0.5,
        };
        assert!((recency_factor(&half, 30.0) - 0.75).abs() < 1e-12);
        assert!(Recency::half_life(0.0).validate().is_err());
        assert!(Recency {
            half_life_days: 1.0,
            weight: 1.5
        }
        .validate()
        .is_err());
    }

    #[test]
    fn recency_reorders_an_old_top_hit() {
        // Both found once at rank 1 and 2; the top one is a year old, the other a day.
        let lists = [list(Ranker::Bm25, &[1, 2])];
        let ages = |r: RecordId| Some(if r.raw() == 1 { 365.0 } else { 1.0 });
        let fused = fuse(
            &lists,
            &Fusion::default(),
            Some(&Recency::half_life(30.0)),
            ages,
        );
        assert_eq!(fused[0].id, id(2));
        assert_eq!(fused[1].age_days, Some(365.0));
        let factor = fused[1].recency.unwrap();
        assert!((fused[1].score - fused[1].rrf * factor).abs() < 1e-15);
    }

    #[test]
    fn repeats_within_a_list_keep_their_first_place() {
        let lists = [list(Ranker::Dense, &[5, 5, 6])];
        let fused = fuse(&lists, &Fusion::default(), None, no_age);
        assert_eq!(fused.len(), 2);
        assert_eq!(fused[0].found_by[0].rank, 1);
        assert_eq!(fused[1].found_by[0].rank, 2);
    }

    fn lists_strategy() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
        (
            proptest::collection::vec(0i64..40, 0..30),
            proptest::collection::vec(0i64..40, 0..30),
        )
    }

    fn dedup(ids: &[i64]) -> Vec<i64> {
        let mut seen = HashSet::new();
        ids.iter().copied().filter(|i| seen.insert(*i)).collect()
    }

    proptest! {
        #[test]
        fn fused_is_the_union_once_best_first((a, b) in lists_strategy(), k in 1.0f64..200.0) {
            let fusion = Fusion { k, ..Fusion::default() };
            let lists = [list(Ranker::Dense, &a), list(Ranker::Bm25, &b)];
            let fused = fuse(&lists, &fusion, None, no_age);
            let union: HashSet<i64> = a.iter().chain(&b).copied().collect();
            let got: HashSet<i64> = fused.iter().map(|h| h.id.raw()).collect();
            prop_assert_eq!(fused.len(), union.len());
            prop_assert_eq!(got, union);
            for pair in fused.windows(2) {
                prop_assert!(pair[0].score >= pair[1].score);
            }
            for hit in &fused {
                let sum: f64 = hit.found_by.iter().map(|h| h.contribution).sum();
                prop_assert!((sum - hit.rrf).abs() < 1e-12);
                prop_assert_eq!(hit.score, hit.rrf);
                for h in &hit.found_by {
                    let source = if h.ranker == Ranker::Dense { dedup(&a) } else { dedup(&b) };
                    prop_assert_eq!(source[h.rank - 1], hit.id.raw());
                    prop_assert!((h.contribution - 1.0 / (k + h.rank as f64)).abs() < 1e-12);
                }
            }
        }

        #[test]
        fn first_in_every_list_wins(rest in proptest::collection::vec(1i64..40, 0..20), top_in_b in any::<bool>()) {
            let a: Vec<i64> = std::iter::once(0).chain(rest.iter().copied()).collect();
            let mut b: Vec<i64> = rest.iter().rev().copied().collect();
            if top_in_b { b.insert(0, 0); }
            let fused = fuse(&[list(Ranker::Dense, &a), list(Ranker::Bm25, &b)], &Fusion::default(), None, no_age);
            if top_in_b {
                prop_assert_eq!(fused[0].id, id(0));
            }
        }

        #[test]
        fn a_second_vote_never_lowers_a_score((a, b) in lists_strategy()) {
            let alone = fuse(&[list(Ranker::Dense, &a)], &Fusion::default(), None, no_age);
            let both = fuse(&[list(Ranker::Dense, &a), list(Ranker::Bm25, &b)], &Fusion::default(), None, no_age);
            for hit in &alone {
                let with = both.iter().find(|h| h.id == hit.id).map(|h| h.score);
                prop_assert!(with.is_some_and(|s| s >= hit.score));
            }
        }

        #[test]
        fn one_list_keeps_its_order(a in proptest::collection::vec(0i64..100, 0..50)) {
            let fused = fuse(&[list(Ranker::Bm25, &a)], &Fusion::default(), None, no_age);
            let got: Vec<i64> = fused.iter().map(|h| h.id.raw()).collect();
            prop_assert_eq!(got, dedup(&a));
        }

        #[test]
        fn recency_only_lowers_and_stays_bounded(
            (a, b) in lists_strategy(),
            half_life in 0.5f64..400.0,
            weight in 0.0f64..=1.0,
            ages in proptest::collection::vec(0.0f64..2000.0, 40),
        ) {
            let recency = Recency { half_life_days: half_life, weight };
            let lists = [list(Ranker::Dense, &a), list(Ranker::Bm25, &b)];
            let fused = fuse(&lists, &Fusion::default(), Some(&recency), |r| Some(ages[r.raw() as usize]));
            for hit in &fused {
                let f = hit.recency.unwrap_or(1.0);
                prop_assert!(f <= 1.0 && f >= 1.0 - weight - 1e-12);
                prop_assert!(hit.score <= hit.rrf + 1e-15);
            }
            for pair in fused.windows(2) {
                prop_assert!(pair[0].score >= pair[1].score);
            }
        }
    }
}
