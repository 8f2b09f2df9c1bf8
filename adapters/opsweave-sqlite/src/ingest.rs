//! Ingest batches, written through SQLite's own API on the writer connection.
//!
//! Through sqlx a batch went as multi-row INSERTs of 2,000 rows (32,000 bound values each): sqlx
//! copies every value into an owned argument and hands the statement to the connection's thread,
//! which cost about 7 µs of the writer's 24 µs per row. Here the writer connection is lent by sqlx
//! (`lock_handle`: its thread makes no call while the lock is held) and the batch runs on the
//! calling thread with one-row statements that bind the rows' values without copying them
//! (`crate::borrowing`), inside the transaction the caller opened.
//!
//! New records reach the full-text index with one statement per batch instead of a trigger per
//! row: FTS5 writes its pending terms out as a new segment at the end of every statement, so one
//! row per statement would write (and later merge) one segment per row.

use crate::borrowing::BorrowingStatement;
use crate::error::{map, map_rusqlite};
use crate::rows::{day_number, millis};
use opsweave_core::mapping::Rejection;
use opsweave_core::{
    BatchOutcome, BulkLoad, Error, IngestItem, RecordId, Result, Scope, TaskStatus,
};
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::sqlite::LockedSqliteHandle;
use std::collections::HashMap;

/// Adds the records from row number `?1` on to the full-text index: new records go in with one
/// statement per batch or imported page, not by a trigger per row (see the module comment).
pub(crate) const INDEX_NEW_RECORDS: &str = "INSERT INTO records_fts (rowid, title, body) \
     SELECT seq, title, body FROM records WHERE seq >= ?1";

/// What the store already holds for a record.
struct Existing {
    /// Its row number.
    seq: i64,
    /// Its content hash.
    hash: i64,
    /// Its task, when it is one.
    task: Option<ExistingTask>,
}

/// What the store already holds for a task, read before an upsert decides its status.
struct ExistingTask {
    status: TaskStatus,
    source_status: String,
    completed_at: Option<i64>,
    importance: f64,
    importance_reason: String,
}

impl ExistingTask {
    /// Whether `item`'s importance (worked out by the priority config of this ingest) differs
    /// from the stored one: the config changed since the row was written.
    fn rescored_by(&self, item: &IngestItem) -> bool {
        item.normalised.task.is_some()
            && (self.importance != item.importance
                || self.importance_reason != item.importance_reason)
    }
}

/// Runs `write` with the connection behind `handle` as a rusqlite connection.
#[allow(unsafe_code)]
pub(crate) fn with_connection<T>(
    handle: &mut LockedSqliteHandle<'_>,
    write: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    // SAFETY: `as_raw_handle` is an open connection, and sqlx's worker thread makes no call on it
    // (nor on its statements) while `handle` is held, which outlives `conn`: it is dropped at the
    // end of this function, finalizing the statements it prepared. `from_handle` does not take
    // ownership: dropping `conn` never closes the database.
    let conn = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
        .map_err(|e| map_rusqlite("lend a connection to rusqlite", e))?;
    write(&conn)
}

/// Writes one ingest batch inside the transaction open on `handle`'s connection.
pub(crate) fn write_batch(
    handle: &mut LockedSqliteHandle<'_>,
    scope: &Scope,
    source_file: &str,
    items: &[IngestItem],
    rejections: &[Rejection],
    now: i64,
) -> Result<BatchOutcome> {
    with_connection(handle, |conn| {
        // Every statement must land in the caller's transaction, which commits or rolls back.
        debug_assert!(
            !conn.is_autocommit(),
            "a batch is written inside a transaction"
        );
        blocking(|| write(conn, scope, source_file, items, rejections, now, None))
    })
}

