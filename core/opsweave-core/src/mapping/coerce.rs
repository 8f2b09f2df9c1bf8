//! Type coercion of raw values, each failure a reason a person can act on.

use super::{FieldRule, FieldType, Path};
use crate::model::Money;
use crate::zone::Zone;
use crate::Value;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use std::str::FromStr;

/// Coerces a raw JSON value to the rule's type.
pub fn coerce(raw: &Json, rule: &FieldRule) -> Result<Value, String> {
    match rule.ty {
        FieldType::String => Ok(Value::Text(text_of(raw).trim().to_string())),
        FieldType::Integer => integer(raw).map(Value::Integer),
        FieldType::Decimal => decimal(raw).map(Value::Decimal),
        FieldType::Money => money(raw, rule.currency.as_deref()).map(Value::Money),
        FieldType::Date => date(&text_of(raw), rule.format.as_deref())
            .and_then(|d| four_digit_year(raw, d.year()).map(|()| d))
            .map(Value::Date),
        FieldType::Datetime => datetime(raw, rule)
            .and_then(|t| four_digit_year(raw, t.year()).map(|()| t))
            .map(Value::DateTime),
        FieldType::Email => email(&text_of(raw)).map(Value::Email),
        FieldType::Url => url(&text_of(raw)).map(Value::Url),
        FieldType::Domain => domain(&text_of(raw)).map(Value::Domain),
        FieldType::Enum => enumeration(&text_of(raw), rule).map(Value::Enum),
        FieldType::Bool => boolean(&text_of(raw)).map(Value::Bool),
        FieldType::List => list(raw, rule).map(Value::List),
    }
}

/// Refuses years outside 1000–9999: chrono reads `26-12-01` as the year 26 and `-2026-01-01`
/// as 2027 BC, which would rank as overdue by centuries instead of being reported.
fn four_digit_year(raw: &Json, year: i32) -> Result<(), String> {
    if (1000..=9999).contains(&year) {
        Ok(())
    } else {
        Err(format!(
            "`{}` falls in the year {year}: write the year with four digits (1000-9999)",
            shorten(text_of(raw).trim())
        ))
    }
}

fn text_of(raw: &Json) -> String {
    match raw {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Null => String::new(),
        other => flatten_text(other),
    }
}

