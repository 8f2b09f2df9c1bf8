//! Words for full-text search, cut the way SQLite's `unicode61 remove_diacritics 2` tokenizer
//! cuts them: runs of letters and digits, case-folded, diacritics removed. The store hands
//! PostgreSQL only these words (through the `simple` configuration), so both backends find the
//! same records whatever the server's locale, version or extensions.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// At most this many bytes of words per column: a `tsvector` holds at most 1 MiB.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// At most this many query words (as the embedded store).
const MAX_QUERY_WORDS: usize = 32;

/// The words of `text`, folded, joined by single spaces.
pub(crate) fn document_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DOCUMENT_BYTES));
    for word in words(text) {
        if out.len() + word.len() + 1 > MAX_DOCUMENT_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    out
}

/// The words of a search query, folded, joined by spaces; `None` when it has none.
pub(crate) fn query_words(text: &str) -> Option<String> {
    let words: Vec<String> = words(text).take(MAX_QUERY_WORDS).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold)
        .filter(|w| !w.is_empty())
}

/// Lower case without diacritics: "Ça" → "ca", "Łódź" keeps its stroke ("łodz"), as unicode61.
fn fold(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_cut_at_non_alphanumerics_and_folded() {
        assert_eq!(
            document_words("OPS-101: Café «naïve» e-mail x@y.org"),
            "ops 101 cafe naive e mail x y org"
        );
        assert_eq!(document_words("Привет, МИР 東京"), "привет мир 東京");
        assert_eq!(
            query_words("a OR b*\" NEAR(").as_deref(),
            Some("a or b near")
        );
        assert_eq!(query_words("  \"*() - "), None);
    }

    #[test]
    fn long_documents_are_cut_at_a_word() {
        let text = "word ".repeat(100_000);
        let words = document_words(&text);
        assert!(words.len() <= MAX_DOCUMENT_BYTES);
        assert!(words.ends_with("word"));
    }
}
