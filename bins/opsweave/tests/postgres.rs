//! The `opsweave` binary end to end on PostgreSQL: `--db postgres://…` in every command.
//!
//! The server comes from `OPSWEAVE_TEST_POSTGRES_URL` (scripts/test.sh starts one). Each test
//! works in an org of its own, so tests share the database without seeing each other's data.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data")
        .join(name)
}

/// The server URL, or `None` (said loudly) when tests may skip: only with
/// `OPSWEAVE_REQUIRE_SERVERS` unset, as the project's test command sets it.
fn server_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_POSTGRES_URL", test)
}

struct Env {
    dir: tempfile::TempDir,
    db: String,
    org: String,
}

impl Env {
    fn new(test: &str) -> Option<Self> {
        let db = server_url(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            db,
            org: format!("{test}-{}-{nanos}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_opsweave"))
            .args(args)
            .args(["--db", &self.db, "--org", &self.org])
            .current_dir(self.dir.path())
            .env_remove("OPSWEAVE_DB")
            .env_remove("OPSWEAVE_ORG")
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn counts(v: &Value) -> (u64, u64, u64) {
    (
        v["inserted"].as_u64().unwrap(),
        v["updated"].as_u64().unwrap(),
        v["unchanged"].as_u64().unwrap(),
    )
}

#[test]
fn ingest_focus_complete_undo_on_postgres() {
    let Some(env) = Env::new("cli-pg-flow") else {
        return;
    };
    let jira = data("jira-search.json");
    let jira = jira.to_str().unwrap();
    let first = env.json(&["ingest", jira, "--preset", "jira-issue", "--json"]);
    assert_eq!(counts(&first), (8, 0, 0));
    let again = env.json(&["ingest", jira, "--preset", "jira-issue", "--json"]);
    assert_eq!(counts(&again), (0, 0, 8), "re-ingest writes nothing");

    let focus = env.json(&["focus", "--json", "--now", "2026-11-23"]);
    let top = &focus["today"][0];
    let id = top["id"].as_str().unwrap().to_string();
    assert_eq!(top["status"], "doing");
    assert!(top["breakdown"]["urgency"]["reason"].is_string());

    let done = env.json(&["complete", &id, "--json"]);
    assert_eq!(
        (done["previous"].as_str(), done["status"].as_str()),
        (Some("doing"), Some("done"))
    );
    let focus = env.json(&["focus", "--json", "--now", "2026-11-23"]);
    assert_ne!(focus["today"][0]["id"].as_str(), Some(id.as_str()));
    let graph = env.json(&["graph", "--json"]);
    assert!(
        graph["lanes"]["past7d"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(id.as_str())),
        "{graph}"
    );

    let undone = env.json(&["undo", &id, "--json"]);
    assert_eq!(undone["status"], "doing");
    let twice = env.json(&["undo", &id, "--json"]);
    assert_eq!(twice["status"], "doing", "undoing twice is harmless");
    let focus = env.json(&["focus", "--json", "--now", "2026-11-23"]);
    assert_eq!(focus["today"][0]["id"].as_str(), Some(id.as_str()));

    let hits = env.json(&["search", "Globex", "--json"]);
    assert!(!hits.as_array().unwrap().is_empty(), "{hits}");
}

#[test]
fn postgres_gives_the_same_focus_as_sqlite() {
    let Some(env) = Env::new("cli-pg-same") else {
        return;
    };
    let sqlite = format!("sqlite://{}", env.dir.path().join("same.db").display());
    let on = |db: &str, args: &[&str]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_opsweave"))
            .args(args)
            .args(["--db", db, "--org", &env.org])
            .current_dir(env.dir.path())
            .env_remove("OPSWEAVE_DB")
            .env_remove("OPSWEAVE_ORG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{db} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for (preset, file) in [
        ("odoo-crm-lead", "odoo-crm-lead.csv"),
        ("ace-opportunity", "ace-opportunity.csv"),
        ("gmail-message", "gmail-messages.json"),
        ("jira-issue", "jira-search.json"),
        ("github-issue", "github-issues.json"),
    ] {
        let path = data(file);
        let args = [
            "ingest",
            path.to_str().unwrap(),
            "--preset",
            preset,
            "--json",
        ];
        let pg = on(&env.db, &args);
        let lite = on(&sqlite, &args);
        assert_eq!(counts(&pg), counts(&lite), "{preset}");
    }
    // Items without a change time take the ingest's clock (the two ingests are moments apart),
    // so compare what focus decides, not the recency decimals.
    let decided = |v: Value| -> Vec<(String, String, String)> {
        ["today", "week", "month"]
            .iter()
            .flat_map(|h| {
                v[*h]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |t| (h.to_string(), t["id"].to_string(), t["status"].to_string()))
            })
            .collect()
    };
    let args = ["focus", "--json", "--now", "2026-11-23", "--limit", "5"];
    assert_eq!(decided(on(&env.db, &args)), decided(on(&sqlite, &args)));
    // Matching stores its links, model and review queue in either backend alike.
    let args = ["match", "--preset", "odoo-ace-opportunities", "--json"];
    let (pg, lite) = (on(&env.db, &args), on(&sqlite, &args));
    for key in ["left_records", "right_records", "matched", "review"] {
        assert_eq!(pg[key], lite[key], "match {key}: {pg} vs {lite}");
    }
    let args = ["review", "list", "--json"];
    assert_eq!(on(&env.db, &args), on(&sqlite, &args));
    let args = ["graph", "--json", "--now", "2026-11-23"];
    let (pg, lite) = (on(&env.db, &args), on(&sqlite, &args));
    assert_eq!(pg["lanes"], lite["lanes"]);
    assert_eq!(pg["edges"], lite["edges"]);
    let args = ["search", "Globex", "--json"];
    let ids = |v: Value| -> Vec<String> {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(on(&env.db, &args)), ids(on(&sqlite, &args)));
}

#[test]
fn a_bad_postgres_url_is_reported_in_one_line() {
    let Some(env) = Env::new("cli-pg-bad") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(["focus", "--db", "postgres://nobody:secret@127.0.0.1:1/none"])
        .current_dir(env.dir.path())
        .env_remove("OPSWEAVE_DB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("secret"), "the password leaked: {stderr}");
}
