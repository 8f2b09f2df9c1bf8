//! The handle's opt-in caches from a library user's side: verified keys and focus answers, with
//! a second handle on the same file standing in for another process.
#![allow(clippy::unwrap_used)]

use opsweave::{Config, ErrorKind, Horizon, Mapping, Role, Scope, Weave};
use std::time::Duration;

async fn open(dir: &tempfile::TempDir) -> Weave {
    Weave::open_with(Config {
        db: format!("sqlite://{}", dir.path().join("c.db").display()),
        ..Config::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_cached_key_is_dropped_by_a_revocation_here_and_kept_until_its_ttl_for_one_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let cached = open(&dir).await.with_key_cache(Duration::from_secs(600));
    let elsewhere = open(&dir).await;
    let (secret, key) = cached
        .create_key("k", Scope::org("acme"), Role::Viewer, None)
        .await
        .unwrap();
    assert_eq!(cached.authenticate(&secret).await.unwrap().id, key.id);

    // Revoked by another process: this handle trusts its verified copy for the TTL (ten minutes
    // here, so the assertion does not race the clock), a handle without a cache refuses at once.
    elsewhere.revoke_key("acme", key.id).await.unwrap();
    assert_eq!(cached.authenticate(&secret).await.unwrap().id, key.id);
    let err = elsewhere.authenticate(&secret).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);

    // Revoked through the caching handle (a clone: clones share the cache): refused at once.
    let (secret, key) = cached
        .create_key("k2", Scope::org("acme"), Role::Viewer, None)
        .await
        .unwrap();
    cached.authenticate(&secret).await.unwrap();
    cached.clone().revoke_key("acme", key.id).await.unwrap();
    let err = cached.authenticate(&secret).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.message().contains("revoked"), "{err}");

    // Unknown and malformed keys are never cached.
    let err = cached
        .authenticate(&format!("{secret}x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let err = cached.authenticate("nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn focus_is_cached_only_when_asked_and_never_past_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let plain = open(&dir).await;
    assert_eq!(plain.focus_cache_stats(), None, "off by default");
    assert!(plain
        .clone()
        .with_focus_cache(Duration::ZERO)
        .focus_cache_stats()
        .is_none());
    let cached = plain.clone().with_focus_cache(Duration::from_secs(600));
    let elsewhere = open(&dir).await;
    let scope = Scope::org("acme");
    let mapping = Mapping::from_toml(
        "name = \"t\"\nsource = \"t\"\nentity = \"task\"\nid = \"id\"\ntitle = \"{title}\"\n\
         [fields.title]\nfrom = \"title\"\n[fields.due]\nfrom = \"due\"\ntype = \"date\"\n\
         [task]\ndue = \"due\"\n",
    )
    .unwrap();
    let row = |id: &str, due: &str| serde_json::json!({"id": id, "title": id, "due": due});
    elsewhere
        .ingest_rows(vec![row("old", "2026-01-02")], "rows", &mapping, &scope)
        .await
        .unwrap();
    let titles = |weave: Weave| {
        let scope = scope.clone();
        async move {
            weave
                .focus(&scope, &[Horizon::Today], 5, None)
                .await
                .unwrap()
                .get(Horizon::Today)
                .iter()
                .map(|t| t.task.title.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(titles(cached.clone()).await, ["old"]);
    assert_eq!(titles(cached.clone()).await, ["old"]);
    let stats = cached.focus_cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    // Another process writes: the very next call sees it.
    elsewhere
        .ingest_rows(vec![row("older", "2026-01-01")], "rows", &mapping, &scope)
        .await
        .unwrap();
    let mut got = titles(cached.clone()).await;
    got.sort();
    assert_eq!(got, ["old", "older"]);
    assert_eq!(cached.focus_cache_stats().unwrap().misses, 2);
}

#[tokio::test]
async fn an_instant_past_the_calendar_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let scope = weave.default_scope();
    for at in [
        chrono::DateTime::<chrono::Utc>::MAX_UTC,
        chrono::DateTime::<chrono::Utc>::MIN_UTC,
    ] {
        let err = weave
            .focus(&scope, &opsweave::Horizon::FOCUS, 3, Some(at))
            .await
            .unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("now"), "{err}");
        let err = weave
            .graph(&scope, opsweave::Window::default(), Some(at))
            .await
            .unwrap_err();
        assert_eq!(err.location().field.as_deref(), Some("now"), "{err}");
    }
}
