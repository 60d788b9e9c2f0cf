//! [`Reason`]: why the planner keeps, destroys or leaves alone a snapshot, in words a person
//! reads in a plan (`keep: daily 2026-11-20`).

use std::fmt;

use jiff::civil::Date;
use serde::{Serialize, Serializer};

use super::IsoWeek;

/// One reason for a snapshot's [`Decision`](super::Decision).
///
/// A kept snapshot carries every keep reason that applies, in the order of the variants below; a
/// destroyed one carries exactly one destroy reason; a foreign one carries [`Reason::Foreign`].
/// Displays (and serializes) as the line shown on each variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `keep: hourly` — backed up within the last `hourly_hours`.
    Hourly,
    /// `keep: daily 2026-11-20` — the newest of its calendar day, inside the daily window.
    Daily(Date),
    /// `keep: weekly 2026-W44` — the newest of its ISO week (days older than the daily window
    /// only), inside the weekly window.
    Weekly(IsoWeek),
    /// `keep: newest` — the newest managed snapshot of the share.
    Newest,
    /// `keep: newest verified good` — the newest managed snapshot marked verified good.
    NewestVerifiedGood,
    /// `keep: keep mark` — carries the keep mark.
    KeepMark,
    /// `keep: hold` — has at least one zfs hold.
    Hold,
    /// `foreign: not managed by Backstop` — not Backstop's; listed, never touched.
    Foreign,
    /// `destroy: superseded on 2026-11-20 by 20261120_2130` — a newer snapshot of the same day
    /// is the one kept for that day.
    SupersededOnDay {
        /// The calendar day (in the policy's zone).
        day: Date,
        /// The name of the snapshot kept for that day.
        by: String,
    },
    /// `destroy: superseded in week 2026-W44 by 20261101_0930` — a newer snapshot of the same
    /// ISO week is the one kept for that week.
    SupersededInWeek {
        /// The ISO week (in the policy's zone).
        week: IsoWeek,
        /// The name of the snapshot kept for that week.
        by: String,
    },
    /// `destroy: older than 8 weeks` — older than the (finite) weekly window.
    OlderThanWeeks(u32),
    /// `destroy: pool below 10% free` — would be kept by the hourly, daily or weekly rules, but
    /// the pool is below `min_free_percent` free.
    PoolBelowFree(u8),
}

impl Reason {
    /// Whether this is one of the reasons that keep a snapshot whatever else the policy says
    /// (newest, newest verified good, keep mark, hold). Only snapshots kept by none of them can
    /// be destroyed for free space.
    pub(super) fn is_always_keep(&self) -> bool {
        matches!(
            self,
            Reason::Newest | Reason::NewestVerifiedGood | Reason::KeepMark | Reason::Hold
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Hourly => f.write_str("keep: hourly"),
            Reason::Daily(day) => write!(f, "keep: daily {day}"),
            Reason::Weekly(week) => write!(f, "keep: weekly {week}"),
            Reason::Newest => f.write_str("keep: newest"),
            Reason::NewestVerifiedGood => f.write_str("keep: newest verified good"),
            Reason::KeepMark => f.write_str("keep: keep mark"),
            Reason::Hold => f.write_str("keep: hold"),
            Reason::Foreign => f.write_str("foreign: not managed by Backstop"),
            Reason::SupersededOnDay { day, by } => {
                write!(f, "destroy: superseded on {day} by {by}")
            }
            Reason::SupersededInWeek { week, by } => {
                write!(f, "destroy: superseded in week {week} by {by}")
            }
            Reason::OlderThanWeeks(1) => f.write_str("destroy: older than 1 week"),
            Reason::OlderThanWeeks(n) => write!(f, "destroy: older than {n} weeks"),
            Reason::PoolBelowFree(percent) => write!(f, "destroy: pool below {percent}% free"),
        }
    }
}

impl Serialize for Reason {
    /// A reason serializes as its display string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn every_reason_displays_as_documented() {
        let w44 = IsoWeek {
            year: 2026,
            week: 44,
        };
        let cases = [
            (Reason::Hourly, "keep: hourly"),
            (Reason::Daily(date(2026, 11, 20)), "keep: daily 2026-11-20"),
            (Reason::Weekly(w44), "keep: weekly 2026-W44"),
            (Reason::Newest, "keep: newest"),
            (Reason::NewestVerifiedGood, "keep: newest verified good"),
            (Reason::KeepMark, "keep: keep mark"),
            (Reason::Hold, "keep: hold"),
            (Reason::Foreign, "foreign: not managed by Backstop"),
            (
                Reason::SupersededOnDay {
                    day: date(2026, 11, 20),
                    by: "20261120_2130".into(),
                },
                "destroy: superseded on 2026-11-20 by 20261120_2130",
            ),
            (
                Reason::SupersededInWeek {
                    week: w44,
                    by: "20261101_0930".into(),
                },
                "destroy: superseded in week 2026-W44 by 20261101_0930",
            ),
            (Reason::OlderThanWeeks(8), "destroy: older than 8 weeks"),
            (Reason::OlderThanWeeks(1), "destroy: older than 1 week"),
            (Reason::PoolBelowFree(10), "destroy: pool below 10% free"),
        ];
        for (reason, shown) in cases {
            assert_eq!(reason.to_string(), shown);
            assert_eq!(
                serde_json::to_value(&reason).unwrap(),
                serde_json::Value::String(shown.to_string())
            );
        }
    }

    #[test]
    fn always_keep_reasons() {
        for r in [
            Reason::Newest,
            Reason::NewestVerifiedGood,
            Reason::KeepMark,
            Reason::Hold,
        ] {
            assert!(r.is_always_keep(), "{r}");
        }
        for r in [
            Reason::Hourly,
            Reason::Daily(date(2026, 1, 1)),
            Reason::Weekly(IsoWeek::of(date(2026, 1, 1))),
            Reason::Foreign,
        ] {
            assert!(!r.is_always_keep(), "{r}");
        }
    }
}
