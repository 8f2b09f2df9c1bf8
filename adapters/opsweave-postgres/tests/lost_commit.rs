//! A batch whose COMMIT reached the server but whose answer was lost is retried, and the retry
//! writes nothing twice: records are upserts, and rejections and usage events carry their
//! batch's key.
//!
//! A TCP proxy between the store and the server forwards a COMMIT, lets the server run it, and
//! then cuts the connection before the answer gets back (once).
#![allow(clippy::unwrap_used)]

mod support;

use chrono::Utc;
use opsweave_core::usage::{Operation, UsageEvent, UsageLedger, UsageQuery};
use opsweave_core::{RecordStore, Rejection, Scope};
use opsweave_postgres::PgStore;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_retried_after_a_lost_commit_writes_its_rejections_once() {
    let Some(server) = support::server_url("lost_commit") else {
        return;
    };
    let dbs = support::Databases::new(&server, "lost_commit");
    let (store, armed, cuts) = proxied_store(&dbs.create().await).await;
    let scope = Scope::org("acme");
    let rejections: Vec<Rejection> = (1..=3)
        .map(|line| Rejection {
            line,
            field: Some("due".into()),
            reason: format!("bad date on line {line}"),
            raw: Some(format!("row {line}")),
        })
        .collect();
    armed.store(true, Ordering::SeqCst);
    store
        .ingest_batch(&scope, "tasks.csv", &[], &rejections)
        .await
        .expect("the batch is retried after the lost answer");
    assert_eq!(
        cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut one COMMIT's answer"
    );
    let kept = store.rejections(&scope, 100).await.unwrap();
    assert_eq!(kept.len(), 3, "each rejection once: {kept:?}");
    store.close().await;
    dbs.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_batch_retried_after_a_lost_commit_is_metered_once() {
    let Some(server) = support::server_url("lost_commit_usage") else {
        return;
    };
    let dbs = support::Databases::new(&server, "lost_commit_usage");
    let (store, armed, cuts) = proxied_store(&dbs.create().await).await;
    let scope = Scope::org("acme");
    let at = Utc::now() - chrono::Duration::minutes(1);
    let events: Vec<UsageEvent> = (0..3)
        .map(|i| UsageEvent {
            scope: scope.clone(),
            operation: Operation::Embed,
            model: "text-embedding-3-small".into(),
            input_tokens: 0,
            output_tokens: 0,
            embedding_tokens: 100 + i,
            latency_ms: 5,
            job: None,
            at,
        })
        .collect();
    armed.store(true, Ordering::SeqCst);
    store
        .record_usage(&events)
        .await
        .expect("the batch is retried after the lost answer");
    assert_eq!(
        cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut one COMMIT's answer"
    );
    let query = UsageQuery::parse(scope, Some("2000-01-01"), None, "org").unwrap();
    let totals = store.usage_totals(&query).await.unwrap();
    assert_eq!(
        totals
            .iter()
            .map(|t| (t.calls, t.embedding_tokens))
            .collect::<Vec<_>>(),
        [(3, 303)],
        "each event once"
    );
    store.close().await;
    dbs.drop_all().await;
}

/// A store on the database at `url` through a proxy that, once armed, cuts the answer of the
/// next COMMIT (see [`relay`]); with the arming switch and the count of cuts made.
async fn proxied_store(url: &str) -> (PgStore, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let (_, rest) = url.split_once('@').unwrap();
    let upstream = rest.split('/').next().unwrap().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let cuts = Arc::new(AtomicUsize::new(0));
    {
        let (armed, cuts) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, server, armed.clone(), cuts.clone()));
            }
        });
    }
    let proxied = url.replacen(&rest[..rest.find('/').unwrap()], &proxy.to_string(), 1);
    (PgStore::open(&proxied).await.unwrap(), armed, cuts)
}

/// Pumps bytes both ways; when armed, the first COMMIT from the client goes to the server, the
/// server gets time to run it while its answers are dropped, and then both connections close.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let mute = Arc::new(AtomicBool::new(false));
    let muted = mute.clone();
    let back = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) if muted.load(Ordering::SeqCst) => {}
                Ok(n) => {
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // sqlx sends COMMIT as a simple query: the statement text, NUL-terminated.
        let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
        if commit && armed.swap(false, Ordering::SeqCst) {
            mute.store(true, Ordering::SeqCst);
            server_tx.write_all(&buf[..n]).await.unwrap();
            // The server commits and answers; the answer is dropped.
            tokio::time::sleep(Duration::from_millis(300)).await;
            cuts.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if server_tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Dropping the halves (the client's write half lives in `back`) closes both connections.
    back.abort();
}
