//! The calendar side of the rules: which bucket (calendar day, ISO week, or none) a backup time
//! falls in, given the policy's windows, its time zone and `now`; and [`IsoWeek`], the label of a
//! weekly bucket.
//!
//! Everything here goes through civil (wall-clock) dates in the policy's zone: a day is the span
//! between two local midnights, 23 or 25 hours long on a DST change, and never "24 hours".

use std::fmt;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::RetentionPolicy;

/// An ISO 8601 week: Monday to Sunday, numbered within its ISO week-year, which is the year of
/// its Thursday. So 2026-12-31 lies in 2026-W53 and 2027-01-01 … 2027-01-03 too, while
/// 2025-12-29 … 2025-12-31 lie in 2026-W01. Displays as `2026-W44`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    /// The ISO week-year (not always the calendar year of every day in the week).
    pub year: i16,
    /// 1 to 52, or 53 in long years.
    pub week: i8,
}

impl IsoWeek {
    /// The ISO week `date` lies in.
    pub fn of(date: Date) -> IsoWeek {
        let w = date.iso_week_date();
        IsoWeek {
            year: w.year(),
            week: w.week(),
        }
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

/// Where a managed snapshot's backup time falls among the daily and weekly windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Bucket {
    /// A calendar day inside the daily window.
    Day(Date),
    /// An ISO week inside the weekly window (keyed by its Monday), holding only the days older
    /// than the daily window.
    Week(Date),
    /// Older than both windows (only possible with a finite weekly window).
    Expired,
}

/// The policy's windows resolved against one `now`.
pub(super) struct Calendar<'a> {
    tz: &'a TimeZone,
    /// Backup times at or after this are hourly; `None` when the hourly rule is off.
    hourly_from: Option<Timestamp>,
    /// The oldest day of the daily window; `None` when the daily rule is off.
    daily_from: Option<Date>,
    /// The Monday of the oldest week of the weekly window; `None` for every week.
    weekly_from: Option<Date>,
}

impl<'a> Calendar<'a> {
    pub(super) fn new(policy: &'a RetentionPolicy, now: Timestamp) -> Calendar<'a> {
        let tz = &policy.timezone;
        let today = tz.to_datetime(now).date();
        let hourly_from = (policy.hourly_hours > 0).then(|| {
            now.checked_sub(SignedDuration::from_hours(i64::from(policy.hourly_hours)))
                .unwrap_or(Timestamp::MIN)
        });
        let daily_from =
            (policy.daily_days > 0).then(|| days_before(today, i64::from(policy.daily_days) - 1));
        let weekly_from = (policy.weekly_weeks > 0)
            .then(|| days_before(monday_of(today), 7 * (i64::from(policy.weekly_weeks) - 1)));
        Calendar {
            tz,
            hourly_from,
            daily_from,
            weekly_from,
        }
    }

    /// Whether the hourly rule keeps a snapshot with this backup time (the edge is kept; times
    /// after `now` are kept too).
    pub(super) fn is_hourly(&self, t: Timestamp) -> bool {
        self.hourly_from.is_some_and(|from| t >= from)
    }

    /// The daily or weekly bucket of a backup time. The windows have no upper end: a backup
    /// time after `now` (a client clock running ahead) is bucketed by its own day and week.
    pub(super) fn bucket(&self, t: Timestamp) -> Bucket {
        let day = self.tz.to_datetime(t).date();
        if self.daily_from.is_some_and(|from| day >= from) {
            return Bucket::Day(day);
        }
        let monday = monday_of(day);
        match self.weekly_from {
            Some(from) if monday < from => Bucket::Expired,
            _ => Bucket::Week(monday),
        }
    }
}

/// The calendar day `days` days before `date` (saturating at the oldest representable date).
fn days_before(date: Date, days: i64) -> Date {
    date.saturating_sub(SignedDuration::from_hours(24 * days))
}

/// The Monday starting the ISO week of `date`.
fn monday_of(date: Date) -> Date {
    days_before(date, i64::from(date.weekday().since(Weekday::Monday)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn iso_week_labels_use_the_week_year() {
        let cases = [
            (date(2026, 11, 1), "2026-W44"),
            (date(2026, 12, 28), "2026-W53"),
            (date(2026, 12, 31), "2026-W53"),
            (date(2027, 1, 3), "2026-W53"),
            (date(2027, 1, 4), "2027-W01"),
            (date(2020, 12, 31), "2020-W53"),
            (date(2021, 1, 3), "2020-W53"),
            (date(2025, 12, 29), "2026-W01"),
            (date(2024, 12, 30), "2025-W01"),
            (date(2026, 1, 1), "2026-W01"),
        ];
        for (d, label) in cases {
            assert_eq!(IsoWeek::of(d).to_string(), label, "{d}");
        }
    }

    #[test]
    fn monday_of_every_weekday() {
        // 2026-12-28 is a Monday.
        for offset in 0..7 {
            let d = date(2026, 12, 28) + jiff::SignedDuration::from_hours(24 * offset);
            assert_eq!(monday_of(d), date(2026, 12, 28), "{d}");
        }
        assert_eq!(monday_of(date(2026, 12, 27)), date(2026, 12, 21));
    }

    #[test]
    fn extreme_windows_saturate_instead_of_panicking() {
        let policy = RetentionPolicy {
            hourly_hours: u32::MAX,
            daily_days: u32::MAX,
            weekly_weeks: u32::MAX,
            timezone: TimeZone::UTC,
            min_free_percent: 0,
        };
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let cal = Calendar::new(&policy, now);
        assert!(cal.is_hourly(Timestamp::MIN));
        assert!(matches!(cal.bucket(Timestamp::MIN), Bucket::Day(_)));
        let far = RetentionPolicy {
            daily_days: 0,
            ..policy
        };
        let cal = Calendar::new(&far, now);
        assert!(matches!(cal.bucket(Timestamp::MIN), Bucket::Week(_)));
        assert!(matches!(cal.bucket(Timestamp::MAX), Bucket::Week(_)));
    }
}
