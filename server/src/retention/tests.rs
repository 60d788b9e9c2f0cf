//! Fixture tests of the planner: bucket boundaries in non-UTC zones, DST days, ISO weeks, the
//! hourly edge, ties, always-keep rules, foreign snapshots and the free-space floor.

use jiff::civil::{DateTime, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::*;

/// An IANA zone from the system database, or (where there is none) the equivalent POSIX rule,
/// which gives the same answers for the years these tests use.
fn zone(iana: &str, posix: &str) -> TimeZone {
    TimeZone::get(iana).unwrap_or_else(|_| TimeZone::posix(posix).unwrap())
}

fn berlin() -> TimeZone {
    zone("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3")
}

fn los_angeles() -> TimeZone {
    zone("America/Los_Angeles", "PST8PDT,M3.2.0,M11.1.0")
}

fn policy(tz: &TimeZone, hourly: u32, daily: u32, weekly: u32) -> RetentionPolicy {
    RetentionPolicy {
        hourly_hours: hourly,
        daily_days: daily,
        weekly_weeks: weekly,
        timezone: tz.clone(),
        min_free_percent: 0,
    }
}

/// The instant of a local wall-clock time (`2026-11-20T21:30`) in `tz`.
fn local(tz: &TimeZone, civil: &str) -> Timestamp {
    let dt: DateTime = civil.parse().unwrap();
    tz.to_ambiguous_timestamp(dt).compatible().unwrap()
}

/// A managed snapshot named like Backstop names them (`20261120_2130`, local time).
fn snap(tz: &TimeZone, civil: &str) -> Candidate {
    let t = local(tz, civil);
    let name = tz.to_datetime(t).strftime("%Y%m%d_%H%M").to_string();
    at(&name, t)
}

/// A managed snapshot with this name and backup time.
fn at(name: &str, t: Timestamp) -> Candidate {
    Candidate {
        name: name.to_string(),
        managed: true,
        backup_time: Some(t),
        created: t,
        verified_good: false,
        keep: false,
        holds: 0,
        used: 0,
    }
}

fn entry<'p>(plan: &'p Plan, name: &str) -> &'p Entry {
    let mut found = plan.entries.iter().filter(|e| e.name == name);
    let e = found
        .next()
        .unwrap_or_else(|| panic!("{name} is not in the plan"));
    assert!(found.next().is_none(), "{name} is in the plan twice");
    e
}

