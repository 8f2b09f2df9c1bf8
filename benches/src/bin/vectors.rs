//! Vector search through opsweave's `VectorIndex` on the data set `benches/vectors/peers.py gen`
//! wrote: build (batched upserts), then 1,000 queries one at a time, plain and filtered to a 1 %
//! tenant, against exact ground truth. Prints one JSON line; `benches/vectors/run.sh` runs it
//! beside hnswlib and faiss.
//!
//! ```text
//! vectors --data DIR --db sqlite://PATH|postgres://URL [--batch 5000]
//! vectors --data DIR --db sqlite://PATH --existing --ef 128   # queries only, at another ef
//! ```
//!
//! On SQLite the run then saves the graph, reopens it and measures plain queries at ef_search 64,
//! 128, 192 and 256 (the recall / latency curve), the 1 % tenant through the filtered graph walk
//! (exact scan off), and the rebuild of a deleted graph file from the rows. `--no-rebuild` skips
//! the last two: at 1,000,000 vectors they take about as long as the build itself. `--half` stores
//! the SQLite vectors and graph in f16 (the store's choice for models of `half_precision_from`
//! dimensions and more). `--m N` and `--ef-construction N` change the SQLite graph's
//! connectivity and build-time expansion (defaults 16 and 128, as the other engines).
//! `--quantize` keeps the graph's vectors as 8-bit integers and ranks its candidates again by the
//! exact vectors (`VectorOptions::quantize_graph`; pass it with `--existing` too).
//! `--no-flat-walk` walks usearch's own graph instead of the flat copy laid out from the saved
//! file (`VectorOptions::flat_walk`; it applies with `--existing` too).
//! `--exact-scan-limit N` sets the size up to which queries scan every allowed vector exactly
//! (default 10,000; 0 walks the graph even for the smallest model).
//!
//! On PostgreSQL the vectors go in as a bulk load (`PgStore::begin_vector_load`): rows first, the
//! HNSW index built over them at the end with `OPSWEAVE_BENCH_PG_BUILD_MIB` (default 3,072) of
//! `maintenance_work_mem`; the build time includes both.

use opsweave_core::{ModelInfo, RecordId, Scope, VectorFilter, VectorIndex, VectorItem};
use opsweave_postgres::PgStore;
use opsweave_sqlite::SqliteStore;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const K: usize = 10;

struct Data {
    n: usize,
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    gt: Vec<i32>,
    gt_tenant: Vec<i32>,
}

fn floats(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn ints(path: &Path) -> Vec<i32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn load(dir: &Path) -> Data {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("meta.json")).expect("meta.json (run peers.py gen first)"),
    )
    .expect("meta.json is JSON");
    let n = meta["n"].as_u64().expect("n") as usize;
    let dim = meta["dim"].as_u64().expect("dim") as usize;
    Data {
        n,
        dim,
        base: floats(&dir.join("base.f32")),
        queries: floats(&dir.join("queries.f32")),
        gt: ints(&dir.join("gt.i32")),
        gt_tenant: ints(&dir.join("gt_tenant.i32")),
    }
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the state field).
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory in MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(
    vectors: &dyn VectorIndex,
    data: &Data,
    filter: &VectorFilter,
    truth: &[i32],
) -> serde_json::Value {
    let query = |i: usize| &data.queries[i * data.dim..(i + 1) * data.dim];
    let count = data.queries.len() / data.dim;
    for i in 0..count.min(50) {
        vectors
            .knn("bench", query(i), K, filter)
            .await
            .expect("knn");
    }
    let mut latencies = Vec::with_capacity(count);
    let (mut found, mut full) = (0usize, 0usize);
    for i in 0..count {
        let started = Instant::now();
        let hits = vectors
            .knn("bench", query(i), K, filter)
            .await
            .expect("knn");
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        full += usize::from(hits.len() == K);
        let expected = &truth[i * K..(i + 1) * K];
        found += hits
            .iter()
            .filter(|h| expected.contains(&((h.id.raw() - 1) as i32)))
            .count();
    }
    let total: f64 = latencies.iter().sum();
    latencies.sort_by(f64::total_cmp);
    json!({
        "recall@10": found as f64 / (K * count) as f64,
        "full_k": full as f64 / count as f64,
        "qps": count as f64 / (total / 1000.0),
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
    })
}

async fn open_sqlite(
    db: &str,
    graph: &opsweave_sqlite::VectorOptions,
) -> opsweave_core::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(db).await?;
    Ok(Arc::new(store.with_vector_options(graph.clone())))
}

