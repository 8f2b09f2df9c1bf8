//! Undo after the source changed the task: the source's word stands.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave::{Config, RecordStore, Scope, TaskStatus, Weave};
use opsweave_sqlite::SqliteStore;
use opsweave_testkit::{id_of, TaskFixture};
use std::sync::Arc;

#[tokio::test]
async fn undo_never_reopens_what_the_source_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("u.db").display().to_string())
            .await
            .unwrap(),
    );
    let weave = Weave::from_parts(store.clone(), store.clone(), Config::default());
    let scope = Scope::org("acme");
    let mut fixture = TaskFixture::new("T-1", "renew the licence", Some(2), 0.5);
    let ingest = |fixture: &TaskFixture| {
        let (store, scope, item) = (store.clone(), scope.clone(), fixture.item(&scope));
        async move {
            store
                .ingest_batch(&scope, "tasks.csv", &[item], &[])
                .await
                .unwrap();
        }
    };
    ingest(&fixture).await;
    let id = id_of(&scope, "T-1");

    // Complete then undo: back to what the source says.
    weave.complete(&scope, id, "me").await.unwrap();
    let undone = weave.undo(&scope, id, "me").await.unwrap();
    assert_eq!(undone.status, TaskStatus::Todo);

    // Complete, then the source closes the task too: undo leaves it done.
    weave.complete(&scope, id, "me").await.unwrap();
    fixture.status = TaskStatus::Done;
    fixture.title = "renew the licence (closed)".into();
    ingest(&fixture).await;
    let kept = weave.undo(&scope, id, "me").await.unwrap();
    assert_eq!(kept.status, TaskStatus::Done, "the source closed it");
    assert_eq!(
        store.task(&scope, id).await.unwrap().status,
        TaskStatus::Done
    );
}
