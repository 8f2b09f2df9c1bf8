//! `opsweave eval`: run the matcher on plain CSV files and score it against known true pairs.

use clap::{Args, Subcommand};
use opsweave::matching::{
    evaluate_dedupe, evaluate_link, Evaluation, Gold, MatchMode, MatchSpec, Table,
};
use opsweave::{Error, Result};
use serde_json::json;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `opsweave eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    task: EvalTask,
}

/// What to evaluate: linking two files or deduplicating one.
#[derive(Debug, Subcommand)]
enum EvalTask {
    /// Link two CSV files (header, `id` first) and score the pairs against a gold file.
    Link {
        /// Left records (CSV with a header; the first column is the id)
        #[arg(long)]
        left: PathBuf,
        /// Right records (CSV with a header; the first column is the id)
        #[arg(long)]
        right: PathBuf,
        /// True pairs: CSV with `left_id,right_id`
        #[arg(long)]
        gold: PathBuf,
        /// A match spec (TOML, or JSON when the name ends in .json) [default: inferred from the data]
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Find duplicates within one CSV file and score them against a gold file.
    Dedupe {
        /// Records (CSV with a header; the first column is the id)
        #[arg(long)]
        records: PathBuf,
        /// True duplicate pairs: CSV with two id columns
        #[arg(long)]
        gold: PathBuf,
        /// A match spec (TOML, or JSON when the name ends in .json) [default: inferred from the data]
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Index a BEIR-layout corpus and score recall (recall@k, nDCG@10, MRR) against qrels.
    Recall(crate::recall::EvalRecallArgs),
}

impl EvalArgs {
    /// The arguments of `eval recall`, which runs on the async runtime (see `recall::eval_recall`).
    pub fn recall_args(&self) -> Option<&crate::recall::EvalRecallArgs> {
        match &self.task {
            EvalTask::Recall(args) => Some(args),
            _ => None,
        }
    }
}

/// Runs `opsweave eval link|dedupe` and prints the evaluation.
pub fn run(args: &EvalArgs) -> Result<()> {
    let load_start = Instant::now();
    match &args.task {
        EvalTask::Recall(_) => {
            return Err(Error::internal(
                "eval recall runs through recall::eval_recall, not eval::run",
            ))
        }
        EvalTask::Link {
            left,
            right,
            gold,
            spec,
            json,
        } => {
            let l = read_table(left)?;
            let r = read_table(right)?;
            let g = read_gold(gold, &l, Some(&r))?;
            let spec = spec
                .as_deref()
                .map(|p| read_spec(p, MatchMode::Link, &l, Some(&r)))
                .transpose()?;
            let load_seconds = load_start.elapsed().as_secs_f64();
            let (eval, _) = evaluate_link(&l, &r, &g, spec.as_ref())?;
            warn_unknown(gold, &eval);
            let sizes = [(left.as_path(), l.len()), (right.as_path(), r.len())];
            print(&eval, "link", &sizes, load_seconds, *json);
        }
        EvalTask::Dedupe {
            records,
            gold,
            spec,
            json,
        } => {
            let t = read_table(records)?;
            let g = read_gold(gold, &t, None)?;
            let spec = spec
                .as_deref()
                .map(|p| read_spec(p, MatchMode::Dedupe, &t, None))
                .transpose()?;
            let load_seconds = load_start.elapsed().as_secs_f64();
            let (eval, _) = evaluate_dedupe(&t, &g, spec.as_ref())?;
            warn_unknown(gold, &eval);
            print(
                &eval,
                "dedupe",
                &[(records.as_path(), t.len())],
                load_seconds,
                *json,
            );
        }
    }
    Ok(())
}

fn open(path: &Path) -> Result<BufReader<File>> {
    opsweave::open_input(path).map(BufReader::new)
}

fn read_table(path: &Path) -> Result<Table> {
    Table::from_csv(open(path)?, &path.display().to_string())
}

fn read_gold(path: &Path, left: &Table, right: Option<&Table>) -> Result<Gold> {
    Gold::from_csv(open(path)?, &path.display().to_string(), left, right)
}

/// Reads a spec file and checks it against the task and the tables, naming the file on error.
fn read_spec(
    path: &Path,
    mode: MatchMode,
    left: &Table,
    right: Option<&Table>,
) -> Result<MatchSpec> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read: {e}")).in_file(name.clone()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let spec = if is_json {
        MatchSpec::from_json(&text)
    } else {
        MatchSpec::from_toml(&text)
    }
    .map_err(|e| e.in_file(name.clone()))?;
    if spec.mode != mode {
        let (found, wanted) = match mode {
            MatchMode::Link => ("dedupe", "link"),
            MatchMode::Dedupe => ("link", "dedupe"),
        };
        return Err(Error::invalid(format!(
            "the spec is a {found} spec, but `eval {wanted}` needs mode = \"{wanted}\""
        ))
        .in_file(name));
    }
    spec.validate(left, right).map_err(|e| e.in_file(name))?;
    Ok(spec)
}

fn warn_unknown(gold: &Path, eval: &Evaluation) {
    if eval.unknown_gold_ids > 0 {
        eprintln!(
            "warning: {}: {} gold row(s) name ids that are not in the records; skipped",
            gold.display(),
            eval.unknown_gold_ids
        );
    }
}

fn print(
    eval: &Evaluation,
    task: &str,
    inputs: &[(&Path, usize)],
    load_seconds: f64,
    as_json: bool,
) {
    if as_json {
        crate::output::print_json(&json!({
            "task": task,
            "precision": eval.precision,
            "recall": eval.recall,
            "f1": eval.f1,
            "predicted_pairs": eval.predicted_pairs,
            "candidates": eval.candidates,
            "blocking_recall": eval.blocking_recall,
            "seconds": eval.seconds,
            "gold_pairs": eval.gold_pairs,
            "true_positives": eval.true_positives,
            "unknown_gold_ids": eval.unknown_gold_ids,
            "load_seconds": load_seconds,
        }));
        return;
    }
    let files: Vec<String> = inputs
        .iter()
        .map(|(p, n)| format!("{} ({n} records)", p.display()))
        .collect();
    outln!("{task}: {}", files.join(" ↔ "));
    outln!(
        "  precision {:.4}  recall {:.4}  F1 {:.4}",
        eval.precision,
        eval.recall,
        eval.f1
    );
    outln!(
        "  predicted pairs {}, of which true {}; gold pairs {}",
        eval.predicted_pairs,
        eval.true_positives,
        eval.gold_pairs
    );
    outln!(
        "  candidates {}, blocking recall {:.4}",
        eval.candidates,
        eval.blocking_recall
    );
    outln!(
        "  matching {:.2} s (reading files {:.2} s)",
        eval.seconds,
        load_seconds
    );
}
