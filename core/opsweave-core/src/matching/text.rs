//! Normalisation and parsing of raw cell text: tokens, q-grams, identifiers, numbers, dates.

use chrono::{Datelike, NaiveDate};

/// Lower-cases, folds every non-alphanumeric run to one space and trims.
pub fn normalise(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
    out
}

/// Word tokens of `raw`, plus the joined form of punctuated chunks (`KCA-IP500` → `kcaip500`),
/// so that one source writing a code with hyphens and the other without still share a token.
pub fn words(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in raw.split_whitespace() {
        let lower = chunk.to_lowercase();
        let mut parts = 0;
        for part in lower.split(|c: char| !c.is_alphanumeric()) {
            if !part.is_empty() {
                out.push(part.to_string());
                parts += 1;
            }
        }
        if parts > 1 {
            let joined: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
            if is_code(&joined) {
                out.push(joined);
            }
        }
    }
    out
}

/// Character q-grams of a token, padded so that short tokens still give a key.
pub fn qgrams(token: &str, q: usize) -> Vec<String> {
    let chars: Vec<char> = std::iter::once('^')
        .chain(token.chars())
        .chain(std::iter::once('$'))
        .collect();
    if chars.len() <= q {
        return vec![chars.iter().collect()];
    }
    chars.windows(q).map(|w| w.iter().collect()).collect()
}

/// True when a normalised token looks like a product code, part number or other identifier:
/// letters and digits mixed, or a long run of digits.
pub fn is_code(token: &str) -> bool {
    let len = token.chars().count();
    if len < 4 {
        return false;
    }
    let digits = token.chars().filter(char::is_ascii_digit).count();
    let letters = token.chars().filter(|c| c.is_alphabetic()).count();
    if digits == 0 || digits + letters != len {
        return false;
    }
    if letters == 0 {
        return len >= 6;
    }
    // A number with a unit ("1080p", "500gb", "12mp") is a size, not an identity.
    let unit = token.starts_with(|c: char| c.is_ascii_digit())
        && letters <= 3
        && token
            .trim_end_matches(|c: char| c.is_alphabetic())
            .chars()
            .all(|c| c.is_ascii_digit());
    if unit {
        return false;
    }
    true
}

