//! Comparators: values prepared once per record, then compared pair by pair.

use super::spec::{Comparator, Comparison};
use super::table::Table;
use super::text;
use std::collections::HashMap;

/// A field value made ready for its comparator, so pair comparisons do no parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prepared {
    Missing,
    Text(String),
    /// Sorted term ids with weights (L2-normalised for cosine, 1.0 for sets).
    Terms(Vec<(u32, f32)>),
    Codes(Vec<String>),
    Number(f64),
    Date {
        days: Option<i64>,
        digits: String,
    },
}

/// Interns terms and counts in how many records each appears.
#[derive(Debug, Default)]
struct Vocabulary {
    ids: HashMap<String, u32>,
    df: Vec<u32>,
}

impl Vocabulary {
    fn terms(&mut self, terms: Vec<String>) -> Vec<(u32, f32)> {
        let mut ids: Vec<u32> = terms
            .into_iter()
            .map(|t| {
                let next = self.ids.len() as u32;
                *self.ids.entry(t).or_insert(next)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in &ids {
            let i = *id as usize;
            if i >= self.df.len() {
                self.df.resize(i + 1, 0);
            }
            self.df[i] += 1;
        }
        ids.into_iter().map(|i| (i, 1.0)).collect()
    }
}

/// One side's prepared values of one comparison, packed by kind: reading a row at random
/// then costs a cache line or two, not a walk through values scattered over the heap, and
/// rows read in order are read front to back.
#[derive(Debug)]
enum Column {
    /// Row `r`'s text is `text[at[r]..at[r + 1]]`; empty when missing.
    Text {
        at: Vec<usize>,
        text: String,
    },
    /// Row `r`'s terms are `terms[at[r]..at[r + 1]]`; none when missing.
    Terms {
        at: Vec<usize>,
        terms: Vec<(u32, f32)>,
    },
    /// Row `r`'s codes are `codes[at[r]..at[r + 1]]`; none when missing.
    Codes {
        at: Vec<usize>,
        codes: Vec<String>,
    },
    Numbers(Vec<Option<f64>>),
    /// Row `r`'s digits are `digits[at[r]..at[r + 1]]`; missing when neither digits nor day.
    Dates {
        days: Vec<Option<i64>>,
        at: Vec<usize>,
        digits: String,
    },
}

/// A value read from a [`Column`].
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Missing,
    Text(&'a str),
    Terms(&'a [(u32, f32)]),
    Codes(&'a [String]),
    Number(f64),
    Date { days: Option<i64>, digits: &'a str },
}

impl Column {
    /// Packs the values prepared for `comparator` (each of its kind, or missing).
    fn pack(comparator: Comparator, values: Vec<Prepared>) -> Column {
        let mut at = Vec::with_capacity(values.len() + 1);
        at.push(0);
        match comparator {
            Comparator::Exact
            | Comparator::JaroWinkler
            | Comparator::Levenshtein
            | Comparator::Email
            | Comparator::Domain => {
                let mut text = String::new();
                for v in values {
                    if let Prepared::Text(t) = v {
                        text.push_str(&t);
                    }
                    at.push(text.len());
                }
                Column::Text { at, text }
            }
            Comparator::TokenJaccard
            | Comparator::TokenSet
            | Comparator::TfidfCosine
            | Comparator::QgramJaccard => {
                let mut terms = Vec::new();
                for v in values {
                    if let Prepared::Terms(t) = v {
                        terms.extend(t);
                    }
                    at.push(terms.len());
                }
                Column::Terms { at, terms }
            }
            Comparator::Identifier => {
                let mut codes = Vec::new();
                for v in values {
                    if let Prepared::Codes(c) = v {
                        codes.extend(c);
                    }
                    at.push(codes.len());
                }
                Column::Codes { at, codes }
            }
            Comparator::Numeric => Column::Numbers(
                values
                    .into_iter()
                    .map(|v| match v {
                        Prepared::Number(x) => Some(x),
                        _ => None,
                    })
                    .collect(),
            ),
            Comparator::Date => {
                let mut days = Vec::with_capacity(values.len());
                let mut digits = String::new();
                for v in values {
                    match v {
                        Prepared::Date { days: d, digits: g } => {
                            days.push(d);
                            digits.push_str(&g);
                        }
                        _ => days.push(None),
                    }
                    at.push(digits.len());
                }
                Column::Dates { days, at, digits }
            }
        }
    }

    fn get(&self, r: usize) -> Value<'_> {
        match self {
            Column::Text { at, text } => {
                let t = &text[at[r]..at[r + 1]];
                if t.is_empty() {
                    Value::Missing
                } else {
                    Value::Text(t)
                }
            }
            Column::Terms { at, terms } => {
                let t = &terms[at[r]..at[r + 1]];
                if t.is_empty() {
                    Value::Missing
                } else {
                    Value::Terms(t)
                }
            }
            Column::Codes { at, codes } => {
                let c = &codes[at[r]..at[r + 1]];
                if c.is_empty() {
                    Value::Missing
                } else {
                    Value::Codes(c)
                }
            }
            Column::Numbers(xs) => xs[r].map_or(Value::Missing, Value::Number),
            Column::Dates { days, at, digits } => {
                let g = &digits[at[r]..at[r + 1]];
                if g.is_empty() && days[r].is_none() {
                    Value::Missing
                } else {
                    Value::Date {
                        days: days[r],
                        digits: g,
                    }
                }
            }
        }
    }
}

/// One comparison's prepared values for both sides and the frequency of each value.
#[derive(Debug)]
pub(crate) struct PreparedComparison {
    left: Column,
    /// `None` in dedupe: the right side is the left.
    right: Option<Column>,
    /// Share of records on each side holding the record's value, for term-frequency weights.
    pub left_freq: Vec<f32>,
    pub right_freq: Vec<f32>,
}

impl PreparedComparison {
    pub fn right_freq(&self) -> &[f32] {
        if self.right_freq.is_empty() {
            &self.left_freq
        } else {
            &self.right_freq
        }
    }

    /// The similarity of left row `i` and right row `j`, or `None` when either is missing.
    pub fn similarity(&self, comparator: Comparator, i: usize, j: usize) -> Option<f64> {
        let right = self.right.as_ref().unwrap_or(&self.left);
        compare(comparator, self.left.get(i), right.get(j))
    }
}

/// The raw (joined) value of `fields` in row `row`.
pub(crate) fn raw_value(table: &Table, columns: &[Option<usize>], row: usize) -> String {
    let mut out = String::new();
    for c in columns.iter().flatten() {
        let v = table.rows[row][*c].trim();
        if !v.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(v);
        }
    }
    out
}

/// Prepares one comparison over both tables (`right` is `None` in dedupe).
pub(crate) fn prepare(
    comparison: &Comparison,
    left: &Table,
    right: Option<&Table>,
) -> PreparedComparison {
    let cols = |t: &Table| -> Vec<Option<usize>> {
        comparison.fields.iter().map(|f| t.column(f)).collect()
    };
    let left_cols = cols(left);
    let left_raw: Vec<String> = (0..left.len())
        .map(|r| raw_value(left, &left_cols, r))
        .collect();
    let right_raw: Vec<String> = match right {
        Some(t) => {
            let c = cols(t);
            (0..t.len()).map(|r| raw_value(t, &c, r)).collect()
        }
        None => Vec::new(),
    };
    let mut vocab = Vocabulary::default();
    let mut one = |raw: &str| -> Prepared { prepare_one(comparison.comparator, raw, &mut vocab) };
    let mut l: Vec<Prepared> = left_raw.iter().map(|r| one(r)).collect();
    let mut r: Vec<Prepared> = right_raw.iter().map(|r| one(r)).collect();
    let total = (l.len() + r.len()) as f64;
    match comparison.comparator {
        Comparator::TfidfCosine => {
            let idf: Vec<f32> = vocab
                .df
                .iter()
                .map(|df| (((total + 1.0) / (f64::from(*df) + 1.0)).ln() + 1.0) as f32)
                .collect();
            for p in l.iter_mut().chain(r.iter_mut()) {
                if let Prepared::Terms(terms) = p {
                    let norm: f32 = terms
                        .iter()
                        .map(|(t, _)| idf[*t as usize].powi(2))
                        .sum::<f32>()
                        .sqrt();
                    for (t, w) in terms.iter_mut() {
                        *w = idf[*t as usize] / norm.max(f32::EPSILON);
                    }
                }
            }
        }
        Comparator::Identifier => {
            // A code most records share is a size, a unit or a standard, not an identity.
            let mut df: HashMap<&str, usize> = HashMap::new();
            for p in l.iter().chain(r.iter()) {
                if let Prepared::Codes(cs) = p {
                    for c in cs {
                        *df.entry(c.as_str()).or_default() += 1;
                    }
                }
            }
            let cap = (total / 200.0).max(6.0) as usize;
            let common: std::collections::HashSet<String> = df
                .into_iter()
                .filter(|(_, n)| *n > cap)
                .map(|(c, _)| c.to_string())
                .collect();
            for p in l.iter_mut().chain(r.iter_mut()) {
                if let Prepared::Codes(cs) = p {
                    cs.retain(|c| !common.contains(c));
                    if cs.is_empty() {
                        *p = Prepared::Missing;
                    }
                }
            }
        }
        _ => {}
    }
    let (left_freq, right_freq) = if comparison.term_frequency {
        let l_keys: Vec<Option<String>> = l.iter().map(value_key).collect();
        let r_keys: Vec<Option<String>> = r.iter().map(value_key).collect();
        (frequencies(&l_keys), frequencies(&r_keys))
    } else {
        (Vec::new(), Vec::new())
    };
    PreparedComparison {
        left: Column::pack(comparison.comparator, l),
        right: right.map(|_| Column::pack(comparison.comparator, r)),
        left_freq,
        right_freq,
    }
}

fn value_key(p: &Prepared) -> Option<String> {
    match p {
        Prepared::Text(t) => Some(t.clone()),
        Prepared::Date { digits, .. } => Some(digits.clone()),
        Prepared::Number(x) => Some(x.to_string()),
        _ => None,
    }
}

fn frequencies(keys: &[Option<String>]) -> Vec<f32> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let filled = keys.iter().flatten().count().max(1) as f32;
    for k in keys.iter().flatten() {
        *counts.entry(k.as_str()).or_default() += 1;
    }
    keys.iter()
        .map(|k| {
            k.as_ref()
                .map_or(0.0, |k| counts[k.as_str()] as f32 / filled)
        })
        .collect()
}

fn prepare_one(comparator: Comparator, raw: &str, vocab: &mut Vocabulary) -> Prepared {
    let raw = raw.trim();
    if raw.is_empty() {
        return Prepared::Missing;
    }
    match comparator {
        Comparator::Exact | Comparator::JaroWinkler | Comparator::Levenshtein => {
            let mut n = text::normalise(raw);
            if comparator != Comparator::JaroWinkler {
                // Codes and numbers are written with and without separators ("213/627-6014",
                // "(213) 627 6014"); spelling matters, spacing does not.
                n.retain(|c| c != ' ');
            }
            if n.is_empty() {
                Prepared::Missing
            } else {
                Prepared::Text(n)
            }
        }
        Comparator::TokenJaccard | Comparator::TokenSet | Comparator::TfidfCosine => {
            let words = text::words(raw);
            if words.is_empty() {
                Prepared::Missing
            } else {
                Prepared::Terms(vocab.terms(words))
            }
        }
        Comparator::QgramJaccard => {
            let grams: Vec<String> = text::normalise(raw)
                .split(' ')
                .filter(|w| !w.is_empty())
                .flat_map(|w| text::qgrams(w, 3))
                .collect();
            if grams.is_empty() {
                Prepared::Missing
            } else {
                Prepared::Terms(vocab.terms(grams))
            }
        }
        Comparator::Identifier => {
            let codes = text::codes(raw);
            if codes.is_empty() {
                Prepared::Missing
            } else {
                Prepared::Codes(codes)
            }
        }
        Comparator::Numeric => text::number(raw).map_or(Prepared::Missing, Prepared::Number),
        Comparator::Date => {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            let days = text::date(raw).map(|d| i64::from(chrono::Datelike::num_days_from_ce(&d)));
            if digits.is_empty() && days.is_none() {
                Prepared::Missing
            } else {
                Prepared::Date { days, digits }
            }
        }
        Comparator::Email => text::email(raw).map_or(Prepared::Missing, Prepared::Text),
        Comparator::Domain => text::domain(raw).map_or(Prepared::Missing, Prepared::Text),
    }
}

/// Compares two raw values with `comparator`; `None` when either is missing. IDF here comes
/// from the two values alone, so [`Comparator::TfidfCosine`] is a plain cosine on words.
pub fn similarity(comparator: Comparator, a: &str, b: &str) -> Option<f64> {
    let comparison = Comparison {
        name: String::new(),
        fields: vec!["v".into()],
        comparator,
        levels: Vec::new(),
        term_frequency: false,
    };
    let cols = vec!["id".to_string(), "v".to_string()];
    let left = Table::new("a", cols.clone(), vec![vec!["1".into(), a.into()]]).ok()?;
    let right = Table::new("b", cols, vec![vec!["1".into(), b.into()]]).ok()?;
    let p = prepare(&comparison, &left, Some(&right));
    p.similarity(comparator, 0, 0)
}

fn compare(comparator: Comparator, a: Value<'_>, b: Value<'_>) -> Option<f64> {
    use Value as P;
    let sim = match (comparator, a, b) {
        (_, P::Missing, _) | (_, _, P::Missing) => return None,
        (Comparator::Exact | Comparator::Email | Comparator::Domain, P::Text(x), P::Text(y))
            if x == y =>
        {
            1.0
        }
        (Comparator::Exact | Comparator::Domain, P::Text(_), P::Text(_)) => 0.0,
        (Comparator::Email, P::Text(x), P::Text(y)) => {
            let (xl, xd) = x.split_once('@').unwrap_or((x, ""));
            let (yl, yd) = y.split_once('@').unwrap_or((y, ""));
            if xl == yl {
                0.7
            } else if xd == yd {
                0.5
            } else {
                0.0
            }
        }
        (Comparator::JaroWinkler | Comparator::Levenshtein, P::Text(x), P::Text(y)) if x == y => {
            1.0
        }
        // ASCII text (most of it) is compared byte by byte, which gives the same values as
        // comparing chars without decoding UTF-8 or counting chars on every call.
        (Comparator::JaroWinkler, P::Text(x), P::Text(y)) => {
            if x.is_ascii() && y.is_ascii() {
                strsim::generic_jaro_winkler(&Bytes(x.as_bytes()), &Bytes(y.as_bytes()))
            } else {
                strsim::jaro_winkler(x, y)
            }
        }
        (Comparator::Levenshtein, P::Text(x), P::Text(y)) => {
            if x.is_ascii() && y.is_ascii() {
                let edits = strsim::generic_levenshtein(&Bytes(x.as_bytes()), &Bytes(y.as_bytes()));
                1.0 - edits as f64 / x.len().max(y.len()) as f64
            } else {
                strsim::normalized_levenshtein(x, y)
            }
        }
        (Comparator::TfidfCosine, P::Terms(x), P::Terms(y)) => f64::from(dot(x, y)),
        (Comparator::TokenJaccard | Comparator::QgramJaccard, P::Terms(x), P::Terms(y)) => {
            let shared = shared(x, y) as f64;
            shared / ((x.len() + y.len()) as f64 - shared)
        }
        (Comparator::TokenSet, P::Terms(x), P::Terms(y)) => {
            shared(x, y) as f64 / x.len().min(y.len()) as f64
        }
        (Comparator::Identifier, P::Codes(x), P::Codes(y)) => codes_similarity(x, y),
        (Comparator::Numeric, P::Number(x), P::Number(y)) => {
            let scale = x.abs().max(y.abs());
            if scale == 0.0 {
                1.0
            } else {
                1.0 - (x - y).abs() / scale
            }
        }
        (
            Comparator::Date,
            P::Date {
                days: dx,
                digits: gx,
            },
            P::Date {
                days: dy,
                digits: gy,
            },
        ) => {
            if gx == gy {
                1.0
            } else {
                let by_days = match (dx, dy) {
                    (Some(x), Some(y)) => 1.0 - (x - y).abs() as f64 / 365.0,
                    _ => 0.0,
                };
                let edits = digit_edits(gx, gy) as f64;
                let by_typing = 1.0 - edits / 8.0;
                by_days.max(by_typing).min(0.999)
            }
        }
        _ => return None,
    };
    Some(sim.clamp(0.0, 1.0))
}

/// Bytes for strsim's generic measures (they take anything whose reference iterates), whose
/// length comes free where a `str`'s char count is a scan.
struct Bytes<'a>(&'a [u8]);

impl<'b> IntoIterator for &Bytes<'b> {
    type Item = u8;
    type IntoIter = std::iter::Copied<std::slice::Iter<'b, u8>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().copied()
    }
}

