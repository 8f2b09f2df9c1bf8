//! `Snapshot` on SQLite: every table read in key order a page at a time, and pages written back
//! with their ids (one `BEGIN IMMEDIATE` transaction a page).

use crate::error::{map, map_rusqlite};
use crate::hnsw::VectorStorage;
use crate::jobs::job_of;
use crate::rows::{day_date, day_number, get, instant, millis, scope_of, Columns, NamedRow};
use crate::store::{event_of, record_of, review_of};
use crate::usage::key_of;
use crate::SqliteStore;
use async_trait::async_trait;
use opsweave_core::jobs::scope_key;
use opsweave_core::mapping::Rejection;
use opsweave_core::snapshot::{
    check_key, DatabaseIdentity, RowCount, Snapshot, SnapshotKey, SnapshotKind, SnapshotPage,
    StoredKey, StoredLink, StoredMatchMember, StoredMatchState, StoredRaw, StoredRecord,
    StoredRejection, StoredReview, StoredTask, StoredUsage, StoredVector, MAX_PAGE,
};
use opsweave_core::{
    EntityKind, Error, Link, LinkKind, ModelInfo, Operation, RecordId, Result, Task, UsageEvent,
    VectorIndex, VectorItem,
};
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// Rows per multi-row INSERT: 19 task columns × 1,000 stays under SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The record page's columns: the record's own, then its raw item's and task's, prefixed.
const RECORD_PAGE: &str = "SELECT r.*, i.source_file AS raw_source_file, i.line AS raw_line, \
     i.payload AS raw_payload, i.received_at AS raw_received_at, t.status AS t_status, \
     t.source_status AS t_source_status, t.due_day AS t_due_day, t.importance AS t_importance, \
     t.importance_reason AS t_importance_reason, t.boost AS t_boost, t.pinned AS t_pinned, \
     t.updated_at AS t_updated_at, t.completed_at AS t_completed_at \
     FROM records r LEFT JOIN raw_items i ON i.seq = r.seq LEFT JOIN tasks t ON t.seq = r.seq";

/// Counts every table per org, in one statement.
const ROW_COUNTS: &str = "\
    SELECT 'records' AS tbl, org, count(*) AS n FROM records GROUP BY org \
    UNION ALL SELECT 'raw_items', r.org, count(*) FROM raw_items i JOIN records r ON r.seq = i.seq GROUP BY r.org \
    UNION ALL SELECT 'tasks', org, count(*) FROM tasks GROUP BY org \
    UNION ALL SELECT 'links', org, count(*) FROM links GROUP BY org \
    UNION ALL SELECT 'rejections', org, count(*) FROM rejections GROUP BY org \
    UNION ALL SELECT 'events', org, count(*) FROM events GROUP BY org \
    UNION ALL SELECT 'match_states', org, count(*) FROM match_state GROUP BY org \
    UNION ALL SELECT 'match_members', org, count(*) FROM match_members GROUP BY org \
    UNION ALL SELECT 'match_reviews', org, count(*) FROM match_review GROUP BY org \
    UNION ALL SELECT 'jobs', org, count(*) FROM jobs GROUP BY org \
    UNION ALL SELECT 'usage_events', org, count(*) FROM usage_events GROUP BY org \
    UNION ALL SELECT 'api_keys', org, count(*) FROM api_keys GROUP BY org \
    UNION ALL SELECT 'vectors', org, count(*) FROM vectors GROUP BY org";

