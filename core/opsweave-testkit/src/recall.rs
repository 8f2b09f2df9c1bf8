//! What recall and memory need from a record store: ranked any-word full text with filters,
//! records by id, and deleting records with their full-text rows, tasks, links and raw payloads.

use crate::{id_of, Backend, TaskFixture};
use opsweave_core::{ErrorKind, LinkKind, RecordId, Scope, TextQuery};
use std::sync::Arc;

/// Checks `rank_text`, `records_by_id` and `delete_records` on a fresh store.
pub async fn recall_text_and_delete(store: Arc<dyn Backend>) {
    let scope = Scope::org("recall");
    let other = Scope::org("elsewhere");
    let mut fixtures = [
        TaskFixture::new("a", "Acme renewal discount", None, 0.5),
        TaskFixture::new("b", "Acme invoice overdue", None, 0.5),
        TaskFixture::new("c", "Globex renewal call", None, 0.5),
        TaskFixture::new("d", "Kitchen rota", None, 0.5),
    ];
    fixtures[0].links = vec![(LinkKind::References, "c".into())];
    let items: Vec<_> = fixtures.iter().map(|f| f.item(&scope)).collect();
    store
        .ingest_batch(&scope, "recall.json", &items, &[])
        .await
        .unwrap();
    let elsewhere = TaskFixture::new("a", "Acme renewal discount", None, 0.5).item(&other);
    store
        .ingest_batch(&other, "recall.json", &[elsewhere], &[])
        .await
        .unwrap();

    // Any word matches; the record holding more of them ranks first; stop words are ignored.
    let query = TextQuery {
        text: "the Acme renewal".into(),
        limit: 10,
        ..TextQuery::default()
    };
    let hits = store.rank_text(&scope, &query).await.unwrap();
    let ids: Vec<RecordId> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), 3, "any word of the query should match: {hits:?}");
    assert_eq!(
        ids[0],
        id_of(&scope, "a"),
        "both words should rank first: {hits:?}"
    );
    assert!(!ids.contains(&id_of(&scope, "d")));
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score, "hits must come best first");
    }
    let limited = TextQuery {
        limit: 1,
        ..query.clone()
    };
    assert_eq!(store.rank_text(&scope, &limited).await.unwrap().len(), 1);
    let filtered = TextQuery {
        source_kinds: vec!["mail".into()],
        ..query.clone()
    };
    assert!(store.rank_text(&scope, &filtered).await.unwrap().is_empty());
    let by_entity = TextQuery {
        entities: vec![opsweave_core::EntityKind::Task],
        ..query.clone()
    };
    assert_eq!(store.rank_text(&scope, &by_entity).await.unwrap().len(), 3);
    let symbols = TextQuery {
        text: "?? --".into(),
        ..query.clone()
    };
    let err = store.rank_text(&scope, &symbols).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // By id: only records of the scope, unknown ids left out.
    let wanted = [id_of(&scope, "a"), id_of(&scope, "c"), id_of(&scope, "zz")];
    let mut found: Vec<RecordId> = store
        .records_by_id(&scope, &wanted)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    found.sort();
    let mut expected = vec![id_of(&scope, "a"), id_of(&scope, "c")];
    expected.sort();
    assert_eq!(found, expected);
    assert!(store
        .records_by_id(&other, &[id_of(&scope, "c")])
        .await
        .unwrap()
        .is_empty());

    // Deleting takes the record, its task, raw payload, links and full-text row; another
    // scope's ids are untouched.
    let gone = store
        .delete_records(&scope, &[id_of(&scope, "a"), id_of(&other, "a")])
        .await
        .unwrap();
    assert_eq!(gone, 1, "only the record in scope goes");
    assert_eq!(
        store
            .record(&scope, id_of(&scope, "a"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .task(&scope, id_of(&scope, "a"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(store.raw_payload(&scope, id_of(&scope, "a")).await.is_err());
    let links = store
        .links_among(&scope, &[id_of(&scope, "a"), id_of(&scope, "c")])
        .await
        .unwrap();
    assert!(
        links.is_empty(),
        "links of a deleted record remain: {links:?}"
    );
    let discount = TextQuery {
        text: "discount".into(),
        limit: 10,
        ..TextQuery::default()
    };
    assert!(store.rank_text(&scope, &discount).await.unwrap().is_empty());
    assert!(store
        .search(&scope, "discount", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.rank_text(&other, &discount).await.unwrap().len(), 1);
    assert!(store.record(&other, id_of(&other, "a")).await.is_ok());
    assert_eq!(
        store
            .delete_records(&scope, &[id_of(&scope, "a")])
            .await
            .unwrap(),
        0
    );
}
