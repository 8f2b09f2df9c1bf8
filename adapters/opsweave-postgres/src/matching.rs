//! Resolver runs and the review queue (the matching half of `RecordStore`) on PostgreSQL.

use crate::error::map;
use crate::rows::{get, stored, text};
use crate::store::{upsert_links, LinkRow, ROWS_PER_STATEMENT};
use crate::PgStore;
use chrono::Utc;
use opsweave_core::{Error, Link, MatchRun, RecordId, Result, ReviewItem, ReviewStatus, Scope};
use sqlx::postgres::{PgConnection, PgRow};
use std::collections::HashMap;

/// The evidence prefix of the links a resolver writes, so a full run can replace its own.
fn match_evidence_prefix(resolver: &str) -> String {
    format!("resolve:{resolver}:")
}

/// The columns [`review_of`] reads.
const REVIEW_COLUMNS: &str =
    "resolver, left_id, right_id, score, probability, explanation::text AS explanation, status";

pub(crate) fn review_of(row: &PgRow) -> Result<ReviewItem> {
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

fn link_rows(links: &[Link]) -> Vec<LinkRow<'_>> {
    links
        .iter()
        .map(|l| LinkRow {
            kind: l.kind.as_str(),
            from: l.from.raw(),
            to: l.to.raw(),
            weight: l.weight,
            evidence: &l.evidence,
        })
        .collect()
}

