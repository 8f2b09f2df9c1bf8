//! Embedding throughput of the ONNX adapter: one `embed` call over a whole corpus, timed.
//!
//! `cargo run --release -p opsweave-benches --bin embed_throughput -- MODEL_DIR TEXTS.jsonl
//!  THREADS sorted|fixed RUNS [VECTORS_OUT]`
//!
//! TEXTS.jsonl holds one JSON string per line. The model runs with THREADS intra-op threads and
//! one session; `sorted` is the adapter's own length-sorted batching, `fixed` batches in input
//! order under the same padded-token budget. Prints one JSON object: texts, tokens, and wall and
//! CPU seconds of every run (after one untimed warm-up call). VECTORS_OUT, when given, receives
//! the vectors of every 50th text of the first run, for comparison with Python.
//! `benches/embed/run.sh` runs this beside `benches/embed/python_embed.py`.

use std::io::{BufRead, Write};
use std::time::Instant;

use opsweave_benches::process_cpu_seconds;
use opsweave_core::embed::EmbedKind;
use opsweave_onnx::{OnnxConfig, OnnxEmbedder};

/// Every how many texts a vector is kept for the comparison with Python.
const SAMPLE_EVERY: usize = 50;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, texts_path, threads, order, runs, rest @ ..] = &args[..] else {
        return Err(
            "usage: embed_throughput MODEL_DIR TEXTS.jsonl THREADS sorted|fixed RUNS [VECTORS_OUT]"
                .into(),
        );
    };
    let threads: usize = threads.parse()?;
    let runs: usize = runs.parse()?;
    let sorted = match order.as_str() {
        "sorted" => true,
        "fixed" => false,
        other => return Err(format!("order must be `sorted` or `fixed`, not `{other}`").into()),
    };
    let mut texts = Vec::new();
    let file = std::io::BufReader::new(std::fs::File::open(texts_path)?);
    for (i, line) in file.lines().enumerate() {
        let text: String = serde_json::from_str(&line?)
            .map_err(|e| format!("{texts_path}, line {}: {e}", i + 1))?;
        texts.push(text);
    }

    // ORT_DYLIB_PATH names the library; one session, so THREADS is the whole inference budget.
    let embedder = OnnxEmbedder::open(
        OnnxConfig::new(model_dir)
            .with_intra_threads(threads)
            .with_sessions(1)
            .with_sorted_batches(sorted),
    )?;
    let warm_up: Vec<String> = texts.iter().take(64).cloned().collect();
    embedder.embed_blocking(warm_up, EmbedKind::Document)?;

    let mut measured = Vec::new();
    let mut tokens = 0;
    for run in 0..runs {
        let cpu_before = process_cpu_seconds();
        let started = Instant::now();
        let out = embedder.embed_blocking(texts.clone(), EmbedKind::Document)?;
        let wall = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        tokens = out.tokens;
        measured.push(serde_json::json!({"wall_s": wall, "cpu_s": cpu}));
        if run == 0 {
            if let Some(path) = rest.first() {
                let sample: Vec<_> = out
                    .vectors
                    .iter()
                    .enumerate()
                    .step_by(SAMPLE_EVERY)
                    .map(|(i, v)| serde_json::json!({"index": i, "vector": v}))
                    .collect();
                std::fs::write(path, serde_json::to_vec(&sample)?)?;
            }
        }
    }
    let report = serde_json::json!({
        "implementation": "opsweave-onnx",
        "order": order,
        "threads": threads,
        "texts": texts.len(),
        "tokens": tokens,
        "runs": measured,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{report}")?;
    Ok(())
}