#[async_trait]
impl Snapshot for SqliteStore {
    async fn export(
        &self,
        kind: SnapshotKind,
        after: Option<&SnapshotKey>,
        limit: usize,
    ) -> Result<SnapshotPage> {
        check_key(kind, after)?;
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let id_after = match after {
            // Records are paged by id alone here (the id index); the org is not needed.
            Some(SnapshotKey::Id(id) | SnapshotKey::Record(_, id)) => *id,
            _ => i64::MIN,
        };
        let by_id = |table: &str| {
            let key = if kind == SnapshotKind::Events {
                "seq"
            } else {
                "id"
            };
            format!("SELECT * FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?")
        };
        let page = match kind {
            SnapshotKind::Records => {
                SnapshotPage::Records(self.record_page(id_after, limit).await?)
            }
            SnapshotKind::Rejections => {
                let rows = self.read(&by_id("rejections"), id_after, limit).await?;
                SnapshotPage::Rejections(rows.iter().map(stored_rejection).collect::<Result<_>>()?)
            }
            SnapshotKind::Events => {
                let rows = self.read(&by_id("events"), id_after, limit).await?;
                SnapshotPage::Events(rows.iter().map(event_of).collect::<Result<_>>()?)
            }
            SnapshotKind::Jobs => {
                let rows = self.read(&by_id("jobs"), id_after, limit).await?;
                SnapshotPage::Jobs(rows.iter().map(job_of).collect::<Result<_>>()?)
            }
            SnapshotKind::UsageEvents => {
                let rows = self.read(&by_id("usage_events"), id_after, limit).await?;
                SnapshotPage::UsageEvents(rows.iter().map(stored_usage).collect::<Result<_>>()?)
            }
            SnapshotKind::ApiKeys => {
                let rows = self.read(&by_id("api_keys"), id_after, limit).await?;
                SnapshotPage::ApiKeys(
                    rows.iter()
                        .map(|row| {
                            Ok(StoredKey {
                                key: key_of(row)?,
                                hash: get(row, "hash")?,
                            })
                        })
                        .collect::<Result<_>>()?,
                )
            }
            SnapshotKind::Links => {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT org, kind, from_id, to_id, weight, evidence FROM links",
                );
                if let Some(SnapshotKey::Link(k, from, to)) = after {
                    q.push(" WHERE (kind, from_id, to_id) > (")
                        .push_bind(k.as_str())
                        .push(", ")
                        .push_bind(*from)
                        .push(", ")
                        .push_bind(*to)
                        .push(")");
                }
                q.push(" ORDER BY kind, from_id, to_id LIMIT ")
                    .push_bind(limit);
                let rows = self.fetch(q).await?;
                SnapshotPage::Links(rows.iter().map(stored_link).collect::<Result<_>>()?)
            }
            SnapshotKind::MatchStates => {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT org, resolver, state, updated_at FROM match_state",
                );
                if let Some(SnapshotKey::Resolver(org, resolver)) = after {
                    q.push(" WHERE (org, resolver) > (")
                        .push_bind(org.as_str())
                        .push(", ")
                        .push_bind(resolver.as_str())
                        .push(")");
                }
                q.push(" ORDER BY org, resolver LIMIT ").push_bind(limit);
                let rows = self.fetch(q).await?;
                SnapshotPage::MatchStates(
                    rows.iter()
                        .map(|row| {
                            Ok(StoredMatchState {
                                org: get(row, "org")?,
                                resolver: get(row, "resolver")?,
                                state: get(row, "state")?,
                                updated_at: instant(get(row, "updated_at")?),
                            })
                        })
                        .collect::<Result<_>>()?,
                )
            }
            SnapshotKind::MatchMembers => {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT org, resolver, record_id FROM match_members",
                );
                if let Some(SnapshotKey::Member(org, resolver, record)) = after {
                    q.push(" WHERE (org, resolver, record_id) > (")
                        .push_bind(org.as_str())
                        .push(", ")
                        .push_bind(resolver.as_str())
                        .push(", ")
                        .push_bind(*record)
                        .push(")");
                }
                q.push(" ORDER BY org, resolver, record_id LIMIT ")
                    .push_bind(limit);
                let rows = self.fetch(q).await?;
                SnapshotPage::MatchMembers(
                    rows.iter()
                        .map(|row| {
                            Ok(StoredMatchMember {
                                org: get(row, "org")?,
                                resolver: get(row, "resolver")?,
                                record: RecordId::from_raw(get(row, "record_id")?),
                            })
                        })
                        .collect::<Result<_>>()?,
                )
            }
            SnapshotKind::MatchReviews => {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT org, resolver, left_id, right_id, score, probability, explanation, \
                     status, decided_at FROM match_review",
                );
                if let Some(SnapshotKey::Review(org, resolver, left, right)) = after {
                    q.push(" WHERE (org, resolver, left_id, right_id) > (")
                        .push_bind(org.as_str())
                        .push(", ")
                        .push_bind(resolver.as_str())
                        .push(", ")
                        .push_bind(*left)
                        .push(", ")
                        .push_bind(*right)
                        .push(")");
                }
                q.push(" ORDER BY org, resolver, left_id, right_id LIMIT ")
                    .push_bind(limit);
                let rows = self.fetch(q).await?;
                SnapshotPage::MatchReviews(
                    rows.iter()
                        .map(|row| {
                            Ok(StoredReview {
                                org: get(row, "org")?,
                                item: review_of(row)?,
                                decided_at: get::<Option<i64>>(row, "decided_at")?.map(instant),
                            })
                        })
                        .collect::<Result<_>>()?,
                )
            }
            SnapshotKind::Vectors => {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "SELECT v.model, v.id, v.org, v.client, v.project, v.entity, v.source_kind, \
                     v.content_hash, v.vector, m.dim, m.storage, m.fingerprint \
                     FROM vectors v JOIN vector_models m ON m.name = v.model",
                );
                if let Some(SnapshotKey::Vector(model, id)) = after {
                    q.push(" WHERE (v.model, v.id) > (")
                        .push_bind(model.as_str())
                        .push(", ")
                        .push_bind(*id)
                        .push(")");
                }
                q.push(" ORDER BY v.model, v.id LIMIT ").push_bind(limit);
                let rows = self.fetch(q).await?;
                let mut vectors: Vec<StoredVector> =
                    rows.iter().map(stored_vector).collect::<Result<_>>()?;
                // A page holds one model, so its import is one model's one transaction.
                if let Some(first) = vectors.first().map(|v| v.model.clone()) {
                    vectors.retain(|v| v.model == first);
                }
                SnapshotPage::Vectors(vectors)
            }
        };
        Ok(page)
    }

    async fn import(&self, page: SnapshotPage) -> Result<()> {
        if page.is_empty() {
            return Ok(());
        }
        if let SnapshotPage::Vectors(vectors) = page {
            return self.import_vectors(vectors).await;
        }
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        match &page {
            SnapshotPage::Records(rows) => {
                let mut handle = tx
                    .lock_handle()
                    .await
                    .map_err(|e| map("lend the writer connection", e))?;
                crate::ingest::with_connection(&mut handle, |conn| {
                    crate::ingest::blocking(|| import_records(conn, rows))
                })?
            }
            SnapshotPage::Links(rows) => import_links(&mut tx, rows).await?,
            SnapshotPage::Rejections(rows) => import_rejections(&mut tx, rows).await?,
            SnapshotPage::Events(rows) => import_events(&mut tx, rows).await?,
            SnapshotPage::MatchStates(rows) => import_match_states(&mut tx, rows).await?,
            SnapshotPage::MatchMembers(rows) => import_match_members(&mut tx, rows).await?,
            SnapshotPage::MatchReviews(rows) => import_match_reviews(&mut tx, rows).await?,
            SnapshotPage::Jobs(rows) => import_jobs(&mut tx, rows).await?,
            SnapshotPage::UsageEvents(rows) => import_usage(&mut tx, rows).await?,
            SnapshotPage::ApiKeys(rows) => import_keys(&mut tx, rows).await?,
            SnapshotPage::Vectors(_) => {}
        }
        tx.commit()
            .await
            .map_err(|e| map(&format!("commit imported {}", page.kind()), e))
    }

    async fn row_counts(&self) -> Result<Vec<RowCount>> {
        let rows = sqlx::query(ROW_COUNTS)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("count rows", e))?;
        rows.iter()
            .map(|row| {
                Ok(RowCount {
                    table: get(row, "tbl")?,
                    org: get(row, "org")?,
                    rows: get::<i64>(row, "n")?.max(0) as u64,
                })
            })
            .collect()
    }

    async fn database_identity(&self) -> Result<Option<DatabaseIdentity>> {
        let file: Option<String> =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("read the database file's name", e))?;
        // An in-memory database has no file: it is nobody else's.
        let Some(file) = file.filter(|f| !f.is_empty()) else {
            return Ok(None);
        };
        let path = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone().into());
        let label = format!("SQLite file {}", path.display());
        // Device and inode: a hard link or a bind mount is the same file under another path.
        // A file gone since it was opened (removed, renamed) is named by its path instead.
        #[cfg(unix)]
        let key = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&path).map_or_else(
                |_| format!("sqlite-path:{}", path.display()),
                |meta| format!("sqlite:{}:{}", meta.dev(), meta.ino()),
            )
        };
        #[cfg(not(unix))]
        let key = format!("sqlite-path:{}", path.display());
        Ok(Some(DatabaseIdentity { key, label }))
    }
}

