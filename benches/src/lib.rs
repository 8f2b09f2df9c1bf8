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
