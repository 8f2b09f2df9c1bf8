//! Time zones: where a user's day starts and how naive times in source data are read.
//!
//! A [`Zone`] is a fixed offset (`+02:00`, `Z`) or an IANA name (`Europe/Berlin`) whose
//! daylight-saving rules come from the tz database compiled into `chrono-tz`, so "today" and a
//! naive 09:00 follow the clock change without a server or a system zoneinfo.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::str::FromStr;

/// A fixed offset from UTC or an IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Always the same offset.
    Fixed(FixedOffset),
    /// A named zone with its daylight-saving rules.
    Named(Tz),
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Named(Tz::UTC);

    /// A fixed offset `minutes` east of UTC; `None` past ±24 hours.
    pub fn east_minutes(minutes: i32) -> Option<Zone> {
        FixedOffset::east_opt(minutes.checked_mul(60)?).map(Zone::Fixed)
    }

    /// The offset from UTC in effect at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(tz) => tz.offset_from_utc_datetime(&at.naive_utc()).fix(),
        }
    }

    /// The calendar date at `at` in this zone; `None` past the calendar.
    pub fn date_at(&self, at: DateTime<Utc>) -> Option<NaiveDate> {
        let offset = Duration::seconds(i64::from(self.offset_at(at).local_minus_utc()));
        at.checked_add_signed(offset)
            .map(|local| local.date_naive())
    }

    /// The instant a wall-clock time in this zone names. A time the clock skipped (spring
    /// forward) is read with the offset before the change, landing as far past the change as it
    /// was written past it; a time the clock showed twice (fall back) is the earlier one. `None`
    /// past the calendar.
    pub fn instant_of(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Zone::Fixed(offset) => offset
                .from_local_datetime(&local)
                .single()
                .map(|t| t.to_utc()),
            Zone::Named(tz) => match tz.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) => Some(t.to_utc()),
                chrono::LocalResult::Ambiguous(earlier, _) => Some(earlier.to_utc()),
                chrono::LocalResult::None => {
                    // Every gap in the tz database is shorter than a day: a day earlier the
                    // clock still showed the offset the gap jumped from.
                    let before = tz
                        .offset_from_local_datetime(&local.checked_sub_signed(Duration::days(1))?)
                        .earliest()?
                        .fix();
                    local
                        .checked_sub_signed(Duration::seconds(i64::from(before.local_minus_utc())))
                        .map(|t| t.and_utc())
                }
            },
        }
    }

    /// Reads `+02:00`, `-0530`, `Z`, `UTC` or an IANA name such as `Europe/Berlin`; `None`
    /// for anything else.
    pub fn parse(text: &str) -> Option<Zone> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
            return Some(Zone::UTC);
        }
        if let Some(offset) = parse_offset(t) {
            return Some(Zone::Fixed(offset));
        }
        Tz::from_str(t).ok().map(Zone::Named)
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(offset) => write!(f, "{offset}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// Parses `+02:00` or `-0530`.
fn parse_offset(t: &str) -> Option<FixedOffset> {
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").unwrap()
    }

    #[test]
    fn names_offsets_and_utc_parse() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.to_string(), "Europe/Berlin");
        assert_eq!(Zone::parse(" Z ").unwrap(), Zone::UTC);
        assert_eq!(Zone::parse("utc").unwrap(), Zone::UTC);
        assert_eq!(
            Zone::parse("+02:00").unwrap(),
            Zone::east_minutes(120).unwrap()
        );
        assert_eq!(
            Zone::parse("-0530").unwrap(),
            Zone::east_minutes(-330).unwrap()
        );
        for bad in ["", "Berlin", "Europe/Atlantis", "+2", "+25:00", "02:00"] {
            assert_eq!(Zone::parse(bad), None, "{bad}");
        }
        assert_eq!(Zone::east_minutes(24 * 60 + 1), None);
    }

    #[test]
    fn the_day_follows_daylight_saving_time() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let fixed = Zone::east_minutes(60).unwrap();
        // 22:30 UTC on 30 June is 00:30 on 1 July in Berlin's summer time (+2), 23:30 at +1.
        let summer = utc("2026-06-30T22:30:00Z");
        assert_eq!(berlin.date_at(summer).unwrap().to_string(), "2026-07-01");
        assert_eq!(fixed.date_at(summer).unwrap().to_string(), "2026-06-30");
        // In winter Berlin is +1: 23:30 UTC on 30 November is 00:30 on 1 December there.
        let winter = utc("2026-11-30T23:30:00Z");
        assert_eq!(berlin.date_at(winter).unwrap().to_string(), "2026-12-01");
        assert_eq!(berlin.offset_at(winter).local_minus_utc(), 3600);
        assert_eq!(berlin.offset_at(summer).local_minus_utc(), 7200);
        // New York is five hours behind in winter, four in summer.
        let new_york = Zone::parse("America/New_York").unwrap();
        assert_eq!(
            new_york
                .date_at(utc("2026-07-01T03:30:00Z"))
                .unwrap()
                .to_string(),
            "2026-06-30"
        );
        assert_eq!(
            new_york
                .date_at(utc("2026-12-01T04:30:00Z"))
                .unwrap()
                .to_string(),
            "2026-11-30"
        );
    }

    #[test]
    fn wall_clock_times_around_the_changes() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(
            berlin.instant_of(local("2026-07-01T09:00")).unwrap(),
            utc("2026-07-01T07:00:00Z")
        );
        assert_eq!(
            berlin.instant_of(local("2026-12-01T09:00")).unwrap(),
            utc("2026-12-01T08:00:00Z")
        );
        // 29 March 2026: 02:00 → 03:00; 02:30 never shows and reads as 03:30 summer time.
        assert_eq!(
            berlin.instant_of(local("2026-03-29T02:30")).unwrap(),
            utc("2026-03-29T01:30:00Z")
        );
        // 25 October 2026: 03:00 → 02:00; 02:30 shows twice, the first (summer time) counts.
        assert_eq!(
            berlin.instant_of(local("2026-10-25T02:30")).unwrap(),
            utc("2026-10-25T00:30:00Z")
        );
        let fixed = Zone::east_minutes(-600).unwrap();
        assert_eq!(
            fixed.instant_of(local("2026-11-23T09:00")).unwrap(),
            utc("2026-11-23T19:00:00Z")
        );
    }

    #[test]
    fn instants_past_the_calendar_have_no_date() {
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.date_at(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(
            Zone::east_minutes(-60)
                .unwrap()
                .date_at(DateTime::<Utc>::MIN_UTC),
            None
        );
    }
}
