//! What several CLI test files share.
#![allow(dead_code)] // each test file uses its own part

use opsweave::{Config, Weave};

/// A fresh embedded database named `file`: its folder, URL and a library handle on it, which a
/// CLI process or worker started on the URL shares.
pub async fn embedded(file: &str) -> (tempfile::TempDir, String, Weave) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join(file).display());
    let weave = Weave::open_with(Config {
        db: db.clone(),
        ..Config::default()
    })
    .await
    .unwrap();
    (dir, db, weave)
}
