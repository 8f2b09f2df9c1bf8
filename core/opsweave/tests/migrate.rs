//! `opsweave::migrate`: every kind copied between backends by URL, counts verified, and the
//! target policy (empty, or an earlier copy with `resume`) kept.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use async_trait::async_trait;
use opsweave::snapshot::{copy_kind, RowCount, Snapshot, SnapshotKey, SnapshotKind, SnapshotPage};
use opsweave::{
    migrate, Config, ErrorKind, MigrateOptions, MigrateProgress, RecordStore, Result, Weave,
};
use opsweave_sqlite::SqliteStore;
use opsweave_testkit::{
    assert_copy_behaves, assert_same_rows, fill_every_kind, Filled, TaskFixture,
};
use std::path::Path;
use std::sync::Arc;

fn url(dir: &Path, name: &str) -> String {
    format!("sqlite://{}", dir.join(name).display())
}

async fn sqlite(url: &str) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(url).await.unwrap())
}

/// A filled SQLite source at `url`, closed so the copy reads what was committed.
async fn filled_source(url: &str) -> (Arc<SqliteStore>, Filled) {
    let store = sqlite(url).await;
    let filled = fill_every_kind(&*store).await;
    (store, filled)
}

async fn run(
    from: &str,
    to: &str,
    resume: bool,
) -> (Result<opsweave::MigrateReport>, Vec<MigrateProgress>) {
    let mut seen = Vec::new();
    let options = MigrateOptions { batch: 2, resume };
    let report = migrate(from, to, &options, &mut |p: &MigrateProgress| seen.push(*p)).await;
    (report, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite_copies_every_kind_and_refuses_a_second_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (url(dir.path(), "from.db"), url(dir.path(), "to.db"));
    let (source, filled) = filled_source(&from).await;

    let (report, progress) = run(&from, &to, false).await;
    let report = report.unwrap();
    assert!(!report.resumed);
    assert_eq!(report.orgs, vec!["acme".to_string(), "globex".to_string()]);
    for t in &report.tables {
        assert!(t.source > 0 && t.source == t.target, "{t:?}");
    }
    for kind in SnapshotKind::ALL {
        let finished = progress
            .iter()
            .find(|p| p.kind == kind && p.finished)
            .unwrap_or_else(|| panic!("{kind}: no finished progress"));
        assert_eq!(finished.copied, report.copied[kind.as_str()]);
        assert_eq!(finished.copied, finished.total, "{kind}");
        assert!(
            progress
                .iter()
                .filter(|p| p.kind == kind && !p.finished && p.copied > 0)
                .count()
                >= 2,
            "{kind}: progress after each page"
        );
    }
    let target = sqlite(&to).await;
    assert_same_rows(&*source, &*target).await;

    // A second copy into the now full target is refused, and writes nothing.
    let (again, _) = run(&from, &to, false).await;
    let err = again.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.message().contains("--resume") && err.message().contains("records"),
        "{err}"
    );
    // With --resume it writes every row again by key: nothing duplicated.
    let (resumed, _) = run(&from, &to, true).await;
    let resumed = resumed.unwrap();
    assert!(resumed.resumed);
    assert_eq!(resumed.tables, report.tables);
    assert_same_rows(&*source, &*target).await;
    assert_copy_behaves(&*source, &*target, &filled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_copy_resumes_and_foreign_data_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (url(dir.path(), "from.db"), url(dir.path(), "to.db"));
    let (source, _) = filled_source(&from).await;

    // A copy that stopped after two pages of records.
    let target = sqlite(&to).await;
    let page = source.export(SnapshotKind::Records, None, 4).await.unwrap();
    target.import(page).await.unwrap();
    let (refused, _) = run(&from, &to, false).await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::Conflict);
    let (report, _) = run(&from, &to, true).await;
    let report = report.unwrap();
    assert!(report.resumed);
    assert_same_rows(&*source, &*target).await;

    // A target with an org of its own is refused, even with --resume, before a row is written.
    let other = url(dir.path(), "other.db");
    let store = sqlite(&other).await;
    let scope = opsweave::Scope::org("initech");
    let item = TaskFixture::new("I-1", "their own task", None, 0.5).item(&scope);
    store
        .ingest_batch(&scope, "own.csv", &[item], &[])
        .await
        .unwrap();
    let before = store.row_counts().await.unwrap();
    for resume in [false, true] {
        let (err, _) = run(&from, &other, resume).await;
        let err = err.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.message().contains("initech"), "{err}");
    }
    assert_eq!(store.row_counts().await.unwrap(), before);
}

