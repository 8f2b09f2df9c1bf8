//! `RecordStore` and `EventLog` on PostgreSQL.
//!
//! Every operation is one transaction (or one statement) that [`with_retries`] runs again when it
//! fails for a transient reason; batches are written about 1,000 rows per statement (rows new to
//! the store copied in with binary `COPY`, the others with `UNNEST` arrays) and commit whole or not
//! at all.

use crate::copy::CopyRows;
use crate::error::map;
use crate::fulltext::{all_words_tsquery, Document};
use crate::retry::with_retries;
use crate::rows::{
    event_of, get, opt_text, push_scope, record_of, search_hit_of, stored, task_of, text,
    TASK_COLUMNS,
};
use crate::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use opsweave_core::mapping::Rejection;
use opsweave_core::store::{CandidateQuery, RecordFilter, Slice};
use opsweave_core::{
    BatchOutcome, Error, ErrorKind, Event, EventKind, EventLog, IngestItem, Link, LinkKind,
    MatchRun, NewEvent, Record, RecordId, RecordStore, Result, ReviewItem, Scope, SearchHit, Task,
    TaskStatus, TextQuery,
};
use sqlx::postgres::PgConnection;
use sqlx::QueryBuilder;
use std::borrow::Cow;
use std::collections::HashMap;

/// Rows per `UNNEST` or `COPY` statement.
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

/// The advisory lock that serialises event appends (any constant unique to opsweave).
pub(crate) const EVENT_APPEND_LOCK: i64 = 0x6f70_7377_6576_6531;

