//! Resolving stored records: run a [`Resolver`] over the store, write `same_entity` /
//! `duplicate_of` links, keep a review queue, and match later records incrementally with the
//! model the full run fitted.

use crate::Weave;
use opsweave_core::matching::{
    run_dedupe, run_link, run_with_model, Band, MatchOutcome, MatchSpec, Model, Resolver,
    ScoredPair, Table,
};
use opsweave_core::store::RecordFilter;
use opsweave_core::{
    Error, ErrorKind, Link, LinkKind, MatchRun, Record, RecordId, Result, ReviewItem, ReviewStatus,
    Scope,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Instant;

/// What a resolve run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveReport {
    /// The resolver.
    pub resolver: String,
    /// `full` (model fitted anew) or `incremental` (new records scored with the saved model).
    pub mode: String,
    /// Records on the left (or only) side.
    pub left_records: usize,
    /// Records on the right side (0 in a dedupe).
    pub right_records: usize,
    /// Records not seen by an earlier run (all of them in a full run).
    pub new_records: usize,
    /// Candidate pairs scored.
    pub candidates: usize,
    /// Pairs linked as the same entity.
    pub matched: usize,
    /// Pairs queued for review.
    pub review: usize,
    /// Wall time.
    pub seconds: f64,
}

/// The spec and model saved with a resolver's members.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedState {
    spec: MatchSpec,
    model: Model,
}

/// Refuses a scope narrower than an org for matching. Matching state (a resolver's links, review
/// pairs and fitted model) is kept per org: a run in a client's or project's scope would
/// replace the org's, and a review would show other clients' pairs. Until that state is kept
/// per client and project, matching takes an org scope.
pub fn check_matching_scope(scope: &Scope) -> Result<()> {
    scope.validate()?;
    if scope.client.is_some() || scope.project.is_some() {
        return Err(Error::invalid(format!(
            "matching works on a whole org (its links, review pairs and model are the org's): \
             use the scope `{}`, not `{scope}`",
            scope.org
        ))
        .on_field("scope"));
    }
    Ok(())
}

