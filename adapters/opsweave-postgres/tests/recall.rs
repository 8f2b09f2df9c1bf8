//! The recall and memory store checks of the testkit on PostgreSQL.

mod support;

use opsweave_postgres::PgStore;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ranks_any_word_and_deletes_records_whole() {
    let Some(server) = support::server_url("postgres_ranks_any_word_and_deletes_records_whole")
    else {
        return;
    };
    let databases = support::Databases::new(&server, "recall");
    let store = PgStore::open(&databases.create().await)
        .await
        .expect("open store");
    opsweave_testkit::recall_text_and_delete(Arc::new(store)).await;
    databases.drop_all().await;
}