/// The text leaves of a structured value (`text` keys, as in Atlassian documents), joined.
pub(crate) fn flatten_text(v: &Json) -> String {
    fn walk(v: &Json, out: &mut Vec<String>) {
        match v {
            Json::String(s) => out.push(s.clone()),
            Json::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Json::Object(map) => {
                if let Some(Json::String(t)) = map.get("text") {
                    out.push(t.clone());
                } else if let Some(Json::String(t)) = map.get("name") {
                    out.push(t.clone());
                } else if let Some(content) = map.get("content") {
                    walk(content, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out.join(" ")
}

fn shorten(s: &str) -> String {
    let mut t: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        t.push('…');
    }
    t
}

fn integer(raw: &Json) -> Result<i64, String> {
    match raw {
        Json::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| {
                let text = n.to_string();
                too_large(&text, whole_number_part(&text), 19, &i64::MAX.to_string())
                    .unwrap_or_else(|| format!("`{n}` is not a whole number"))
            }),
        other => {
            let s = text_of(other);
            let t = s.trim();
            t.parse()
                .ok()
                .or_else(|| whole_number_text(t))
                .ok_or_else(|| {
                    too_large(t, whole_number_part(t), 19, &i64::MAX.to_string())
                        .unwrap_or_else(|| format!("`{}` is not a whole number", shorten(&s)))
                })
        }
    }
}

/// Whole numbers as spreadsheets and dataframes write them: `42.0` (pandas writes an integer
/// column with gaps as floats) and `1,234,567`. `12.000` stays an error: thousands or decimals?
fn whole_number_text(t: &str) -> Option<i64> {
    let (negative, body) = split_sign(t);
    let number = match body.split_once('.') {
        Some((whole, zeros)) => {
            let zero_fraction =
                !zeros.is_empty() && zeros.len() != 3 && zeros.bytes().all(|b| b == b'0');
            if !(all_digits(whole) && zero_fraction) {
                return None;
            }
            whole.to_string()
        }
        None if body.contains(',') && grouped(body, ',') => body.replace(',', ""),
        None => return None,
    };
    number
        .parse::<i64>()
        .ok()
        .map(|n| if negative { -n } else { n })
}

/// A leading `-` (true) or `+` taken off.
fn split_sign(t: &str) -> (bool, &str) {
    match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Digits in thousands: one to three, then groups of exactly three after each `sep`.
fn grouped(s: &str, sep: char) -> bool {
    let mut groups = s.split(sep);
    groups
        .next()
        .is_some_and(|first| all_digits(first) && first.len() <= 3)
        && groups.all(|g| g.len() == 3 && all_digits(g))
}

fn decimal(raw: &Json) -> Result<Decimal, String> {
    let s = text_of(raw);
    let t = s.trim();
    Decimal::from_str(t)
        .or_else(|_| Decimal::from_scientific(t))
        .ok()
        .or_else(|| decimal_text(t))
        .ok_or_else(|| {
            too_large(t, decimal_whole_part(t), 29, &Decimal::MAX.to_string())
                .unwrap_or_else(|| format!("`{}` is not a number", shorten(&s)))
        })
}

/// Why a number with `digits` or more digits before its decimal mark was refused when it does
/// not parse: it is larger than the type holds (fractions only round), which "not a number"
/// would hide. `whole_part` is the text before the decimal mark.
fn too_large(text: &str, whole_part: &str, digits: usize, most: &str) -> Option<String> {
    let shaped = text.bytes().all(|b| {
        b.is_ascii_digit() || matches!(b, b'.' | b',' | b'-' | b'+' | b'(' | b')' | b'\'' | b'_')
    });
    (shaped && whole_part.bytes().filter(u8::is_ascii_digit).count() >= digits).then(|| {
        format!(
            "`{}` is too large: at most {most} (and as low as -{most})",
            shorten(text)
        )
    })
}

/// A whole number's text before its `.` (`42.0` is whole; `,` only groups thousands).
fn whole_number_part(text: &str) -> &str {
    text.split('.').next().unwrap_or(text)
}

/// A decimal's text before its decimal mark: the last `.` or `,`, unless three digits follow it
/// (then it may group thousands, and every digit counts).
fn decimal_whole_part(text: &str) -> &str {
    match text.rfind(['.', ',']) {
        Some(at) if text.len() - at - 1 != 3 => &text[..at],
        _ => text,
    }
}

/// Decimals as spreadsheets write them: `1,234.5` and `1.234,5` (thousands in groups of three),
/// `1,234,567`, `60,5` (a decimal comma). `1,500` stays an error: thousands or decimals?
fn decimal_text(t: &str) -> Option<Decimal> {
    let (negative, body) = split_sign(t);
    let (dots, commas) = (body.matches('.').count(), body.matches(',').count());
    let (whole, fraction) = match (dots, commas) {
        (0, 1) => {
            let (whole, fraction) = body.split_once(',')?;
            if fraction.len() == 3 || !all_digits(whole) {
                return None;
            }
            (whole.to_string(), fraction)
        }
        (0, _) => {
            if !grouped(body, ',') {
                return None;
            }
            (body.replace(',', ""), "0")
        }
        (_, 0) => return None,
        _ => {
            let (mark, thousands) = if body.rfind('.') > body.rfind(',') {
                ('.', ',')
            } else {
                (',', '.')
            };
            if body.matches(mark).count() != 1 {
                return None;
            }
            let (whole, fraction) = body.split_once(mark)?;
            if !grouped(whole, thousands) {
                return None;
            }
            (whole.replace(thousands, ""), fraction)
        }
    };
    if !all_digits(fraction) {
        return None;
    }
    let value = Decimal::from_str(&format!("{whole}.{fraction}")).ok()?;
    Some(if negative { -value } else { value })
}

const SYMBOLS: [(&str, &str); 6] = [
    ("US$", "USD"),
    ("$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("₹", "INR"),
];

fn money(raw: &Json, default_currency: Option<&str>) -> Result<Money, String> {
    let original = text_of(raw);
    let mut s = original.trim().to_string();
    let mut currency: Option<String> = None;
    for (symbol, code) in SYMBOLS {
        if s.contains(symbol) {
            s = s.replace(symbol, "");
            currency = Some(code.to_string());
            break;
        }
    }
    // A three-letter code before or after the amount: "EUR 1200", "1200 eur".
    let tokens: Vec<&str> = s.split_whitespace().collect();
    let mut amount_text = String::new();
    for token in tokens {
        if token.len() == 3 && token.chars().all(|c| c.is_ascii_alphabetic()) {
            let code = token.to_ascii_uppercase();
            // "$1,234.00 USD" names one currency twice; "$12 EUR" names two.
            if currency.as_ref().is_some_and(|c| *c != code) {
                return Err(format!("`{}` names two currencies", shorten(&original)));
            }
            currency = Some(code);
        } else {
            amount_text.push_str(token);
        }
    }
    let amount = parse_amount(&amount_text).ok_or_else(|| {
        too_large(
            &amount_text,
            decimal_whole_part(&amount_text),
            29,
            &Decimal::MAX.to_string(),
        )
        .unwrap_or_else(|| format!("`{}` is not an amount of money", shorten(&original)))
    })?;
    let currency = match (currency, default_currency) {
        (Some(c), _) => c,
        (None, Some(d)) => d.trim().to_ascii_uppercase(),
        (None, None) => {
            return Err(format!(
                "`{}` names no currency and the mapping sets none (add `currency = \"USD\"`)",
                shorten(&original)
            ))
        }
    };
    Ok(Money { amount, currency })
}

/// Parses `1,234.50`, `1.234,50`, `1234,5`, `-12`, `(12.00)` as a decimal.
fn parse_amount(text: &str) -> Option<Decimal> {
    let mut t = text.trim().replace(['\u{a0}', '\'', '_'], "");
    let negative = t.starts_with('(') && t.ends_with(')');
    if negative {
        t = t[1..t.len() - 1].to_string();
    }
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+'))
    {
        return None;
    }
    let last_dot = t.rfind('.');
    let last_comma = t.rfind(',');
    let normalised = match (last_dot, last_comma) {
        (Some(d), Some(c)) if c > d => t.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => t.replace(',', ""),
        (None, Some(c)) => {
            let decimals = t.len() - c - 1;
            if t.matches(',').count() == 1 && decimals != 3 {
                t.replace(',', ".")
            } else {
                t.replace(',', "")
            }
        }
        _ => t,
    };
    let value = Decimal::from_str(&normalised).ok()?;
    Some(if negative { -value } else { value })
}

const DATE_FORMATS: [&str; 3] = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"];

fn date(text: &str, format: Option<&str>) -> Result<NaiveDate, String> {
    let t = text.trim();
    if let Some(f) = format {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(d);
        }
    }
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(d);
        }
    }
    // A datetime gives its own calendar date: the day as written, at its own offset (the
    // 23:30 of a UTC-5 evening is still that day, though it is the next one in UTC).
    if let Some(dt) = parse_datetime_as_written(t, None, Zone::UTC) {
        return Ok(dt.date_naive());
    }
    Err(match format {
        Some(f) => format!(
            "`{}` is not a date in format `{f}` or YYYY-MM-DD",
            shorten(t)
        ),
        None => format!("`{}` is not a date (expected YYYY-MM-DD)", shorten(t)),
    })
}

const NAIVE_FORMATS: [&str; 5] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
];

fn parse_datetime_text(t: &str, format: Option<&str>, zone: Zone) -> Option<DateTime<Utc>> {
    parse_datetime_as_written(t, format, zone).map(|dt| dt.with_timezone(&Utc))
}

/// A datetime at the offset it was written with (its time in `zone` when it names none).
fn parse_datetime_as_written(
    t: &str,
    format: Option<&str>,
    zone: Zone,
) -> Option<DateTime<FixedOffset>> {
    let in_zone = |n: NaiveDateTime| {
        let at = zone.instant_of(n)?;
        Some(at.with_timezone(&zone.offset_at(at)))
    };
    if let Some(f) = format {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt);
        }
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return in_zone(n);
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt);
    }
    // Jira and friends: 2026-11-20T10:00:00.000+0000
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Some(dt);
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
        return Some(dt);
    }
    for f in NAIVE_FORMATS {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return in_zone(n);
        }
    }
    None
}

