//! Horizons (when a task should be done) and graph lanes.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// When a task should be done, from its due date and score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Horizon {
    /// Overdue, due today, or pinned.
    Today,
    /// Due within the next 7 days, or very important without a due date.
    Week,
    /// Due within the next 30 days, or important without a due date.
    Month,
    /// Everything else.
    Later,
}

impl Horizon {
    /// The horizons `focus` reports, nearest first.
    pub const FOCUS: [Horizon; 3] = [Self::Today, Self::Week, Self::Month];

    /// The name used in files and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Today => "today",
            Self::Week => "week",
            Self::Month => "month",
            Self::Later => "later",
        }
    }
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Horizon {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "today" => Ok(Self::Today),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "later" => Ok(Self::Later),
            _ => Err(Error::invalid(format!(
                "unknown horizon `{s}` (expected today, week, month or later)"
            ))),
        }
    }
}

/// A lane of the graph view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Done within the last 7 days.
    Past7d,
    /// Open, horizon today.
    Today,
    /// Open, horizon week.
    Week,
    /// Open, horizon month.
    Month,
}

impl Lane {
    /// Every lane, past first.
    pub const ALL: [Lane; 4] = [Self::Past7d, Self::Today, Self::Week, Self::Month];

    /// The name used in files and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Past7d => "past7d",
            Self::Today => "today",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The lane of open tasks in `horizon`, if it has one.
    pub fn for_horizon(horizon: Horizon) -> Option<Lane> {
        match horizon {
            Horizon::Today => Some(Self::Today),
            Horizon::Week => Some(Self::Week),
            Horizon::Month => Some(Self::Month),
            Horizon::Later => None,
        }
    }
}

/// How far ahead a graph looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// past7d, today and week.
    #[default]
    Week,
    /// past7d, today, week and month.
    Month,
}

impl Window {
    /// The lanes this window shows.
    pub fn lanes(self) -> &'static [Lane] {
        match self {
            Self::Week => &[Lane::Past7d, Lane::Today, Lane::Week],
            Self::Month => &Lane::ALL,
        }
    }
}

impl FromStr for Window {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            _ => Err(Error::invalid(format!(
                "unknown window `{s}` (expected week or month)"
            ))),
        }
    }
}
