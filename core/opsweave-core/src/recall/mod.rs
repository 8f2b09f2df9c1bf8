//! Recall: what a hybrid search asks for and how its rankings are fused and explained.
//!
//! The facade runs the rankers (dense k-NN over vectors, BM25 over the full-text index) and hands
//! their ranked lists to [`fuse`]; everything here is pure so it can be property-tested.
//! [`quality`] scores a retrieval run against relevance judgements (recall@k, nDCG, MRR).

mod fusion;
pub mod quality;

pub use fusion::{fuse, recency_factor, FusedHit, Fusion, Ranked, Ranker, RankerHit, Recency};

use crate::{EntityKind, Error, Record, RecordId, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The most hits one recall may ask for.
pub const MAX_K: usize = 1_000;

/// Words BM25 gains nothing from (Lucene's English stop set): an any-word query over them would
/// match nearly every record and rank them all.
pub const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The most distinct words one ranked text query looks for.
pub const MAX_QUERY_WORDS: usize = 64;

/// A word as full-text indexes compare it: lower case without diacritics ("Ça" → "ca";
/// "Łódź" keeps its stroke: "łodz"), as SQLite's `unicode61 remove_diacritics 2` folds it.
pub fn fold_word(word: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    if word.is_ascii() {
        if word.bytes().any(|b| b.is_ascii_uppercase()) {
            return std::borrow::Cow::Owned(word.to_ascii_lowercase());
        }
        return std::borrow::Cow::Borrowed(word);
    }
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words a ranked any-word text query looks for, from a query's folded words
/// ([`fold_word`]) in order: repeats and stop words dropped (stop words kept when nothing else is left), then at
/// most [`MAX_QUERY_WORDS`]. Every store ranks by the same words.
pub fn ranked_query_words(folded: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in folded {
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
    }
    let is_content = |w: &String| !STOP_WORDS.contains(&w.as_str());
    if words.iter().any(is_content) {
        words.retain(is_content);
    }
    words.truncate(MAX_QUERY_WORDS);
    words
}

/// Which rankers a recall runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecallMode {
    /// Dense k-NN and BM25, fused by reciprocal rank.
    #[default]
    Hybrid,
    /// BM25 over the full-text index only.
    Bm25,
    /// Dense k-NN only.
    Dense,
}

impl RecallMode {
    /// Every mode, for listings and errors.
    pub const ALL: [RecallMode; 3] = [Self::Hybrid, Self::Bm25, Self::Dense];

    /// The name used in flags and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Bm25 => "bm25",
            Self::Dense => "dense",
        }
    }

    /// True when the mode runs the dense ranker (and so needs an embedding model).
    pub fn uses_dense(self) -> bool {
        matches!(self, Self::Hybrid | Self::Dense)
    }

    /// True when the mode runs the full-text ranker.
    pub fn uses_text(self) -> bool {
        matches!(self, Self::Hybrid | Self::Bm25)
    }
}

impl fmt::Display for RecallMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecallMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown recall mode `{s}` (expected hybrid, bm25 or dense)"
                ))
                .on_field("mode")
            })
    }
}

/// What a recall asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecallOptions {
    /// Hits to return (1 to [`MAX_K`]).
    pub k: usize,
    /// Which rankers run.
    pub mode: RecallMode,
    /// Only these entity kinds (empty: any).
    pub entities: Vec<EntityKind>,
    /// Only these source kinds (empty: any).
    pub source_kinds: Vec<String>,
    /// Favour recent records (by their `updated_at`); none: age plays no part.
    pub recency: Option<Recency>,
    /// How many candidates each ranker contributes before fusion (0: chosen from `k`).
    pub depth: usize,
    /// The reciprocal-rank constant and ranker weights.
    pub fusion: Fusion,
}

impl Default for RecallOptions {
    fn default() -> Self {
        Self {
            k: 10,
            mode: RecallMode::Hybrid,
            entities: Vec::new(),
            source_kinds: Vec::new(),
            recency: None,
            depth: 0,
            fusion: Fusion::default(),
        }
    }
}

impl RecallOptions {
    /// Checks `k`, depth, fusion and recency settings, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_K).contains(&self.k) {
            return Err(
                Error::invalid(format!("k must be between 1 and {MAX_K}, not {}", self.k))
                    .on_field("k"),
            );
        }
        if self.depth > MAX_K {
            return Err(Error::invalid(format!(
                "depth must be at most {MAX_K}, not {}",
                self.depth
            ))
            .on_field("depth"));
        }
        self.fusion.validate()?;
        if let Some(recency) = &self.recency {
            recency.validate()?;
        }
        Ok(())
    }

    /// Candidates each ranker contributes: `depth` when set, else enough for fusion to matter
    /// (five times `k`, at least 50, at most [`MAX_K`]).
    pub fn candidates(&self) -> usize {
        if self.depth > 0 {
            self.depth.max(self.k)
        } else {
            (self.k * 5).clamp(50, MAX_K)
        }
    }
}

