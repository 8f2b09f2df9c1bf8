//! The match specification: what to compare, how to block, where the bands lie, how to cluster.

use super::table::Table;
use super::text;
use crate::{Error, Result};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// Values per field whose shapes [`MatchSpec::infer`] looks at (an even sample beyond this).
const PROFILE_SAMPLE: usize = 20_000;

/// Whether two sources are linked or one source is deduplicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Find the records of the left set that are records of the right set.
    Link,
    /// Find the records of one set that are the same entity.
    Dedupe,
}

/// What a field holds, as [`MatchSpec::infer`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Short text naming something: a person, a company, a street, a town.
    Name,
    /// Longer text: titles, descriptions, author lists.
    Text,
    /// An identifier or code: account numbers, postcodes, SKUs.
    Identifier,
    /// A number or an amount of money.
    Number,
    /// A calendar date.
    Date,
    /// An email address.
    Email,
    /// A web domain or URL.
    Domain,
}

/// A field and the kind [`MatchSpec::infer`] gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferredField {
    /// Field (column) name.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
}

/// How two values are compared; every comparator gives a similarity in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    /// 1 when the normalised values are equal, else 0.
    Exact,
    /// Jaro-Winkler similarity of the normalised values.
    JaroWinkler,
    /// 1 − Levenshtein distance / length of the longer normalised value.
    Levenshtein,
    /// Jaccard of the word sets.
    TokenJaccard,
    /// Jaccard of the character 3-gram sets.
    QgramJaccard,
    /// Token-set ratio: shared words over the smaller word set.
    TokenSet,
    /// Cosine of TF-IDF word vectors, with IDF from both sources.
    TfidfCosine,
    /// Identifiers (model numbers, part codes) found in the text: 1 when one is shared, 0.8 when
    /// one extends another by a short suffix, 0.6 at one edit, 0 when both have codes but none
    /// agree; missing when either has none.
    Identifier,
    /// 1 − |a − b| / max(|a|, |b|).
    Numeric,
    /// Dates: 1 − days apart / 365 (floored at 0), raised to 1 − edits / 8 for a typed-in slip.
    Date,
    /// Emails: 1 equal, 0.7 same local part, 0.5 same domain, else 0.
    Email,
    /// Domains (from URLs, emails or bare names): 1 when equal, else 0.
    Domain,
}

/// The most candidates blocking keeps per record.
pub const MAX_TOP_K: usize = 10_000;

/// One comparison: a comparator over one or more fields, cut into levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Name shown in explanations.
    pub name: String,
    /// Fields compared; several fields are joined with a space before comparing.
    pub fields: Vec<String>,
    /// How the values are compared.
    pub comparator: Comparator,
    /// Similarity thresholds, highest first: a pair takes the first level whose threshold its
    /// similarity reaches, or the last level ("different") when it reaches none.
    pub levels: Vec<f64>,
    /// Whether the top level's weight is adjusted by how common the shared value is.
    #[serde(default)]
    pub term_frequency: bool,
}

impl Comparison {
    /// Number of levels including the final "different" level.
    pub fn level_count(&self) -> usize {
        self.levels.len() + 1
    }

    /// The level a similarity falls in.
    pub fn level_of(&self, similarity: f64) -> usize {
        self.levels
            .iter()
            .position(|t| similarity >= *t - 1e-9)
            .unwrap_or(self.levels.len())
    }
}

/// How candidate pairs are found without comparing every pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocking {
    /// Fields whose words (and identifiers) key the inverted index.
    pub token_fields: Vec<String>,
    /// Fields whose character 3-grams also key the index (short, typo-prone fields).
    #[serde(default)]
    pub qgram_fields: Vec<String>,
    /// Keep, for each record, this many best neighbours by the cheap key similarity.
    pub top_k: usize,
    /// Keys shared by more records than this are too common to block on; when absent it scales
    /// with the square root of the data size.
    #[serde(default)]
    pub max_key_frequency: Option<usize>,
    /// Equality rules: every pair equal on all of a rule's fields is a candidate.
    #[serde(default)]
    pub equality: Vec<Vec<String>>,
}

/// Probability cut-offs of the three bands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// A pair whose match probability reaches this is a match.
    pub matched: f64,
    /// A pair below `matched` but reaching this goes to review; below it is a non-match.
    pub review: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            matched: 0.5,
            review: 0.1,
        }
    }
}

