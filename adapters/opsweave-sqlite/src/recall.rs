//! What recall and memory need from the SQLite store: ranked any-word full text with filters,
//! records by id, and deleting records with everything derived from them.

use crate::error::map;
use crate::rows::{bind_scope, get, scope_filter, search_hit_of};
use crate::store::record_of;
use crate::SqliteStore;
use opsweave_core::recall::{fold_word, ranked_query_words};
use opsweave_core::{Error, Record, RecordId, Result, Scope, SearchHit, TextQuery};

/// Ids per `IN (…)` list, well under SQLite's parameter limit.
const IDS_PER_STATEMENT: usize = 500;

/// Turns free text into an FTS5 query matching any of its words: each word quoted (no operator
/// injection), the words chosen as every store chooses them ([`ranked_query_words`]).
pub(crate) fn any_word_query(text: &str) -> Option<String> {
    let words = ranked_query_words(
        text.split(|c: char| !c.is_alphanumeric())
            .map(|w| fold_word(w).into_owned()),
    );
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(crate) async fn rank_text(
    store: &SqliteStore,
    scope: &Scope,
    query: &TextQuery,
) -> Result<Vec<SearchHit>> {
    let Some(matcher) = any_word_query(&query.text) else {
        return Err(Error::invalid("recall query has no words to look for").on_field("query"));
    };
    let mut sql = String::from(
        "SELECT records.id, records.title, records.entity, records.source_kind, \
         snippet(records_fts, 1, '[', ']', '…', 12) AS snippet, bm25(records_fts, 3.0, 1.0) AS rank \
         FROM records_fts JOIN records ON records.seq = records_fts.rowid \
         WHERE records_fts MATCH ? AND ",
    );
    scope_filter(&mut sql, scope, "records");
    if !query.entities.is_empty() {
        sql.push_str(&format!(
            " AND records.entity IN ({})",
            placeholders(query.entities.len())
        ));
    }
    if !query.source_kinds.is_empty() {
        sql.push_str(&format!(
            " AND records.source_kind IN ({})",
            placeholders(query.source_kinds.len())
        ));
    }
    sql.push_str(" ORDER BY rank, records.id LIMIT ?");
    let mut q = bind_scope(sqlx::query(&sql).bind(&matcher), scope);
    for entity in &query.entities {
        q = q.bind(entity.as_str());
    }
    for source in &query.source_kinds {
        q = q.bind(source);
    }
    let rows = q
        .bind(query.limit.clamp(1, 1000) as i64)
        .fetch_all(&store.pool)
        .await
        .map_err(|e| map("ranked search", e))?;
    rows.iter().map(search_hit_of).collect()
}

pub(crate) async fn records_by_id(
    store: &SqliteStore,
    scope: &Scope,
    ids: &[RecordId],
) -> Result<Vec<Record>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut sql = format!(
            "SELECT * FROM records WHERE id IN ({}) AND ",
            placeholders(chunk.len())
        );
        scope_filter(&mut sql, scope, "");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.raw());
        }
        let rows = bind_scope(q, scope)
            .fetch_all(&store.pool)
            .await
            .map_err(|e| map("read records", e))?;
        for row in &rows {
            found.push(record_of(row)?);
        }
    }
    Ok(found)
}

pub(crate) async fn delete_records(
    store: &SqliteStore,
    scope: &Scope,
    ids: &[RecordId],
) -> Result<u64> {
    let mut tx = store
        .writer
        .begin()
        .await
        .map_err(|e| map("begin delete", e))?;
    let mut deleted = 0;
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        // The rows of the records in scope: their seq keys RAW, tasks and the FTS row (by trigger).
        let mut sql = format!(
            "SELECT seq, id FROM records WHERE id IN ({}) AND ",
            placeholders(chunk.len())
        );
        scope_filter(&mut sql, scope, "");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.raw());
        }
        let rows = bind_scope(q, scope)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| map("find records to delete", e))?;
        if rows.is_empty() {
            continue;
        }
        let seqs: Vec<i64> = rows
            .iter()
            .map(|r| get::<i64>(r, "seq"))
            .collect::<Result<_>>()?;
        let found: Vec<i64> = rows
            .iter()
            .map(|r| get::<i64>(r, "id"))
            .collect::<Result<_>>()?;
        let by_seq = placeholders(seqs.len());
        let by_id = placeholders(found.len());
        for statement in [
            format!("DELETE FROM tasks WHERE seq IN ({by_seq})"),
            format!("DELETE FROM raw_items WHERE seq IN ({by_seq})"),
            format!("DELETE FROM records WHERE seq IN ({by_seq})"),
        ] {
            let mut q = sqlx::query(&statement);
            for seq in &seqs {
                q = q.bind(seq);
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| map("delete records", e))?;
        }
        let links = format!(
            "DELETE FROM links WHERE org = ? AND (from_id IN ({by_id}) OR to_id IN ({by_id}))"
        );
        let mut q = sqlx::query(&links).bind(&scope.org);
        for _ in 0..2 {
            for id in &found {
                q = q.bind(id);
            }
        }
        q.execute(&mut *tx)
            .await
            .map_err(|e| map("delete links", e))?;
        deleted += seqs.len() as u64;
    }
    if deleted > 0 {
        crate::store::raise_task_revision(&mut tx, &scope.org).await?;
    }
    tx.commit().await.map_err(|e| map("commit delete", e))?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::any_word_query;

    #[test]
    fn any_word_query_quotes_drops_repeats_and_stop_words() {
        assert_eq!(
            any_word_query("The renewal of the Acme renewal").as_deref(),
            Some("\"renewal\" OR \"acme\"")
        );
        assert_eq!(
            any_word_query("a OR b*\" NEAR(").as_deref(),
            Some("\"b\" OR \"near\"")
        );
        assert_eq!(
            any_word_query("to be or not").as_deref(),
            Some("\"to\" OR \"be\" OR \"or\" OR \"not\"")
        );
        assert_eq!(any_word_query("  ** "), None);
    }
}
