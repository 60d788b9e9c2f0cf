//! Retention: which managed snapshots of a share to keep, which to destroy, and why.
//!
//! This module is pure: [`plan()`] takes the share's snapshots as [`Candidate`]s (built by the
//! caller from zfs properties and holds), a [`RetentionPolicy`], `now` and optionally the pool's
//! [`PoolSpace`], and returns a [`Plan`] listing every snapshot exactly once with a [`Decision`]
//! and human [`Reason`]s. It runs no command and reads no clock; destroying is the caller's job.
//!
//! # The buckets
//!
//! Time runs left to right. Days and weeks are calendar ones in the policy's zone: a day runs
//! from local midnight to local midnight (23 or 25 hours on a DST change day), a week from
//! Monday to Sunday. With `hourly_hours = 24`, `daily_days = 3`, `weekly_weeks = 3` and `now` on
//! Thursday 2026-11-19 at noon:
//!
//! ```text
//!              │◀─────────────── weekly window ───────────────▶│◀──── daily window ────▶│
//!  older than  │   2026-W45    │   2026-W46    │   2026-W47    │ 11-17  │ 11-18  │ 11-19  │
//!  the weekly  │ Mon 11-02 …   │ Mon 11-09 …   │ Mon 11-16     │  Tue   │  Wed   │  Thu   │
//!  window      │   … Sun 11-08 │   … Sun 11-15 │ only (its     │        │        │        │
//!              │               │               │ other days    │        │        │        │
//!              │               │               │ are daily)    │        │        │        │
//!  ────────────┼───────────────┼───────────────┼───────────────┼────────┼────────┼────────┤
//!  destroyed:  │ newest of the │ newest of the │ newest of the │ newest │ newest │ newest │
//!  "older than │ week kept,    │ week kept,    │ bucket kept,  │ of the │ of the │ of the │
//!  3 weeks"    │ others        │ others        │ others        │ day    │ day    │ day    │
//!              │ superseded    │ superseded    │ superseded    │ kept   │ kept   │ kept   │
//!                                                                            ├─ hourly ─┤
//!                                                                     every one of the
//!                                                                     last 24 h kept
//!  ──────────────────────────────────────────────────────────────────────────────▶ time
//! ```
//!
//! Whatever the buckets say, the newest managed snapshot, the newest verified good one, and
//! every keep-marked or held one stay; snapshots Backstop did not make are never touched.
//!
//! * **hourly** — every snapshot at or after `now - hourly_hours`.
//! * **daily** — today and the `daily_days - 1` days before: the newest of each day.
//! * **weekly** — ISO weeks (Mon–Sun, labelled `2026-W44` by ISO week-year), the current one and
//!   `weekly_weeks - 1` before (or all, for `0`), holding only days older than the daily window:
//!   the newest of each week. Older: destroyed.
//! * **always kept** — the newest managed snapshot, the newest verified good, keep-marked and held
//!   ones.
//! * **foreign** — snapshots Backstop did not make are listed and never touched.
//! * **free-space floor** — below `min_free_percent` free, snapshots kept only by the three rules
//!   above are destroyed too, oldest first, until the projected free space reaches the floor.
//!
//! [`plan()`] documents every rule precisely.

mod calendar;
mod candidate;
mod plan;
mod policy;
mod reason;
mod space;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use calendar::IsoWeek;
pub use candidate::Candidate;
pub use plan::{Decision, Entry, Plan, plan};
pub use policy::RetentionPolicy;
pub use reason::Reason;
pub use space::PoolSpace;