#[async_trait]
impl RecordStore for PgStore {
    async fn ingest_batch(
        &self,
        scope: &Scope,
        source_file: &str,
        items: &[IngestItem],
        rejections: &[Rejection],
    ) -> Result<BatchOutcome> {
        // The same item twice in one batch: the later one wins, as it would across batches.
        let mut latest: HashMap<i64, usize> = HashMap::with_capacity(items.len());
        let mut repeated = 0;
        for (i, item) in items.iter().enumerate() {
            if latest.insert(item.normalised.record.id.raw(), i).is_some() {
                repeated += 1;
            }
        }
        let mut unique: Vec<&IngestItem> = latest.into_values().map(|i| &items[i]).collect();
        // Rows locked in id order: two batches that share records wait instead of deadlocking.
        unique.sort_unstable_by_key(|item| item.normalised.record.id);
        let now = stored(Utc::now());
        let unique = &unique;
        // Drawn once, outside the retried transaction: a retry after a lost COMMIT writes the
        // same keys, and the rows the first attempt committed are skipped.
        let batch_key = if rejections.is_empty() {
            0
        } else {
            with_retries(|| async {
                sqlx::query_scalar::<_, i64>("SELECT nextval('raw.rejection_batches')")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| map("draw a rejection batch key", e))
            })
            .await?
        };
        let write = |fresh_inserts: bool| {
            with_retries(move || async move {
                let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
                let mut outcome = BatchOutcome::default();
                let mut tasks_written = false;
                for chunk in unique.chunks(ROWS_PER_STATEMENT) {
                    // Unchanged records whose task the priority config may now rate otherwise.
                    let mut rescore = Vec::new();
                    let written = if fresh_inserts {
                        write_new_records(&mut tx, chunk, &mut rescore).await?
                    } else {
                        let written = upsert_records(&mut tx, chunk).await?;
                        rescore.extend(chunk.iter().copied().filter(|item| {
                            !written.contains_key(&item.normalised.record.id.raw())
                        }));
                        written
                    };
                    let rescored = rescore_tasks(&mut tx, &rescore).await?;
                    tasks_written |= rescored > 0;
                    let inserted = written.values().filter(|inserted| **inserted).count() as u64;
                    outcome.inserted += inserted;
                    outcome.updated += written.len() as u64 - inserted + rescored;
                    outcome.unchanged += (chunk.len() - written.len()) as u64 - rescored;
                    // The rows of a record this chunk inserted do not exist yet (they are
                    // written and deleted with their record): they are copied in, without the
                    // conflict checks that cost a third of those rows.
                    let mut all = Vec::with_capacity(written.len());
                    let (mut new, mut changed) = (Vec::new(), Vec::new());
                    for item in chunk {
                        match written.get(&item.normalised.record.id.raw()) {
                            Some(true) if fresh_inserts => new.push(*item),
                            Some(_) => changed.push(*item),
                            None => continue,
                        }
                        all.push(*item);
                    }
                    for (rows, conflicts) in [(&new, false), (&changed, true)] {
                        if rows.is_empty() {
                            continue;
                        }
                        write_raw(&mut tx, source_file, rows, now, conflicts).await?;
                        tasks_written |= write_tasks(&mut tx, rows, conflicts).await?;
                    }
                    upsert_item_links(&mut tx, scope, &all).await?;
                }
                for (n, chunk) in rejections.chunks(ROWS_PER_STATEMENT).enumerate() {
                    let first = (n * ROWS_PER_STATEMENT) as i64;
                    let key = (batch_key, first);
                    insert_rejections(&mut tx, scope, source_file, chunk, now, key).await?;
                }
                if tasks_written {
                    raise_task_revision(&mut tx, &scope.org).await?;
                }
                tx.commit().await.map_err(|e| map("commit batch", e))?;
                Ok(outcome)
            })
        };
        let mut outcome = match write(true).await {
            // A row that should not have existed did (a store changed by hand?): the batch rolled
            // back whole; write it again with conflict checks on every row.
            Err(e) if e.kind() == ErrorKind::Conflict => write(false).await?,
            done => done?,
        };
        outcome.updated += repeated;
        Ok(outcome)
    }

    async fn record(&self, scope: &Scope, id: RecordId) -> Result<Record> {
        with_retries(|| async {
            let mut q = QueryBuilder::new("SELECT * FROM core.records WHERE id = ");
            q.push_bind(id.raw()).push(" AND ");
            push_scope(&mut q, scope, "");
            q.build()
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("read record", e))?
                .ok_or_else(|| Error::not_found(format!("no record {id} in scope {scope}")))
                .and_then(|row| record_of(&row))
        })
        .await
    }

    async fn raw_payload(&self, scope: &Scope, id: RecordId) -> Result<String> {
        with_retries(|| async {
            let mut q = QueryBuilder::new(
                "SELECT i.payload FROM raw.items i JOIN core.records r ON r.id = i.id WHERE i.id = ",
            );
            q.push_bind(id.raw()).push(" AND ");
            push_scope(&mut q, scope, "r");
            let row = q
                .build()
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("read raw payload", e))?
                .ok_or_else(|| Error::not_found(format!("no record {id} in scope {scope}")))?;
            get(&row, "payload")
        })
        .await
    }

    async fn records(&self, scope: &Scope, filter: &RecordFilter) -> Result<Vec<Record>> {
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(10_000)
        };
        with_retries(|| async {
            let mut q = QueryBuilder::new("SELECT * FROM core.records WHERE ");
            push_scope(&mut q, scope, "");
            if let Some(entity) = filter.entity {
                q.push(" AND entity = ").push_bind(entity.as_str());
            }
            if let Some(source) = &filter.source {
                q.push(" AND source_kind = ").push_bind(source.as_str());
            }
            q.push(" AND id > ")
                .push_bind(filter.after.map_or(-1, RecordId::raw))
                .push(" ORDER BY id LIMIT ")
                .push_bind(limit as i64);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("list records", e))?;
            rows.iter().map(record_of).collect()
        })
        .await
    }

    async fn rejections(&self, scope: &Scope, limit: usize) -> Result<Vec<(String, Rejection)>> {
        with_retries(|| async {
            let mut q = QueryBuilder::new(
                "SELECT source_file, line, field, reason, raw FROM raw.rejections WHERE ",
            );
            push_scope(&mut q, scope, "");
            q.push(" ORDER BY id DESC LIMIT ")
                .push_bind(limit.min(i64::MAX as usize) as i64);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("list rejections", e))?;
            rows.iter()
                .map(|row| {
                    let mut r = Rejection::new(
                        get::<i64>(row, "line")? as u64,
                        get::<Option<String>>(row, "field")?.as_deref(),
                        get::<String>(row, "reason")?,
                    );
                    r.raw = get(row, "raw")?;
                    Ok((get(row, "source_file")?, r))
                })
                .collect()
        })
        .await
    }

    async fn rank_text(&self, scope: &Scope, query: &TextQuery) -> Result<Vec<SearchHit>> {
        crate::recall::rank_text(self, scope, query).await
    }

    async fn records_by_id(&self, scope: &Scope, ids: &[RecordId]) -> Result<Vec<Record>> {
        crate::recall::records_by_id(self, scope, ids).await
    }

    async fn delete_records(&self, scope: &Scope, ids: &[RecordId]) -> Result<u64> {
        crate::recall::delete_records(self, scope, ids).await
    }

    async fn search(&self, scope: &Scope, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let Some(tsquery) = all_words_tsquery(query) else {
            return Err(Error::invalid("search query has no words to look for").on_field("q"));
        };
        let tsquery = &tsquery;
        with_retries(|| async move {
            // Title words weigh 1.0, body words 0.4 (ts_rank's A and B weights).
            let mut q = QueryBuilder::new(
                "SELECT r.id, r.title, r.entity, r.source_kind, \
                 ts_headline('simple', r.body, query, \
                   'StartSel=[, StopSel=], MaxWords=12, MinWords=3, ShortWord=0, MaxFragments=1, \
                    FragmentDelimiter=…') AS snippet, \
                 ts_rank(r.document, query)::float8 AS rank \
                 FROM core.records r, CAST(",
            );
            q.push_bind(tsquery.as_str())
                .push(" AS tsquery) AS query WHERE r.document @@ query AND ");
            push_scope(&mut q, scope, "r");
            q.push(" ORDER BY rank DESC, r.id LIMIT ")
                .push_bind(limit.clamp(1, 1000) as i64);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("search", e))?;
            rows.iter().map(search_hit_of).collect()
        })
        .await
    }

    async fn task(&self, scope: &Scope, id: RecordId) -> Result<Task> {
        // The same read; the source status is one column more.
        Ok(self.task_with_source_status(scope, id).await?.0)
    }

    async fn task_with_source_status(
        &self,
        scope: &Scope,
        id: RecordId,
    ) -> Result<(Task, Option<String>)> {
        with_retries(|| async {
            let mut q = QueryBuilder::new(format!(
                "SELECT {TASK_COLUMNS}, source_status FROM core.tasks WHERE id = "
            ));
            q.push_bind(id.raw()).push(" AND ");
            push_scope(&mut q, scope, "");
            let row = q
                .build()
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("read task", e))?
                .ok_or_else(|| Error::not_found(format!("no task {id} in scope {scope}")))?;
            Ok((task_of(&row)?, Some(get(&row, "source_status")?)))
        })
        .await
    }

    async fn task_candidates(&self, scope: &Scope, c: &CandidateQuery) -> Result<Vec<Task>> {
        with_retries(|| async {
            let mut q = QueryBuilder::new(format!("SELECT {TASK_COLUMNS} FROM core.tasks WHERE "));
            push_scope(&mut q, scope, "");
            q.push(" AND open");
            match c.slice {
                Slice::Due(from, to) => {
                    q.push(" AND NOT marked AND due_day BETWEEN ")
                        .push_bind(from)
                        .push(" AND ")
                        .push_bind(to);
                }
                Slice::DueBefore(before) => {
                    q.push(" AND NOT marked AND due_day < ").push_bind(before);
                }
                Slice::Undated(min, max) => {
                    q.push(" AND NOT marked AND due_day IS NULL AND importance >= ")
                        .push_bind(min.max(-1e300))
                        .push(" AND importance < ")
                        .push_bind(max.min(1e300));
                }
                Slice::Marked => {
                    q.push(" AND marked");
                }
            }
            if c.min_importance > f64::NEG_INFINITY {
                q.push(" AND importance >= ").push_bind(c.min_importance);
            }
            if let Some(after) = c.after {
                q.push(" AND (importance < ").push_bind(after.importance);
                if let Some(updated) = after.updated_at {
                    q.push(" OR (importance = ")
                        .push_bind(after.importance)
                        .push(" AND (updated_at < ")
                        .push_bind(stored(updated))
                        .push(" OR (updated_at = ")
                        .push_bind(stored(updated))
                        .push(" AND id > ")
                        .push_bind(after.id.raw())
                        .push(")))");
                }
                q.push(")");
            }
            q.push(" ORDER BY importance DESC, updated_at DESC, id LIMIT ")
                .push_bind(c.limit.clamp(1, i64::MAX as usize) as i64);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("focus candidates", e))?;
            rows.iter().map(task_of).collect()
        })
        .await
    }

    async fn done_between(
        &self,
        scope: &Scope,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Task>> {
        with_retries(|| async {
            let mut q = QueryBuilder::new(format!("SELECT {TASK_COLUMNS} FROM core.tasks WHERE "));
            push_scope(&mut q, scope, "");
            q.push(" AND completed_at BETWEEN ")
                .push_bind(stored(since))
                .push(" AND ")
                .push_bind(stored(until))
                .push(" AND status = ")
                .push_bind(TaskStatus::Done.as_str())
                .push(" ORDER BY completed_at DESC, id LIMIT ")
                .push_bind(limit.min(i64::MAX as usize) as i64);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("done tasks", e))?;
            rows.iter().map(task_of).collect()
        })
        .await
    }

    async fn change_status(
        &self,
        scope: &Scope,
        id: RecordId,
        expected: TaskStatus,
        event: NewEvent,
    ) -> Result<Event> {
        let to = match &event.kind {
            EventKind::StatusChanged { to, .. } | EventKind::Undone { to, .. } => *to,
            other => {
                return Err(Error::internal(format!(
                    "change_status given a non-status event {other:?}"
                )))
            }
        };
        let event = &event;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            let mut q = QueryBuilder::new("SELECT status FROM core.tasks WHERE id = ");
            q.push_bind(id.raw()).push(" AND ");
            push_scope(&mut q, scope, "");
            q.push(" FOR UPDATE");
            let row = q
                .build()
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map("read task", e))?
                .ok_or_else(|| Error::not_found(format!("no task {id} in scope {scope}")))?;
            let current: String = get(&row, "status")?;
            if current != expected.as_str() {
                return Err(Error::conflict(format!(
                    "task {id} is {current}, not {expected}: it changed meanwhile; retry"
                )));
            }
            // Status changes of the task take its row lock first, so none lands meanwhile.
            if let EventKind::Undone { undoes, .. } = event.kind {
                let later = sqlx::query(
                    "SELECT * FROM ops.events WHERE org = $1 AND subject = $2 AND seq > $3",
                )
                .bind(scope.org.as_str())
                .bind(id.raw())
                .bind(undoes)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| map("read later events", e))?;
                for row in &later {
                    opsweave_core::task_ops::undo_still_current(id, undoes, &event_of(row)?)?;
                }
            }
            let completed_at = (to == TaskStatus::Done).then(|| stored(event.at));
            sqlx::query(
                "UPDATE core.tasks SET status = $1, open = $2, completed_at = $3 WHERE id = $4",
            )
            .bind(to.as_str())
            .bind(to.is_open())
            .bind(completed_at)
            .bind(id.raw())
            .execute(&mut *tx)
            .await
            .map_err(|e| map("update task", e))?;
            let appended = append_event(&mut tx, event).await?;
            raise_task_revision(&mut tx, &scope.org).await?;
            tx.commit()
                .await
                .map_err(|e| map("commit status change", e))?;
            Ok(appended)
        })
        .await
    }

    async fn mark(&self, scope: &Scope, id: RecordId, boost: f64, pinned: bool) -> Result<Task> {
        opsweave_core::priority::check_boost(boost)?;
        with_retries(|| async {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            let mut q = QueryBuilder::new("UPDATE core.tasks SET boost = ");
            q.push_bind(boost)
                .push(", pinned = ")
                .push_bind(pinned)
                .push(", marked = ")
                .push_bind(pinned || boost != 0.0)
                .push(" WHERE id = ")
                .push_bind(id.raw())
                .push(" AND ");
            push_scope(&mut q, scope, "");
            q.push(format!(" RETURNING {TASK_COLUMNS}"));
            let task = q
                .build()
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map("mark task", e))?
                .ok_or_else(|| Error::not_found(format!("no task {id} in scope {scope}")))
                .and_then(|row| task_of(&row))?;
            raise_task_revision(&mut tx, &scope.org).await?;
            tx.commit().await.map_err(|e| map("commit mark", e))?;
            Ok(task)
        })
        .await
    }

    async fn links_among(&self, scope: &Scope, ids: &[RecordId]) -> Result<Vec<Link>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raw: Vec<i64> = ids.iter().map(|i| i.raw()).collect();
        let raw = &raw;
        with_retries(|| async move {
            let rows = sqlx::query(
                "SELECT kind, from_id, to_id, weight, evidence FROM core.links \
                 WHERE org = $1 AND from_id = ANY($2) AND to_id = ANY($2) \
                 ORDER BY kind, from_id, to_id",
            )
            .bind(scope.org.as_str())
            .bind(raw)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("read links", e))?;
            rows.iter()
                .map(|row| {
                    let kind: String = get(row, "kind")?;
                    Ok(Link {
                        kind: kind.parse::<LinkKind>()?,
                        from: RecordId::from_raw(get(row, "from_id")?),
                        to: RecordId::from_raw(get(row, "to_id")?),
                        weight: get(row, "weight")?,
                        evidence: get(row, "evidence")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn put_links(&self, scope: &Scope, links: &[Link]) -> Result<()> {
        for link in links {
            if !(0.0..=1.0).contains(&link.weight) {
                return Err(Error::invalid(format!(
                    "link weight {} is not in [0, 1]",
                    link.weight
                ))
                .on_field("weight"));
            }
        }
        let rows: Vec<LinkRow> = links
            .iter()
            .map(|l| LinkRow {
                kind: l.kind.as_str(),
                from: l.from.raw(),
                to: l.to.raw(),
                weight: l.weight,
                evidence: &l.evidence,
            })
            .collect();
        let rows = &rows;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                upsert_links(&mut tx, scope, chunk, true).await?;
            }
            tx.commit().await.map_err(|e| map("commit links", e))
        })
        .await
    }

    async fn task_revision(&self, org: &str) -> Result<Option<i64>> {
        with_retries(|| async {
            let revision: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM core.task_revisions WHERE org = $1")
                    .bind(org)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map("read task revision", e))?;
            Ok(Some(revision.unwrap_or(0)))
        })
        .await
    }

    async fn counts(&self, scope: &Scope) -> Result<(u64, u64)> {
        with_retries(|| async {
            let mut q = QueryBuilder::new("SELECT (SELECT count(*) FROM core.records WHERE ");
            push_scope(&mut q, scope, "");
            q.push(") AS records, (SELECT count(*) FROM core.tasks WHERE ");
            push_scope(&mut q, scope, "");
            q.push(" AND open) AS open_tasks");
            let row = q
                .build()
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map("count", e))?;
            Ok((
                get::<i64>(&row, "records")? as u64,
                get::<i64>(&row, "open_tasks")? as u64,
            ))
        })
        .await
    }

    async fn save_match_run(&self, scope: &Scope, run: &MatchRun) -> Result<()> {
        let explanations = run
            .review
            .iter()
            .map(|r| {
                serde_json::to_string(&r.explanation)
                    .map_err(|e| Error::internal(format!("explanation to JSON: {e}")))
            })
            .collect::<Result<Vec<String>>>()?;
        let explanations = &explanations;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            self.save_match_run_tx(&mut tx, scope, run, explanations)
                .await?;
            tx.commit().await.map_err(|e| map("commit match run", e))
        })
        .await
    }

    async fn match_state(
        &self,
        scope: &Scope,
        resolver: &str,
    ) -> Result<Option<(String, Vec<RecordId>)>> {
        with_retries(|| self.match_state_once(scope, resolver)).await
    }

    async fn review_queue(
        &self,
        scope: &Scope,
        resolver: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>> {
        with_retries(|| self.review_queue_once(scope, resolver, limit)).await
    }

    async fn decide_review(
        &self,
        scope: &Scope,
        resolver: &str,
        pair: (RecordId, RecordId),
        accept: bool,
        link: Option<Link>,
    ) -> Result<ReviewItem> {
        let link = link.as_ref();
        with_retries(|| self.decide_review_once(scope, resolver, pair, accept, link)).await
    }
}

