//! `JobQueue` on SQLite: every change is one `BEGIN IMMEDIATE` transaction on the writer, so
//! claims are serialised and no two workers can take the same job.

use crate::error::map;
use crate::rows::{get, instant, millis, scope_of};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::Utc;
use opsweave_core::jobs::{
    check_lease, check_progress, clip_message, lease_lost, retry_delay, scope_key, Job, JobId,
    JobQueue, JobStatus, NewJob, OpenJobs, Progress,
};
use opsweave_core::{Error, Result, Scope};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::time::Duration;

/// Milliseconds of a duration, saturating (durations here are capped far below that).
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn job_of(row: &SqliteRow) -> Result<Job> {
    let payload: String = get(row, "payload")?;
    let status: String = get(row, "status")?;
    let count = |column: &str| -> Result<u32> {
        u32::try_from(get::<i64>(row, column)?)
            .map_err(|_| Error::internal(format!("sqlite: job column `{column}` out of range")))
    };
    Ok(Job {
        id: JobId(get(row, "id")?),
        kind: get(row, "kind")?,
        // A payload damaged outside opsweave reaches its handler as the text it holds (which
        // fails that job) instead of failing every claim, and with it every worker.
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
        scope: scope_of(row)?,
        status: status.parse()?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        backoff: Duration::from_millis(u64::try_from(get::<i64>(row, "backoff_ms")?).unwrap_or(0)),
        progress: get(row, "progress")?,
        message: get(row, "message")?,
        idempotency_key: get(row, "idempotency_key")?,
        lease_owner: get(row, "lease_owner")?,
        lease_expires_at: get::<Option<i64>>(row, "lease_expires_at")?.map(instant),
        run_after: instant(get(row, "run_after")?),
        error: get(row, "error")?,
        created_at: instant(get(row, "created_at")?),
        updated_at: instant(get(row, "updated_at")?),
        finished_at: get::<Option<i64>>(row, "finished_at")?.map(instant),
    })
}

/// Reads job `id` inside a transaction.
async fn read(conn: &mut SqliteConnection, id: JobId) -> Result<Job> {
    let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
        .bind(id.0)
        .fetch_optional(conn)
        .await
        .map_err(|e| map("read job", e))?
        .ok_or_else(|| Error::not_found(format!("no job {id}")))?;
    job_of(&row)
}

/// Reads job `id` and checks `worker` still holds it.
async fn held(conn: &mut SqliteConnection, id: JobId, worker: &str) -> Result<Job> {
    let job = read(conn, id).await?;
    if job.status != JobStatus::Running || job.lease_owner.as_deref() != Some(worker) {
        return Err(lease_lost(
            id,
            worker,
            job.status,
            job.lease_owner.as_deref(),
        ));
    }
    Ok(job)
}

/// Appends `AND kind IN (…)` when `kinds` is not empty.
fn push_kinds<'a>(q: &mut QueryBuilder<'a, Sqlite>, kinds: &'a [String]) {
    if kinds.is_empty() {
        return;
    }
    q.push(" AND kind IN (");
    let mut sep = q.separated(", ");
    for kind in kinds {
        sep.push_bind(kind.as_str());
    }
    q.push(")");
}

/// Appends `org = ? [AND client = ?] [AND project = ?]`.
fn push_scope<'a>(q: &mut QueryBuilder<'a, Sqlite>, scope: &'a Scope) {
    q.push("org = ").push_bind(scope.org.as_str());
    if let Some(client) = &scope.client {
        q.push(" AND client = ").push_bind(client.as_str());
    }
    if let Some(project) = &scope.project {
        q.push(" AND project = ").push_bind(project.as_str());
    }
}

/// Begins a `BEGIN IMMEDIATE` transaction on the writer.
macro_rules! begin {
    ($store:expr) => {
        $store
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?
    };
}