fn datetime(raw: &Json, rule: &FieldRule) -> Result<DateTime<Utc>, String> {
    let zone = rule
        .timezone
        .as_deref()
        .and_then(Zone::parse)
        .unwrap_or_default();
    let epoch = |n: i64| {
        // Milliseconds (Gmail internalDate) beyond year 5138 in seconds are implausible.
        let dt = if n.abs() >= 100_000_000_000 {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        };
        dt.ok_or_else(|| format!("`{n}` is not a valid epoch time"))
    };
    if let Json::Number(n) = raw {
        return n
            .as_i64()
            .ok_or_else(|| format!("`{n}` is not an epoch time"))
            .and_then(epoch);
    }
    let text = text_of(raw);
    let t = text.trim();
    if !t.is_empty() && t.len() <= 14 && t.chars().all(|c| c.is_ascii_digit()) && t.len() >= 10 {
        return epoch(
            t.parse()
                .map_err(|_| format!("`{t}` is not an epoch time"))?,
        );
    }
    if let Some(dt) = parse_datetime_text(t, rule.format.as_deref(), zone) {
        return Ok(dt);
    }
    if let Ok(d) = date(t, None) {
        if let Some(dt) = d.and_hms_opt(0, 0, 0).and_then(|n| zone.instant_of(n)) {
            return Ok(dt);
        }
    }
    Err(format!(
        "`{}` is not a date-time (expected ISO 8601 / RFC 3339, RFC 2822 or epoch)",
        shorten(t)
    ))
}