/// How pairwise decisions become groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterMode {
    /// Connected components of match-band pairs (dedupe).
    Components,
    /// Each record matches at most one on the other side, best pairs first (linking two clean
    /// sources).
    OneToOne,
    /// Every match-band pair stands on its own.
    Pairs,
}

/// A full, serialisable description of one matching job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchSpec {
    /// Link two sources or dedupe one.
    pub mode: MatchMode,
    /// What each field was taken to hold (informative; comparisons are what run).
    #[serde(default)]
    pub fields: Vec<InferredField>,
    /// The comparisons scored for each candidate pair.
    pub comparisons: Vec<Comparison>,
    /// How candidates are found.
    pub blocking: Blocking,
    /// Band cut-offs.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// How decisions are grouped.
    pub clustering: ClusterMode,
    /// Whether EM also refines u on the candidates (it starts from random pairs either way).
    /// Blocking keeps the look-alike non-matches, which random pairs under-represent; with u
    /// fixed, EM tends to call every candidate a match.
    #[serde(default = "yes")]
    pub refine_u: bool,
}

fn yes() -> bool {
    true
}

impl MatchSpec {
    /// Parses a spec from TOML.
    pub fn from_toml(text: &str) -> Result<MatchSpec> {
        toml::from_str(text).map_err(|e| Error::bad_toml("bad match spec", text, &e))
    }

