//! The `opsweave` command line.
//!
//! Exit codes: 0 ok, 2 bad input (including usage errors), 1 anything else.

/// `println!` for the command's output, ending the command quietly when its reader has gone
/// (`opsweave focus | head -3`): see [`output::emit`].
macro_rules! outln {
    () => {
        $crate::output::emit(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the command's output (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!($($arg)*))
    };
}

mod eval;
mod http;
mod jobs;
mod keys;
mod migrating;
mod output;
mod recall;
mod resolving;
mod usage;
mod worker;

use clap::{Parser, Subcommand};
use opsweave::{
    Config, Error, ErrorKind, Horizon, Mapping, RecordId, Result, Scope, Weave, Window,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// opsweave: your operational records, deduplicated, prioritised and searchable.
#[derive(Debug, Parser)]
#[command(name = "opsweave", version, about)]
struct Cli {
    /// Database URL or path [default: sqlite://./opsweave.db]
    #[arg(long, global = true, env = "OPSWEAVE_DB")]
    db: Option<String>,
    /// Configuration file [default: ./opsweave.toml when present]
    #[arg(long, global = true, env = "OPSWEAVE_CONFIG")]
    config: Option<PathBuf>,
    /// Organisation (scope) to work in [default: `default`]
    #[arg(long, global = true, env = "OPSWEAVE_ORG")]
    org: Option<String>,
    /// Narrow the scope to a client
    #[arg(long, global = true, env = "OPSWEAVE_CLIENT")]
    client: Option<String>,
    /// Narrow the scope to a project
    #[arg(long, global = true, env = "OPSWEAVE_PROJECT")]
    project: Option<String>,
    /// Shared cache on Redis (redis://…) [default: none]
    #[arg(long, global = true, env = "OPSWEAVE_REDIS")]
    cache: Option<String>,
    /// Job queue when it is not the database's own (redis://…, postgres://…, sqlite://…)
    #[arg(long, global = true, env = "OPSWEAVE_QUEUE")]
    queue: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the sample exports into a fresh database and print focus: ./opsweave-demo.db,
    /// made anew each run (not the global --db default), or a --db path that does not exist yet.
    Demo {
        /// Show focus as of this date or RFC 3339 instant [default: 2026-11-23, the samples' date]
        #[arg(long)]
        now: Option<String>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Ingest a CSV, JSON Lines or JSON file.
    #[command(group(clap::ArgGroup::new("read_with").required(true).args(["preset", "mapping"])))]
    Ingest {
        /// The file to read
        file: PathBuf,
        /// A built-in mapping (see `opsweave presets`)
        #[arg(long)]
        preset: Option<String>,
        /// A mapping file (TOML or JSON)
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Where to write rejected rows [default: ./<file name>.rejections.csv]
        #[arg(long)]
        rejections: Option<PathBuf>,
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// The top tasks per horizon (today, week, month), each with its score breakdown.
    Focus {
        /// Only this horizon (today, week, month, later)
        #[arg(long)]
        horizon: Option<String>,
        /// Tasks per horizon (1 to 1,000)
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Rank as of this date or RFC 3339 instant [default: now]
        #[arg(long)]
        now: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Mark a task done.
    Complete {
        /// Task id (16 hex digits)
        id: String,
        /// Print the task as JSON
        #[arg(long)]
        json: bool,
    },
    /// Undo a task's last status change.
    Undo {
        /// Task id (16 hex digits)
        id: String,
        /// Print the task as JSON
        #[arg(long)]
        json: bool,
    },
    /// Pin a task to today and/or boost its score.
    Mark {
        /// Task id (16 hex digits)
        id: String,
        /// Points added to the score (0 removes a boost) [default: unchanged]
        #[arg(long, allow_negative_numbers = true)]
        boost: Option<f64>,
        /// Pin to today
        #[arg(long, conflicts_with = "unpin")]
        pin: bool,
        /// Unpin
        #[arg(long)]
        unpin: bool,
    },
    /// The work graph: nodes, edges and lanes (past7d, today, week, month).
    Graph {
        /// week or month
        #[arg(long, default_value = "week")]
        window: String,
        /// As of this date or RFC 3339 instant [default: now]
        #[arg(long)]
        now: Option<String>,
        /// Print JSON (the only format for now)
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over titles and bodies.
    Search {
        /// Words to look for
        query: String,
        /// Hits to show (1 to 1,000)
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Find the same entity across sources (or duplicates within one) and link them.
    Match(resolving::MatchArgs),
    /// The pairs matching was unsure about: list, accept, reject.
    Review {
        #[command(subcommand)]
        command: resolving::ReviewCommand,
    },
    /// Score the matcher (link, dedupe) or recall on plain files against known answers.
    Eval(eval::EvalArgs),
    /// Embed records whose text changed since their last vector (resumable).
    Embed(recall::EmbedArgs),
    /// Find records by meaning and words (hybrid: dense + BM25), each hit explained.
    Recall(recall::RecallArgs),
    /// Store a memory note (at most 32 KiB) that recall finds at once, or replace one's text
    /// (--replace ID); prints its id.
    Remember(recall::RememberArgs),
    /// Remove a memory note for good (record, full-text row and vectors).
    Forget(recall::ForgetArgs),
    /// Serve the HTTP API (embedded on ./opsweave.db unless --db or the config says otherwise).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080, or `server.addr`]
        #[arg(long)]
        addr: Option<String>,
    },
    /// Claim and run jobs from the queue (the database's, or --queue) until SIGTERM or Ctrl-C.
    Worker(worker::WorkerArgs),
    /// API keys of the HTTP service: create (prints the secret once), list, revoke.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Background jobs of the scope (the database's queue, or --queue): list, show, cancel.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Metered model calls of the scope: calls, tokens and cost, by org, client, project or model.
    Usage(usage::UsageArgs),
    /// Copy everything into another database (e.g. SQLite to PostgreSQL), ids kept, counts checked.
    #[command(long_about = migrating::LONG_ABOUT)]
    Migrate(migrating::MigrateArgs),
    /// List the built-in mappings, or print one as TOML to start your own.
    Presets {
        /// Print this preset's mapping
        name: Option<String>,
    },
}

/// The process allocator: mimalloc gives freed memory back sooner than glibc's per-thread arenas
/// (a server that ingested 100,000 rows kept ~340 MiB, not ~600 MiB) and is faster under load.
/// Its `override` feature makes it C's `malloc` too, so SQLite's page cache and statements use
/// it (a 1M-row ingest ~4 % faster, docs/benchmarks.md, issue 2).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Makes the allocator keep what this process frees for its own next use rather than hand it
/// back to the system within milliseconds: an ingest frees each batch's memory and takes as much
/// again for the next, and giving it back and faulting it in again cost a 1M-row ingest ~50,000
/// page faults and ~5 % of its time (docs/benchmarks.md, issue 2). For one-shot commands only:
/// a server keeps giving back what it no longer needs. `MIMALLOC_PURGE_DELAY` set by the user
/// wins.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same in v2 and v3).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one of the allocator's options, which any thread may do at any time; -1 is
    // "never purge".
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.kind() == ErrorKind::InvalidInput {
                2
            } else {
                1
            })
        }
    }
}

/// `config` for a long-running service or worker: its jobs renew their leases and report
/// progress through the store's one writer, which a bulk load would hold for a whole file, so
/// it ingests batch by batch.
fn serving(mut config: Config) -> Config {
    config.ingest.bulk_load = false;
    config
}

fn config_for(cli: &Cli, db_override: Option<String>) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(db) = db_override.or_else(|| cli.db.clone()) {
        config.db = db;
    }
    if let Some(cache) = &cli.cache {
        config.redis = Some(cache.clone());
    }
    if let Some(queue) = &cli.queue {
        config.queue = Some(queue.clone());
    }
    if let Some(org) = &cli.org {
        config.scope = Scope::org(org.clone());
    }
    if let Some(client) = &cli.client {
        config.scope.client = Some(client.clone());
    }
    if let Some(project) = &cli.project {
        config.scope.project = Some(project.clone());
    }
    config.scope.validate()?;
    Ok(config)
}

/// Runs `work` on a handle opened with `config`, then closes the handle whatever `work` returned:
/// the embedded database is checkpointed (no `-wal` file left beside it, so copying the `.db`
/// file alone copies everything) and changed vector graphs are saved.
async fn with_weave<T>(config: Config, work: impl AsyncFnOnce(&Weave) -> Result<T>) -> Result<T> {
    let weave = Weave::open_with(config).await?;
    let result = work(&weave).await;
    weave.close().await;
    result
}

fn parse_id(text: &str) -> Result<RecordId> {
    text.parse().map_err(|e: Error| e.on_field("id"))
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Demo { now, json } => {
            keep_freed_memory();
            demo(&cli, now.as_deref(), *json).await
        }
        Command::Ingest {
            file,
            preset,
            mapping,
            rejections,
            json,
        } => {
            keep_freed_memory();
            let mapping = load_mapping(preset.as_deref(), mapping.as_deref())?;
            let rejections_file = rejections.clone().unwrap_or_else(|| {
                let name = file
                    .file_name()
                    .map_or_else(|| "ingest".into(), |n| n.to_string_lossy().into_owned());
                PathBuf::from(format!("{name}.rejections.csv"))
            });
            let config = config_for(&cli, None)?;
            // Checked before anything is stored: an ingest that commits and then cannot say
            // what it rejected leaves the user guessing.
            output::check_rejections_path(
                &rejections_file,
                file,
                opsweave::sqlite_path(&config.db),
            )?;
            with_weave(config, async |weave| {
                let scope = weave.default_scope();
                let report = output::ingest_with_progress(weave, file, &mapping, &scope).await?;
                // A file left by an earlier run is emptied (header only): it must never list rows
                // that this run stored.
                if report.rejected_total > 0 || rejections_file.is_file() {
                    output::write_rejections(&rejections_file, &report)?;
                }
                output::print_ingest(&report, *json, &rejections_file);
                Ok(())
            })
            .await
        }
        Command::Focus {
            horizon,
            limit,
            now,
            json,
        } => {
            let horizons = match horizon {
                Some(h) => vec![h.parse::<Horizon>()?],
                None => Horizon::FOCUS.to_vec(),
            };
            with_weave(config_for(&cli, None)?, async |weave| {
                let focus = weave
                    .focus(
                        &weave.default_scope(),
                        &horizons,
                        usize::from(*limit),
                        weave.parse_as_of(now.as_deref())?,
                    )
                    .await?;
                output::print_focus(&focus, &horizons, *json);
                Ok(())
            })
            .await
        }
        Command::Complete { id, json } | Command::Undo { id, json } => {
            let id = parse_id(id)?;
            with_weave(config_for(&cli, None)?, async |weave| {
                let scope = weave.default_scope();
                let before = weave.store().task(&scope, id).await?.status;
                let task = if matches!(cli.command, Command::Complete { .. }) {
                    weave.complete(&scope, id, "cli").await?
                } else {
                    weave.undo(&scope, id, "cli").await?
                };
                output::print_status_change(&task, before, *json);
                Ok(())
            })
            .await
        }
        Command::Mark {
            id,
            boost,
            pin,
            unpin,
        } => {
            let id = parse_id(id)?;
            with_weave(config_for(&cli, None)?, async |weave| {
                let scope = weave.default_scope();
                // Only what the command names changes: `--boost` keeps a pin, `--pin` a boost.
                let current = weave.store().task(&scope, id).await?;
                let boost = boost.unwrap_or(current.boost);
                let pinned = (*pin || current.pinned) && !*unpin;
                let task = weave.mark(&scope, id, boost, pinned).await?;
                outln!(
                    "{} boost {} pinned {}: {}",
                    task.id,
                    task.boost,
                    task.pinned,
                    task.title
                );
                Ok(())
            })
            .await
        }
        Command::Graph {
            window,
            now,
            json: _,
        } => {
            let window: Window = window.parse()?;
            with_weave(config_for(&cli, None)?, async |weave| {
                let graph = weave
                    .graph(
                        &weave.default_scope(),
                        window,
                        weave.parse_as_of(now.as_deref())?,
                    )
                    .await?;
                output::print_json(&graph);
                Ok(())
            })
            .await
        }
        Command::Search { query, limit, json } => {
            with_weave(config_for(&cli, None)?, async |weave| {
                let hits = weave
                    .search(&weave.default_scope(), query, usize::from(*limit))
                    .await?;
                output::print_search(&hits, *json);
                Ok(())
            })
            .await
        }
        Command::Match(args) => {
            with_weave(config_for(&cli, None)?, async |weave| {
                resolving::run_match(weave, args).await
            })
            .await
        }
        Command::Keys { command } => {
            with_weave(config_for(&cli, None)?, async |weave| {
                let scope = weave.default_scope();
                keys::run(weave, scope, command).await
            })
            .await
        }
        Command::Jobs { command } => {
            with_weave(config_for(&cli, None)?, async |weave| {
                let scope = weave.default_scope();
                jobs::run(weave, scope, command).await
            })
            .await
        }
        Command::Usage(args) => {
            with_weave(config_for(&cli, None)?, async |weave| {
                let scope = weave.default_scope();
                usage::run(weave, scope, args).await
            })
            .await
        }
        Command::Review { command } => {
            with_weave(config_for(&cli, None)?, async |weave| {
                resolving::run_review(weave, command).await
            })
            .await
        }
        Command::Eval(args) => match args.recall_args() {
            Some(args) => recall::eval_recall(config_for(&cli, None)?, args).await,
            None => eval::run(args),
        },
        Command::Embed(args) => {
            let config = recall::with_model(config_for(&cli, None)?, args.model.as_deref());
            with_weave(config, async |weave| recall::embed(weave, args).await).await
        }
        Command::Recall(args) => {
            let config = recall::with_model(config_for(&cli, None)?, args.model.as_deref());
            with_weave(config, async |weave| recall::recall(weave, args).await).await
        }
        Command::Remember(args) => {
            let config = recall::with_model(config_for(&cli, None)?, args.model.as_deref());
            with_weave(config, async |weave| recall::remember(weave, args).await).await
        }
        Command::Forget(args) => {
            with_weave(config_for(&cli, None)?, async |weave| {
                recall::forget(weave, args).await
            })
            .await
        }
        Command::Serve { addr } => {
            let config = serving(config_for(&cli, None)?);
            let addr = addr.clone().unwrap_or_else(|| config.server.addr.clone());
            let weave = Weave::open_with(config).await?;
            http::serve(weave, &addr).await
        }
        Command::Worker(args) => {
            let weave = Weave::open_with(serving(config_for(&cli, None)?)).await?;
            worker::run(weave, args).await
        }
        Command::Migrate(args) => {
            let from = match &args.from {
                Some(from) => from.clone(),
                None => config_for(&cli, None)?.db,
            };
            migrating::run(&from, args).await
        }
        Command::Presets { name } => {
            match name {
                Some(name) => out!("{}", opsweave::preset(name)?.to_toml()?),
                None => {
                    for (name, _) in opsweave::mapping::presets::PRESETS {
                        let m = opsweave::preset(name)?;
                        outln!(
                            "{name:<16} {:<8} {:<12} {}",
                            m.source,
                            m.entity,
                            m.format.map_or("", |f| match f {
                                opsweave::Format::Csv => "csv",
                                opsweave::Format::Jsonl => "jsonl",
                                opsweave::Format::Json => "json",
                            })
                        );
                    }
                }
            }
            Ok(())
        }
    }
}