/// The reasons of `name` as displayed.
fn shown(plan: &Plan, name: &str) -> Vec<String> {
    entry(plan, name)
        .reasons
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn daily_count(plan: &Plan) -> usize {
    plan.entries
        .iter()
        .flat_map(|e| &e.reasons)
        .filter(|r| matches!(r, Reason::Daily(_)))
        .count()
}

#[test]
fn an_empty_share_plans_nothing() {
    let p = plan(
        &[],
        &RetentionPolicy::default(),
        Timestamp::UNIX_EPOCH,
        Some(PoolSpace { size: 100, free: 0 }),
    );
    assert!(p.entries.is_empty());
    assert!(p.to_destroy().is_empty());
    assert_eq!(p.bytes_used_by_destroyed(), 0);
}

#[test]
fn berlin_days_start_at_local_midnight() {
    let tz = berlin();
    // In November Berlin is UTC+1: 00:30 local is 23:30 UTC the day before.
    let snaps = [
        snap(&tz, "2026-11-19T00:30"),
        snap(&tz, "2026-11-19T23:30"), // 22:30 UTC, same UTC day as the next one
        snap(&tz, "2026-11-20T00:30"), // 23:30 UTC on 11-19
        snap(&tz, "2026-11-20T21:30"),
    ];
    let now = local(&tz, "2026-11-21T12:00");
    let p = plan(&snaps, &policy(&tz, 0, 30, 0), now, None);
    assert_eq!(
        shown(&p, "20261119_0030"),
        ["destroy: superseded on 2026-11-19 by 20261119_2330"]
    );
    assert_eq!(shown(&p, "20261119_2330"), ["keep: daily 2026-11-19"]);
    assert_eq!(
        shown(&p, "20261120_0030"),
        ["destroy: superseded on 2026-11-20 by 20261120_2130"]
    );
    assert_eq!(
        shown(&p, "20261120_2130"),
        ["keep: daily 2026-11-20", "keep: newest"]
    );
    assert_eq!(p.to_destroy(), ["20261119_0030", "20261120_0030"]);
}

#[test]
fn los_angeles_days_start_at_local_midnight() {
    let tz = los_angeles();
    // In July Los Angeles is UTC-7: 17:30 local is 00:30 UTC the next day.
    let snaps = [
        snap(&tz, "2026-07-10T08:00"),
        snap(&tz, "2026-07-10T17:30"),
        snap(&tz, "2026-07-10T23:59"),
        snap(&tz, "2026-07-11T00:00"),
        snap(&tz, "2026-07-11T06:00"),
    ];
    let now = local(&tz, "2026-07-12T09:00");
    let p = plan(&snaps, &policy(&tz, 0, 7, 0), now, None);
    assert_eq!(shown(&p, "20260710_2359"), ["keep: daily 2026-07-10"]);
    assert_eq!(
        shown(&p, "20260710_1730"),
        ["destroy: superseded on 2026-07-10 by 20260710_2359"]
    );
    assert_eq!(
        shown(&p, "20260711_0000"),
        ["destroy: superseded on 2026-07-11 by 20260711_0600"]
    );
    assert_eq!(
        p.to_destroy(),
        ["20260710_0800", "20260710_1730", "20260711_0000"]
    );
}

/// Snapshots every hour (by the clock on the wall's instants, i.e. every 3600 s) from the local
/// start of `day` to the start of the next day.
fn hourly_through_the_day(tz: &TimeZone, day: jiff::civil::Date) -> Vec<Candidate> {
    let start = local(tz, &format!("{day}T00:00"));
    let end = local(tz, &format!("{}T00:00", day.tomorrow().unwrap()));
    let mut t = start;
    let mut snaps = Vec::new();
    while t < end {
        snaps.push(at(&format!("s{}", t.as_second()), t));
        t += SignedDuration::from_hours(1);
    }
    snaps
}

#[test]
fn a_25_hour_dst_day_keeps_exactly_one_daily() {
    let tz = berlin();
    let day = date(2026, 10, 25); // CEST -> CET: 02:00-03:00 happens twice
    let mut snaps = hourly_through_the_day(&tz, day);
    assert_eq!(snaps.len(), 25, "2026-10-25 has 25 hours in Berlin");
    let last = snaps.last().unwrap().name.clone();
    // The neighbours' edges: 23:59 the day before and 00:00 the day after are other days.
    snaps.push(snap(&tz, "2026-10-24T23:59"));
    snaps.push(snap(&tz, "2026-10-26T00:00"));
    let now = local(&tz, "2026-11-01T12:00");
    let p = plan(&snaps, &policy(&tz, 0, 30, 0), now, None);
    assert_eq!(daily_count(&p), 3);
    assert_eq!(shown(&p, &last), ["keep: daily 2026-10-25"]);
    let superseded = format!("destroy: superseded on 2026-10-25 by {last}");
    let destroyed = p
        .entries
        .iter()
        .filter(|e| e.reasons.iter().any(|r| r.to_string() == superseded))
        .count();
    assert_eq!(destroyed, 24);
    assert_eq!(shown(&p, "20261024_2359"), ["keep: daily 2026-10-24"]);
    assert_eq!(
        shown(&p, "20261026_0000"),
        ["keep: daily 2026-10-26", "keep: newest"]
    );
}

#[test]
fn a_23_hour_dst_day_keeps_exactly_one_daily() {
    let tz = los_angeles();
    let day = date(2026, 3, 8); // PST -> PDT: 02:00-03:00 does not happen
    let mut snaps = hourly_through_the_day(&tz, day);
    assert_eq!(snaps.len(), 23, "2026-03-08 has 23 hours in Los Angeles");
    let last = snaps.last().unwrap().name.clone();
    snaps.push(snap(&tz, "2026-03-09T00:00"));
    let now = local(&tz, "2026-03-10T12:00");
    let p = plan(&snaps, &policy(&tz, 0, 30, 0), now, None);
    assert_eq!(daily_count(&p), 2);
    assert_eq!(shown(&p, &last), ["keep: daily 2026-03-08"]);
    assert_eq!(p.to_destroy().len(), 22);
}

#[test]
fn the_dst_day_is_one_calendar_day_for_the_window_too() {
    // daily_days = 2 on 2026-10-26: the window is 10-25 (25 h) and 10-26, from local midnight.
    let tz = berlin();
    let snaps = [
        snap(&tz, "2026-10-24T23:59"),
        snap(&tz, "2026-10-25T00:00"),
        snap(&tz, "2026-10-26T08:00"),
    ];
    let now = local(&tz, "2026-10-26T09:00");
    let p = plan(&snaps, &policy(&tz, 0, 2, 0), now, None);
    assert_eq!(shown(&p, "20261025_0000"), ["keep: daily 2026-10-25"]);
    assert_eq!(shown(&p, "20261024_2359"), ["keep: weekly 2026-W43"]);
}

#[test]
fn iso_week_53_and_the_year_boundary() {
    let tz = berlin();
    let snaps = [
        snap(&tz, "2026-12-20T10:00"), // 2026-W51 (Sunday)
        snap(&tz, "2026-12-28T10:00"), // Monday of 2026-W53
        snap(&tz, "2026-12-31T23:30"),
        snap(&tz, "2027-01-03T23:30"), // Sunday, still 2026-W53
        snap(&tz, "2027-01-04T00:30"), // Monday 2027-W01 (still Sunday in UTC)
        snap(&tz, "2027-01-08T10:00"),
    ];
    let now = local(&tz, "2027-02-01T12:00");
    let p = plan(&snaps, &policy(&tz, 0, 0, 0), now, None);
    assert_eq!(shown(&p, "20261220_1000"), ["keep: weekly 2026-W51"]);
    for name in ["20261228_1000", "20261231_2330"] {
        assert_eq!(
            shown(&p, name),
            ["destroy: superseded in week 2026-W53 by 20270103_2330"]
        );
    }
    assert_eq!(shown(&p, "20270103_2330"), ["keep: weekly 2026-W53"]);
    assert_eq!(
        shown(&p, "20270104_0030"),
        ["destroy: superseded in week 2027-W01 by 20270108_1000"]
    );
    assert_eq!(
        shown(&p, "20270108_1000"),
        ["keep: weekly 2027-W01", "keep: newest"]
    );
}

#[test]
fn december_days_can_belong_to_next_years_week_one() {
    let tz = berlin();
    let snaps = [
        snap(&tz, "2025-12-29T10:00"),
        snap(&tz, "2025-12-31T10:00"),
        snap(&tz, "2026-01-02T10:00"),
        snap(&tz, "2026-01-05T10:00"),
    ];
    let now = local(&tz, "2026-03-01T12:00");
    let p = plan(&snaps, &policy(&tz, 0, 0, 0), now, None);
    assert_eq!(shown(&p, "20260102_1000"), ["keep: weekly 2026-W01"]);
    assert_eq!(
        shown(&p, "20251231_1000"),
        ["destroy: superseded in week 2026-W01 by 20260102_1000"]
    );
    assert_eq!(
        shown(&p, "20260105_1000"),
        ["keep: weekly 2026-W02", "keep: newest"]
    );
}

#[test]
fn the_hourly_edge_is_exact() {
    let tz = TimeZone::UTC;
    // Wednesday noon: all three lie in the current week.
    let now: Timestamp = "2026-11-18T12:00:00Z".parse().unwrap();
    let edge = now - SignedDuration::from_hours(24);
    let snaps = [
        at("just-outside", edge - SignedDuration::from_secs(1)),
        at("edge", edge),
        at("recent", now - SignedDuration::from_hours(1)),
    ];
    let p = plan(&snaps, &policy(&tz, 24, 0, 1), now, None);
    assert_eq!(shown(&p, "edge"), ["keep: hourly"]);
    assert_eq!(
        shown(&p, "just-outside"),
        ["destroy: superseded in week 2026-W47 by recent"]
    );
    assert_eq!(
        shown(&p, "recent"),
        ["keep: hourly", "keep: weekly 2026-W47", "keep: newest"]
    );
}

#[test]
fn hourly_zero_disables_the_hourly_rule() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-11-18T12:00:00Z".parse().unwrap();
    let snaps = [at("a", now), at("b", now + SignedDuration::from_secs(1))];
    let p = plan(&snaps, &policy(&tz, 0, 1, 0), now, None);
    assert_eq!(shown(&p, "a"), ["destroy: superseded on 2026-11-18 by b"]);
}

