//! Prioritisation: a transparent score per task and its horizon.
//!
//! `score = 100 × (w_urgency·urgency + w_importance·importance + w_recency·recency + w_source·source) + boost`
//!
//! * **urgency** ∈ [0, 1] from the due date: 1 when due today; overdue tasks decay slowly with how
//!   late they are (`exp(-days_late / overdue_decay_days)`), future ones faster
//!   (`exp(-days_left / due_decay_days)`); 0 without a due date.
//! * **importance** ∈ [0, 1] from source signals, the strongest one wins: priority labels
//!   (`P0`/`Blocker`/`urgent` = 1 …), deal value (log scale, times win probability), VIP senders.
//! * **recency** ∈ [0, 1]: `exp(-age_days / recency_days)` since the source item last changed.
//! * **source** ∈ [0, 1]: a per-source weight (config), 0.5 by default.
//! * **boost**: manual points; pinned tasks go to today and rank above all others.
//!
//! Horizon: pinned or due on/before today → today; due within 7 days → week; within 30 → month;
//! without a due date the importance decides (≥ `undated_today`, ≥ `undated_week`, ≥ `undated_month`).

use crate::task::{Signals, Task};
use crate::zone::Zone;
use crate::{Error, Horizon, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether `at` lies in the years 1 to 9999: the instants every store keeps alike and the
/// day and week counts of focus, graph and usage reports stay within.
pub fn within_calendar(at: DateTime<Utc>) -> bool {
    (1..=9999).contains(&chrono::Datelike::year(&at))
}

/// Words that say a label is a priority without saying which ("priority: high").
const PRIORITY_WORDS: &[&str] = &["priority", "prio", "pri", "severity", "sev", "level"];

/// Weights and knobs of the score; serialisable so it can live in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriorityConfig {
    /// Weight of urgency.
    pub w_urgency: f64,
    /// Weight of importance.
    pub w_importance: f64,
    /// Weight of recency.
    pub w_recency: f64,
    /// Weight of the per-source weight.
    pub w_source: f64,
    /// Days over which overdue urgency decays by 1/e.
    pub overdue_decay_days: f64,
    /// Days over which future urgency decays by 1/e.
    pub due_decay_days: f64,
    /// Days over which recency decays by 1/e.
    pub recency_days: f64,
    /// Per-source weight in [0, 1], by source kind.
    pub source_weights: BTreeMap<String, f64>,
    /// Weight of sources not listed.
    pub default_source_weight: f64,
    /// Priority labels (lower case) and their importance.
    pub labels: BTreeMap<String, f64>,
    /// Senders (addresses or `@domain`) whose mail is important.
    pub vip_senders: Vec<String>,
    /// Importance of mail from a VIP sender.
    pub vip_importance: f64,
    /// A deal of this value (in any currency) or more has value importance 1.
    pub value_full: f64,
    /// Undated tasks at least this important go to today.
    pub undated_today: f64,
    /// Undated tasks at least this important go to week.
    pub undated_week: f64,
    /// Undated tasks at least this important go to month.
    pub undated_month: f64,
    /// Offset of the user's day from UTC, in minutes (e.g. 120 for UTC+2), all year round.
    pub utc_offset_minutes: i32,
    /// The user's time zone, an IANA name (`Europe/Berlin`) or an offset (`+05:30`); when set,
    /// it decides when each day starts, daylight saving included, instead of `utc_offset_minutes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        let labels = [
            ("p0", 1.0),
            ("blocker", 1.0),
            ("highest", 1.0),
            ("urgent", 1.0),
            ("critical", 0.9),
            ("p1", 0.8),
            ("high", 0.8),
            ("major", 0.7),
            ("p2", 0.5),
            ("medium", 0.5),
            ("normal", 0.5),
            ("p3", 0.3),
            ("low", 0.3),
            ("minor", 0.3),
            ("p4", 0.1),
            ("lowest", 0.1),
            ("trivial", 0.1),
            // Odoo crm.lead priority stars, as the odoo-crm-lead preset names them.
            ("excellent", 0.9),
            ("very good", 0.7),
            ("good", 0.5),
            // Gmail's importance marker.
            ("important", 0.6),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            w_urgency: 0.45,
            w_importance: 0.30,
            w_recency: 0.15,
            w_source: 0.10,
            overdue_decay_days: 30.0,
            due_decay_days: 5.0,
            recency_days: 14.0,
            source_weights: BTreeMap::new(),
            default_source_weight: 0.5,
            labels,
            vip_senders: Vec::new(),
            vip_importance: 0.9,
            value_full: 1_000_000.0,
            undated_today: 0.95,
            undated_week: 0.7,
            undated_month: 0.45,
            utc_offset_minutes: 0,
            time_zone: None,
        }
    }
}