impl SqliteStore {
    /// Runs a page query with an id cursor and a limit.
    async fn read(&self, sql: &str, after: i64, limit: i64) -> Result<Vec<SqliteRow>> {
        sqlx::query(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("export a page", e))
    }

    /// A page of records with their raw items and tasks, read with rusqlite on a pooled reader
    /// connection: through sqlx every row crossed to the async side on its own and every value
    /// was copied on the way, which made reading the larger part of a `migrate` from SQLite. It
    /// reads on a blocking thread, so a copy writes one page while it reads the next.
    async fn record_page(&self, after: i64, limit: i64) -> Result<Vec<StoredRecord>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| map("export a page", e))?;
        tokio::task::spawn_blocking(move || {
            let mut handle = tokio::runtime::Handle::current()
                .block_on(conn.lock_handle())
                .map_err(|e| map("lend a reader connection", e))?;
            crate::ingest::with_connection(&mut handle, |conn| read_records(conn, after, limit))
        })
        .await
        .map_err(|e| Error::internal(format!("sqlite: export a page: {e}")))?
    }

    /// Runs a built page query.
    async fn fetch(&self, mut q: QueryBuilder<'_, Sqlite>) -> Result<Vec<SqliteRow>> {
        q.build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("export a page", e))
    }

    /// Writes one model's vectors through the index (which keeps its graph in step).
    async fn import_vectors(&self, vectors: Vec<StoredVector>) -> Result<()> {
        let model = vectors[0].model.clone();
        if vectors.iter().any(|v| v.model != model) {
            return Err(Error::invalid(
                "a page of vectors must hold one model's (it is written in one transaction)",
            ));
        }
        let info = ModelInfo {
            dim: vectors[0].item.vector.len(),
            name: model,
            max_tokens: 0,
            fingerprint: vectors[0].fingerprint.clone(),
        };
        self.upsert(&info, vectors.into_iter().map(|v| v.item).collect())
            .await
    }
}