fn email(text: &str) -> Result<String, String> {
    let t = text.trim();
    // "Jane Doe <jane@acme.com>" → jane@acme.com
    let addr = match (t.rfind('<'), t.rfind('>')) {
        (Some(a), Some(b)) if b > a => &t[a + 1..b],
        _ => t,
    };
    let addr = addr.trim().to_lowercase();
    let valid = match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !addr.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(addr)
    } else {
        Err(format!("`{}` is not an email address", shorten(t)))
    }
}

fn url(text: &str) -> Result<String, String> {
    let t = text.trim();
    let with_scheme = if t.contains("://") {
        t.to_string()
    } else {
        format!("https://{t}")
    };
    let lower = with_scheme.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| format!("`{}` is not an http(s) URL", shorten(t)))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("");
    if host.is_empty()
        || !(host.contains('.') || host == "localhost")
        || with_scheme
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("`{}` is not an http(s) URL", shorten(t)));
    }
    Ok(with_scheme)
}

fn domain(text: &str) -> Result<String, String> {
    let t = text.trim().to_lowercase();
    let host = if let Some((_, d)) = t.rsplit_once('@').filter(|_| !t.contains("://")) {
        d.to_string()
    } else {
        let rest = t.split_once("://").map_or(t.as_str(), |(_, r)| r);
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        host.split(':').next().unwrap_or("").to_string()
    };
    let host = host.trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    let valid = host.contains('.')
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if valid {
        Ok(host.to_string())
    } else {
        Err(format!("`{}` is not a domain or URL", shorten(text.trim())))
    }
}

fn enumeration(text: &str, rule: &FieldRule) -> Result<String, String> {
    let t = text.trim();
    if rule.values.is_empty() {
        return Ok(t.to_string());
    }
    rule.values
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(t))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            format!(
                "`{}` is not one of: {}",
                shorten(t),
                rule.values.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" | "t" => Ok(true),
        "false" | "no" | "n" | "0" | "off" | "f" => Ok(false),
        _ => Err(format!("`{}` is not true or false", shorten(text.trim()))),
    }
}

