//! Fellegi–Sunter scoring: u from random pairs, m and the match share by EM on the candidates,
//! term-frequency adjustment, and a per-comparison explanation of every score.

use super::compare::PreparedComparison;
use super::spec::{Comparator, Comparison};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A missing comparison (either value empty): it adds no evidence.
pub(crate) const MISSING: u8 = u8::MAX;

/// The fitted parameters of one comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelModel {
    /// Comparison name.
    pub name: String,
    /// P(level | match), one per level.
    pub m: Vec<f64>,
    /// P(level | non-match), one per level.
    pub u: Vec<f64>,
}

impl LevelModel {
    /// log2(m / u) of each level.
    pub fn weights(&self) -> Vec<f64> {
        self.m
            .iter()
            .zip(&self.u)
            .map(|(m, u)| (m / u).log2())
            .collect()
    }
}

/// The fitted Fellegi–Sunter model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Share of candidate pairs that are matches.
    pub lambda: f64,
    /// One entry per comparison, in spec order.
    pub comparisons: Vec<LevelModel>,
    /// EM iterations run.
    pub iterations: usize,
}

/// One comparison's part in a pair's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contribution {
    /// Comparison name.
    pub name: String,
    /// The comparator's similarity, absent when a value was missing.
    pub similarity: Option<f64>,
    /// The level the similarity fell in (0 = most similar), absent when missing.
    pub level: Option<usize>,
    /// The log2 Bayes factor this comparison adds.
    pub weight: f64,
}

/// A deterministic generator for sampling random pairs (the same data gives the same model).
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// u: level frequencies among random pairs, which are almost all non-matches.
pub(crate) fn estimate_u(
    comparisons: &[Comparison],
    prepared: &[PreparedComparison],
    n_left: usize,
    n_right: usize,
    dedupe: bool,
    samples: usize,
) -> Vec<Vec<f64>> {
    let mut rng = SplitMix::new(0x0b5e_a7e5);
    let mut counts: Vec<Vec<f64>> = comparisons
        .iter()
        .map(|c| vec![0.0; c.level_count()])
        .collect();
    let possible = if dedupe {
        n_left * n_left.saturating_sub(1) / 2
    } else {
        n_left * n_right
    };
    let draws = samples.min(possible.max(1) * 2);
    for _ in 0..draws {
        let i = rng.below(n_left);
        let j = rng.below(n_right);
        if dedupe && i == j {
            continue;
        }
        for (c, (cmp, prep)) in comparisons.iter().zip(prepared).enumerate() {
            if let Some(s) = prep.similarity(cmp.comparator, i, j) {
                counts[c][cmp.level_of(s)] += 1.0;
            }
        }
    }
    counts
        .into_iter()
        .map(|row| {
            // Unseen levels keep a little mass so that their weight stays finite.
            let total: f64 = row.iter().sum();
            let levels = row.len() as f64;
            row.iter()
                .map(|c| (c + 0.5) / (total + 0.5 * levels))
                .collect()
        })
        .collect()
}

/// How many matched pairs the prior belief about m counts as (see [`fit`]).
const PRIOR_MATCHES: f64 = 10.0;

/// The evidence, in bits, the prior gives a comparison's most similar level.
const PRIOR_TOP_BITS: f64 = 8.0;

