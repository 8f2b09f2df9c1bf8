//! `opsweave embed`, `recall`, `remember`, `forget` and `eval recall`.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use opsweave::recall::quality::{ndcg_at, percentile, recall_at, reciprocal_rank};
use opsweave::recall::Recency;
use opsweave::{
    Config, EmbedProgress, EntityKind, Error, Mapping, RecallHit, RecallMode, RecallOptions,
    RecordId, Result, Scope, Weave,
};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `opsweave embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Embedding model: onnx:DIR, onnx:bge-m3, onnx:all-minilm-l6-v2 or openai:MODEL
    /// [default: embed.model in the configuration]
    #[arg(long, env = "OPSWEAVE_EMBED_MODEL")]
    pub model: Option<String>,
    /// First remove every vector stored under this model's name, in every org (a model swapped
    /// behind the same name is refused until then), then embed this scope's records again
    #[arg(long)]
    replace: bool,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

/// Arguments of `opsweave recall`.
#[derive(Debug, Args)]
pub struct RecallArgs {
    /// What to look for, in plain words
    query: String,
    /// Hits to show
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// hybrid (dense + BM25), bm25 or dense
    #[arg(long, default_value = "hybrid")]
    mode: String,
    /// Only records of this entity kind (repeatable)
    #[arg(long)]
    entity: Vec<String>,
    /// Only records from this source kind (repeatable)
    #[arg(long)]
    source: Vec<String>,
    /// Favour recent records: age in days at which a score halves
    #[arg(long)]
    half_life: Option<f64>,
    /// Embedding model [default: embed.model in the configuration]
    #[arg(long, env = "OPSWEAVE_EMBED_MODEL")]
    pub model: Option<String>,
    /// Print JSON, each hit with its explanation
    #[arg(long)]
    json: bool,
}

/// Arguments of `opsweave remember`.
#[derive(Debug, Args)]
pub struct RememberArgs {
    /// The note
    text: String,
    /// A tag (repeatable)
    #[arg(long)]
    tag: Vec<String>,
    /// Replace the text of this memory (16 hex digits) instead of storing a new one; its tags
    /// stay unless --tag is given
    #[arg(long, value_name = "ID")]
    replace: Option<String>,
    /// Embedding model [default: embed.model in the configuration]
    #[arg(long, env = "OPSWEAVE_EMBED_MODEL")]
    pub model: Option<String>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Arguments of `opsweave forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Memory id (16 hex digits)
    id: String,
}

