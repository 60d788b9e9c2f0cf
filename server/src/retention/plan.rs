//! [`plan()`]: the pure retention planner, and [`Plan`], its answer.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use super::calendar::{Bucket, Calendar};
use super::space::Floor;
use super::{Candidate, IsoWeek, PoolSpace, Reason, RetentionPolicy};

/// What happens to one snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// A managed snapshot that stays.
    Keep,
    /// A managed snapshot to destroy.
    Destroy,
    /// Not Backstop's: listed, never touched.
    Foreign,
}

/// One input snapshot with its decision and the reasons for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    /// The time the rules went by: the backup time, else the creation time.
    pub time: Timestamp,
    /// The snapshot's `used` bytes.
    pub used: u64,
    pub decision: Decision,
    /// Every keep reason that applies (for [`Decision::Keep`]), the one destroy reason (for
    /// [`Decision::Destroy`]), or [`Reason::Foreign`]. Never empty.
    pub reasons: Vec<Reason>,
}

/// The planner's answer: every input snapshot exactly once, oldest first (by [`Entry::time`],
/// then name; the order does not depend on the input's order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub entries: Vec<Entry>,
}

impl Plan {
    /// The names of the snapshots to destroy, oldest first.
    pub fn to_destroy(&self) -> Vec<&str> {
        self.destroyed().map(|e| e.name.as_str()).collect()
    }

    /// The sum of the `used` bytes of the snapshots to destroy: a lower bound of what destroying
    /// them frees.
    pub fn bytes_used_by_destroyed(&self) -> u64 {
        self.destroyed()
            .fold(0u64, |sum, e| sum.saturating_add(e.used))
    }

    fn destroyed(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.decision == Decision::Destroy)
    }
}