fn list(raw: &Json, rule: &FieldRule) -> Result<Vec<Value>, String> {
    let mut item_rule = rule.clone();
    item_rule.ty = rule.item.unwrap_or(FieldType::String);
    if item_rule.ty == FieldType::List {
        return Err("a list of lists is not supported".into());
    }
    let item_path = rule.item_path.as_deref().map(Path::parse).transpose()?;
    let items: Vec<Json> = match raw {
        Json::Array(items) => items.clone(),
        other => {
            let text = text_of(other);
            let sep = rule.separator.as_deref().unwrap_or(",");
            text.split(sep)
                .map(|s| Json::String(s.trim().to_string()))
                .collect()
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item = match &item_path {
            Some(p) => match p.get(item) {
                Some(v) => v,
                None => continue,
            },
            None => item,
        };
        if matches!(item, Json::Null) || matches!(item, Json::String(s) if s.trim().is_empty()) {
            continue;
        }
        out.push(coerce(item, &item_rule).map_err(|e| format!("item {}: {e}", i + 1))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(ty: FieldType) -> FieldRule {
        FieldRule::new("x", ty)
    }

    #[test]
    fn money_in_common_notations() {
        let r = rule(FieldType::Money);
        let m = |s: &str| {
            coerce(
                &json!(s),
                &FieldRule {
                    currency: Some("usd".into()),
                    ..r.clone()
                },
            )
        };
        let amount = |s: &str| match m(s).unwrap() {
            Value::Money(m) => (m.amount.to_string(), m.currency),
            other => panic!("{other:?}"),
        };
        assert_eq!(amount("$1,234.50"), ("1234.50".into(), "USD".into()));
        assert_eq!(amount("1.234,50 EUR"), ("1234.50".into(), "EUR".into()));
        assert_eq!(amount("1234,5"), ("1234.5".into(), "USD".into()));
        assert_eq!(amount("12,000"), ("12000".into(), "USD".into()));
        assert_eq!(amount("(12.00)"), ("-12.00".into(), "USD".into()));
        assert_eq!(amount("€ 99"), ("99".into(), "EUR".into()));
        assert!(m("twelve").is_err());
        assert!(m("USD 10 EUR").is_err());
        // Too many digits is said so, not "not an amount"; long fractions only round.
        let huge = m("123456789012345678901234567890123456789").unwrap_err();
        assert!(huge.contains("too large") && huge.contains("79228162514264337593543950335"));
        assert!(m("twelve").unwrap_err().contains("not an amount of money"));
        assert_eq!(
            amount("0.123456789012345678901234567891").0,
            "0.1234567890123456789012345679"
        );
        // A symbol and its own code name one currency; a symbol and another code, two.
        assert_eq!(amount("$1,234.00 USD"), ("1234.00".into(), "USD".into()));
        assert!(m("$12 EUR").unwrap_err().contains("two currencies"));
        let no_currency = coerce(&json!("10"), &r).unwrap_err();
        assert!(no_currency.contains("currency"), "{no_currency}");
        assert!(coerce(
            &json!(15000),
            &FieldRule {
                currency: Some("USD".into()),
                ..r
            }
        )
        .is_ok());
    }

    #[test]
    fn dates_and_datetimes() {
        let d = |s: &str| coerce(&json!(s), &rule(FieldType::Date));
        assert_eq!(
            d("2026-11-30").unwrap(),
            Value::Date(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
        );
        assert_eq!(
            d("2026-11-30T23:00:00Z").unwrap().as_date(),
            NaiveDate::from_ymd_opt(2026, 11, 30)
        );
        // The day as written, whatever day it is in UTC at that moment.
        for late_or_early in ["2026-11-20T23:30:00-05:00", "2026-11-20T00:30:00+09:00"] {
            assert_eq!(
                d(late_or_early).unwrap().as_date(),
                NaiveDate::from_ymd_opt(2026, 11, 20),
                "{late_or_early}"
            );
        }
        assert!(d("2026-13-01").unwrap_err().contains("2026-13-01"));
        assert!(d("next friday").is_err());
        // Short and signed years are reported, not read as antiquity.
        for odd in ["26-12-01", "0000-01-01", "-2026-01-01", "0999-12-31"] {
            let e = d(odd).unwrap_err();
            assert!(e.contains("four digits") && e.contains(odd), "{odd}: {e}");
        }
        assert!(d("1000-01-01").is_ok() && d("9999-12-31").is_ok());
        let dt = |s: Json, tz: Option<&str>| {
            coerce(
                &s,
                &FieldRule {
                    timezone: tz.map(str::to_string),
                    ..rule(FieldType::Datetime)
                },
            )
        };
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            dt(json!("2026-11-20T10:00:00.000+0000"), None).unwrap(),
            Value::DateTime(utc("2026-11-20T10:00:00Z"))
        );
        assert_eq!(
            dt(json!("2026-11-20T12:00:00+02:00"), None).unwrap(),
            Value::DateTime(utc("2026-11-20T10:00:00Z"))
        );
        assert_eq!(
            dt(json!("2026-11-20 12:00:00"), Some("+02:00")).unwrap(),
            Value::DateTime(utc("2026-11-20T10:00:00Z"))
        );
        assert_eq!(
            dt(json!("1763632800000"), None).unwrap(),
            Value::DateTime(utc("2025-11-20T10:00:00Z"))
        );
        assert_eq!(
            dt(json!(1763632800), None).unwrap(),
            Value::DateTime(utc("2025-11-20T10:00:00Z"))
        );
        assert_eq!(
            dt(json!("Thu, 20 Nov 2025 10:00:00 +0000"), None).unwrap(),
            Value::DateTime(utc("2025-11-20T10:00:00Z"))
        );
        assert!(dt(json!("yesterday"), None).is_err());
        // Naive values in a named zone take the offset of their date: +2 in July, +1 in
        // December; a date alone is its midnight there.
        let berlin = Some("Europe/Berlin");
        assert_eq!(
            dt(json!("2026-07-01 12:00:00"), berlin).unwrap(),
            Value::DateTime(utc("2026-07-01T10:00:00Z"))
        );
        assert_eq!(
            dt(json!("2026-12-01 12:00:00"), berlin).unwrap(),
            Value::DateTime(utc("2026-12-01T11:00:00Z"))
        );
        assert_eq!(
            dt(json!("2026-12-01"), berlin).unwrap(),
            Value::DateTime(utc("2026-11-30T23:00:00Z"))
        );
        // The hour the clock skipped in spring still reads, an hour on; written offsets win.
        assert_eq!(
            dt(json!("2026-03-29T02:30:00"), berlin).unwrap(),
            Value::DateTime(utc("2026-03-29T01:30:00Z"))
        );
        assert_eq!(
            dt(json!("2026-07-01T12:00:00Z"), berlin).unwrap(),
            Value::DateTime(utc("2026-07-01T12:00:00Z"))
        );
    }

    #[test]
    fn emails_urls_domains() {
        let e = |s: &str| coerce(&json!(s), &rule(FieldType::Email));
        assert_eq!(
            e("Jane Doe <Jane@Acme.COM>").unwrap(),
            Value::Email("jane@acme.com".into())
        );
        assert!(e("jane.acme.com").is_err());
        assert!(e("jane@acme").is_err());
        let u = |s: &str| coerce(&json!(s), &rule(FieldType::Url));
        assert_eq!(
            u("acme.com/x").unwrap(),
            Value::Url("https://acme.com/x".into())
        );
        assert!(u("ftp://acme.com").is_err());
        assert!(u("not a url").is_err());
        let d = |s: &str| coerce(&json!(s), &rule(FieldType::Domain));
        assert_eq!(
            d("https://www.Acme.com/about").unwrap(),
            Value::Domain("acme.com".into())
        );
        assert_eq!(
            d("sales@acme.co.uk").unwrap(),
            Value::Domain("acme.co.uk".into())
        );
        assert_eq!(d("acme.io").unwrap(), Value::Domain("acme.io".into()));
        assert!(d("acme").is_err());
    }

    #[test]
    fn enums_lists_bools_numbers() {
        let mut r = rule(FieldType::Enum);
        r.values.insert("Won".into(), "won".into());
        assert_eq!(
            coerce(&json!("WON"), &r).unwrap(),
            Value::Enum("won".into())
        );
        assert!(coerce(&json!("Maybe"), &r).unwrap_err().contains("Won"));
        let mut l = rule(FieldType::List);
        l.item_path = Some("/name".into());
        assert_eq!(
            coerce(&json!([{"name": "bug"}, {"name": "P1"}]), &l).unwrap(),
            Value::List(vec![Value::Text("bug".into()), Value::Text("P1".into())])
        );
        let mut split = rule(FieldType::List);
        split.item = Some(FieldType::Integer);
        split.separator = Some(";".into());
        assert_eq!(
            coerce(&json!("1; 2;"), &split).unwrap(),
            Value::List(vec![Value::Integer(1), Value::Integer(2)])
        );
        assert!(coerce(&json!("1;x"), &split)
            .unwrap_err()
            .contains("item 2"));
        assert_eq!(
            coerce(&json!("Yes"), &rule(FieldType::Bool)).unwrap(),
            Value::Bool(true)
        );
        assert!(coerce(&json!("maybe"), &rule(FieldType::Bool)).is_err());
        assert_eq!(
            coerce(&json!("42"), &rule(FieldType::Integer)).unwrap(),
            Value::Integer(42)
        );
        assert!(coerce(&json!("4.2"), &rule(FieldType::Integer)).is_err());
        // Past the type's range: said so, as text or as a JSON number.
        for huge in [
            json!("99999999999999999999"),
            json!(12345678901234567890_u64),
        ] {
            let err = coerce(&huge, &rule(FieldType::Integer)).unwrap_err();
            assert!(
                err.contains("too large") && err.contains("9223372036854775807"),
                "{err}"
            );
        }
        let err = coerce(&json!("1e400"), &rule(FieldType::Decimal)).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        let err = coerce(&json!("1".repeat(30)), &rule(FieldType::Decimal)).unwrap_err();
        assert!(err.contains("too large"), "{err}");
        // Long fractions are not "too large": a whole number's is just not whole.
        let err = coerce(&json!("1234567890.1234567890"), &rule(FieldType::Integer)).unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
        // As spreadsheets and pandas write whole numbers; `12.000` is ambiguous.
        for (text, want) in [
            ("42.0", 42),
            ("-7.00", -7),
            ("1,234,567", 1_234_567),
            ("+3", 3),
        ] {
            assert_eq!(
                coerce(&json!(text), &rule(FieldType::Integer)).unwrap(),
                Value::Integer(want),
                "{text}"
            );
        }
        for text in ["12.000", "1,23", "1,2345", "4.50", ",123", "1.0.0"] {
            assert!(
                coerce(&json!(text), &rule(FieldType::Integer)).is_err(),
                "{text}"
            );
        }
        assert_eq!(
            coerce(&json!(" 4.20 "), &rule(FieldType::Decimal)).unwrap(),
            Value::Decimal(Decimal::new(420, 2))
        );
        for (text, want) in [
            ("1,234.5", Decimal::new(12345, 1)),
            ("60,5", Decimal::new(605, 1)),
        ] {
            assert_eq!(
                coerce(&json!(text), &rule(FieldType::Decimal)).unwrap(),
                Value::Decimal(want),
                "{text}"
            );
        }
        for text in [
            "12 apples",
            "1,500",
            "1,2,3",
            "1.2.3,5",
            "1,2.5",
            ",5",
            "5,",
        ] {
            assert!(
                coerce(&json!(text), &rule(FieldType::Decimal)).is_err(),
                "{text}"
            );
        }
        for (text, want) in [
            ("1.234,5", Decimal::new(12345, 1)),
            ("-1,234,567", Decimal::new(-1_234_567, 0)),
        ] {
            assert_eq!(
                coerce(&json!(text), &rule(FieldType::Decimal)).unwrap(),
                Value::Decimal(want),
                "{text}"
            );
        }
        let adf = json!({"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Fix"}, {"type": "text", "text": "login"}]}]});
        assert_eq!(
            coerce(&adf, &rule(FieldType::String)).unwrap(),
            Value::Text("Fix login".into())
        );
    }
}
