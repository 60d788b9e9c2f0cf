//! [`RetentionPolicy`]: the typed `[retention]` config section the planner works from.

use jiff::tz::TimeZone;

/// How many managed snapshots of a share to keep, and for how long.
///
/// This is the typed form of the `[retention]` config section; parsing and validating the TOML
/// is the config module's job. The planner accepts any value of every field (see each field for
/// what the extremes mean). See [`plan`](super::plan()) for how the rules combine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep every managed snapshot whose backup time is at or after `now - hourly_hours`.
    /// `0` disables the hourly rule.
    pub hourly_hours: u32,
    /// Keep the newest managed snapshot of each calendar day (in [`timezone`](Self::timezone))
    /// from today back to `daily_days - 1` days before today. `0` disables the daily rule.
    pub daily_days: u32,
    /// Keep the newest managed snapshot of each ISO week (Monday to Sunday, in
    /// [`timezone`](Self::timezone)) from the current week back to `weekly_weeks - 1` weeks
    /// before it, counting only days older than the daily window. `0` means every week, forever;
    /// otherwise snapshots older than the weekly window are destroyed.
    pub weekly_weeks: u32,
    /// The zone whose calendar days and weeks the daily and weekly rules use.
    pub timezone: TimeZone,
    /// When the pool's free space is below this percentage of its size, snapshots kept only by
    /// the hourly, daily and weekly rules are destroyed too, oldest first, until the projected
    /// free space reaches it. `0` disables this; values above 100 act like 100.
    pub min_free_percent: u8,
}

impl Default for RetentionPolicy {
    /// 24 hourly hours, 30 daily days, weekly forever, the host's time zone, no free-space floor.
    fn default() -> RetentionPolicy {
        RetentionPolicy {
            hourly_hours: 24,
            daily_days: 30,
            weekly_weeks: 0,
            timezone: TimeZone::system(),
            min_free_percent: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_config() {
        let p = RetentionPolicy::default();
        assert_eq!(p.hourly_hours, 24);
        assert_eq!(p.daily_days, 30);
        assert_eq!(p.weekly_weeks, 0);
        assert_eq!(p.timezone, TimeZone::system());
        assert_eq!(p.min_free_percent, 0);
    }
}