#[tokio::test]
async fn bad_urls_and_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let to = url(dir.path(), "to.db");
    let missing = url(dir.path(), "missing.db");
    let (err, _) = run(&missing, &to, false).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.message().contains("missing.db") && err.message().contains("does not exist"),
        "{err}"
    );
    assert!(
        !dir.path().join("missing.db").exists(),
        "a missing source is not created"
    );
    // An empty file or a folder is no source either, and is left as it was.
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    std::fs::create_dir(dir.path().join("folder.db")).unwrap();
    for (name, why) in [("empty.db", "empty file"), ("folder.db", "folder")] {
        let (err, _) = run(&url(dir.path(), name), &to, false).await;
        let err = err.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.message().contains(why), "{err}");
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("empty.db"))
            .unwrap()
            .len(),
        0
    );
    // Nor is a file that is not a database: the store names it, as bad input.
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database, just some text that is long enough".repeat(100),
    )
    .unwrap();
    let err = opsweave::Weave::open(&format!("sqlite://{}", text.display()))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("not a SQLite database"), "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("not a database")),
        "the driver's error stays the cause: {cause:?}"
    );
    let err = opsweave::Weave::open(&format!("sqlite://{}", dir.path().display()))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let from = url(dir.path(), "from.db");
    sqlite(&from).await;
    let (err, _) = run(&from, &from, false).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidInput);
    let (err, _) = run(&from, "mysql://h/db", false).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.message().contains("target") && err.message().contains("mysql"),
        "{err}"
    );
    let (err, _) = run(&from, "postgres://u:hunter2@127.0.0.1:1/nowhere", false).await;
    let err = err.unwrap_err();
    // Without the backend the URL is bad input (a build that cannot use it), not an outage.
    let expected = if cfg!(feature = "postgres") {
        ErrorKind::Unavailable
    } else {
        ErrorKind::InvalidInput
    };
    assert_eq!(err.kind(), expected, "{err}");
    assert!(
        err.message().contains("target") && !err.message().contains("hunter2"),
        "{err}"
    );
    let err = migrate(
        &from,
        &to,
        &MigrateOptions {
            batch: 0,
            resume: false,
        },
        &mut |_: &MigrateProgress| {},
    )
    .await
    .unwrap_err();
    assert_eq!(err.location().field.as_deref(), Some("batch"));
}

/// A target that silently drops the records of org `globex` it is given.
struct Lossy(Arc<SqliteStore>);

#[async_trait]
impl Snapshot for Lossy {
    async fn export(
        &self,
        kind: SnapshotKind,
        after: Option<&SnapshotKey>,
        limit: usize,
    ) -> Result<SnapshotPage> {
        self.0.export(kind, after, limit).await
    }

    async fn import(&self, page: SnapshotPage) -> Result<()> {
        match page {
            SnapshotPage::Records(mut rows) => {
                rows.retain(|r| r.record.scope.org != "globex");
                self.0.import(SnapshotPage::Records(rows)).await
            }
            other => self.0.import(other).await,
        }
    }