/// Arguments of `opsweave eval recall`.
#[derive(Debug, Args)]
pub struct EvalRecallArgs {
    /// Documents, JSON Lines: {"_id", "title", "text"}
    #[arg(long)]
    corpus: PathBuf,
    /// Queries, JSON Lines: {"_id", "text"}
    #[arg(long)]
    queries: PathBuf,
    /// Judgements, TSV: query-id, corpus-id, score (a header line is allowed)
    #[arg(long)]
    qrels: PathBuf,
    /// hybrid, bm25 or dense
    #[arg(long, default_value = "hybrid")]
    mode: String,
    /// Embedding model (dense and hybrid) [default: embed.model in the configuration]
    #[arg(long, env = "OPSWEAVE_EMBED_MODEL")]
    pub model: Option<String>,
    /// Database to index the corpus into [default: a temporary file, removed afterwards]
    #[arg(long = "index-db")]
    index_db: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Hits each evaluation query retrieves: enough for recall@20 and MRR over the top 20.
const EVAL_DEPTH: usize = 20;

/// Applies a `--model` flag over the configuration; `embed.model_name` stays with the
/// configured model (see `open_embedder`), not with another one the flag names.
pub fn with_model(mut config: Config, model: Option<&str>) -> Config {
    if let Some(model) = model {
        let configured = config.embed.model.replace(model.to_string());
        if configured.is_some_and(|c| c != model) {
            config.embed.model_name = None;
        }
    }
    config
}

/// `opsweave embed`: embeds what changed, with a progress bar on stderr.
pub async fn embed(weave: &Weave, args: &EmbedArgs) -> Result<()> {
    let scope = weave.default_scope();
    let embedder = weave.embedder().await?;
    if args.replace {
        let name = &embedder.info().name;
        let removed = weave.drop_vectors(name).await?;
        eprintln!("removed {removed} vectors of `{name}` (every org); embedding again");
    }
    let progress = Arc::new(EmbedProgress::default());
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} embedding {pos}/{len} {wide_bar} eta {eta}{msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ticker = {
        let bar = bar.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                bar.set_length(progress.total.load(Ordering::Relaxed));
                if progress.indexing.load(Ordering::Relaxed) {
                    bar.set_message(" (building the vector index)");
                }
                bar.set_position(progress.done.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let report = weave.embed(&scope, &*embedder, Some(progress)).await;
    ticker.abort();
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        crate::output::print_json(&report);
    } else {
        outln!(
            "embedded {} of {} stale records with {} ({} dims) in {:.2} s; {} had no text{}{}",
            report.embedded,
            report.stale,
            report.model,
            report.dim,
            report.seconds,
            report.skipped_empty,
            if report.embedded_elsewhere > 0 {
                format!(
                    "; {} were embedded by another run meanwhile",
                    report.embedded_elsewhere
                )
            } else {
                String::new()
            },
            if report.bulk_load {
                "; loaded in bulk, the vector index built once over them"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn recall_options(
    k: usize,
    mode: &str,
    entities: &[String],
    sources: &[String],
    half_life: Option<f64>,
) -> Result<RecallOptions> {
    let entities = entities
        .iter()
        .map(|e| {
            e.parse::<EntityKind>()
                .map_err(|err| err.on_field("entity"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecallOptions {
        k,
        mode: mode.parse::<RecallMode>()?,
        entities,
        source_kinds: sources.to_vec(),
        recency: half_life.map(Recency::half_life),
        ..RecallOptions::default()
    })
}

/// `opsweave recall`.
pub async fn recall(weave: &Weave, args: &RecallArgs) -> Result<()> {
    let options = recall_options(
        args.k,
        &args.mode,
        &args.entity,
        &args.source,
        args.half_life,
    )?;
    let scope = weave.default_scope();
    let hits = weave.recall(&scope, &args.query, &options).await?;
    if args.json {
        crate::output::print_json(&hits);
        return Ok(());
    }
    if hits.is_empty() {
        if !args.mode.eq_ignore_ascii_case("bm25") && unembedded_records(weave, &scope).await {
            // Dense recall finds only what has vectors.
            outln!(
                "no records match (some records have no vector of this model yet: `opsweave \
                 embed` makes them)"
            );
        } else {
            outln!("no records match");
        }
    }
    for hit in &hits {
        print_hit(hit);
    }
    Ok(())
}

/// Whether some record of `scope` waits for a vector of the configured model (when that cannot
/// be told, yes: the hint to embed is then the safer one).
async fn unembedded_records(weave: &Weave, scope: &Scope) -> bool {
    let (Some(vectors), Ok(embedder)) = (weave.vectors(), weave.embedder().await) else {
        return true;
    };
    vectors
        .stale(&embedder.info().name, scope, None, 1)
        .await
        .map_or(true, |stale| !stale.is_empty())
}

fn print_hit(hit: &RecallHit) {
    let why: Vec<String> = hit
        .explanation
        .found_by
        .iter()
        .map(|h| format!("{:?} #{}", h.ranker, h.rank).to_lowercase())
        .collect();
    let recency = hit
        .explanation
        .recency
        .map(|f| format!(", recency ×{f:.2}"))
        .unwrap_or_default();
    outln!(
        "{} {:.4} [{}{}] {} ({} from {})",
        hit.id,
        hit.explanation.score,
        why.join(", "),
        recency,
        hit.title,
        hit.entity,
        hit.source_kind
    );
    if !hit.snippet.is_empty() {
        outln!("    {}", hit.snippet.replace('\n', " "));
    }
}

/// `opsweave remember`.
pub async fn remember(weave: &Weave, args: &RememberArgs) -> Result<()> {
    // Open the model first, so `ms` is the note's own cost (embed + store), as in a long-lived
    // process that has the model loaded.
    let replace = args
        .replace
        .as_deref()
        .map(|id| id.parse::<RecordId>().map_err(|e| e.on_field("replace")))
        .transpose()?;
    weave.embedder().await?;
    let started = Instant::now();
    let scope = weave.default_scope();
    let id = match replace {
        Some(id) => {
            let tags = (!args.tag.is_empty()).then_some(args.tag.as_slice());
            weave.update_memory(&scope, id, &args.text, tags).await?.id
        }
        None => weave.remember(&scope, &args.text, &args.tag).await?,
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if args.json {
        crate::output::print_json(&json!({ "id": id, "ms": ms }));
    } else {
        outln!("{id}");
    }
    Ok(())
}

/// `opsweave forget`.
pub async fn forget(weave: &Weave, args: &ForgetArgs) -> Result<()> {
    let id: RecordId = args.id.parse().map_err(|e: Error| e.on_field("id"))?;
    weave.forget(&weave.default_scope(), id).await?;
    outln!("forgot {id}");
    Ok(())
}

/// One line of a JSON Lines file, or a clear error naming file, line and field.
fn jsonl(path: &Path) -> Result<Vec<(u64, serde_json::Map<String, serde_json::Value>)>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid(format!("cannot open: {e}")).in_file(name.clone()))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|e| {
            Error::invalid(format!("cannot read (is it UTF-8?): {e}"))
                .in_file(name.clone())
                .at_line(n)
        })?;
        // A byte-order mark some editors write before the first line is not part of the JSON.
        let line = if n == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(&line)
        } else {
            &line
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Error::invalid(format!("not JSON: {e}"))
                .in_file(name.clone())
                .at_line(n)
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(Error::invalid("not a JSON object")
                .in_file(name.clone())
                .at_line(n));
        };
        rows.push((n, map));
    }
    Ok(rows)
}

/// A string field of a JSON Lines row (ids may be numbers).
fn text_field(
    row: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    required: bool,
    file: &Path,
    line: u64,
) -> Result<String> {
    let err = |why: &str| {
        Error::invalid(why.to_string())
            .in_file(file.display().to_string())
            .at_line(line)
            .on_field(field)
    };
    match row.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::Null) | None if !required => Ok(String::new()),
        None => Err(err(&format!("missing `{field}`"))),
        Some(_) => Err(err(&format!("`{field}` must be a string"))),
    }
}

/// Judgements: query id → (document id → grade).
type Qrels = HashMap<String, HashMap<String, u32>>;

fn read_qrels(path: &Path) -> Result<Qrels> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read: {e}")).in_file(name.clone()))?;
    let mut qrels: Qrels = HashMap::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        let bad = |field: &str, why: String| {
            Error::invalid(why)
                .in_file(name.clone())
                .at_line(n)
                .on_field(field)
        };
        if cols.len() < 3 {
            return Err(bad(
                "score",
                format!(
                    "expected 3 tab-separated columns (query-id, corpus-id, score), found {}",
                    cols.len()
                ),
            ));
        }
        let score = match cols[cols.len() - 1].parse::<i64>() {
            Ok(s) => s,
            // BEIR files start with a `query-id corpus-id score` header; a first line whose
            // score is merely bad is an error like any other, not a header to skip.
            Err(_) if n == 1 && is_qrels_header(&cols) => continue,
            Err(_) => {
                return Err(bad(
                    "score",
                    format!("score `{}` is not a whole number", cols[cols.len() - 1]),
                ))
            }
        };
        // TREC qrels have four columns (query, iteration, doc, score); BEIR has three.
        let (query, doc) = (cols[0], cols[cols.len() - 2]);
        if query.is_empty() || doc.is_empty() {
            return Err(bad("query-id", "empty query or corpus id".into()));
        }
        qrels
            .entry(query.to_string())
            .or_default()
            .insert(doc.to_string(), score.max(0) as u32);
    }
    Ok(qrels)
}

/// True for a qrels header such as BEIR's `query-id  corpus-id  score`: no column is a number
/// and the first names a query.
fn is_qrels_header(cols: &[&str]) -> bool {
    cols.iter().all(|c| c.parse::<f64>().is_err()) && cols[0].to_ascii_lowercase().contains("query")
}

/// The mapping evaluation corpora are ingested with: id, title and text of a BEIR document.
const CORPUS_MAPPING: &str = r#"
name = "beir-corpus"
source = "corpus"
entity = "document"
id = "/_id"
title = "{/title}"
body = "{/text}"
"#;

/// Characters of a document's text that stand in for an empty title.
const TITLE_FROM_TEXT: usize = 80;

/// Refuses, before anything is written, an `--index-db` that holds anything but this corpus:
/// records of other sources (the user's own database, which the corpus would be written into)
/// or documents of another corpus, which would be ranked among this one's and skew every score.
/// A file that is not an opsweave database yet is left to the store to judge.
fn check_index_db(path: &Path, corpus: &HashSet<String>) -> Result<()> {
    use rusqlite::OptionalExtension;
    let name = path.display().to_string();
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Ok(());
    };
    let other: Option<String> = conn
        .query_row(
            "SELECT source_kind FROM records WHERE source_kind <> 'corpus' LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .unwrap_or(None);
    if let Some(source) = other {
        return Err(Error::invalid(format!(
            "--index-db holds records of source `{source}`, not only an evaluation corpus: \
             give a new file (or one an earlier `eval recall` made), never a working database"
        ))
        .in_file(name)
        .on_field("index-db"));
    }
    let Ok(mut statement) =
        conn.prepare("SELECT external_id FROM records WHERE source_kind = 'corpus'")
    else {
        return Ok(());
    };
    let held = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::internal(format!("cannot read the indexed documents: {e}")))?;
    let foreign = held.iter().filter(|id| !corpus.contains(*id)).count();
    if foreign > 0 {
        return Err(Error::invalid(format!(
            "--index-db holds {foreign} documents that are not in this corpus (from an earlier \
             corpus): use one --index-db per corpus"
        ))
        .in_file(name)
        .on_field("index-db"));
    }
    Ok(())
}

