//! `opsweave usage`: the metered model calls of the scope, summed and priced.

use crate::output::emit;
use opsweave::usage::{UsageQuery, DEFAULT_USAGE_DAYS};
use opsweave::{Result, Scope, Weave};
use serde_json::json;

/// Arguments of `opsweave usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// From this instant or date (midnight UTC), included [default: 30 days before --to]
    #[arg(long)]
    from: Option<String>,
    /// To this instant or date (midnight UTC), excluded [default: now]
    #[arg(long)]
    to: Option<String>,
    /// Sum by org, client, project or model (each group's rows are per model), as the HTTP API
    /// and the bindings do
    #[arg(long, default_value = "model")]
    group_by: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Runs `opsweave usage` in `scope`.
pub async fn run(weave: &Weave, scope: Scope, args: &UsageArgs) -> Result<()> {
    let query = UsageQuery::parse(
        scope,
        args.from.as_deref(),
        args.to.as_deref(),
        &args.group_by,
    )?;
    let totals = weave.usage_report(&query).await?;
    if args.json {
        emit(format_args!("{}\n", json!(totals)));
        return Ok(());
    }
    let range = format!(
        "{} to {}",
        query.from.format("%Y-%m-%d %H:%M"),
        query.to.format("%Y-%m-%d %H:%M")
    );
    if totals.is_empty() {
        let default = if args.from.is_none() {
            format!(" (the last {DEFAULT_USAGE_DAYS} days; --from for earlier)")
        } else {
            String::new()
        };
        emit(format_args!("no metered calls from {range} UTC{default}\n"));
        return Ok(());
    }
    // Grouped by model, the key is the model: one column says it.
    let by_model = query.group_by == opsweave::UsageGroup::Model;
    let model_column = |model: &str| {
        if by_model {
            String::new()
        } else {
            format!(" {model:<28}")
        }
    };
    // Model names run longer than org, client and project names.
    let key_width = if by_model { 28 } else { 24 };
    emit(format_args!(
        "{:<key_width$}{} {:>8} {:>12} {:>12} {:>12} {:>12}\n",
        args.group_by,
        model_column("model"),
        "calls",
        "input",
        "output",
        "embedding",
        "cost USD"
    ));
    for priced in &totals {
        let t = &priced.total;
        let key = match &t.client {
            Some(client) if !client.is_empty() => format!("{client}/{}", t.key),
            _ if t.key.is_empty() => "-".to_string(),
            _ => t.key.clone(),
        };
        // A model without a price for some of its tokens has no total: say so, not 0.
        let cost = priced
            .cost_usd
            .map_or_else(|| "no price".to_string(), |c| c.round_dp(6).to_string());
        emit(format_args!(
            "{key:<key_width$}{} {:>8} {:>12} {:>12} {:>12} {cost:>12}\n",
            model_column(&t.model),
            t.calls,
            t.input_tokens,
            t.output_tokens,
            t.embedding_tokens
        ));
    }
    emit(format_args!("{range} UTC\n"));
    Ok(())
}