/// The column values a change writes back, applied by [`store`].
async fn store(conn: &mut SqliteConnection, job: &Job) -> Result<Job> {
    let row = sqlx::query(
        "UPDATE jobs SET status = ?, attempts = ?, progress = ?, message = ?, lease_owner = ?, \
         lease_expires_at = ?, run_after = ?, error = ?, updated_at = ?, finished_at = ? \
         WHERE id = ? RETURNING *",
    )
    .bind(job.status.as_str())
    .bind(i64::from(job.attempts))
    .bind(job.progress)
    .bind(job.message.as_deref())
    .bind(job.lease_owner.as_deref())
    .bind(job.lease_expires_at.map(millis))
    .bind(millis(job.run_after))
    .bind(job.error.as_deref())
    .bind(millis(job.updated_at))
    .bind(job.finished_at.map(millis))
    .bind(job.id.0)
    .fetch_one(conn)
    .await
    .map_err(|e| map("update job", e))?;
    job_of(&row)
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue(&self, job: NewJob) -> Result<Job> {
        job.validate()?;
        let now = millis(Utc::now());
        let key = scope_key(&job.scope);
        let payload = job.payload.to_string();
        let mut tx = begin!(self);
        if let Some(idem) = &job.idempotency_key {
            let existing =
                sqlx::query("SELECT * FROM jobs WHERE scope_key = ? AND idempotency_key = ?")
                    .bind(&key)
                    .bind(idem)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| map("read idempotency key", e))?;
            if let Some(row) = existing {
                return job_of(&row);
            }
        }
        let row = sqlx::query(
            "INSERT INTO jobs (org, client, project, scope_key, kind, payload, status, attempts, \
             max_attempts, backoff_ms, progress, idempotency_key, run_after, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, 0, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&job.scope.org)
        .bind(job.scope.client.as_deref())
        .bind(job.scope.project.as_deref())
        .bind(&key)
        .bind(&job.kind)
        .bind(&payload)
        .bind(i64::from(job.max_attempts))
        .bind(ms(job.backoff))
        .bind(job.idempotency_key.as_deref())
        .bind(job.run_after.map_or(now, millis))
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map("insert job", e))?;
        let stored = job_of(&row)?;
        tx.commit().await.map_err(|e| map("commit job", e))?;
        Ok(stored)
    }

    async fn claim(&self, worker: &str, kinds: &[String], lease: Duration) -> Result<Option<Job>> {
        check_lease(worker, lease)?;
        let now = Utc::now();
        let at = millis(now);
        let mut tx = begin!(self);
        // Leases lost on the last allowed attempt fail their job instead of returning it.
        sqlx::query(
            "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, \
             error = 'lease expired on the last attempt (worker stopped heartbeating)', \
             updated_at = ?1, finished_at = ?1 \
             WHERE status = 'running' AND lease_expires_at < ?1 AND attempts >= max_attempts",
        )
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("fail exhausted jobs", e))?;
        let mut stale: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT * FROM jobs WHERE status = 'running' AND lease_expires_at < ",
        );
        stale.push_bind(at);
        push_kinds(&mut stale, kinds);
        stale.push(" ORDER BY lease_expires_at, id LIMIT 1");
        let mut found = stale
            .build()
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("find expired lease", e))?;
        if found.is_none() {
            let mut queued: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT * FROM jobs WHERE status = 'queued' AND run_after <= ");
            queued.push_bind(at);
            push_kinds(&mut queued, kinds);
            queued.push(" ORDER BY run_after, id LIMIT 1");
            found = queued
                .build()
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| map("find queued job", e))?;
        }
        let Some(row) = found else {
            tx.commit().await.map_err(|e| map("commit claim", e))?;
            return Ok(None);
        };
        let mut job = job_of(&row)?;
        job.status = JobStatus::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.lease_owner = Some(worker.to_string());
        job.lease_expires_at = Some(now + lease);
        job.updated_at = now;
        let claimed = store(&mut tx, &job).await?;
        tx.commit().await.map_err(|e| map("commit claim", e))?;
        Ok(Some(claimed))
    }

    async fn heartbeat(
        &self,
        id: JobId,
        worker: &str,
        lease: Duration,
        progress: Option<Progress>,
    ) -> Result<Job> {
        check_lease(worker, lease)?;
        let message = progress.as_ref().map(check_progress).transpose()?;
        let now = Utc::now();
        let mut tx = begin!(self);
        let mut job = held(&mut tx, id, worker).await?;
        if let (Some(p), Some(message)) = (&progress, message) {
            job.progress = p.fraction;
            job.message = message;
        }
        job.lease_expires_at = Some(now + lease);
        job.updated_at = now;
        let job = store(&mut tx, &job).await?;
        tx.commit().await.map_err(|e| map("commit heartbeat", e))?;
        Ok(job)
    }

    async fn release(&self, id: JobId, worker: &str) -> Result<Job> {
        let now = Utc::now();
        let mut tx = begin!(self);
        let mut job = held(&mut tx, id, worker).await?;
        job.status = JobStatus::Queued;
        job.attempts = job.attempts.saturating_sub(1);
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.run_after = now;
        job.updated_at = now;
        let job = store(&mut tx, &job).await?;
        tx.commit().await.map_err(|e| map("commit release", e))?;
        Ok(job)
    }

    async fn complete(&self, id: JobId, worker: &str) -> Result<Job> {
        let now = Utc::now();
        let mut tx = begin!(self);
        let mut job = held(&mut tx, id, worker).await?;
        job.status = JobStatus::Done;
        job.progress = 1.0;
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.updated_at = now;
        job.finished_at = Some(now);
        let job = store(&mut tx, &job).await?;
        tx.commit().await.map_err(|e| map("commit completion", e))?;
        Ok(job)
    }

    async fn record_failure(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry: bool,
    ) -> Result<Job> {
        let now = Utc::now();
        let mut tx = begin!(self);
        let mut job = held(&mut tx, id, worker).await?;
        job.error = Some(clip_message(error));
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.updated_at = now;
        if retry && job.attempts < job.max_attempts {
            job.status = JobStatus::Queued;
            job.run_after = now + retry_delay(job.backoff, job.attempts);
        } else {
            job.status = JobStatus::Failed;
            job.finished_at = Some(now);
        }
        let job = store(&mut tx, &job).await?;
        tx.commit().await.map_err(|e| map("commit failure", e))?;
        Ok(job)
    }

    async fn cancel(&self, scope: &Scope, id: JobId) -> Result<Job> {
        let now = Utc::now();
        let mut tx = begin!(self);
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM jobs WHERE id = ");
        q.push_bind(id.0).push(" AND ");
        push_scope(&mut q, scope);
        let row = q
            .build()
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map("read job", e))?
            .ok_or_else(|| Error::not_found(format!("no job {id} in scope {scope}")))?;
        let mut job = job_of(&row)?;
        match job.status {
            JobStatus::Cancelled => return Ok(job),
            JobStatus::Done | JobStatus::Failed => {
                return Err(Error::conflict(format!(
                    "job {id} is already {}: it cannot be cancelled",
                    job.status
                )))
            }
            JobStatus::Queued | JobStatus::Running => {}
        }
        job.status = JobStatus::Cancelled;
        job.lease_owner = None;
        job.lease_expires_at = None;
        job.updated_at = now;
        job.finished_at = Some(now);
        let job = store(&mut tx, &job).await?;
        tx.commit().await.map_err(|e| map("commit cancel", e))?;
        Ok(job)
    }

    async fn get(&self, scope: &Scope, id: JobId) -> Result<Job> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM jobs WHERE id = ");
        q.push_bind(id.0).push(" AND ");
        push_scope(&mut q, scope);
        let row = q
            .build()
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map("read job", e))?
            .ok_or_else(|| Error::not_found(format!("no job {id} in scope {scope}")))?;
        job_of(&row)
    }

    async fn list(
        &self,
        scope: &Scope,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM jobs WHERE ");
        push_scope(&mut q, scope);
        if let Some(status) = status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = q
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("list jobs", e))?;
        rows.iter().map(job_of).collect()
    }

    async fn count_open(&self, scope: &Scope, kinds: &[String]) -> Result<OpenJobs> {
        // `jobs_by_scope` (org, status, id) holds the open jobs of an org together.
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT status, count(*) FROM jobs WHERE ");
        push_scope(&mut q, scope);
        q.push(" AND status IN ('queued', 'running')");
        if !kinds.is_empty() {
            q.push(" AND kind IN (");
            let mut list = q.separated(", ");
            for kind in kinds {
                list.push_bind(kind.as_str());
            }
            q.push(")");
        }
        q.push(" GROUP BY status");
        let rows: Vec<(String, i64)> = q
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("count open jobs", e))?;
        OpenJobs::from_counts(rows)
    }
}