#[async_trait]
impl EventLog for PgStore {
    async fn append(&self, event: NewEvent) -> Result<Event> {
        let event = &event;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            let appended = append_event(&mut tx, event).await?;
            tx.commit().await.map_err(|e| map("commit event", e))?;
            Ok(appended)
        })
        .await
    }

    async fn events(
        &self,
        scope: &Scope,
        subject: Option<RecordId>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        with_retries(|| async {
            let mut q = QueryBuilder::new("SELECT * FROM ops.events WHERE ");
            push_scope(&mut q, scope, "");
            if let Some(s) = subject {
                q.push(" AND subject = ").push_bind(s.raw());
            }
            q.push(" AND seq > ")
                .push_bind(after)
                .push(" ORDER BY seq LIMIT ")
                .push_bind(limit.min(100_000) as i64);
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("read events", e))?;
            rows.iter().map(event_of).collect()
        })
        .await
    }
}

/// Appends `event` inside the caller's transaction. The advisory lock, held to commit, makes
/// appends commit in `seq` order, so a reader following `seq` never skips one.
/// Raises `org`'s task revision inside the caller's transaction (see
/// [`RecordStore::task_revision`]). Every write to tasks calls it last before COMMIT: the row
/// lock it takes then serialises concurrent writers of one org only for their commit.
pub(crate) async fn raise_task_revision(tx: &mut PgConnection, org: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO core.task_revisions AS r (org, revision) VALUES ($1, 1) \
         ON CONFLICT (org) DO UPDATE SET revision = r.revision + 1",
    )
    .bind(org)
    .execute(tx)
    .await
    .map_err(|e| map("raise task revision", e))?;
    Ok(())
}