/// Expectation-maximisation of m and λ on the candidates' level patterns, u held fixed.
pub(crate) fn fit(
    comparisons: &[Comparison],
    patterns: &BTreeMap<Vec<u8>, f64>,
    mut u: Vec<Vec<f64>>,
    lambda0: f64,
    max_iterations: usize,
    update_u: bool,
    known_m: Option<Vec<Vec<f64>>>,
) -> Model {
    let fixed_m = known_m.is_some();
    // EM starts by believing matches sit in the high levels, each level half as likely as the
    // one above it, and rarely in "different".
    let start: Vec<Vec<f64>> = comparisons
        .iter()
        .map(|c| {
            let n = c.level_count();
            let mut row: Vec<f64> = (0..n).map(|l| 0.5f64.powi(l as i32)).collect();
            row[n - 1] = 0.02;
            let s: f64 = row.iter().sum();
            row.iter().map(|x| x / s).collect()
        })
        .collect();
    // And keeps a prior worth PRIOR_MATCHES matched pairs: m = u · 2^bits, the bits falling
    // from PRIOR_TOP_BITS at the most similar level to 0 at the least, negative for "different".
    // A few dozen candidates then cannot teach that a barely similar title marks a match (EM
    // alone made it worth +3 bits on the 20 demo tasks); thousands of them outweigh the prior.
    // Relative to u, so that a level random pairs never reach gets modest evidence from the
    // prior alone, not 2^15 times more than chance.
    let prior: Vec<Vec<f64>> = comparisons
        .iter()
        .zip(&u)
        .map(|(c, u_row)| {
            let n = c.level_count();
            // Two write-ups of one thing (a ticket and the mail about it) often share few words:
            // for free text "different" is weak evidence.
            let different = match c.comparator {
                Comparator::TfidfCosine | Comparator::TokenJaccard | Comparator::TokenSet => -2.0,
                _ => -5.0,
            };
            let row: Vec<f64> = (0..n)
                .map(|l| {
                    let bits = if l + 1 == n {
                        different
                    } else {
                        PRIOR_TOP_BITS * (1.0 - l as f64 / (n - 1) as f64)
                    };
                    u_row[l] * 2f64.powf(bits)
                })
                .collect();
            let s: f64 = row.iter().sum();
            row.iter().map(|x| x / s).collect()
        })
        .collect();
    let mut m: Vec<Vec<f64>> = known_m.unwrap_or(start);
    let lambda0 = lambda0.clamp(1e-4, 0.9);
    let mut lambda = lambda0;
    let patterns: Vec<(&Vec<u8>, f64)> = patterns.iter().map(|(p, n)| (p, *n)).collect();
    let total: f64 = patterns.iter().map(|(_, n)| n).sum();
    let mut iterations = 0;
    for _ in 0..max_iterations {
        iterations += 1;
        let mut m_acc: Vec<Vec<f64>> = m.iter().map(|r| vec![0.0; r.len()]).collect();
        let mut u_acc: Vec<Vec<f64>> = m.iter().map(|r| vec![0.0; r.len()]).collect();
        let mut matched = 0.0;
        let ratios: Vec<Vec<f64>> = m
            .iter()
            .zip(&u)
            .map(|(mr, ur)| mr.iter().zip(ur).map(|(a, b)| (a / b).ln()).collect())
            .collect();
        for (pattern, count) in &patterns {
            let mut log_ratio = (lambda / (1.0 - lambda)).ln();
            for (c, level) in pattern.iter().enumerate() {
                if *level != MISSING {
                    log_ratio += ratios[c][*level as usize];
                }
            }
            let p = 1.0 / (1.0 + (-log_ratio).exp());
            let w = p * count;
            matched += w;
            for (c, level) in pattern.iter().enumerate() {
                if *level != MISSING {
                    m_acc[c][*level as usize] += w;
                    u_acc[c][*level as usize] += count - w;
                }
            }
        }
        // λ keeps the first guess as a prior worth PRIOR_MATCHES candidates: on a few dozen
        // candidates EM alone drives it to nothing (no pair is strong enough alone to hold it).
        let new_lambda =
            ((matched + PRIOR_MATCHES * lambda0) / (total + PRIOR_MATCHES)).clamp(1e-6, 0.999);
        let mut delta = (new_lambda - lambda).abs();
        for ((row, acc), belief) in m.iter_mut().zip(&m_acc).zip(&prior).filter(|_| !fixed_m) {
            let s: f64 = acc.iter().sum::<f64>() + PRIOR_MATCHES;
            for ((x, a), b) in row.iter_mut().zip(acc).zip(belief) {
                let next = (a + PRIOR_MATCHES * b) / s;
                delta = delta.max((next - *x).abs());
                *x = next;
            }
        }
        if update_u {
            for (row, acc) in u.iter_mut().zip(&u_acc) {
                let s: f64 = acc.iter().sum::<f64>() + 1e-3 * acc.len() as f64;
                for (x, a) in row.iter_mut().zip(acc) {
                    let next = (a + 1e-3) / s;
                    delta = delta.max((next - *x).abs());
                    *x = next;
                }
            }
        }
        // Higher similarity must never count as weaker evidence: EM left alone lets a lump of
        // look-alike non-matches bend a middle level's weight below a lower level's.
        for (row, u_row) in m.iter_mut().zip(&u).filter(|_| !fixed_m) {
            let before = row.clone();
            monotone(row, u_row);
            for (a, b) in before.iter().zip(row.iter()) {
                delta = delta.max((a - b).abs());
            }
        }
        lambda = new_lambda;
        if delta < 1e-6 {
            break;
        }
    }
    Model {
        lambda,
        comparisons: comparisons
            .iter()
            .zip(m)
            .zip(u)
            .map(|((c, m), u)| LevelModel {
                name: c.name.clone(),
                m,
                u,
            })
            .collect(),
        iterations,
    }
}