/// Reads the records page after record id `after`.
fn read_records(conn: &Connection, after: i64, limit: i64) -> Result<Vec<StoredRecord>> {
    let fail = |e| map_rusqlite("export a page", e);
    let mut statement = conn
        .prepare(&format!(
            "{RECORD_PAGE} WHERE r.id > ?1 ORDER BY r.id LIMIT ?2"
        ))
        .map_err(fail)?;
    let columns = NamedRow::columns(&statement);
    let mut rows = statement.query([after, limit]).map_err(fail)?;
    let mut page = Vec::with_capacity(usize::try_from(limit).unwrap_or_default());
    while let Some(row) = rows.next().map_err(fail)? {
        let row = NamedRow {
            row,
            columns: &columns,
        };
        page.push(stored_record(&row)?);
    }
    Ok(page)
}

fn stored_record(row: &impl Columns) -> Result<StoredRecord> {
    let record = record_of(row)?;
    let raw = match row.column::<Option<String>>("raw_payload")? {
        Some(payload) => Some(StoredRaw {
            source_file: row.column("raw_source_file")?,
            line: row.column::<i64>("raw_line")?.max(0) as u64,
            payload,
            received_at: instant(row.column("raw_received_at")?),
        }),
        None => None,
    };
    let task = match row.column::<Option<String>>("t_status")? {
        Some(status) => Some(StoredTask {
            // A task row repeats its record's id, scope, title, source kind and url.
            task: Task {
                id: record.id,
                scope: record.scope.clone(),
                title: record.title.clone(),
                source_kind: record.source.kind.clone(),
                url: record.source.url.clone(),
                status: status.parse()?,
                due: row.column::<Option<i64>>("t_due_day")?.and_then(day_date),
                importance: row.column("t_importance")?,
                importance_reason: row.column("t_importance_reason")?,
                boost: row.column("t_boost")?,
                pinned: row.column::<i64>("t_pinned")? != 0,
                updated_at: instant(row.column("t_updated_at")?),
                completed_at: row.column::<Option<i64>>("t_completed_at")?.map(instant),
            },
            source_status: row.column::<String>("t_source_status")?.parse()?,
        }),
        None => None,
    };
    Ok(StoredRecord {
        fields_json: row.column("fields")?,
        record,
        raw,
        task,
    })
}

fn stored_rejection(row: &SqliteRow) -> Result<StoredRejection> {
    let mut rejection = Rejection::new(
        get::<i64>(row, "line")?.max(0) as u64,
        get::<Option<String>>(row, "field")?.as_deref(),
        get::<String>(row, "reason")?,
    );
    rejection.raw = get(row, "raw")?;
    Ok(StoredRejection {
        id: get(row, "id")?,
        scope: scope_of(row)?,
        source_file: get(row, "source_file")?,
        rejection,
        at: instant(get(row, "at")?),
    })
}

fn stored_link(row: &SqliteRow) -> Result<StoredLink> {
    Ok(StoredLink {
        org: get(row, "org")?,
        link: Link {
            kind: get::<String>(row, "kind")?.parse::<LinkKind>()?,
            from: RecordId::from_raw(get(row, "from_id")?),
            to: RecordId::from_raw(get(row, "to_id")?),
            weight: get(row, "weight")?,
            evidence: get(row, "evidence")?,
        },
    })
}