#[test]
fn equal_backup_times_are_broken_by_name_in_any_input_order() {
    let tz = berlin();
    let t = local(&tz, "2026-11-20T21:30");
    let a = at("20261120_2130", t);
    let b = at("20261120_2130_x", t);
    let now = local(&tz, "2026-11-22T12:00");
    let pol = policy(&tz, 0, 30, 0);
    let p1 = plan(&[a.clone(), b.clone()], &pol, now, None);
    let p2 = plan(&[b, a], &pol, now, None);
    assert_eq!(p1, p2);
    assert_eq!(
        shown(&p1, "20261120_2130_x"),
        ["keep: daily 2026-11-20", "keep: newest"]
    );
    assert_eq!(
        shown(&p1, "20261120_2130"),
        ["destroy: superseded on 2026-11-20 by 20261120_2130_x"]
    );
}

#[test]
fn a_snapshot_without_backup_time_goes_by_its_creation() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
    let created: Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
    let mut no_time = at("no-time", created);
    no_time.backup_time = None;
    // Created after "timed", but backed up before it.
    let mut timed = at("timed", "2026-11-20T09:00:00Z".parse().unwrap());
    timed.created = "2026-11-20T11:00:00Z".parse().unwrap();
    let p = plan(&[timed, no_time], &policy(&tz, 0, 1, 0), now, None);
    assert_eq!(
        shown(&p, "no-time"),
        ["keep: daily 2026-11-20", "keep: newest"]
    );
    assert_eq!(entry(&p, "no-time").time, created);
    assert_eq!(p.to_destroy(), ["timed"]);
}

