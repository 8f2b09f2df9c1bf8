//! Benchmark harnesses for opsweave; run with `cargo run --release -p opsweave-benches --bin NAME`.

/// CPU seconds (user + system, all threads) used so far by this process; `None` off Linux.
///
/// CPU time, unlike wall time, barely moves when other work shares the machine.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th, in
    // clock ticks of 1/100 s (USER_HZ on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds of one process from `/proc/PID/stat`: (own user + system, plus that of its
/// children it has reaped), and its parent's pid. `None` off Linux or when it is gone.
fn proc_stat(pid: u32) -> Option<(f64, f64, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let tick = |i: usize| -> Option<f64> { Some(fields.get(i)?.parse::<f64>().ok()? / 100.0) };
    let own = tick(11)? + tick(12)?;
    let reaped = tick(13)? + tick(14)?;
    Some((own, reaped, fields.get(1)?.parse().ok()?))
}

/// The parent of process `pid` (for a PostgreSQL backend: the postmaster).
pub fn parent_pid(pid: u32) -> Option<u32> {
    proc_stat(pid).map(|(_, _, parent)| parent)
}

/// CPU seconds used so far by a server process and all its descendants, live or reaped (a
/// PostgreSQL postmaster with its backends and background processes; a redis-server), and
/// separately by the live descendants whose command line contains `marker` (PostgreSQL backends
/// show their database name there). Server processes owned by another user are readable too:
/// `/proc/PID/stat` is world-readable. `None` off Linux.
pub fn server_cpu_seconds(root: u32, marker: &str) -> Option<(f64, f64)> {
    let (own, reaped, _) = proc_stat(root)?;
    let mut total = own + reaped;
    let mut marked = 0.0;
    let mut parents = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = proc_stat(pid) {
            parents.insert(pid, stat);
        }
    }
    for (pid, (own, reaped, _)) in &parents {
        // A descendant: following parents leads to the root.
        let mut up = *pid;
        let mut hops = 0;
        while up != root && hops < 64 {
            match parents.get(&up) {
                Some((_, _, parent)) if *parent != 0 => up = *parent,
                _ => break,
            }
            hops += 1;
        }
        if up != root || *pid == root {
            continue;
        }
        total += own + reaped;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !marker.is_empty() && String::from_utf8_lossy(&cmdline).contains(marker) {
            marked += own + reaped;
        }
    }
    Some((total, marked))
}

/// The 1-minute load average, for printing beside wall times.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Writes `rows` synthetic task rows (deterministic, the columns of
/// `benches/bindings/tasks-mapping.toml`) to `dir/tasks.csv` and returns its path.
pub fn write_task_csv(dir: &std::path::Path, rows: usize) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let csv = dir.join("tasks.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(out, "id,title,body,due,priority,status,updated")?;
    let words = [
        "migrate", "customer", "renewal", "invoice", "deploy", "security", "review",
    ];
    for i in 0..rows {
        let w = |k: usize| words[(i / (k + 1) + k) % words.len()];
        let due = if i % 10 == 0 {
            String::new()
        } else {
            format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28)
        };
        writeln!(
            out,
            "T-{i},{} {} {} #{i},Details for task {i} and follow-up,{due},P{},open,2026-11-{:02}T09:00:00Z",
            w(0),
            w(1),
            w(2),
            i % 4,
            1 + i % 22
        )?;
    }
    out.flush()?;
    Ok(csv)
}

/// Creates the empty database `name` on the PostgreSQL server at `server` (a URL naming any of
/// its databases) and returns the new database's URL.
pub async fn create_database(
    server: &str,
    name: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(server).await?;
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    admin.close().await?;
    let (base, _) = server
        .rsplit_once('/')
        .ok_or("server URL without a database")?;
    Ok(format!("{base}/{name}"))
}

/// Drops the database `name` from the server at `server`, ending its connections: a bench leaves
/// nothing behind on the server.
pub async fn drop_database(server: &str, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(server).await?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await?;
    admin.close().await?;
    Ok(())
}
