//! opsweave-sqlite (work in progress).
