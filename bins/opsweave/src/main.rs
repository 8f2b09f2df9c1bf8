//! The opsweave command line (work in progress).
fn main() {}
