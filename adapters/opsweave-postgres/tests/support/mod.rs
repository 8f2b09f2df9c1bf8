//! Fresh databases on the test server named by `OPSWEAVE_TEST_POSTGRES_URL`.
#![allow(dead_code)]

use sqlx::{Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The server URL, or `None` (after saying so, loudly) when tests may skip it.
///
/// Skipping is allowed only when `OPSWEAVE_REQUIRE_SERVERS` is unset: the project's test command
/// (scripts/test.sh) starts a server and sets it, so a missing server fails there.
pub fn server_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_POSTGRES_URL", test)
}

/// Databases created for one test, dropped when it ends.
pub struct Databases {
    server: String,
    prefix: String,
    made: Mutex<Vec<String>>,
    counter: AtomicUsize,
}

impl Databases {
    /// A set of databases named after `test` and this process.
    pub fn new(server: &str, test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            server: server.to_string(),
            prefix: format!("ow_{test}_{}_{nanos}", std::process::id()),
            made: Mutex::new(Vec::new()),
            counter: AtomicUsize::new(0),
        }
    }

    /// Creates a new empty database and returns its URL.
    pub async fn create(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}_{n}", self.prefix);
        let mut admin = PgConnection::connect(&self.server)
            .await
            .expect("connect to the test server");
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create a test database");
        admin.close().await.ok();
        let url = with_database(&self.server, &name);
        self.made.lock().expect("lock").push(name);
        url
    }

    /// Drops every database this set made (connections still open are ended).
    pub async fn drop_all(&self) {
        let mut admin = PgConnection::connect(&self.server)
            .await
            .expect("connect to the test server");
        let made = std::mem::take(&mut *self.made.lock().expect("lock"));
        for name in &made {
            admin
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await
                .expect("drop a test database");
        }
    }
}

/// `url` with its database path replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, query) = match rest.find(['/', '?']) {
        Some(i) => {
            let (authority, tail) = rest.split_at(i);
            let query = tail.find('?').map_or("", |q| &tail[q..]);
            (authority, query)
        }
        None => (rest, ""),
    };
    format!("{scheme}://{authority}/{database}{query}")
}
