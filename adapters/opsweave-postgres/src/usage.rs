//! `UsageLedger` and `KeyStore` on PostgreSQL: `ops.usage_events` and `ops.api_keys`.

use crate::error::map;
use crate::retry::with_retries;
use crate::rows::{get, scope_of, stored, text};
use crate::PgStore;
use async_trait::async_trait;
use chrono::Utc;
use opsweave_core::access::{check_revoke, ApiKey, KeyId, KeyStore, NewApiKey};
use opsweave_core::usage::{UsageEvent, UsageGroup, UsageLedger, UsageQuery, UsageTotal};
use opsweave_core::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder};

/// A checked count as the column holds it ([`UsageEvent::validate`] ran first).
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sum(row: &PgRow, column: &str) -> Result<u64> {
    u64::try_from(get::<i64>(row, column)?)
        .map_err(|_| Error::internal(format!("postgres: usage sum `{column}` is negative")))
}

#[async_trait]
impl UsageLedger for PgStore {
    async fn record_usage(&self, events: &[UsageEvent]) -> Result<()> {
        UsageEvent::validate_all(events)?;
        if events.is_empty() {
            return Ok(());
        }
        // Drawn once, outside the retried transaction: a retry after a lost COMMIT writes the
        // same keys, and the events the first attempt committed are skipped.
        let batch_key = with_retries(|| async {
            sqlx::query_scalar::<_, i64>("SELECT nextval('ops.usage_batches')")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| map("draw a usage batch key", e))
        })
        .await?;
        with_retries(|| async {
            let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
            // 13 parameters per row; PostgreSQL allows 65,535 per statement.
            for (n, chunk) in events.chunks(4_000).enumerate() {
                let first = n * 4_000;
                let mut q = QueryBuilder::<Postgres>::new(
                    "INSERT INTO ops.usage_events (org, client, project, operation, model, \
                     input_tokens, output_tokens, embedding_tokens, latency_ms, job_id, at, \
                     batch_key, batch_ord) ",
                );
                let mut ord = first as i64;
                q.push_values(chunk, |mut row, e| {
                    ord += 1;
                    row.push_bind(text(&e.scope.org).into_owned())
                        .push_bind(e.scope.client.as_deref().map(|c| text(c).into_owned()))
                        .push_bind(e.scope.project.as_deref().map(|p| text(p).into_owned()))
                        .push_bind(e.operation.as_str())
                        .push_bind(text(&e.model).into_owned())
                        .push_bind(count(e.input_tokens))
                        .push_bind(count(e.output_tokens))
                        .push_bind(count(e.embedding_tokens))
                        .push_bind(count(e.latency_ms))
                        .push_bind(e.job.map(|j| j.0))
                        .push_bind(stored(e.at))
                        .push_bind(batch_key)
                        .push_bind(ord);
                });
                q.push(" ON CONFLICT (batch_key, batch_ord) DO NOTHING");
                q.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map("record usage", e))?;
            }
            tx.commit().await.map_err(|e| map("commit usage", e))
        })
        .await
    }

    async fn usage_totals(&self, query: &UsageQuery) -> Result<Vec<UsageTotal>> {
        query.validate()?;
        let key = match query.group_by {
            UsageGroup::Org => "org",
            UsageGroup::Client => "COALESCE(client, '')",
            UsageGroup::Project => "COALESCE(project, '')",
            UsageGroup::Model => "model",
        };
        let client = match query.group_by {
            UsageGroup::Project => "COALESCE(client, '')",
            _ => "NULL::text",
        };
        with_retries(|| async {
            // SUM of bigint is numeric: saturated before the cast back, a ledger whose sums pass
            // i64::MAX stays readable (the cast alone fails with "bigint out of range").
            // Byte order (COLLATE "C"), as the embedded store sorts, whatever the database's locale.
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "SELECT {key} AS key, {client} AS group_client, model, COUNT(*)::bigint AS calls, \
                 LEAST(SUM(input_tokens), {MAX}::numeric)::bigint AS input_tokens, \
                 LEAST(SUM(output_tokens), {MAX}::numeric)::bigint AS output_tokens, \
                 LEAST(SUM(embedding_tokens), {MAX}::numeric)::bigint AS embedding_tokens \
                 FROM ops.usage_events WHERE org = ",
                MAX = i64::MAX
            ));
            q.push_bind(query.scope.org.as_str());
            if let Some(client) = &query.scope.client {
                q.push(" AND client = ").push_bind(client.as_str());
            }
            if let Some(project) = &query.scope.project {
                q.push(" AND project = ").push_bind(project.as_str());
            }
            q.push(" AND at >= ")
                .push_bind(stored(query.from))
                .push(" AND at < ")
                .push_bind(stored(query.to))
                .push(format!(
                    " GROUP BY 1, 2, 3 ORDER BY {key} COLLATE \"C\", {client} COLLATE \"C\", \
                     model COLLATE \"C\""
                ));
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map("usage totals", e))?;
            rows.iter()
                .map(|row| {
                    Ok(UsageTotal {
                        key: get(row, "key")?,
                        client: get(row, "group_client")?,
                        model: get(row, "model")?,
                        calls: sum(row, "calls")?,
                        input_tokens: sum(row, "input_tokens")?,
                        output_tokens: sum(row, "output_tokens")?,
                        embedding_tokens: sum(row, "embedding_tokens")?,
                    })
                })
                .collect()
        })
        .await
    }
}