async fn append_event(tx: &mut PgConnection, event: &NewEvent) -> Result<Event> {
    let kind = serde_json::to_string(&event.kind)
        .map_err(|e| Error::internal(format!("event to JSON: {e}")))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_APPEND_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("lock event log", e))?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO ops.events (org, client, project, actor, subject, kind, at) \
         VALUES ($1, $2, $3, $4, $5, $6::json, $7) RETURNING seq",
    )
    .bind(event.scope.org.as_str())
    .bind(event.scope.client.as_deref())
    .bind(event.scope.project.as_deref())
    .bind(text(&event.actor))
    .bind(event.subject.map(RecordId::raw))
    .bind(kind)
    .bind(stored(event.at))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| map("append event", e))?;
    Ok(Event {
        seq,
        event: event.clone(),
    })
}

/// [`upsert_records`] for a chunk that is mostly new: the stored content hashes of its ids are
/// looked up first; records the store lacks are copied in (a `COPY` costs a quarter less than the
/// conflict-checking insert), unchanged ones are left alone and changed ones go through
/// [`upsert_records`]. A record that another transaction inserts meanwhile makes the `COPY` fail
/// with a unique violation: the caller writes the batch again with conflict checks on every row.
async fn write_new_records<'a>(
    tx: &mut PgConnection,
    chunk: &[&'a IngestItem],
    rescore: &mut Vec<&'a IngestItem>,
) -> Result<HashMap<i64, bool>> {
    let mut by_org: HashMap<&str, Vec<i64>> = HashMap::new();
    for item in chunk {
        let r = &item.normalised.record;
        by_org
            .entry(r.scope.org.as_str())
            .or_default()
            .push(r.id.raw());
    }
    // Each stored record's hash, and its task's importance and reason when it is one.
    type Stored = (i64, Option<f64>, Option<String>);
    let mut stored: HashMap<i64, Stored> = HashMap::new();
    for (org, ids) in by_org {
        let rows = sqlx::query_as::<_, (i64, i64, Option<f64>, Option<String>)>(
            "SELECT r.id, r.content_hash, t.importance, t.importance_reason FROM core.records r \
             LEFT JOIN core.tasks t ON t.id = r.id WHERE r.org = $1 AND r.id = ANY($2)",
        )
        .bind(org)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| map("look up stored records", e))?;
        stored.extend(
            rows.into_iter()
                .map(|(id, hash, importance, reason)| (id, (hash, importance, reason))),
        );
    }
    let mut new = Vec::with_capacity(chunk.len() - stored.len());
    let mut changed = Vec::new();
    for item in chunk {
        let r = &item.normalised.record;
        match stored.get(&r.id.raw()) {
            None => new.push(*item),
            Some((hash, _, _)) if *hash != r.content_hash => changed.push(*item),
            Some((_, Some(importance), Some(reason)))
                if *importance != item.importance || *reason != item.importance_reason =>
            {
                rescore.push(*item);
            }
            Some(_) => {}
        }
    }
    let mut written = if changed.is_empty() {
        HashMap::with_capacity(new.len())
    } else {
        upsert_records(tx, &changed).await?
    };
    if !new.is_empty() {
        copy_records(tx, &new).await?;
        written.extend(
            new.iter()
                .map(|item| (item.normalised.record.id.raw(), true)),
        );
    }
    Ok(written)
}

