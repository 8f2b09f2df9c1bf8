//! The conformance suite every [`UsageLedger`] and [`KeyStore`] must pass.

use chrono::{DateTime, Duration, TimeZone, Utc};
use opsweave_core::access::{hash_key, mint_key, KeyId, KeyStore, Role};
use opsweave_core::usage::{Operation, UsageEvent, UsageGroup, UsageLedger, UsageQuery};
use opsweave_core::{ErrorKind, JobId, Scope};
use std::future::Future;
use std::sync::Arc;

/// A store that meters usage and keeps API keys.
pub trait Metering: UsageLedger + KeyStore {}
impl<T: UsageLedger + KeyStore> Metering for T {}

/// Runs every usage and key check, each on a fresh store from `open`.
pub async fn run_metering_conformance<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Metering>>,
{
    usage_sums_by_group_and_range(open().await).await;
    bad_usage_batches_store_nothing(open().await).await;
    keys_are_found_by_hash_and_revoked_per_org(open().await).await;
    the_last_admin_key_of_an_org_is_never_revoked(open().await).await;
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().unwrap()
}

fn event(scope: Scope, model: &str, embedding: u64, minutes: i64) -> UsageEvent {
    UsageEvent {
        scope,
        operation: Operation::Embed,
        model: model.into(),
        input_tokens: 0,
        output_tokens: 0,
        embedding_tokens: embedding,
        latency_ms: 12,
        job: Some(JobId(7)),
        at: start() + Duration::minutes(minutes),
    }
}

fn query(scope: Scope, group_by: UsageGroup) -> UsageQuery {
    UsageQuery {
        scope,
        from: start(),
        to: start() + Duration::days(1),
        group_by,
    }
}