#[test]
fn foreign_snapshots_are_listed_and_never_touched() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
    let foreign = |name: &str, t: &str| Candidate {
        managed: false,
        backup_time: None,
        ..at(name, t.parse().unwrap())
    };
    let snaps = [
        foreign("ancient", "2020-01-01T00:00:00Z"),
        foreign("today-late", "2026-11-20T11:00:00Z"), // newer than the managed one
        Candidate {
            verified_good: true,
            ..foreign("verified", "2026-11-20T11:30:00Z")
        },
        at("managed-old", "2026-11-20T08:00:00Z".parse().unwrap()),
        at("managed", "2026-11-20T10:00:00Z".parse().unwrap()),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 1, 1), now, None);
    for name in ["ancient", "today-late", "verified"] {
        let e = entry(&p, name);
        assert_eq!(e.decision, Decision::Foreign);
        assert_eq!(shown(&p, name), ["foreign: not managed by Backstop"]);
    }
    // The foreign ones neither win the day nor count as newest.
    assert_eq!(
        shown(&p, "managed"),
        ["keep: daily 2026-11-20", "keep: newest"]
    );
    assert_eq!(p.to_destroy(), ["managed-old"]);
}

#[test]
fn a_share_of_only_foreign_snapshots_destroys_nothing() {
    let snaps = [Candidate {
        managed: false,
        ..at("x", Timestamp::UNIX_EPOCH)
    }];
    let p = plan(
        &snaps,
        &policy(&TimeZone::UTC, 0, 0, 1),
        "2026-01-01T00:00:00Z".parse().unwrap(),
        Some(PoolSpace { size: 100, free: 0 }),
    );
    assert_eq!(p.entries[0].decision, Decision::Foreign);
    assert!(p.to_destroy().is_empty());
}

/// A week of history three weeks old, far outside a one-week window.
fn old_history(tz: &TimeZone) -> (Vec<Candidate>, Timestamp) {
    let snaps = vec![
        snap(tz, "2026-10-26T10:00"),
        snap(tz, "2026-10-27T10:00"),
        snap(tz, "2026-10-28T10:00"),
        snap(tz, "2026-10-29T10:00"),
    ];
    (snaps, local(tz, "2026-11-18T12:00"))
}

