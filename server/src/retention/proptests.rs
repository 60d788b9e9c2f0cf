//! Property tests of the planner on random histories: about a year of random backup times
//! (with ties and clocks running ahead), random marks, random policies, zones and `now`.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

/// Zones with DST both ways, half-hour DST (Lord Howe), odd offsets and no DST.
const ZONES: &[(&str, &str)] = &[
    ("UTC", "UTC0"),
    ("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("America/Los_Angeles", "PST8PDT,M3.2.0,M11.1.0"),
    (
        "Australia/Lord_Howe",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
    ),
    ("Asia/Kathmandu", "<+0545>-5:45"),
    (
        "Pacific/Chatham",
        "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
    ),
];

fn zone(i: usize) -> TimeZone {
    let (iana, posix) = ZONES[i];
    TimeZone::get(iana).unwrap_or_else(|_| TimeZone::posix(posix).unwrap())
}

const DAY: i64 = 86_400;

fn arb_policy() -> impl Strategy<Value = RetentionPolicy> {
    (
        prop_oneof![Just(0u32), 1u32..72],
        prop_oneof![Just(0u32), 1u32..45],
        prop_oneof![Just(0u32), 1u32..60],
        0..ZONES.len(),
    )
        .prop_map(
            |(hourly_hours, daily_days, weekly_weeks, z)| RetentionPolicy {
                hourly_hours,
                daily_days,
                weekly_weeks,
                timezone: zone(z),
                min_free_percent: 0,
            },
        )
}

/// `now`: some second in 2025 … 2027 (so histories cross DST changes and ISO week 53s).
fn arb_now() -> impl Strategy<Value = Timestamp> {
    (1_735_689_600i64..1_830_297_600).prop_map(|s| Timestamp::from_second(s).unwrap())
}

/// How long before `now` a snapshot's time lies: up to ~400 days, sometimes on a whole hour
/// (many ties), sometimes up to a day ahead of `now`.
fn arb_age() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0..400 * DAY,
        3 => (0..400i64 * 24).prop_map(|h| h * 3600),
        1 => -DAY..0,
    ]
}

/// One snapshot's fields other than its name: (managed, age, has backup time, created offset,
/// verified, keep, holds, used).
type Fields = (bool, i64, bool, i64, bool, bool, u64, u64);

fn arb_fields() -> impl Strategy<Value = Fields> {
    (
        prop::bool::weighted(0.85),
        arb_age(),
        prop::bool::weighted(0.9),
        0..3600i64,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        prop_oneof![8 => Just(0u64), 1 => 1u64..3],
        0u64..1_000_000,
    )
}

fn candidate(name: String, f: Fields, now: Timestamp) -> Candidate {
    let (managed, age, has_time, created_after, verified_good, keep, holds, used) = f;
    let t = now - SignedDuration::from_secs(age);
    Candidate {
        name,
        managed,
        // A missing backup time makes `created` (= t) the time the rules go by.
        backup_time: has_time.then_some(t),
        created: if has_time {
            t + SignedDuration::from_secs(created_after)
        } else {
            t
        },
        verified_good,
        keep,
        holds,
        used,
    }
}

/// A random history with unique names (`s000`, `s001`, … in random relation to the times).
fn arb_history() -> impl Strategy<Value = (Vec<Candidate>, Timestamp)> {
    (arb_now(), prop::collection::vec(arb_fields(), 0..80)).prop_map(|(now, fields)| {
        let snaps = fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| candidate(format!("s{i:03}"), f, now))
            .collect();
        (snaps, now)
    })
}

fn arb_space() -> impl Strategy<Value = (u8, PoolSpace)> {
    (1u8..=100, 1u64..100_000_000, 0.0f64..=1.0).prop_map(|(pct, size, frac)| {
        let free = (size as f64 * frac) as u64;
        (pct, PoolSpace { size, free })
    })
}

/// `(time, name)`: the order "newest" goes by.
fn key(c: &Candidate) -> (Timestamp, &str) {
    (c.backup_time.unwrap_or(c.created), c.name.as_str())
}

fn newest(snaps: &[Candidate], pred: impl Fn(&Candidate) -> bool) -> Option<&str> {
    snaps
        .iter()
        .filter(|c| c.managed && pred(c))
        .max_by(|a, b| key(a).cmp(&key(b)))
        .map(|c| c.name.as_str())
}

fn by_name(plan: &Plan) -> HashMap<&str, &Entry> {
    plan.entries.iter().map(|e| (e.name.as_str(), e)).collect()
}

/// The calendar day of `t` in `tz`, and the first day of the daily window (computed here
/// independently of the planner: with `Date` arithmetic in days).
fn day_of(t: Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(t).date()
}

fn daily_from(policy: &RetentionPolicy, now: Timestamp) -> Option<Date> {
    (policy.daily_days > 0).then(|| {
        day_of(now, &policy.timezone)
            .checked_sub(jiff::Span::new().days(i64::from(policy.daily_days) - 1))
            .unwrap()
    })
}

