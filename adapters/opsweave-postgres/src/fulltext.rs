//! Words for full-text search, cut the way SQLite's `unicode61 remove_diacritics 2` tokenizer
//! cuts them: runs of letters and digits, case-folded, diacritics removed. The store builds the
//! `tsvector` of each document and the `tsquery` of each search from these words itself and hands
//! them to PostgreSQL ready-made, so both backends find the same records whatever the server's
//! locale, version, parser or extensions — and the server spends no time parsing text.

use opsweave_core::recall::fold_word;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, Postgres};
use std::borrow::Cow;
use std::ops::Range;

/// At most this many bytes of words per column: a `tsvector` holds at most 1 MiB.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// At most this many query words (as the embedded store).
const MAX_QUERY_WORDS: usize = 32;
/// Longer words are left out, as `to_tsvector` leaves out words of 2,047 bytes and more.
const MAX_WORD_BYTES: usize = 2046;
/// The last position a `tsvector` can record; later words share it.
const LAST_POSITION: u16 = 16_383;
/// At most this many positions per word in one column (`to_tsvector` keeps 255)...
const COLUMN_POSITIONS: usize = 255;
/// ...and in a whole document (`||` adds the body's up to 256).
const DOCUMENT_POSITIONS: usize = 256;
/// Weight bits of a title's positions (A).
const WEIGHT_A: u16 = 3 << 14;
/// Weight bits of a body's positions (B).
const WEIGHT_B: u16 = 2 << 14;
/// PostgreSQL's type oid of `tsvector` (fixed, built in).
const TSVECTOR_OID: u32 = 3614;
/// PostgreSQL's type oid of `tsvector[]`.
const TSVECTOR_ARRAY_OID: u32 = 3643;

/// A record's search document: its title's words (weight A) and body's words (weight B), in
/// `tsvector`'s binary form. Equal to what `setweight(to_tsvector('simple', title), 'A') ||
/// setweight(to_tsvector('simple', body), 'B')` makes of the folded words (positions capped at
/// 16,383, at most 255 per column and 256 per document, long words left out).
pub(crate) struct Document(Vec<u8>);

impl Document {
    /// The document of a record with this title and body.
    pub(crate) fn new(title: &str, body: &str) -> Self {
        let (title_words, body_words) = (column_words(title), column_words(body));
        let (title, body) = (Column::of(&title_words), Column::of(&body_words));
        // The body's positions follow the title's last recorded one, as `||` does.
        let shift = title
            .words
            .iter()
            .map(|(_, at)| title.positions[at.end - 1])
            .max()
            .unwrap_or(0);
        let words_bytes: usize = (title.words.iter().chain(&body.words))
            .map(|(w, _)| w.len() + 3)
            .sum();
        let positions_bytes = 2 * (title.positions.len() + body.positions.len());
        let mut out = Vec::with_capacity(4 + words_bytes + positions_bytes);
        out.extend_from_slice(&0i32.to_be_bytes());
        let mut count: i32 = 0;
        let (mut i, mut j) = (0, 0);
        let mut positions: Vec<u16> = Vec::new();
        loop {
            // The next word in byte order, with its title and body positions.
            let (word, in_title, in_body) = match (title.words.get(i), body.words.get(j)) {
                (Some((tw, ta)), Some((bw, ba))) if tw == bw => (*tw, title.at(ta), body.at(ba)),
                (Some((tw, ta)), Some((bw, _))) if tw < bw => (*tw, title.at(ta), &[][..]),
                (Some((tw, ta)), None) => (*tw, title.at(ta), &[][..]),
                (_, Some((bw, ba))) => (*bw, &[][..], body.at(ba)),
                (None, None) => break,
            };
            i += usize::from(!in_title.is_empty());
            j += usize::from(!in_body.is_empty());
            positions.clear();
            positions.extend(in_title.iter().map(|p| p | WEIGHT_A));
            for p in in_body {
                let at_end = positions.last().map(|l| l & LAST_POSITION) == Some(LAST_POSITION);
                if positions.len() >= DOCUMENT_POSITIONS || at_end {
                    break;
                }
                let shifted = (u32::from(*p) + u32::from(shift)).min(u32::from(LAST_POSITION));
                positions.push(shifted as u16 | WEIGHT_B);
            }
            out.extend_from_slice(word.as_bytes());
            out.push(0);
            out.extend_from_slice(&(positions.len() as u16).to_be_bytes());
            for p in &positions {
                out.extend_from_slice(&p.to_be_bytes());
            }
            count += 1;
        }
        out[..4].copy_from_slice(&count.to_be_bytes());
        Self(out)
    }
}