/// Sums are grouped by org, client, project or model, filtered by scope, and cut at the range
/// (from inclusive, to exclusive).
pub async fn usage_sums_by_group_and_range(store: Arc<dyn Metering>) {
    let acme = Scope::org("acme");
    let globex = acme.clone().with_client("globex");
    let q3 = globex.clone().with_project("q3");
    let mut chat = event(q3.clone(), "gpt-4o-mini", 0, 5);
    chat.operation = Operation::Chat;
    chat.input_tokens = 100;
    chat.output_tokens = 40;
    let events = vec![
        event(acme.clone(), "bge-m3", 10, 0),
        event(globex.clone(), "bge-m3", 20, 1),
        event(q3.clone(), "bge-m3", 30, 2),
        chat,
        // Outside the range: one at `to` exactly, one just before `from`.
        event(acme.clone(), "bge-m3", 1000, 24 * 60),
        event(acme.clone(), "bge-m3", 1000, -1),
        // Another org.
        event(Scope::org("initech"), "bge-m3", 5000, 3),
    ];
    store.record_usage(&events).await.unwrap();
    store.record_usage(&[]).await.unwrap();

    let by_org = store
        .usage_totals(&query(acme.clone(), UsageGroup::Org))
        .await
        .unwrap();
    let summary: Vec<_> = by_org
        .iter()
        .map(|t| {
            (
                t.key.as_str(),
                t.model.as_str(),
                t.calls,
                t.embedding_tokens,
                t.input_tokens,
                t.output_tokens,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("acme", "bge-m3", 3, 60, 0, 0),
            ("acme", "gpt-4o-mini", 1, 0, 100, 40)
        ],
        "usage by org (range is [from, to), other orgs excluded)"
    );

    let by_client = store
        .usage_totals(&query(acme.clone(), UsageGroup::Client))
        .await
        .unwrap();
    let keys: Vec<_> = by_client
        .iter()
        .map(|t| (t.key.as_str(), t.model.as_str(), t.embedding_tokens))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("", "bge-m3", 10),
            ("globex", "bge-m3", 50),
            ("globex", "gpt-4o-mini", 0)
        ],
        "usage by client: an absent client is the empty key"
    );

    let by_project = store
        .usage_totals(&query(globex.clone(), UsageGroup::Project))
        .await
        .unwrap();
    let keys: Vec<_> = by_project
        .iter()
        .map(|t| (t.key.as_str(), t.model.as_str(), t.calls))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("", "bge-m3", 1),
            ("q3", "bge-m3", 1),
            ("q3", "gpt-4o-mini", 1)
        ],
        "usage by project inside a client"
    );

    let by_model = store
        .usage_totals(&query(q3, UsageGroup::Model))
        .await
        .unwrap();
    let keys: Vec<_> = by_model.iter().map(|t| (t.key.as_str(), t.calls)).collect();
    assert_eq!(keys, vec![("bge-m3", 1), ("gpt-4o-mini", 1)]);

    // Two clients' projects of one name are summed apart, each naming its client.
    let initech_q3 = acme.clone().with_client("initech").with_project("q3");
    store
        .record_usage(&[event(initech_q3, "bge-m3", 7, 6)])
        .await
        .unwrap();
    let by_project = store
        .usage_totals(&query(acme.clone(), UsageGroup::Project))
        .await
        .unwrap();
    let keys: Vec<_> = by_project
        .iter()
        .map(|t| {
            (
                t.key.as_str(),
                t.client.as_deref(),
                t.model.as_str(),
                t.embedding_tokens,
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("", Some(""), "bge-m3", 10),
            ("", Some("globex"), "bge-m3", 20),
            ("q3", Some("globex"), "bge-m3", 30),
            ("q3", Some("globex"), "gpt-4o-mini", 0),
            ("q3", Some("initech"), "bge-m3", 7),
        ],
        "usage by project across clients"
    );
    assert!(by_client.iter().all(|t| t.client.is_none()));

    let mut reversed = query(acme, UsageGroup::Org);
    reversed.to = reversed.from;
    let err = store.usage_totals(&reversed).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// A batch with one bad event stores none of it.
pub async fn bad_usage_batches_store_nothing(store: Arc<dyn Metering>) {
    let acme = Scope::org("acme");
    let good = event(acme.clone(), "bge-m3", 10, 0);
    let mut bad = event(acme.clone(), "", 10, 1);
    let err = store
        .record_usage(&[good.clone(), bad.clone()])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.location().field.as_deref(), Some("events[1].model"));
    bad.model = "bge-m3".into();
    bad.embedding_tokens = u64::MAX;
    let err = store.record_usage(&[good, bad]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let totals = store
        .usage_totals(&query(acme, UsageGroup::Org))
        .await
        .unwrap();
    assert!(totals.is_empty(), "a refused batch left {totals:?}");
}

/// Keys are found by hash only, listed and revoked within their org, and revoking is idempotent.
pub async fn keys_are_found_by_hash_and_revoked_per_org(store: Arc<dyn Metering>) {
    assert_eq!(store.key_count().await.unwrap(), 0);
    let (secret, new) = mint_key(
        [1; 32],
        "ci",
        Scope::org("acme").with_client("globex"),
        Role::Service,
        None,
    );
    let made = store.create_key(new.clone()).await.unwrap();
    assert_eq!(made.scope, Scope::org("acme").with_client("globex"));
    assert_eq!(made.role, Role::Service);
    assert!(made.revoked_at.is_none());
    let found = store.key_by_hash(&hash_key(&secret)).await.unwrap();
    assert_eq!(found.as_ref(), Some(&made));
    assert_eq!(store.key_by_hash(&hash_key("ow_nope")).await.unwrap(), None);

    // The same secret twice is a conflict (it cannot happen with random keys, but must not pass).
    let err = store.create_key(new).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    let (_, other) = mint_key([2; 32], "admin", Scope::org("initech"), Role::Admin, None);
    let other = store.create_key(other).await.unwrap();
    assert_eq!(store.key_count().await.unwrap(), 2);
    assert_eq!(store.keys("acme").await.unwrap(), vec![made.clone()]);

    let err = store.revoke_key("acme", other.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "another org's key: {err}");
    let err = store.revoke_key("acme", KeyId(999_999)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let revoked = store.revoke_key("acme", made.id).await.unwrap();
    let when = revoked.revoked_at.expect("revoked");
    let again = store.revoke_key("acme", made.id).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(when),
        "revoking twice keeps the first time"
    );
    let found = store
        .key_by_hash(&hash_key(&secret))
        .await
        .unwrap()
        .unwrap();
    assert!(!found.is_live(Utc::now()));
    let still = store.key_by_hash(&other.prefix).await.unwrap();
    assert!(still.is_none(), "a prefix is not a hash");
}

/// Revoking the org's last live org-wide admin key is a conflict, also when two revocations of
/// its last two run at once; client-narrowed, expired and other orgs' admin keys do not count.
pub async fn the_last_admin_key_of_an_org_is_never_revoked(store: Arc<dyn Metering>) {
    let make = |seed: u8, scope: Scope, role: Role, expires: Option<DateTime<Utc>>| {
        let store = store.clone();
        async move {
            let (_, new) = mint_key([seed; 32], "k", scope, role, expires);
            store.create_key(new).await.unwrap()
        }
    };
    let acme = || Scope::org("acme");
    let first = make(1, acme(), Role::Admin, None).await;
    let second = make(2, acme(), Role::Admin, None).await;
    make(3, acme().with_client("globex"), Role::Admin, None).await;
    make(4, acme(), Role::Member, None).await;
    make(5, acme(), Role::Admin, Some(Utc::now() - Duration::days(1))).await;
    make(6, Scope::org("initech"), Role::Admin, None).await;

    store.revoke_key("acme", first.id).await.unwrap();
    let err = store.revoke_key("acme", second.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("last live admin key"), "{err}");
    let kept = store.keys("acme").await.unwrap();
    let kept = kept.iter().find(|k| k.id == second.id).unwrap();
    assert!(
        kept.revoked_at.is_none(),
        "a refused revocation changed the key"
    );
    // Revoking an already revoked key is still allowed (idempotent).
    store.revoke_key("acme", first.id).await.unwrap();

    // Two revocations at once of an org's last two admin keys: exactly one passes.
    for round in 0..8u8 {
        let org = format!("race{round}");
        let a = make(10 + 2 * round, Scope::org(&org), Role::Admin, None).await;
        let b = make(11 + 2 * round, Scope::org(&org), Role::Admin, None).await;
        let (ra, rb) = tokio::join!(store.revoke_key(&org, a.id), store.revoke_key(&org, b.id));
        let passed = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(passed, 1, "round {round}: {ra:?} / {rb:?}");
        for r in [ra, rb] {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            }
        }
        let live = store
            .keys(&org)
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.is_live(Utc::now()))
            .count();
        assert_eq!(live, 1, "round {round}");
    }
}