fn load_mapping(preset: Option<&str>, file: Option<&Path>) -> Result<Mapping> {
    match (preset, file) {
        (Some(name), _) => opsweave::preset(name),
        (None, Some(path)) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::invalid(format!("cannot read mapping: {e}")).in_file(name.clone())
            })?;
            let mapping = if name.ends_with(".json") {
                Mapping::from_json(&text)
            } else {
                Mapping::from_toml(&text)
            };
            let mapping = mapping.map_err(|e| e.in_file(name.clone()))?;
            mapping.compile().map_err(|e| e.in_file(name))?;
            Ok(mapping)
        }
        (None, None) => Err(Error::invalid("give --preset NAME or --mapping FILE")),
    }
}

/// The sample exports, built into the binary so `demo` runs from any folder.
const SAMPLES: [(&str, &str, &[u8]); 5] = [
    (
        "odoo-crm-lead",
        "odoo-crm-lead.csv",
        include_bytes!("../../../examples/data/odoo-crm-lead.csv"),
    ),
    (
        "ace-opportunity",
        "ace-opportunity.csv",
        include_bytes!("../../../examples/data/ace-opportunity.csv"),
    ),
    (
        "gmail-message",
        "gmail-messages.json",
        include_bytes!("../../../examples/data/gmail-messages.json"),
    ),
    (
        "jira-issue",
        "jira-search.json",
        include_bytes!("../../../examples/data/jira-search.json"),
    ),
    (
        "github-issue",
        "github-issues.json",
        include_bytes!("../../../examples/data/github-issues.json"),
    ),
];