/// Edits between two digit strings, counting a swap of neighbours as one: same-length strings
/// (the usual case for dates) by a linear scan, others by Levenshtein.
fn digit_edits(a: &str, b: &str) -> usize {
    if a.len() != b.len() {
        return strsim::levenshtein(a, b);
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut edits = 0;
    let mut i = 0;
    while i < a.len() {
        if a[i] == b[i] {
            i += 1;
        } else if i + 1 < a.len() && a[i] == b[i + 1] && a[i + 1] == b[i] {
            edits += 1;
            i += 2;
        } else {
            edits += 1;
            i += 1;
        }
    }
    edits
}

fn shared(x: &[(u32, f32)], y: &[(u32, f32)]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].0.cmp(&y[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

fn dot(x: &[(u32, f32)], y: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < x.len() && j < y.len() {
        match x[i].0.cmp(&y[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += x[i].1 * y[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

fn codes_similarity(x: &[String], y: &[String]) -> f64 {
    let mut best: f64 = 0.0;
    for a in x {
        for b in y {
            if a == b {
                return 1.0;
            }
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            if short.len() >= 5 && long.len() - short.len() <= 3 && long.starts_with(short.as_str())
            {
                best = best.max(0.8);
            } else if short.len() >= 5 && strsim::levenshtein(a, b) == 1 {
                best = best.max(0.6);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparators_score_as_documented() {
        let s = |c, a, b| similarity(c, a, b);
        assert_eq!(s(Comparator::Exact, "ACME Inc", "acme  inc"), Some(1.0));
        assert_eq!(s(Comparator::Exact, "", "x"), None);
        assert_eq!(
            s(Comparator::Levenshtein, "(213) 627-6014", "213/627 6014"),
            Some(1.0)
        );
        assert!(s(Comparator::JaroWinkler, "martha", "marhta").unwrap() > 0.95);
        assert_eq!(
            s(
                Comparator::Identifier,
                "Sony PS-LX350H turntable",
                "Sony PSLX350H"
            ),
            Some(1.0)
        );
        assert_eq!(
            s(
                Comparator::Identifier,
                "Samsung TR72BX stand",
                "Samsung TR72B"
            ),
            Some(0.8)
        );
        assert_eq!(
            s(Comparator::Identifier, "Harmony EL6985A", "Vacuum EL6985B"),
            Some(0.6)
        );
        assert_eq!(s(Comparator::Identifier, "no code", "EL6985B"), None);
        assert_eq!(s(Comparator::Numeric, "$100", "90"), Some(0.9));
        assert_eq!(s(Comparator::Date, "19560409", "1956-04-09"), Some(1.0));
        assert!(s(Comparator::Date, "19560409", "19560419").unwrap() > 0.97);
        assert_eq!(s(Comparator::Date, "19560409", "19650409"), Some(0.875));
        assert_eq!(s(Comparator::Date, "19560409", "19560409"), Some(1.0));
        assert_eq!(s(Comparator::Email, "a@x.com", "A@y.com"), Some(0.7));
        assert_eq!(
            s(Comparator::Domain, "https://www.x.com/a", "bob@x.com"),
            Some(1.0)
        );
        assert_eq!(s(Comparator::TokenSet, "a big dog", "big dog"), Some(1.0));
        let cos = s(Comparator::TfidfCosine, "red apple pie", "apple pie").unwrap();
        assert!(cos > 0.5 && cos < 1.0, "{cos}");
    }
}