fn stored_usage(row: &SqliteRow) -> Result<StoredUsage> {
    let count = |column: &str| -> Result<u64> {
        u64::try_from(get::<i64>(row, column)?)
            .map_err(|_| Error::internal(format!("sqlite: usage column `{column}` is negative")))
    };
    let operation = match get::<String>(row, "operation")?.as_str() {
        "embed" => Operation::Embed,
        "chat" => Operation::Chat,
        other => {
            return Err(Error::internal(format!(
                "sqlite: unknown usage operation `{other}`"
            )))
        }
    };
    Ok(StoredUsage {
        id: get(row, "id")?,
        event: UsageEvent {
            scope: scope_of(row)?,
            operation,
            model: get(row, "model")?,
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
            embedding_tokens: count("embedding_tokens")?,
            latency_ms: count("latency_ms")?,
            job: get::<Option<i64>>(row, "job_id")?.map(opsweave_core::JobId),
            at: instant(get(row, "at")?),
        },
    })
}

fn stored_vector(row: &SqliteRow) -> Result<StoredVector> {
    let model: String = get(row, "model")?;
    let id: i64 = get(row, "id")?;
    let dim = get::<i64>(row, "dim")?.max(0) as usize;
    let storage = VectorStorage::parse(&get::<String>(row, "storage")?)?;
    let blob: Vec<u8> = get(row, "vector")?;
    let vector = storage.decode(&blob, dim).ok_or_else(|| {
        Error::internal(format!(
            "sqlite: vector of record {id} (model `{model}`) has {} bytes, not {dim} {} values",
            blob.len(),
            storage.as_str()
        ))
    })?;
    Ok(StoredVector {
        item: VectorItem {
            id: RecordId::from_raw(id),
            scope: scope_of(row)?,
            entity: get::<String>(row, "entity")?.parse::<EntityKind>()?,
            source_kind: get(row, "source_kind")?,
            content_hash: get::<i64>(row, "content_hash")? as u64,
            vector,
        },
        model,
        fingerprint: get(row, "fingerprint")?,
    })
}

