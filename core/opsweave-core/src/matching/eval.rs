//! Scoring a run against known true pairs.

use super::table::{Gold, Table};
use super::{run_dedupe, run_link, MatchOutcome, MatchSpec};
use crate::Result;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// How well a run found the gold pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// True positives over predicted pairs.
    pub precision: f64,
    /// True positives over gold pairs.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Pairs the run predicted.
    pub predicted_pairs: usize,
    /// Gold pairs known to both tables.
    pub gold_pairs: usize,
    /// Predicted pairs that are gold.
    pub true_positives: usize,
    /// Candidate pairs blocking produced.
    pub candidates: usize,
    /// Share of gold pairs among the candidates blocking produced: the ceiling on recall of a
    /// link run; a dedupe run's clusters also join pairs that were never compared.
    pub blocking_recall: f64,
    /// Wall-clock seconds of the matching run (loading excluded).
    pub seconds: f64,
    /// Gold rows naming ids that are in neither table (skipped).
    pub unknown_gold_ids: usize,
}

/// Compares a run's predicted pairs with `gold`; `seconds` is recorded as given.
pub fn score_against_gold(outcome: &MatchOutcome, gold: &Gold, seconds: f64) -> Evaluation {
    let predicted: HashSet<(usize, usize)> = outcome.predicted_pairs().into_iter().collect();
    let tp = predicted.iter().filter(|p| gold.pairs.contains(p)).count();
    let candidates: HashSet<(usize, usize)> = outcome
        .candidates
        .iter()
        .map(|(a, b)| (*a as usize, *b as usize))
        .collect();
    let in_blocks = gold.pairs.iter().filter(|p| candidates.contains(p)).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, predicted.len());
    let recall = ratio(tp, gold.pairs.len());
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Evaluation {
        precision,
        recall,
        f1,
        predicted_pairs: predicted.len(),
        gold_pairs: gold.pairs.len(),
        true_positives: tp,
        candidates: outcome.candidates.len(),
        blocking_recall: ratio(in_blocks, gold.pairs.len()),
        seconds,
        unknown_gold_ids: gold.unknown,
    }
}

/// Links `left` to `right` and scores the result against `gold`.
pub fn evaluate_link(
    left: &Table,
    right: &Table,
    gold: &Gold,
    spec: Option<&MatchSpec>,
) -> Result<(Evaluation, MatchOutcome)> {
    let start = Instant::now();
    let outcome = run_link(left, right, spec)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((score_against_gold(&outcome, gold, seconds), outcome))
}

/// Dedupes `records` and scores the result against `gold` (pairs of ids in one table).
pub fn evaluate_dedupe(
    records: &Table,
    gold: &Gold,
    spec: Option<&MatchSpec>,
) -> Result<(Evaluation, MatchOutcome)> {
    let start = Instant::now();
    let outcome = run_dedupe(records, spec)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((score_against_gold(&outcome, gold, seconds), outcome))
}
