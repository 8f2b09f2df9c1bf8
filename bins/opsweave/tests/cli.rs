//! The `opsweave` binary, run end to end on temporary databases.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data")
        .join(name)
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let db = format!("sqlite://{}", self.dir.path().join("test.db").display());
        Command::new(env!("CARGO_BIN_EXE_opsweave"))
            .args(args)
            .arg("--db")
            .arg(db)
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

fn counts(v: &Value) -> (u64, u64, u64, usize) {
    (
        v["inserted"].as_u64().unwrap(),
        v["updated"].as_u64().unwrap(),
        v["unchanged"].as_u64().unwrap(),
        v["rejected"].as_array().unwrap().len(),
    )
}

#[test]
fn demo_prints_at_most_three_tasks_per_horizon_with_breakdowns() {
    let env = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(["demo", "--json"])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let focus: Value = serde_json::from_slice(&out.stdout).unwrap();
    for horizon in ["today", "week", "month"] {
        let tasks = focus[horizon].as_array().unwrap();
        assert!(
            !tasks.is_empty() && tasks.len() <= 3,
            "{horizon}: {tasks:?}"
        );
        for t in tasks {
            assert!(t["id"].as_str().unwrap().len() == 16);
            assert!(t["score"].as_f64().unwrap() > 0.0);
            assert!(t["breakdown"]["urgency"]["reason"].is_string());
            assert!(t["breakdown"]["importance"]["points"].is_number());
        }
    }
    assert_eq!(
        focus["today"][0]["title"],
        "OPS-101 Globex migration cutover plan"
    );
    // The table form names each component.
    let table = Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .arg("demo")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("TODAY") && text.contains("WEEK") && text.contains("MONTH"),
        "{text}"
    );
    assert!(text.contains("why: urgency"), "{text}");
    // A bad --now is refused before the demo writes anything, so a retry can use the same path.
    let bad = env.run(&["demo", "--now", "bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!env.dir.path().join("test.db").exists());
    let good = env.run(&["demo", "--now", "2026-11-23"]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}

#[test]
fn every_preset_sample_ingests_and_reingest_changes_nothing() {
    let env = Env::new();
    for (preset, file, n) in [
        ("odoo-crm-lead", "odoo-crm-lead.csv", 10),
        ("ace-opportunity", "ace-opportunity.csv", 8),
        ("gmail-message", "gmail-messages.json", 6),
        ("jira-issue", "jira-search.json", 8),
        ("github-issue", "github-issues.json", 6),
    ] {
        let path = data(file);
        let path = path.to_str().unwrap();
        let first = env.json(&["ingest", path, "--preset", preset, "--json"]);
        assert_eq!(counts(&first), (n, 0, 0, 0), "{preset} first");
        let again = env.json(&["ingest", path, "--preset", preset, "--json"]);
        assert_eq!(counts(&again), (0, 0, n, 0), "{preset} again");
    }
    let hits = env.json(&["search", "Globex", "--json"]);
    assert!(hits.as_array().unwrap().len() >= 4, "{hits}");
}

#[test]
fn bad_rows_are_reported_by_line_and_field_and_the_rest_is_stored() {
    let env = Env::new();
    let path = data("odoo-crm-lead-bad-rows.csv");
    let report = env.json(&[
        "ingest",
        path.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--json",
    ]);
    assert_eq!(
        (
            report["inserted"].as_u64(),
            report["rejected"].as_array().unwrap().len()
        ),
        (Some(2), 5)
    );
    let first = &report["rejected"][0];
    assert_eq!(
        (first["line"].as_u64(), first["field"].as_str()),
        (Some(3), Some("date_deadline"))
    );
    assert!(first["reason"].as_str().unwrap().contains("2026-13-01"));
    let written = std::fs::read_to_string(
        env.dir
            .path()
            .join("odoo-crm-lead-bad-rows.csv.rejections.csv"),
    )
    .unwrap();
    assert_eq!(written.lines().count(), 6, "{written}");
    assert!(
        written
            .lines()
            .nth(1)
            .unwrap()
            .contains(",3,date_deadline,"),
        "{written}"
    );
    let again = env.json(&[
        "ingest",
        path.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--json",
    ]);
    assert_eq!(counts(&again), (0, 0, 2, 5));

    // A clean file written to the same rejections file empties it: the earlier run's rows are
    // not this run's.
    let clean = data("odoo-crm-lead.csv");
    let rejections = env
        .dir
        .path()
        .join("odoo-crm-lead-bad-rows.csv.rejections.csv");
    let clean_report = env.json(&[
        "ingest",
        clean.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--rejections",
        rejections.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(clean_report["rejected"].as_array().unwrap().len(), 0);
    assert_eq!(
        std::fs::read_to_string(&rejections).unwrap(),
        "file,line,field,reason\n"
    );
    // With no earlier file, a clean ingest leaves none behind.
    env.json(&[
        "ingest",
        clean.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--json",
    ]);
    assert!(!env
        .dir
        .path()
        .join("odoo-crm-lead.csv.rejections.csv")
        .exists());
}

#[test]
fn a_file_that_is_not_csv_fails_with_exit_code_2_and_one_line() {
    let env = Env::new();
    let png = env.dir.path().join("picture.csv");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00").unwrap();
    let out = env.run(&["ingest", png.to_str().unwrap(), "--preset", "odoo-crm-lead"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("picture.csv") && stderr.contains("line 1"),
        "{stderr}"
    );
    let json = env.dir.path().join("broken.json");
    std::fs::write(&json, "{ not json").unwrap();
    let out = env.run(&["ingest", json.to_str().unwrap(), "--preset", "jira-issue"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["ingest", "missing.csv", "--preset", "odoo-crm-lead"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&[
        "ingest",
        data("odoo-crm-lead.csv").to_str().unwrap(),
        "--preset",
        "salesforce",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("odoo-crm-lead"));
}

#[test]
fn complete_then_undo_restores_and_graph_shows_past7d() {
    let env = Env::new();
    env.json(&[
        "ingest",
        data("jira-search.json").to_str().unwrap(),
        "--preset",
        "jira-issue",
        "--json",
    ]);
    let focus = env.json(&["focus", "--json", "--now", "2026-11-23"]);
    let top = &focus["today"][0];
    let id = top["id"].as_str().unwrap().to_string();
    assert_eq!(top["status"], "doing");
    let done = env.json(&["complete", &id, "--json"]);
    assert_eq!(
        (done["previous"].as_str(), done["status"].as_str()),
        (Some("doing"), Some("done"))
    );
    let again = env.json(&["complete", &id, "--json"]);
    assert_eq!(again["status"], "done", "completing twice is harmless");
    let graph = env.json(&["graph", "--json"]);
    let past: Vec<&str> = graph["lanes"]["past7d"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(past.contains(&id.as_str()), "{graph}");
    let focus = env.json(&["focus", "--json", "--now", "2026-11-23"]);
    assert_ne!(
        focus["today"][0]["id"].as_str(),
        Some(id.as_str()),
        "a done task leaves focus"
    );
    let undone = env.json(&["undo", &id, "--json"]);
    assert_eq!(undone["status"], "doing");
    // Each command closes the database: the `.db` file alone holds every change. Its last
    // connection removes the WAL; one of sqlx's pool connections still closing on its thread when
    // the process ends can leave it behind, checkpointed and empty (seen once in CI).
    let wal = env.dir.path().join("test.db-wal");
    let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(
        left,
        0,
        "a command left {} with {left} bytes",
        wal.display()
    );
    let twice = env.json(&["undo", &id, "--json"]);
    assert_eq!(twice["status"], "doing", "undoing twice is harmless");
    let focus = env.json(&["focus", "--json", "--now", "2026-11-23"]);
    assert_eq!(focus["today"][0]["id"].as_str(), Some(id.as_str()));
    let graph = env.json(&["graph", "--window", "month", "--json"]);
    assert!(graph["lanes"]["past7d"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_str() != Some(id.as_str())));
    assert!(graph["lanes"]["month"].is_array());
    // OPS-105's parent link survives into the graph when both ends are shown.
    assert!(graph["edges"].is_array());
}

#[test]
fn bad_ids_and_arguments_exit_2() {
    let env = Env::new();
    assert_eq!(env.run(&["complete", "not-an-id"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["focus", "--horizon", "soon"]).status.code(),
        Some(2)
    );
    assert_eq!(env.run(&["frobnicate"]).status.code(), Some(2));
    for limits in [
        ["search", "acme", "--limit", "0"],
        ["focus", "--limit", "0", "--json"],
        ["focus", "--limit", "1001", "--json"],
        ["review", "list", "--limit", "0"],
    ] {
        let out = env.run(&limits);
        assert_eq!(out.status.code(), Some(2), "{limits:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not in 1.."),
            "{limits:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let too_big = env.run(&["complete", "ffffffffffffffff"]);
    assert_eq!(too_big.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_big.stderr).contains("7fffffffffffffff"));
    let missing = env.run(&["complete", "0000000000000001"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
    // Either way of reading a file is offered, not only the first; ids the store never
    // assigns are malformed, not missing.
    for (args, said) in [
        (vec!["ingest", "x.csv"], vec!["--preset", "--mapping"]),
        (vec!["match"], vec!["--preset", "--spec"]),
        (vec!["keys", "revoke", "0"], vec!["key id 0"]),
    ] {
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for word in said {
            assert!(stderr.contains(word), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn a_closed_pipe_or_an_impossible_now_ends_without_a_panic() {
    let env = Env::new();
    assert!(env.run(&["demo"]).status.success());
    let db = format!("sqlite://{}", env.dir.path().join("test.db").display());
    // The reader goes away before the command writes (`opsweave graph --json | head -0`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(["graph", "--json", "--db", &db])
        .current_dir(env.dir.path())
        .env_remove("OPSWEAVE_DB")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for now in ["+262142-12-31", "-262143-01-05"] {
        let out = env.run(&["focus", &format!("--now={now}")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{now}: {stderr}");
        assert!(stderr.contains("now"), "{stderr}");
    }
}

#[test]
fn rejections_name_the_same_lines_in_a_crlf_file() {
    let env = Env::new();
    let lf = std::fs::read(data("odoo-crm-lead-bad-rows.csv")).unwrap();
    let crlf: Vec<u8> = lf
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    let path = env.dir.path().join("crlf.csv");
    std::fs::write(&path, crlf).unwrap();
    let lines = |file: &str| -> Vec<(u64, String)> {
        let v = env.json(&["ingest", file, "--preset", "odoo-crm-lead", "--json"]);
        v["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["line"].as_u64().unwrap(),
                    r["field"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let expected = lines(data("odoo-crm-lead-bad-rows.csv").to_str().unwrap());
    assert!(!expected.is_empty());
    assert_eq!(lines(path.to_str().unwrap()), expected);
}

#[test]
fn an_unwritable_rejections_file_is_refused_before_anything_is_stored() {
    let env = Env::new();
    let bad = data("odoo-crm-lead-bad-rows.csv");
    let out = env.run(&[
        "ingest",
        bad.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--rejections",
        "/nonexistent-folder/r.csv",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent-folder/r.csv"), "{stderr}");
    // Nothing was stored: the same file then inserts every good row.
    let v = env.json(&[
        "ingest",
        bad.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--json",
    ]);
    assert!(v["inserted"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn a_rejections_file_never_overwrites_the_input_the_database_or_another_file() {
    let env = Env::new();
    let input = env.dir.path().join("leads.csv");
    std::fs::copy(data("odoo-crm-lead-bad-rows.csv"), &input).unwrap();
    let original = std::fs::read(&input).unwrap();
    let ingest = |rejections: &str| {
        env.run(&[
            "ingest",
            "leads.csv",
            "--preset",
            "odoo-crm-lead",
            "--rejections",
            rejections,
        ])
    };
    // Before the database (or its WAL) exists, its names are refused all the same.
    for target in ["test.db", "./test.db-wal"] {
        let out = ingest(target);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains("the database file"), "{target}: {stderr}");
    }
    // A first ingest makes the database.
    assert!(ingest("first.csv").status.success());
    let notes = env.dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me\n").unwrap();
    let link = env.dir.path().join("link.csv");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    for (target, why) in [
        ("leads.csv", "the file being ingested"),
        ("./link.csv", "the file being ingested"),
        ("test.db", "the database file"),
        ("notes.txt", "not a rejections file"),
    ] {
        let out = ingest(target);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains(why) && stderr.contains(target),
            "{target}: {stderr}"
        );
    }
    assert_eq!(std::fs::read(&input).unwrap(), original);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me\n");
    // The database is intact, and an earlier rejections file is rewritten as before.
    let v = env.json(&["focus", "--json"]);
    assert!(v["today"].is_array(), "{v}");
    assert!(ingest("first.csv").status.success());
}

#[test]
fn a_folder_to_ingest_and_an_unopenable_database_are_the_users_mistakes() {
    let env = Env::new();
    let out = env.run(&["ingest", ".", "--preset", "jira-issue"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("it is a folder"), "{stderr}");
    let missing = format!("sqlite://{}/new.db?mode=ro", env.dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(["focus", "--db", &missing])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be opened"), "{stderr}");
    // A device is not a database file: a clear refusal, not a disk I/O error.
    if Path::new("/dev/null").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_opsweave"))
            .args(["focus", "--db", "sqlite:///dev/null"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
}

#[test]
fn a_column_the_mapping_reads_but_the_header_lacks_is_reported() {
    let env = Env::new();
    let preset = env.run(&["presets", "odoo-crm-lead"]);
    let toml = String::from_utf8(preset.stdout).unwrap().replacen(
        "from = \"expected_revenue\"",
        "from = \"expected_revenu\"",
        1,
    );
    assert!(toml.contains("expected_revenu\""));
    let mapping = env.dir.path().join("typo.toml");
    std::fs::write(&mapping, toml).unwrap();
    let file = data("odoo-crm-lead.csv");
    let args = [
        "ingest",
        file.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
    ];
    let text = env.run(&args);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning") && stdout.contains("`expected_revenu`"),
        "{stdout}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let v = env.json(&json_args);
    assert_eq!(v["missing_columns"], serde_json::json!(["expected_revenu"]));
    // The preset itself reads only columns the sample has.
    let v = env.json(&[
        "ingest",
        file.to_str().unwrap(),
        "--preset",
        "odoo-crm-lead",
        "--json",
    ]);
    assert_eq!(v["missing_columns"], serde_json::json!([]));
}

#[test]
fn mark_changes_only_what_it_names() {
    let env = Env::new();
    assert!(env.run(&["demo"]).status.success());
    let focus = env.json(&["focus", "--json"]);
    let id = focus["today"][0]["id"].as_str().unwrap().to_string();
    let state = |out: Output| String::from_utf8(out.stdout).unwrap();
    assert!(state(env.run(&["mark", &id, "--pin"])).contains("boost 0 pinned true"));
    // A boost keeps the pin, and a bare mark changes nothing.
    assert!(state(env.run(&["mark", &id, "--boost", "5"])).contains("boost 5 pinned true"));
    assert!(state(env.run(&["mark", &id])).contains("boost 5 pinned true"));
    assert!(state(env.run(&["mark", &id, "--unpin"])).contains("boost 5 pinned false"));
    assert!(state(env.run(&["mark", &id, "--boost", "0"])).contains("boost 0 pinned false"));
    assert_eq!(
        env.run(&["mark", &id, "--pin", "--unpin"]).status.code(),
        Some(2)
    );
}

#[test]
fn the_users_time_zone_decides_today_across_daylight_saving() {
    const MAPPING: &str = r#"
name = "zoned"
source = "tracker"
entity = "task"
format = "jsonl"
id = "id"
title = "{title}"
[fields.title]
from = "title"
[fields.due]
from = "due"
type = "datetime"
[task]
due = "due"
"#;
    // 22:30 UTC on 30 June: 1 July in Berlin's summer time (+2), 30 June at a fixed +1.
    const ROWS: &str =
        r#"{"id": "a", "title": "Renew the certificate", "due": "2026-06-30T22:30:00Z"}"#;
    let horizon_in = |priority: &str| {
        let env = Env::new();
        let dir = env.dir.path();
        std::fs::write(
            dir.join("opsweave.toml"),
            format!("[priority]\n{priority}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("zoned.toml"), MAPPING).unwrap();
        std::fs::write(dir.join("tasks.jsonl"), ROWS).unwrap();
        env.json(&["ingest", "tasks.jsonl", "--mapping", "zoned.toml", "--json"]);
        // A naive --now is a wall-clock time in the user's zone: 23:45 on 30 June there.
        let focus = env.json(&["focus", "--json", "--now", "2026-06-30T23:45:00"]);
        ["today", "week", "month"]
            .into_iter()
            .find(|h| {
                focus[*h]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["title"] == "Renew the certificate")
            })
            .unwrap_or_else(|| panic!("{focus}"))
    };
    assert_eq!(horizon_in("time_zone = \"Europe/Berlin\""), "week");
    assert_eq!(horizon_in("utc_offset_minutes = 60"), "today");
    let env = Env::new();
    std::fs::write(
        env.dir.path().join("opsweave.toml"),
        "[priority]\ntime_zone = \"Europe/Berlni\"\n",
    )
    .unwrap();
    let out = env.run(&["focus"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("priority.time_zone") && stderr.contains("Europe/Berlni"),
        "{stderr}"
    );
}

#[test]
fn processes_opening_a_new_database_at_once_all_succeed() {
    // Each one migrates the new file; they used to race (`table raw_items already exists`).
    for round in 0..3 {
        let env = Env::new();
        let db = format!(
            "sqlite://{}",
            env.dir.path().join(format!("new-{round}.db")).display()
        );
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_opsweave"))
                    .args(["focus", "--json", "--db", &db])
                    .current_dir(env.dir.path())
                    .env_remove("OPSWEAVE_DB")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn keys_are_made_listed_and_revoked_from_the_cli_but_never_the_last_admin() {
    let env = Env::new();
    let made = env.json(&["keys", "create", "--name", "ops", "--json"]);
    let secret = made["secret"].as_str().unwrap();
    assert!(secret.len() > 20, "{made}");
    let first = made["key"]["id"].as_i64().unwrap();
    assert_eq!(made["key"]["role"], "admin");
    let list = env.json(&["keys", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(
        !list.to_string().contains(secret),
        "secrets are never listed"
    );
    // The only admin key stays.
    let out = env.run(&["keys", "revoke", &first.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("last live admin key"));
    // With a second admin the first can go; bad input is refused with its field.
    env.json(&["keys", "create", "--name", "ops2", "--json"]);
    let out = env.run(&["keys", "revoke", &first.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A client's view lists only the keys inside it.
    env.json(&[
        "keys", "create", "--name", "bot", "--client", "globex", "--role", "member", "--json",
    ]);
    let all = env.json(&["keys", "list", "--json"]);
    let globex = env.json(&["keys", "list", "--client", "globex", "--json"]);
    assert_eq!(
        (
            all.as_array().unwrap().len(),
            globex.as_array().unwrap().len()
        ),
        (3, 1)
    );
    let out = env.run(&["keys", "create", "--name", "x", "--expires", "bogus"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--expires `bogus` is not a date"),
        "{stderr}"
    );
    // A date is the last day the key works: today's date is not "in the past" at any hour.
    let today = chrono::Utc::now().date_naive();
    let made = env.json(&[
        "keys",
        "create",
        "--name",
        "today",
        "--role",
        "viewer",
        "--expires",
        &today.to_string(),
        "--json",
    ]);
    let midnight = format!("{}T00:00:00Z", today.succ_opt().unwrap());
    assert_eq!(
        made["key"]["expires_at"].as_str(),
        Some(midnight.as_str()),
        "{made}"
    );
    for bad in [
        vec!["keys", "create", "--name", "x", "--role", "root"],
        vec!["keys", "create", "--name", "x", "--expires", "2020-01-01"],
        vec!["keys", "create", "--name", " "],
    ] {
        assert_eq!(env.run(&bad).status.code(), Some(2), "{bad:?}");
    }
}
