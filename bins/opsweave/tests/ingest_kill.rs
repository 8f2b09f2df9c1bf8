//! `opsweave ingest` killed while it writes (SIGKILL, no chance to clean up): the store stays
//! consistent and running the same command again completes the ingest, both for the bulk load of
//! a first ingest and for batch-by-batch ingest into a store that holds records.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use rusqlite::Connection;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAPPING: &str = r#"
name = "kill-tasks"
source = "tracker"
entity = "task"
format = "csv"
id = "id"
title = "{title}"
body = "{body}"
[fields.title]
from = "title"
required = true
[fields.body]
from = "body"
[fields.due]
from = "due"
type = "date"
[task]
due = "due"
"#;

/// Rows of the file that is killed midway.
const ROWS: usize = 40_000;

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsweave"));
    cmd.args(args)
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("kill.db").display()))
        .current_dir(dir)
        .env_remove("OPSWEAVE_DB")
        .env_remove("OPSWEAVE_ORG");
    cmd
}

fn ingest_json(dir: &Path, file: &str) -> Value {
    let out = command(dir, &["ingest", file, "--mapping", "kill.toml", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tasks_csv(prefix: &str, rows: usize) -> String {
    let mut csv = String::from("id,title,body,due\n");
    for i in 0..rows {
        writeln!(
            csv,
            "{prefix}-{i},{prefix} task {i} security review,details of {i},2026-12-{:02}",
            1 + i % 28
        )
        .unwrap();
    }
    csv
}

/// Starts ingesting `file` and kills the process once it has written: its WAL has grown past
/// 1 MiB, or (a first load into a store it has alone, which skips the WAL) its rollback journal
/// is hot, its header complete: SQLite completes it just before it writes the database file.
/// False when it ended first.
fn kill_midway(dir: &Path, file: &str) -> bool {
    let mut child = command(dir, &["ingest", file, "--mapping", "kill.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wal = dir.join("kill.db-wal");
    let journal = dir.join("kill.db-journal");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let written = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if written > 1 << 20 || is_hot(&journal) || started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        // The database file is written in a moment at the end of a small load: look often.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `journal` has the header SQLite writes once its pages are synced (the first 8 bytes
/// stay zero until then, and a journal without them is not rolled back).
fn is_hot(journal: &Path) -> bool {
    const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    let mut header = [0u8; 8];
    std::fs::File::open(journal)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| header == MAGIC)
}

/// SQLite's checks of the file and of the full-text index; the number of records.
fn intact_records(dir: &Path) -> i64 {
    let conn = Connection::open(dir.join("kill.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    conn.execute(
        "INSERT INTO records_fts (records_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .unwrap();
    conn.query_row("SELECT count(*) FROM records", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_killed_first_ingest_leaves_an_empty_store_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("kill.toml"), MAPPING).unwrap();
    std::fs::write(dir.join("big.csv"), tasks_csv("B", ROWS)).unwrap();

    let killed = kill_midway(dir, "big.csv");
    // Left behind by the kill: opening the store again rolls the load back from it. (A kill
    // that lands in the moment after the commit removed it finds none, and the load is whole.)
    let hot_journal = is_hot(&dir.join("kill.db-journal"));
    eprintln!("first ingest killed midway: {killed}; hot journal: {hot_journal}");
    // The rerun's own open meets the journal first.
    let rerun = ingest_json(dir, "big.csv");
    assert!(
        !dir.join("kill.db-journal").exists(),
        "rolled back and removed"
    );
    if killed && hot_journal {
        // The bulk load commits whole or not at all: the rerun finds nothing of it.
        assert_eq!(
            rerun["inserted"], ROWS as u64,
            "a killed bulk load kept records"
        );
    }
    assert_eq!(
        rerun["inserted"].as_u64().unwrap() + rerun["unchanged"].as_u64().unwrap(),
        ROWS as u64
    );
    assert_eq!(rerun["updated"], 0);
    assert_eq!(intact_records(dir), ROWS as i64);
}

#[test]
fn a_killed_ingest_into_a_filled_store_keeps_whole_batches_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("kill.toml"), MAPPING).unwrap();
    std::fs::write(dir.join("opsweave.toml"), "[ingest]\nbatch_size = 2000\n").unwrap();
    std::fs::write(dir.join("small.csv"), tasks_csv("S", 10)).unwrap();
    std::fs::write(dir.join("big.csv"), tasks_csv("B", ROWS)).unwrap();
    assert_eq!(ingest_json(dir, "small.csv")["inserted"], 10);

    let killed = kill_midway(dir, "big.csv");
    let kept = intact_records(dir) - 10;
    eprintln!("second ingest killed midway: {killed}; records kept: {kept}");
    if killed {
        // Batch by batch: what was committed stays, in whole batches.
        assert!(
            kept % 2_000 == 0 && (kept as usize) < ROWS,
            "a killed ingest kept {kept} records"
        );
    }
    let rerun = ingest_json(dir, "big.csv");
    assert_eq!(rerun["unchanged"].as_u64().unwrap(), kept as u64);
    assert_eq!(
        rerun["inserted"].as_u64().unwrap(),
        ROWS as u64 - kept as u64
    );
    assert_eq!(intact_records(dir), ROWS as i64 + 10);
}
