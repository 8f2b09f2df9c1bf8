//! Retrieval quality against relevance judgements, as BEIR and trec_eval compute it.
//!
//! A document is relevant when its judged grade is above 0. nDCG uses the grade itself as the
//! gain (trec_eval's and pytrec_eval's convention) and `log2(rank + 1)` as the discount.

use std::collections::HashMap;
use std::hash::Hash;

/// Share of the relevant documents found in the first `k` of `ranked` (0 when none is relevant).
pub fn recall_at<T: Eq + Hash>(ranked: &[T], grades: &HashMap<T, u32>, k: usize) -> f64 {
    let relevant = grades.values().filter(|g| **g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| grades.get(d).is_some_and(|g| *g > 0))
        .count();
    found as f64 / relevant as f64
}

/// Normalised discounted cumulative gain of the first `k` of `ranked`.
pub fn ndcg_at<T: Eq + Hash>(ranked: &[T], grades: &HashMap<T, u32>, k: usize) -> f64 {
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| f64::from(grades.get(d).copied().unwrap_or(0)) * discount(i))
        .sum();
    let mut ideal: Vec<u32> = grades.values().copied().filter(|g| *g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| f64::from(*g) * discount(i))
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// One over the rank of the first relevant document in `ranked` (0 when none is there).
pub fn reciprocal_rank<T: Eq + Hash>(ranked: &[T], grades: &HashMap<T, u32>) -> f64 {
    ranked
        .iter()
        .position(|d| grades.get(d).is_some_and(|g| *g > 0))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// The `p`-th percentile (0 to 100) of `values` by the nearest-rank method (0 when empty).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grades(pairs: &[(&'static str, u32)]) -> HashMap<&'static str, u32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn recall_counts_relevant_in_the_cut() {
        let g = grades(&[("a", 1), ("b", 1), ("c", 0)]);
        let ranked = ["x", "a", "c", "b"];
        assert_eq!(recall_at(&ranked, &g, 1), 0.0);
        assert_eq!(recall_at(&ranked, &g, 2), 0.5);
        assert_eq!(recall_at(&ranked, &g, 4), 1.0);
        assert_eq!(recall_at(&ranked, &grades(&[("c", 0)]), 4), 0.0);
    }

    #[test]
    fn ndcg_by_hand() {
        // Relevant a (2) and b (1); ranked x a b.
        // DCG = 2/log2(3) + 1/log2(4) = 1.261860 + 0.5; IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.630930.
        let g = grades(&[("a", 2), ("b", 1)]);
        let got = ndcg_at(&["x", "a", "b"], &g, 10);
        let want = (2.0 / 3f64.log2() + 0.5) / (2.0 + 1.0 / 3f64.log2());
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!((got - 0.669_67).abs() < 1e-4);
        assert_eq!(ndcg_at(&["a", "b"], &g, 10), 1.0);
        // The cut drops b from both DCG and IDCG's second place.
        let cut = ndcg_at(&["b", "a"], &g, 1);
        assert!((cut - 0.5).abs() < 1e-12);
        assert_eq!(ndcg_at(&["x"], &grades(&[]), 10), 0.0);
    }

    #[test]
    fn reciprocal_rank_of_first_relevant() {
        let g = grades(&[("b", 1), ("c", 1)]);
        assert_eq!(reciprocal_rank(&["a", "b", "c"], &g), 0.5);
        assert_eq!(reciprocal_rank(&["a"], &g), 0.0);
        assert_eq!(reciprocal_rank(&["c"], &g), 1.0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
