//! Focus: the top tasks per horizon, found without scoring every task.
//!
//! The score is `static (importance, source) + dynamic (urgency from the due date, recency)`.
//! Open tasks are read in slices whose urgency is bounded (one day, then widening ranges away from
//! today) and, inside a slice, by importance, high first. A slice is cut off as soon as even a
//! perfect task in it could not beat the current k-th best (see [`PriorityConfig::upper_bound`]),
//! so a focus call touches a few dozen index entries, not the whole table. The property tests in
//! `opsweave-testkit` check the result equals scoring every task.

use crate::priority::PriorityConfig;
use crate::store::{CandidateCursor, CandidateQuery, RecordStore, Slice};
use crate::task::RankedTask;
use crate::{Horizon, Result, Scope, Task};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The top tasks per horizon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Focus {
    /// Tasks by horizon, best first.
    #[serde(flatten)]
    pub horizons: BTreeMap<Horizon, Vec<RankedTask>>,
}

impl Focus {
    /// The tasks of one horizon (empty when it was not asked for).
    pub fn get(&self, horizon: Horizon) -> &[RankedTask] {
        self.horizons.get(&horizon).map_or(&[], Vec::as_slice)
    }
}

/// Orders ranked tasks: pinned first, then score, then earlier due, then id.
pub fn rank_order(a: &RankedTask, b: &RankedTask) -> std::cmp::Ordering {
    b.priority
        .breakdown
        .pinned
        .cmp(&a.priority.breakdown.pinned)
        .then(b.priority.score.total_cmp(&a.priority.score))
        .then(match (a.task.due, b.task.due) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
        .then(a.task.id.cmp(&b.task.id))
}

/// The best `limit` tasks seen so far for one horizon.
struct Top {
    limit: usize,
    tasks: Vec<RankedTask>,
}

impl Top {
    fn push(&mut self, ranked: RankedTask) {
        if self.tasks.iter().any(|t| t.task.id == ranked.task.id) {
            return;
        }
        let at = self
            .tasks
            .partition_point(|t| rank_order(t, &ranked) == std::cmp::Ordering::Less);
        if at < self.limit {
            self.tasks.insert(at, ranked);
            self.tasks.truncate(self.limit);
        }
    }

    /// The score a new unpinned task must beat, once the list is full.
    fn bar(&self) -> Option<f64> {
        (self.tasks.len() >= self.limit).then(|| {
            self.tasks
                .last()
                .filter(|t| !t.priority.breakdown.pinned)
                .map_or(f64::INFINITY, |t| t.priority.score)
        })
    }
}

/// Splits the day offsets from `near` to `far` (either direction) into ranges that widen away
/// from `near`: 1, 1, 2, 4, 8… days, so urgency bounds stay tight where scores are high.
fn widening(near: i64, far: i64) -> Vec<(i64, i64)> {
    let step = if far >= near { 1 } else { -1 };
    let total = (far - near).abs() + 1;
    let mut out = Vec::new();
    let mut start = 0;
    let mut width = 1;
    while start < total {
        let end = (start + width).min(total);
        out.push((near + step * start, near + step * (end - 1)));
        start = end;
        if out.len() >= 2 {
            width *= 2;
        }
    }
    out
}

/// Computes focus: at most `limit` open tasks for each of `horizons`, best first.
pub async fn focus(
    store: &dyn RecordStore,
    config: &PriorityConfig,
    scope: &Scope,
    now: DateTime<Utc>,
    horizons: &[Horizon],
    limit: usize,
) -> Result<Focus> {
    let today = config.today(now);
    let mut out = Focus::default();
    if limit == 0 {
        for h in horizons {
            out.horizons.insert(*h, Vec::new());
        }
        return Ok(out);
    }
    let ctx = Ctx {
        store,
        config,
        scope,
        now,
        today,
        limit,
    };
    let marked = fetch_all(store, scope, Slice::Marked, FIRST_PAGE).await?;
    // Horizons are independent reads: run them at once so a call waits for the slowest, not the sum.
    let lists = futures::future::try_join_all(
        horizons
            .iter()
            .map(|horizon| ctx.horizon_top(*horizon, &marked)),
    )
    .await?;
    for (horizon, list) in horizons.iter().zip(lists) {
        out.horizons.insert(*horizon, list);
    }
    Ok(out)
}

/// Rows asked for by the first read of a slice; each further read of the same slice asks for
/// twice as many, so a slice full of near-ties takes a few reads, not dozens.
const FIRST_PAGE: usize = 32;

/// What every read of one focus call shares.
struct Ctx<'a> {
    store: &'a dyn RecordStore,
    config: &'a PriorityConfig,
    scope: &'a Scope,
    now: DateTime<Utc>,
    today: NaiveDate,
    limit: usize,
}