impl sqlx::Type<Postgres> for Document {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(TSVECTOR_OID))
    }
}

impl PgHasArrayType for Document {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(TSVECTOR_ARRAY_OID))
    }
}

impl sqlx::Encode<'_, Postgres> for Document {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }
}

/// The words of one column in byte order (as PostgreSQL orders lexemes), each with its positions
/// (1-based, ascending, capped as `to_tsvector` caps them); the positions of every word share one
/// buffer, so a document costs a few allocations, not one per word.
struct Column<'a> {
    /// Each word with the range of its positions in `positions`.
    words: Vec<(&'a str, Range<usize>)>,
    /// The positions of all words, word after word.
    positions: Vec<u16>,
}

impl<'a> Column<'a> {
    /// The column of these words (in text order).
    fn of(words: &'a [Cow<'a, str>]) -> Self {
        let mut numbered: Vec<(&str, u16)> = Vec::with_capacity(words.len());
        let mut position: u32 = 0;
        for word in words {
            if word.len() > MAX_WORD_BYTES {
                continue;
            }
            position += 1;
            numbered.push((word, position.min(u32::from(LAST_POSITION)) as u16));
        }
        numbered.sort_unstable();
        let mut column = Self {
            words: Vec::with_capacity(numbered.len()),
            positions: Vec::with_capacity(numbered.len()),
        };
        for (word, position) in numbered {
            match column.words.last_mut() {
                // Sorted, so the last word's positions end the buffer.
                Some((last, at)) if *last == word => {
                    let kept = &column.positions[at.clone()];
                    let full = kept.len() >= COLUMN_POSITIONS;
                    let at_end = kept.last() == Some(&LAST_POSITION);
                    if !full && !at_end && kept.last() != Some(&position) {
                        column.positions.push(position);
                        at.end += 1;
                    }
                }
                _ => {
                    let start = column.positions.len();
                    column.positions.push(position);
                    column.words.push((word, start..start + 1));
                }
            }
        }
        column
    }

    /// The positions of the word at `at`.
    fn at(&self, at: &Range<usize>) -> &[u16] {
        &self.positions[at.clone()]
    }
}

/// The words of a title or body, folded, at most [`MAX_DOCUMENT_BYTES`] of them (joined).
fn column_words(text: &str) -> Vec<Cow<'_, str>> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for word in words(text) {
        bytes += word.len() + usize::from(bytes > 0);
        if bytes > MAX_DOCUMENT_BYTES {
            break;
        }
        out.push(word);
    }
    out
}

/// A `tsquery` matching documents that hold every word of `text` (`None` when it has none).
pub(crate) fn all_words_tsquery(text: &str) -> Option<String> {
    let words = query_words(text);
    (!words.is_empty()).then(|| tsquery(&words, " & "))
}

/// The folded words of a search query, at most [`MAX_QUERY_WORDS`] (no longer than a document
/// word can be).
pub(crate) fn query_words(text: &str) -> Vec<String> {
    folded_words(text).take(MAX_QUERY_WORDS).collect()
}

/// Every folded word of `text` a document could hold, in order.
pub(crate) fn folded_words(text: &str) -> impl Iterator<Item = String> + '_ {
    words(text)
        .filter(|w| w.len() <= MAX_WORD_BYTES)
        .map(Cow::into_owned)
}

/// `words` as a `tsquery` text joined by `operator`, each quoted so the server takes it as the
/// lexeme it is (no parser, no dictionary).
pub(crate) fn tsquery<S: AsRef<str>>(words: &[S], operator: &str) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.as_ref().replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    quoted.join(operator)
}

