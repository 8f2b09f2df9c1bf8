//! The embedded SQLite backend of opsweave.
//!
//! One file in WAL mode holds RAW (verbatim payloads), CORE (records, tasks, links), SEARCH (an
//! FTS5 index written in the same transactions as the records) and OPS (events, rejections,
//! jobs). Migrations are embedded in the binary and applied on open.

mod borrowing;
mod distance;
mod error;
mod flat;
mod hnsw;
mod ingest;
mod jobs;
mod recall;
mod rows;
mod snapshot;
mod store;
mod usage;
mod vectors;

pub use hnsw::{VectorOptions, VectorPlan, VectorStorage};

use error::map;
use opsweave_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The embedded store: one SQLite file, read through a pool and written through one connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one writer. SQLite serialises writers anyway; one connection keeps its page cache warm
    /// (a connection's cache is dropped whenever another connection has written) and lets a batch
    /// allocate row numbers without racing another batch.
    writer: SqlitePool,
    /// Point reads asked on every call of a hot path, on the calling thread: task revisions
    /// (every cached focus call) and vector model generations (every k-NN query). Through sqlx a
    /// query is a round trip to the connection's own thread (and a pooled one pings its
    /// connection on the way in and out), which cost a cached request more than all the rest.
    /// `None` for paths it cannot open the same way (URI options, in-memory databases).
    point_reader: Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    /// The path as opened (where the vector index files go, beside it).
    path: String,
    /// Vector models' graphs (see `vectors`).
    vectors: Arc<vectors::Vectors>,
}