/// Runs `f`, which blocks for as long as a batch takes, telling a multi-threaded runtime so that
/// it moves its other tasks off this thread meanwhile.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(rt) if rt.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The batch itself: what exists, then raw items, records, tasks, full text, links, rejections.
/// In a bulk load (`loaded`) the records' id index is built at the end, so what exists comes
/// from `loaded`.
fn write(
    conn: &Connection,
    scope: &Scope,
    source_file: &str,
    items: &[IngestItem],
    rejections: &[Rejection],
    now: i64,
    mut loaded: Option<&mut LoadedIds>,
) -> Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    // The same item twice in one batch: the later one wins, as it would across batches.
    let mut latest: HashMap<i64, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if latest.insert(item.normalised.record.id.raw(), i).is_some() {
            outcome.updated += 1;
        }
    }
    let existing = read_existing(conn, scope, latest.keys().copied(), loaded.as_deref())?;
    let first_new = match &loaded {
        Some(loaded) => loaded.next_seq,
        None => next_row_number(conn)?,
    };
    let mut next_seq = first_new;
    // In item order: when two items declare the same link, the later one's evidence stays.
    let mut changed: Vec<(i64, &IngestItem)> = Vec::with_capacity(items.len());
    // Unchanged records whose task the priority config now rates otherwise.
    let mut rescored: Vec<(i64, &IngestItem)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let id = item.normalised.record.id.raw();
        if latest.get(&id) != Some(&i) {
            continue;
        }
        match existing.get(&id) {
            Some(e) if e.hash == item.normalised.record.content_hash => match &e.task {
                Some(task) if task.rescored_by(item) => {
                    rescored.push((e.seq, item));
                    outcome.updated += 1;
                }
                _ => outcome.unchanged += 1,
            },
            Some(e) => {
                outcome.updated += 1;
                changed.push((e.seq, item));
            }
            None => {
                outcome.inserted += 1;
                changed.push((next_seq, item));
                next_seq += 1;
            }
        }
    }
    // A bulk load began on empty tables and numbers its new rows itself.
    let fresh_from = loaded.is_some().then_some(first_new);
    let mut tasks_written = write_rows(conn, source_file, &changed, &existing, now, fresh_from)?;
    tasks_written |= rescore_tasks(conn, &rescored)?;
    if let Some(loaded) = loaded.as_mut() {
        for &(seq, item) in &changed {
            if seq >= first_new {
                loaded.seq_of.insert(item.normalised.record.id.raw(), seq);
            }
        }
        loaded.next_seq = next_seq;
    }
    if next_seq > first_new {
        // Updated records are re-indexed by their update trigger; new ones all at once.
        conn.execute(INDEX_NEW_RECORDS, [first_new])
            .map_err(|e| map_rusqlite("index new records for search", e))?;
    }
    write_links(conn, scope, &changed)?;
    write_rejections(conn, scope, source_file, rejections, now)?;
    // A bulk load raises the revision once, when it commits.
    if tasks_written && loaded.is_none() {
        conn.execute(crate::store::RAISE_TASK_REVISION, [&scope.org])
            .map_err(|e| map_rusqlite("raise task revision", e))?;
    }
    Ok(outcome)
}

/// The number the next new record's row takes.
fn next_row_number(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM records", [], |row| {
        row.get(0)
    })
    .map_err(|e| map_rusqlite("next row number", e))
}

/// What the store holds for each of `ids` in `scope`'s org: found through the id index, or in a
/// bulk load (which has no id index yet) through the row numbers `loaded` keeps.
fn read_existing(
    conn: &Connection,
    scope: &Scope,
    ids: impl Iterator<Item = i64>,
    loaded: Option<&LoadedIds>,
) -> Result<HashMap<i64, Existing>> {
    const READ: &str = "SELECT r.seq, r.content_hash, t.status, t.source_status, t.completed_at, \
         t.importance, t.importance_reason FROM records r LEFT JOIN tasks t ON t.seq = r.seq WHERE ";
    let by_id = format!("{READ}r.id = ?1 AND r.org = ?2");
    let by_seq = format!("{READ}r.seq = ?1");
    let mut read = conn
        .prepare_cached(if loaded.is_some() { &by_seq } else { &by_id })
        .map_err(|e| map_rusqlite("read existing", e))?;
    let mut existing = HashMap::new();
    for id in ids {
        let columns = |row: &rusqlite::Row<'_>| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, Option<f64>>(5)?,
                row.get::<_, Option<String>>(6)?,
            ))
        };
        let row = match loaded {
            None => read.query_row(params![id, scope.org], columns),
            Some(loaded) => match loaded.seq_of.get(&id) {
                Some(seq) => read.query_row([seq], columns),
                None => continue,
            },
        }
        .optional()
        .map_err(|e| map_rusqlite("read existing", e))?;
        let Some((seq, hash, status, source_status, completed_at, importance, reason)) = row else {
            continue;
        };
        let task = match (status, source_status) {
            (Some(status), Some(source_status)) => Some(ExistingTask {
                status: status.parse()?,
                source_status,
                completed_at,
                importance: importance.unwrap_or_default(),
                importance_reason: reason.unwrap_or_default(),
            }),
            _ => None,
        };
        existing.insert(id, Existing { seq, hash, task });
    }
    Ok(existing)
}

