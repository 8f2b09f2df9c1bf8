//! The PostgreSQL store passes the job queue conformance suite, each check on a fresh database.

mod support;

use opsweave_core::jobs::JobQueue;
use opsweave_postgres::PgStore;
use opsweave_testkit::run_queue_conformance;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_queue_conformance_suite() {
    let Some(server) = support::server_url("postgres_passes_the_queue_conformance_suite") else {
        return;
    };
    let databases = support::Databases::new(&server, "jobs");
    run_queue_conformance(|| async {
        let url = databases.create().await;
        let store = PgStore::open(&url).await.expect("open store");
        Arc::new(store) as Arc<dyn JobQueue>
    })
    .await;
    databases.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_share_the_queue() {
    let Some(server) = support::server_url("two_stores_on_one_database_share_the_queue") else {
        return;
    };
    let databases = support::Databases::new(&server, "jobs_shared");
    let url = databases.create().await;
    // Two pools stand in for two worker processes.
    let a = Arc::new(PgStore::open(&url).await.expect("open a"));
    let b = Arc::new(PgStore::open(&url).await.expect("open b"));
    let scope = opsweave_core::Scope::org("acme");
    let mut enqueued = std::collections::HashSet::new();
    for n in 0..100 {
        let job = opsweave_core::NewJob::new("embed", scope.clone(), serde_json::json!(n));
        enqueued.insert(a.enqueue(job).await.expect("enqueue").id);
    }
    let mut workers = Vec::new();
    for (w, store) in [a.clone(), b.clone(), a, b].into_iter().enumerate() {
        workers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let lease = std::time::Duration::from_secs(60);
            let mut mine = Vec::new();
            while let Some(job) = store.claim(&name, &[], lease).await.expect("claim") {
                store.complete(job.id, &name).await.expect("complete");
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for worker in workers {
        for id in worker.await.expect("worker") {
            assert!(seen.insert(id), "job {id} ran twice");
        }
    }
    assert_eq!(seen, enqueued);
    databases.drop_all().await;
}

#[tokio::test]
async fn the_jobs_table_is_vacuumed_after_a_fixed_number_of_dead_rows() {
    let Some(server) = support::server_url("the_jobs_table_is_vacuumed_after_a_fixed_number")
    else {
        return;
    };
    let databases = support::Databases::new(&server, "jobs_vacuum");
    let url = databases.create().await;
    let store = PgStore::open(&url).await.expect("open store");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let options: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(reloptions) FROM pg_class WHERE oid = 'ops.jobs'::regclass",
    )
    .fetch_all(&pool)
    .await
    .expect("read the table's options");
    assert!(
        options.contains(&"autovacuum_vacuum_scale_factor=0".to_string())
            && options.contains(&"autovacuum_vacuum_threshold=10000".to_string()),
        "{options:?}"
    );
    pool.close().await;
    store.close().await;
    databases.drop_all().await;
}

/// Prints how many jobs per second 8 workers claim and complete (a measurement, not a check):
/// `cargo test --release -p opsweave-postgres --test jobs -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; run by hand"]
async fn queue_throughput() {
    let Some(server) = support::server_url("queue_throughput") else {
        return;
    };
    let databases = support::Databases::new(&server, "jobs_speed");
    let store = Arc::new(
        PgStore::open(&format!("{}?max_connections=16", databases.create().await))
            .await
            .expect("open"),
    );
    let scope = opsweave_core::Scope::org("acme");
    const JOBS: usize = 5_000;
    for n in 0..JOBS {
        let job = opsweave_core::NewJob::new("embed", scope.clone(), serde_json::json!(n));
        store.enqueue(job).await.expect("enqueue");
    }
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let lease = std::time::Duration::from_secs(60);
            let mut done = 0usize;
            while let Some(job) = store.claim(&name, &[], lease).await.expect("claim") {
                store.complete(job.id, &name).await.expect("complete");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("worker");
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(total, JOBS);
    println!(
        "postgres queue: {JOBS} jobs claimed and completed by 8 workers in {secs:.2} s = {:.0} jobs/s",
        JOBS as f64 / secs
    );
    databases.drop_all().await;
}