impl Weave {
    /// Runs `resolver` over the records in `scope`. With `incremental`, and when the resolver
    /// has run before, only records it has not seen are scored (against everything), with the
    /// model the last full run fitted; otherwise the model is fitted anew and the resolver's
    /// earlier links and pending reviews are replaced.
    pub async fn resolve(
        &self,
        scope: &Scope,
        resolver: &Resolver,
        incremental: bool,
    ) -> Result<ResolveReport> {
        check_matching_scope(scope)?;
        resolver.validate()?;
        let started = Instant::now();
        let records = self.all_records(scope).await?;
        let left: Vec<&Record> = records
            .iter()
            .filter(|r| resolver.left.accepts(r))
            .collect();
        let right: Vec<&Record> = match &resolver.right {
            Some(side) => records.iter().filter(|r| side.accepts(r)).collect(),
            None => Vec::new(),
        };
        let saved = if incremental {
            self.store().match_state(scope, &resolver.name).await?
        } else {
            None
        };
        let resolver_owned = resolver.clone();
        let report = match saved {
            Some((state_text, members)) => {
                let state: SavedState = serde_json::from_str(&state_text).map_err(|e| {
                    Error::internal(format!("saved state of `{}`: {e}", resolver.name))
                })?;
                let seen: HashSet<RecordId> = members.into_iter().collect();
                let new_left: Vec<&Record> = left
                    .iter()
                    .copied()
                    .filter(|r| !seen.contains(&r.id))
                    .collect();
                let new_right: Vec<&Record> = right
                    .iter()
                    .copied()
                    .filter(|r| !seen.contains(&r.id))
                    .collect();
                let new_records = new_left.len() + new_right.len();
                let old_left: Vec<&Record> = left
                    .iter()
                    .copied()
                    .filter(|r| seen.contains(&r.id))
                    .collect();
                // New left against all right, and old left against new right: every pair with
                // at least one new record, each once.
                let jobs: Vec<(Table, Option<Table>)> = if resolver.is_dedupe() {
                    // New records among themselves and against the old ones: one table holding
                    // both, pairs of two old records dropped below.
                    vec![(resolver.table(&resolver.left, "records", &left)?, None)]
                } else {
                    let right_side = resolver.right.as_ref().unwrap_or(&resolver.left);
                    vec![
                        (
                            resolver.table(&resolver.left, "left", &new_left)?,
                            Some(resolver.table(right_side, "right", &right)?),
                        ),
                        (
                            resolver.table(&resolver.left, "left", &old_left)?,
                            Some(resolver.table(right_side, "right", &new_right)?),
                        ),
                    ]
                };
                let outcomes = tokio::task::spawn_blocking(move || {
                    jobs.iter()
                        .map(|(l, r)| {
                            if l.is_empty() || r.as_ref().is_some_and(Table::is_empty) {
                                return Ok(None);
                            }
                            run_with_model(l, r.as_ref(), &state.spec, &state.model).map(Some)
                        })
                        .collect::<Result<Vec<Option<MatchOutcome>>>>()
                })
                .await
                .map_err(|e| Error::internal(format!("matching stopped: {e}")))??;
                let mut run = MatchRun {
                    resolver: resolver_owned.name.clone(),
                    // An incremental run keeps the model the last full run fitted.
                    state: state_text,
                    members: new_left.iter().chain(&new_right).map(|r| r.id).collect(),
                    links: Vec::new(),
                    review: Vec::new(),
                    replace: false,
                };
                let mut candidates = 0;
                for outcome in outcomes.into_iter().flatten() {
                    candidates += outcome.candidates.len();
                    let keep = |p: &ScoredPair| {
                        // In a dedupe, pairs of two records seen before were decided already.
                        !resolver_owned.is_dedupe()
                            || [&p.left_id, &p.right_id].iter().any(|id| {
                                id.parse::<RecordId>()
                                    .map_or(true, |id| !seen.contains(&id))
                            })
                    };
                    collect(&resolver_owned, &outcome, &keep, &mut run)?;
                }
                let report = ResolveReport {
                    resolver: resolver.name.clone(),
                    mode: "incremental".into(),
                    left_records: left.len(),
                    right_records: right.len(),
                    new_records,
                    candidates,
                    matched: run.links.len(),
                    review: run.review.len(),
                    seconds: 0.0,
                };
                self.store().save_match_run(scope, &run).await?;
                report
            }
            None => {
                let left_table = resolver.table(&resolver.left, "left", &left)?;
                let right_table = match &resolver.right {
                    Some(side) => Some(resolver.table(side, "right", &right)?),
                    None => None,
                };
                if left_table.is_empty() || right_table.as_ref().is_some_and(Table::is_empty) {
                    return Err(Error::invalid(format!(
                        "resolver `{}` found nothing to match in scope {scope}: {} left and {} right records (ingest the sources first)",
                        resolver.name,
                        left.len(),
                        right.len()
                    )));
                }
                let spec = resolver.spec.clone();
                let outcome = tokio::task::spawn_blocking(move || match &right_table {
                    Some(r) => run_link(&left_table, r, spec.as_ref()),
                    None => run_dedupe(&left_table, spec.as_ref()),
                })
                .await
                .map_err(|e| Error::internal(format!("matching stopped: {e}")))??;
                let state = serde_json::to_string(&SavedState {
                    spec: outcome.spec.clone(),
                    model: outcome.model.clone(),
                })
                .map_err(|e| Error::internal(format!("match state to JSON: {e}")))?;
                let mut run = MatchRun {
                    resolver: resolver.name.clone(),
                    state,
                    members: left.iter().chain(&right).map(|r| r.id).collect(),
                    links: Vec::new(),
                    review: Vec::new(),
                    replace: true,
                };
                collect(resolver, &outcome, &|_| true, &mut run)?;
                let report = ResolveReport {
                    resolver: resolver.name.clone(),
                    mode: "full".into(),
                    left_records: left.len(),
                    right_records: right.len(),
                    new_records: left.len() + right.len(),
                    candidates: outcome.candidates.len(),
                    matched: run.links.len(),
                    review: run.review.len(),
                    seconds: 0.0,
                };
                self.store().save_match_run(scope, &run).await?;
                report
            }
        };
        Ok(ResolveReport {
            seconds: started.elapsed().as_secs_f64(),
            ..report
        })
    }