/// Stores the importance of `rescored` tasks (rows otherwise unchanged); true when there was one.
fn rescore_tasks(conn: &Connection, rescored: &[(i64, &IngestItem)]) -> Result<bool> {
    if rescored.is_empty() {
        return Ok(false);
    }
    let mut update = conn
        .prepare_cached("UPDATE tasks SET importance = ?1, importance_reason = ?2 WHERE seq = ?3")
        .map_err(|e| map_rusqlite("rescore tasks", e))?;
    for (seq, item) in rescored {
        update
            .execute(params![item.importance, item.importance_reason, seq])
            .map_err(|e| map_rusqlite("rescore tasks", e))?;
    }
    Ok(true)
}

const INSERT_RAW: &str = "INSERT INTO raw_items (seq, source_file, line, payload, received_at) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
const UPSERT_RAW: &str = " ON CONFLICT (seq) DO UPDATE SET source_file = excluded.source_file, \
     line = excluded.line, payload = excluded.payload, received_at = excluded.received_at";
const INSERT_RECORD: &str = "INSERT INTO records (seq, id, org, client, project, source_kind, \
     external_id, url, entity, title, body, fields, created_at, updated_at, content_hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const UPSERT_RECORD: &str = " ON CONFLICT (seq) DO UPDATE SET url = excluded.url, \
     entity = excluded.entity, title = excluded.title, body = excluded.body, \
     fields = excluded.fields, created_at = excluded.created_at, \
     updated_at = excluded.updated_at, content_hash = excluded.content_hash";
const INSERT_TASK: &str = "INSERT INTO tasks (seq, id, org, client, project, title, source_kind, \
     url, status, source_status, open, due_day, importance, importance_reason, updated_at, \
     completed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
const UPSERT_TASK: &str = " ON CONFLICT (seq) DO UPDATE SET title = excluded.title, \
     url = excluded.url, status = excluded.status, source_status = excluded.source_status, \
     open = excluded.open, due_day = excluded.due_day, importance = excluded.importance, \
     importance_reason = excluded.importance_reason, updated_at = excluded.updated_at, \
     completed_at = excluded.completed_at";

/// Writes the raw item, record and task of each changed row; true when a task was written.
/// Rows numbered `fresh_from` or above are new to all three tables (a bulk load's), so they are
/// plain inserts: an upsert may run the records' update trigger, which makes SQLite copy the
/// page it writes into a statement journal first, for every row.
fn write_rows(
    conn: &Connection,
    source_file: &str,
    changed: &[(i64, &IngestItem)],
    existing: &HashMap<i64, Existing>,
    now: i64,
    fresh_from: Option<i64>,
) -> Result<bool> {
    let prepare = |sql: &str, what: &'static str| {
        BorrowingStatement::prepare(conn, sql).map_err(|e| map_rusqlite(what, e))
    };
    let statements = |upsert: bool| -> Result<_> {
        let sql = |insert: &str, conflict: &str| match upsert {
            true => format!("{insert}{conflict}"),
            false => insert.to_string(),
        };
        Ok([
            prepare(&sql(INSERT_RAW, UPSERT_RAW), "write raw items")?,
            prepare(&sql(INSERT_RECORD, UPSERT_RECORD), "write records")?,
            prepare(&sql(INSERT_TASK, UPSERT_TASK), "write tasks")?,
        ])
    };
    let mut upserts = statements(true)?;
    let mut inserts = match fresh_from {
        Some(_) => Some(statements(false)?),
        None => None,
    };
    use rusqlite::types::ValueRef::{Integer, Null, Real};
    let mut tasks_written = false;
    for &(seq, item) in changed {
        let [raw, record, task] = match &mut inserts {
            Some(inserts) if fresh_from.is_some_and(|first| seq >= first) => inserts,
            _ => &mut upserts,
        };
        let r = &item.normalised.record;
        raw.execute(&[
            Integer(seq),
            source_file.into(),
            Integer(item.normalised.line as i64),
            item.normalised.raw_json.as_str().into(),
            Integer(now),
        ])
        .map_err(|e| map_rusqlite("write raw items", e))?;
        record
            .execute(&[
                Integer(seq),
                Integer(r.id.raw()),
                r.scope.org.as_str().into(),
                r.scope.client.as_deref().into(),
                r.scope.project.as_deref().into(),
                r.source.kind.as_str().into(),
                r.source.external_id.as_str().into(),
                r.source.url.as_deref().into(),
                r.entity.as_str().into(),
                r.title.as_str().into(),
                r.body.as_str().into(),
                item.normalised.fields_json.as_str().into(),
                r.created_at.map(millis).map_or(Null, Integer),
                Integer(millis(r.updated_at)),
                Integer(r.content_hash),
            ])
            .map_err(|e| map_rusqlite("write records", e))?;
        let Some(seed) = item.normalised.task.as_ref() else {
            continue;
        };
        let source_status = seed.status.unwrap_or(TaskStatus::Todo);
        let before = existing.get(&r.id.raw()).and_then(|e| e.task.as_ref());
        // The user's complete / undo stands until the source itself changes status.
        let status = match before {
            Some(b) if b.source_status == source_status.as_str() => b.status,
            _ => source_status,
        };
        let completed_at = match (status, before) {
            (TaskStatus::Done, Some(b)) if b.status == TaskStatus::Done => b.completed_at,
            (TaskStatus::Done, _) => Some(millis(r.updated_at)),
            _ => None,
        };
        task.execute(&[
            Integer(seq),
            Integer(r.id.raw()),
            r.scope.org.as_str().into(),
            r.scope.client.as_deref().into(),
            r.scope.project.as_deref().into(),
            r.title.as_str().into(),
            r.source.kind.as_str().into(),
            r.source.url.as_deref().into(),
            status.as_str().into(),
            source_status.as_str().into(),
            Integer(i64::from(status.is_open())),
            seed.due.map(day_number).map_or(Null, Integer),
            Real(item.importance),
            item.importance_reason.as_str().into(),
            Integer(millis(r.updated_at)),
            completed_at.map_or(Null, Integer),
        ])
        .map_err(|e| map_rusqlite("write tasks", e))?;
        tasks_written = true;
    }
    Ok(tasks_written)
}