/// One component of a score, with its share and the reason for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Component {
    /// Raw value in [0, 1] (boost: points).
    pub value: f64,
    /// Weight applied.
    pub weight: f64,
    /// Points this component adds to the score.
    pub points: f64,
    /// Why, in words.
    pub reason: String,
}

/// Why a task scores what it scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Breakdown {
    /// From the due date.
    pub urgency: Component,
    /// From source signals.
    pub importance: Component,
    /// From the last change.
    pub recency: Component,
    /// From the source weight.
    pub source: Component,
    /// Manual boost.
    pub boost: Component,
    /// Pinned by the user.
    pub pinned: bool,
}

/// A score and its breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Priority {
    /// The score in points (higher first).
    pub score: f64,
    /// How the score was made.
    pub breakdown: Breakdown,
}

impl Breakdown {
    /// One line for people: the strongest reasons first.
    pub fn summary(&self) -> String {
        let mut parts: Vec<(&str, &Component)> = vec![
            ("urgency", &self.urgency),
            ("importance", &self.importance),
            ("recency", &self.recency),
            ("source", &self.source),
        ];
        if self.boost.points != 0.0 {
            parts.push(("boost", &self.boost));
        }
        parts.sort_by(|a, b| b.1.points.total_cmp(&a.1.points));
        let mut text: Vec<String> = Vec::new();
        if self.pinned {
            text.push("pinned".into());
        }
        text.extend(
            parts
                .into_iter()
                .map(|(name, c)| format!("{name} {:.1} ({})", c.points, c.reason)),
        );
        text.join(" · ")
    }
}

/// The largest boost, in score points either way: scores run 0–100, so this outranks anything,
/// and sums of it stay far from overflowing to infinity (which JSON cannot carry).
pub const MAX_BOOST: f64 = 1_000_000.0;

/// Refuses a boost that is not a number in ±[`MAX_BOOST`].
pub fn check_boost(boost: f64) -> Result<()> {
    if !boost.is_finite() || boost.abs() > MAX_BOOST {
        return Err(Error::invalid(format!(
            "boost must be a number from -{MAX_BOOST} to {MAX_BOOST}, not {boost}"
        ))
        .on_field("boost"));
    }
    Ok(())
}