/// m counted from labelled true pairs, smoothed like u.
pub(crate) fn m_from_labels(
    comparisons: &[Comparison],
    prepared: &[PreparedComparison],
    pairs: &[(usize, usize)],
) -> Vec<Vec<f64>> {
    comparisons
        .iter()
        .zip(prepared)
        .map(|(cmp, prep)| {
            let mut row = vec![0.0; cmp.level_count()];
            for (i, j) in pairs {
                if let Some(s) = prep.similarity(cmp.comparator, *i, *j) {
                    row[cmp.level_of(f64::from(s as f32))] += 1.0;
                }
            }
            let total: f64 = row.iter().sum();
            let levels = row.len() as f64;
            row.iter()
                .map(|c| (c + 0.5) / (total + 0.5 * levels))
                .collect()
        })
        .collect()
}

/// Pools adjacent levels (pool-adjacent-violators) until m/u falls from level to level, keeping
/// each pool's total m and spreading it in proportion to u.
fn monotone(m: &mut [f64], u: &[f64]) {
    let mut pools: Vec<(usize, usize, f64, f64)> = Vec::new();
    for l in 0..m.len() {
        pools.push((l, l + 1, m[l], u[l]));
        while pools.len() >= 2 {
            let b = pools[pools.len() - 1];
            let a = pools[pools.len() - 2];
            if a.2 * b.3 >= b.2 * a.3 {
                break;
            }
            pools.truncate(pools.len() - 2);
            pools.push((a.0, b.1, a.2 + b.2, a.3 + b.3));
        }
    }
    for (start, end, pm, pu) in pools {
        if end - start > 1 && pu > 0.0 {
            for l in start..end {
                m[l] = pm * u[l] / pu;
            }
        }
    }
}

/// Turns a fitted model into per-pair scores.
pub(crate) struct Scorer<'a> {
    comparisons: &'a [Comparison],
    prepared: &'a [PreparedComparison],
    weights: Vec<Vec<f64>>,
    m_top: Vec<f64>,
    prior: f64,
    dedupe: bool,
}

impl<'a> Scorer<'a> {
    pub fn new(
        model: &Model,
        comparisons: &'a [Comparison],
        prepared: &'a [PreparedComparison],
        dedupe: bool,
    ) -> Self {
        Scorer {
            comparisons,
            prepared,
            weights: model.comparisons.iter().map(LevelModel::weights).collect(),
            m_top: model.comparisons.iter().map(|c| c.m[0]).collect(),
            prior: (model.lambda / (1.0 - model.lambda)).log2(),
            dedupe,
        }
    }

    /// log2 odds that rows `i` and `j` match, from their similarities (NaN where missing),
    /// with each comparison's part when `explain`.
    pub fn score_similarities(
        &self,
        i: usize,
        j: usize,
        sims: &[f32],
        explain: Option<&mut Vec<Contribution>>,
    ) -> f64 {
        let mut total = self.prior;
        let mut parts = explain;
        for (c, (cmp, prep)) in self.comparisons.iter().zip(self.prepared).enumerate() {
            let sim = (!sims[c].is_nan()).then(|| f64::from(sims[c]));
            let (level, weight) = match sim {
                None => (None, 0.0),
                Some(s) => {
                    let level = cmp.level_of(s);
                    (Some(level), self.weight(c, cmp, prep, level, s, i, j))
                }
            };
            total += weight;
            if let Some(parts) = parts.as_deref_mut() {
                parts.push(Contribution {
                    name: cmp.name.clone(),
                    similarity: sim,
                    level,
                    weight,
                });
            }
        }
        total
    }

    #[allow(clippy::too_many_arguments)]
    fn weight(
        &self,
        c: usize,
        cmp: &Comparison,
        prep: &PreparedComparison,
        level: usize,
        s: f64,
        i: usize,
        j: usize,
    ) -> f64 {
        let w = &self.weights[c];
        if level == 0 {
            if cmp.term_frequency && !prep.left_freq.is_empty() {
                // A shared rare value is stronger evidence than a shared common one. Agreeing
                // on value v has P(· | match) = m₀·p(v) and P(· | non-match) = p(v)², so the
                // Bayes factor is m₀ / p(v); two sources' shares meet at their geometric mean.
                let pl = f64::from(prep.left_freq[i]);
                let pr = f64::from(prep.right_freq()[j]);
                let share = if self.dedupe { pl } else { (pl * pr).sqrt() };
                if share > 0.0 {
                    return (self.m_top[c] / share.max(1e-12)).log2().max(w[0].min(0.0));
                }
            }
            return w[0];
        }
        // The last level spans everything from 0 to the lowest cut: sliding there would give
        // clearly different values part of a similar level's weight.
        if !continuous(cmp.comparator) || level >= cmp.levels.len() {
            return w[level];
        }
        // Within a level, slide toward the level above by how far the similarity got, so that
        // pairs in one level still rank by similarity (one-to-one assignment needs that).
        let upper = cmp.levels[level - 1];
        let lower = cmp.levels[level];
        if w[level - 1] > w[level] && upper > lower {
            let t = ((s - lower) / (upper - lower)).clamp(0.0, 1.0);
            w[level] + (w[level - 1] - w[level]) * t
        } else {
            w[level]
        }
    }
}