/// Writes the links the changed rows declare; an existing (kind, from, to) link takes the new
/// evidence.
fn write_links(conn: &Connection, scope: &Scope, changed: &[(i64, &IngestItem)]) -> Result<()> {
    let mut insert = None;
    for (_, item) in changed {
        let record = &item.normalised.record;
        for l in &item.normalised.links {
            let target = RecordId::derive(&record.scope, &l.to_source, &l.to_external_id);
            let (from, to) = if l.evidence.starts_with("reverse:") {
                (target, record.id)
            } else {
                (record.id, target)
            };
            if from == to {
                continue;
            }
            let statement = match &mut insert {
                Some(statement) => statement,
                None => insert.insert(
                    conn.prepare_cached(
                        "INSERT INTO links (org, kind, from_id, to_id, weight, evidence) \
                         VALUES (?1, ?2, ?3, ?4, 1.0, ?5) \
                         ON CONFLICT (kind, from_id, to_id) DO UPDATE SET evidence = excluded.evidence",
                    )
                    .map_err(|e| map_rusqlite("write links", e))?,
                ),
            };
            statement
                .execute(params![
                    scope.org,
                    l.kind.as_str(),
                    from.raw(),
                    to.raw(),
                    l.evidence
                ])
                .map_err(|e| map_rusqlite("write links", e))?;
        }
    }
    Ok(())
}

