//! Time as the engine sees it: an opaque instant handed in by the caller, never read from a clock.

use std::fmt;
use std::ops::Add;
use std::time::Duration;

/// Milliseconds since the Unix epoch. The engine never reads a clock: every `now` is an input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub const fn from_millis(ms: u64) -> Time {
        Time(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// RFC 3339 in UTC with milliseconds (`2026-01-01T00:00:00.000Z`).
    pub fn rfc3339(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.milli
        )
    }

    /// The UTC calendar date and time of this instant, computed here so the engine needs no
    /// calendar crate (Howard Hinnant's civil-from-days).
    pub fn civil(self) -> Civil {
        let milli = self.0 % 1000;
        let secs = self.0 / 1000;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + u64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            milli,
        }
    }

    /// This instant `d` earlier (the epoch at the earliest).
    pub fn earlier_by(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(millis(d)))
    }

    /// How long after `earlier` this instant is (zero when it is not later).
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A UTC date and time ([`Time::civil`]); months and days count from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: u64,
    pub month: u64,
    pub day: u64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
    pub milli: u64,
}

/// `time + duration`, saturating at the far future instead of overflowing.
impl Add<Duration> for Time {
    type Output = Time;

    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(millis(d)))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Milliseconds of a duration, saturating; the unit OCF uses for `timeout` and `interval`.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_by_hand() {
        assert_eq!(Time::ZERO.rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Time::from_millis(1_767_225_600_000).rfc3339(),
            "2026-01-01T00:00:00.000Z"
        );
        // A leap day, and the end of a century that is not a leap year.
        assert_eq!(
            Time::from_millis(951_782_400_123).rfc3339(),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            Time::from_millis(4_107_542_399_999).rfc3339(),
            "2100-02-28T23:59:59.999Z"
        );
    }
}
