//! Runs the matcher on CSV files and prints the evaluation as JSON.
//!
//! ```text
//! cargo run --release -p opsweave-core --example er_eval -- link LEFT.csv RIGHT.csv GOLD.csv [SPEC.toml]
//! cargo run --release -p opsweave-core --example er_eval -- dedupe RECORDS.csv GOLD.csv [SPEC.toml]
//! ```
//! Set `ER_LABELS=N` to run the supervised mode with every Nth gold pair as a label.
//! Set `ER_SHOW=N` to also print N wrong pairs (false positives and misses) with explanations.

use opsweave_core::matching::{
    evaluate_dedupe, evaluate_link, run_dedupe_supervised, run_link_supervised, score_against_gold,
    Gold, MatchOutcome, MatchSpec, Table,
};
use std::collections::HashSet;
use std::fs::File;
use std::process::ExitCode;
use std::time::Instant;

fn table(path: &str) -> opsweave_core::Result<Table> {
    let file = File::open(path)
        .map_err(|e| opsweave_core::Error::invalid(format!("cannot open: {e}")).in_file(path))?;
    Table::from_csv(std::io::BufReader::new(file), path)
}

fn spec(path: Option<&String>) -> opsweave_core::Result<Option<MatchSpec>> {
    path.map(|p| {
        let text = std::fs::read_to_string(p).map_err(|e| {
            opsweave_core::Error::invalid(format!("cannot read: {e}")).in_file(p.as_str())
        })?;
        if p.ends_with(".json") {
            MatchSpec::from_json(&text)
        } else {
            MatchSpec::from_toml(&text)
        }
    })
    .transpose()
}

fn show(outcome: &MatchOutcome, gold: &Gold, left: &Table, right: &Table, n: usize) {
    let sizes: Vec<usize> = outcome.clusters.iter().map(Vec::len).collect();
    eprintln!(
        "match pairs {}, review {}, clusters {}, largest {:?}",
        outcome.matches.len(),
        outcome.review.len(),
        sizes.len(),
        sizes.iter().max()
    );
    let predicted: HashSet<(usize, usize)> = outcome.predicted_pairs().into_iter().collect();
    let row = |t: &Table, r: usize| t.rows[r].join(" | ");
    eprintln!("--- false positives");
    for p in outcome
        .matches
        .iter()
        .filter(|p| !gold.pairs.contains(&(p.left, p.right)))
        .take(n)
    {
        eprintln!(
            "p={:.3} L: {}\n        R: {}",
            p.probability,
            row(left, p.left),
            row(right, p.right)
        );
        for c in &p.explanation {
            eprintln!(
                "        {} sim={:?} level={:?} w={:.2}",
                c.name, c.similarity, c.level, c.weight
            );
        }
    }
    let gold_in_review = outcome
        .review
        .iter()
        .filter(|p| gold.pairs.contains(&(p.left, p.right)))
        .count();
    eprintln!(
        "gold pairs in the review band: {gold_in_review} of {}",
        outcome.review.len()
    );
    eprintln!("--- misses");
    let cands: HashSet<(usize, usize)> = outcome
        .candidates
        .iter()
        .map(|(a, b)| (*a as usize, *b as usize))
        .collect();
    for (a, b) in gold.pairs.iter().filter(|p| !predicted.contains(p)).take(n) {
        eprintln!(
            "in_candidates={} L: {}\n        R: {}",
            cands.contains(&(*a, *b)),
            row(left, *a),
            row(right, *b)
        );
    }
}

/// With `ER_LABELS=N`, every Nth gold pair (in sorted order) serves as a label for the
/// supervised mode; the score is still against all gold pairs.
fn labels(gold: &Gold) -> Option<Gold> {
    let every: usize = std::env::var("ER_LABELS").ok()?.parse().ok()?;
    let mut pairs: Vec<(usize, usize)> = gold.pairs.iter().copied().collect();
    pairs.sort_unstable();
    Some(Gold {
        pairs: pairs.into_iter().step_by(every.max(1)).collect(),
        unknown: 0,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_n: usize = std::env::var("ER_SHOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let result: opsweave_core::Result<_> = match args.first().map(String::as_str) {
        Some("link") if args.len() >= 4 => (|| {
            let (l, r) = (table(&args[1])?, table(&args[2])?);
            let gold_file = File::open(&args[3]).map_err(|e| {
                opsweave_core::Error::invalid(format!("cannot open: {e}")).in_file(args[3].as_str())
            })?;
            let gold = Gold::from_csv(gold_file, &args[3], &l, Some(&r))?;
            let spec = spec(args.get(4))?;
            let (eval, outcome) = match labels(&gold) {
                Some(sample) => {
                    let start = Instant::now();
                    let outcome = run_link_supervised(&l, &r, spec.as_ref(), &sample)?;
                    let eval = score_against_gold(&outcome, &gold, start.elapsed().as_secs_f64());
                    (eval, outcome)
                }
                None => evaluate_link(&l, &r, &gold, spec.as_ref())?,
            };
            if show_n > 0 {
                eprintln!("{}", outcome.spec.to_toml().unwrap_or_default());
                eprintln!(
                    "{}",
                    serde_json::to_string_pretty(&outcome.model).unwrap_or_default()
                );
                show(&outcome, &gold, &l, &r, show_n);
            }
            Ok(eval)
        })(),
        Some("dedupe") if args.len() >= 3 => (|| {
            let t = table(&args[1])?;
            let gold_file = File::open(&args[2]).map_err(|e| {
                opsweave_core::Error::invalid(format!("cannot open: {e}")).in_file(args[2].as_str())
            })?;
            let gold = Gold::from_csv(gold_file, &args[2], &t, None)?;
            let spec = spec(args.get(3))?;
            let (eval, outcome) = match labels(&gold) {
                Some(sample) => {
                    let start = Instant::now();
                    let outcome = run_dedupe_supervised(&t, spec.as_ref(), &sample)?;
                    let eval = score_against_gold(&outcome, &gold, start.elapsed().as_secs_f64());
                    (eval, outcome)
                }
                None => evaluate_dedupe(&t, &gold, spec.as_ref())?,
            };
            if show_n > 0 {
                eprintln!("{}", outcome.spec.to_toml().unwrap_or_default());
                eprintln!(
                    "{}",
                    serde_json::to_string_pretty(&outcome.model).unwrap_or_default()
                );
                show(&outcome, &gold, &t, &t, show_n);
            }
            Ok(eval)
        })(),
        _ => {
            eprintln!(
                "usage: er_eval link LEFT RIGHT GOLD [SPEC] | er_eval dedupe RECORDS GOLD [SPEC]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(eval) => {
            if eval.unknown_gold_ids > 0 {
                eprintln!(
                    "warning: {} gold rows name unknown ids and were skipped",
                    eval.unknown_gold_ids
                );
            }
            println!("{}", serde_json::to_string(&eval).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
