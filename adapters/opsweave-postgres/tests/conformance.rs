//! The PostgreSQL store passes the shared conformance suite, each check on a fresh database.

mod support;

use opsweave_postgres::PgStore;
use opsweave_testkit::{run_conformance, Backend};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_conformance_suite() {
    let Some(server) = support::server_url("postgres_passes_the_conformance_suite") else {
        return;
    };
    let databases = support::Databases::new(&server, "conf");
    run_conformance(|| async {
        let url = databases.create().await;
        let store = PgStore::open(&url).await.expect("open store");
        Arc::new(store) as Arc<dyn Backend>
    })
    .await;
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_match_runs_and_reviews() {
    let Some(server) = support::server_url("postgres_stores_match_runs_and_reviews") else {
        return;
    };
    let databases = support::Databases::new(&server, "match");
    let store = PgStore::open(&databases.create().await)
        .await
        .expect("open store");
    opsweave_testkit::match_runs_and_review(Arc::new(store)).await;
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_metering_suite() {
    let Some(server) = support::server_url("postgres_passes_the_metering_suite") else {
        return;
    };
    let databases = support::Databases::new(&server, "metering");
    opsweave_testkit::run_metering_conformance(|| async {
        let url = databases.create().await;
        let store = PgStore::open(&url).await.expect("open store");
        Arc::new(store) as Arc<dyn opsweave_testkit::Metering>
    })
    .await;
    databases.drop_all().await;
}