    /// Pending review pairs, most likely matches first.
    pub async fn review_queue(
        &self,
        scope: &Scope,
        resolver: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>> {
        check_matching_scope(scope)?;
        let queue = self.store().review_queue(scope, resolver, limit).await?;
        // An empty queue for a name that is neither built in nor has ever run is a typo, not
        // "nothing to review".
        if let (true, Some(name)) = (queue.is_empty(), resolver) {
            let built_in = opsweave_core::matching::RESOLVER_PRESETS
                .iter()
                .any(|(n, _)| *n == name);
            if !built_in && self.store().match_state(scope, name).await?.is_none() {
                let known: Vec<&str> = opsweave_core::matching::RESOLVER_PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                return Err(Error::invalid(format!(
                    "no resolver `{name}` has run in scope {scope}; built in: {}",
                    known.join(", ")
                ))
                .on_field("resolver"));
            }
        }
        Ok(queue)
    }

    /// Accepts (links the pair) or rejects a review pair of `resolver`.
    pub async fn decide_review(
        &self,
        scope: &Scope,
        resolver: &Resolver,
        pair: (RecordId, RecordId),
        accept: bool,
    ) -> Result<ReviewItem> {
        check_matching_scope(scope)?;
        if pair.0 == pair.1 {
            return Err(Error::invalid(
                "a record is not a match of itself: name two different records",
            ));
        }
        let decide = |pair: (RecordId, RecordId)| {
            let link = Link {
                kind: link_kind(resolver),
                from: pair.0,
                to: pair.1,
                weight: 1.0,
                evidence: format!("review:{}: accepted by a person", resolver.name),
            };
            self.store()
                .decide_review(scope, &resolver.name, pair, accept, Some(link))
        };
        let item = match decide(pair).await {
            // A duplicate pair has no sides: the two records may be named in either order.
            Err(e) if e.kind() == ErrorKind::NotFound && resolver.is_dedupe() => {
                decide((pair.1, pair.0)).await?
            }
            other => other?,
        };
        debug_assert!(item.status != ReviewStatus::Pending);
        Ok(item)
    }

    /// Every record in `scope`, in pages.
    async fn all_records(&self, scope: &Scope) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .records(
                    scope,
                    &RecordFilter {
                        after,
                        limit: 10_000,
                        ..RecordFilter::default()
                    },
                )
                .await?;
            let full = page.len() >= 10_000;
            after = page.last().map(|r| r.id);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
}

/// `same_entity` across two sources, `duplicate_of` within one.
fn link_kind(resolver: &Resolver) -> LinkKind {
    if resolver.is_dedupe() {
        LinkKind::DuplicateOf
    } else {
        LinkKind::SameEntity
    }
}

/// Turns an outcome's matches into links and its review band into queue items.
fn collect(
    resolver: &Resolver,
    outcome: &MatchOutcome,
    keep: &dyn Fn(&ScoredPair) -> bool,
    run: &mut MatchRun,
) -> Result<()> {
    let id = |text: &str| -> Result<RecordId> {
        text.parse::<RecordId>().map_err(|_| {
            Error::internal(format!(
                "matching returned a row id `{text}` that is not a record id"
            ))
        })
    };
    // A resolver whose two sides overlap (e.g. every opportunity against the ACE ones) pairs
    // the records they share with themselves: those are neither matches nor questions.
    let keep = |p: &ScoredPair| p.left_id != p.right_id && keep(p);
    for pair in outcome.matches.iter().filter(|p| keep(p)) {
        let why: Vec<String> = pair
            .explanation
            .iter()
            .map(|c| format!("{} {:+.1}", c.name, c.weight))
            .collect();
        run.links.push(Link {
            kind: link_kind(resolver),
            from: id(&pair.left_id)?,
            to: id(&pair.right_id)?,
            weight: pair.probability.clamp(0.0, 1.0),
            evidence: format!(
                "resolve:{}: p={:.3}; {}",
                resolver.name,
                pair.probability,
                why.join(", ")
            ),
        });
    }
    for pair in outcome.review.iter().filter(|p| keep(p)) {
        debug_assert_eq!(pair.band, Band::Review);
        run.review.push(ReviewItem {
            resolver: resolver.name.clone(),
            left: id(&pair.left_id)?,
            right: id(&pair.right_id)?,
            score: pair.score,
            probability: pair.probability,
            explanation: pair.explanation.clone(),
            status: ReviewStatus::Pending,
        });
    }
    Ok(())
}
