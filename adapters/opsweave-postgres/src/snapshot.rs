//! `Snapshot` on PostgreSQL: every table read in key order a page at a time, and pages written
//! back with their ids in one transaction (retried whole on a transient failure). Identity
//! columns take the imported ids (`OVERRIDING SYSTEM VALUE`) and their sequences are moved past
//! them, so later appends, jobs and keys get new ones.

use crate::error::map;
use crate::fulltext::Document;
use crate::jobs::job_of;
use crate::matching::review_of;
use crate::retry::with_retries;
use crate::rows::{event_of, get, opt_text, record_of, scope_of, stored, text};
use crate::store::EVENT_APPEND_LOCK;
use crate::usage::key_of;
use crate::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use opsweave_core::jobs::scope_key;
use opsweave_core::mapping::Rejection;
use opsweave_core::snapshot::{
    check_key, DatabaseIdentity, RowCount, Snapshot, SnapshotKey, SnapshotKind, SnapshotPage,
    StoredKey, StoredLink, StoredMatchMember, StoredMatchState, StoredRaw, StoredRecord,
    StoredRejection, StoredReview, StoredTask, StoredUsage, StoredVector, MAX_PAGE,
};
use opsweave_core::{
    EntityKind, Error, Event, Job, Link, LinkKind, ModelInfo, Operation, RecordId, Result, Task,
    UsageEvent, VectorIndex, VectorItem,
};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Postgres, QueryBuilder};
use std::borrow::Cow;

/// Rows per statement: 21 job columns × 1,000 stays under PostgreSQL's 65,535 parameters.
const ROWS_PER_STATEMENT: usize = 1_000;

/// The record page's columns: the record's own, then its raw item's and task's, prefixed.
const RECORD_PAGE: &str = "SELECT r.*, r.fields::text AS fields_text, i.source_file AS raw_source_file, i.line AS raw_line, \
     i.payload AS raw_payload, i.received_at AS raw_received_at, t.status AS t_status, \
     t.source_status AS t_source_status, t.due_day AS t_due_day, t.importance AS t_importance, \
     t.importance_reason AS t_importance_reason, t.boost AS t_boost, t.pinned AS t_pinned, \
     t.updated_at AS t_updated_at, t.completed_at AS t_completed_at \
     FROM core.records r LEFT JOIN raw.items i ON i.id = r.id LEFT JOIN core.tasks t ON t.id = r.id";

/// Counts every table per org, in one statement.
const ROW_COUNTS: &str = "\
    SELECT 'records' AS tbl, org, count(*)::bigint AS n FROM core.records GROUP BY org \
    UNION ALL SELECT 'raw_items', r.org, count(*) FROM raw.items i JOIN core.records r ON r.id = i.id GROUP BY r.org \
    UNION ALL SELECT 'tasks', org, count(*) FROM core.tasks GROUP BY org \
    UNION ALL SELECT 'links', org, count(*) FROM core.links GROUP BY org \
    UNION ALL SELECT 'rejections', org, count(*) FROM raw.rejections GROUP BY org \
    UNION ALL SELECT 'events', org, count(*) FROM ops.events GROUP BY org \
    UNION ALL SELECT 'match_states', org, count(*) FROM core.match_state GROUP BY org \
    UNION ALL SELECT 'match_members', org, count(*) FROM core.match_members GROUP BY org \
    UNION ALL SELECT 'match_reviews', org, count(*) FROM core.match_review GROUP BY org \
    UNION ALL SELECT 'jobs', org, count(*) FROM ops.jobs GROUP BY org \
    UNION ALL SELECT 'usage_events', org, count(*) FROM ops.usage_events GROUP BY org \
    UNION ALL SELECT 'api_keys', org, count(*) FROM ops.api_keys GROUP BY org \
    UNION ALL SELECT 'vectors', org, count(*) FROM search.embeddings GROUP BY org";