/// Keeps the rows that could not become records.
fn write_rejections(
    conn: &Connection,
    scope: &Scope,
    source_file: &str,
    rejections: &[Rejection],
    now: i64,
) -> Result<()> {
    if rejections.is_empty() {
        return Ok(());
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO rejections (org, client, project, source_file, line, field, reason, raw, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(|e| map_rusqlite("write rejections", e))?;
    for r in rejections {
        insert
            .execute(params![
                scope.org,
                scope.client,
                scope.project,
                source_file,
                r.line as i64,
                r.field,
                r.reason,
                r.raw,
                now
            ])
            .map_err(|e| map_rusqlite("write rejections", e))?;
    }
    Ok(())
}

/// The records a bulk load has written: it runs without the `records_id` index, so this map is
/// what finds a repeated id's row (the later item wins, as across batches) and keeps ids unique.
pub(crate) struct LoadedIds {
    /// Row number by record id.
    seq_of: HashMap<i64, i64>,
    /// The number the next new record's row takes.
    next_seq: i64,
}

/// A first load into an empty SQLite store: one `BEGIN IMMEDIATE` transaction on the writer
/// connection for every batch. The indexes on records and tasks are dropped inside it and made
/// again from their own SQL when it finishes: building each once costs a fraction of keeping it
/// row by row (docs/benchmarks.md, issue 2). The full-text index still grows batch by batch: it
/// costs about the same either way, and during the load the writer waits for the mapping
/// anyway. DDL is transactional in SQLite, so a load dropped unfinished rolls back to the empty
/// store with every index in place. When no other connection has the file open, the load
/// writes the file directly ([`DirectWrites`]).
pub(crate) struct SqliteBulkLoad {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    /// The writer left the WAL for this load; back in it when the load ends, either way.
    direct: Option<DirectWrites>,
    /// The writer pool, to cut the WAL back once the load has committed.
    writer: sqlx::SqlitePool,
    scope: Scope,
    loaded: LoadedIds,
    /// The `CREATE` statements of the indexes dropped for the load.
    dropped: Vec<String>,
    /// A write failed: part of a batch may be in the transaction, so it must not commit.
    spoilt: bool,
}

impl SqliteBulkLoad {
    /// Begins a bulk load when the store holds no records; `None` (and no lock held) otherwise.
    pub(crate) async fn begin(
        writer: &sqlx::SqlitePool,
        scope: &Scope,
    ) -> Result<Option<Box<dyn BulkLoad>>> {
        // Read first, through the writer (a reader connection would hold the file open): a
        // store with rows neither leaves the WAL nor takes the lock.
        let empty: bool = sqlx::query_scalar(STORE_IS_EMPTY)
            .fetch_one(writer)
            .await
            .map_err(|e| map("look for records", e))?;
        if !empty {
            return Ok(None);
        }
        let direct = DirectWrites::enter(writer).await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin bulk load", e))?;
        let dropped = {
            let mut handle = tx
                .lock_handle()
                .await
                .map_err(|e| map("lend the writer connection", e))?;
            with_connection(&mut handle, |conn| blocking(|| drop_indexes(conn)))?
        };
        let Some(dropped) = dropped else {
            // Another process wrote rows between the read and the lock.
            tx.rollback().await.map_err(|e| map("end bulk load", e))?;
            if let Some(direct) = direct {
                direct.leave().await;
            }
            return Ok(None);
        };
        Ok(Some(Box::new(Self {
            tx,
            direct,
            writer: writer.clone(),
            scope: scope.clone(),
            loaded: LoadedIds {
                seq_of: HashMap::new(),
                next_seq: 1,
            },
            dropped,
            spoilt: false,
        })))
    }
}

/// Whether records, raw items and tasks are all empty. Raw items and tasks share the records'
/// row numbers, and a bulk load's new rows are plain inserts: all three must be.
const STORE_IS_EMPTY: &str = "SELECT NOT EXISTS (SELECT 1 FROM records) \
     AND NOT EXISTS (SELECT 1 FROM raw_items) AND NOT EXISTS (SELECT 1 FROM tasks)";

/// A bulk load's writer on a rollback journal instead of the WAL, while it holds the file alone.
///
/// Through the WAL every page of the load is written twice, once to the WAL and once more by
/// the checkpoint at commit, which also reads them all back: for a 1M-row load, 870 MB written
/// and 1.3 GB read on top of the 870 MB the file takes, about a fifth of its time
/// (docs/benchmarks.md, issue 2). A rollback journal on an empty store keeps only the few pages
/// the load changes (the schema's), so the load is written once, into the file, and a load
/// that is killed is still rolled back by the next connection. The price is that readers wait
/// for the load (busy timeout) rather than read the empty store meanwhile; SQLite only lets a
/// connection leave the WAL when no other has the file open, so a server or a second process
/// that has it open keeps the load on the WAL.
///
/// Meanwhile the writer's page cache is smaller: the tables only grow at their ends and their
/// indexes are built afterwards, so the cache that holds indexes under random inserts
/// otherwise ([`crate::SqliteStore::open`]) would only hold pages waiting to be written (a
/// 1M-row load: peak memory 650 → 360 MB, no slower).
struct DirectWrites {
    writer: sqlx::SqlitePool,
    /// Back on the WAL (or never left it): nothing left for `Drop`.
    left: bool,
}

/// The writer's page cache during a [`DirectWrites`] load, in KiB (SQLite's negative form).
const DIRECT_CACHE_SIZE: i64 = -32 * 1024;

impl DirectWrites {
    /// Switches the writer to a rollback journal; `None`, still on the WAL, when another
    /// connection has the file open (or the database has no WAL, in memory).
    async fn enter(writer: &sqlx::SqlitePool) -> Result<Option<Self>> {
        let mut conn = writer
            .acquire()
            .await
            .map_err(|e| map("lend the writer connection", e))?;
        // Armed before the switch: sqlx runs a statement whose caller was cancelled meanwhile,
        // and `Drop` then puts the writer back (a no-op when it never left the WAL).
        let mut direct = Self {
            writer: writer.clone(),
            left: false,
        };
        let mode: String = match sqlx::query_scalar("PRAGMA journal_mode = DELETE")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(mode) => mode,
            Err(e) if crate::is_busy(&e) => {
                direct.left = true;
                return Ok(None);
            }
            Err(e) => return Err(map("leave the WAL for a bulk load", e)),
        };
        if !mode.eq_ignore_ascii_case("delete") {
            direct.left = true;
            return Ok(None);
        }
        sqlx::query(&format!("PRAGMA cache_size = {DIRECT_CACHE_SIZE}"))
            .execute(&mut *conn)
            .await
            .map_err(|e| map("set the page cache size", e))?;
        // As durable as the WAL at `NORMAL`: with a rollback journal `NORMAL` skips a sync that
        // keeps a power cut at the wrong moment from corrupting the file. The journal holds a
        // few pages, so the extra syncs are cheap.
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
            .map_err(|e| map("sync a bulk load fully", e))?;
        Ok(Some(direct))
    }

    /// Puts the writer back on the WAL. Only tidying when it fails (a reader held the file for
    /// the whole busy timeout): the load is stored either way, writes stay atomic on a rollback
    /// journal, and the next open of the store switches the file back.
    async fn leave(mut self) {
        back_on_the_wal(&self.writer).await;
        // Only now: cancelled before, `Drop` tries again.
        self.left = true;
    }
}

impl Drop for DirectWrites {
    /// A load dropped unfinished: back on the WAL once its rollback has returned the writer.
    fn drop(&mut self) {
        if self.left {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let writer = self.writer.clone();
            runtime.spawn(async move { back_on_the_wal(&writer).await });
        }
    }
}

/// The writer's journal, syncs and page cache as [`crate::SqliteStore::open`] sets them. Syncs
/// go back to `NORMAL` only on the WAL: a writer left on the rollback journal (a reader kept
/// the switch waiting past the busy timeout) keeps `FULL`, which that journal needs.
async fn back_on_the_wal(writer: &sqlx::SqlitePool) {
    let Ok(mut conn) = writer.acquire().await else {
        return;
    };
    let cache = format!("PRAGMA cache_size = {}", crate::WRITER_CACHE_SIZE);
    let _ = sqlx::query(&cache).execute(&mut *conn).await;
    let mode: Option<String> = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(&mut *conn)
        .await
        .ok();
    if mode.is_some_and(|m| m.eq_ignore_ascii_case("wal")) {
        let _ = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await;
    }
}

/// When records, raw items and tasks are empty: drops the indexes on records and tasks and
/// answers their `CREATE` statements; `None` (nothing dropped) when any holds a row.
fn drop_indexes(conn: &Connection) -> Result<Option<Vec<String>>> {
    let empty: bool = conn
        .query_row(STORE_IS_EMPTY, [], |row| row.get(0))
        .map_err(|e| map_rusqlite("look for records", e))?;
    if !empty {
        return Ok(None);
    }
    let mut schema = conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' \
             AND tbl_name IN ('records', 'tasks') AND sql IS NOT NULL ORDER BY name",
        )
        .map_err(|e| map_rusqlite("read the schema", e))?;
    let indexes = schema
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| map_rusqlite("read the schema", e))?;
    let mut dropped = Vec::with_capacity(indexes.len());
    for (name, sql) in indexes {
        conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .map_err(|e| map_rusqlite("drop an index for a bulk load", e))?;
        dropped.push(sql);
    }
    Ok(Some(dropped))
}

