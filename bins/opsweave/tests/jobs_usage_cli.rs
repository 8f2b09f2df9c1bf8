//! `opsweave jobs` and `opsweave usage` on an embedded store that the library filled: the jobs
//! and the metered calls a CLI user could otherwise only see over HTTP or from Python and Node.
#![allow(clippy::unwrap_used)]

mod common;

use opsweave::usage::{Operation, UsageEvent};
use opsweave::{Error, NewJob, Scope};
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::time::Duration;

fn opsweave(dir: &std::path::Path, db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsweave"))
        .args(args)
        .args(["--db", db, "--org", "acme"])
        .current_dir(dir)
        .env_remove("OPSWEAVE_DB")
        .env_remove("OPSWEAVE_ORG")
        .env_remove("OPSWEAVE_CONFIG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_shown_and_cancelled_from_the_cli() {
    let (dir, db, weave) = common::embedded("ops.db").await;
    let acme = Scope::org("acme");
    let sleep = weave
        .enqueue(NewJob::new("sleep", acme.clone(), json!({"ms": 60_000})))
        .await
        .unwrap();
    let broken = weave
        .enqueue(
            NewJob::new("agent", acme.clone(), json!({"task": "summarise"})).with_max_attempts(1),
        )
        .await
        .unwrap();
    // An upload carries its whole file: `jobs show` abridges it, `--json` keeps it.
    let upload = weave
        .enqueue(NewJob::new(
            "agent",
            acme.clone(),
            json!({"content": "x".repeat(10_000), "name": "big.csv"}),
        ))
        .await
        .unwrap();
    // Another org's job is not this scope's.
    weave
        .enqueue(NewJob::new(
            "sleep",
            Scope::org("initech"),
            json!({"ms": 1}),
        ))
        .await
        .unwrap();
    let queue = weave.jobs().unwrap().clone();
    let claimed = queue
        .claim(
            "test-worker",
            &["agent".to_string()],
            Duration::from_secs(60),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, broken.id);
    queue
        .fail_with(
            claimed.id,
            "test-worker",
            &Error::internal("sqlite: disk I/O error at /var/lib/opsweave/x.db"),
        )
        .await
        .unwrap();

    let listed: Value = serde_json::from_str(&stdout(&opsweave(
        dir.path(),
        &db,
        &["jobs", "list", "--json"],
    )))
    .unwrap();
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![upload.id.0, broken.id.0, sleep.id.0],
        "newest first, acme's only"
    );
    let id = upload.id.0.to_string();
    let shown = stdout(&opsweave(dir.path(), &db, &["jobs", "show", &id]));
    assert!(
        shown.len() < 1_000 && shown.contains("10000 bytes; --json for all"),
        "{shown}"
    );
    let whole = stdout(&opsweave(dir.path(), &db, &["jobs", "show", &id, "--json"]));
    assert!(whole.contains(&"x".repeat(10_000)));
    let table = stdout(&opsweave(
        dir.path(),
        &db,
        &["jobs", "list", "--status", "failed"],
    ));
    assert_eq!(table.lines().count(), 1, "{table}");
    assert!(
        table.contains("failed") && table.contains("agent"),
        "{table}"
    );

    // On the machine itself the error is shown in full (the HTTP API hides an internal one's).
    let shown = stdout(&opsweave(
        dir.path(),
        &db,
        &["jobs", "show", &broken.id.0.to_string()],
    ));
    assert!(shown.contains("/var/lib/opsweave/x.db"), "{shown}");
    assert!(shown.contains("attempts 1 of 1"), "{shown}");
    assert!(shown.contains("\"task\":\"summarise\""), "{shown}");

    let cancelled = stdout(&opsweave(
        dir.path(),
        &db,
        &["jobs", "cancel", &sleep.id.0.to_string()],
    ));
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    assert_eq!(
        weave.job(&acme, sleep.id).await.unwrap().status,
        opsweave::JobStatus::Cancelled
    );

    // Bad input exits 2 naming the field; another org's job is not found (1).
    for (args, code) in [
        (vec!["jobs", "list", "--status", "stuck"], 2),
        (vec!["jobs", "list", "--limit", "0"], 2),
        (vec!["jobs", "show", "0"], 2),
        (vec!["jobs", "show", "4"], 1),
    ] {
        let out = opsweave(dir.path(), &db, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_sums_and_prices_the_metered_calls() {
    let (dir, db, weave) = common::embedded("ops.db").await;
    let event = |scope: Scope, model: &str, tokens: u64| UsageEvent {
        scope,
        operation: Operation::Embed,
        model: model.into(),
        input_tokens: 0,
        output_tokens: 0,
        embedding_tokens: tokens,
        latency_ms: 5,
        job: None,
        at: chrono::Utc::now() - chrono::Duration::hours(1),
    };
    let emea = Scope::org("acme").with_client("emea");
    weave
        .record_usage(&[
            event(emea.clone(), "text-embedding-3-small", 600_000),
            event(emea, "text-embedding-3-small", 400_000),
            event(Scope::org("acme"), "nomic-embed-text", 1_000),
            event(Scope::org("initech"), "text-embedding-3-small", 9_999),
        ])
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("prices.toml"),
        "[[prices]]\nmodel = \"text-embedding-3-small\"\nkind = \"embedding\"\nusd_per_million = 0.02\n",
    )
    .unwrap();
    let config = dir.path().join("prices.toml");
    let config = config.to_str().unwrap();
    let totals: Value = serde_json::from_str(&stdout(&opsweave(
        dir.path(),
        &db,
        &["usage", "--group-by", "model", "--json", "--config", config],
    )))
    .unwrap();
    let by_model: Vec<(String, u64, u64, Value)> = totals
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["model"].as_str().unwrap().to_string(),
                t["calls"].as_u64().unwrap(),
                t["embedding_tokens"].as_u64().unwrap(),
                t["cost_usd"].clone(),
            )
        })
        .collect();
    assert_eq!(
        by_model,
        vec![
            ("nomic-embed-text".into(), 1, 1_000, Value::Null),
            ("text-embedding-3-small".into(), 2, 1_000_000, json!("0.02")),
        ],
        "acme's calls only: initech's are not summed in"
    );
    // The default grouping is by model, as over HTTP and in the bindings; one column names it.
    let default: Value = serde_json::from_str(&stdout(&opsweave(
        dir.path(),
        &db,
        &["usage", "--json", "--config", config],
    )))
    .unwrap();
    assert_eq!(default, totals);
    let table = stdout(&opsweave(dir.path(), &db, &["usage", "--config", config]));
    let header = table.lines().next().unwrap_or_default();
    assert_eq!(header.matches("model").count(), 1, "{table}");
    let table = stdout(&opsweave(
        dir.path(),
        &db,
        &["usage", "--group-by", "client", "--config", config],
    ));
    assert!(table.contains("emea") && table.contains("0.02"), "{table}");
    assert!(table.contains("no price"), "{table}");
    // Nothing metered in a range says so; a bad grouping or range is the user's mistake.
    let empty = stdout(&opsweave(
        dir.path(),
        &db,
        &["usage", "--from", "2020-01-01", "--to", "2020-02-01"],
    ));
    assert!(empty.starts_with("no metered calls"), "{empty}");
    for args in [
        vec!["usage", "--group-by", "team"],
        vec!["usage", "--from", "2026-02-01", "--to", "2026-01-01"],
    ] {
        assert_eq!(
            opsweave(dir.path(), &db, &args).status.code(),
            Some(2),
            "{args:?}"
        );
    }
}
