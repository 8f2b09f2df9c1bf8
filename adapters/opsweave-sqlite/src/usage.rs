//! `UsageLedger` and `KeyStore` on SQLite: usage events and hashed API keys (migration 0005).

use crate::error::map;
use crate::rows::{get, instant, millis, scope_of};
use crate::SqliteStore;
use async_trait::async_trait;
use chrono::Utc;
use opsweave_core::access::{check_revoke, ApiKey, KeyId, KeyStore, NewApiKey};
use opsweave_core::usage::{UsageEvent, UsageGroup, UsageLedger, UsageQuery, UsageTotal};
use opsweave_core::{Error, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

/// A checked count as the column holds it ([`UsageEvent::validate`] ran first).
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sum(row: &SqliteRow, column: &str) -> Result<u64> {
    u64::try_from(get::<i64>(row, column)?)
        .map_err(|_| Error::internal(format!("sqlite: usage sum `{column}` is negative")))
}

/// SQLite's SUM of integers fails with "integer overflow" past `i64::MAX`, which would make the
/// ledger unreadable for good. Each count is summed as its high and low 32 bits instead (neither
/// sum can overflow before 2^31 rows) and put back together here, saturating at `i64::MAX`.
fn split_sums(columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("SUM({c} >> 32) AS {c}_hi, SUM({c} & 4294967295) AS {c}_lo"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sum [`split_sums`] selected for `column`, saturated at `i64::MAX`.
fn saturated_sum(row: &SqliteRow, column: &str) -> Result<u64> {
    let hi = u128::from(sum(row, &format!("{column}_hi"))?);
    let lo = u128::from(sum(row, &format!("{column}_lo"))?);
    let total = (hi << 32) + lo;
    Ok(u64::try_from(total.min(i64::MAX as u128)).unwrap_or(i64::MAX as u64))
}

#[async_trait]
impl UsageLedger for SqliteStore {
    async fn record_usage(&self, events: &[UsageEvent]) -> Result<()> {
        UsageEvent::validate_all(events)?;
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        // 11 parameters per row; SQLite allows 32,766 per statement.
        for chunk in events.chunks(2_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO usage_events (org, client, project, operation, model, input_tokens, \
                 output_tokens, embedding_tokens, latency_ms, job_id, at) ",
            );
            q.push_values(chunk, |mut row, e| {
                row.push_bind(e.scope.org.as_str())
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
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| map("record usage", e))?;
        }
        tx.commit().await.map_err(|e| map("commit usage", e))
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
            _ => "NULL",
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {key} AS key, {client} AS group_client, model, COUNT(*) AS calls, {} \
             FROM usage_events WHERE org = ",
            split_sums(&["input_tokens", "output_tokens", "embedding_tokens"])
        ));
        q.push_bind(query.scope.org.as_str());
        if let Some(client) = &query.scope.client {
            q.push(" AND client = ").push_bind(client.as_str());
        }
        if let Some(project) = &query.scope.project {
            q.push(" AND project = ").push_bind(project.as_str());
        }
        q.push(" AND at >= ")
            .push_bind(millis(query.from))
            .push(" AND at < ")
            .push_bind(millis(query.to))
            .push(" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
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
                    input_tokens: saturated_sum(row, "input_tokens")?,
                    output_tokens: saturated_sum(row, "output_tokens")?,
                    embedding_tokens: saturated_sum(row, "embedding_tokens")?,
                })
            })
            .collect()
    }
}

pub(crate) fn key_of(row: &SqliteRow) -> Result<ApiKey> {
    let role: String = get(row, "role")?;
    Ok(ApiKey {
        id: KeyId(get(row, "id")?),
        name: get(row, "name")?,
        scope: scope_of(row)?,
        role: role.parse()?,
        prefix: get(row, "prefix")?,
        created_at: instant(get(row, "created_at")?),
        expires_at: get::<Option<i64>>(row, "expires_at")?.map(instant),
        revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(instant),
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, key: NewApiKey) -> Result<ApiKey> {
        key.validate()?;
        let row = sqlx::query(
            "INSERT INTO api_keys (hash, prefix, name, org, client, project, role, created_at, \
             expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(&key.hash)
        .bind(&key.prefix)
        .bind(&key.name)
        .bind(&key.scope.org)
        .bind(key.scope.client.as_deref())
        .bind(key.scope.project.as_deref())
        .bind(key.role.as_str())
        .bind(millis(Utc::now()))
        .bind(key.expires_at.map(millis))
        .fetch_one(&self.writer)
        .await
        .map_err(|e| map("create key", e))?;
        key_of(&row)
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        sqlx::query("SELECT * FROM api_keys WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| map("find key", e))?
            .as_ref()
            .map(key_of)
            .transpose()
    }

    async fn keys(&self, org: &str) -> Result<Vec<ApiKey>> {
        sqlx::query("SELECT * FROM api_keys WHERE org = ? ORDER BY id DESC")
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
        // One writer transaction: the last-admin check and the revocation cannot interleave
        // with another revocation.
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| map("begin", e))?;
        let keys = sqlx::query("SELECT * FROM api_keys WHERE org = ?")
            .bind(org)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("read keys", e))?
            .iter()
            .map(key_of)
            .collect::<Result<Vec<_>>>()?;
        check_revoke(org, &keys, id, now)?;
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE org = ? AND id = ? \
             RETURNING *",
        )
        .bind(millis(now))
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
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map("count keys", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsweave_core::usage::{Operation, MAX_TOKENS_PER_EVENT};
    use opsweave_core::Scope;

    #[tokio::test]
    async fn sums_past_i64_saturate_instead_of_failing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("usage.db").display());
        let store = SqliteStore::open(&url).await.expect("open store");
        let at = Utc::now() - chrono::Duration::minutes(1);
        // What a store written before counts were bounded may hold: refused now on the way in.
        for tokens in [i64::MAX, 1, i64::MAX] {
            sqlx::query(
                "INSERT INTO usage_events (org, operation, model, input_tokens, output_tokens, \
                 embedding_tokens, latency_ms, at) VALUES ('acme', 'chat', 'm', ?, 5, 0, 1, ?)",
            )
            .bind(tokens)
            .bind(millis(at))
            .execute(&store.writer)
            .await
            .expect("insert");
        }
        let event = UsageEvent {
            scope: Scope::org("acme"),
            operation: Operation::Chat,
            model: "m".into(),
            input_tokens: MAX_TOKENS_PER_EVENT + 1,
            output_tokens: 0,
            embedding_tokens: 0,
            latency_ms: 1,
            job: None,
            at,
        };
        let err = store.record_usage(&[event]).await.unwrap_err();
        assert_eq!(
            err.location().field.as_deref(),
            Some("events[0].input_tokens")
        );
        let query = UsageQuery::parse(Scope::org("acme"), None, None, "model").expect("query");
        let totals = store
            .usage_totals(&query)
            .await
            .expect("totals are readable");
        assert_eq!(totals.len(), 1, "{totals:?}");
        assert_eq!(totals[0].calls, 3);
        assert_eq!(totals[0].input_tokens, i64::MAX as u64, "saturated");
        assert_eq!(totals[0].output_tokens, 15, "exact below the bound");
        assert_eq!(totals[0].embedding_tokens, 0);
    }
}
