//! The PostgreSQL store exports every row and imports it into another database, ids kept and
//! identity sequences moved past them.

mod support;

use opsweave_postgres::PgStore;
use opsweave_testkit::{snapshot_copies_every_kind, SnapshotBackend};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_copies_every_kind_into_postgres() {
    let Some(server) = support::server_url("postgres_copies_every_kind_into_postgres") else {
        return;
    };
    let databases = support::Databases::new(&server, "snapshot");
    let mut stores: Vec<Arc<dyn SnapshotBackend>> = Vec::new();
    for _ in 0..2 {
        let url = databases.create().await;
        stores.push(Arc::new(PgStore::open(&url).await.expect("open store")));
    }
    let target = stores.pop().expect("two stores");
    let source = stores.pop().expect("two stores");
    snapshot_copies_every_kind(source.clone(), target.clone()).await;
    drop((source, target));
    databases.drop_all().await;
}