#[test]
fn the_newest_is_always_kept() {
    let tz = berlin();
    let (snaps, now) = old_history(&tz);
    let p = plan(&snaps, &policy(&tz, 0, 0, 1), now, None);
    assert_eq!(shown(&p, "20261029_1000"), ["keep: newest"]);
    for name in ["20261026_1000", "20261027_1000", "20261028_1000"] {
        assert_eq!(shown(&p, name), ["destroy: older than 1 week"]);
    }
}

#[test]
fn the_newest_verified_good_is_always_kept() {
    let tz = berlin();
    let (mut snaps, now) = old_history(&tz);
    snaps[0].verified_good = true;
    snaps[1].verified_good = true;
    let p = plan(&snaps, &policy(&tz, 0, 0, 8), now, None);
    assert_eq!(shown(&p, "20261027_1000"), ["keep: newest verified good"]);
    assert_eq!(
        shown(&p, "20261026_1000"),
        ["destroy: superseded in week 2026-W44 by 20261029_1000"]
    );
    // Newest and newest verified good at once.
    snaps[3].verified_good = true;
    let p = plan(&snaps, &policy(&tz, 0, 0, 1), now, None);
    assert_eq!(
        shown(&p, "20261029_1000"),
        ["keep: newest", "keep: newest verified good"]
    );
    assert_eq!(shown(&p, "20261027_1000"), ["destroy: older than 1 week"]);
}

#[test]
fn keep_marks_and_holds_are_always_kept() {
    let tz = berlin();
    let (mut snaps, now) = old_history(&tz);
    snaps[0].keep = true;
    snaps[1].holds = 2;
    snaps[2].keep = true;
    snaps[2].holds = 1;
    let p = plan(&snaps, &policy(&tz, 0, 0, 1), now, None);
    assert_eq!(shown(&p, "20261026_1000"), ["keep: keep mark"]);
    assert_eq!(shown(&p, "20261027_1000"), ["keep: hold"]);
    assert_eq!(
        shown(&p, "20261028_1000"),
        ["keep: keep mark", "keep: hold"]
    );
    assert!(p.to_destroy().is_empty());
}

#[test]
fn the_weekly_window_starts_on_a_local_monday() {
    let tz = los_angeles();
    // Wednesday 2026-11-18; weekly_weeks = 8: the window starts Monday 2026-09-28 (W40).
    let now = local(&tz, "2026-11-18T12:00");
    let snaps = [
        snap(&tz, "2026-09-27T23:59"), // Sunday of W39
        snap(&tz, "2026-09-28T00:00"), // Monday of W40
        snap(&tz, "2026-11-18T11:00"),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 0, 8), now, None);
    assert_eq!(shown(&p, "20260927_2359"), ["destroy: older than 8 weeks"]);
    assert_eq!(shown(&p, "20260928_0000"), ["keep: weekly 2026-W40"]);
}

#[test]
fn the_daily_window_is_today_and_the_days_before() {
    let tz = berlin();
    let now = local(&tz, "2026-11-20T08:00");
    // daily_days = 30: 2026-10-22 … 2026-11-20. 10-21 falls to its week.
    let snaps = [
        snap(&tz, "2026-10-21T23:00"),
        snap(&tz, "2026-10-22T00:10"),
        snap(&tz, "2026-11-20T07:00"),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 30, 0), now, None);
    assert_eq!(shown(&p, "20261021_2300"), ["keep: weekly 2026-W43"]);
    assert_eq!(shown(&p, "20261022_0010"), ["keep: daily 2026-10-22"]);
}

#[test]
fn only_days_older_than_the_daily_window_fill_weekly_buckets() {
    let tz = berlin();
    // Thursday 2026-11-19 with daily_days = 2: the window is Wed 11-18 and Thu 11-19; Mon 11-16
    // and Tue 11-17 of the same week (W47) fall to the weekly bucket of W47.
    let now = local(&tz, "2026-11-19T20:00");
    let snaps = [
        snap(&tz, "2026-11-16T09:00"),
        snap(&tz, "2026-11-17T09:00"),
        snap(&tz, "2026-11-18T09:00"),
        snap(&tz, "2026-11-19T09:00"),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 2, 4), now, None);
    assert_eq!(
        shown(&p, "20261116_0900"),
        ["destroy: superseded in week 2026-W47 by 20261117_0900"]
    );
    assert_eq!(shown(&p, "20261117_0900"), ["keep: weekly 2026-W47"]);
    assert_eq!(shown(&p, "20261118_0900"), ["keep: daily 2026-11-18"]);
    assert_eq!(
        shown(&p, "20261119_0900"),
        ["keep: daily 2026-11-19", "keep: newest"]
    );
}