impl PriorityConfig {
    /// Refuses weights that would make scores meaningless: every number finite and not
    /// negative, decay periods above zero, the day's offset within ±24 hours.
    pub fn validate(&self) -> Result<()> {
        let numbers = [
            ("w_urgency", self.w_urgency),
            ("w_importance", self.w_importance),
            ("w_recency", self.w_recency),
            ("w_source", self.w_source),
            ("overdue_decay_days", self.overdue_decay_days),
            ("due_decay_days", self.due_decay_days),
            ("recency_days", self.recency_days),
            ("default_source_weight", self.default_source_weight),
            ("vip_importance", self.vip_importance),
            ("value_full", self.value_full),
            ("undated_today", self.undated_today),
            ("undated_week", self.undated_week),
            ("undated_month", self.undated_month),
        ];
        let named = numbers
            .into_iter()
            .map(|(name, v)| (name.to_string(), v))
            .chain(
                self.source_weights
                    .iter()
                    .map(|(k, v)| (format!("source_weights.{k}"), *v)),
            )
            .chain(self.labels.iter().map(|(k, v)| (format!("labels.{k}"), *v)));
        for (name, v) in named {
            // The cap keeps every score finite (1e308 as a weight made scores infinite).
            if !v.is_finite() || !(0.0..=1e12).contains(&v) {
                return Err(Error::invalid(format!(
                    "priority: `{name}` must be a number from 0 to 1e12 (is {v})"
                ))
                .on_field(format!("priority.{name}")));
            }
        }
        for (name, v) in [
            ("overdue_decay_days", self.overdue_decay_days),
            ("due_decay_days", self.due_decay_days),
            ("recency_days", self.recency_days),
        ] {
            if v == 0.0 {
                return Err(
                    Error::invalid(format!("priority: `{name}` must be above 0"))
                        .on_field(format!("priority.{name}")),
                );
            }
        }
        // Each band starts where the next more urgent one ends: out of order, one undated task
        // would belong to two horizons.
        if !(self.undated_today >= self.undated_week && self.undated_week >= self.undated_month) {
            return Err(Error::invalid(format!(
                "priority: the undated thresholds must not rise from today to month \
                 (undated_today {} ≥ undated_week {} ≥ undated_month {})",
                self.undated_today, self.undated_week, self.undated_month
            ))
            .on_field("priority.undated_week"));
        }
        if self.utc_offset_minutes.abs() > 24 * 60 {
            return Err(Error::invalid(format!(
                "priority: `utc_offset_minutes` must be within ±1440 (is {})",
                self.utc_offset_minutes
            ))
            .on_field("priority.utc_offset_minutes"));
        }
        if let Some(name) = &self.time_zone {
            if Zone::parse(name).is_none() {
                return Err(Error::invalid(format!(
                    "priority: `time_zone` `{name}` is neither an IANA time zone (such as \
                     Europe/Berlin or America/New_York) nor an offset like +05:30"
                ))
                .on_field("priority.time_zone"));
            }
            if self.utc_offset_minutes != 0 {
                return Err(Error::invalid(
                    "priority: set `time_zone` or `utc_offset_minutes`, not both \
                     (`time_zone` follows daylight saving time)",
                )
                .on_field("priority.time_zone"));
            }
        }
        Ok(())
    }

    /// The zone the user's days are counted in: `time_zone`, else `utc_offset_minutes` east of
    /// UTC (an unusable value, which [`PriorityConfig::validate`] refuses, counts as UTC).
    pub fn zone(&self) -> Zone {
        match &self.time_zone {
            Some(name) => Zone::parse(name),
            None => Zone::east_minutes(self.utc_offset_minutes),
        }
        .unwrap_or_default()
    }

