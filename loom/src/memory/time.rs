//! Points in time for memory: milliseconds since the Unix epoch, UTC, written as RFC 3339.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, to the millisecond, in UTC: when a fact held, when it was recorded, when an
/// episode happened.
///
/// Written and read as RFC 3339 (`2025-06-01T12:00:00Z`, or `2025-06-01` for midnight); in
/// JSON also read from a number of milliseconds since the Unix epoch.
///
/// ```
/// use loomflow::memory::Timestamp;
///
/// let t = Timestamp::parse("2025-06-01T12:30:00Z")?;
/// assert_eq!(t, Timestamp::from_ymd_hms(2025, 6, 1, 12, 30, 0));
/// assert_eq!(t.to_string(), "2025-06-01T12:30:00Z");
/// assert!(Timestamp::parse("2025-06-01")? < t);
/// # Ok::<(), loomflow::memory::TimestampError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Text that is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a time; write it as RFC 3339, e.g. `2025-06-01T12:00:00Z` or `2025-06-01`")]
pub struct TimestampError(String);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// Now, by this machine's clock.
    pub fn now() -> Self {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Self(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Midnight UTC of a day.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Self {
        Self::from_ymd_hms(year, month, day, 0, 0, 0)
    }

    /// A time of a day, UTC. Out-of-range parts carry over (month 13 is January of the next
    /// year), as a calendar would count them.
    pub fn from_ymd_hms(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Self {
        let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
        let seconds = days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second);
        Self(seconds.saturating_mul(1_000))
    }

    /// `ms` milliseconds later.
    #[must_use]
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Reads RFC 3339: `2025-06-01`, `2025-06-01T12:00:00Z`, `2025-06-01T12:00:00.250+02:00`.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        parse_rfc3339(text.trim()).ok_or_else(|| TimestampError(text.chars().take(64).collect()))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Months past 12 carry into years.
    let year = year + (month - 1).div_euclid(12);
    let month = (month - 1).rem_euclid(12) + 1;
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn parse_rfc3339(t: &str) -> Option<Timestamp> {
    let digits = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let (date, time) = match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut parts = date.splitn(3, '-');
    let (year, month, day) = (digits(parts.next()?)?, digits(parts.next()?)?, digits(parts.next()?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year > 9_999 {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if let Some(time) = time {
        let (clock, offset_ms) = if let Some(rest) = time.strip_suffix(['Z', 'z']) {
            (rest, 0)
        } else {
            let at = time.rfind(['+', '-'])?;
            let (clock, offset) = time.split_at(at);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (h, m) = offset[1..].split_once(':')?;
            (clock, sign * (digits(h)? * 3_600_000 + digits(m)? * 60_000))
        };
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, f)) => (hms, Some(f)),
            None => (clock, None),
        };
        let mut hms = hms.splitn(3, ':');
        let (h, m) = (digits(hms.next()?)?, digits(hms.next()?)?);
        let s = hms.next().map_or(Some(0), digits)?;
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        let frac_ms = match fraction {
            Some(f) => {
                let f: String = f.chars().take(3).collect();
                digits(&f)? * 10_i64.pow(3 - f.len() as u32)
            }
            None => 0,
        };
        ms += h * 3_600_000 + m * 60_000 + s * 1_000 + frac_ms - offset_ms;
    }
    Some(Timestamp(ms))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400_000);
        let in_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s, ms) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1_000 % 60, in_day % 1_000);
        write!(f, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}")?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Millis(ms) => Ok(Self(ms)),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_text_and_carry_over() {
        for text in ["1970-01-01T00:00:00Z", "2025-06-01T12:30:05Z", "2000-02-29T23:59:59.250Z", "1969-12-31T23:59:59Z"]
        {
            let t = Timestamp::parse(text).unwrap_or(Timestamp::EPOCH);
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(Timestamp::parse("2025-06-01T14:30:00+02:00"), Ok(Timestamp::from_ymd_hms(2025, 6, 1, 12, 30, 0)));
        assert_eq!(Timestamp::parse("2025-06-01"), Ok(Timestamp::from_ymd(2025, 6, 1)));
        assert_eq!(Timestamp::from_ymd(2025, 13, 1), Timestamp::from_ymd(2026, 1, 1));
        for bad in ["", "2025-13-01", "yesterday", "2025-06-01T25:00:00Z", "2025-06-01T12:00:00+0200"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
        let json: Timestamp = serde_json::from_str("86400000").unwrap_or(Timestamp::EPOCH);
        assert_eq!(json, Timestamp::from_ymd(1970, 1, 2));
        assert_eq!(serde_json::to_string(&json).unwrap_or_default(), "\"1970-01-02T00:00:00Z\"");
    }
}