#[async_trait::async_trait]
impl BulkLoad for SqliteBulkLoad {
    async fn write(
        &mut self,
        source_file: &str,
        items: &[IngestItem],
        rejections: &[Rejection],
    ) -> Result<BatchOutcome> {
        if self.spoilt {
            return Err(spoilt());
        }
        let now = millis(chrono::Utc::now());
        let mut handle = self
            .tx
            .lock_handle()
            .await
            .map_err(|e| map("lend the writer connection", e))?;
        let (scope, loaded) = (&self.scope, &mut self.loaded);
        let written = with_connection(&mut handle, |conn| {
            // An error can end SQLite's transaction by itself (a full disk): then nothing more
            // may be written, least of all without the indexes.
            if conn.is_autocommit() {
                return Err(Error::internal("a bulk load's transaction ended early"));
            }
            blocking(|| {
                write(
                    conn,
                    scope,
                    source_file,
                    items,
                    rejections,
                    now,
                    Some(loaded),
                )
            })
        });
        self.spoilt = written.is_err();
        written
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        if self.spoilt {
            return Err(spoilt());
        }
        {
            let mut handle = self
                .tx
                .lock_handle()
                .await
                .map_err(|e| map("lend the writer connection", e))?;
            let (scope, dropped) = (&self.scope, &self.dropped);
            with_connection(&mut handle, |conn| {
                blocking(|| build_indexes(conn, scope, dropped))
            })?;
        }
        self.tx
            .commit()
            .await
            .map_err(|e| map("commit bulk load", e))?;
        if let Some(direct) = self.direct.take() {
            direct.leave().await;
        }
        // Also after a direct load: another connection may have put the file back on the WAL
        // before the load began (a reader opening sets WAL), and then the WAL holds the load.
        truncate_wal(&self.writer).await;
        Ok(())
    }
}