/// Records, raw items and tasks: each record keeps its row number when it is already stored and
/// takes the next one otherwise (the FTS index follows: updated records by their trigger, new
/// ones all at once at the end). Written through rusqlite with one-row statements inside the
/// page's transaction, as ingest batches are: sqlx's multi-row statements copied every bound
/// value.
fn import_records(conn: &Connection, rows: &[StoredRecord]) -> Result<()> {
    let fail = |what: &'static str| move |e| map_rusqlite(what, e);
    let mut seqs: HashMap<i64, i64> = HashMap::with_capacity(rows.len());
    {
        let mut find = conn
            .prepare_cached("SELECT seq FROM records WHERE id = ?1")
            .map_err(fail("read existing records"))?;
        for r in rows {
            let id = r.record.id.raw();
            if let Some(seq) = find
                .query_row([id], |row| row.get::<_, i64>(0))
                .optional()
                .map_err(fail("read existing records"))?
            {
                seqs.insert(id, seq);
            }
        }
    }
    let mut next: i64 = conn
        .query_row("SELECT coalesce(max(seq), 0) + 1 FROM records", [], |row| {
            row.get(0)
        })
        .map_err(fail("next row number"))?;
    let first_new = next;
    // A record given twice in a page: the later row wins, as in ingest. (Importing both would
    // have the second one's update trigger take words out of the full-text index for a row that
    // is only indexed at the end.)
    let last: HashMap<i64, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record.id.raw(), i))
        .collect();
    let mut record = conn
        .prepare_cached(
            "INSERT INTO records (seq, id, org, client, project, source_kind, external_id, url, \
             entity, title, body, fields, created_at, updated_at, content_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             ON CONFLICT (seq) DO UPDATE SET org = excluded.org, client = excluded.client, \
             project = excluded.project, source_kind = excluded.source_kind, \
             external_id = excluded.external_id, url = excluded.url, entity = excluded.entity, \
             title = excluded.title, body = excluded.body, fields = excluded.fields, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, \
             content_hash = excluded.content_hash",
        )
        .map_err(fail("import records"))?;
    let mut raw_item = conn
        .prepare_cached(
            "INSERT INTO raw_items (seq, source_file, line, payload, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (seq) DO UPDATE SET source_file = excluded.source_file, \
             line = excluded.line, payload = excluded.payload, \
             received_at = excluded.received_at",
        )
        .map_err(fail("import raw items"))?;
    let mut task = conn
        .prepare_cached(
            "INSERT INTO tasks (seq, id, org, client, project, title, source_kind, url, \
             status, source_status, open, marked, due_day, importance, importance_reason, \
             boost, pinned, updated_at, completed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18, ?19) \
             ON CONFLICT (seq) DO UPDATE SET id = excluded.id, org = excluded.org, \
             client = excluded.client, project = excluded.project, title = excluded.title, \
             source_kind = excluded.source_kind, url = excluded.url, status = excluded.status, \
             source_status = excluded.source_status, open = excluded.open, \
             marked = excluded.marked, due_day = excluded.due_day, \
             importance = excluded.importance, importance_reason = excluded.importance_reason, \
             boost = excluded.boost, pinned = excluded.pinned, \
             updated_at = excluded.updated_at, completed_at = excluded.completed_at",
        )
        .map_err(fail("import tasks"))?;
    // A record without a raw item or task in the page has none in the copy either.
    let mut no_raw_item = conn
        .prepare_cached("DELETE FROM raw_items WHERE seq = ?1")
        .map_err(fail("import: clear raw_items"))?;
    let mut no_task = conn
        .prepare_cached("DELETE FROM tasks WHERE seq = ?1")
        .map_err(fail("import: clear tasks"))?;
    for (i, s) in rows.iter().enumerate() {
        let r = &s.record;
        if last.get(&r.id.raw()) != Some(&i) {
            continue;
        }
        let seq = *seqs.entry(r.id.raw()).or_insert_with(|| {
            next += 1;
            next - 1
        });
        record
            .execute(params![
                seq,
                r.id.raw(),
                r.scope.org,
                r.scope.client,
                r.scope.project,
                r.source.kind,
                r.source.external_id,
                r.source.url,
                r.entity.as_str(),
                r.title,
                r.body,
                s.fields_json,
                r.created_at.map(millis),
                millis(r.updated_at),
                r.content_hash
            ])
            .map_err(fail("import records"))?;
        match &s.raw {
            Some(raw) => raw_item.execute(params![
                seq,
                raw.source_file,
                i64::try_from(raw.line).unwrap_or(i64::MAX),
                raw.payload,
                millis(raw.received_at)
            ]),
            None => no_raw_item.execute([seq]),
        }
        .map_err(fail("import raw items"))?;
        match &s.task {
            Some(stored) => {
                let t = &stored.task;
                task.execute(params![
                    seq,
                    t.id.raw(),
                    t.scope.org,
                    t.scope.client,
                    t.scope.project,
                    t.title,
                    t.source_kind,
                    t.url,
                    t.status.as_str(),
                    stored.source_status.as_str(),
                    t.status.is_open(),
                    t.pinned || t.boost != 0.0,
                    t.due.map(day_number),
                    t.importance,
                    t.importance_reason,
                    t.boost,
                    t.pinned,
                    millis(t.updated_at),
                    t.completed_at.map(millis)
                ])
            }
            None => no_task.execute([seq]),
        }
        .map_err(fail("import tasks"))?;
    }
    conn.execute(crate::ingest::INDEX_NEW_RECORDS, [first_new])
        .map_err(fail("import: index new records for search"))?;
    // A server reading the copy reuses focus answers while the revision stands: a page that
    // changed tasks moves it.
    let mut orgs: Vec<&str> = rows.iter().map(|s| s.record.scope.org.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        conn.execute(crate::store::RAISE_TASK_REVISION, [org])
            .map_err(fail("raise task revision"))?;
    }
    Ok(())
}

async fn import_links(tx: &mut SqliteConnection, rows: &[StoredLink]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO links (org, kind, from_id, to_id, weight, evidence) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(s.org.as_str())
                .push_bind(s.link.kind.as_str())
                .push_bind(s.link.from.raw())
                .push_bind(s.link.to.raw())
                .push_bind(s.link.weight)
                .push_bind(s.link.evidence.as_str());
        });
        q.push(
            " ON CONFLICT (kind, from_id, to_id) DO UPDATE SET org = excluded.org, \
             weight = excluded.weight, evidence = excluded.evidence",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import links", e))?;
    }
    Ok(())
}