/// The identifier-like codes inside free text, normalised to lower-case alphanumerics.
///
/// Each whitespace chunk gives its joined form (`ZL23-44MU` → `zl2344mu`) and its parts; a code
/// followed by a short all-letter chunk also gives the two joined (`SD1100 IS` → `sd1100is`),
/// since sources disagree on where a model suffix starts.
pub fn codes(raw: &str) -> Vec<String> {
    let chunks: Vec<String> = raw.split_whitespace().map(|c| c.to_lowercase()).collect();
    let mut out: Vec<String> = Vec::new();
    let joined_of = |c: &str| -> String { c.chars().filter(|c| c.is_alphanumeric()).collect() };
    for (i, chunk) in chunks.iter().enumerate() {
        let joined = joined_of(chunk);
        if is_code(&joined) {
            out.push(joined.clone());
            if let Some(next) = chunks.get(i + 1) {
                let next = joined_of(next);
                if !next.is_empty() && next.len() <= 3 && next.chars().all(char::is_alphabetic) {
                    out.push(format!("{joined}{next}"));
                }
            }
        }
        for part in chunk.split(|c: char| !c.is_alphanumeric()) {
            if part.len() < joined.len() && is_code(part) {
                out.push(part.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Parses a number, tolerating currency symbols, thousands separators and spaces.
pub fn number(raw: &str) -> Option<f64> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let cleaned: String = trimmed
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | '$' | '€' | '£' | '¥' | '_'))
        .collect();
    let upper = cleaned.to_ascii_uppercase();
    let cleaned = ["USD", "EUR", "GBP", "CHF", "JPY"]
        .iter()
        .fold(upper.as_str(), |s, code| {
            s.trim_start_matches(code).trim_end_matches(code)
        });
    if cleaned.is_empty() || !cleaned.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// True when the raw text carries a currency marker.
pub fn has_currency(raw: &str) -> bool {
    raw.chars().any(|c| matches!(c, '$' | '€' | '£' | '¥'))
        || raw.split_whitespace().any(|w| {
            matches!(
                w.to_ascii_uppercase().as_str(),
                "USD" | "EUR" | "GBP" | "CHF" | "JPY"
            )
        })
}

/// Parses a calendar date: ISO (`2026-11-23`, with optional time), `YYYY/MM/DD`, compact
/// `YYYYMMDD`, or `DD/MM/YYYY` / `DD.MM.YYYY` (day first when ambiguous).
pub fn date(raw: &str) -> Option<NaiveDate> {
    let t = raw.trim();
    let head = t.get(..10).unwrap_or(t);
    for fmt in [
        "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y", "%d-%m-%Y",
    ] {
        if let Ok(d) = NaiveDate::parse_from_str(head, fmt) {
            return plausible(d);
        }
    }
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(t, "%Y%m%d")
            .ok()
            .and_then(plausible);
    }
    None
}

fn plausible(d: NaiveDate) -> Option<NaiveDate> {
    (1800..=2200).contains(&d.year()).then_some(d)
}

/// The email address in `raw`, lower-cased (`Name <a@b.c>` gives `a@b.c`).
pub fn email(raw: &str) -> Option<String> {
    let t = raw.trim();
    let inner = match (t.find('<'), t.rfind('>')) {
        (Some(a), Some(b)) if a < b => &t[a + 1..b],
        _ => t,
    };
    let inner = inner.trim().to_lowercase();
    let (local, domain) = inner.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !inner.contains(char::is_whitespace);
    ok.then_some(inner)
}

/// The host of a URL, email or bare domain, lower-cased, without `www.`.
pub fn domain(raw: &str) -> Option<String> {
    let t = raw.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    let t = match t.split_once('@') {
        Some((_, d)) => d.to_string(),
        None => t,
    };
    let rest = t.split_once("://").map_or(t.as_str(), |(_, r)| r);
    let host = rest
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or_default()
        .trim_start_matches("www.");
    let labels: Vec<&str> = host.split('.').collect();
    let ok = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    ok.then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_inside_titles() {
        let c = codes("Sony Turntable - PSLX350H");
        assert_eq!(c, vec!["pslx350h"]);
        let c = codes("Kenwood KCA-IP500 iPod Interface/Controller");
        assert!(c.contains(&"kcaip500".to_string()), "{c:?}");
        let c = codes("Canon PowerShot SD1100 IS Digital");
        assert!(c.contains(&"sd1100is".to_string()) && c.contains(&"sd1100".to_string()));
        assert!(codes("Samsung 46' LCD 1080p").is_empty());
        assert_eq!(codes("Garmin 010-10702-00"), vec!["0101070200"]);
    }

    #[test]
    fn words_keep_joined_codes() {
        let w = words("Sony DAV-HDX576WF system");
        assert_eq!(w, vec!["sony", "dav", "hdx576wf", "davhdx576wf", "system"]);
        assert_eq!(normalise("  Hello,  World! "), "hello world");
    }

    #[test]
    fn numbers_dates_emails_domains() {
        assert_eq!(number("$1,299.99"), Some(1299.99));
        assert_eq!(number("abc"), None);
        assert_eq!(date("19560409"), NaiveDate::from_ymd_opt(1956, 4, 9));
        assert_eq!(
            date("2026-11-23T10:00:00Z"),
            NaiveDate::from_ymd_opt(2026, 11, 23)
        );
        assert_eq!(date("1804974"), None);
        assert_eq!(
            email("Hank <Hank@Globex.com>").as_deref(),
            Some("hank@globex.com")
        );
        assert_eq!(
            domain("https://www.globex.com/about").as_deref(),
            Some("globex.com")
        );
        assert_eq!(domain("bob@globex.com").as_deref(), Some("globex.com"));
        assert_eq!(domain("not a domain"), None);
    }
}
