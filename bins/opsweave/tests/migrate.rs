//! `opsweave migrate` end to end: the demo database (the sample exports, a completed task, a
//! boost, a match run) copied from SQLite into a fresh PostgreSQL database gives the same
//! `focus --json` and `graph --json`, counts match, and a second copy is refused clearly.
//!
//! The server comes from `OPSWEAVE_TEST_POSTGRES_URL` (scripts/test.sh starts one); each test
//! makes a database of its own on it and drops it at the end.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The server URL, or `None` (said loudly) when tests may skip: only with
/// `OPSWEAVE_REQUIRE_SERVERS` unset, as the project's test command sets it.
fn server_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_POSTGRES_URL", test)
}

/// A database of its own on the test server, dropped when the test ends.
struct Database {
    server: String,
    name: String,
    url: String,
}

impl Database {
    fn create(server: &str, test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("ow_{test}_{}_{nanos}", std::process::id());
        admin(server, &format!("CREATE DATABASE \"{name}\""));
        let (base, query) = server.split_once('?').unwrap_or((server, ""));
        let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
        let url = if query.is_empty() {
            format!("{base}/{name}")
        } else {
            format!("{base}/{name}?{query}")
        };
        Self {
            server: server.to_string(),
            name,
            url,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

fn admin(server: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
        conn.execute(sql).await.unwrap();
        conn.close().await.unwrap();
    });
}

fn opsweave(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(args)
        .current_dir(dir)
        .env_remove("OPSWEAVE_DB")
        .env_remove("OPSWEAVE_ORG")
        .env_remove("OPSWEAVE_CONFIG")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = opsweave(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Builds the demo database as scripts/demo.sh does (`opsweave demo`), then completes the top
/// task of today (so past7d is not empty), boosts and pins another, and runs a match; returns
/// the completed task's id.
fn demo_database(dir: &Path, db: &str) -> String {
    ok(dir, &["demo", "--db", db, "--json"]);
    let focus = json(dir, &["focus", "--db", db, "--json", "--now", "2026-11-23"]);
    let completed = focus["today"][0]["id"].as_str().unwrap().to_string();
    let boosted = focus["week"][0]["id"].as_str().unwrap().to_string();
    ok(dir, &["complete", &completed, "--db", db]);
    ok(
        dir,
        &["mark", &boosted, "--boost", "7.5", "--pin", "--db", db],
    );
    ok(
        dir,
        &["match", "--preset", "odoo-ace-opportunities", "--db", db],
    );
    completed
}

/// Everything a user reads: focus (every horizon, at the samples' day and at a fixed instant
/// just after the completion) and the graph of both windows.
fn views(dir: &Path, db: &str, at: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for now in ["2026-11-23", at] {
        out.push(json(
            dir,
            &[
                "focus", "--db", db, "--json", "--now", now, "--limit", "1000",
            ],
        ));
        for horizon in ["today", "week", "month", "later"] {
            out.push(json(
                dir,
                &[
                    "focus",
                    "--db",
                    db,
                    "--json",
                    "--now",
                    now,
                    "--horizon",
                    horizon,
                    "--limit",
                    "1000",
                ],
            ));
        }
        for window in ["week", "month"] {
            out.push(json(
                dir,
                &[
                    "graph", "--db", db, "--json", "--now", now, "--window", window,
                ],
            ));
        }
    }
    // Search ranks by each backend's own scoring (BM25 or ts_rank): the same records are found.
    let hits = json(
        dir,
        &["search", "Globex", "--db", db, "--json", "--limit", "100"],
    );
    let mut ids: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    out.push(serde_json::json!(ids));
    out.push(json(
        dir,
        &["review", "list", "--db", db, "--json", "--limit", "1000"],
    ));
    out
}

#[test]
fn migrate_copies_the_demo_into_postgres_with_identical_focus_and_graph() {
    let Some(server) = server_url("migrate_copies_the_demo_into_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let sqlite = format!("sqlite://{}", dir.join("demo.db").display());
    let completed = demo_database(dir, &sqlite);
    let pg = Database::create(&server, "cli_migrate");

    let out = ok(
        dir,
        &["migrate", "--from", &sqlite, "--to", &pg.url, "--json"],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let progress = String::from_utf8_lossy(&out.stderr);
    for kind in [
        "records",
        "events",
        "links",
        "match_reviews",
        "jobs",
        "vectors",
    ] {
        assert!(progress.contains(kind), "progress names {kind}: {progress}");
    }
    assert_eq!(report["resumed"], false);
    let tables = report["tables"].as_array().unwrap();
    for t in tables {
        assert_eq!(t["source"], t["target"], "{t}");
    }
    let count = |name: &str| {
        tables.iter().find(|t| t["table"] == name).unwrap()["target"]
            .as_u64()
            .unwrap()
    };
    assert!(count("records") >= 30, "{report}");
    assert_eq!(count("raw_items"), count("records"));
    assert!(
        count("tasks") > 0 && count("links") > 0 && count("match_states") > 0,
        "{report}"
    );
    assert!(count("events") >= 2, "ingests and the completion: {report}");

    let at = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let before = views(dir, &sqlite, &at);
    let after = views(dir, &pg.url, &at);
    for (i, (s, p)) in before.iter().zip(&after).enumerate() {
        assert_eq!(s, p, "view {i} differs between SQLite and PostgreSQL");
    }
    let graph = json(dir, &["graph", "--db", &pg.url, "--json", "--now", &at]);
    let past = graph["lanes"]["past7d"].as_array().unwrap();
    assert!(
        past.iter().any(|v| v.as_str() == Some(&completed)),
        "{graph}"
    );

    // A second copy into the full target is refused, clearly; --resume writes it again.
    let again = opsweave(dir, &["migrate", "--from", &sqlite, "--to", &pg.url]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("--resume"),
        "{stderr}"
    );
    let resumed = json(
        dir,
        &[
            "migrate", "--from", &sqlite, "--to", &pg.url, "--resume", "--json",
        ],
    );
    assert_eq!(resumed["resumed"], true);
    assert_eq!(resumed["tables"], report["tables"], "nothing duplicated");
    assert_eq!(views(dir, &pg.url, &at), before);

    // The same database under another URL is refused before anything is written, even with
    // --resume (which would otherwise accept a target that matches its source).
    let sep = if pg.url.contains('?') { '&' } else { '?' };
    let other = format!("{}{sep}application_name=another_spelling", pg.url);
    let same = opsweave(
        dir,
        &["migrate", "--from", &pg.url, "--to", &other, "--resume"],
    );
    assert_eq!(same.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert!(
        stderr.contains("same database (PostgreSQL system"),
        "{stderr}"
    );

    // The undo history came along: undoing on PostgreSQL restores the task.
    let undone = json(dir, &["undo", &completed, "--db", &pg.url, "--json"]);
    assert_eq!(undone["previous"], "done");
    assert_ne!(undone["status"], "done");
}

#[test]
fn migrate_prints_a_table_and_names_bad_urls() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let from = format!("sqlite://{}", dir.join("demo.db").display());
    demo_database(dir, &from);
    let to = format!("sqlite://{}", dir.join("copy.db").display());
    let out = ok(dir, &["migrate", "--from", &from, "--to", &to]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("every count matches"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("records")), "{table}");
    let a = json(
        dir,
        &["focus", "--db", &from, "--json", "--now", "2026-11-23"],
    );
    let b = json(
        dir,
        &["focus", "--db", &to, "--json", "--now", "2026-11-23"],
    );
    assert_eq!(a, b);

    // --from defaults to --db.
    let third = format!("sqlite://{}", dir.join("third.db").display());
    ok(dir, &["migrate", "--db", &from, "--to", &third]);

    // The source under another spelling (relative to the working directory) is refused.
    for same in ["demo.db", "sqlite:./demo.db", "sqlite://./sub/../demo.db"] {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let out = opsweave(dir, &["migrate", "--from", &from, "--to", same]);
        assert_eq!(out.status.code(), Some(2), "{same}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("same database (SQLite file"),
            "{same}: {stderr}"
        );
    }

    let missing = format!("sqlite://{}", dir.join("nope.db").display());
    let out = opsweave(dir, &["migrate", "--from", &missing, "--to", &to]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let out = opsweave(
        dir,
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            "postgres://ops:hunter2@127.0.0.1:1/x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the target database"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let out = opsweave(
        dir,
        &["migrate", "--from", &from, "--to", &to, "--batch", "0"],
    );
    assert_eq!(out.status.code(), Some(2));
    let help = ok(dir, &["migrate", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--resume") && help.contains("Ids are kept"),
        "{help}"
    );
}
