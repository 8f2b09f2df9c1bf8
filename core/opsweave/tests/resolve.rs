//! Resolving stored records end to end: the two opportunity presets' sample files, linked.
#![allow(clippy::unwrap_used)] // a test: a failed step should stop it loudly

use opsweave::matching::resolver_preset;
use opsweave::{Config, LinkKind, RecordId, Scope, Weave};
use std::path::Path;

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data"))
}

async fn open(dir: &tempfile::TempDir) -> Weave {
    Weave::open_with(Config {
        db: format!("sqlite://{}", dir.path().join("t.db").display()),
        ..Config::default()
    })
    .await
    .unwrap()
}

fn id(scope: &Scope, source: &str, external: &str) -> RecordId {
    RecordId::derive(scope, source, external)
}

/// The ids of the (at most 100) records in `scope`.
async fn stored_ids(weave: &Weave, scope: &Scope) -> Vec<RecordId> {
    let filter = opsweave::store::RecordFilter {
        limit: 100,
        ..Default::default()
    };
    let records = weave.store().records(scope, &filter).await.unwrap();
    records.iter().map(|r| r.id).collect()
}

async fn ingest_opportunities(weave: &Weave, scope: &Scope) {
    for (file, preset) in [
        ("odoo-crm-lead.csv", "odoo-crm-lead"),
        ("ace-opportunity.csv", "ace-opportunity"),
    ] {
        let mapping = opsweave::preset(preset).unwrap();
        weave
            .ingest_path(&examples().join(file), &mapping, scope, None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn odoo_and_ace_samples_link_their_planted_twins() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let scope = weave.default_scope();
    ingest_opportunities(&weave, &scope).await;
    let resolver = resolver_preset("odoo-ace-opportunities").unwrap();
    let report = weave.resolve(&scope, &resolver, false).await.unwrap();
    assert_eq!((report.left_records, report.right_records), (10, 8));
    assert_eq!(report.mode, "full");

    let twins = [
        ("__export__.crm_lead_101_5f3a1c", "O4518823"), // Globex Corporation / Globex Corp.
        ("__export__.crm_lead_102_8b2d7e", "O4518990"), // Initech / Initech Inc
        ("__export__.crm_lead_110_be11e5", "O4519102"), // Cyberdyne Systems
        ("__export__.crm_lead_108_f00d12", "O4519512"), // Hooli
    ];
    let twin_pairs: Vec<(RecordId, RecordId)> = twins
        .iter()
        .map(|(o, a)| (id(&scope, "odoo", o), id(&scope, "ace", a)))
        .collect();
    let all_ids = stored_ids(&weave, &scope).await;
    let links = weave.store().links_among(&scope, &all_ids).await.unwrap();
    let linked: Vec<(RecordId, RecordId)> = links
        .iter()
        .filter(|l| l.kind == LinkKind::SameEntity)
        .map(|l| (l.from, l.to))
        .collect();
    assert_eq!(linked.len(), report.matched);
    let queued = weave
        .review_queue(&scope, Some("odoo-ace-opportunities"), 100)
        .await
        .unwrap();
    assert_eq!(queued.len(), report.review);
    for pair in &twin_pairs {
        let found = linked.contains(pair) || queued.iter().any(|q| (q.left, q.right) == *pair);
        assert!(
            found,
            "twin {pair:?} neither linked nor queued: {links:?} {queued:?}"
        );
    }
    assert!(
        linked.len() >= 3,
        "most planted twins are confident matches: {linked:?}"
    );
    for pair in &linked {
        assert!(twin_pairs.contains(pair), "false link {pair:?}");
    }
    // Every link names the resolver and explains itself.
    for l in &links {
        assert!(
            l.evidence.starts_with("resolve:odoo-ace-opportunities:")
                && l.evidence.contains("company"),
            "{l:?}"
        );
    }

    // A full re-run replaces its own links: the same result, nothing doubled.
    let again = weave.resolve(&scope, &resolver, false).await.unwrap();
    assert_eq!(again.matched, report.matched);
    let links_again = weave.store().links_among(&scope, &all_ids).await.unwrap();
    assert_eq!(links_again.len(), links.len());
}

#[tokio::test]
async fn incremental_runs_score_only_new_records_with_the_saved_model() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let scope = weave.default_scope();
    ingest_opportunities(&weave, &scope).await;
    let resolver = resolver_preset("odoo-ace-opportunities").unwrap();
    // Incremental before any run is a full run.
    let first = weave.resolve(&scope, &resolver, true).await.unwrap();
    assert_eq!(first.mode, "full");

    // Nothing new: nothing scored.
    let idle = weave.resolve(&scope, &resolver, true).await.unwrap();
    assert_eq!(
        (idle.mode.as_str(), idle.new_records, idle.candidates),
        ("incremental", 0, 0)
    );

    // A new ACE opportunity for Umbrella Health arrives: it pairs with Odoo's lead 103.
    let ace = opsweave::preset("ace-opportunity").unwrap();
    let rows = vec![serde_json::json!({
        "Opportunity Id": "O4519999",
        "Customer Company Name": "Umbrella Health Inc.",
        "Customer Website": "https://www.umbrella-health.com",
        "Partner Project Title": "ERP upgrade and support renewal",
        "Expected Monthly AWS Revenue": "8000",
        "Target Close Date": "2026-11-20",
        "Stage": "Committed",
        "AWS Account Id": "999988887777",
        "Opportunity Owner": "Marie Curie"
    })];
    let added = weave
        .ingest_rows(rows, "late.json", &ace, &scope)
        .await
        .unwrap();
    assert_eq!(added.inserted, 1, "{added:?}");
    let inc = weave.resolve(&scope, &resolver, true).await.unwrap();
    assert_eq!((inc.mode.as_str(), inc.new_records), ("incremental", 1));
    assert!(
        inc.candidates >= 1 && inc.candidates <= 10,
        "only pairs with the new record are scored: {}",
        inc.candidates
    );
    let pair = (
        id(&scope, "odoo", "__export__.crm_lead_103_c41f09"),
        id(&scope, "ace", "O4519999"),
    );
    let links = weave
        .store()
        .links_among(&scope, &[pair.0, pair.1])
        .await
        .unwrap();
    let queued = weave.review_queue(&scope, None, 100).await.unwrap();
    assert!(
        links.iter().any(|l| (l.from, l.to) == pair)
            || queued.iter().any(|q| (q.left, q.right) == pair),
        "the late twin is linked or queued: {links:?} {queued:?}"
    );
}

/// The mail, Jira and GitHub samples: twenty tasks, so few that fitting the model by EM alone
/// learnt noise (a parent and its sub-task linked at p = 0.999, a title similarity of 0.1 worth
/// +3 bits, the ticket GitHub says it duplicates missed). The priors keep a small run sane.
#[tokio::test]
async fn task_dedupe_on_the_small_samples_links_the_cross_referenced_twin_only() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let scope = weave.default_scope();
    for (file, preset) in [
        ("gmail-messages.json", "gmail-message"),
        ("jira-search.json", "jira-issue"),
        ("github-issues.json", "github-issue"),
    ] {
        let mapping = opsweave::preset(preset).unwrap();
        weave
            .ingest_path(&examples().join(file), &mapping, &scope, None)
            .await
            .unwrap();
    }
    let filter = opsweave::store::RecordFilter {
        limit: 100,
        ..Default::default()
    };
    let records = weave.store().records(&scope, &filter).await.unwrap();
    let title = |id: RecordId| -> String {
        records
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.title.clone())
            .unwrap_or_default()
    };
    let by_title = |start: &str| -> RecordId {
        records
            .iter()
            .find(|r| r.title.starts_with(start))
            .unwrap_or_else(|| panic!("no record titled {start}…"))
            .id
    };
    let resolver = resolver_preset("task-dedupe").unwrap();
    let report = weave.resolve(&scope, &resolver, false).await.unwrap();
    assert_eq!(report.left_records, 20);

    let ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
    let links = weave.store().links_among(&scope, &ids).await.unwrap();
    let linked: Vec<(String, String)> = links
        .iter()
        .filter(|l| l.kind == LinkKind::DuplicateOf)
        .map(|l| {
            let mut pair = [title(l.from), title(l.to)];
            pair.sort();
            (pair[0].clone(), pair[1].clone())
        })
        .collect();
    // "#414 Rotate database credentials: tracked in Jira OPS-102 as well."
    let named = (
        "#414 Rotate database credentials".to_string(),
        "OPS-102 Rotate production database credentials".to_string(),
    );
    // A mail and its reply are the same thread, so the same piece of work.
    let thread = (
        "Globex migration: signed SOW by Monday?".to_string(),
        "Re: Globex migration: signed SOW by Monday?".to_string(),
    );
    assert!(linked.contains(&named), "the twin GitHub names: {linked:?}");
    for pair in &linked {
        assert!(*pair == named || *pair == thread, "false link {pair:?}");
    }
    let queued = weave
        .review_queue(&scope, Some("task-dedupe"), 100)
        .await
        .unwrap();
    let pending: Vec<(RecordId, RecordId)> = queued.iter().map(|q| (q.left, q.right)).collect();
    let parent_child = (
        by_title("OPS-101 Globex migration"),
        by_title("OPS-105 Cutover"),
    );
    for (a, b) in [parent_child, (parent_child.1, parent_child.0)] {
        assert!(
            !pending.contains(&(a, b))
                && !links
                    .iter()
                    .any(|l| l.kind == LinkKind::DuplicateOf && (l.from, l.to) == (a, b)),
            "a sub-task is not its parent's duplicate: {links:?}"
        );
    }
    let thread = [by_title(&thread.0), by_title(&thread.1)];
    assert!(
        linked.len() == 2
            || pending
                .iter()
                .any(|(a, b)| thread.contains(a) && thread.contains(b)),
        "the reply is linked or queued for review: {queued:?}"
    );
    // Nothing queued on a barely similar title alone.
    for item in &queued {
        let title_similarity = item
            .explanation
            .iter()
            .find(|c| c.name == "title")
            .and_then(|c| c.similarity)
            .unwrap_or(0.0);
        assert!(
            title_similarity >= 0.2,
            "{} ↔ {} queued on title similarity {title_similarity}",
            title(item.left),
            title(item.right)
        );
    }
}

