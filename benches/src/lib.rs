//! Benchmark harnesses for opsweave; run with `cargo run --release -p opsweave-benches --bin NAME`.
