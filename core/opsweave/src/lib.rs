//! opsweave (work in progress).
