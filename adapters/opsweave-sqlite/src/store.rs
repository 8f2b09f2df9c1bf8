//! `RecordStore` and `EventLog` on SQLite.

use crate::error::map;
use crate::rows::{
    bind_scope, day_number, get, instant, millis, scope_filter, scope_of, search_hit_of, task_of,
    Columns, TASK_COLUMNS,
};
use crate::{ingest, SqliteStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use opsweave_core::mapping::Rejection;
use opsweave_core::store::{CandidateQuery, RecordFilter, Slice};
use opsweave_core::{
    BatchOutcome, BulkLoad, Error, Event, EventKind, EventLog, IngestItem, Link, LinkKind,
    MatchRun, NewEvent, Record, RecordId, RecordStore, Result, ReviewItem, ReviewStatus, Scope,
    SearchHit, Task, TaskStatus, TextQuery,
};
use sqlx::{QueryBuilder, Sqlite};

/// Selects the task row of the record with derived id `?2` in org `?1` through the (org, id) index.
const TASK_BY_ID: &str = "seq = (SELECT r.seq FROM records r WHERE r.org = ? AND r.id = ?)";

/// Rows per multi-row INSERT: 16 columns × 2,000 stays under SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 2_000;

#[async_trait]
impl RecordStore for SqliteStore {
    async fn ingest_batch(
        &self,
        scope: &Scope,
        source_file: &str,
        items: &[IngestItem],
        rejections: &[Rejection],
    ) -> Result<BatchOutcome> {
        let now = millis(Utc::now());
        // IMMEDIATE: the batch reads, then writes; taking the write lock first means no other
        // process can commit in between and turn the read stale.
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let outcome = {
            let mut handle = tx
                .lock_handle()
                .await
                .map_err(|e| map("lend the writer connection", e))?;
            ingest::write_batch(&mut handle, scope, source_file, items, rejections, now)?
        };
        tx.commit().await.map_err(|e| map("commit batch", e))?;
        Ok(outcome)
    }

    async fn begin_bulk_load(&self, scope: &Scope) -> Result<Option<Box<dyn BulkLoad>>> {
        ingest::SqliteBulkLoad::begin(&self.writer, scope).await
    }

    async fn record(&self, scope: &Scope, id: RecordId) -> Result<Record> {
        let mut sql = String::from("SELECT * FROM records WHERE id = ? AND ");
        scope_filter(&mut sql, scope, "");
        let query = bind_scope(sqlx::query(&sql).bind(id.raw()), scope);
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map("read record", e))?
            .ok_or_else(|| Error::not_found(format!("no record {id} in scope {scope}")))?;
        record_of(&row)
    }

    async fn raw_payload(&self, scope: &Scope, id: RecordId) -> Result<String> {
        let mut sql = String::from(
            "SELECT raw_items.payload FROM raw_items JOIN records ON records.seq = raw_items.seq \
             WHERE records.id = ? AND ",
        );
        scope_filter(&mut sql, scope, "records");
        let row = bind_scope(sqlx::query(&sql).bind(id.raw()), scope)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map("read raw payload", e))?
            .ok_or_else(|| Error::not_found(format!("no record {id} in scope {scope}")))?;
        get(&row, "payload")
    }

    async fn records(&self, scope: &Scope, filter: &RecordFilter) -> Result<Vec<Record>> {
        let mut sql = String::from("SELECT * FROM records WHERE ");
        scope_filter(&mut sql, scope, "");
        if filter.entity.is_some() {
            sql.push_str(" AND entity = ?");
        }
        if filter.source.is_some() {
            sql.push_str(" AND source_kind = ?");
        }
        sql.push_str(" AND id > ? ORDER BY id LIMIT ?");
        let mut query = bind_scope(sqlx::query(&sql), scope);
        if let Some(entity) = filter.entity {
            query = query.bind(entity.as_str());
        }
        if let Some(source) = &filter.source {
            query = query.bind(source);
        }
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(10_000)
        };
        let rows = query
            .bind(filter.after.map_or(-1, RecordId::raw))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("list records", e))?;
        rows.iter().map(record_of).collect()
    }

    async fn rejections(&self, scope: &Scope, limit: usize) -> Result<Vec<(String, Rejection)>> {
        let mut sql =
            String::from("SELECT source_file, line, field, reason, raw FROM rejections WHERE ");
        scope_filter(&mut sql, scope, "");
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let rows = bind_scope(sqlx::query(&sql), scope)
            .bind(limit as i64)
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
    }

    async fn search(&self, scope: &Scope, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let Some(matcher) = fts_query(query) else {
            return Err(Error::invalid("search query has no words to look for").on_field("q"));
        };
        let mut sql = String::from(
            "SELECT records.id, records.title, records.entity, records.source_kind, \
             snippet(records_fts, 1, '[', ']', '…', 12) AS snippet, bm25(records_fts, 3.0, 1.0) AS rank \
             FROM records_fts JOIN records ON records.seq = records_fts.rowid \
             WHERE records_fts MATCH ? AND ",
        );
        scope_filter(&mut sql, scope, "records");
        sql.push_str(" ORDER BY rank, records.id LIMIT ?");
        let rows = bind_scope(sqlx::query(&sql).bind(&matcher), scope)
            .bind(limit.clamp(1, 1000) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("search", e))?;
        rows.iter().map(search_hit_of).collect()
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

    async fn task(&self, scope: &Scope, id: RecordId) -> Result<Task> {
        // The same read; the source status is one column more.
        Ok(self.task_with_source_status(scope, id).await?.0)
    }

    async fn task_with_source_status(
        &self,
        scope: &Scope,
        id: RecordId,
    ) -> Result<(Task, Option<String>)> {
        let mut sql =
            format!("SELECT {TASK_COLUMNS}, source_status FROM tasks WHERE {TASK_BY_ID} AND ");
        scope_filter(&mut sql, scope, "");
        let row = bind_scope(sqlx::query(&sql).bind(&scope.org).bind(id.raw()), scope)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map("read task", e))?
            .ok_or_else(|| Error::not_found(format!("no task {id} in scope {scope}")))?;
        Ok((task_of(&row)?, Some(get(&row, "source_status")?)))
    }

    async fn task_candidates(&self, scope: &Scope, q: &CandidateQuery) -> Result<Vec<Task>> {
        // A range of due days cannot be read from the index in importance order, and sorting a
        // whole range (or everything overdue) costs milliseconds at a million tasks. So ranges
        // walk the distinct due days present (one index seek each, a skip scan) and join each
        // day's index entries, which are already in importance order and cut by `importance >=`.
        let days = match q.slice {
            Slice::Due(from, to) if from != to => Some((day_number(from), day_number(to))),
            Slice::DueBefore(before) => Some((i64::MIN, day_number(before) - 1)),
            _ => None,
        };
        let mut sql = String::new();
        if days.is_some() {
            sql.push_str(
                "WITH RECURSIVE days(d) AS (\
                 SELECT (SELECT min(due_day) FROM tasks WHERE org = ? AND open = 1 AND marked = 0 \
                 AND due_day BETWEEN ? AND ?) \
                 UNION ALL SELECT (SELECT min(due_day) FROM tasks WHERE org = ? AND open = 1 \
                 AND marked = 0 AND due_day > days.d AND due_day <= ?) FROM days WHERE days.d IS NOT NULL) ",
            );
            sql.push_str(&format!(
                "SELECT {TASK_COLUMNS} FROM days JOIN tasks ON tasks.due_day = days.d WHERE "
            ));
        } else {
            sql.push_str(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE "));
        }
        scope_filter(&mut sql, scope, "tasks");
        sql.push_str(" AND open = 1");
        match q.slice {
            Slice::Due(..) | Slice::DueBefore(_) if days.is_some() => {
                sql.push_str(" AND marked = 0")
            }
            Slice::Due(..) | Slice::DueBefore(_) => sql.push_str(" AND marked = 0 AND due_day = ?"),
            Slice::Undated(..) => sql.push_str(
                " AND marked = 0 AND due_day IS NULL AND importance >= ? AND importance < ?",
            ),
            Slice::Marked => sql.push_str(" AND marked = 1"),
        }
        if q.min_importance > f64::NEG_INFINITY {
            sql.push_str(" AND importance >= ?");
        }
        match q.after.map(|c| c.updated_at.is_some()) {
            Some(true) => sql.push_str(
                " AND (importance < ? OR (importance = ? AND (updated_at < ? \
                 OR (updated_at = ? AND id > ?))))",
            ),
            Some(false) => sql.push_str(" AND importance < ?"),
            None => {}
        }
        sql.push_str(" ORDER BY importance DESC, updated_at DESC, id LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some((lo, hi)) = days {
            query = query
                .bind(&scope.org)
                .bind(lo)
                .bind(hi)
                .bind(&scope.org)
                .bind(hi);
        }
        query = bind_scope(query, scope);
        query = match q.slice {
            Slice::Due(day, _) if days.is_none() => query.bind(day_number(day)),
            Slice::Undated(min, max) => query.bind(min.max(-1e300)).bind(max.min(1e300)),
            _ => query,
        };
        if q.min_importance > f64::NEG_INFINITY {
            query = query.bind(q.min_importance);
        }
        if let Some(after) = q.after {
            query = query.bind(after.importance);
            if let Some(updated) = after.updated_at {
                let updated = millis(updated);
                query = query
                    .bind(after.importance)
                    .bind(updated)
                    .bind(updated)
                    .bind(after.id.raw());
            }
        }
        let rows = query
            .bind(q.limit.max(1) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("focus candidates", e))?;
        rows.iter().map(task_of).collect()
    }

    async fn done_between(
        &self,
        scope: &Scope,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Task>> {
        let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE ");
        scope_filter(&mut sql, scope, "");
        sql.push_str(
            " AND completed_at BETWEEN ? AND ? AND status = 'done' \
             ORDER BY completed_at DESC, id LIMIT ?",
        );
        let rows = bind_scope(sqlx::query(&sql), scope)
            .bind(millis(since))
            .bind(millis(until))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("done tasks", e))?;
        rows.iter().map(task_of).collect()
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
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let mut sql = format!("SELECT seq, status FROM tasks WHERE {TASK_BY_ID} AND ");
        scope_filter(&mut sql, scope, "");
        let row = bind_scope(sqlx::query(&sql).bind(&scope.org).bind(id.raw()), scope)
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
        if let EventKind::Undone { undoes, .. } = event.kind {
            let later: Vec<sqlx::sqlite::SqliteRow> =
                sqlx::query("SELECT * FROM events WHERE org = ? AND subject = ? AND seq > ?")
                    .bind(&scope.org)
                    .bind(id.raw())
                    .bind(undoes)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| map("read later events", e))?;
            for row in &later {
                opsweave_core::task_ops::undo_still_current(id, undoes, &event_of(row)?)?;
            }
        }
        let completed_at = (to == TaskStatus::Done).then(|| millis(event.at));
        sqlx::query("UPDATE tasks SET status = ?, open = ?, completed_at = ? WHERE seq = ?")
            .bind(to.as_str())
            .bind(to.is_open())
            .bind(completed_at)
            .bind(get::<i64>(&row, "seq")?)
            .execute(&mut *tx)
            .await
            .map_err(|e| map("update task", e))?;
        let appended = append_event(&mut tx, event).await?;
        raise_task_revision(&mut tx, &scope.org).await?;
        tx.commit()
            .await
            .map_err(|e| map("commit status change", e))?;
        Ok(appended)
    }

    async fn mark(&self, scope: &Scope, id: RecordId, boost: f64, pinned: bool) -> Result<Task> {
        opsweave_core::priority::check_boost(boost)?;
        let mut sql =
            format!("UPDATE tasks SET boost = ?, pinned = ?, marked = ? WHERE {TASK_BY_ID} AND ");
        scope_filter(&mut sql, scope, "");
        let mut tx = self.writer.begin().await.map_err(|e| map("begin", e))?;
        let done = bind_scope(
            sqlx::query(&sql)
                .bind(boost)
                .bind(pinned)
                .bind(pinned || boost != 0.0)
                .bind(&scope.org)
                .bind(id.raw()),
            scope,
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| map("mark task", e))?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("no task {id} in scope {scope}")));
        }
        raise_task_revision(&mut tx, &scope.org).await?;
        tx.commit().await.map_err(|e| map("commit mark", e))?;
        self.task(scope, id).await
    }

    async fn links_among(&self, scope: &Scope, ids: &[RecordId]) -> Result<Vec<Link>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let wanted: std::collections::HashSet<i64> = ids.iter().map(|i| i.raw()).collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT kind, from_id, to_id, weight, evidence FROM links WHERE org = ",
            );
            q.push_bind(&scope.org).push(" AND from_id IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.raw());
            }
            q.push(") ORDER BY kind, from_id, to_id");
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("read links", e))?;
            for row in rows {
                let to: i64 = get(&row, "to_id")?;
                if !wanted.contains(&to) {
                    continue;
                }
                let kind: String = get(&row, "kind")?;
                out.push(Link {
                    kind: kind.parse::<LinkKind>()?,
                    from: RecordId::from_raw(get(&row, "from_id")?),
                    to: RecordId::from_raw(to),
                    weight: get(&row, "weight")?,
                    evidence: get(&row, "evidence")?,
                });
            }
        }
        Ok(out)
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
        let mut tx = self.writer.begin().await.map_err(|e| map("begin", e))?;
        write_links(&mut tx, scope, links, true).await?;
        tx.commit().await.map_err(|e| map("commit links", e))
    }

    async fn task_revision(&self, org: &str) -> Result<Option<i64>> {
        if let Some(revision) = self.revision_here(org) {
            return Ok(Some(revision));
        }
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM task_revisions WHERE org = ?")
                .bind(org)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("read task revision", e))?;
        Ok(Some(revision.unwrap_or(0)))
    }

    async fn counts(&self, scope: &Scope) -> Result<(u64, u64)> {
        let mut sql = String::from("SELECT (SELECT count(*) FROM records WHERE ");
        scope_filter(&mut sql, scope, "");
        sql.push_str(") AS records, (SELECT count(*) FROM tasks WHERE ");
        scope_filter(&mut sql, scope, "");
        sql.push_str(" AND open = 1) AS open_tasks");
        let row = bind_scope(bind_scope(sqlx::query(&sql), scope), scope)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map("count", e))?;
        Ok((
            get::<i64>(&row, "records")? as u64,
            get::<i64>(&row, "open_tasks")? as u64,
        ))
    }

    async fn save_match_run(&self, scope: &Scope, run: &MatchRun) -> Result<()> {
        let now = millis(Utc::now());
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        if run.replace {
            let prefix = match_evidence_prefix(&run.resolver);
            sqlx::query("DELETE FROM links WHERE org = ? AND substr(evidence, 1, length(?)) = ?")
                .bind(&scope.org)
                .bind(&prefix)
                .bind(&prefix)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("clear match links", e))?;
            for table in ["match_members", "match_review"] {
                let extra = if table == "match_review" {
                    " AND status = 'pending'"
                } else {
                    ""
                };
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE org = ? AND resolver = ?{extra}"
                ))
                .bind(&scope.org)
                .bind(&run.resolver)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("clear match run", e))?;
            }
        }
        sqlx::query(
            "INSERT INTO match_state (org, resolver, state, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (org, resolver) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(&scope.org)
        .bind(&run.resolver)
        .bind(&run.state)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("save match state", e))?;
        for chunk in run.members.chunks(ROWS_PER_STATEMENT) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR IGNORE INTO match_members (org, resolver, record_id) ",
            );
            q.push_values(chunk, |mut b, id| {
                b.push_bind(&scope.org)
                    .push_bind(&run.resolver)
                    .push_bind(id.raw());
            });
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| map("save match members", e))?;
        }
        let explanations = run
            .review
            .iter()
            .map(|r| {
                serde_json::to_string(&r.explanation)
                    .map_err(|e| Error::internal(format!("explanation to JSON: {e}")))
            })
            .collect::<Result<Vec<String>>>()?;
        let review: Vec<(&ReviewItem, &String)> = run.review.iter().zip(&explanations).collect();
        for chunk in review.chunks(ROWS_PER_STATEMENT / 2) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO match_review (org, resolver, left_id, right_id, score, probability, explanation, status) ",
            );
            q.push_values(chunk, |mut b, (item, explanation)| {
                b.push_bind(&scope.org)
                    .push_bind(&run.resolver)
                    .push_bind(item.left.raw())
                    .push_bind(item.right.raw())
                    .push_bind(item.score)
                    .push_bind(item.probability)
                    .push_bind(explanation.as_str())
                    .push_bind("pending");
            });
            // A pair a person decided stays decided.
            q.push(
                " ON CONFLICT (org, resolver, left_id, right_id) DO UPDATE SET score = excluded.score, \
                 probability = excluded.probability, explanation = excluded.explanation \
                 WHERE match_review.status = 'pending'",
            );
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| map("save review queue", e))?;
        }
        write_links(&mut tx, scope, &run.links, true).await?;
        tx.commit().await.map_err(|e| map("commit match run", e))
    }

    async fn match_state(
        &self,
        scope: &Scope,
        resolver: &str,
    ) -> Result<Option<(String, Vec<RecordId>)>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM match_state WHERE org = ? AND resolver = ?")
                .bind(&scope.org)
                .bind(resolver)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("read match state", e))?;
        let Some(state) = state else {
            return Ok(None);
        };
        let members: Vec<i64> = sqlx::query_scalar(
            "SELECT record_id FROM match_members WHERE org = ? AND resolver = ? ORDER BY record_id",
        )
        .bind(&scope.org)
        .bind(resolver)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map("read match members", e))?;
        Ok(Some((
            state,
            members.into_iter().map(RecordId::from_raw).collect(),
        )))
    }

    async fn review_queue(
        &self,
        scope: &Scope,
        resolver: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>> {
        let mut sql = String::from(
            "SELECT resolver, left_id, right_id, score, probability, explanation, status \
             FROM match_review WHERE org = ? AND status = 'pending'",
        );
        if resolver.is_some() {
            sql.push_str(" AND resolver = ?");
        }
        sql.push_str(" ORDER BY probability DESC, left_id, right_id LIMIT ?");
        let mut query = sqlx::query(&sql).bind(&scope.org);
        if let Some(r) = resolver {
            query = query.bind(r);
        }
        let rows = query
            .bind(limit.clamp(1, 10_000) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("read review queue", e))?;
        rows.iter().map(review_of).collect()
    }

    async fn decide_review(
        &self,
        scope: &Scope,
        resolver: &str,
        pair: (RecordId, RecordId),
        accept: bool,
        link: Option<Link>,
    ) -> Result<ReviewItem> {
        let status = if accept {
            ReviewStatus::Accepted
        } else {
            ReviewStatus::Rejected
        };
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let select = "SELECT resolver, left_id, right_id, score, probability, explanation, status \
             FROM match_review WHERE org = ? AND resolver = ? AND left_id = ? AND right_id = ?";
        let row = sqlx::query(select)
            .bind(&scope.org)
            .bind(resolver)
            .bind(pair.0.raw())
            .bind(pair.1.raw())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("read review pair", e))?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no review pair {} / {} for resolver `{resolver}` in scope {scope}",
                    pair.0, pair.1
                ))
            })?;
        let mut item = review_of(&row)?;
        if item.status == status {
            return Ok(item);
        }
        if item.status != ReviewStatus::Pending {
            return Err(Error::conflict(format!(
                "review pair {} / {} was already {}",
                pair.0,
                pair.1,
                item.status.as_str()
            )));
        }
        sqlx::query(
            "UPDATE match_review SET status = ?, decided_at = ? \
             WHERE org = ? AND resolver = ? AND left_id = ? AND right_id = ?",
        )
        .bind(status.as_str())
        .bind(millis(Utc::now()))
        .bind(&scope.org)
        .bind(resolver)
        .bind(pair.0.raw())
        .bind(pair.1.raw())
        .execute(&mut *tx)
        .await
        .map_err(|e| map("decide review pair", e))?;
        if let (true, Some(link)) = (accept, link) {
            write_links(&mut tx, scope, std::slice::from_ref(&link), true).await?;
        }
        tx.commit().await.map_err(|e| map("commit review", e))?;
        item.status = status;
        Ok(item)
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, event: NewEvent) -> Result<Event> {
        let mut tx = self.writer.begin().await.map_err(|e| map("begin", e))?;
        let appended = append_event(&mut tx, event).await?;
        tx.commit().await.map_err(|e| map("commit event", e))?;
        Ok(appended)
    }

    async fn events(
        &self,
        scope: &Scope,
        subject: Option<RecordId>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let mut sql = String::from("SELECT * FROM events WHERE ");
        scope_filter(&mut sql, scope, "");
        if subject.is_some() {
            sql.push_str(" AND subject = ?");
        }
        sql.push_str(" AND seq > ? ORDER BY seq LIMIT ?");
        let mut query = bind_scope(sqlx::query(&sql), scope);
        if let Some(s) = subject {
            query = query.bind(s.raw());
        }
        let rows = query
            .bind(after)
            .bind(limit.min(100_000) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("read events", e))?;
        rows.iter().map(event_of).collect()
    }
}