impl Ctx<'_> {
    fn rank(&self, task: Task) -> RankedTask {
        let priority = self.config.score(&task, self.now);
        let horizon = self.config.horizon(&task, self.today);
        RankedTask {
            task,
            horizon,
            priority,
        }
    }

    /// The best `limit` tasks of one horizon.
    async fn horizon_top(&self, horizon: Horizon, marked: &[Task]) -> Result<Vec<RankedTask>> {
        let (store, scope, config) = (self.store, self.scope, self.config);
        let mut top = Top {
            limit: self.limit,
            tasks: Vec::new(),
        };
        for task in marked.iter().cloned().map(|t| self.rank(t)) {
            if task.horizon == horizon {
                top.push(task);
            }
        }
        let day = |offset: i64| self.today + Duration::days(offset);
        let (ranges, before): (Vec<(i64, i64)>, Option<i64>) = match horizon {
            Horizon::Today => (widening(0, -63), Some(-63)),
            Horizon::Week => (widening(1, 7), None),
            Horizon::Month => (widening(8, 30), None),
            Horizon::Later => (Vec::new(), None),
        };
        for (near, far) in ranges {
            let (lo, hi) = if near <= far {
                (near, far)
            } else {
                (far, near)
            };
            self.scan(&mut top, Slice::Due(day(lo), day(hi)), Some(near), 1.0)
                .await?;
        }
        if let Some(edge) = before {
            self.scan(&mut top, Slice::DueBefore(day(edge)), Some(edge - 1), 1.0)
                .await?;
        }
        let band = match horizon {
            Horizon::Today => Some((config.undated_today, f64::INFINITY)),
            Horizon::Week => Some((config.undated_week, config.undated_today)),
            Horizon::Month => Some((config.undated_month, config.undated_week)),
            Horizon::Later => None,
        };
        if let Some((min, max)) = band {
            self.scan(&mut top, Slice::Undated(min, max), None, max.min(1.0))
                .await?;
        }
        if horizon == Horizon::Later {
            // Later is not a focus lane; it is listed only when asked for, by full scan.
            let far = day(31);
            let mut tasks =
                fetch_all(store, scope, Slice::Due(far, NaiveDate::MAX), FIRST_PAGE).await?;
            tasks.extend(
                fetch_all(
                    store,
                    scope,
                    Slice::Undated(f64::NEG_INFINITY, config.undated_month),
                    FIRST_PAGE,
                )
                .await?,
            );
            for task in tasks {
                top.push(self.rank(task));
            }
        }
        Ok(top.tasks)
    }

    /// Reads one slice by importance, stopping once no remaining task can make the list.
    async fn scan(
        &self,
        top: &mut Top,
        slice: Slice,
        nearest_offset: Option<i64>,
        max_importance: f64,
    ) -> Result<()> {
        let config = self.config;
        let needed = |top: &Top| {
            top.bar()
                .map_or(0.0, |bar| config.importance_needed(nearest_offset, bar))
        };
        if let Some(bar) = top.bar() {
            if config.upper_bound(nearest_offset, max_importance) < bar {
                return Ok(());
            }
        }
        let mut after = None;
        let mut page = FIRST_PAGE;
        loop {
            let min_importance = needed(top);
            if min_importance > max_importance {
                return Ok(());
            }
            let query = CandidateQuery {
                slice,
                min_importance,
                after,
                limit: page,
            };
            let tasks = self.store.task_candidates(self.scope, &query).await?;
            let full = tasks.len() >= page;
            let last = tasks.last().map(|t| {
                let recency = config.recency(t.updated_at, self.now);
                (
                    CandidateCursor::after(t),
                    CandidateCursor::below(t),
                    recency,
                )
            });
            for task in tasks {
                top.push(self.rank(task));
            }
            let Some((next, below, recency)) = last.filter(|_| full) else {
                return Ok(());
            };
            // The unread tasks of the last importance were updated no later than the last one
            // read, so none of them beats the bar once that task's recency cannot: skip the level.
            let beaten = top.bar().is_some_and(|bar| {
                config.upper_bound_at(nearest_offset, next.importance, recency) < bar
            });
            after = Some(if beaten { below } else { next });
            page = (page * 2).min(4096);
        }
    }
}

/// Every task of a slice, in pages that double.
async fn fetch_all(
    store: &dyn RecordStore,
    scope: &Scope,
    slice: Slice,
    mut page: usize,
) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let query = CandidateQuery {
            slice,
            min_importance: f64::NEG_INFINITY,
            after,
            limit: page,
        };
        let tasks = store.task_candidates(scope, &query).await?;
        let full = tasks.len() >= page;
        after = tasks.last().map(CandidateCursor::after);
        out.extend(tasks);
        if !full {
            return Ok(out);
        }
        page = (page * 2).min(4096);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_ranges_cover_every_day_once() {
        assert_eq!(widening(0, -7), vec![(0, 0), (-1, -1), (-2, -3), (-4, -7)]);
        assert_eq!(widening(1, 7), vec![(1, 1), (2, 2), (3, 4), (5, 7)]);
        assert_eq!(
            widening(8, 30),
            vec![(8, 8), (9, 9), (10, 11), (12, 15), (16, 23), (24, 30)]
        );
        let days: Vec<i64> = widening(0, -63)
            .into_iter()
            .flat_map(|(a, b)| (b..=a).rev())
            .collect();
        assert_eq!(days, (-63..=0).rev().collect::<Vec<_>>());
    }
}