fn words(text: &str) -> impl Iterator<Item = Cow<'_, str>> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold_word)
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (word, [(position, weight)]) of a document, read back from its binary form.
    fn read(document: &Document) -> Vec<(String, Vec<(u16, char)>)> {
        let bytes = &document.0;
        let count = i32::from_be_bytes(bytes[..4].try_into().unwrap());
        let mut at = 4;
        let mut out = Vec::new();
        for _ in 0..count {
            let end = at + bytes[at..].iter().position(|b| *b == 0).unwrap();
            let word = String::from_utf8(bytes[at..end].to_vec()).unwrap();
            at = end + 1;
            let n = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            at += 2;
            let mut positions = Vec::new();
            for _ in 0..n {
                let p = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
                at += 2;
                positions.push((
                    p & LAST_POSITION,
                    ['D', 'C', 'B', 'A'][usize::from(p >> 14)],
                ));
            }
            out.push((word, positions));
        }
        assert_eq!(at, bytes.len(), "nothing after the last word");
        out
    }

    #[test]
    fn words_are_cut_at_non_alphanumerics_and_folded() {
        assert_eq!(
            column_words("OPS-101: Café «naïve» e-mail x@y.org").join(" "),
            "ops 101 cafe naive e mail x y org"
        );
        assert_eq!(
            column_words("Привет, МИР 東京").join(" "),
            "привет мир 東京"
        );
        assert_eq!(query_words("a OR b*\" NEAR(").join(" "), "a or b near");
        assert!(query_words("  \"*() - ").is_empty());
        assert_eq!(
            all_words_tsquery("1e5abc, Café").as_deref(),
            Some("'1e5abc' & 'cafe'")
        );
        assert_eq!(all_words_tsquery(" - "), None);
        assert_eq!(tsquery(&["it's", "a\\b"], " | "), "'it''s' | 'a\\\\b'");
    }

    #[test]
    fn long_documents_are_cut_at_a_word() {
        let text = "word ".repeat(100_000);
        let words = column_words(&text);
        assert!(words.join(" ").len() <= MAX_DOCUMENT_BYTES);
        assert!(words.len() > MAX_DOCUMENT_BYTES / 5 - 2);
        assert!(words.iter().all(|w| w == "word"));
    }

    #[test]
    fn documents_hold_sorted_words_with_weighted_positions() {
        let document = Document::new("Renew renew SOW", "sow the seeds");
        let expected = [
            ("renew", vec![(1, 'A'), (2, 'A')]),
            ("seeds", vec![(6, 'B')]),
            ("sow", vec![(3, 'A'), (4, 'B')]),
            ("the", vec![(5, 'B')]),
        ];
        let expected: Vec<(String, Vec<(u16, char)>)> = expected
            .into_iter()
            .map(|(w, p)| (w.to_string(), p))
            .collect();
        assert_eq!(read(&document), expected);
        assert!(read(&Document::new("", " - ")).is_empty());
    }

    #[test]
    fn positions_are_capped_as_postgresql_caps_them() {
        // 300 repeats keep 255 positions in a column, 256 in a document.
        let a = "a ".repeat(300);
        let document = read(&Document::new(&a, &format!("{a} b")));
        assert_eq!(document[0].1.len(), 256);
        assert_eq!(document[0].1[255], (256, 'B'));
        // The body starts after the title's last recorded position (255), not its 300 words.
        assert_eq!(document[1], ("b".to_string(), vec![(556, 'B')]));
        // Past 16,383 every word shares the last position, recorded once.
        let long = format!("{}a b c a", "x ".repeat(16_380));
        let document = read(&Document::new(&long, "a"));
        let a = document.iter().find(|(w, _)| w == "a").unwrap();
        assert_eq!(a.1, vec![(16_381, 'A'), (16_383, 'A')]);
        // Words of 2,047 bytes and more are left out and take no position.
        let title = format!("{} {} q", "y".repeat(2046), "z".repeat(2047));
        let document = read(&Document::new(&title, ""));
        assert_eq!(document.len(), 2);
        assert_eq!(document[0].1, vec![(2, 'A')]);
        assert_eq!(document[1].0.len(), 2046);
    }
}
