//! `opsweave match` and `opsweave review`: resolve stored records and work the review queue.

use clap::{Args, Subcommand};
use opsweave::matching::{resolver_preset, Resolver};
use opsweave::{Error, RecordId, Result, Weave};
use std::path::{Path, PathBuf};

/// Which resolver to run.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("resolver").required(true).args(["preset", "spec"])))]
pub struct MatchArgs {
    /// A built-in resolver: odoo-ace-opportunities, task-dedupe
    #[arg(long)]
    pub preset: Option<String>,
    /// A resolver file (TOML or JSON): sides, columns and optionally a match spec
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Score only records not seen by the last run, with its model
    #[arg(long)]
    pub incremental: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// What to do with the review queue.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Pairs waiting for a decision, most likely matches first.
    List {
        /// Only this resolver's pairs
        #[arg(long)]
        resolver: Option<String>,
        /// Pairs to show (1 to 10,000)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=10000))]
        limit: u16,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Same entity: link the pair.
    Accept(Decision),
    /// Different entities: never ask again.
    Reject(Decision),
}

/// A decision on one pair.
#[derive(Debug, Args)]
pub struct Decision {
    /// The resolver (built-in name or file) that queued the pair
    #[arg(long)]
    pub resolver: String,
    /// Left record id
    pub left: String,
    /// Right record id
    pub right: String,
}

/// Loads a resolver from a preset name or a file.
fn load(preset: Option<&str>, file: Option<&Path>) -> Result<Resolver> {
    match (preset, file) {
        (Some(name), _) => resolver_preset(name),
        (None, Some(path)) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::invalid(format!("cannot read: {e}")).in_file(name.clone()))?;
            let parsed = if name.ends_with(".json") {
                Resolver::from_json(&text)
            } else {
                Resolver::from_toml(&text)
            };
            parsed.map_err(|e| e.in_file(name))
        }
        (None, None) => Err(Error::invalid("give --preset NAME or --spec FILE")),
    }
}

/// Runs `opsweave match`.
pub async fn run_match(weave: &Weave, args: &MatchArgs) -> Result<()> {
    let resolver = load(args.preset.as_deref(), args.spec.as_deref())?;
    let report = weave
        .resolve(&weave.default_scope(), &resolver, args.incremental)
        .await?;
    if args.json {
        crate::output::print_json(&report);
    } else {
        outln!(
            "{} ({}): {} left, {} right, {} new; {} candidates → {} linked, {} to review ({:.2}s)",
            report.resolver,
            report.mode,
            report.left_records,
            report.right_records,
            report.new_records,
            report.candidates,
            report.matched,
            report.review,
            report.seconds
        );
        if report.review > 0 {
            outln!(
                "see them with: opsweave review list --resolver {}",
                report.resolver
            );
        }
    }
    Ok(())
}

/// Runs `opsweave review …`.
pub async fn run_review(weave: &Weave, command: &ReviewCommand) -> Result<()> {
    let scope = weave.default_scope();
    match command {
        ReviewCommand::List {
            resolver,
            limit,
            json,
        } => {
            let queue = weave
                .review_queue(&scope, resolver.as_deref(), usize::from(*limit))
                .await?;
            if *json {
                crate::output::print_json(&queue);
                return Ok(());
            }
            if queue.is_empty() {
                outln!("nothing to review");
            }
            for item in queue {
                let left = weave.record(&scope, item.left).await?;
                let right = weave.record(&scope, item.right).await?;
                outln!(
                    "{:>5.1}%  {} {}  ↔  {} {}   [{}]",
                    item.probability * 100.0,
                    item.left,
                    left.title,
                    item.right,
                    right.title,
                    item.resolver
                );
                let why: Vec<String> = item
                    .explanation
                    .iter()
                    .map(|c| format!("{} {:+.1}", c.name, c.weight))
                    .collect();
                outln!("        {}", why.join(", "));
            }
            Ok(())
        }
        ReviewCommand::Accept(d) | ReviewCommand::Reject(d) => {
            let resolver = if Path::new(&d.resolver).is_file() {
                load(None, Some(Path::new(&d.resolver)))?
            } else {
                resolver_preset(&d.resolver)?
            };
            let pair = (
                d.left.parse::<RecordId>().map_err(|e| e.on_field("left"))?,
                d.right
                    .parse::<RecordId>()
                    .map_err(|e| e.on_field("right"))?,
            );
            let accept = matches!(command, ReviewCommand::Accept(_));
            let item = weave.decide_review(&scope, &resolver, pair, accept).await?;
            outln!("{} / {}: {}", item.left, item.right, item.status.as_str());
            Ok(())
        }
    }
}