    /// The user's calendar day at `now`.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        self.zone().date_at(now).unwrap_or_else(|| now.date_naive())
    }

    /// Urgency of a task due `days` days from today (negative: overdue).
    pub fn urgency(&self, days: i64) -> f64 {
        if days <= 0 {
            (-(days.unsigned_abs() as f64) / self.overdue_decay_days.max(1e-9)).exp()
        } else {
            (-(days as f64) / self.due_decay_days.max(1e-9)).exp()
        }
    }

    /// Recency of an item last changed at `updated` (future times count as now).
    pub fn recency(&self, updated: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
        let age_days = ((now - updated).num_seconds().max(0) as f64) / 86_400.0;
        (-age_days / self.recency_days.max(1e-9)).exp()
    }

    /// Weight of a source kind.
    pub fn source_weight(&self, source_kind: &str) -> f64 {
        self.source_weights
            .get(source_kind)
            .copied()
            .unwrap_or(self.default_source_weight)
            .clamp(0.0, 1.0)
    }

    /// The largest weight any source can have, for bounds in the focus search.
    pub fn max_source_weight(&self) -> f64 {
        self.source_weights
            .values()
            .copied()
            .fold(self.default_source_weight, f64::max)
            .clamp(0.0, 1.0)
    }

    /// Importance of one label: a configured label, or one made only of configured labels and
    /// the words that name a priority ("priority: high", "P1 - High", "severity/critical"). A
    /// label with any other word is not a priority ("not urgent", "non-blocker", "good first
    /// issue", "area: high-availability").
    fn label_importance(&self, label: &str) -> Option<f64> {
        let key = label.trim().to_lowercase();
        if let Some(v) = self.labels.get(&key) {
            return Some(*v);
        }
        let mut best: Option<f64> = None;
        for word in key
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            match self.labels.get(word) {
                Some(v) => best = Some(best.map_or(*v, |b| b.max(*v))),
                None if PRIORITY_WORDS.contains(&word) => {}
                None => return None,
            }
        }
        best
    }

    /// Importance in [0, 1] from source signals, with the reason.
    pub fn importance(&self, signals: &Signals) -> (f64, String) {
        let mut best = (0.0, String::from("no priority signal"));
        let mut consider = |value: f64, reason: String| {
            if value > best.0 {
                best = (value, reason);
            }
        };
        for label in &signals.labels {
            if let Some(v) = self.label_importance(label) {
                consider(v, format!("label {}", label.trim()));
            }
        }
        if let Some(value) = signals.value.filter(|v| *v > 0.0) {
            let scale = (value.log10() / self.value_full.max(10.0).log10()).clamp(0.0, 1.0);
            let p = signals
                .probability
                .map(|percent| (percent / 100.0).clamp(0.0, 1.0));
            let v = scale * p.unwrap_or(1.0);
            let currency = signals.currency.as_deref().unwrap_or("");
            let reason = match p {
                Some(p) => format!("deal {} {currency} × {:.0}%", compact(value), p * 100.0),
                None => format!("deal {} {currency}", compact(value)),
            };
            consider(v, reason.replace("  ", " "));
        }
        if let Some(sender) = &signals.sender {
            let sender = sender.trim().to_lowercase();
            let vip = self.vip_senders.iter().any(|v| {
                let v = v.trim().to_lowercase();
                if v.starts_with('@') {
                    sender.ends_with(&v)
                } else {
                    sender == v
                }
            });
            if vip {
                consider(self.vip_importance, format!("VIP sender {sender}"));
            }
        }
        (best.0.clamp(0.0, 1.0), best.1)
    }

    /// The horizon of `task` on `today`.
    pub fn horizon(&self, task: &Task, today: NaiveDate) -> Horizon {
        if task.pinned {
            return Horizon::Today;
        }
        match task.due {
            Some(due) => horizon_for_days((due - today).num_days()),
            None => self.undated_horizon(task.importance),
        }
    }

    /// The horizon of an undated task of this importance.
    pub fn undated_horizon(&self, importance: f64) -> Horizon {
        if importance >= self.undated_today {
            Horizon::Today
        } else if importance >= self.undated_week {
            Horizon::Week
        } else if importance >= self.undated_month {
            Horizon::Month
        } else {
            Horizon::Later
        }
    }

    /// The score of `task` at `now`, with its breakdown.
    pub fn score(&self, task: &Task, now: DateTime<Utc>) -> Priority {
        let today = self.today(now);
        let (urgency, urgency_reason) = match task.due {
            Some(due) => {
                let days = (due - today).num_days();
                let reason = match days {
                    0 => "due today".to_string(),
                    1 => "due tomorrow".to_string(),
                    -1 => "overdue by 1 day".to_string(),
                    d if d < 0 => format!("overdue by {} days", -d),
                    d => format!("due in {d} days"),
                };
                (self.urgency(days), reason)
            }
            None => (0.0, "no due date".to_string()),
        };
        let recency = self.recency(task.updated_at, now);
        let age_days = (now - task.updated_at).num_days().max(0);
        let source = self.source_weight(&task.source_kind);
        let component = |value: f64, weight: f64, reason: String| Component {
            value,
            weight,
            points: 100.0 * weight * value,
            reason,
        };
        let breakdown = Breakdown {
            urgency: component(urgency, self.w_urgency, urgency_reason),
            importance: component(
                task.importance,
                self.w_importance,
                task.importance_reason.clone(),
            ),
            recency: component(
                recency,
                self.w_recency,
                match age_days {
                    0 => "changed today".to_string(),
                    1 => "changed yesterday".to_string(),
                    d => format!("changed {d} days ago"),
                },
            ),
            source: component(
                source,
                self.w_source,
                format!("source {}", task.source_kind),
            ),
            boost: Component {
                value: task.boost,
                weight: 1.0,
                points: task.boost,
                reason: if task.boost == 0.0 {
                    "no boost".into()
                } else {
                    "manual boost".into()
                },
            },
            pinned: task.pinned,
        };
        let score = breakdown.urgency.points
            + breakdown.importance.points
            + breakdown.recency.points
            + breakdown.source.points
            + breakdown.boost.points;
        Priority { score, breakdown }
    }

    /// Highest score any unboosted, unpinned task due `days` from today with importance at most
    /// `importance` can reach; the focus search stops once this falls below its k-th best.
    pub fn upper_bound(&self, days: Option<i64>, importance: f64) -> f64 {
        self.upper_bound_at(days, importance, 1.0)
    }

    /// Like [`upper_bound`](Self::upper_bound) for tasks whose recency is at most `recency`
    /// (tasks last updated no later than one already read).
    pub fn upper_bound_at(&self, days: Option<i64>, importance: f64, recency: f64) -> f64 {
        let urgency = days.map_or(0.0, |d| self.urgency(d));
        100.0
            * (self.w_urgency * urgency
                + self.w_importance * importance
                + self.w_recency * recency
                + self.w_source * self.max_source_weight())
    }

    /// The least importance a task due `days` from today needs to reach `score`.
    pub fn importance_needed(&self, days: Option<i64>, score: f64) -> f64 {
        if self.w_importance <= 0.0 {
            return 0.0;
        }
        let rest = self.upper_bound(days, 0.0);
        ((score - rest) / (100.0 * self.w_importance)).max(0.0)
    }
}