#[test]
fn a_kept_snapshot_lists_every_reason_that_applies() {
    let tz = berlin();
    let now = local(&tz, "2026-11-20T22:00");
    let mut s = snap(&tz, "2026-11-20T21:30");
    s.verified_good = true;
    s.keep = true;
    s.holds = 1;
    let p = plan(&[s], &policy(&tz, 24, 30, 0), now, None);
    assert_eq!(
        shown(&p, "20261120_2130"),
        [
            "keep: hourly",
            "keep: daily 2026-11-20",
            "keep: newest",
            "keep: newest verified good",
            "keep: keep mark",
            "keep: hold",
        ]
    );
}

#[test]
fn backup_times_ahead_of_now_fall_in_their_own_day() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-11-20T23:00:00Z".parse().unwrap();
    let snaps = [
        at("today", "2026-11-20T22:00:00Z".parse().unwrap()),
        at("tomorrow-a", "2026-11-21T00:30:00Z".parse().unwrap()),
        at("tomorrow-b", "2026-11-21T01:00:00Z".parse().unwrap()),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 1, 1), now, None);
    assert_eq!(shown(&p, "today"), ["keep: daily 2026-11-20"]);
    assert_eq!(
        shown(&p, "tomorrow-a"),
        ["destroy: superseded on 2026-11-21 by tomorrow-b"]
    );
    let p = plan(&snaps, &policy(&tz, 1, 1, 1), now, None);
    assert_eq!(shown(&p, "tomorrow-a"), ["keep: hourly"]);
}

/// Ten daily snapshots (2026-11-11 … 11-20), 10 bytes used each, a 1000-byte pool.
fn ten_days(free_percent: u8, space: Option<PoolSpace>) -> (Vec<Candidate>, Plan) {
    let tz = berlin();
    let snaps: Vec<Candidate> = (11..=20)
        .map(|d| Candidate {
            used: 10,
            ..snap(&tz, &format!("2026-11-{d}T12:00"))
        })
        .collect();
    let pol = RetentionPolicy {
        min_free_percent: free_percent,
        ..policy(&tz, 0, 30, 0)
    };
    let p = plan(&snaps, &pol, local(&tz, "2026-11-20T13:00"), space);
    (snaps, p)
}

#[test]
fn below_the_floor_the_oldest_rule_kept_go_first() {
    // 5% free, floor 8%: 30 bytes to free, three snapshots.
    let (_, p) = ten_days(
        8,
        Some(PoolSpace {
            size: 1000,
            free: 50,
        }),
    );
    assert_eq!(
        p.to_destroy(),
        ["20261111_1200", "20261112_1200", "20261113_1200"]
    );
    assert_eq!(shown(&p, "20261111_1200"), ["destroy: pool below 8% free"]);
    assert_eq!(shown(&p, "20261114_1200"), ["keep: daily 2026-11-14"]);
    assert_eq!(p.bytes_used_by_destroyed(), 30);
}

#[test]
fn the_floor_does_nothing_when_off_unknown_or_met() {
    let none = ten_days(
        0,
        Some(PoolSpace {
            size: 1000,
            free: 0,
        }),
    )
    .1;
    let unknown = ten_days(10, None).1;
    let met = ten_days(
        10,
        Some(PoolSpace {
            size: 1000,
            free: 100,
        }),
    )
    .1;
    for p in [none, unknown, met] {
        assert!(p.to_destroy().is_empty());
    }
}