/// One recall hit: the record, its fused score and why it ranked where it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecallHit {
    /// The record.
    pub id: RecordId,
    /// Its title.
    pub title: String,
    /// Its entity kind.
    pub entity: EntityKind,
    /// Its source kind.
    pub source_kind: String,
    /// The start of its text.
    pub snippet: String,
    /// The fused score and its parts.
    pub explanation: FusedHit,
}

/// The text a record is embedded from: its title and body, without repeating a title the body
/// already starts with (memory notes and untitled documents take their title from their text).
pub fn embedding_text(record: &Record) -> String {
    let title = record.title.trim();
    let body = record.body.trim();
    if body.is_empty() {
        title.to_string()
    } else if title.is_empty() || body.starts_with(title) {
        body.to_string()
    } else {
        format!("{title}\n{body}")
    }
}

/// A title made from free text: its first line, cut at a word boundary near `max_chars`.
pub fn title_from_text(text: &str, max_chars: usize) -> String {
    let first = text.trim().lines().next().unwrap_or("").trim();
    if first.chars().count() <= max_chars {
        return first.to_string();
    }
    let cut: String = first.chars().take(max_chars).collect();
    // Prefer ending on a whole word unless that would leave little.
    match cut.rfind(char::is_whitespace) {
        Some(at) if at >= cut.len() / 2 => format!("{}…", cut[..at].trim_end()),
        _ => format!("{cut}…"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scope, SourceRef};
    use chrono::Utc;

    fn record(title: &str, body: &str) -> Record {
        Record {
            id: RecordId::from_raw(1),
            scope: Scope::org("acme"),
            source: SourceRef {
                kind: "memory".into(),
                external_id: "1".into(),
                url: None,
            },
            entity: EntityKind::Note,
            title: title.into(),
            body: body.into(),
            fields: Default::default(),
            created_at: None,
            updated_at: Utc::now(),
            content_hash: 0,
        }
    }

    #[test]
    fn embedding_text_joins_title_and_body_once() {
        assert_eq!(
            embedding_text(&record("Renewal", "Call Acme")),
            "Renewal\nCall Acme"
        );
        assert_eq!(embedding_text(&record("Call Acme…", "")), "Call Acme…");
        assert_eq!(
            embedding_text(&record("Call Acme", "Call Acme about the renewal")),
            "Call Acme about the renewal"
        );
    }

    #[test]
    fn titles_are_cut_at_a_word() {
        assert_eq!(
            title_from_text("  short note\nsecond line", 80),
            "short note"
        );
        assert_eq!(
            title_from_text("the quick brown fox jumps", 12),
            "the quick…"
        );
        assert_eq!(title_from_text("abcdefghijklmnop", 5), "abcde…");
        assert_eq!(title_from_text("", 5), "");
    }

    #[test]
    fn options_are_checked() {
        let ok = RecallOptions::default();
        ok.validate().unwrap();
        assert_eq!(ok.candidates(), 50);
        let bad = RecallOptions {
            k: 0,
            ..RecallOptions::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().location().field.as_deref(),
            Some("k")
        );
        assert_eq!("BM25".parse::<RecallMode>().unwrap(), RecallMode::Bm25);
        assert!("fuzzy".parse::<RecallMode>().is_err());
    }

    #[test]
    fn ranked_query_words_drop_repeats_and_stop_words_before_the_cap() {
        let words =
            |text: &str| ranked_query_words(text.split(' ').map(|w| fold_word(w).into_owned()));
        // Folded before the stop words are dropped: "thé" is "the".
        assert_eq!(words("Thé invoice"), ["invoice"]);
        assert_eq!(words("the Invoice of the invoice"), ["invoice"]);
        assert_eq!(words("to be or not"), ["to", "be", "or", "not"]);
        // The distinct content word after 40 stop words and 40 repeats is still looked for.
        let long = format!("{} {} invoice", "the a of ".repeat(14), "acme ".repeat(40));
        assert_eq!(words(&long), ["acme", "invoice"]);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(words(many.trim()).len(), MAX_QUERY_WORDS);
    }
}