    /// Writes the spec as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::internal(format!("cannot write match spec: {e}")))
    }

    /// Parses a spec from JSON.
    pub fn from_json(text: &str) -> Result<MatchSpec> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("bad match spec: {e}")))
    }

    /// Checks that every field the spec names exists in the tables and that levels descend.
    pub fn validate(&self, left: &Table, right: Option<&Table>) -> Result<()> {
        let check = |field: &str, what: &str| -> Result<()> {
            for t in std::iter::once(left).chain(right) {
                if t.column(field).is_none() {
                    return Err(Error::invalid(format!(
                        "{what} names field `{field}` that `{}` lacks",
                        t.name
                    ))
                    .on_field(field.to_string()));
                }
            }
            Ok(())
        };
        if self.comparisons.is_empty() {
            return Err(Error::invalid("a match spec needs at least one comparison"));
        }
        for c in &self.comparisons {
            if c.fields.is_empty() || c.levels.is_empty() {
                return Err(Error::invalid(format!(
                    "comparison `{}` needs at least one field and one level",
                    c.name
                )));
            }
            for f in &c.fields {
                check(f, &format!("comparison `{}`", c.name))?;
            }
            if c.levels.windows(2).any(|w| w[0] < w[1])
                || c.levels.iter().any(|l| !(0.0..=1.0).contains(l))
            {
                return Err(Error::invalid(format!(
                    "comparison `{}`: levels must lie in [0, 1], highest first",
                    c.name
                )));
            }
        }
        for f in self
            .blocking
            .token_fields
            .iter()
            .chain(&self.blocking.qgram_fields)
        {
            check(f, "blocking")?;
        }
        for rule in &self.blocking.equality {
            for f in rule {
                check(f, "an equality blocking rule")?;
            }
        }
        // Candidates are kept per record up to top_k: beyond a few thousand it is no blocking,
        // and a huge value overflowed the candidate buffer's size.
        if !(1..=MAX_TOP_K).contains(&self.blocking.top_k) {
            return Err(
                Error::invalid(format!("blocking.top_k must be from 1 to {MAX_TOP_K}"))
                    .on_field("blocking.top_k"),
            );
        }
        for (name, p) in [
            ("thresholds.matched", self.thresholds.matched),
            ("thresholds.review", self.thresholds.review),
        ] {
            // Above 1 is allowed: that band then takes nothing.
            if !(p.is_finite() && p >= 0.0) {
                return Err(Error::invalid(format!(
                    "{name} is a probability cut-off: a number from 0 (above 1: never reached)"
                ))
                .on_field(name));
            }
        }
        if self.thresholds.review > self.thresholds.matched {
            return Err(Error::invalid(
                "thresholds.review must not exceed thresholds.matched",
            ));
        }
        Ok(())
    }

    /// Builds a spec from the data alone: each field shared by the tables gets a kind from its
    /// values, and each kind its comparisons and blocking keys. The same rules serve every data
    /// set; nothing here knows a data set.
    pub fn infer(left: &Table, right: Option<&Table>) -> MatchSpec {
        let mode = if right.is_some() {
            MatchMode::Link
        } else {
            MatchMode::Dedupe
        };
        let shared: Vec<String> = left
            .fields()
            .iter()
            .filter(|f| right.is_none_or(|r| r.column(f).is_some()))
            .cloned()
            .collect();
        let mut fields = Vec::new();
        let mut comparisons = Vec::new();
        let mut token_fields = Vec::new();
        let mut qgram_fields = Vec::new();
        let mut equality = Vec::new();
        let mut carries_codes = false;
        let mut text_fields = Vec::new();
        for field in &shared {
            let profile = Profile::of(field, left, right);
            let Some(kind) = profile.kind() else { continue };
            fields.push(InferredField {
                name: field.clone(),
                kind,
            });
            let one = vec![field.clone()];
            match kind {
                FieldKind::Name => {
                    comparisons.push(comparison(
                        field,
                        Comparator::JaroWinkler,
                        &[1.0, 0.92, 0.85, 0.7],
                        true,
                    ));
                    token_fields.push(field.clone());
                    qgram_fields.push(field.clone());
                }
                FieldKind::Text => {
                    comparisons.push(comparison(
                        field,
                        Comparator::TfidfCosine,
                        &[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
                        false,
                    ));
                    token_fields.push(field.clone());
                    carries_codes |= profile.code_share >= 0.3;
                    text_fields.push(field.clone());
                }
                FieldKind::Identifier => {
                    comparisons.push(comparison(
                        field,
                        Comparator::Levenshtein,
                        &[1.0, 0.8, 0.6],
                        true,
                    ));
                    token_fields.push(field.clone());
                    qgram_fields.push(field.clone());
                    if profile.distinct >= 0.5 {
                        equality.push(one);
                    }
                }
                FieldKind::Number => {
                    comparisons.push(comparison(
                        field,
                        Comparator::Numeric,
                        &[1.0, 0.999, 0.99, 0.9, 0.75],
                        false,
                    ));
                }
                FieldKind::Date => {
                    comparisons.push(comparison(
                        field,
                        Comparator::Date,
                        &[1.0, 0.97, 0.85, 0.5],
                        true,
                    ));
                    token_fields.push(field.clone());
                    if profile.distinct >= 0.5 {
                        equality.push(one);
                    }
                }
                FieldKind::Email => {
                    comparisons.push(comparison(field, Comparator::Email, &[1.0, 0.7, 0.5], true));
                    token_fields.push(field.clone());
                    equality.push(one);
                }
                FieldKind::Domain => {
                    comparisons.push(comparison(field, Comparator::Domain, &[1.0], true));
                    token_fields.push(field.clone());
                    equality.push(one);
                }
            }
        }
        // When one text column carries codes (ticket keys in titles), they are compared across
        // every text column: a GitHub issue whose body says "tracked in Jira OPS-102" shares a
        // code with the ticket titled OPS-102.
        if carries_codes {
            comparisons.push(Comparison {
                name: "identifiers".into(),
                fields: text_fields,
                comparator: Comparator::Identifier,
                levels: vec![1.0, 0.8, 0.6],
                term_frequency: false,
            });
        }
        let clustering = match mode {
            MatchMode::Link => ClusterMode::OneToOne,
            MatchMode::Dedupe => ClusterMode::Components,
        };
        MatchSpec {
            mode,
            fields,
            comparisons,
            blocking: Blocking {
                token_fields,
                qgram_fields,
                top_k: 10,
                max_key_frequency: None,
                equality,
            },
            thresholds: Thresholds::default(),
            clustering,
            refine_u: true,
        }
    }
}

fn comparison(
    field: &str,
    comparator: Comparator,
    levels: &[f64],
    term_frequency: bool,
) -> Comparison {
    Comparison {
        name: field.to_string(),
        fields: vec![field.to_string()],
        comparator,
        levels: levels.to_vec(),
        term_frequency,
    }
}