/// Empties the WAL after a bulk load. The commit's checkpoint copied the load into the database
/// file, but the WAL file keeps its size (about the size of the load) until the next write
/// resets it, and a CLI run has no next write: a 1 GB load left 1 GB of WAL beside it. Only
/// tidying: when a reader holds an old snapshot it does not wait, the next write cuts the WAL
/// back to `journal_size_limit` instead.
async fn truncate_wal(writer: &sqlx::SqlitePool) {
    let Ok(mut conn) = writer.acquire().await else {
        return;
    };
    let Ok(mut handle) = conn.lock_handle().await else {
        return;
    };
    // The checkpoint syncs the file and truncates it: a blocking call.
    let _ = with_connection(&mut handle, |conn| {
        blocking(|| {
            let wait: i64 = conn
                .query_row("PRAGMA busy_timeout", [], |row| row.get(0))
                .map_err(|e| map_rusqlite("read busy timeout", e))?;
            conn.pragma_update(None, "busy_timeout", 0)
                .map_err(|e| map_rusqlite("set busy timeout", e))?;
            let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            conn.pragma_update(None, "busy_timeout", wait)
                .map_err(|e| map_rusqlite("set busy timeout", e))?;
            checkpoint.map_err(|e| map_rusqlite("truncate the WAL", e))
        })
    });
}

/// Why a bulk load refuses to go on after a failed write.
fn spoilt() -> Error {
    Error::internal(
        "a write of this bulk load failed: drop it (nothing is stored) and ingest again",
    )
}

/// The sorter's run size for the index builds after a bulk load, in KiB (SQLite's negative
/// `cache_size` form).
const SORTER_RUN_SIZE: i64 = -4 * 1024;

/// The writer sorting index keys in runs written to temporary files, while it builds the
/// indexes a bulk load dropped; `Drop` puts its settings back.
///
/// SQLite sizes the runs of its sorter by the page cache, and with `temp_store = MEMORY` (the
/// store's setting, [`crate::SqliteStore::open`]) it never writes one out: each index of a
/// 1M-row load was sorted as one linked list of a million keys, cache misses all the way.
/// Runs of 4 MiB are sorted in the CPU's cache (on a helper thread while a core is spare, the
/// mapping threads having finished) and merged from files the OS keeps cached: the three
/// indexes of a 1M-row load build in 1.0–1.2 s instead of 2.5 (docs/benchmarks.md, issue 2).
struct SortedInRuns<'c> {
    conn: &'c Connection,
    temp_store: i64,
    cache_size: i64,
    threads: i64,
}

impl<'c> SortedInRuns<'c> {
    /// Switches `conn`'s sorter to runs on files; an error (SQLite refuses to change the
    /// temporary store inside a transaction once it has opened the temporary database) leaves
    /// it sorting in memory.
    fn enter(conn: &'c Connection) -> rusqlite::Result<Self> {
        let read = |pragma: &str| conn.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0));
        let runs = Self {
            conn,
            temp_store: read("temp_store")?,
            cache_size: read("cache_size")?,
            threads: read("threads")?,
        };
        // One helper per core the writer leaves; SQLite caps it at its own limit.
        let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        conn.execute_batch(&format!(
            "PRAGMA temp_store = FILE; PRAGMA cache_size = {SORTER_RUN_SIZE}; \
             PRAGMA threads = {};",
            helpers.min(4)
        ))?;
        Ok(runs)
    }
}

impl Drop for SortedInRuns<'_> {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch(&format!(
            "PRAGMA temp_store = {}; PRAGMA cache_size = {}; PRAGMA threads = {};",
            self.temp_store, self.cache_size, self.threads
        ));
    }
}