#[async_trait]
impl Snapshot for PgStore {
    async fn export(
        &self,
        kind: SnapshotKind,
        after: Option<&SnapshotKey>,
        limit: usize,
    ) -> Result<SnapshotPage> {
        check_key(kind, after)?;
        let limit = limit.clamp(1, MAX_PAGE) as i64;
        let rows = with_retries(|| async {
            let mut q = page_query(kind, after);
            q.push(" LIMIT ").push_bind(limit);
            q.build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map(&format!("export a page of {kind}"), e))
        })
        .await?;
        let page = match kind {
            SnapshotKind::Records => {
                SnapshotPage::Records(rows.iter().map(stored_record).collect::<Result<_>>()?)
            }
            SnapshotKind::Links => {
                SnapshotPage::Links(rows.iter().map(stored_link).collect::<Result<_>>()?)
            }
            SnapshotKind::Rejections => {
                SnapshotPage::Rejections(rows.iter().map(stored_rejection).collect::<Result<_>>()?)
            }
            SnapshotKind::Events => {
                SnapshotPage::Events(rows.iter().map(event_of).collect::<Result<_>>()?)
            }
            SnapshotKind::MatchStates => SnapshotPage::MatchStates(
                rows.iter()
                    .map(|row| {
                        Ok(StoredMatchState {
                            org: get(row, "org")?,
                            resolver: get(row, "resolver")?,
                            state: get(row, "state")?,
                            updated_at: get(row, "updated_at")?,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            SnapshotKind::MatchMembers => SnapshotPage::MatchMembers(
                rows.iter()
                    .map(|row| {
                        Ok(StoredMatchMember {
                            org: get(row, "org")?,
                            resolver: get(row, "resolver")?,
                            record: RecordId::from_raw(get(row, "record_id")?),
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            SnapshotKind::MatchReviews => SnapshotPage::MatchReviews(
                rows.iter()
                    .map(|row| {
                        Ok(StoredReview {
                            org: get(row, "org")?,
                            item: review_of(row)?,
                            decided_at: get(row, "decided_at")?,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            SnapshotKind::Jobs => {
                SnapshotPage::Jobs(rows.iter().map(job_of).collect::<Result<_>>()?)
            }
            SnapshotKind::UsageEvents => {
                SnapshotPage::UsageEvents(rows.iter().map(stored_usage).collect::<Result<_>>()?)
            }
            SnapshotKind::ApiKeys => SnapshotPage::ApiKeys(
                rows.iter()
                    .map(|row| {
                        Ok(StoredKey {
                            key: key_of(row)?,
                            hash: get(row, "hash")?,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            SnapshotKind::Vectors => {
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
        let page = &page;
        with_retries(|| async move {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            match page {
                SnapshotPage::Records(rows) => import_records(&mut tx, rows).await?,
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
        })
        .await
    }

    async fn row_counts(&self) -> Result<Vec<RowCount>> {
        let rows = with_retries(|| async {
            sqlx::query(ROW_COUNTS)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("count rows", e))
        })
        .await?;
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
        let row: std::result::Result<(String, String, String), sqlx::Error> = sqlx::query_as(
            "SELECT s.system_identifier::text, d.oid::text, d.datname::text \
             FROM pg_control_system() s, pg_database d WHERE d.datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await;
        match row {
            Ok((system, oid, name)) => Ok(Some(DatabaseIdentity {
                key: format!("postgres:{system}:{oid}"),
                label: format!("PostgreSQL system {system}, database {name}"),
            })),
            // 42501: a server that keeps pg_control_system from ordinary roles; 42883 / 0A000:
            // one without it (a server speaking PostgreSQL's protocol). Then nobody can tell,
            // which is no reason to refuse the copy.
            Err(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("42501" | "42883" | "0A000")) =>
            {
                Ok(None)
            }
            Err(e) => Err(map("name the database", e)),
        }
    }
}

impl PgStore {
    /// Writes one model's vectors through the index (which makes the model's HNSW index).
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

/// The page query of `kind` after `after`, ordered by the kind's key, without its LIMIT.
fn page_query<'a>(
    kind: SnapshotKind,
    after: Option<&'a SnapshotKey>,
) -> QueryBuilder<'a, Postgres> {
    let (select, key) = match kind {
        // The primary key's order: a page is one index range scan, never a sort of the rest.
        SnapshotKind::Records => (RECORD_PAGE, "r.org, r.id"),
        SnapshotKind::Links => (
            "SELECT org, kind, from_id, to_id, weight, evidence FROM core.links",
            "kind, from_id, to_id",
        ),
        SnapshotKind::Rejections => ("SELECT * FROM raw.rejections", "id"),
        SnapshotKind::Events => ("SELECT * FROM ops.events", "seq"),
        SnapshotKind::MatchStates => (
            "SELECT org, resolver, state, updated_at FROM core.match_state",
            "org, resolver",
        ),
        SnapshotKind::MatchMembers => (
            "SELECT org, resolver, record_id FROM core.match_members",
            "org, resolver, record_id",
        ),
        SnapshotKind::MatchReviews => (
            "SELECT org, resolver, left_id, right_id, score, probability, \
             explanation::text AS explanation, status, decided_at FROM core.match_review",
            "org, resolver, left_id, right_id",
        ),
        SnapshotKind::Jobs => ("SELECT * FROM ops.jobs", "id"),
        SnapshotKind::UsageEvents => ("SELECT * FROM ops.usage_events", "id"),
        SnapshotKind::ApiKeys => ("SELECT * FROM ops.api_keys", "id"),
        SnapshotKind::Vectors => (
            "SELECT model, id, org, client, project, entity, source_kind, content_hash, \
             embedding::real[] AS vector, (SELECT i.fingerprint FROM search.vector_indexes i \
             WHERE i.model = search.embeddings.model) AS fingerprint FROM search.embeddings",
            "model, id",
        ),
    };
    let mut q = QueryBuilder::new(select);
    if let Some(after) = after {
        q.push(format!(" WHERE ({key}) > ("));
        match after {
            SnapshotKey::Id(id) => {
                q.push_bind(*id);
            }
            SnapshotKey::Link(kind, from, to) => {
                q.push_bind(kind.as_str())
                    .push(", ")
                    .push_bind(*from)
                    .push(", ")
                    .push_bind(*to);
            }
            SnapshotKey::Resolver(org, resolver) => {
                q.push_bind(org.as_str())
                    .push(", ")
                    .push_bind(resolver.as_str());
            }
            SnapshotKey::Member(org, resolver, record) => {
                q.push_bind(org.as_str())
                    .push(", ")
                    .push_bind(resolver.as_str())
                    .push(", ")
                    .push_bind(*record);
            }
            SnapshotKey::Review(org, resolver, left, right) => {
                q.push_bind(org.as_str())
                    .push(", ")
                    .push_bind(resolver.as_str())
                    .push(", ")
                    .push_bind(*left)
                    .push(", ")
                    .push_bind(*right);
            }
            SnapshotKey::Vector(model, id) => {
                q.push_bind(model.as_str()).push(", ").push_bind(*id);
            }
            SnapshotKey::Record(org, id) => {
                q.push_bind(org.as_str()).push(", ").push_bind(*id);
            }
        }
        q.push(")");
    }
    q.push(format!(" ORDER BY {key}"));
    q
}

fn stored_record(row: &PgRow) -> Result<StoredRecord> {
    let record = record_of(row)?;
    let raw = match get::<Option<String>>(row, "raw_payload")? {
        Some(payload) => Some(StoredRaw {
            source_file: get(row, "raw_source_file")?,
            line: get::<i64>(row, "raw_line")?.max(0) as u64,
            payload,
            received_at: get(row, "raw_received_at")?,
        }),
        None => None,
    };
    let task = match get::<Option<String>>(row, "t_status")? {
        Some(status) => Some(StoredTask {
            // A task row repeats its record's id, scope, title, source kind and url.
            task: Task {
                id: record.id,
                scope: record.scope.clone(),
                title: record.title.clone(),
                source_kind: record.source.kind.clone(),
                url: record.source.url.clone(),
                status: status.parse()?,
                due: get(row, "t_due_day")?,
                importance: get(row, "t_importance")?,
                importance_reason: get(row, "t_importance_reason")?,
                boost: get(row, "t_boost")?,
                pinned: get(row, "t_pinned")?,
                updated_at: get(row, "t_updated_at")?,
                completed_at: get(row, "t_completed_at")?,
            },
            source_status: get::<String>(row, "t_source_status")?.parse()?,
        }),
        None => None,
    };
    Ok(StoredRecord {
        // A json column keeps its text as written.
        fields_json: get(row, "fields_text")?,
        record,
        raw,
        task,
    })
}

fn stored_rejection(row: &PgRow) -> Result<StoredRejection> {
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
        at: get(row, "at")?,
    })
}

fn stored_link(row: &PgRow) -> Result<StoredLink> {
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

fn stored_usage(row: &PgRow) -> Result<StoredUsage> {
    let count = |column: &str| -> Result<u64> {
        u64::try_from(get::<i64>(row, column)?)
            .map_err(|_| Error::internal(format!("postgres: usage column `{column}` is negative")))
    };
    let operation = match get::<String>(row, "operation")?.as_str() {
        "embed" => Operation::Embed,
        "chat" => Operation::Chat,
        other => {
            return Err(Error::internal(format!(
                "postgres: unknown usage operation `{other}`"
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
            at: get(row, "at")?,
        },
    })
}

fn stored_vector(row: &PgRow) -> Result<StoredVector> {
    Ok(StoredVector {
        model: get(row, "model")?,
        fingerprint: get(row, "fingerprint")?,
        item: VectorItem {
            id: RecordId::from_raw(get(row, "id")?),
            scope: scope_of(row)?,
            entity: get::<String>(row, "entity")?.parse::<EntityKind>()?,
            source_kind: get(row, "source_kind")?,
            content_hash: get::<i64>(row, "content_hash")? as u64,
            vector: get(row, "vector")?,
        },
    })
}

/// Moves the identity sequence of `table.column` past the largest id stored (never back).
async fn advance_identity(tx: &mut PgConnection, table: &str, column: &str) -> Result<()> {
    sqlx::query(&format!(
        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
         GREATEST((SELECT max({column}) FROM {table}), \
           pg_sequence_last_value(pg_get_serial_sequence('{table}', '{column}')::regclass), 1))"
    ))
    .execute(&mut *tx)
    .await
    .map_err(|e| map(&format!("advance the ids of {table}"), e))?;
    Ok(())
}

/// Records, raw items, tasks and full-text documents, each upserted by record id.
async fn import_records(tx: &mut PgConnection, rows: &[StoredRecord]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
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
        for s in chunk {
            let r = &s.record;
            id.push(r.id.raw());
            org.push(text(&r.scope.org));
            client.push(opt_text(r.scope.client.as_deref()));
            project.push(opt_text(r.scope.project.as_deref()));
            source_kind.push(text(&r.source.kind));
            external_id.push(text(&r.source.external_id));
            url.push(opt_text(r.source.url.as_deref()));
            entity.push(r.entity.as_str());
            title.push(text(&r.title));
            body.push(text(&r.body));
            fields.push(s.fields_json.as_str());
            created_at.push(r.created_at.map(stored));
            updated_at.push(stored(r.updated_at));
            content_hash.push(r.content_hash);
            document.push(Document::new(&r.title, &r.body));
        }
        sqlx::query(
            "INSERT INTO core.records (id, org, client, project, source_kind, external_id, url, \
               entity, title, body, fields, created_at, updated_at, content_hash, document) \
             SELECT id, org, client, project, source_kind, external_id, url, entity, title, body, \
               fields::json, created_at, updated_at, content_hash, document \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
               $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], \
               $13::timestamptz[], $14::bigint[], $15::tsvector[]) \
               AS n(id, org, client, project, source_kind, external_id, url, entity, title, body, \
                 fields, created_at, updated_at, content_hash, document) \
             ON CONFLICT (org, id) DO UPDATE SET client = excluded.client, \
               project = excluded.project, source_kind = excluded.source_kind, \
               external_id = excluded.external_id, url = excluded.url, entity = excluded.entity, \
               title = excluded.title, body = excluded.body, fields = excluded.fields, \
               created_at = excluded.created_at, updated_at = excluded.updated_at, \
               content_hash = excluded.content_hash, document = excluded.document",
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
        .execute(&mut *tx)
        .await
        .map_err(|e| map("import records", e))?;

        import_raw_items(tx, chunk).await?;
        import_tasks(tx, chunk).await?;
        // A record without a raw item or task in the page has none in the copy either.
        for (table, missing) in [
            (
                "raw.items",
                chunk
                    .iter()
                    .filter(|s| s.raw.is_none())
                    .map(|s| s.record.id.raw())
                    .collect::<Vec<i64>>(),
            ),
            (
                "core.tasks",
                chunk
                    .iter()
                    .filter(|s| s.task.is_none())
                    .map(|s| s.record.id.raw())
                    .collect(),
            ),
        ] {
            if missing.is_empty() {
                continue;
            }
            sqlx::query(&format!("DELETE FROM {table} WHERE id = ANY($1)"))
                .bind(missing)
                .execute(&mut *tx)
                .await
                .map_err(|e| map(&format!("import: clear {table}"), e))?;
        }
    }
    // A server reading the copy reuses focus answers while the revision stands: a page that
    // changed tasks moves it.
    let mut orgs: Vec<&str> = rows.iter().map(|s| s.record.scope.org.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        crate::store::raise_task_revision(&mut *tx, org).await?;
    }
    Ok(())
}

async fn import_raw_items(tx: &mut PgConnection, chunk: &[StoredRecord]) -> Result<()> {
    let raws: Vec<(i64, &StoredRaw)> = chunk
        .iter()
        .filter_map(|s| Some((s.record.id.raw(), s.raw.as_ref()?)))
        .collect();
    if raws.is_empty() {
        return Ok(());
    }
    let id: Vec<i64> = raws.iter().map(|(id, _)| *id).collect();
    let source_file: Vec<Cow<str>> = raws.iter().map(|(_, r)| text(&r.source_file)).collect();
    let line: Vec<i64> = raws
        .iter()
        .map(|(_, r)| i64::try_from(r.line).unwrap_or(i64::MAX))
        .collect();
    let payload: Vec<Cow<str>> = raws.iter().map(|(_, r)| text(&r.payload)).collect();
    let received_at: Vec<DateTime<Utc>> = raws.iter().map(|(_, r)| stored(r.received_at)).collect();
    sqlx::query(
        "INSERT INTO raw.items (id, source_file, line, payload, received_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], \
           $5::timestamptz[]) \
         ON CONFLICT (id) DO UPDATE SET source_file = excluded.source_file, line = excluded.line, \
           payload = excluded.payload, received_at = excluded.received_at",
    )
    .bind(id)
    .bind(source_file)
    .bind(line)
    .bind(payload)
    .bind(received_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("import raw items", e))?;
    Ok(())
}

async fn import_tasks(tx: &mut PgConnection, chunk: &[StoredRecord]) -> Result<()> {
    let tasks: Vec<&StoredTask> = chunk.iter().filter_map(|s| s.task.as_ref()).collect();
    if tasks.is_empty() {
        return Ok(());
    }
    let n = tasks.len();
    let mut id = Vec::with_capacity(n);
    let mut org = Vec::with_capacity(n);
    let mut client = Vec::with_capacity(n);
    let mut project = Vec::with_capacity(n);
    let mut title = Vec::with_capacity(n);
    let mut source_kind = Vec::with_capacity(n);
    let mut url = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut source_status = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut marked = Vec::with_capacity(n);
    let mut due_day: Vec<Option<NaiveDate>> = Vec::with_capacity(n);
    let mut importance = Vec::with_capacity(n);
    let mut importance_reason = Vec::with_capacity(n);
    let mut boost = Vec::with_capacity(n);
    let mut pinned = Vec::with_capacity(n);
    let mut updated_at = Vec::with_capacity(n);
    let mut completed_at = Vec::with_capacity(n);
    for s in tasks {
        let t = &s.task;
        id.push(t.id.raw());
        org.push(text(&t.scope.org));
        client.push(opt_text(t.scope.client.as_deref()));
        project.push(opt_text(t.scope.project.as_deref()));
        title.push(text(&t.title));
        source_kind.push(text(&t.source_kind));
        url.push(opt_text(t.url.as_deref()));
        status.push(t.status.as_str());
        source_status.push(s.source_status.as_str());
        open.push(t.status.is_open());
        marked.push(t.pinned || t.boost != 0.0);
        due_day.push(t.due);
        importance.push(t.importance);
        importance_reason.push(text(&t.importance_reason));
        boost.push(t.boost);
        pinned.push(t.pinned);
        updated_at.push(stored(t.updated_at));
        completed_at.push(t.completed_at.map(stored));
    }
    sqlx::query(
        "INSERT INTO core.tasks (id, org, client, project, title, source_kind, url, status, \
           source_status, open, marked, due_day, importance, importance_reason, boost, pinned, \
           updated_at, completed_at) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
           $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::boolean[], \
           $12::date[], $13::float8[], $14::text[], $15::float8[], $16::boolean[], \
           $17::timestamptz[], $18::timestamptz[]) \
         ON CONFLICT (id) DO UPDATE SET org = excluded.org, client = excluded.client, \
           project = excluded.project, title = excluded.title, \
           source_kind = excluded.source_kind, url = excluded.url, status = excluded.status, \
           source_status = excluded.source_status, open = excluded.open, \
           marked = excluded.marked, due_day = excluded.due_day, \
           importance = excluded.importance, importance_reason = excluded.importance_reason, \
           boost = excluded.boost, pinned = excluded.pinned, updated_at = excluded.updated_at, \
           completed_at = excluded.completed_at",
    )
    .bind(id)
    .bind(org)
    .bind(client)
    .bind(project)
    .bind(title)
    .bind(source_kind)
    .bind(url)
    .bind(status)
    .bind(source_status)
    .bind(open)
    .bind(marked)
    .bind(due_day)
    .bind(importance)
    .bind(importance_reason)
    .bind(boost)
    .bind(pinned)
    .bind(updated_at)
    .bind(completed_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| map("import tasks", e))?;
    Ok(())
}

async fn import_links(tx: &mut PgConnection, rows: &[StoredLink]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO core.links (org, kind, from_id, to_id, weight, evidence) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(text(&s.org).into_owned())
                .push_bind(s.link.kind.as_str())
                .push_bind(s.link.from.raw())
                .push_bind(s.link.to.raw())
                .push_bind(s.link.weight)
                .push_bind(text(&s.link.evidence).into_owned());
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

async fn import_rejections(tx: &mut PgConnection, rows: &[StoredRejection]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO raw.rejections (id, org, client, project, source_file, line, field, \
             reason, raw, at) OVERRIDING SYSTEM VALUE ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(s.id)
                .push_bind(text(&s.scope.org).into_owned())
                .push_bind(opt_text(s.scope.client.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(s.scope.project.as_deref()).map(Cow::into_owned))
                .push_bind(text(&s.source_file).into_owned())
                .push_bind(i64::try_from(s.rejection.line).unwrap_or(i64::MAX))
                .push_bind(opt_text(s.rejection.field.as_deref()).map(Cow::into_owned))
                .push_bind(text(&s.rejection.reason).into_owned())
                .push_bind(opt_text(s.rejection.raw.as_deref()).map(Cow::into_owned))
                .push_bind(stored(s.at));
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
    advance_identity(tx, "raw.rejections", "id").await
}

async fn import_events(tx: &mut PgConnection, rows: &[Event]) -> Result<()> {
    // Appends are serialised by this lock (see `append_event`); an import takes it too, so a
    // reader following `seq` never sees an imported event appear behind one it already read.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_APPEND_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("lock event log", e))?;
    let kinds = rows
        .iter()
        .map(|e| {
            serde_json::to_string(&e.event.kind)
                .map_err(|err| Error::internal(format!("event to JSON: {err}")))
        })
        .collect::<Result<Vec<String>>>()?;
    let rows: Vec<(&Event, &String)> = rows.iter().zip(&kinds).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO ops.events (seq, org, client, project, actor, subject, kind, at) \
             OVERRIDING SYSTEM VALUE ",
        );
        q.push_values(chunk, |mut b, (e, kind)| {
            b.push_bind(e.seq)
                .push_bind(text(&e.event.scope.org).into_owned())
                .push_bind(opt_text(e.event.scope.client.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(e.event.scope.project.as_deref()).map(Cow::into_owned))
                .push_bind(text(&e.event.actor).into_owned())
                .push_bind(e.event.subject.map(RecordId::raw))
                .push_bind(kind.as_str())
                .push_unseparated("::json")
                .push_bind(stored(e.event.at));
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
    advance_identity(tx, "ops.events", "seq").await
}

async fn import_match_states(tx: &mut PgConnection, rows: &[StoredMatchState]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO core.match_state (org, resolver, state, updated_at) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(text(&s.org).into_owned())
                .push_bind(text(&s.resolver).into_owned())
                .push_bind(text(&s.state).into_owned())
                .push_bind(stored(s.updated_at));
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

async fn import_match_members(tx: &mut PgConnection, rows: &[StoredMatchMember]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO core.match_members (org, resolver, record_id) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(text(&s.org).into_owned())
                .push_bind(text(&s.resolver).into_owned())
                .push_bind(s.record.raw());
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build()
            .execute(&mut *tx)
            .await
            .map_err(|e| map("import match members", e))?;
    }
    Ok(())
}

async fn import_match_reviews(tx: &mut PgConnection, rows: &[StoredReview]) -> Result<()> {
    let explanations = rows
        .iter()
        .map(|r| {
            serde_json::to_string(&r.item.explanation)
                .map_err(|e| Error::internal(format!("explanation to JSON: {e}")))
        })
        .collect::<Result<Vec<String>>>()?;
    let rows: Vec<(&StoredReview, &String)> = rows.iter().zip(&explanations).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO core.match_review (org, resolver, left_id, right_id, score, \
             probability, explanation, status, decided_at) ",
        );
        q.push_values(chunk, |mut b, (s, explanation)| {
            b.push_bind(text(&s.org).into_owned())
                .push_bind(text(&s.item.resolver).into_owned())
                .push_bind(s.item.left.raw())
                .push_bind(s.item.right.raw())
                .push_bind(s.item.score)
                .push_bind(s.item.probability)
                .push_bind(explanation.as_str())
                .push_unseparated("::json")
                .push_bind(s.item.status.as_str())
                .push_bind(s.decided_at.map(stored));
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

async fn import_jobs(tx: &mut PgConnection, rows: &[Job]) -> Result<()> {
    let payloads: Vec<String> = rows.iter().map(|j| j.payload.to_string()).collect();
    let keys: Vec<String> = rows.iter().map(|j| scope_key(&j.scope)).collect();
    let rows: Vec<(&Job, (&String, &String))> =
        rows.iter().zip(payloads.iter().zip(&keys)).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO ops.jobs (id, org, client, project, scope_key, kind, payload, status, \
             attempts, max_attempts, backoff_ms, progress, message, idempotency_key, lease_owner, \
             lease_expires_at, run_after, error, created_at, updated_at, finished_at) \
             OVERRIDING SYSTEM VALUE ",
        );
        q.push_values(chunk, |mut b, (j, (payload, key))| {
            b.push_bind(j.id.0)
                .push_bind(text(&j.scope.org).into_owned())
                .push_bind(opt_text(j.scope.client.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(j.scope.project.as_deref()).map(Cow::into_owned))
                .push_bind(text(key).into_owned())
                .push_bind(text(&j.kind).into_owned())
                .push_bind(payload.as_str())
                .push_unseparated("::json")
                .push_bind(j.status.as_str())
                .push_bind(i32::try_from(j.attempts).unwrap_or(i32::MAX))
                .push_bind(i32::try_from(j.max_attempts).unwrap_or(i32::MAX))
                .push_bind(i64::try_from(j.backoff.as_millis()).unwrap_or(i64::MAX))
                .push_bind(j.progress)
                .push_bind(opt_text(j.message.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(j.idempotency_key.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(j.lease_owner.as_deref()).map(Cow::into_owned))
                .push_bind(j.lease_expires_at)
                .push_bind(j.run_after)
                .push_bind(opt_text(j.error.as_deref()).map(Cow::into_owned))
                .push_bind(j.created_at)
                .push_bind(j.updated_at)
                .push_bind(j.finished_at);
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
    advance_identity(tx, "ops.jobs", "id").await
}

async fn import_usage(tx: &mut PgConnection, rows: &[StoredUsage]) -> Result<()> {
    let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO ops.usage_events (id, org, client, project, operation, model, \
             input_tokens, output_tokens, embedding_tokens, latency_ms, job_id, at) \
             OVERRIDING SYSTEM VALUE ",
        );
        q.push_values(chunk, |mut b, u| {
            let e = &u.event;
            b.push_bind(u.id)
                .push_bind(text(&e.scope.org).into_owned())
                .push_bind(opt_text(e.scope.client.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(e.scope.project.as_deref()).map(Cow::into_owned))
                .push_bind(e.operation.as_str())
                .push_bind(text(&e.model).into_owned())
                .push_bind(count(e.input_tokens))
                .push_bind(count(e.output_tokens))
                .push_bind(count(e.embedding_tokens))
                .push_bind(count(e.latency_ms))
                .push_bind(e.job.map(|j| j.0))
                .push_bind(stored(e.at));
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
    advance_identity(tx, "ops.usage_events", "id").await
}

async fn import_keys(tx: &mut PgConnection, rows: &[StoredKey]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO ops.api_keys (id, hash, prefix, name, org, client, project, role, \
             created_at, expires_at, revoked_at) OVERRIDING SYSTEM VALUE ",
        );
        q.push_values(chunk, |mut b, s| {
            let k = &s.key;
            b.push_bind(k.id.0)
                .push_bind(text(&s.hash).into_owned())
                .push_bind(text(&k.prefix).into_owned())
                .push_bind(text(&k.name).into_owned())
                .push_bind(text(&k.scope.org).into_owned())
                .push_bind(opt_text(k.scope.client.as_deref()).map(Cow::into_owned))
                .push_bind(opt_text(k.scope.project.as_deref()).map(Cow::into_owned))
                .push_bind(k.role.as_str())
                .push_bind(stored(k.created_at))
                .push_bind(k.expires_at.map(stored))
                .push_bind(k.revoked_at.map(stored));
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
    advance_identity(tx, "ops.api_keys", "id").await
}
