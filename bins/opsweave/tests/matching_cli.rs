//! `opsweave match` and `opsweave review`, run end to end on a temporary database.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data")
        .join(name)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(args)
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("m.db").display()))
        .current_dir(dir)
        .env_remove("OPSWEAVE_DB")
        .env_remove("OPSWEAVE_ORG")
        .output()
        .unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn match_links_the_opportunity_samples_and_review_checks_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, preset) in [
        ("odoo-crm-lead.csv", "odoo-crm-lead"),
        ("ace-opportunity.csv", "ace-opportunity"),
    ] {
        let path = data(file);
        json(
            d,
            &[
                "ingest",
                path.to_str().unwrap(),
                "--preset",
                preset,
                "--json",
            ],
        );
    }
    let report = json(
        d,
        &["match", "--preset", "odoo-ace-opportunities", "--json"],
    );
    assert_eq!(report["mode"], "full");
    assert_eq!(report["left_records"], 10);
    assert_eq!(report["right_records"], 8);
    assert!(report["matched"].as_u64().unwrap() >= 3, "{report}");

    let incremental = json(
        d,
        &[
            "match",
            "--preset",
            "odoo-ace-opportunities",
            "--incremental",
            "--json",
        ],
    );
    assert_eq!(incremental["mode"], "incremental");
    assert_eq!(incremental["new_records"], 0);

    // All four planted twins are confident: nothing left to review.
    assert_eq!(report["matched"], 4, "{report}");
    let queue = json(d, &["review", "list", "--json"]);
    assert_eq!(
        queue.as_array().unwrap().len(),
        report["review"].as_u64().unwrap() as usize
    );

    // Unknown pair: not found (exit 1); bad id: bad input (exit 2); unknown preset: exit 2.
    let out = run(
        d,
        &[
            "review",
            "accept",
            "--resolver",
            "odoo-ace-opportunities",
            "1",
            "2",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        d,
        &[
            "review",
            "accept",
            "--resolver",
            "odoo-ace-opportunities",
            "xyz",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(d, &["match", "--preset", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("odoo-ace-opportunities"));
}

#[test]
fn a_resolver_file_with_errors_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("bad.toml"),
        "name = \"x\"\n[left.columns]\na = \"@title\"\n[right.columns]\nb = \"@title\"\n",
    )
    .unwrap();
    let out = run(d, &["match", "--spec", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("share no column"),
        "{err}"
    );
}

#[test]
fn review_list_of_a_resolver_that_never_ran_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["review", "list", "--resolver", "task-dedup"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("task-dedup`") && err.contains("task-dedupe"),
        "{err}"
    );
    // A built-in resolver that has not run yet just has nothing to review.
    let out = run(d, &["review", "list", "--resolver", "task-dedupe"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to review"));
    assert_eq!(
        json(
            d,
            &["review", "list", "--resolver", "task-dedupe", "--json"]
        ),
        serde_json::json!([])
    );
}

#[test]
fn a_duplicate_pair_is_decided_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(d, &["demo", "--json"]);
    json(d, &["match", "--preset", "task-dedupe", "--json"]);
    let queue = json(
        d,
        &["review", "list", "--resolver", "task-dedupe", "--json"],
    );
    let first = &queue.as_array().unwrap()[0];
    let (left, right) = (
        first["left"].as_str().unwrap(),
        first["right"].as_str().unwrap(),
    );
    // Named right first: the same pair, rejected.
    let out = run(
        d,
        &["review", "reject", "--resolver", "task-dedupe", right, left],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = json(
        d,
        &["review", "list", "--resolver", "task-dedupe", "--json"],
    );
    assert_eq!(
        after.as_array().unwrap().len() + 1,
        queue.as_array().unwrap().len(),
        "{after}"
    );
    assert!(after
        .as_array()
        .unwrap()
        .iter()
        .all(|p| (p["left"].as_str(), p["right"].as_str()) != (Some(left), Some(right))));
}
