//! Links between records: the edges of the work graph.

use crate::{Error, RecordId, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a link says about its two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The two records are the same real-world thing in different sources.
    SameEntity,
    /// `from` duplicates `to` within one source.
    DuplicateOf,
    /// `from` replies to `to`.
    ReplyTo,
    /// `from` mentions `to`.
    References,
    /// `from` blocks `to`.
    Blocks,
    /// `from` is the parent of `to`.
    ParentOf,
}

impl LinkKind {
    /// Every kind.
    pub const ALL: [LinkKind; 6] = [
        Self::SameEntity,
        Self::DuplicateOf,
        Self::ReplyTo,
        Self::References,
        Self::Blocks,
        Self::ParentOf,
    ];

    /// The name used in files, SQL and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameEntity => "same_entity",
            Self::DuplicateOf => "duplicate_of",
            Self::ReplyTo => "reply_to",
            Self::References => "references",
            Self::Blocks => "blocks",
            Self::ParentOf => "parent_of",
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LinkKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| Error::invalid(format!("unknown link kind `{s}`")))
    }
}

/// A directed, weighted edge between two records, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Link {
    /// What the link says.
    pub kind: LinkKind,
    /// Source record.
    pub from: RecordId,
    /// Target record.
    pub to: RecordId,
    /// Confidence or strength in [0, 1].
    pub weight: f64,
    /// Why the link exists (a field, a match explanation).
    pub evidence: String,
}

/// A link a mapping found in a source item, to a target named by its source key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRef {
    /// What the link says.
    pub kind: LinkKind,
    /// The target's source kind.
    pub to_source: String,
    /// The target's external id.
    pub to_external_id: String,
    /// The field the reference came from.
    pub evidence: String,
}