/// Stores the importance the priority config now gives the tasks of `items` (records whose
/// content is unchanged) where it differs from the stored one; returns how many changed.
async fn rescore_tasks(tx: &mut PgConnection, items: &[&IngestItem]) -> Result<u64> {
    let tasks: Vec<&&IngestItem> = items
        .iter()
        .filter(|item| item.normalised.task.is_some())
        .collect();
    if tasks.is_empty() {
        return Ok(0);
    }
    let id: Vec<i64> = tasks.iter().map(|i| i.normalised.record.id.raw()).collect();
    let importance: Vec<f64> = tasks.iter().map(|i| i.importance).collect();
    let reason: Vec<Cow<str>> = tasks.iter().map(|i| text(&i.importance_reason)).collect();
    let rows = sqlx::query(
        "UPDATE core.tasks AS t SET importance = n.importance, importance_reason = n.reason \
         FROM UNNEST($1::bigint[], $2::float8[], $3::text[]) AS n(id, importance, reason) \
         WHERE t.id = n.id AND (t.importance IS DISTINCT FROM n.importance \
           OR t.importance_reason IS DISTINCT FROM n.reason)",
    )
    .bind(id)
    .bind(importance)
    .bind(reason)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("rescore tasks", e))?;
    Ok(rows.rows_affected())
}

