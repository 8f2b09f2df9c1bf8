//! Hybrid recall (dense k-NN + BM25, fused by reciprocal rank) and memory notes that recall finds
//! the moment they are written.

use crate::Weave;
use chrono::{DateTime, Utc};
use opsweave_core::mapping::Normalised;
use opsweave_core::recall::{
    embedding_text, fuse, title_from_text, FusedHit, Ranked, Ranker, RecallHit, RecallOptions,
};
use opsweave_core::vector::check_stored_model;
use opsweave_core::{
    EmbedKind, EntityKind, Error, ErrorKind, Fields, IngestItem, Record, RecordId, Result, Scope,
    SearchHit, SourceRef, TextQuery, Value, VectorFilter, VectorItem,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The source kind of memory notes.
pub const MEMORY_SOURCE: &str = "memory";

/// The longest memory note, in bytes. A note is embedded while its caller waits: 32 KiB is about
/// 8,000 tokens, a few seconds of CPU with the test model; a 100 KB note took 19 CPU seconds and
/// 1.5 GB of memory. Longer texts are documents: ingest them and let an embed job do the work.
pub const MAX_MEMORY_BYTES: usize = 32 * 1024;

/// The most tags a memory may carry, and the longest tag.
const MAX_TAGS: usize = 32;
const MAX_TAG_CHARS: usize = 64;

/// Characters of a note's text its title keeps.
const TITLE_CHARS: usize = 80;

/// Characters of a record's text a hit shows when BM25 gave no snippet.
const SNIPPET_CHARS: usize = 160;

impl Weave {
    /// Finds the records of `scope` that best answer `query`: dense k-NN and/or BM25 (per
    /// `options.mode`) fused by reciprocal rank, filtered by entity and source kind, optionally
    /// favouring recent records; each hit says which rankers found it and why it ranked.
    pub async fn recall(
        &self,
        scope: &Scope,
        query: &str,
        options: &RecallOptions,
    ) -> Result<Vec<RecallHit>> {
        scope.validate()?;
        options.validate()?;
        let query = query.trim();
        if query.is_empty() {
            return Err(Error::invalid("recall query is empty").on_field("query"));
        }
        // As for a note: a model splits a long text into chunks and embeds every one.
        if query.len() > MAX_MEMORY_BYTES {
            return Err(Error::invalid(format!(
                "a recall query holds at most {MAX_MEMORY_BYTES} bytes, this one has {}",
                query.len()
            ))
            .on_field("query"));
        }
        let depth = options.candidates();
        let dense = async {
            if !options.mode.uses_dense() {
                return Ok(None);
            }
            let embedder = self.embedder().await?;
            let vectors = self.vector_index()?;
            let info = embedder.info().clone();
            // A query vector of another model than the stored vectors' ranks noise; checked
            // before the model is asked (a remote model's call costs money).
            check_stored_model(&info, vectors.stored_model(&info.name).await?.as_ref())?;
            let out = self
                .embed_metered(
                    &*embedder,
                    &[query.to_string()],
                    EmbedKind::Query,
                    scope,
                    None,
                )
                .await?;
            let filter = VectorFilter {
                scope: scope.clone(),
                entities: options.entities.clone(),
                source_kinds: options.source_kinds.clone(),
            };
            let hits = vectors
                .knn(&info.name, &out.vectors[0], depth, &filter)
                .await?;
            Ok::<_, Error>(Some(Ranked {
                ranker: Ranker::Dense,
                hits: hits
                    .into_iter()
                    .map(|h| (h.id, f64::from(h.similarity)))
                    .collect(),
            }))
        };
        let text = async {
            if !options.mode.uses_text() {
                return Ok(None);
            }
            let text_query = TextQuery {
                text: query.to_string(),
                limit: depth,
                entities: options.entities.clone(),
                source_kinds: options.source_kinds.clone(),
            };
            match self.store().rank_text(scope, &text_query).await {
                Ok(hits) => Ok(Some(hits)),
                // A query of only symbols has no words for BM25; dense recall may still answer it.
                Err(e) if e.kind() == ErrorKind::InvalidInput && options.mode.uses_dense() => {
                    Ok(Some(Vec::new()))
                }
                Err(e) => Err(e),
            }
        };
        let (dense, text) = tokio::join!(dense, text);
        let (dense, text): (Option<Ranked>, Option<Vec<SearchHit>>) = (dense?, text?);
        let mut snippets: HashMap<RecordId, String> = HashMap::new();
        let mut lists = Vec::with_capacity(2);
        if let Some(dense) = dense {
            lists.push(dense);
        }
        if let Some(hits) = text {
            lists.push(Ranked {
                ranker: Ranker::Bm25,
                hits: hits.iter().map(|h| (h.id, h.score)).collect(),
            });
            snippets.extend(hits.into_iter().map(|h| (h.id, h.snippet)));
        }

        // With recency every candidate's age matters before the cut; without, only the top k
        // need their records.
        let now = Utc::now();
        let mut records: HashMap<RecordId, Record> = HashMap::new();
        if options.recency.is_some() {
            let ids: Vec<RecordId> = candidate_ids(&lists);
            records = self.records_map(scope, &ids).await?;
        }
        let mut fused = fuse(&lists, &options.fusion, options.recency.as_ref(), |id| {
            records.get(&id).map(|r| age_days(r.updated_at, now))
        });
        // A record deleted since a ranker read it is no answer, and must not take the place of
        // one: with recency the records are all known before the cut, without they are read
        // for the next best until k are found (or the candidates run out).
        if options.recency.is_some() {
            fused.retain(|h| records.contains_key(&h.id));
        }
        let mut hits = Vec::with_capacity(options.k);
        let mut rest = fused.into_iter();
        while hits.len() < options.k {
            let next: Vec<FusedHit> = rest.by_ref().take(options.k - hits.len()).collect();
            if next.is_empty() {
                break;
            }
            if options.recency.is_none() {
                let ids: Vec<RecordId> = next.iter().map(|h| h.id).collect();
                records.extend(self.records_map(scope, &ids).await?);
            }
            for explanation in next {
                let Some(record) = records.get(&explanation.id) else {
                    continue;
                };
                // A title-only match has an empty snippet: the record's own text says more.
                let snippet = snippets
                    .remove(&explanation.id)
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| excerpt(record));
                hits.push(RecallHit {
                    id: record.id,
                    title: record.title.clone(),
                    entity: record.entity,
                    source_kind: record.source.kind.clone(),
                    snippet,
                    explanation,
                });
            }
        }
        Ok(hits)
    }

    /// Stores a memory note (a record of entity `note` from source `memory`) and its vector,
    /// so that recall finds it at once. Returns its id. Nothing is stored when embedding fails.
    pub async fn remember(&self, scope: &Scope, text: &str, tags: &[String]) -> Result<RecordId> {
        scope.validate()?;
        let now = Utc::now();
        let external_id = memory_external_id(now);
        let item = memory_item(scope, &external_id, text, tags, now, now)?;
        let id = item.normalised.record.id;
        self.write_memory(scope, item, true).await?;
        Ok(id)
    }

    /// Replaces a memory's text (and tags, when given) and its vector.
    pub async fn update_memory(
        &self,
        scope: &Scope,
        id: RecordId,
        text: &str,
        tags: Option<&[String]>,
    ) -> Result<Record> {
        scope.validate()?;
        let old = self.memory(scope, id).await?;
        let old_tags: Vec<String> = match old.fields.get("tags") {
            Some(Value::List(items)) => items.iter().map(Value::to_text).collect(),
            _ => Vec::new(),
        };
        let tags = tags.map_or(old_tags, <[String]>::to_vec);
        let created = old.created_at.unwrap_or(old.updated_at);
        // The note's own scope, not the (possibly wider) one it was found in: its id derives
        // from it, and another scope would write a second note beside the old one.
        let item = memory_item(
            &old.scope,
            &old.source.external_id,
            text,
            &tags,
            created,
            Utc::now(),
        )?;
        if item.normalised.record.id != id {
            return Err(Error::internal(format!(
                "memory {id}: its text would be written under id {}",
                item.normalised.record.id
            )));
        }
        self.write_memory(&old.scope, item, false).await?;
        self.store().record(scope, id).await
    }

    /// Removes a memory for good: its record, full-text row and vectors.
    pub async fn forget(&self, scope: &Scope, id: RecordId) -> Result<()> {
        scope.validate()?;
        self.memory(scope, id).await?;
        // The vector first: a record left without its vector is re-embedded by the next run, a
        // vector left without its record would be an answer pointing nowhere.
        if let Some(vectors) = self.vectors() {
            vectors.delete(scope, &[id]).await?;
        }
        self.store().delete_records(scope, &[id]).await?;
        Ok(())
    }

    /// The memory `id`; `InvalidInput` when the record is not a memory note.
    async fn memory(&self, scope: &Scope, id: RecordId) -> Result<Record> {
        let record = self.store().record(scope, id).await?;
        if record.source.kind != MEMORY_SOURCE || record.entity != EntityKind::Note {
            let entity = record.entity.to_string();
            let article = if entity.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(Error::invalid(format!(
                "record {id} is {article} {entity} from {}, not a memory: only memories are \
                 changed or forgotten this way",
                record.source.kind
            ))
            .on_field("id"));
        }
        Ok(record)
    }

    /// Embeds the note, stores the record, then its vector; a new note whose vector cannot be
    /// stored is removed again so that no half-written memory remains.
    async fn write_memory(&self, scope: &Scope, item: IngestItem, new: bool) -> Result<()> {
        let embedder = self.embedder().await?;
        let vectors = self.vector_index()?;
        let info = embedder.info().clone();
        // Before anything is written: a refused vector would leave an updated note's new text
        // beside its old vector.
        check_stored_model(&info, vectors.stored_model(&info.name).await?.as_ref())?;
        let record = &item.normalised.record;
        let text = embedding_text(record);
        // Metered before the note is stored: a ledger that fails then fails the call with
        // nothing written, so a retry stores one note, not two.
        let out = self
            .embed_metered(&*embedder, &[text], EmbedKind::Document, scope, None)
            .await?;
        let vector = VectorItem {
            id: record.id,
            scope: record.scope.clone(),
            entity: record.entity,
            source_kind: record.source.kind.clone(),
            content_hash: record.content_hash as u64,
            vector: out.vectors[0].clone(),
        };
        let id = record.id;
        self.store()
            .ingest_batch(scope, MEMORY_SOURCE, std::slice::from_ref(&item), &[])
            .await?;
        if let Err(e) = vectors.upsert(&info, vec![vector]).await {
            if new {
                let _ = self.store().delete_records(scope, &[id]).await;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn records_map(
        &self,
        scope: &Scope,
        ids: &[RecordId],
    ) -> Result<HashMap<RecordId, Record>> {
        Ok(self
            .store()
            .records_by_id(scope, ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect())
    }
}

fn candidate_ids(lists: &[Ranked]) -> Vec<RecordId> {
    let mut ids: Vec<RecordId> = lists
        .iter()
        .flat_map(|l| l.hits.iter().map(|(id, _)| *id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn age_days(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (now - at).num_milliseconds() as f64 / 86_400_000.0
}

fn excerpt(record: &Record) -> String {
    let text = if record.body.trim().is_empty() {
        &record.title
    } else {
        &record.body
    };
    let mut out: String = text.trim().chars().take(SNIPPET_CHARS).collect();
    if text.trim().chars().count() > SNIPPET_CHARS {
        out.push('…');
    }
    out
}

/// A fresh external id for a memory: the time in nanoseconds and a process counter, so two
/// notes written in the same instant still differ.
fn memory_external_id(now: DateTime<Utc>) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    format!("{nanos:x}-{:x}-{n:x}", std::process::id())
}

/// The ingest item of a memory note, after checking its text and tags.
fn memory_item(
    scope: &Scope,
    external_id: &str,
    text: &str,
    tags: &[String],
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) -> Result<IngestItem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid("a memory needs some text").on_field("text"));
    }
    if text.len() > MAX_MEMORY_BYTES {
        return Err(Error::invalid(format!(
            "a memory holds at most {MAX_MEMORY_BYTES} bytes of text, this one has {} (ingest \
             longer texts as documents, then embed them)",
            text.len()
        ))
        .on_field("text"));
    }
    if tags.len() > MAX_TAGS {
        return Err(
            Error::invalid(format!("a memory takes at most {MAX_TAGS} tags")).on_field("tags"),
        );
    }
    let mut clean: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
            return Err(Error::invalid(format!(
                "tag `{tag}` must have 1 to {MAX_TAG_CHARS} characters"
            ))
            .on_field("tags"));
        }
        if !clean.iter().any(|t| t == tag) {
            clean.push(tag.to_string());
        }
    }
    let mut fields = Fields::new();
    if !clean.is_empty() {
        fields.insert(
            "tags".into(),
            Value::List(clean.iter().cloned().map(Value::Text).collect()),
        );
    }
    let title = title_from_text(text, TITLE_CHARS);
    let body = text.to_string();
    let raw_json = serde_json::json!({ "text": text, "tags": clean }).to_string();
    let fields_json = serde_json::to_string(&fields)
        .map_err(|e| Error::internal(format!("memory fields cannot be serialised: {e}")))?;
    let entity = EntityKind::Note;
    let content_hash = Record::compute_hash(&[
        entity.as_str(),
        &title,
        &body,
        "",
        &fields_json,
        "",
        &raw_json,
    ]);
    let record = Record {
        id: RecordId::derive(scope, MEMORY_SOURCE, external_id),
        scope: scope.clone(),
        source: SourceRef {
            kind: MEMORY_SOURCE.into(),
            external_id: external_id.to_string(),
            url: None,
        },
        entity,
        title,
        body,
        fields,
        created_at: Some(created),
        updated_at: updated,
        content_hash,
    };
    Ok(IngestItem {
        normalised: Normalised {
            record,
            task: None,
            links: Vec::new(),
            raw_json,
            fields_json,
            line: 0,
        },
        importance: 0.0,
        importance_reason: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_items_check_text_and_tags() {
        let scope = Scope::org("acme");
        let now = Utc::now();
        let item = memory_item(
            &scope,
            "m1",
            "  Acme wants the Q3 renewal priced in EUR \n",
            &["acme".into(), "renewal".into(), "acme".into()],
            now,
            now,
        )
        .unwrap();
        let r = &item.normalised.record;
        assert_eq!(r.entity, EntityKind::Note);
        assert_eq!(r.source.kind, "memory");
        assert_eq!(r.title, "Acme wants the Q3 renewal priced in EUR");
        assert_eq!(
            r.fields.get("tags"),
            Some(&Value::List(vec![
                Value::Text("acme".into()),
                Value::Text("renewal".into())
            ]))
        );
        assert_eq!(r.id, RecordId::derive(&scope, "memory", "m1"));
        for (text, tags, field) in [
            ("   ", vec![], "text"),
            ("ok", vec![" ".to_string()], "tags"),
            ("ok", vec!["x".repeat(65)], "tags"),
        ] {
            let err = memory_item(&scope, "m", text, &tags, now, now).unwrap_err();
            assert_eq!(err.location().field.as_deref(), Some(field));
        }
        let long = "x".repeat(MAX_MEMORY_BYTES + 1);
        assert!(memory_item(&scope, "m", &long, &[], now, now).is_err());
    }

    #[test]
    fn memory_ids_differ_in_the_same_instant() {
        let now = Utc::now();
        assert_ne!(memory_external_id(now), memory_external_id(now));
    }
}