/// The evidence prefix of the links a resolver writes, so a full run can replace its own.
pub(crate) fn match_evidence_prefix(resolver: &str) -> String {
    format!("resolve:{resolver}:")
}

pub(crate) fn review_of(row: &sqlx::sqlite::SqliteRow) -> Result<ReviewItem> {
    let explanation: String = get(row, "explanation")?;
    let status: String = get(row, "status")?;
    Ok(ReviewItem {
        resolver: get(row, "resolver")?,
        left: RecordId::from_raw(get(row, "left_id")?),
        right: RecordId::from_raw(get(row, "right_id")?),
        score: get(row, "score")?,
        probability: get(row, "probability")?,
        explanation: serde_json::from_str(&explanation)
            .map_err(|e| Error::internal(format!("stored explanation is not valid: {e}")))?,
        status: ReviewStatus::parse(&status)?,
    })
}

/// Writes links; existing (kind, from, to) links take the new weight and evidence.
async fn write_links(
    tx: &mut sqlx::SqliteConnection,
    scope: &Scope,
    links: &[Link],
    with_weight: bool,
) -> Result<()> {
    for chunk in links.chunks(ROWS_PER_STATEMENT) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO links (org, kind, from_id, to_id, weight, evidence) ");
        q.push_values(chunk, |mut b, l| {
            b.push_bind(&scope.org)
                .push_bind(l.kind.as_str())
                .push_bind(l.from.raw())
                .push_bind(l.to.raw())
                .push_bind(l.weight)
                .push_bind(&l.evidence);
        });
        q.push(if with_weight {
            " ON CONFLICT (kind, from_id, to_id) DO UPDATE SET weight = excluded.weight, evidence = excluded.evidence"
        } else {
            " ON CONFLICT (kind, from_id, to_id) DO UPDATE SET evidence = excluded.evidence"
        });
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("write links", e))?;
    }
    Ok(())
}