/// Decides, for every snapshot of one share, whether to keep or destroy it, and why.
///
/// Pure and deterministic: the answer depends only on the arguments, never on the input's order,
/// the host's clock or its zone. `O(n log n)` in the number of snapshots.
///
/// The rules, for managed snapshots (each goes by its backup time, or its creation time when it
/// has none; "newest" means latest time, ties broken by name, the larger name being newer):
///
/// 1. **Foreign** snapshots (not managed) are listed with [`Decision::Foreign`] and take no part
///    in any rule: they are never newest, never fill a bucket, never count for space.
/// 2. **Always kept**, whatever else applies: the newest managed snapshot, the newest managed one
///    marked verified good, every one with the keep mark, every one with a zfs hold.
/// 3. **Hourly**: kept when its time is at or after `now - hourly_hours` (the edge is kept, and
///    so are times after `now`). `hourly_hours = 0` disables this.
/// 4. **Daily**: the window is today (the calendar day of `now` in the policy's zone) and the
///    `daily_days - 1` days before it, plus any later day (a clock ahead of ours). In each of its
///    days the newest managed snapshot is kept (`keep: daily DAY`); the others of that day, unless
///    kept by another rule, are destroyed as `superseded on DAY by NAME`. `daily_days = 0`
///    disables this.
/// 5. **Weekly**: days older than the daily window (all days, when it is disabled) fall into ISO
///    weeks, Monday to Sunday in the policy's zone. The window is the week of today and the
///    `weekly_weeks - 1` weeks before it, or every week when `weekly_weeks = 0`. In each week the
///    newest managed snapshot of those older days is kept (`keep: weekly 2026-W44`); the others,
///    unless kept otherwise, are `superseded in week … by NAME`. A snapshot older than a finite
///    weekly window and kept by no other rule is destroyed as `older than N weeks`.
/// 6. **Free-space floor**: when `min_free_percent > 0`, `space` is given and the pool is below
///    that percentage free (after counting the `used` of the snapshots the rules above destroy),
///    snapshots kept only by the hourly, daily or weekly rules are destroyed too, oldest first,
///    each adding its `used` to the projected free space, until the projection reaches the floor
///    or none are left (`pool below N% free`). Always-kept and foreign snapshots are never
///    destroyed for space.
///
/// A kept snapshot carries every keep reason that applies, in [`Reason`]'s order.
///
/// Without a free-space floor the plan is idempotent: planning again at the same `now` without
/// the destroyed snapshots keeps the same snapshots for the same reasons and destroys nothing.
pub fn plan(
    snapshots: &[Candidate],
    policy: &RetentionPolicy,
    now: Timestamp,
    space: Option<PoolSpace>,
) -> Plan {
    let mut order: Vec<&Candidate> = snapshots.iter().collect();
    order.sort_unstable_by(|a, b| a.canonical_cmp(b));

    let calendar = Calendar::new(policy, now);
    let buckets: Vec<Option<Bucket>> = order
        .iter()
        .map(|c| c.managed.then(|| calendar.bucket(c.time())))
        .collect();

    // In canonical order, the last managed snapshot seen in a bucket is its newest.
    let mut winners: HashMap<Bucket, usize> = HashMap::new();
    for (i, bucket) in buckets.iter().enumerate() {
        match bucket {
            Some(Bucket::Expired) | None => {}
            Some(b) => {
                winners.insert(*b, i);
            }
        }
    }
    let newest = order.iter().rposition(|c| c.managed);
    let newest_verified = order.iter().rposition(|c| c.managed && c.verified_good);

    let mut entries: Vec<Entry> = order
        .iter()
        .zip(&buckets)
        .enumerate()
        .map(|(i, (c, bucket))| {
            let (decision, reasons) = match *bucket {
                None => (Decision::Foreign, vec![Reason::Foreign]),
                Some(bucket) => {
                    let winner = winners.get(&bucket).copied();
                    let mut keep = Vec::new();
                    if calendar.is_hourly(c.time()) {
                        keep.push(Reason::Hourly);
                    }
                    match bucket {
                        Bucket::Day(day) if winner == Some(i) => keep.push(Reason::Daily(day)),
                        Bucket::Week(monday) if winner == Some(i) => {
                            keep.push(Reason::Weekly(IsoWeek::of(monday)))
                        }
                        _ => {}
                    }
                    if newest == Some(i) {
                        keep.push(Reason::Newest);
                    }
                    if newest_verified == Some(i) {
                        keep.push(Reason::NewestVerifiedGood);
                    }
                    if c.keep {
                        keep.push(Reason::KeepMark);
                    }
                    if c.holds > 0 {
                        keep.push(Reason::Hold);
                    }
                    if keep.is_empty() {
                        let by = || {
                            order[winner.expect("a non-expired bucket has a winner")]
                                .name
                                .clone()
                        };
                        let reason = match bucket {
                            Bucket::Day(day) => Reason::SupersededOnDay { day, by: by() },
                            Bucket::Week(monday) => Reason::SupersededInWeek {
                                week: IsoWeek::of(monday),
                                by: by(),
                            },
                            Bucket::Expired => Reason::OlderThanWeeks(policy.weekly_weeks),
                        };
                        (Decision::Destroy, vec![reason])
                    } else {
                        (Decision::Keep, keep)
                    }
                }
            };
            Entry {
                name: c.name.clone(),
                time: c.time(),
                used: c.used,
                decision,
                reasons,
            }
        })
        .collect();

    if let Some(mut floor) = Floor::new(space, policy.min_free_percent) {
        let plan = Plan { entries };
        floor.free(plan.bytes_used_by_destroyed());
        entries = plan.entries;
        for entry in &mut entries {
            if !floor.is_below() {
                break;
            }
            let rule_kept_only = entry.decision == Decision::Keep
                && !entry.reasons.iter().any(Reason::is_always_keep);
            if rule_kept_only {
                entry.decision = Decision::Destroy;
                entry.reasons = vec![Reason::PoolBelowFree(floor.percent())];
                floor.free(entry.used);
            }
        }
    }

    Plan { entries }
}