#[test]
fn the_floor_never_takes_always_kept_or_foreign_snapshots() {
    let tz = berlin();
    let now = local(&tz, "2026-11-20T13:00");
    let snaps = [
        Candidate {
            holds: 1,
            used: 100,
            ..snap(&tz, "2026-11-10T12:00")
        },
        Candidate {
            keep: true,
            used: 100,
            ..snap(&tz, "2026-11-11T12:00")
        },
        Candidate {
            verified_good: true,
            used: 100,
            ..snap(&tz, "2026-11-12T12:00")
        },
        Candidate {
            managed: false,
            used: 100,
            ..snap(&tz, "2026-11-13T12:00")
        },
        Candidate {
            used: 1,
            ..snap(&tz, "2026-11-14T12:00")
        },
        Candidate {
            used: 100,
            ..snap(&tz, "2026-11-20T12:00")
        },
    ];
    let pol = RetentionPolicy {
        min_free_percent: 50,
        ..policy(&tz, 0, 30, 0)
    };
    // Far below the floor, and not reachable: everything that may go, goes.
    let p = plan(
        &snaps,
        &pol,
        now,
        Some(PoolSpace {
            size: 1000,
            free: 0,
        }),
    );
    assert_eq!(p.to_destroy(), ["20261114_1200"]);
    assert_eq!(
        shown(&p, "20261112_1200"),
        ["keep: daily 2026-11-12", "keep: newest verified good"]
    );
    assert_eq!(entry(&p, "20261113_1200").decision, Decision::Foreign);
}

#[test]
fn the_floor_counts_what_the_rules_already_free() {
    let tz = berlin();
    let now = local(&tz, "2026-11-20T13:00");
    let snaps = [
        Candidate {
            used: 40,
            ..snap(&tz, "2026-11-19T08:00")
        },
        Candidate {
            used: 10,
            ..snap(&tz, "2026-11-19T12:00")
        },
        Candidate {
            used: 10,
            ..snap(&tz, "2026-11-20T12:00")
        },
    ];
    let pol = RetentionPolicy {
        min_free_percent: 10,
        ..policy(&tz, 0, 30, 0)
    };
    // 6% free + 4% from the superseded one = 10%: nothing more goes.
    let p = plan(
        &snaps,
        &pol,
        now,
        Some(PoolSpace {
            size: 1000,
            free: 60,
        }),
    );
    assert_eq!(p.to_destroy(), ["20261119_0800"]);
    // 5% + 4% < 10%: the oldest rule-kept one goes too.
    let p = plan(
        &snaps,
        &pol,
        now,
        Some(PoolSpace {
            size: 1000,
            free: 50,
        }),
    );
    assert_eq!(p.to_destroy(), ["20261119_0800", "20261119_1200"]);
    assert_eq!(shown(&p, "20261119_1200"), ["destroy: pool below 10% free"]);
    assert_eq!(
        shown(&p, "20261119_0800"),
        ["destroy: superseded on 2026-11-19 by 20261119_1200"]
    );
    assert_eq!(p.bytes_used_by_destroyed(), 50);
}

#[test]
fn the_plan_serializes_with_reasons_as_text() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
    let snaps = [
        Candidate {
            used: 7,
            ..at("a", "2026-11-20T08:00:00Z".parse().unwrap())
        },
        at("b", "2026-11-20T10:00:00Z".parse().unwrap()),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 1, 0), now, None);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "entries": [
                {
                    "name": "a",
                    "time": "2026-11-20T08:00:00Z",
                    "used": 7,
                    "decision": "destroy",
                    "reasons": ["destroy: superseded on 2026-11-20 by b"],
                },
                {
                    "name": "b",
                    "time": "2026-11-20T10:00:00Z",
                    "used": 0,
                    "decision": "keep",
                    "reasons": ["keep: daily 2026-11-20", "keep: newest"],
                },
            ]
        })
    );
}

#[test]
fn entries_are_oldest_first_whatever_the_input_order() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
    let snaps = [
        at("c", "2026-11-20T10:00:00Z".parse().unwrap()),
        Candidate {
            managed: false,
            ..at("b", "2026-11-19T10:00:00Z".parse().unwrap())
        },
        at("a", "2026-11-18T10:00:00Z".parse().unwrap()),
    ];
    let p = plan(&snaps, &policy(&tz, 0, 0, 0), now, None);
    let names: Vec<&str> = p.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}
