//! Usage sums on PostgreSQL stay readable past `i64::MAX` (they saturate), and absurd counts are
//! refused on the way in.

mod support;

use chrono::Utc;
use opsweave_core::usage::{Operation, UsageEvent, UsageLedger, UsageQuery, MAX_TOKENS_PER_EVENT};
use opsweave_core::Scope;
use opsweave_postgres::PgStore;
use sqlx::{Connection, PgConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_usage_sums_past_i64_saturate_instead_of_failing() {
    let Some(server) =
        support::server_url("postgres_usage_sums_past_i64_saturate_instead_of_failing")
    else {
        return;
    };
    let databases = support::Databases::new(&server, "usage_sat");
    let url = databases.create().await;
    let store = PgStore::open(&url).await.expect("open store");
    let at = Utc::now() - chrono::Duration::minutes(1);
    // What a store written before counts were bounded may hold.
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    for tokens in [i64::MAX, 1, i64::MAX] {
        sqlx::query(
            "INSERT INTO ops.usage_events (org, operation, model, input_tokens, output_tokens, \
             embedding_tokens, latency_ms, at) VALUES ('acme', 'chat', 'm', $1, 5, 0, 1, $2)",
        )
        .bind(tokens)
        .bind(at)
        .execute(&mut conn)
        .await
        .expect("insert");
    }
    conn.close().await.expect("close");
    let event = UsageEvent {
        scope: Scope::org("acme"),
        operation: Operation::Chat,
        model: "m".into(),
        input_tokens: MAX_TOKENS_PER_EVENT + 1,
        output_tokens: 0,
        embedding_tokens: 0,
        latency_ms: 1,
        job: None,
        at,
    };
    let err = store.record_usage(&[event]).await.expect_err("refused");
    assert_eq!(
        err.location().field.as_deref(),
        Some("events[0].input_tokens")
    );
    let query = UsageQuery::parse(Scope::org("acme"), None, None, "model").expect("query");
    let totals = store
        .usage_totals(&query)
        .await
        .expect("totals are readable");
    assert_eq!(totals.len(), 1, "{totals:?}");
    assert_eq!(totals[0].calls, 3);
    assert_eq!(totals[0].input_tokens, i64::MAX as u64, "saturated");
    assert_eq!(totals[0].output_tokens, 15, "exact below the bound");
    store.close().await;
    databases.drop_all().await;
}