/// Copies in records the store does not hold.
async fn copy_records(tx: &mut PgConnection, records: &[&IngestItem]) -> Result<()> {
    let mut rows = CopyRows::new(15);
    for item in records {
        let r = &item.normalised.record;
        rows.row();
        rows.field(&r.id.raw())?;
        rows.field(&r.scope.org.as_str())?;
        rows.field(&r.scope.client.as_deref())?;
        rows.field(&r.scope.project.as_deref())?;
        rows.field(&text(&r.source.kind))?;
        rows.field(&text(&r.source.external_id))?;
        rows.field(&opt_text(r.source.url.as_deref()))?;
        rows.field(&r.entity.as_str())?;
        rows.field(&text(&r.title))?;
        rows.field(&text(&r.body))?;
        rows.field(&item.normalised.fields_json.as_str())?;
        rows.field(&r.created_at.map(stored))?;
        rows.field(&stored(r.updated_at))?;
        rows.field(&r.content_hash)?;
        rows.field(&Document::new(&r.title, &r.body))?;
    }
    let copy = "COPY core.records (id, org, client, project, source_kind, external_id, url, \
                entity, title, body, fields, created_at, updated_at, content_hash, document) \
                FROM STDIN (FORMAT binary)";
    rows.send(tx, copy, "records").await?;
    Ok(())
}

/// Upserts records whose content hash changed (or that are new); returns the ids written, each
/// with whether it was new. Unchanged records are not touched.
async fn upsert_records(
    tx: &mut PgConnection,
    chunk: &[&IngestItem],
) -> Result<HashMap<i64, bool>> {
    let n = chunk.len();
    let mut id = Vec::with_capacity(n);
    let mut org = Vec::with_capacity(n);
    let mut client = Vec::with_capacity(n);
    let mut project = Vec::with_capacity(n);
    let mut source_kind = Vec::with_capacity(n);
    let mut external_id = Vec::with_capacity(n);
    let mut url = Vec::with_capacity(n);
    let mut entity = Vec::with_capacity(n);
    let mut title = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    let mut fields = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut updated_at = Vec::with_capacity(n);
    let mut content_hash = Vec::with_capacity(n);
    let mut document = Vec::with_capacity(n);
    for item in chunk {
        let r = &item.normalised.record;
        id.push(r.id.raw());
        org.push(r.scope.org.as_str());
        client.push(r.scope.client.as_deref());
        project.push(r.scope.project.as_deref());
        source_kind.push(text(&r.source.kind));
        external_id.push(text(&r.source.external_id));
        url.push(opt_text(r.source.url.as_deref()));
        entity.push(r.entity.as_str());
        title.push(text(&r.title));
        body.push(text(&r.body));
        fields.push(item.normalised.fields_json.as_str());
        created_at.push(r.created_at.map(stored));
        updated_at.push(stored(r.updated_at));
        content_hash.push(r.content_hash);
        document.push(Document::new(&r.title, &r.body));
    }
    let rows = sqlx::query(
        "INSERT INTO core.records AS r (id, org, client, project, source_kind, external_id, url, \
           entity, title, body, fields, created_at, updated_at, content_hash, document) \
         SELECT id, org, client, project, source_kind, external_id, url, entity, title, body, \
           fields::json, created_at, updated_at, content_hash, document \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], \
           $13::timestamptz[], $14::bigint[], $15::tsvector[]) \
           AS n(id, org, client, project, source_kind, external_id, url, entity, title, body, \
             fields, created_at, updated_at, content_hash, document) \
         ON CONFLICT (org, id) DO UPDATE SET url = excluded.url, entity = excluded.entity, \
           title = excluded.title, body = excluded.body, fields = excluded.fields, \
           created_at = excluded.created_at, updated_at = excluded.updated_at, \
           content_hash = excluded.content_hash, document = excluded.document \
         WHERE r.content_hash IS DISTINCT FROM excluded.content_hash \
         RETURNING r.id, (r.xmax = 0) AS inserted",
    )
    .bind(id)
    .bind(org)
    .bind(client)
    .bind(project)
    .bind(source_kind)
    .bind(external_id)
    .bind(url)
    .bind(entity)
    .bind(title)
    .bind(body)
    .bind(fields)
    .bind(created_at)
    .bind(updated_at)
    .bind(content_hash)
    .bind(document)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| map("write records", e))?;
    rows.iter()
        .map(|row| Ok((get(row, "id")?, get(row, "inserted")?)))
        .collect()
}

/// Writes the RAW payloads of `chunk`; with `conflicts`, replacing the rows that exist (else they
/// must not exist, and are copied in).
async fn write_raw(
    tx: &mut PgConnection,
    source_file: &str,
    chunk: &[&IngestItem],
    now: DateTime<Utc>,
    conflicts: bool,
) -> Result<()> {
    let source_file = text(source_file);
    if !conflicts {
        let mut rows = CopyRows::new(5);
        for item in chunk {
            rows.row();
            rows.field(&item.normalised.record.id.raw())?;
            rows.field(&source_file)?;
            rows.field(&i64::try_from(item.normalised.line).unwrap_or(i64::MAX))?;
            rows.field(&text(&item.normalised.raw_json))?;
            rows.field(&now)?;
        }
        let copy = "COPY raw.items (id, source_file, line, payload, received_at) \
                    FROM STDIN (FORMAT binary)";
        rows.send(tx, copy, "raw items").await?;
        return Ok(());
    }
    let id: Vec<i64> = chunk.iter().map(|i| i.normalised.record.id.raw()).collect();
    let line: Vec<i64> = chunk
        .iter()
        .map(|i| i64::try_from(i.normalised.line).unwrap_or(i64::MAX))
        .collect();
    let payload: Vec<Cow<str>> = chunk.iter().map(|i| text(&i.normalised.raw_json)).collect();
    sqlx::query(
        "INSERT INTO raw.items (id, source_file, line, payload, received_at) \
         SELECT n.id, $4, n.line, n.payload, $5 \
         FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) AS n(id, line, payload) \
         ON CONFLICT (id) DO UPDATE SET source_file = excluded.source_file, \
           line = excluded.line, payload = excluded.payload, received_at = excluded.received_at",
    )
    .bind(id)
    .bind(line)
    .bind(payload)
    .bind(source_file)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("write raw items", e))?;
    Ok(())
}