/// What the values of one field look like across both tables.
#[derive(Debug, Default)]
struct Profile {
    filled: f64,
    email: f64,
    domain: f64,
    date: f64,
    number: f64,
    integer: f64,
    decimal_or_currency: f64,
    year_like: f64,
    phone_like: f64,
    same_length: f64,
    leading_zero: f64,
    code_token: f64,
    code_share: f64,
    tokens: f64,
    chars: f64,
    distinct: f64,
    count: usize,
}

impl Profile {
    fn of(field: &str, left: &Table, right: Option<&Table>) -> Profile {
        let mut values: Vec<&str> = Vec::new();
        let mut total = 0usize;
        for t in std::iter::once(left).chain(right) {
            if let Some(c) = t.column(field) {
                for row in &t.rows {
                    total += 1;
                    let v = row[c].trim();
                    if !v.is_empty() {
                        values.push(v);
                    }
                }
            }
        }
        let n = values.len();
        let mut p = Profile {
            count: n,
            ..Profile::default()
        };
        if n == 0 {
            return p;
        }
        p.filled = n as f64 / total.max(1) as f64;
        let distinct: FxHashSet<&str> = values.iter().copied().collect();
        p.distinct = distinct.len() as f64 / n as f64;
        drop(distinct);
        // The shares of each shape are read from an even sample: parsing every value of a
        // million-row table as a date, a number, an email... costs more than the match.
        let step = n.div_ceil(PROFILE_SAMPLE);
        let sample: Vec<&str> = values.iter().step_by(step).copied().collect();
        let nf = sample.len() as f64;
        let mut lengths: FxHashMap<usize, usize> = FxHashMap::default();
        for v in &sample {
            let digits_only = v.bytes().all(|b| b.is_ascii_digit());
            if text::email(v).is_some() {
                p.email += 1.0;
            }
            if !v.contains(char::is_whitespace) && text::domain(v).is_some() && !v.contains('@') {
                p.domain += 1.0;
            }
            if text::date(v).is_some() && !(digits_only && v.len() != 8) {
                p.date += 1.0;
            }
            if let Some(x) = text::number(v) {
                p.number += 1.0;
                if v.contains('.') || text::has_currency(v) {
                    p.decimal_or_currency += 1.0;
                }
                if digits_only && v.len() == 4 && (1800.0..=2100.0).contains(&x) {
                    p.year_like += 1.0;
                }
            }
            let digits = v.bytes().filter(u8::is_ascii_digit).count();
            let separated = v
                .bytes()
                .any(|b| matches!(b, b'-' | b'/' | b'(' | b')' | b' ' | b'+'));
            if digits >= 7
                && separated
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || b"-/()+ .".contains(&b))
            {
                p.phone_like += 1.0;
            }
            if digits_only {
                p.integer += 1.0;
                if v.len() > 1 && v.starts_with('0') {
                    p.leading_zero += 1.0;
                }
            }
            *lengths.entry(v.chars().count()).or_default() += 1;
            let words = text::words(v);
            p.tokens += v.split_whitespace().count() as f64;
            p.chars += v.chars().count() as f64;
            if words.len() == 1 && text::is_code(&words[0]) {
                p.code_token += 1.0;
            }
            if !text::codes(v).is_empty() {
                p.code_share += 1.0;
            }
        }
        p.same_length = lengths.values().copied().max().unwrap_or(0) as f64 / nf;
        for x in [
            &mut p.email,
            &mut p.domain,
            &mut p.date,
            &mut p.number,
            &mut p.integer,
            &mut p.decimal_or_currency,
            &mut p.year_like,
            &mut p.phone_like,
            &mut p.leading_zero,
            &mut p.code_token,
            &mut p.code_share,
            &mut p.tokens,
            &mut p.chars,
        ] {
            *x /= nf;
        }
        p
    }

    /// The kind of the field, or `None` when it carries too little to compare.
    fn kind(&self) -> Option<FieldKind> {
        if self.count < 2 || self.filled < 0.05 {
            return None;
        }
        // A field with one value everywhere says nothing about identity.
        if self.distinct * self.count as f64 <= 1.0 {
            return None;
        }
        if self.email >= 0.8 {
            return Some(FieldKind::Email);
        }
        if self.domain >= 0.8 {
            return Some(FieldKind::Domain);
        }
        if self.date >= 0.8 {
            return Some(FieldKind::Date);
        }
        // Phone and account numbers written with separators: compare their digits, not
        // their size.
        if self.phone_like >= 0.8 {
            return Some(FieldKind::Identifier);
        }
        if self.number >= 0.9 {
            let coded = self.integer >= 0.95
                && self.decimal_or_currency < 0.05
                && self.year_like < 0.9
                && (self.leading_zero > 0.01 || self.same_length >= 0.9);
            if coded {
                return Some(FieldKind::Identifier);
            }
            return Some(FieldKind::Number);
        }
        if self.code_token >= 0.8 && self.tokens <= 1.5 {
            return Some(FieldKind::Identifier);
        }
        if self.tokens <= 3.0 && self.chars <= 30.0 {
            return Some(FieldKind::Name);
        }
        Some(FieldKind::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> Table {
        Table::from_csv(csv.as_bytes(), "t.csv").unwrap()
    }

    #[test]
    fn infer_picks_kinds_from_values() {
        let t = table(
            "id,name,title,email,site,amount,dob,code,postcode,phone\n\
             1,Ann Lee,Data platform migration to the cloud,ann@x.com,x.com,$1200.50,1956-04-09,AB12345,0800,213/627-6014\n\
             2,Bob Ray,Managed security operations centre rollout,bob@y.org,https://y.org/a,300,1960-01-02,CD99881,2000,(310) 555-0101\n\
             3,Cy Dee,Quarterly review of the account plan,cy@z.net,z.net,12.5,1971-12-30,EF11223,3121,+1 415 555 0199\n",
        );
        let spec = MatchSpec::infer(&t, None);
        let kinds: Vec<FieldKind> = spec.fields.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            vec![
                FieldKind::Name,
                FieldKind::Text,
                FieldKind::Email,
                FieldKind::Domain,
                FieldKind::Number,
                FieldKind::Date,
                FieldKind::Identifier,
                FieldKind::Identifier,
                FieldKind::Identifier,
            ]
        );
        assert_eq!(spec.mode, MatchMode::Dedupe);
        assert_eq!(spec.clustering, ClusterMode::Components);
        spec.validate(&t, None).unwrap();
    }

    #[test]
    fn spec_round_trips_through_toml_and_json() {
        let t = table("id,name,title\n1,Ann,Some long title here for text\n2,Bob,Another long title for the text\n");
        let spec = MatchSpec::infer(&t, Some(&t));
        let toml = spec.to_toml().unwrap();
        assert_eq!(MatchSpec::from_toml(&toml).unwrap(), spec);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(MatchSpec::from_json(&json).unwrap(), spec);
        assert!(MatchSpec::from_toml("mode = 'sideways'").is_err());
    }

    #[test]
    fn validate_refuses_bounds_that_break_matching() {
        let t = table("id,name\n1,a\n2,b\n");
        let base = MatchSpec::infer(&t, None);
        let refused = |edit: &dyn Fn(&mut MatchSpec), what: &str| {
            let mut spec = base.clone();
            edit(&mut spec);
            let e = spec.validate(&t, None).unwrap_err();
            assert!(e.message().contains(what), "{what}: {e}");
        };
        refused(&|s| s.blocking.top_k = usize::MAX, "blocking.top_k");
        refused(&|s| s.blocking.top_k = 0, "blocking.top_k");
        refused(&|s| s.thresholds.matched = -1.0, "thresholds.matched");
        refused(&|s| s.thresholds.matched = f64::NAN, "thresholds.matched");
        refused(
            &|s| s.thresholds.review = f64::INFINITY,
            "thresholds.review",
        );
        refused(
            &|s| {
                s.thresholds.matched = 0.4;
                s.thresholds.review = 0.6;
            },
            "must not exceed",
        );
        refused(&|s| s.comparisons[0].fields.clear(), "at least one field");
        refused(&|s| s.comparisons[0].levels.clear(), "at least one field");
        base.validate(&t, None).unwrap();
    }

    #[test]
    fn validate_names_unknown_fields() {
        let t = table("id,name\n1,a\n2,b\n");
        let mut spec = MatchSpec::infer(&t, None);
        spec.comparisons[0].fields = vec!["nope".into()];
        let e = spec.validate(&t, None).unwrap_err();
        assert!(e.message().contains("nope"), "{e}");
    }
}
