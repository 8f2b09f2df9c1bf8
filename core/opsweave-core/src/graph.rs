//! The work graph: tasks as nodes, links as edges, grouped into lanes.

use crate::focus::focus;
use crate::priority::PriorityConfig;
use crate::store::RecordStore;
use crate::{Horizon, Lane, Link, RecordId, Result, Scope, TaskStatus, Window};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node of the graph: one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    /// The record id.
    pub id: RecordId,
    /// Its title.
    pub title: String,
    /// Its source kind.
    pub source_kind: String,
    /// Its status.
    pub status: TaskStatus,
    /// Its lane.
    pub lane: Lane,
    /// Its score now (open tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Its due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    /// When it was completed (past7d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// Nodes, edges among them, and the node ids of each lane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Graph {
    /// Every node once.
    pub nodes: Vec<Node>,
    /// Links whose both ends are nodes.
    pub edges: Vec<Link>,
    /// Node ids per lane, in lane order (best first; past7d most recent first).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, Vec<RecordId>>))]
    pub lanes: BTreeMap<Lane, Vec<RecordId>>,
}

/// Builds the graph of `scope` for `window`, at most `per_lane` nodes per lane.
pub async fn graph(
    store: &dyn RecordStore,
    config: &PriorityConfig,
    scope: &Scope,
    now: DateTime<Utc>,
    window: Window,
    per_lane: usize,
) -> Result<Graph> {
    let mut out = Graph::default();
    for lane in window.lanes() {
        out.lanes.insert(*lane, Vec::new());
    }
    let done = store
        .done_between(scope, now - Duration::days(7), now, per_lane)
        .await?;
    for task in done {
        out.lanes.entry(Lane::Past7d).or_default().push(task.id);
        out.nodes.push(Node {
            id: task.id,
            title: task.title,
            source_kind: task.source_kind,
            status: task.status,
            lane: Lane::Past7d,
            score: None,
            due: task.due,
            completed_at: task.completed_at,
        });
    }
    let horizons: Vec<Horizon> = window
        .lanes()
        .iter()
        .filter_map(|lane| match lane {
            Lane::Today => Some(Horizon::Today),
            Lane::Week => Some(Horizon::Week),
            Lane::Month => Some(Horizon::Month),
            Lane::Past7d => None,
        })
        .collect();
    let open = focus(store, config, scope, now, &horizons, per_lane).await?;
    for (horizon, tasks) in open.horizons {
        let Some(lane) = Lane::for_horizon(horizon) else {
            continue;
        };
        for ranked in tasks {
            // Done and open are two reads: a task undone between them is in both. It is one
            // node, in the lane of the later read (its state now).
            if let Some(at) = out.nodes.iter().position(|n| n.id == ranked.task.id) {
                let done = out.nodes.remove(at);
                if let Some(ids) = out.lanes.get_mut(&done.lane) {
                    ids.retain(|id| *id != done.id);
                }
            }
            out.lanes.entry(lane).or_default().push(ranked.task.id);
            out.nodes.push(Node {
                id: ranked.task.id,
                title: ranked.task.title,
                source_kind: ranked.task.source_kind,
                status: ranked.task.status,
                lane,
                score: Some(ranked.priority.score),
                due: ranked.task.due,
                completed_at: None,
            });
        }
    }
    let ids: Vec<RecordId> = out.nodes.iter().map(|n| n.id).collect();
    out.edges = store.links_among(scope, &ids).await?;
    Ok(out)
}