    async fn row_counts(&self) -> Result<Vec<RowCount>> {
        self.0.row_counts().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_never_copies_into_its_own_database() {
    let dir = tempfile::tempdir().unwrap();
    let from = url(dir.path(), "from.db");
    let (store, _) = filled_source(&from).await;
    // Closed (checkpointed): a hard link's readers would not see the first name's WAL file.
    store.close().await;
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let linked = dir.path().join("link.db");
    std::os::unix::fs::symlink(dir.path().join("from.db"), &linked).unwrap();
    let hard = dir.path().join("hard.db");
    std::fs::hard_link(dir.path().join("from.db"), &hard).unwrap();
    let source = Weave::open(&from).await.unwrap();
    let before = source.snapshot().unwrap().row_counts().await.unwrap();
    // Through the library, no URL check runs first: the stores themselves must tell.
    for other in [
        format!("sqlite://{}/sub/../from.db", dir.path().display()),
        format!("sqlite://{}", linked.display()),
        format!("sqlite://{}", hard.display()),
    ] {
        let target = Weave::open(&other).await.unwrap();
        let options = MigrateOptions {
            batch: 2,
            resume: true,
        };
        let err = source
            .migrate_to(&target, &options, &mut |_: &MigrateProgress| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{other}: {err}");
        assert!(
            err.message().contains("same database") && err.message().contains("from.db"),
            "{other}: {err}"
        );
        target.close().await;
    }
    assert_eq!(
        source.snapshot().unwrap().row_counts().await.unwrap(),
        before,
        "nothing was written"
    );
    // A different file is another database.
    let target = Weave::open(&url(dir.path(), "to.db")).await.unwrap();
    let options = MigrateOptions {
        batch: 100,
        resume: false,
    };
    source
        .migrate_to(&target, &options, &mut |_: &MigrateProgress| {})
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_whose_counts_differ_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (url(dir.path(), "from.db"), url(dir.path(), "to.db"));
    let (source, _) = filled_source(&from).await;
    let source =
        Weave::from_parts(source.clone(), source.clone(), Config::default()).with_snapshot(source);
    let target = sqlite(&to).await;
    let target = Weave::from_parts(target.clone(), target.clone(), Config::default())
        .with_snapshot(Arc::new(Lossy(target)));
    let err = source
        .migrate_to(
            &target,
            &MigrateOptions::default(),
            &mut |_: &MigrateProgress| {},
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.message()
            .contains("records (org `globex`): source 3, target 0"),
        "{err}"
    );
}

/// The server URL, or `None` (said loudly) when tests may skip: only with
/// `OPSWEAVE_REQUIRE_SERVERS` unset.
#[cfg(feature = "postgres")]
fn server_url(test: &str) -> Option<String> {
    opsweave_testkit::server_url("OPSWEAVE_TEST_POSTGRES_URL", test)
}

/// A fresh database on the test server: its URL and name.
#[cfg(feature = "postgres")]
async fn fresh_database(server: &str, test: &str) -> (String, String) {
    use sqlx::{Connection, Executor};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("ow_{test}_{}_{nanos}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    let (base, query) = server.split_once('?').map_or((server, ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let url = if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    };
    (url, name)
}

#[cfg(feature = "postgres")]
async fn drop_database(server: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_keeps_every_row() {
    let Some(server) = server_url("sqlite_to_postgres_and_back_keeps_every_row") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from = url(dir.path(), "from.db");
    let (source, filled) = filled_source(&from).await;
    let (pg_url, pg_name) = fresh_database(&server, "migrate").await;

    let (report, _) = run(&from, &pg_url, false).await;
    report.unwrap();
    let pg = Arc::new(opsweave_postgres::PgStore::open(&pg_url).await.unwrap());
    assert_same_rows(&*source, &*pg).await;

    // And back into a fresh SQLite file: the same rows again.
    let back = url(dir.path(), "back.db");
    let (report, _) = run(&pg_url, &back, false).await;
    report.unwrap();
    let back = sqlite(&back).await;
    assert_same_rows(&*pg, &*back).await;

    assert_copy_behaves(
        &*source,
        &*pg as &dyn opsweave_testkit::SnapshotBackend,
        &filled,
    )
    .await;
    assert_copy_behaves(&*source, &*back, &filled).await;
    pg.close().await;
    drop_database(&server, &pg_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_page_loop_copies_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = filled_source(&url(dir.path(), "from.db")).await;
    let target = sqlite(&url(dir.path(), "to.db")).await;
    let mut pages = Vec::new();
    let n = copy_kind(&*source, &*target, SnapshotKind::Events, 2, &mut |n| {
        pages.push(n)
    })
    .await
    .unwrap();
    assert_eq!(pages.last(), Some(&n));
    assert_eq!(pages.len() as u64, n.div_ceil(2));
}
