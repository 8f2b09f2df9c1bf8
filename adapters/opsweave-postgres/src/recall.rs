//! What recall and memory need from the PostgreSQL store: ranked any-word full text with filters,
//! records by id, and deleting records with everything derived from them.

use crate::error::map;
use crate::fulltext::{folded_words, tsquery};
use crate::retry::with_retries;
use crate::rows::{get, push_scope, record_of, search_hit_of};
use crate::PgStore;
use opsweave_core::recall::ranked_query_words;
use opsweave_core::{Error, Record, RecordId, Result, Scope, SearchHit, TextQuery};
use sqlx::QueryBuilder;

/// A `tsquery` text matching any of the query's words: words are folded runs of letters and
/// digits, each quoted as a lexeme, chosen as every store chooses them ([`ranked_query_words`]).
pub(crate) fn any_word_tsquery(text: &str) -> Option<String> {
    let words = ranked_query_words(folded_words(text));
    (!words.is_empty()).then(|| tsquery(&words, " | "))
}

pub(crate) async fn rank_text(
    store: &PgStore,
    scope: &Scope,
    query: &TextQuery,
) -> Result<Vec<SearchHit>> {
    let Some(tsquery) = any_word_tsquery(&query.text) else {
        return Err(Error::invalid("recall query has no words to look for").on_field("query"));
    };
    let tsquery = &tsquery;
    with_retries(|| async move {
        // Title words weigh 1.0, body words 0.4 (ts_rank's A and B weights), as `search`.
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
        if !query.entities.is_empty() {
            q.push(" AND r.entity = ANY(")
                .push_bind(
                    query
                        .entities
                        .iter()
                        .map(|e| e.as_str().to_string())
                        .collect::<Vec<String>>(),
                )
                .push(")");
        }
        if !query.source_kinds.is_empty() {
            q.push(" AND r.source_kind = ANY(")
                .push_bind(query.source_kinds.clone())
                .push(")");
        }
        q.push(" ORDER BY rank DESC, r.id LIMIT ")
            .push_bind(query.limit.clamp(1, 1000) as i64);
        let rows = q
            .build()
            .fetch_all(&store.pool)
            .await
            .map_err(|e| map("ranked search", e))?;
        rows.iter().map(search_hit_of).collect()
    })
    .await
}

pub(crate) async fn records_by_id(
    store: &PgStore,
    scope: &Scope,
    ids: &[RecordId],
) -> Result<Vec<Record>> {
    let raw: Vec<i64> = ids.iter().map(|id| id.raw()).collect();
    let raw = &raw;
    with_retries(|| async move {
        let mut q = QueryBuilder::new("SELECT * FROM core.records WHERE id = ANY(");
        q.push_bind(raw.clone()).push(") AND ");
        push_scope(&mut q, scope, "");
        let rows = q
            .build()
            .fetch_all(&store.pool)
            .await
            .map_err(|e| map("read records", e))?;
        rows.iter().map(record_of).collect()
    })
    .await
}

pub(crate) async fn delete_records(
    store: &PgStore,
    scope: &Scope,
    ids: &[RecordId],
) -> Result<u64> {
    let raw: Vec<i64> = ids.iter().map(|id| id.raw()).collect();
    let raw = &raw;
    with_retries(|| async move {
        let mut tx = store.pool.begin().await.map_err(|e| map("begin", e))?;
        let mut q = QueryBuilder::new("DELETE FROM core.records WHERE id = ANY(");
        q.push_bind(raw.clone()).push(") AND ");
        push_scope(&mut q, scope, "");
        q.push(" RETURNING id");
        let rows = q
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("delete records", e))?;
        let gone: Vec<i64> = rows
            .iter()
            .map(|r| get::<i64>(r, "id"))
            .collect::<Result<_>>()?;
        for statement in [
            "DELETE FROM core.tasks WHERE id = ANY($1)",
            "DELETE FROM raw.items WHERE id = ANY($1)",
        ] {
            sqlx::query(statement)
                .bind(&gone)
                .execute(&mut *tx)
                .await
                .map_err(|e| map("delete records", e))?;
        }
        sqlx::query(
            "DELETE FROM core.links WHERE org = $1 AND (from_id = ANY($2) OR to_id = ANY($2))",
        )
        .bind(&scope.org)
        .bind(&gone)
        .execute(&mut *tx)
        .await
        .map_err(|e| map("delete links", e))?;
        if !gone.is_empty() {
            crate::store::raise_task_revision(&mut tx, &scope.org).await?;
        }
        tx.commit().await.map_err(|e| map("commit delete", e))?;
        Ok(gone.len() as u64)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::any_word_tsquery;

    #[test]
    fn any_word_tsquery_ors_folded_words() {
        assert_eq!(
            any_word_tsquery("The Café of the café renewal").as_deref(),
            Some("'cafe' | 'renewal'")
        );
        assert_eq!(any_word_tsquery("a | b & !c").as_deref(), Some("'b' | 'c'"));
        assert_eq!(any_word_tsquery("to be").as_deref(), Some("'to' | 'be'"));
        assert_eq!(any_word_tsquery(" &| "), None);
    }
}