/// The day the sample data is dated around.
const SAMPLE_DAY: &str = "2026-11-23";

async fn demo(cli: &Cli, now: Option<&str>, json: bool) -> Result<()> {
    // Before anything is written: a bad --now must not leave a loaded database behind.
    let config = config_for(cli, None)?;
    let as_of = opsweave::parse_now_in(Some(now.unwrap_or(SAMPLE_DAY)), config.priority.zone())?;
    let default_path = "opsweave-demo.db";
    let db = cli
        .db
        .clone()
        .unwrap_or_else(|| format!("sqlite://./{default_path}"));
    let path = db.strip_prefix("sqlite://").unwrap_or(&db).to_string();
    if Path::new(&path).exists() {
        if cli.db.is_none() {
            // The demo's own file: start fresh every time.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        } else {
            return Err(Error::invalid(format!(
                "demo loads a fresh database, and `{path}` exists: pick a new --db path"
            )));
        }
    }
    with_weave(config_for(cli, Some(db))?, async |weave| {
        let scope = weave.default_scope();
        for (preset, file, bytes) in SAMPLES {
            let mapping = opsweave::preset(preset)?;
            let format = if file.ends_with(".csv") {
                opsweave::Format::Csv
            } else {
                opsweave::Format::Json
            };
            let report = weave
                .ingest_reader(
                    std::io::Cursor::new(bytes),
                    file,
                    format,
                    &mapping,
                    &scope,
                    None,
                )
                .await?;
            if !json {
                eprintln!(
                    "ingested {file:<22} {:>3} records, {} rejected ({preset})",
                    report.inserted + report.updated + report.unchanged,
                    report.rejected_total
                );
            }
        }
        let focus = weave.focus(&scope, &Horizon::FOCUS, 3, as_of).await?;
        if !json {
            eprintln!(
                "database: {}; focus as of {} (the sample data's day; try --now)\n",
                opsweave::mask_password(&path),
                as_of.map(|t| t.to_rfc3339()).unwrap_or_default()
            );
        }
        output::print_focus(&focus, &Horizon::FOCUS, json);
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn demo_samples_exist_for_every_preset() {
        let names: Vec<&str> = SAMPLES.iter().map(|(p, _, _)| *p).collect();
        assert_eq!(names, opsweave::mapping::presets::names());
    }
}