/// Raises an org's task revision (`?1`: the org), so cached focus answers are not reused.
pub(crate) const RAISE_TASK_REVISION: &str = "INSERT INTO task_revisions (org, revision) \
     VALUES (?1, 1) ON CONFLICT (org) DO UPDATE SET revision = revision + 1";

/// Raises `org`'s task revision inside the caller's transaction (see
/// [`RecordStore::task_revision`]); every write to tasks calls it before committing.
pub(crate) async fn raise_task_revision(tx: &mut sqlx::SqliteConnection, org: &str) -> Result<()> {
    sqlx::query(RAISE_TASK_REVISION)
        .bind(org)
        .execute(tx)
        .await
        .map_err(|e| map("raise task revision", e))?;
    Ok(())
}

async fn append_event(tx: &mut sqlx::SqliteConnection, event: NewEvent) -> Result<Event> {
    let kind = serde_json::to_string(&event.kind)
        .map_err(|e| Error::internal(format!("event to JSON: {e}")))?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (org, client, project, actor, subject, kind, at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(&event.scope.org)
    .bind(&event.scope.client)
    .bind(&event.scope.project)
    .bind(&event.actor)
    .bind(event.subject.map(RecordId::raw))
    .bind(kind)
    .bind(millis(event.at))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| map("append event", e))?;
    Ok(Event { seq, event })
}