/// A file that is not a SQLite database is the user's mistake, not ours: say so (code 26,
/// `SQLITE_NOTADB`); other errors keep their own meaning.
fn not_a_database(path: &str, e: sqlx::Error) -> Error {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned());
    if code.as_deref() == Some("26") {
        return Error::invalid(format!(
            "cannot open database `{path}`: the file is not a SQLite database"
        ))
        .with_source(e);
    }
    // Extended codes carry the primary one in their low byte: 8 is SQLITE_READONLY, 14
    // SQLITE_CANTOPEN. Both are about the file and its folder, which the user can fix.
    match code
        .as_deref()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff)
    {
        Some(8) => {
            return Error::invalid(format!(
                "cannot open database `{path}`: it is read-only for this user (the file and \
                 its folder, which holds its -wal and -shm files, must be writable)"
            ))
            .with_source(e)
        }
        Some(14) => {
            return Error::invalid(format!(
                "cannot open database `{path}`: the file cannot be opened for reading and \
                 writing by this user (or, with mode=ro, it does not exist)"
            ))
            .with_source(e)
        }
        _ => {}
    }
    map(&format!("open `{path}`"), e)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`, `sqlite:path` or a
    /// plain path) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(Error::invalid("empty SQLite database path"));
        }
        if let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            if !parent.is_dir() {
                return Err(Error::invalid(format!(
                    "cannot open database `{path}`: folder `{}` does not exist",
                    parent.display()
                )));
            }
        }
        if std::path::Path::new(path).is_dir() {
            return Err(Error::invalid(format!(
                "cannot open database `{path}`: it is a folder (name a file in it)"
            )));
        }
        // A device or pipe (`/dev/null`) would fail later as a disk I/O error.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(Error::invalid(format!(
                "cannot open database `{path}`: it is not a regular file (a device, pipe or \
                 socket)"
            )));
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| Error::invalid(format!("bad SQLite path `{path}`: {e}")))?
            .create_if_missing(true)
            // New files only (a file keeps the page size it was made with). Four times SQLite's
            // default: a quarter of the page writes, splits and system calls per loaded row (a
            // 1M-row bulk load ~3 % faster, its re-ingest ~10 %, focus no slower;
            // docs/benchmarks.md, issue 2).
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory");
        // The writer's cache holds the indexes that take random inserts (about 100 MB at a
        // million records); pages are only allocated as they are used. A bulk load grows the WAL
        // to the size of the whole load; once checkpointed it is cut back to 128 MiB (above the
        // ~100 MB the autocheckpoint lets it reach otherwise, see `checkpoint_by_size`) rather
        // than staying that large.
        let writer_options = options
            .clone()
            .pragma("cache_size", WRITER_CACHE_SIZE.to_string())
            .pragma("journal_size_limit", "134217728");
        let writer = connect_writer(writer_options)
            .await
            .map_err(|e| not_a_database(path, e))?;
        // sqlx's migrator takes no lock on SQLite (its `lock` does nothing there), so two
        // processes opening a new database at once both applied migration 1 and one failed
        // ("table raw_items already exists"). Run inside one `BEGIN IMMEDIATE`, each migration's
        // own transaction is a savepoint, and another process waits for this one to commit
        // (busy timeout), then finds nothing left to apply.
        let migrating = |e: sqlx::migrate::MigrateError| match e {
            sqlx::migrate::MigrateError::Execute(e) => not_a_database(path, e),
            e => Error::internal(format!("sqlite: migrating `{path}`: {e}")).with_source(e),
        };
        let mut migration = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| not_a_database(path, e))?;
        // `run_direct` takes the connection as it is: `run`'s `Acquire` bound makes the future
        // unprovably `Send` for tasks that open a store (the Node binding's).
        sqlx::migrate!("./migrations")
            .run_direct(&mut *migration)
            .await
            .map_err(migrating)?;
        migration
            .commit()
            .await
            .map_err(|e| map(&format!("migrating `{path}`"), e))?;
        let point_reader = Arc::new(std::sync::Mutex::new(open_point_reader(path)));
        // Opened on first use: a reader connection holds the file open (in WAL mode SQLite keeps
        // a shared lock from the first read to the close), and a first bulk load may only leave
        // the WAL while no other connection does (`ingest::DirectWrites`).
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(15))
            .after_release(|conn, _| Box::pin(outside_transaction(conn)))
            .connect_lazy_with(options.pragma("cache_size", "-65536"));
        Ok(Self {
            pool,
            writer,
            point_reader,
            path: path.to_string(),
            vectors: Arc::new(vectors::Vectors::new(path, VectorOptions::default())),
        })
    }

    /// `org`'s task revision read on this thread: a point read in a table of one row per org (a
    /// few microseconds; a WAL reader never waits for the writer). `None` when there is no such
    /// connection or SQLite refused (busy): the caller then asks the pool.
    pub(crate) fn revision_here(&self, org: &str) -> Option<i64> {
        use rusqlite::OptionalExtension;
        let guard = self.point_reader.lock().ok()?;
        let conn = guard.as_ref()?;
        let mut statement = conn
            .prepare_cached("SELECT revision FROM task_revisions WHERE org = ?1")
            .ok()?;
        statement
            .query_row([org], |row| row.get::<_, i64>(0))
            .optional()
            .ok()
            .map(|revision| revision.unwrap_or(0))
    }

    /// Answers when the database can be read (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| map("ping", e))
    }

    /// Saves changed vector graphs and closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        // A graph that cannot be saved is rebuilt from the rows on next use.
        let _ = self.save_vector_indexes().await;
        // Closed first, so that the last pool connection to close is the database's last
        // connection: SQLite then checkpoints the WAL into the file and removes it.
        if let Ok(mut point_reader) = self.point_reader.lock() {
            point_reader.take();
        }
        self.pool.close().await;
        self.writer.close().await;
        // The pools close their connections on their own threads, and two closing at once can
        // each see the other still open and leave the WAL for the next opener. One more
        // connection, opened after them, folds the WAL into the file (and removes it on close
        // when it is the last).
        if let Some(last) = open_point_reader(&self.path) {
            let _ = last.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }
}

/// How long opening waits, in all, for other processes switching a new file to WAL.
const WAL_SWITCH_WAIT: Duration = Duration::from_secs(10);

/// The writer pool, connected. A new file's `journal_mode = WAL` reads page 1, then writes it;
/// when another process is writing it at that moment SQLite answers `SQLITE_BUSY` at once,
/// without the busy handler (a reader upgrading to a writer could deadlock waiting), so
/// processes opening a new database together failed with "database is locked". Trying again
/// finds the file already in WAL mode, with nothing to write.
async fn connect_writer(
    options: SqliteConnectOptions,
) -> std::result::Result<SqlitePool, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let attempt = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(|conn, _| Box::pin(checkpoint_by_size(conn)))
            .after_release(|conn, _| Box::pin(outside_transaction(conn)))
            .connect_with(options.clone())
            .await;
        match attempt {
            Err(e) if is_busy(&e) && started.elapsed() < WAL_SWITCH_WAIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            attempt => return attempt,
        }
    }
}

/// The writer's page cache, in KiB (SQLite's negative form): see [`SqliteStore::open`].
pub(crate) const WRITER_CACHE_SIZE: i64 = -262_144;

/// The page size of files this store makes.
const PAGE_SIZE: u32 = 16 * 1024;

/// About how much WAL the writer lets grow before copying it into the database: each commit
/// rewrites every index page its random keys touched, and each checkpoint copies them again, so
/// fewer, larger ones write far less (docs/benchmarks.md, issue 2).
const CHECKPOINT_BYTES: i64 = 100 * 1024 * 1024;

/// Sets the writer's autocheckpoint, which SQLite counts in pages, to [`CHECKPOINT_BYTES`] of
/// this file's pages: files made before [`PAGE_SIZE`] was raised keep 4 KiB pages.
async fn checkpoint_by_size(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<()> {
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "PRAGMA wal_autocheckpoint = {}",
        CHECKPOINT_BYTES / page.max(512)
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// `SQLITE_BUSY` (code 5), the plain code: extended codes are on, and those say something else.
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "5")
}

/// The connection [`SqliteStore::revision_here`] and the vector index's model reads go through,
/// on a plain file path (not a URI with options, not an in-memory database). It never writes; a
/// short busy timeout keeps a caller from waiting long where the pool would do better.
fn open_point_reader(path: &str) -> Option<rusqlite::Connection> {
    if path.contains('?') || path.starts_with(':') || path.starts_with("file:") {
        return None;
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).ok()?;
    conn.busy_timeout(Duration::from_millis(200)).ok()?;
    Some(conn)
}

/// Whether a connection coming back to its pool may be lent again: not while it is inside a
/// transaction, which it is when a caller was cancelled between sqlx's `BEGIN` and the
/// `Transaction` that would have rolled it back. Such a connection would fail every later
/// `BEGIN IMMEDIATE` ("non-zero transaction depth"); the pool closes it instead, which rolls
/// the transaction back. The readers get the same check as a safeguard.
async fn outside_transaction(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection;
    // The ping waits for the commands queued before it: a rollback a dropped `Transaction`
    // queued (then nothing leaked), or a `BEGIN` whose caller is gone (then one did).
    conn.ping().await?;
    Ok(!conn.is_in_transaction())
}