/// Checks the invariants every plan keeps, whatever the floor does.
fn check_safety(snaps: &[Candidate], plan: &Plan) -> Result<(), TestCaseError> {
    // Every input exactly once.
    prop_assert_eq!(plan.entries.len(), snaps.len());
    let entries = by_name(plan);
    prop_assert_eq!(entries.len(), snaps.len());
    let newest_managed = newest(snaps, |_| true);
    let newest_verified = newest(snaps, |c| c.verified_good);
    for c in snaps {
        let e = entries[c.name.as_str()];
        prop_assert!(!e.reasons.is_empty(), "{} has no reason", c.name);
        if !c.managed {
            prop_assert_eq!(e.decision, Decision::Foreign);
            prop_assert_eq!(&e.reasons, &vec![Reason::Foreign]);
            continue;
        }
        prop_assert_ne!(e.decision, Decision::Foreign);
        let protected = Some(c.name.as_str()) == newest_managed
            || Some(c.name.as_str()) == newest_verified
            || c.keep
            || c.holds > 0;
        if protected {
            prop_assert_eq!(
                e.decision,
                Decision::Keep,
                "{} is protected: {:?}",
                c.name,
                e
            );
        }
        if e.decision == Decision::Destroy {
            prop_assert_eq!(e.reasons.len(), 1);
        }
    }
    // Oldest first, and to_destroy in the same order.
    for w in plan.entries.windows(2) {
        prop_assert!((w[0].time, &w[0].name) <= (w[1].time, &w[1].name));
    }
    let destroyed: Vec<&str> = plan
        .entries
        .iter()
        .filter(|e| e.decision == Decision::Destroy)
        .map(|e| e.name.as_str())
        .collect();
    prop_assert_eq!(plan.to_destroy(), destroyed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_destroys_what_must_stay_and_lists_everything_once(
        (snaps, now) in arb_history(),
        policy in arb_policy(),
    ) {
        let p = plan(&snaps, &policy, now, None);
        check_safety(&snaps, &p)?;
    }

    #[test]
    fn the_floor_never_destroys_what_must_stay(
        (snaps, now) in arb_history(),
        policy in arb_policy(),
        (pct, space) in arb_space(),
    ) {
        let policy = RetentionPolicy { min_free_percent: pct, ..policy };
        let p = plan(&snaps, &policy, now, Some(space));
        check_safety(&snaps, &p)?;
        // The floor only ever turns rule keeps into destroys, oldest first, and stops as soon as
        // the projection reaches it.
        let without = plan(&snaps, &RetentionPolicy { min_free_percent: 0, ..policy.clone() }, now, None);
        let below = |free: u128| free * 100 < u128::from(pct) * u128::from(space.size);
        let mut projected = u128::from(space.free) + u128::from(without.bytes_used_by_destroyed());
        let mut last_taken = None;
        for (a, b) in without.entries.iter().zip(&p.entries) {
            prop_assert_eq!(&a.name, &b.name);
            if a.decision != b.decision {
                prop_assert_eq!(a.decision, Decision::Keep);
                prop_assert!(a.reasons.iter().all(|r| matches!(r, Reason::Hourly | Reason::Daily(_) | Reason::Weekly(_))));
                prop_assert!(below(projected), "{} destroyed after the floor was reached", b.name);
                prop_assert_eq!(&b.reasons, &vec![Reason::PoolBelowFree(pct)]);
                projected += u128::from(b.used);
                last_taken = Some(&b.name);
            } else {
                prop_assert_eq!(a, b);
            }
        }
        // Only stopped early when the floor was reached: every rule-kept one after the last
        // taken one is taken too while below.
        if below(projected) {
            for e in &p.entries {
                let rule_only = e.decision == Decision::Keep
                    && e.reasons.iter().all(|r| matches!(r, Reason::Hourly | Reason::Daily(_) | Reason::Weekly(_)));
                prop_assert!(!rule_only, "{} kept while still below the floor (last taken {:?})", e.name, last_taken);
            }
        }
    }

    #[test]
    fn planning_again_after_applying_destroys_nothing(
        (snaps, now) in arb_history(),
        policy in arb_policy(),
    ) {
        let first = plan(&snaps, &policy, now, None);
        let gone = first.to_destroy();
        let rest: Vec<Candidate> = snaps.iter().filter(|c| !gone.contains(&c.name.as_str())).cloned().collect();
        let second = plan(&rest, &policy, now, None);
        prop_assert!(second.to_destroy().is_empty(), "{:?}", second.to_destroy());
        // The survivors keep the very same decisions and reasons.
        let survivors: Vec<Entry> = first.entries.iter().filter(|e| e.decision != Decision::Destroy).cloned().collect();
        prop_assert_eq!(second.entries, survivors);
    }

    #[test]
    fn planning_again_with_the_freed_space_destroys_nothing(
        (snaps, now) in arb_history(),
        policy in arb_policy(),
        (pct, space) in arb_space(),
    ) {
        let policy = RetentionPolicy { min_free_percent: pct, ..policy };
        let first = plan(&snaps, &policy, now, Some(space));
        let gone = first.to_destroy();
        let rest: Vec<Candidate> = snaps.iter().filter(|c| !gone.contains(&c.name.as_str())).cloned().collect();
        let space = PoolSpace {
            size: space.size,
            free: space.free + first.bytes_used_by_destroyed(),
        };
        let second = plan(&rest, &policy, now, Some(space));
        prop_assert!(second.to_destroy().is_empty(), "{:?}", second.to_destroy());
    }

    #[test]
    fn each_daily_and_weekly_keep_is_the_newest_of_its_bucket(
        (snaps, now) in arb_history(),
        policy in arb_policy(),
    ) {
        let p = plan(&snaps, &policy, now, None);
        let tz = &policy.timezone;
        let daily_from = daily_from(&policy, now);
        let in_daily = |d: Date| daily_from.is_some_and(|from| d >= from);
        let entries = by_name(&p);
        let managed: Vec<&Candidate> = snaps.iter().filter(|c| c.managed).collect();
        let mut daily_kept: HashMap<Date, usize> = HashMap::new();
        let mut weekly_kept: HashMap<IsoWeek, usize> = HashMap::new();
        for c in &managed {
            let t = key(c).0;
            let day = day_of(t, tz);
            for r in &entries[c.name.as_str()].reasons {
                match r {
                    Reason::Daily(d) => {
                        prop_assert_eq!(*d, day);
                        prop_assert!(in_daily(day));
                        *daily_kept.entry(day).or_default() += 1;
                        for o in &managed {
                            if day_of(key(o).0, tz) == day {
                                prop_assert!(key(o) <= key(c), "{} is newer than daily {}", o.name, c.name);
                            }
                        }
                    }
                    Reason::Weekly(w) => {
                        prop_assert_eq!(*w, IsoWeek::of(day));
                        prop_assert!(!in_daily(day));
                        *weekly_kept.entry(*w).or_default() += 1;
                        for o in &managed {
                            let od = day_of(key(o).0, tz);
                            if IsoWeek::of(od) == *w && !in_daily(od) {
                                prop_assert!(key(o) <= key(c), "{} is newer than weekly {}", o.name, c.name);
                            }
                        }
                    }
                    Reason::SupersededOnDay { day: d, by } => {
                        prop_assert_eq!(*d, day);
                        prop_assert!(entries[by.as_str()].reasons.contains(&Reason::Daily(day)));
                    }
                    Reason::SupersededInWeek { week, by } => {
                        prop_assert_eq!(*week, IsoWeek::of(day));
                        prop_assert!(entries[by.as_str()].reasons.contains(&Reason::Weekly(*week)));
                    }
                    _ => {}
                }
            }
        }
        // Exactly one per bucket: every day of the daily window with a managed snapshot has one.
        for c in &managed {
            let day = day_of(key(c).0, tz);
            if in_daily(day) {
                prop_assert_eq!(daily_kept.get(&day).copied(), Some(1), "day {}", day);
            } else if policy.weekly_weeks == 0 {
                prop_assert_eq!(weekly_kept.get(&IsoWeek::of(day)).copied(), Some(1), "week of {}", day);
            }
        }
    }

    #[test]
    fn the_plan_does_not_depend_on_the_input_order(
        ((snaps, now), shuffled) in arb_history().prop_flat_map(|(snaps, now)| {
            let s = Just(snaps.clone()).prop_shuffle();
            (Just((snaps, now)), s)
        }),
        policy in arb_policy(),
        (pct, space) in arb_space(),
    ) {
        let policy = RetentionPolicy { min_free_percent: pct, ..policy };
        prop_assert_eq!(
            plan(&snaps, &policy, now, Some(space)),
            plan(&shuffled, &policy, now, Some(space))
        );
    }

    #[test]
    fn duplicate_names_and_times_still_give_one_answer(
        now in arb_now(),
        fields in prop::collection::vec((0..4usize, arb_fields()), 0..30),
        policy in arb_policy(),
        seed in any::<u64>(),
    ) {
        // Few names and few times: many exact duplicates and ties.
        let snaps: Vec<Candidate> = fields
            .into_iter()
            .map(|(n, (m, age, ht, _, v, k, h, u))| {
                candidate(format!("n{n}"), (m, age % (3 * DAY) / 3600 * 3600, ht, 0, v, k, h, u % 3), now)
            })
            .collect();
        let mut reversed = snaps.clone();
        reversed.reverse();
        let mut rotated = snaps.clone();
        if !rotated.is_empty() {
            let k = (seed % rotated.len() as u64) as usize;
            rotated.rotate_left(k);
        }
        let p = plan(&snaps, &policy, now, None);
        prop_assert_eq!(&p, &plan(&reversed, &policy, now, None));
        prop_assert_eq!(&p, &plan(&rotated, &policy, now, None));
        prop_assert_eq!(p.entries.len(), snaps.len());
    }
}