pub(crate) fn event_of(row: &sqlx::sqlite::SqliteRow) -> Result<Event> {
    let kind: String = get(row, "kind")?;
    let subject: Option<i64> = get(row, "subject")?;
    Ok(Event {
        seq: get(row, "seq")?,
        event: NewEvent {
            scope: scope_of(row)?,
            actor: get(row, "actor")?,
            subject: subject.map(RecordId::from_raw),
            kind: serde_json::from_str(&kind)
                .map_err(|e| Error::internal(format!("stored event is not valid: {e}")))?,
            at: instant(get(row, "at")?),
        },
    })
}

pub(crate) fn record_of(row: &impl Columns) -> Result<Record> {
    let entity: String = row.column("entity")?;
    let fields: String = row.column("fields")?;
    let created: Option<i64> = row.column("created_at")?;
    Ok(Record {
        id: RecordId::from_raw(row.column("id")?),
        scope: scope_of(row)?,
        source: opsweave_core::SourceRef {
            kind: row.column("source_kind")?,
            external_id: row.column("external_id")?,
            url: row.column("url")?,
        },
        entity: entity.parse()?,
        title: row.column("title")?,
        body: row.column("body")?,
        fields: serde_json::from_str(&fields)
            .map_err(|e| Error::internal(format!("stored fields are not valid: {e}")))?,
        created_at: created.map(instant),
        updated_at: instant(row.column("updated_at")?),
        content_hash: row.column("content_hash")?,
    })
}

/// Turns free text into an FTS5 query: each word quoted (no operator injection), all required.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(32)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn fts_query_quotes_words_and_drops_operators() {
        assert_eq!(
            fts_query("Globex SOW").as_deref(),
            Some("\"Globex\" \"SOW\"")
        );
        assert_eq!(
            fts_query("a OR b*\" NEAR(").as_deref(),
            Some("\"a\" \"OR\" \"b\" \"NEAR\"")
        );
        assert_eq!(fts_query("  ** "), None);
    }
}