/// Writes the tasks of `chunk`; with `conflicts`, updating the tasks that exist (else copying them
/// in, see [`copy_tasks`]); true when there was one. The user's complete / undo stands until the
/// source itself changes status; that rule is decided in the statement, under the row lock, so a
/// status change that commits meanwhile is never overwritten by a stale read.
async fn write_tasks(
    tx: &mut PgConnection,
    chunk: &[&IngestItem],
    conflicts: bool,
) -> Result<bool> {
    let tasks: Vec<(&IngestItem, TaskStatus, Option<NaiveDate>)> = chunk
        .iter()
        .filter_map(|item| {
            let seed = item.normalised.task.as_ref()?;
            Some((*item, seed.status.unwrap_or(TaskStatus::Todo), seed.due))
        })
        .collect();
    if tasks.is_empty() {
        return Ok(false);
    }
    if !conflicts {
        copy_tasks(tx, &tasks).await?;
        return Ok(true);
    }
    let n = tasks.len();
    let mut id = Vec::with_capacity(n);
    let mut org = Vec::with_capacity(n);
    let mut client = Vec::with_capacity(n);
    let mut project = Vec::with_capacity(n);
    let mut title = Vec::with_capacity(n);
    let mut source_kind = Vec::with_capacity(n);
    let mut url = Vec::with_capacity(n);
    let mut source_status = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut due_day = Vec::with_capacity(n);
    let mut importance = Vec::with_capacity(n);
    let mut importance_reason = Vec::with_capacity(n);
    let mut updated_at = Vec::with_capacity(n);
    for (item, status, due) in &tasks {
        let r = &item.normalised.record;
        id.push(r.id.raw());
        org.push(r.scope.org.as_str());
        client.push(r.scope.client.as_deref());
        project.push(r.scope.project.as_deref());
        title.push(text(&r.title));
        source_kind.push(text(&r.source.kind));
        url.push(opt_text(r.source.url.as_deref()));
        source_status.push(status.as_str());
        open.push(status.is_open());
        due_day.push(*due);
        importance.push(item.importance);
        importance_reason.push(text(&item.importance_reason));
        updated_at.push(stored(r.updated_at));
    }
    let done = TaskStatus::Done.as_str();
    // The status the row ends with: the stored one while the source status is unchanged.
    let status = "CASE WHEN t.source_status = excluded.source_status THEN t.status \
                  ELSE excluded.status END";
    let mut sql = format!(
        "INSERT INTO core.tasks AS t (id, org, client, project, title, source_kind, url, status, \
           source_status, open, due_day, importance, importance_reason, updated_at, completed_at) \
         SELECT id, org, client, project, title, source_kind, url, source_status, source_status, \
           open, due_day, importance, importance_reason, updated_at, \
           CASE WHEN source_status = '{done}' THEN updated_at END \
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::boolean[], $10::date[], $11::float8[], $12::text[], \
           $13::timestamptz[]) \
           AS n(id, org, client, project, title, source_kind, url, source_status, open, due_day, \
             importance, importance_reason, updated_at)"
    );
    sql.push_str(&format!(
        " ON CONFLICT (id) DO UPDATE SET title = excluded.title, url = excluded.url, \
         status = {status}, \
         open = CASE WHEN t.source_status = excluded.source_status THEN t.open \
           ELSE excluded.open END, \
         completed_at = CASE WHEN {status} <> '{done}' THEN NULL \
           WHEN t.status = '{done}' THEN t.completed_at ELSE excluded.updated_at END, \
         source_status = excluded.source_status, due_day = excluded.due_day, \
         importance = excluded.importance, importance_reason = excluded.importance_reason, \
         updated_at = excluded.updated_at"
    ));
    sqlx::query(&sql)
        .bind(id)
        .bind(org)
        .bind(client)
        .bind(project)
        .bind(title)
        .bind(source_kind)
        .bind(url)
        .bind(source_status)
        .bind(open)
        .bind(due_day)
        .bind(importance)
        .bind(importance_reason)
        .bind(updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("write tasks", e))?;
    Ok(true)
}