#[tokio::test]
async fn review_decisions_are_checked_and_empty_stores_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let scope = weave.default_scope();
    let resolver = resolver_preset("task-dedupe").unwrap();
    // Nothing ingested: a clear error, not an empty success.
    let err = weave.resolve(&scope, &resolver, false).await.unwrap_err();
    assert_eq!(err.kind(), opsweave::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("ingest"), "{err}");

    let pair = (RecordId::from_raw(1), RecordId::from_raw(2));
    let err = weave
        .decide_review(&scope, &resolver, pair, true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), opsweave::ErrorKind::NotFound);

    // Matching state is kept per org: a client's scope could replace it or see other clients'
    // pairs, and is refused by every matching call.
    let client = scope.clone().with_client("globex");
    let errors = [
        weave.resolve(&client, &resolver, false).await.unwrap_err(),
        weave.review_queue(&client, None, 10).await.unwrap_err(),
        weave
            .decide_review(&client, &resolver, pair, true)
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), opsweave::ErrorKind::InvalidInput, "{err}");
        assert!(err.message().contains("whole org"), "{err}");
    }
}

#[tokio::test]
async fn overlapping_sides_never_pair_a_record_with_itself() {
    let dir = tempfile::tempdir().unwrap();
    let weave = open(&dir).await;
    let scope = weave.default_scope();
    ingest_opportunities(&weave, &scope).await;
    // Every opportunity (the ACE ones included) against the ACE ones.
    let resolver = opsweave::matching::Resolver::from_toml(
        "name = \"overlap\"\n[left]\nentities = [\"opportunity\"]\ncolumns = { t = \"@title\" }\n\
         [right]\nsources = [\"ace\"]\ncolumns = { t = \"@title\" }\n",
    )
    .unwrap();
    let report = weave.resolve(&scope, &resolver, false).await.unwrap();
    assert_eq!((report.left_records, report.right_records), (18, 8));
    let queued = weave
        .review_queue(&scope, Some("overlap"), 1000)
        .await
        .unwrap();
    assert!(queued.iter().all(|q| q.left != q.right), "{queued:?}");
    let ids = stored_ids(&weave, &scope).await;
    let links = weave.store().links_among(&scope, &ids).await.unwrap();
    assert!(links.iter().all(|l| l.from != l.to), "{links:?}");
    let ace = id(&scope, "ace", "O4518823");
    let err = weave
        .decide_review(&scope, &resolver, (ace, ace), true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), opsweave::ErrorKind::InvalidInput, "{err}");
}