async fn import_rejections(tx: &mut SqliteConnection, rows: &[StoredRejection]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO rejections (id, org, client, project, source_file, line, field, reason, \
             raw, at) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(s.id)
                .push_bind(s.scope.org.as_str())
                .push_bind(s.scope.client.as_deref())
                .push_bind(s.scope.project.as_deref())
                .push_bind(s.source_file.as_str())
                .push_bind(i64::try_from(s.rejection.line).unwrap_or(i64::MAX))
                .push_bind(s.rejection.field.as_deref())
                .push_bind(s.rejection.reason.as_str())
                .push_bind(s.rejection.raw.as_deref())
                .push_bind(millis(s.at));
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET org = excluded.org, client = excluded.client, \
             project = excluded.project, source_file = excluded.source_file, \
             line = excluded.line, field = excluded.field, reason = excluded.reason, \
             raw = excluded.raw, at = excluded.at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import rejections", e))?;
    }
    Ok(())
}

async fn import_events(tx: &mut SqliteConnection, rows: &[opsweave_core::Event]) -> Result<()> {
    let kinds = rows
        .iter()
        .map(|e| {
            serde_json::to_string(&e.event.kind)
                .map_err(|err| Error::internal(format!("event to JSON: {err}")))
        })
        .collect::<Result<Vec<String>>>()?;
    let rows: Vec<(&opsweave_core::Event, &String)> = rows.iter().zip(&kinds).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (seq, org, client, project, actor, subject, kind, at) ",
        );
        q.push_values(chunk, |mut b, (e, kind)| {
            b.push_bind(e.seq)
                .push_bind(e.event.scope.org.as_str())
                .push_bind(e.event.scope.client.as_deref())
                .push_bind(e.event.scope.project.as_deref())
                .push_bind(e.event.actor.as_str())
                .push_bind(e.event.subject.map(RecordId::raw))
                .push_bind(kind.as_str())
                .push_bind(millis(e.event.at));
        });
        q.push(
            " ON CONFLICT (seq) DO UPDATE SET org = excluded.org, client = excluded.client, \
             project = excluded.project, actor = excluded.actor, subject = excluded.subject, \
             kind = excluded.kind, at = excluded.at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import events", e))?;
    }
    Ok(())
}

async fn import_match_states(tx: &mut SqliteConnection, rows: &[StoredMatchState]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO match_state (org, resolver, state, updated_at) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(s.org.as_str())
                .push_bind(s.resolver.as_str())
                .push_bind(s.state.as_str())
                .push_bind(millis(s.updated_at));
        });
        q.push(
            " ON CONFLICT (org, resolver) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import match states", e))?;
    }
    Ok(())
}

async fn import_match_members(tx: &mut SqliteConnection, rows: &[StoredMatchMember]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO match_members (org, resolver, record_id) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(s.org.as_str())
                .push_bind(s.resolver.as_str())
                .push_bind(s.record.raw());
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import match members", e))?;
    }
    Ok(())
}

async fn import_match_reviews(tx: &mut SqliteConnection, rows: &[StoredReview]) -> Result<()> {
    let explanations = rows
        .iter()
        .map(|r| {
            serde_json::to_string(&r.item.explanation)
                .map_err(|e| Error::internal(format!("explanation to JSON: {e}")))
        })
        .collect::<Result<Vec<String>>>()?;
    let rows: Vec<(&StoredReview, &String)> = rows.iter().zip(&explanations).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO match_review (org, resolver, left_id, right_id, score, probability, \
             explanation, status, decided_at) ",
        );
        q.push_values(chunk, |mut b, (s, explanation)| {
            b.push_bind(s.org.as_str())
                .push_bind(s.item.resolver.as_str())
                .push_bind(s.item.left.raw())
                .push_bind(s.item.right.raw())
                .push_bind(s.item.score)
                .push_bind(s.item.probability)
                .push_bind(explanation.as_str())
                .push_bind(s.item.status.as_str())
                .push_bind(s.decided_at.map(millis));
        });
        q.push(
            " ON CONFLICT (org, resolver, left_id, right_id) DO UPDATE SET score = excluded.score, \
             probability = excluded.probability, explanation = excluded.explanation, \
             status = excluded.status, decided_at = excluded.decided_at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import match reviews", e))?;
    }
    Ok(())
}