/// Time of the first query of a fresh handle (it loads or rebuilds the graph).
async fn first_query(vectors: &dyn VectorIndex, data: &Data, filter: &VectorFilter) -> f64 {
    let started = Instant::now();
    vectors
        .knn("bench", &data.queries[..data.dim], K, filter)
        .await
        .expect("first query");
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> opsweave_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut data_dir, mut db, mut batch) = (None, None, 5_000usize);
    let (mut existing, mut ef, mut rebuild, mut half) = (false, None, true, false);
    let mut graph = opsweave_sqlite::VectorOptions::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--existing" => existing = true,
            "--no-rebuild" => rebuild = false,
            "--half" => half = true,
            "--quantize" => graph.quantize_graph = true,
            "--no-flat-walk" => graph.flat_walk = false,
            "--exact-scan-limit" => {
                graph.exact_scan_limit = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--exact-scan-limit N")
            }
            "--ef" => ef = args.next().and_then(|e| e.parse::<usize>().ok()),
            "--m" => graph.connectivity = args.next().and_then(|m| m.parse().ok()).expect("--m N"),
            "--ef-construction" => {
                graph.expansion_add = args
                    .next()
                    .and_then(|e| e.parse().ok())
                    .expect("--ef-construction N")
            }
            "--data" => data_dir = args.next().map(PathBuf::from),
            "--db" => db = args.next(),
            "--batch" => batch = args.next().and_then(|b| b.parse().ok()).unwrap_or(batch),
            other => panic!("unknown argument {other}"),
        }
    }
    if half {
        // Every model stored (and graphed) in f16 from its first upsert on.
        graph.half_precision_from = 0;
    }
    let data = load(&data_dir.expect("--data DIR"));
    let db = db.expect("--db URL");
    let postgres = db.starts_with("postgres");
    if existing {
        // A database a full run left (copied aside): the graph loads from its file, and only the
        // queries run, with the given ef.
        let options = opsweave_sqlite::VectorOptions {
            expansion_search: ef.unwrap_or(64),
            quantize_graph: graph.quantize_graph,
            flat_walk: graph.flat_walk,
            ..opsweave_sqlite::VectorOptions::default()
        };
        let store = Arc::new(SqliteStore::open(&db).await?.with_vector_options(options));
        let all = VectorFilter {
            scope: Scope::org("acme"),
            ..VectorFilter::default()
        };
        let load_s = first_query(&*store, &data, &all).await;
        let plain = measure(&*store, &data, &all, &data.gt).await;
        println!(
            "{}",
            json!({"engine": "opsweave SQLite (usearch HNSW)", "flat_walk": graph.flat_walk, "ef": ef.unwrap_or(64),
                   "load_s": load_s, "plain": plain})
        );
        return Ok(());
    }
    let sqlite = if postgres {
        None
    } else {
        Some(open_sqlite(&db, &graph).await?)
    };
    // On PostgreSQL: a fresh database on the server `--db` names, dropped at the end.
    let fresh = format!("opsweave_bench_vectors_{}", std::process::id());
    let server = if postgres {
        let server = PgStore::open(&db).await?;
        sqlx::query(&format!("CREATE DATABASE {fresh}"))
            .execute(server.pool())
            .await
            .expect("create the bench database");
        Some(server)
    } else {
        None
    };
    let pg = match &sqlite {
        Some(_) => None,
        None => {
            let (base, _) = db.split_once('?').unwrap_or((&db, ""));
            let url = format!("{}/{fresh}", base.rsplit_once('/').map_or(base, |(s, _)| s));
            Some(Arc::new(PgStore::open(&url).await?))
        }
    };
    let vectors: Arc<dyn VectorIndex> = match (&sqlite, &pg) {
        (Some(store), _) => store.clone(),
        (None, Some(store)) => store.clone(),
        (None, None) => unreachable!("one store is open"),
    };
    let model = ModelInfo {
        name: "bench".into(),
        dim: data.dim,
        max_tokens: 512,
        fingerprint: None,
    };
    let org = Scope::org("acme");
    let tenant = Scope::org("acme").with_client("tenant");
    let (started, cpu) = (Instant::now(), cpu_seconds());
    // On PostgreSQL a bulk load: rows first, the HNSW index built over them at the end.
    let load = match &pg {
        Some(store) => Some(store.begin_vector_load(&model).await?),
        None => None,
    };
    for start in (0..data.n).step_by(batch) {
        let items: Vec<VectorItem> = (start..(start + batch).min(data.n))
            .map(|i| VectorItem {
                id: RecordId::from_raw(i as i64 + 1),
                scope: if i % 100 == 0 {
                    tenant.clone()
                } else {
                    org.clone()
                },
                entity: opsweave_core::EntityKind::Document,
                source_kind: "bench".into(),
                content_hash: i as u64,
                vector: data.base[i * data.dim..(i + 1) * data.dim].to_vec(),
            })
            .collect();
        match &load {
            Some(load) => load.write(items).await?,
            None => vectors.upsert(&model, items).await?,
        }
    }
    let mut index_s = 0.0;
    if let Some(load) = load {
        let rows_s = started.elapsed().as_secs_f64();
        let memory_mib = std::env::var("OPSWEAVE_BENCH_PG_BUILD_MIB")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(3_072);
        load.finish(memory_mib).await?;
        index_s = started.elapsed().as_secs_f64() - rows_s;
    }
    let build_s = started.elapsed().as_secs_f64();
    let build_cpu_s = cpu_seconds() - cpu;
    // Progress on stderr: a 1M build runs for minutes, and a run cut short still says this much.
    eprintln!(
        "built {} vectors in {build_s:.1} s ({build_cpu_s:.1} CPU s)",
        data.n
    );
    let all = VectorFilter {
        scope: org.clone(),
        ..VectorFilter::default()
    };
    let only_tenant = VectorFilter {
        scope: tenant.clone(),
        ..VectorFilter::default()
    };
    let cpu = cpu_seconds();
    let plain = measure(&*vectors, &data, &all, &data.gt).await;
    let filtered = measure(&*vectors, &data, &only_tenant, &data.gt_tenant).await;
    let query_cpu_s = cpu_seconds() - cpu;
    let rss = peak_rss_mib();
    let mut reopen = json!({});
    if postgres {
        reopen = json!({"index_build_s": index_s});
    }
    drop(vectors);
    drop(pg);
    if let Some(server) = server {
        sqlx::query(&format!("DROP DATABASE {fresh} WITH (FORCE)"))
            .execute(server.pool())
            .await
            .expect("drop the bench database");
    }
    if let Some(store) = sqlite {
        // Save, reopen (the first query loads the file), then delete the file and reopen (the
        // first query rebuilds the graph from the rows).
        let started = Instant::now();
        store.save_vector_indexes().await?;
        let save_s = started.elapsed().as_secs_f64();
        store.close().await;
        drop(store);
        let store = open_sqlite(&db, &graph).await?;
        let load_s = first_query(&*store, &data, &all).await;
        drop(store);
        let mut curve = Vec::new();
        for ef in [64, 96, 128, 192, 256] {
            let options = opsweave_sqlite::VectorOptions {
                expansion_search: ef,
                ..graph.clone()
            };
            let store = open_sqlite(&db, &options).await?;
            first_query(&*store, &data, &all).await;
            let mut point = measure(&*store, &data, &all, &data.gt).await;
            point["ef"] = json!(ef);
            eprintln!("reopened at ef {ef}: {point}");
            curve.push(point);
            store.close().await;
        }
        reopen = json!({"save_s": save_s, "load_s": load_s, "curve": curve});
        if rebuild {
            // The tenant again with the planner's exact scan turned off (by size and by cost):
            // the filtered graph walk.
            let options = opsweave_sqlite::VectorOptions {
                exact_scan_limit: 0,
                plan_by_cost: false,
                ..graph.clone()
            };
            let store = open_sqlite(&db, &options).await?;
            let tenant_graph = measure(&*store, &data, &only_tenant, &data.gt_tenant).await;
            drop(store);
            let path = db.trim_start_matches("sqlite://");
            std::fs::remove_dir_all(format!("{path}.vectors")).ok();
            let store = open_sqlite(&db, &graph).await?;
            let rebuild_s = first_query(&*store, &data, &all).await;
            store.close().await;
            reopen["rebuild_s"] = json!(rebuild_s);
            reopen["tenant_graph_path"] = tenant_graph;
        }
    }
    println!(
        "{}",
        json!({
            "engine": match (postgres, half) {
                (true, _) => "opsweave PostgreSQL (pgvector HNSW, halfvec)",
                (false, false) => "opsweave SQLite (usearch HNSW)",
                (false, true) => "opsweave SQLite (usearch HNSW, f16)",
            },
            "n": data.n,
            "dim": data.dim,
            "flat_walk": !postgres && graph.flat_walk,
            "m": graph.connectivity,
            "ef_construction": graph.expansion_add,
            "quantize_graph": graph.quantize_graph,
            "build_s": build_s,
            "build_cpu_s": build_cpu_s,
            "query_cpu_s": query_cpu_s,
            "peak_rss_mib": rss,
            "plain": plain,
            "tenant": filtered,
            "reopen": reopen,
        })
    );
    Ok(())
}