pub(crate) fn key_of(row: &PgRow) -> Result<ApiKey> {
    let role: String = get(row, "role")?;
    Ok(ApiKey {
        id: KeyId(get(row, "id")?),
        name: get(row, "name")?,
        scope: scope_of(row)?,
        role: role.parse()?,
        prefix: get(row, "prefix")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

#[async_trait]
impl KeyStore for PgStore {
    async fn create_key(&self, key: NewApiKey) -> Result<ApiKey> {
        key.validate()?;
        let row = sqlx::query(
            "INSERT INTO ops.api_keys (hash, prefix, name, org, client, project, role, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        )
        .bind(&key.hash)
        .bind(&key.prefix)
        .bind(text(&key.name).into_owned())
        .bind(&key.scope.org)
        .bind(key.scope.client.as_deref())
        .bind(key.scope.project.as_deref())
        .bind(key.role.as_str())
        .bind(stored(Utc::now()))
        .bind(key.expires_at.map(stored))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| map("create key", e))?;
        key_of(&row)
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        with_retries(|| async {
            sqlx::query("SELECT * FROM ops.api_keys WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| map("find key", e))?
                .as_ref()
                .map(key_of)
                .transpose()
        })
        .await
    }

    async fn keys(&self, org: &str) -> Result<Vec<ApiKey>> {
        sqlx::query("SELECT * FROM ops.api_keys WHERE org = $1 ORDER BY id DESC")
            .bind(org)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("list keys", e))?
            .iter()
            .map(key_of)
            .collect()
    }

    async fn revoke_key(&self, org: &str, id: KeyId) -> Result<ApiKey> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
        // The org's keys stay locked until commit: a second revocation waits here and then
        // reads the first one's result, so the last-admin check cannot pass twice. Locked in id
        // order, so two revocations never wait on each other's rows (deadlock).
        let keys = sqlx::query("SELECT * FROM ops.api_keys WHERE org = $1 ORDER BY id FOR UPDATE")
            .bind(org)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("read keys", e))?
            .iter()
            .map(key_of)
            .collect::<Result<Vec<_>>>()?;
        check_revoke(org, &keys, id, now)?;
        let row = sqlx::query(
            "UPDATE ops.api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE org = $2 AND id = $3 RETURNING *",
        )
        .bind(stored(now))
        .bind(org)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| map("revoke key", e))?
        .ok_or_else(|| Error::not_found(format!("no key {id}")).on_field("id"))?;
        let key = key_of(&row)?;
        tx.commit().await.map_err(|e| map("commit revoke", e))?;
        Ok(key)
    }

    async fn key_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ops.api_keys")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map("count keys", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