/// `opsweave eval recall`: indexes the corpus, runs every judged query and scores the ranking.
pub async fn eval_recall(config: Config, args: &EvalRecallArgs) -> Result<()> {
    let mode: RecallMode = args.mode.parse()?;
    let load_start = Instant::now();
    let corpus = jsonl(&args.corpus)?;
    let queries = jsonl(&args.queries)?;
    let qrels = read_qrels(&args.qrels)?;
    let mut rows = Vec::with_capacity(corpus.len());
    let mut seen = HashSet::new();
    for (line, row) in &corpus {
        // Trimmed as the ingest mapping and the qrels reader trim them.
        let id = text_field(row, "_id", true, &args.corpus, *line)?
            .trim()
            .to_string();
        if id.is_empty() {
            return Err(Error::invalid("empty `_id`")
                .in_file(args.corpus.display().to_string())
                .at_line(*line)
                .on_field("_id"));
        }
        if !seen.insert(id.clone()) {
            return Err(Error::invalid(format!("document `{id}` appears twice"))
                .in_file(args.corpus.display().to_string())
                .at_line(*line)
                .on_field("_id"));
        }
        let text = text_field(row, "text", true, &args.corpus, *line)?;
        let mut title = text_field(row, "title", false, &args.corpus, *line)?;
        if title.trim().is_empty() {
            title = opsweave::recall::title_from_text(&text, TITLE_FROM_TEXT);
        }
        if title.trim().is_empty() {
            return Err(Error::invalid("document has neither title nor text")
                .in_file(args.corpus.display().to_string())
                .at_line(*line)
                .on_field("text"));
        }
        rows.push(json!({ "_id": id, "title": title, "text": text }));
    }
    if rows.is_empty() {
        return Err(Error::invalid("the corpus holds no documents")
            .in_file(args.corpus.display().to_string()));
    }
    let mut judged = Vec::new();
    let mut query_ids = HashSet::new();
    for (line, row) in &queries {
        let id = text_field(row, "_id", true, &args.queries, *line)?
            .trim()
            .to_string();
        let text = text_field(row, "text", true, &args.queries, *line)?;
        if !query_ids.insert(id.clone()) {
            return Err(Error::invalid(format!("query `{id}` appears twice"))
                .in_file(args.queries.display().to_string())
                .at_line(*line)
                .on_field("_id"));
        }
        if let Some(grades) = qrels.get(&id) {
            judged.push((id, text, grades));
        }
    }
    let missing = qrels.keys().filter(|q| !query_ids.contains(*q)).count();
    if missing > 0 {
        eprintln!(
            "warning: {}: {missing} judged query id(s) are not in {}; skipped",
            args.qrels.display(),
            args.queries.display()
        );
    }
    if judged.is_empty() {
        return Err(Error::invalid(
            "no query in the queries file has judgements in the qrels file",
        )
        .in_file(args.qrels.display().to_string()));
    }
    // Relevant documents of the queries run that the corpus lacks: found by no ranking.
    let unjudgeable = judged
        .iter()
        .flat_map(|(_, _, grades)| grades.iter())
        .filter(|(doc, grade)| **grade > 0 && !seen.contains(*doc))
        .count();
    if unjudgeable > 0 {
        eprintln!(
            "warning: {}: {unjudgeable} relevant judgement(s) name documents that are not in {}; \
             they count as relevant documents never found",
            args.qrels.display(),
            args.corpus.display()
        );
    }

    let temp = tempfile::tempdir()
        .map_err(|e| Error::internal(format!("cannot make a temporary folder: {e}")))?;
    let db = args
        .index_db
        .clone()
        .unwrap_or_else(|| temp.path().join("eval.db"));
    if let Some(kept) = &args.index_db {
        check_index_db(kept, &seen)?;
    }
    let mut config = with_model(config, args.model.as_deref());
    config.db = format!("sqlite://{}", db.display());
    let weave = Weave::open_with(config).await?;
    // Closed on every way out: a kept --index-db is left checkpointed, its vector graph saved.
    let scored = async {
        let scope = weave.default_scope();
        let mapping = Mapping::from_toml(CORPUS_MAPPING)?;
        let ingest = weave
            .ingest_rows(rows, &args.corpus.display().to_string(), &mapping, &scope)
            .await?;
        if ingest.rejected_total > 0 {
            let first = ingest.rejected.first().map(|r| r.reason.clone());
            return Err(Error::invalid(format!(
                "{} documents could not be indexed (first: {})",
                ingest.rejected_total,
                first.unwrap_or_default()
            ))
            .in_file(args.corpus.display().to_string()));
        }
        let load_seconds = load_start.elapsed().as_secs_f64();
        let mut embed_seconds = 0.0;
        let mut model = None;
        if mode.uses_dense() {
            let embedder = weave.embedder().await?;
            let report = weave.embed(&scope, &*embedder, None).await?;
            embed_seconds = report.seconds;
            model = Some(report.model);
        }

        let options = RecallOptions {
            k: EVAL_DEPTH,
            mode,
            ..RecallOptions::default()
        };
        let mut latencies = Vec::with_capacity(judged.len());
        let (mut r1, mut r5, mut r10, mut r20, mut ndcg, mut mrr) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for (_, text, grades) in &judged {
            let started = Instant::now();
            // An empty query finds nothing in every mode; it still counts (but is not timed).
            let hits = if text.trim().is_empty() {
                Vec::new()
            } else {
                match weave.recall(&scope, text, &options).await {
                    Ok(hits) => hits,
                    // A query with no searchable words finds nothing by BM25; it still counts.
                    Err(e)
                        if e.kind() == opsweave::ErrorKind::InvalidInput && !mode.uses_dense() =>
                    {
                        Vec::new()
                    }
                    Err(e) => return Err(e),
                }
            };
            if !text.trim().is_empty() {
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            let ranked = ranked_ids(&weave, &scope, &hits).await?;
            r1 += recall_at(&ranked, grades, 1);
            r5 += recall_at(&ranked, grades, 5);
            r10 += recall_at(&ranked, grades, 10);
            r20 += recall_at(&ranked, grades, 20);
            ndcg += ndcg_at(&ranked, grades, 10);
            mrr += reciprocal_rank(&ranked, grades);
        }
        let n = judged.len() as f64;
        let report = json!({
            "mode": mode.as_str(),
            "model": model,
            "documents": corpus.len(),
            "queries": judged.len(),
            "recall@1": r1 / n,
            "recall@5": r5 / n,
            "recall@10": r10 / n,
            "recall@20": r20 / n,
            "ndcg@10": ndcg / n,
            "mrr": mrr / n,
            "p50_ms": percentile(&latencies, 50.0),
            "p99_ms": percentile(&latencies, 99.0),
            "index_seconds": load_seconds,
            "embed_seconds": embed_seconds,
        });
        if args.json {
            crate::output::print_json(&report);
        } else {
            outln!(
                "{} on {} documents, {} queries: recall@10 {:.4}  nDCG@10 {:.4}  MRR@20 {:.4}  p50 {:.2} ms  p99 {:.2} ms",
                mode,
                corpus.len(),
                judged.len(),
                r10 / n,
                ndcg / n,
                mrr / n,
                percentile(&latencies, 50.0),
                percentile(&latencies, 99.0)
            );
        }
        Ok::<(), Error>(())
    }
    .await;
    weave.close().await;
    scored
}

/// The corpus ids of `hits`, in rank order (recall answers with record ids).
async fn ranked_ids(
    weave: &Weave,
    scope: &opsweave::Scope,
    hits: &[RecallHit],
) -> Result<Vec<String>> {
    let ids: Vec<RecordId> = hits.iter().map(|h| h.id).collect();
    let records = weave.store().records_by_id(scope, &ids).await?;
    let external: HashMap<RecordId, String> = records
        .into_iter()
        .map(|r| (r.id, r.source.external_id))
        .collect();
    Ok(ids
        .iter()
        .filter_map(|id| external.get(id).cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qrels_take_a_header_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("q.tsv");
        std::fs::write(
            &path,
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t0\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let qrels = read_qrels(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(qrels["q1"]["d2"], 2);
        assert_eq!(qrels["q2"]["d3"], 0);
        std::fs::write(&path, "q1\td1\t1\nq1\td2\n").unwrap_or_else(|e| panic!("{e}"));
        let err = read_qrels(&path).unwrap_err();
        assert_eq!(err.location().line, Some(2));
        std::fs::write(&path, "q1\td1\t1\nq1\td2\tx\n").unwrap_or_else(|e| panic!("{e}"));
        let err = read_qrels(&path).unwrap_err();
        assert!(err.message().contains("`x`"), "{err}");
        assert_eq!(err.location().field.as_deref(), Some("score"));
    }
}