async fn import_jobs(tx: &mut SqliteConnection, rows: &[opsweave_core::Job]) -> Result<()> {
    let payloads: Vec<String> = rows.iter().map(|j| j.payload.to_string()).collect();
    let keys: Vec<String> = rows.iter().map(|j| scope_key(&j.scope)).collect();
    let rows: Vec<(&opsweave_core::Job, (&String, &String))> =
        rows.iter().zip(payloads.iter().zip(&keys)).collect();
    // 21 columns a row.
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs (id, org, client, project, scope_key, kind, payload, status, \
             attempts, max_attempts, backoff_ms, progress, message, idempotency_key, lease_owner, \
             lease_expires_at, run_after, error, created_at, updated_at, finished_at) ",
        );
        q.push_values(chunk, |mut b, (j, (payload, key))| {
            b.push_bind(j.id.0)
                .push_bind(j.scope.org.as_str())
                .push_bind(j.scope.client.as_deref())
                .push_bind(j.scope.project.as_deref())
                .push_bind(key.as_str())
                .push_bind(j.kind.as_str())
                .push_bind(payload.as_str())
                .push_bind(j.status.as_str())
                .push_bind(i64::from(j.attempts))
                .push_bind(i64::from(j.max_attempts))
                .push_bind(i64::try_from(j.backoff.as_millis()).unwrap_or(i64::MAX))
                .push_bind(j.progress)
                .push_bind(j.message.as_deref())
                .push_bind(j.idempotency_key.as_deref())
                .push_bind(j.lease_owner.as_deref())
                .push_bind(j.lease_expires_at.map(millis))
                .push_bind(millis(j.run_after))
                .push_bind(j.error.as_deref())
                .push_bind(millis(j.created_at))
                .push_bind(millis(j.updated_at))
                .push_bind(j.finished_at.map(millis));
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET org = excluded.org, client = excluded.client, \
             project = excluded.project, scope_key = excluded.scope_key, kind = excluded.kind, \
             payload = excluded.payload, status = excluded.status, attempts = excluded.attempts, \
             max_attempts = excluded.max_attempts, backoff_ms = excluded.backoff_ms, \
             progress = excluded.progress, message = excluded.message, \
             idempotency_key = excluded.idempotency_key, lease_owner = excluded.lease_owner, \
             lease_expires_at = excluded.lease_expires_at, run_after = excluded.run_after, \
             error = excluded.error, created_at = excluded.created_at, \
             updated_at = excluded.updated_at, finished_at = excluded.finished_at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import jobs", e))?;
    }
    Ok(())
}

async fn import_usage(tx: &mut SqliteConnection, rows: &[StoredUsage]) -> Result<()> {
    let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_events (id, org, client, project, operation, model, input_tokens, \
             output_tokens, embedding_tokens, latency_ms, job_id, at) ",
        );
        q.push_values(chunk, |mut b, u| {
            let e = &u.event;
            b.push_bind(u.id)
                .push_bind(e.scope.org.as_str())
                .push_bind(e.scope.client.as_deref())
                .push_bind(e.scope.project.as_deref())
                .push_bind(e.operation.as_str())
                .push_bind(e.model.as_str())
                .push_bind(count(e.input_tokens))
                .push_bind(count(e.output_tokens))
                .push_bind(count(e.embedding_tokens))
                .push_bind(count(e.latency_ms))
                .push_bind(e.job.map(|j| j.0))
                .push_bind(millis(e.at));
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET org = excluded.org, client = excluded.client, \
             project = excluded.project, operation = excluded.operation, model = excluded.model, \
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
             embedding_tokens = excluded.embedding_tokens, latency_ms = excluded.latency_ms, \
             job_id = excluded.job_id, at = excluded.at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import usage events", e))?;
    }
    Ok(())
}

async fn import_keys(tx: &mut SqliteConnection, rows: &[StoredKey]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO api_keys (id, hash, prefix, name, org, client, project, role, \
             created_at, expires_at, revoked_at) ",
        );
        q.push_values(chunk, |mut b, s| {
            let k = &s.key;
            b.push_bind(k.id.0)
                .push_bind(s.hash.as_str())
                .push_bind(k.prefix.as_str())
                .push_bind(k.name.as_str())
                .push_bind(k.scope.org.as_str())
                .push_bind(k.scope.client.as_deref())
                .push_bind(k.scope.project.as_deref())
                .push_bind(k.role.as_str())
                .push_bind(millis(k.created_at))
                .push_bind(k.expires_at.map(millis))
                .push_bind(k.revoked_at.map(millis));
        });
        q.push(
            " ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, prefix = excluded.prefix, \
             name = excluded.name, org = excluded.org, client = excluded.client, \
             project = excluded.project, role = excluded.role, created_at = excluded.created_at, \
             expires_at = excluded.expires_at, revoked_at = excluded.revoked_at",
        );
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import api keys", e))?;
    }
    Ok(())
}
