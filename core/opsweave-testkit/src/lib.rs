//! opsweave-testkit (work in progress).