fn continuous(c: Comparator) -> bool {
    !matches!(
        c,
        Comparator::Exact | Comparator::Identifier | Comparator::Email | Comparator::Domain
    )
}

/// The probability of a log2-odds score.
pub fn probability(score: f64) -> f64 {
    1.0 / (1.0 + (-score).exp2())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn comparison(levels: usize) -> Comparison {
        Comparison {
            name: "c".into(),
            fields: vec!["f".into()],
            comparator: Comparator::Exact,
            levels: (0..levels - 1).map(|l| 1.0 - l as f64 * 0.1).collect(),
            term_frequency: false,
        }
    }

    /// Draws level patterns from known m / u and checks EM finds them again.
    fn recover(
        m_true: &[Vec<f64>],
        u_true: &[Vec<f64>],
        lambda: f64,
        n: usize,
        seed: u64,
    ) -> Model {
        let mut rng = SplitMix::new(seed);
        let draw = |rng: &mut SplitMix, probs: &[f64]| -> u8 {
            let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let mut acc = 0.0;
            for (l, p) in probs.iter().enumerate() {
                acc += p;
                if x < acc {
                    return l as u8;
                }
            }
            (probs.len() - 1) as u8
        };
        let mut patterns: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        for _ in 0..n {
            let is_match = ((rng.next() >> 11) as f64 / (1u64 << 53) as f64) < lambda;
            let table = if is_match { m_true } else { u_true };
            let p: Vec<u8> = table.iter().map(|probs| draw(&mut rng, probs)).collect();
            *patterns.entry(p).or_default() += 1.0;
        }
        let comparisons: Vec<Comparison> = m_true.iter().map(|r| comparison(r.len())).collect();
        fit(
            &comparisons,
            &patterns,
            u_true.to_vec(),
            0.3,
            500,
            false,
            None,
        )
    }

    #[test]
    fn em_recovers_m_and_lambda() {
        let m = vec![vec![0.85, 0.1, 0.05], vec![0.7, 0.2, 0.1], vec![0.9, 0.1]];
        let u = vec![vec![0.02, 0.08, 0.9], vec![0.05, 0.15, 0.8], vec![0.1, 0.9]];
        let model = recover(&m, &u, 0.2, 40_000, 7);
        assert!((model.lambda - 0.2).abs() < 0.02, "lambda {}", model.lambda);
        for (fitted, truth) in model.comparisons.iter().zip(&m) {
            for (a, b) in fitted.m.iter().zip(truth) {
                assert!((a - b).abs() < 0.04, "{:?} vs {truth:?}", fitted.m);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn em_recovers_random_models(
            m0 in 0.6f64..0.95, u0 in 0.01f64..0.1, m1 in 0.5f64..0.9, u1 in 0.02f64..0.15,
            lambda in 0.1f64..0.4, seed in 0u64..1000,
        ) {
            let m = vec![vec![m0, 1.0 - m0], vec![m1, 1.0 - m1], vec![0.8, 0.2]];
            let u = vec![vec![u0, 1.0 - u0], vec![u1, 1.0 - u1], vec![0.05, 0.95]];
            let model = recover(&m, &u, lambda, 30_000, seed);
            prop_assert!((model.lambda - lambda).abs() < 0.04, "lambda {} vs {}", model.lambda, lambda);
            prop_assert!((model.comparisons[0].m[0] - m0).abs() < 0.06);
            prop_assert!((model.comparisons[1].m[0] - m1).abs() < 0.06);
        }
    }

    #[test]
    fn probability_is_logistic_in_base_two() {
        assert!((probability(0.0) - 0.5).abs() < 1e-12);
        assert!((probability(3.0) - 8.0 / 9.0).abs() < 1e-12);
    }
}