/// The horizon of a task due `days` from today.
pub fn horizon_for_days(days: i64) -> Horizon {
    if days <= 0 {
        Horizon::Today
    } else if days <= 7 {
        Horizon::Week
    } else if days <= 30 {
        Horizon::Month
    } else {
        Horizon::Later
    }
}

fn compact(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.1}M", value / 1_000_000.0)
    } else if value >= 1_000.0 {
        format!("{:.0}k", value / 1_000.0)
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecordId, Scope, TaskStatus};
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
    }

    fn task(due_days: Option<i64>, importance: f64) -> Task {
        let today = now().date_naive();
        Task {
            id: RecordId::from_raw(1),
            scope: Scope::default(),
            title: "t".into(),
            source_kind: "jira".into(),
            url: None,
            status: TaskStatus::Todo,
            due: due_days.map(|d| today + Duration::days(d)),
            importance,
            importance_reason: "test".into(),
            boost: 0.0,
            pinned: false,
            updated_at: now() - Duration::days(2),
            completed_at: None,
        }
    }

    #[test]
    fn horizons_follow_due_dates() {
        let cfg = PriorityConfig::default();
        let today = now().date_naive();
        for (days, want) in [
            (-40, Horizon::Today),
            (0, Horizon::Today),
            (1, Horizon::Week),
            (7, Horizon::Week),
            (8, Horizon::Month),
            (30, Horizon::Month),
            (31, Horizon::Later),
        ] {
            assert_eq!(cfg.horizon(&task(Some(days), 0.5), today), want, "{days}");
        }
        assert_eq!(cfg.horizon(&task(None, 1.0), today), Horizon::Today);
        assert_eq!(cfg.horizon(&task(None, 0.8), today), Horizon::Week);
        assert_eq!(cfg.horizon(&task(None, 0.5), today), Horizon::Month);
        assert_eq!(cfg.horizon(&task(None, 0.1), today), Horizon::Later);
        let mut pinned = task(Some(60), 0.0);
        pinned.pinned = true;
        assert_eq!(cfg.horizon(&pinned, today), Horizon::Today);
    }

    #[test]
    fn due_today_beats_due_next_week_at_equal_importance() {
        let cfg = PriorityConfig::default();
        let a = cfg.score(&task(Some(0), 0.5), now()).score;
        let b = cfg.score(&task(Some(6), 0.5), now()).score;
        let c = cfg.score(&task(None, 0.5), now()).score;
        assert!(a > b && b > c, "{a} {b} {c}");
    }

    #[test]
    fn labels_values_and_vips_give_importance_with_reasons() {
        let cfg = PriorityConfig {
            vip_senders: vec!["@bigcustomer.com".into()],
            ..PriorityConfig::default()
        };
        let (v, why) = cfg.importance(&Signals {
            labels: vec!["bug".into(), "P0".into()],
            ..Signals::default()
        });
        assert_eq!(v, 1.0);
        assert_eq!(why, "label P0");
        let (v, why) = cfg.importance(&Signals {
            labels: vec!["Priority: High".into()],
            ..Signals::default()
        });
        assert_eq!(v, 0.8);
        assert!(why.contains("High"));
        let (v, why) = cfg.importance(&Signals {
            value: Some(100_000.0),
            currency: Some("USD".into()),
            probability: Some(50.0),
            ..Signals::default()
        });
        assert!((v - (5.0 / 6.0) * 0.5).abs() < 1e-9, "{v}");
        assert_eq!(why, "deal 100k USD × 50%");
        // Probabilities are percent: an Odoo lead at 1 % is not a sure thing.
        let (v, why) = cfg.importance(&Signals {
            value: Some(100_000.0),
            probability: Some(1.0),
            ..Signals::default()
        });
        assert!((v - (5.0 / 6.0) * 0.01).abs() < 1e-9, "{v}");
        assert_eq!(why, "deal 100k × 1%");
        let (v, why) = cfg.importance(&Signals {
            sender: Some("CEO@BigCustomer.com".into()),
            ..Signals::default()
        });
        assert_eq!(v, 0.9);
        assert!(why.contains("VIP"));
        assert_eq!(cfg.importance(&Signals::default()).0, 0.0);
    }

    #[test]
    fn a_label_counts_only_when_all_its_words_name_a_priority() {
        let cfg = PriorityConfig::default();
        let of = |label: &str| {
            cfg.importance(&Signals {
                labels: vec![label.into()],
                ..Signals::default()
            })
            .0
        };
        for (label, want) in [
            ("Priority: High", 0.8),
            ("P1 - High", 0.8),
            ("priority/critical-urgent", 1.0),
            ("severity: critical", 0.9),
            ("High Priority", 0.8),
            ("urgent!", 1.0),
            ("Very Good", 0.7),
            ("not urgent", 0.0),
            ("non-blocker", 0.0),
            ("good first issue", 0.0),
            ("area: high-availability", 0.0),
            ("priority", 0.0),
            ("", 0.0),
        ] {
            assert_eq!(of(label), want, "{label}");
        }
    }

    #[test]
    fn weights_that_would_make_scores_meaningless_are_refused() {
        assert!(PriorityConfig::default().validate().is_ok());
        let refused = |change: &dyn Fn(&mut PriorityConfig), field: &str| {
            let mut cfg = PriorityConfig::default();
            change(&mut cfg);
            let err = cfg.validate().unwrap_err();
            assert_eq!(err.location().field.as_deref(), Some(field), "{err}");
        };
        refused(&|c| c.w_urgency = f64::NAN, "priority.w_urgency");
        refused(&|c| c.w_importance = f64::INFINITY, "priority.w_importance");
        refused(&|c| c.w_urgency = 1e308, "priority.w_urgency");
        refused(&|c| c.recency_days = 0.0, "priority.recency_days");
        refused(&|c| c.w_source = -1.0, "priority.w_source");
        refused(
            &|c| {
                c.labels.insert("p9".into(), f64::NAN);
            },
            "priority.labels.p9",
        );
        refused(
            &|c| {
                c.undated_today = 0.5;
                c.undated_week = 0.7;
            },
            "priority.undated_week",
        );
        refused(&|c| c.undated_month = 0.99, "priority.undated_week");
        refused(
            &|c| c.utc_offset_minutes = 100_000,
            "priority.utc_offset_minutes",
        );
        refused(
            &|c| c.time_zone = Some("Europe/Atlantis".into()),
            "priority.time_zone",
        );
        refused(
            &|c| {
                c.time_zone = Some("Europe/Berlin".into());
                c.utc_offset_minutes = 60;
            },
            "priority.time_zone",
        );
        let zoned = PriorityConfig {
            time_zone: Some("Asia/Kolkata".into()),
            ..PriorityConfig::default()
        };
        assert!(zoned.validate().is_ok());
        assert_eq!(zoned.zone().to_string(), "Asia/Kolkata");
        assert!(check_boost(1e308).is_err() && check_boost(f64::NAN).is_err());
        assert!(check_boost(-MAX_BOOST).is_ok() && check_boost(500.0).is_ok());
    }

    #[test]
    fn today_starts_at_midnight_in_the_users_zone_all_year() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let berlin = PriorityConfig {
            time_zone: Some("Europe/Berlin".into()),
            ..PriorityConfig::default()
        };
        let plus_one = PriorityConfig {
            utc_offset_minutes: 60,
            ..PriorityConfig::default()
        };
        // Summer: Berlin's midnight is 22:00 UTC, a fixed +1's is 23:00 UTC.
        let summer = at("2026-06-30T22:30:00Z");
        assert_eq!(berlin.today(summer).to_string(), "2026-07-01");
        assert_eq!(plus_one.today(summer).to_string(), "2026-06-30");
        // A task due 1 July is today's in Berlin then, and tomorrow's (week) at a fixed +1.
        let due_first = {
            let mut t = task(None, 0.5);
            t.due = NaiveDate::from_ymd_opt(2026, 7, 1);
            t
        };
        assert_eq!(
            berlin.horizon(&due_first, berlin.today(summer)),
            Horizon::Today
        );
        assert_eq!(
            plus_one.horizon(&due_first, plus_one.today(summer)),
            Horizon::Week
        );
        // Winter: both start the day at 23:00 UTC.
        let winter = at("2026-11-30T23:30:00Z");
        assert_eq!(berlin.today(winter).to_string(), "2026-12-01");
        assert_eq!(plus_one.today(winter).to_string(), "2026-12-01");
    }

    #[test]
    fn breakdown_points_add_up_to_the_score() {
        let cfg = PriorityConfig::default();
        let mut t = task(Some(-3), 0.8);
        t.boost = 7.0;
        let p = cfg.score(&t, now());
        let b = &p.breakdown;
        let sum = b.urgency.points
            + b.importance.points
            + b.recency.points
            + b.source.points
            + b.boost.points;
        assert!((sum - p.score).abs() < 1e-9);
        assert_eq!(b.urgency.reason, "overdue by 3 days");
        assert!(b.boost.points == 7.0);
        assert!(p.breakdown.summary().contains("urgency"));
    }

    #[test]
    fn config_round_trips_through_toml() {
        let cfg = PriorityConfig::default();
        let text = toml::to_string(&cfg).unwrap();
        let back: PriorityConfig = toml::from_str(&text).unwrap();
        assert_eq!(cfg, back);
        assert!(toml::from_str::<PriorityConfig>("w_urgncy = 1.0").is_err());
    }

    proptest! {
        #[test]
        fn components_stay_in_bounds(days in -5000i64..5000, imp in 0.0f64..=1.0, age in 0i64..10_000) {
            let cfg = PriorityConfig::default();
            let u = cfg.urgency(days);
            prop_assert!((0.0..=1.0).contains(&u));
            let mut t = task(Some(days), imp);
            t.updated_at = now() - Duration::hours(age);
            let p = cfg.score(&t, now());
            prop_assert!(p.score >= 0.0 && p.score <= 100.0 + 1e-9);
            // The focus search relies on this bound never being beaten.
            prop_assert!(p.score <= cfg.upper_bound(Some(days), imp) + 1e-9);
        }

        #[test]
        fn urgency_is_highest_today_and_decays_with_distance(d in 1i64..3000) {
            let cfg = PriorityConfig::default();
            prop_assert!(cfg.urgency(0) >= cfg.urgency(d));
            prop_assert!(cfg.urgency(0) >= cfg.urgency(-d));
            prop_assert!(cfg.urgency(d) >= cfg.urgency(d + 1));
            prop_assert!(cfg.urgency(-d) >= cfg.urgency(-d - 1));
        }

        #[test]
        fn more_importance_never_lowers_the_score(a in 0.0f64..=1.0, b in 0.0f64..=1.0, days in -60i64..60) {
            let cfg = PriorityConfig::default();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(cfg.score(&task(Some(days), lo), now()).score <= cfg.score(&task(Some(days), hi), now()).score);
        }
    }
}