impl PgStore {
    /// See `RecordStore::save_match_run`.
    pub(crate) async fn save_match_run_tx(
        &self,
        tx: &mut PgConnection,
        scope: &Scope,
        run: &MatchRun,
        explanations: &[String],
    ) -> Result<()> {
        let now = stored(Utc::now());
        if run.replace {
            sqlx::query("DELETE FROM core.links WHERE org = $1 AND starts_with(evidence, $2)")
                .bind(scope.org.as_str())
                .bind(match_evidence_prefix(&run.resolver))
                .execute(&mut *tx)
                .await
                .map_err(|e| map("clear match links", e))?;
            sqlx::query("DELETE FROM core.match_members WHERE org = $1 AND resolver = $2")
                .bind(scope.org.as_str())
                .bind(run.resolver.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| map("clear match members", e))?;
            sqlx::query(
                "DELETE FROM core.match_review WHERE org = $1 AND resolver = $2 \
                 AND status = 'pending'",
            )
            .bind(scope.org.as_str())
            .bind(run.resolver.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| map("clear review queue", e))?;
        }
        sqlx::query(
            "INSERT INTO core.match_state (org, resolver, state, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org, resolver) DO UPDATE SET state = excluded.state, \
               updated_at = excluded.updated_at",
        )
        .bind(scope.org.as_str())
        .bind(text(&run.resolver))
        .bind(text(&run.state))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("save match state", e))?;
        for chunk in run.members.chunks(ROWS_PER_STATEMENT) {
            let ids: Vec<i64> = chunk.iter().map(|id| id.raw()).collect();
            sqlx::query(
                "INSERT INTO core.match_members (org, resolver, record_id) \
                 SELECT $1, $2, id FROM UNNEST($3::bigint[]) AS n(id) ON CONFLICT DO NOTHING",
            )
            .bind(scope.org.as_str())
            .bind(text(&run.resolver))
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(|e| map("save match members", e))?;
        }
        // A pair given twice counts once, the later one winning (one statement may not update a
        // row twice).
        let mut last: HashMap<(i64, i64), usize> = HashMap::with_capacity(run.review.len());
        for (i, item) in run.review.iter().enumerate() {
            last.insert((item.left.raw(), item.right.raw()), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        for chunk in keep.chunks(ROWS_PER_STATEMENT) {
            let left: Vec<i64> = chunk.iter().map(|&i| run.review[i].left.raw()).collect();
            let right: Vec<i64> = chunk.iter().map(|&i| run.review[i].right.raw()).collect();
            let score: Vec<f64> = chunk.iter().map(|&i| run.review[i].score).collect();
            let probability: Vec<f64> = chunk.iter().map(|&i| run.review[i].probability).collect();
            let explanation: Vec<&str> = chunk.iter().map(|&i| explanations[i].as_str()).collect();
            // A pair a person decided stays decided.
            sqlx::query(
                "INSERT INTO core.match_review AS m (org, resolver, left_id, right_id, score, \
                   probability, explanation, status) \
                 SELECT $1, $2, n.l, n.r, n.s, n.p, n.e::json, 'pending' \
                 FROM UNNEST($3::bigint[], $4::bigint[], $5::float8[], $6::float8[], $7::text[]) \
                   AS n(l, r, s, p, e) \
                 ON CONFLICT (org, resolver, left_id, right_id) DO UPDATE SET \
                   score = excluded.score, probability = excluded.probability, \
                   explanation = excluded.explanation \
                 WHERE m.status = 'pending'",
            )
            .bind(scope.org.as_str())
            .bind(text(&run.resolver))
            .bind(left)
            .bind(right)
            .bind(score)
            .bind(probability)
            .bind(explanation)
            .execute(&mut *tx)
            .await
            .map_err(|e| map("save review queue", e))?;
        }
        let links = link_rows(&run.links);
        for chunk in links.chunks(ROWS_PER_STATEMENT) {
            upsert_links(tx, scope, chunk, true).await?;
        }
        Ok(())
    }

    /// See `RecordStore::match_state`.
    pub(crate) async fn match_state_once(
        &self,
        scope: &Scope,
        resolver: &str,
    ) -> Result<Option<(String, Vec<RecordId>)>> {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM core.match_state WHERE org = $1 AND resolver = $2",
        )
        .bind(scope.org.as_str())
        .bind(resolver)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map("read match state", e))?;
        let Some(state) = state else {
            return Ok(None);
        };
        let members: Vec<i64> = sqlx::query_scalar(
            "SELECT record_id FROM core.match_members WHERE org = $1 AND resolver = $2 \
             ORDER BY record_id",
        )
        .bind(scope.org.as_str())
        .bind(resolver)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map("read match members", e))?;
        Ok(Some((
            state,
            members.into_iter().map(RecordId::from_raw).collect(),
        )))
    }

    /// See `RecordStore::review_queue`.
    pub(crate) async fn review_queue_once(
        &self,
        scope: &Scope,
        resolver: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>> {
        let mut q = sqlx::QueryBuilder::new(format!(
            "SELECT {REVIEW_COLUMNS} FROM core.match_review WHERE status = 'pending' AND org = "
        ));
        q.push_bind(scope.org.as_str());
        if let Some(r) = resolver {
            q.push(" AND resolver = ").push_bind(r);
        }
        q.push(" ORDER BY probability DESC, left_id, right_id LIMIT ")
            .push_bind(limit.clamp(1, 10_000) as i64);
        let rows = q
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| map("read review queue", e))?;
        rows.iter().map(review_of).collect()
    }

    /// See `RecordStore::decide_review`.
    pub(crate) async fn decide_review_once(
        &self,
        scope: &Scope,
        resolver: &str,
        pair: (RecordId, RecordId),
        accept: bool,
        link: Option<&Link>,
    ) -> Result<ReviewItem> {
        let status = if accept {
            ReviewStatus::Accepted
        } else {
            ReviewStatus::Rejected
        };
        let mut tx = self.pool.begin().await.map_err(|e| map("begin", e))?;
        let row = sqlx::query(&format!(
            "SELECT {REVIEW_COLUMNS} FROM core.match_review \
             WHERE org = $1 AND resolver = $2 AND left_id = $3 AND right_id = $4 FOR UPDATE"
        ))
        .bind(scope.org.as_str())
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
            "UPDATE core.match_review SET status = $1, decided_at = $2 \
             WHERE org = $3 AND resolver = $4 AND left_id = $5 AND right_id = $6",
        )
        .bind(status.as_str())
        .bind(stored(Utc::now()))
        .bind(scope.org.as_str())
        .bind(resolver)
        .bind(pair.0.raw())
        .bind(pair.1.raw())
        .execute(&mut *tx)
        .await
        .map_err(|e| map("decide review pair", e))?;
        if let (true, Some(link)) = (accept, link) {
            upsert_links(&mut tx, scope, &link_rows(std::slice::from_ref(link)), true).await?;
        }
        tx.commit().await.map_err(|e| map("commit review", e))?;
        item.status = status;
        Ok(item)
    }
}