/// Copies in the tasks of records new to the store: as the insert in [`write_tasks`] writes them,
/// the status being the source's and `completed_at` its update time when that status is done.
async fn copy_tasks(
    tx: &mut PgConnection,
    tasks: &[(&IngestItem, TaskStatus, Option<NaiveDate>)],
) -> Result<()> {
    let mut rows = CopyRows::new(15);
    for (item, status, due) in tasks {
        let r = &item.normalised.record;
        let updated_at = stored(r.updated_at);
        rows.row();
        rows.field(&r.id.raw())?;
        rows.field(&r.scope.org.as_str())?;
        rows.field(&r.scope.client.as_deref())?;
        rows.field(&r.scope.project.as_deref())?;
        rows.field(&text(&r.title))?;
        rows.field(&text(&r.source.kind))?;
        rows.field(&opt_text(r.source.url.as_deref()))?;
        rows.field(&status.as_str())?;
        rows.field(&status.as_str())?;
        rows.field(&status.is_open())?;
        rows.field(due)?;
        rows.field(&item.importance)?;
        rows.field(&text(&item.importance_reason))?;
        rows.field(&updated_at)?;
        rows.field(&(*status == TaskStatus::Done).then_some(updated_at))?;
    }
    let copy = "COPY core.tasks (id, org, client, project, title, source_kind, url, status, \
                source_status, open, due_day, importance, importance_reason, updated_at, \
                completed_at) FROM STDIN (FORMAT binary)";
    rows.send(tx, copy, "tasks").await?;
    Ok(())
}

/// One link row to write.
pub(crate) struct LinkRow<'a> {
    /// The link kind's name.
    pub(crate) kind: &'a str,
    /// Raw id of the source end.
    pub(crate) from: i64,
    /// Raw id of the target end.
    pub(crate) to: i64,
    /// Weight in [0, 1].
    pub(crate) weight: f64,
    /// Why the link exists.
    pub(crate) evidence: &'a str,
}

/// Writes the links the items of `chunk` carry (weight 1; an existing link keeps its weight).
async fn upsert_item_links(
    tx: &mut PgConnection,
    scope: &Scope,
    chunk: &[&IngestItem],
) -> Result<()> {
    let rows: Vec<LinkRow> = chunk
        .iter()
        .flat_map(|item| {
            let record = &item.normalised.record;
            item.normalised.links.iter().filter_map(move |l| {
                let target = RecordId::derive(&record.scope, &l.to_source, &l.to_external_id).raw();
                let (from, to) = if l.evidence.starts_with("reverse:") {
                    (target, record.id.raw())
                } else {
                    (record.id.raw(), target)
                };
                (from != to).then_some(LinkRow {
                    kind: l.kind.as_str(),
                    from,
                    to,
                    weight: 1.0,
                    evidence: &l.evidence,
                })
            })
        })
        .collect();
    for rows in rows.chunks(ROWS_PER_STATEMENT) {
        upsert_links(tx, scope, rows, false).await?;
    }
    Ok(())
}

/// Upserts links; on an existing (kind, from, to) the evidence is replaced, and the weight too
/// when `set_weight`. A link given twice counts once, the later one winning.
pub(crate) async fn upsert_links(
    tx: &mut PgConnection,
    scope: &Scope,
    rows: &[LinkRow<'_>],
    set_weight: bool,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut last: HashMap<(&str, i64, i64), usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert((row.kind, row.from, row.to), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    let kind: Vec<&str> = keep.iter().map(|&i| rows[i].kind).collect();
    let from: Vec<i64> = keep.iter().map(|&i| rows[i].from).collect();
    let to: Vec<i64> = keep.iter().map(|&i| rows[i].to).collect();
    let weight: Vec<f64> = keep.iter().map(|&i| rows[i].weight).collect();
    let evidence: Vec<Cow<str>> = keep.iter().map(|&i| text(rows[i].evidence)).collect();
    let update = if set_weight {
        "weight = excluded.weight, evidence = excluded.evidence"
    } else {
        "evidence = excluded.evidence"
    };
    sqlx::query(&format!(
        "INSERT INTO core.links (org, kind, from_id, to_id, weight, evidence) \
         SELECT $1, n.kind, n.from_id, n.to_id, n.weight, n.evidence \
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::text[]) \
           AS n(kind, from_id, to_id, weight, evidence) \
         ON CONFLICT (kind, from_id, to_id) DO UPDATE SET {update}"
    ))
    .bind(scope.org.as_str())
    .bind(kind)
    .bind(from)
    .bind(to)
    .bind(weight)
    .bind(evidence)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("write links", e))?;
    Ok(())
}

async fn insert_rejections(
    tx: &mut PgConnection,
    scope: &Scope,
    source_file: &str,
    chunk: &[Rejection],
    now: DateTime<Utc>,
    (batch_key, first): (i64, i64),
) -> Result<()> {
    let line: Vec<i64> = chunk
        .iter()
        .map(|r| i64::try_from(r.line).unwrap_or(i64::MAX))
        .collect();
    let field: Vec<Option<Cow<str>>> = chunk.iter().map(|r| opt_text(r.field.as_deref())).collect();
    let reason: Vec<Cow<str>> = chunk.iter().map(|r| text(&r.reason)).collect();
    let raw: Vec<Option<Cow<str>>> = chunk.iter().map(|r| opt_text(r.raw.as_deref())).collect();
    sqlx::query(
        "INSERT INTO raw.rejections \
           (org, client, project, source_file, line, field, reason, raw, at, batch_key, batch_ord) \
         SELECT $1, $2, $3, $4, n.line, n.field, n.reason, n.raw, $5, $10, $11 + n.ord \
         FROM UNNEST($6::bigint[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY \
           AS n(line, field, reason, raw, ord) \
         ORDER BY n.ord \
         ON CONFLICT (batch_key, batch_ord) DO NOTHING",
    )
    .bind(scope.org.as_str())
    .bind(scope.client.as_deref())
    .bind(scope.project.as_deref())
    .bind(text(source_file))
    .bind(now)
    .bind(line)
    .bind(field)
    .bind(reason)
    .bind(raw)
    .bind(batch_key)
    .bind(first)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("write rejections", e))?;
    Ok(())
}