/// Whether `e` is a constraint violation (which sorting elsewhere cannot mend).
fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

/// Makes again the indexes a bulk load dropped and raises the task revision when tasks were
/// written.
fn build_indexes(conn: &Connection, scope: &Scope, dropped: &[String]) -> Result<()> {
    // Builds the indexes from the `from`th on; an error names the one that failed.
    let build = |from: usize| {
        dropped
            .iter()
            .enumerate()
            .skip(from)
            .try_for_each(|(i, sql)| conn.execute_batch(sql).map_err(|e| (i, e)))
    };
    let built = match SortedInRuns::enter(conn) {
        Ok(runs) => {
            let built = build(0);
            drop(runs);
            match built {
                // The runs' temporary files could not be written (no writable temporary
                // directory, or it is full): the failed index and those after it are sorted in
                // memory, as before, while the load's transaction is still open.
                Err((failed, e)) if !is_constraint(&e) && !conn.is_autocommit() => {
                    tracing::warn!(
                        error = %e,
                        "index build with sorter files failed; sorting in memory"
                    );
                    build(failed)
                }
                built => built,
            }
        }
        Err(_) => build(0),
    };
    // A unique index that cannot be built means the load broke an invariant: the error rolls
    // the whole load back.
    built.map_err(|(_, e)| map_rusqlite("build an index after a bulk load", e))?;
    let tasks: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM tasks)", [], |row| row.get(0))
        .map_err(|e| map_rusqlite("look for tasks", e))?;
    if tasks {
        conn.execute(crate::store::RAISE_TASK_REVISION, [&scope.org])
            .map_err(|e| map_rusqlite("raise task revision", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::SqliteStore;
    use opsweave_core::{IngestItem, RecordStore, Scope};
    use opsweave_testkit::TaskFixture;
    use std::time::{Duration, Instant};

    /// The writer connection's journal mode, `synchronous`, `cache_size`, `temp_store` and
    /// `threads`.
    async fn writer_settings(store: &SqliteStore) -> (String, i64, i64, i64, i64) {
        let mut conn = store.writer.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let mut numbers = Vec::new();
        for pragma in ["synchronous", "cache_size", "temp_store", "threads"] {
            let value: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            numbers.push(value);
        }
        (mode, numbers[0], numbers[1], numbers[2], numbers[3])
    }

    #[test]
    fn a_failed_index_build_is_tried_again_from_that_index_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("build.db")).unwrap();
        conn.execute_batch(
            "PRAGMA temp_store = MEMORY; CREATE TABLE t (a INTEGER, b INTEGER); \
             INSERT INTO t VALUES (1, 2), (3, 4); BEGIN",
        )
        .unwrap();
        let dropped = [
            "CREATE INDEX t_a ON t (a)".to_string(),
            "CREATE INDEX t_c ON t (c)".to_string(),
        ];
        let err = super::build_indexes(&conn, &Scope::org("acme"), &dropped).unwrap_err();
        // The retry began at the failed index: the one built before it was not made again
        // ("already exists"), and it stands in the still open transaction.
        assert!(err.to_string().contains("no such column: c"), "{err}");
        assert!(!conn.is_autocommit());
        let built: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 't_a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(built, 1);
        let temp_store: i64 = conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        assert_eq!(temp_store, 2);
    }

    fn items(scope: &Scope) -> Vec<IngestItem> {
        (0..50)
            .map(|i| TaskFixture::new(&format!("T-{i}"), "a task", None, 0.5).item(scope))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_gets_its_settings_back_after_a_direct_load_dropped_or_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.db");
        let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        // WAL, `NORMAL` (1), the writer's cache, temporary store in memory (2), no sorter
        // helpers: the index builds' sorter settings are gone again too.
        let usual = ("wal".to_string(), 1, crate::WRITER_CACHE_SIZE, 2, 0);
        assert_eq!(writer_settings(&store).await, usual);
        let scope = Scope::org("acme");

        let mut load = store.begin_bulk_load(&scope).await.unwrap().unwrap();
        load.write("tasks.csv", &items(&scope), &[]).await.unwrap();
        drop(load);
        // Put back by a task once the rollback has returned the writer.
        let started = Instant::now();
        loop {
            let now = writer_settings(&store).await;
            if now == usual {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{now:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let mut load = store.begin_bulk_load(&scope).await.unwrap().unwrap();
        load.write("tasks.csv", &items(&scope), &[]).await.unwrap();
        load.finish().await.unwrap();
        assert_eq!(writer_settings(&store).await, usual);
        store.close().await;
    }
}
