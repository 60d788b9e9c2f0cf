//! Retention on real ZFS: a backdated history, planned, applied, and compared with what zfs
//! itself lists afterwards.

use std::collections::BTreeSet;

use backstop_e2e::{Daemon, TestPool, run, wait_for};

const POLICY: &str = "[retention]\nhourly_hours = 24\ndaily_days = 7\nweekly_weeks = 4\n\
                      timezone = \"Europe/Berlin\"\ninterval_minutes = 0\n";

/// Two backups a day (09:00 and 20:00 Berlin time) on the given days before 2026-11-25.
fn history(d: &Daemon, days_back: &[i64]) {
    let base = jiff::civil::date(2026, 11, 25);
    for back in days_back {
        for hour in [9, 20] {
            let t = base
                .checked_sub(jiff::Span::new().days(*back))
                .unwrap()
                .at(hour, 0, 0, 0)
                .in_tz("Europe/Berlin")
                .unwrap()
                .timestamp();
            d.cli(&["snapshot", "TM", "--backup-time", &t.to_string(), "--json"])
                .json();
        }
    }
}

/// A `zfs` in `dir` that runs `body` (a shell script around the real zfs), and the config
/// (POLICY plus `[zfs]`) that makes backstopd use it: to act in the middle of a prune.
fn zfs_wrapper(dir: &std::path::Path, body: &str) -> String {
    let wrapper = dir.join("zfs");
    std::fs::write(&wrapper, format!("#!/bin/sh\n{body}\n")).unwrap();
    run(&["chmod", "+x", wrapper.to_str().unwrap()]).unwrap();
    format!("{POLICY}\n[zfs]\nzfs = [\"{}\"]\n", wrapper.display())
}

fn names_with(plan: &serde_json::Value, decision: &str) -> BTreeSet<String> {
    plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"] == decision)
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

fn reasons_of<'a>(plan: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} in plan"))["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

#[test]
fn the_plan_is_what_zfs_shows_afterwards() {
    let pool = TestPool::new();
    let ds = pool.dataset("tm");
    let d = Daemon::start(&[("TM", &ds)], POLICY);
    history(&d, &[1, 2, 3, 9, 10, 16, 17, 40, 41]);
    // Marks that protect, and a snapshot that is not Backstop's.
    d.cli(&["keep", "TM", "20261015_0700", "--json"]).json();
    run(&[
        "zfs",
        "hold",
        "backstop-test",
        &format!("{ds}@20261016_1800"),
    ])
    .unwrap();
    run(&[
        "zfs",
        "snapshot",
        &format!("{ds}@autosnap_2026-10-01_daily"),
    ])
    .unwrap();

    let as_of = "2026-11-25T12:00:00+01:00";
    let plan = d
        .cli(&["prune", "TM", "--dry-run", "--as-of", as_of, "--json"])
        .json();
    assert_eq!(plan["dry_run"], true);
    let doomed = names_with(&plan, "destroy");
    let foreign = names_with(&plan, "foreign");
    assert_eq!(
        foreign,
        BTreeSet::from(["autosnap_2026-10-01_daily".to_string()])
    );
    assert_eq!(reasons_of(&plan, "20261015_0700"), ["keep: keep mark"]);
    assert_eq!(reasons_of(&plan, "20261016_1800"), ["keep: hold"]);
    assert_eq!(
        reasons_of(&plan, "20261124_1900"),
        ["keep: hourly", "keep: daily 2026-11-24", "keep: newest"]
    );
    assert_eq!(
        reasons_of(&plan, "20261124_0800"),
        ["destroy: superseded on 2026-11-24 by 20261124_1900"],
        "09:00 Berlin yesterday is 27 h before 12:00 today: not hourly"
    );
    assert_eq!(
        reasons_of(&plan, "20261123_0800"),
        ["destroy: superseded on 2026-11-23 by 20261123_1900"]
    );
    // Names are in the daemon's zone (UTC): 09:00 Berlin in October is 07:00 UTC.
    assert_eq!(
        reasons_of(&plan, "20261016_0700"),
        ["destroy: older than 4 weeks"]
    );
    assert!(doomed.contains("20261015_1800"));
    // Nov 8 (Sunday) is in 2026-W45; Nov 9 (Monday) and Nov 15 (Sunday) in W46.
    assert_eq!(
        reasons_of(&plan, "20261108_1900"),
        ["keep: weekly 2026-W45"]
    );
    assert_eq!(
        reasons_of(&plan, "20261115_1900"),
        ["keep: weekly 2026-W46"]
    );
    assert_eq!(
        reasons_of(&plan, "20261109_1900"),
        ["destroy: superseded in week 2026-W46 by 20261115_1900"]
    );
    // Nothing happened yet.
    assert_eq!(pool.snapshots(&ds).len(), 19);

    // Apply (at the real now: --as-of is for dry runs), and check against the plan it applied.
    let applied = d.cli(&["prune", "TM", "--json"]).json();
    let now_plan = &applied;
    assert_eq!(applied["dry_run"], false);
    let destroyed: BTreeSet<String> = applied["destroyed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(destroyed, names_with(now_plan, "destroy"));
    assert!(!destroyed.is_empty());
    let left: BTreeSet<String> = pool.snapshots(&ds).into_iter().collect();
    let expected: BTreeSet<String> = names_with(now_plan, "keep")
        .union(&names_with(now_plan, "foreign"))
        .cloned()
        .collect();
    assert_eq!(left, expected, "zfs list shows exactly what the plan kept");
    assert!(left.contains("20261015_0700") && left.contains("20261016_1800"));
    assert!(left.contains("autosnap_2026-10-01_daily"));

    // Planning again at the same time destroys nothing.
    let again = d.cli(&["prune", "TM", "--json"]).json();
    assert_eq!(again["destroyed"].as_array().unwrap().len(), 0);

    // The prune was announced.
    let events = d.cli(&["events", "--json"]).json();
    let pruned: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "snapshots_pruned")
        .collect();
    assert_eq!(pruned.len(), 1);
    assert_eq!(
        pruned[0]["names"].as_array().unwrap().len(),
        destroyed.len()
    );
    run(&[
        "zfs",
        "release",
        "backstop-test",
        &format!("{ds}@20261016_1800"),
    ])
    .unwrap();
}

#[test]
fn a_snapshot_kept_between_plan_and_destroy_survives() {
    let pool = TestPool::new();
    let ds = pool.dataset("tm");
    let dir = tempfile::tempdir().unwrap();
    // A zfs that, right after answering the planning read, sets the keep mark on one snapshot
    // (as a person might in that moment). The flag file arms it once.
    let flag = dir.path().join("armed");
    let extra = zfs_wrapper(
        dir.path(),
        &format!(
            "zfs \"$@\"\nrc=$?\nif [ \"$1\" = get ] && [ -e {flag} ]; then rm {flag}; zfs set org.backstop:keep=on {ds}@20261015_0700; fi\nexit $rc",
            flag = flag.display()
        ),
    );
    let d = Daemon::start(&[("TM", &ds)], &extra);
    history(&d, &[1, 40, 41]);
    let plan = d.cli(&["prune", "TM", "--dry-run", "--json"]).json();
    assert!(names_with(&plan, "destroy").contains("20261015_0700"));

    std::fs::write(&flag, "").unwrap();
    let applied = d.cli(&["prune", "TM", "--json"]).json();
    assert_eq!(applied["spared"], serde_json::json!(["20261015_0700"]));
    assert!(pool.snapshots(&ds).contains(&"20261015_0700".to_string()));
    assert!(!applied["destroyed"].as_array().unwrap().is_empty());
}

#[test]
fn keep_and_unkeep() {
    let pool = TestPool::new();
    let ds = pool.dataset("tm");
    let d = Daemon::start(&[("TM", &ds)], POLICY);
    let name = d.cli(&["snapshot", "TM", "--json"]).json()["snapshot"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let full = format!("{ds}@{name}");
    let kept = d.cli(&["keep", "TM", &name, "--json"]).json();
    assert_eq!(kept["keep"], true);
    assert_eq!(
        pool.prop(&full, "org.backstop:keep"),
        ("on".into(), "local".into())
    );
    let list = d.cli(&["list", "TM"]);
    assert!(list.stdout.contains("keep"), "{}", list.stdout);
    let unkept = d.cli(&["unkeep", "TM", &name, "--json"]).json();
    assert_eq!(unkept["keep"], false);
    assert_eq!(pool.prop(&full, "org.backstop:keep").0, "-");

    // Not Backstop's, missing, or a hostile name: refused, nothing changes.
    run(&["zfs", "snapshot", &format!("{ds}@theirs")]).unwrap();
    let out = d.cli(&["keep", "TM", "theirs"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("was not made by Backstop"),
        "{}",
        out.stderr
    );
    assert_eq!(
        pool.prop(&format!("{ds}@theirs"), "org.backstop:keep").0,
        "-"
    );
    let out = d.cli(&["keep", "TM", "20000101_0000"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("not found on share 'TM'"),
        "{}",
        out.stderr
    );
    let out = d.cli(&["keep", "TM", "x@y"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn a_backup_snapshot_prunes_the_share_by_itself() {
    let pool = TestPool::new();
    let ds = pool.dataset("tm");
    let d = Daemon::start(&[("TM", &ds)], POLICY);
    history(&d, &[40, 41]);
    assert_eq!(pool.snapshots(&ds).len(), 4);
    d.cli(&["snapshot", "TM", "--origin", "backup", "--json"])
        .json();
    // 40 and 41 days ago are beyond 7 daily days and 4 weekly weeks: only the new one stays.
    let event = wait_for(
        "the automatic prune's event",
        std::time::Duration::from_secs(30),
        || {
            let events = d.cli(&["events", "--json"]).json();
            events["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "snapshots_pruned")
                .cloned()
        },
    )
    .unwrap();
    assert_eq!(event["names"].as_array().unwrap().len(), 4, "{event}");
    assert_eq!(pool.snapshots(&ds).len(), 1);
}

#[test]
fn a_failure_part_way_is_reported_and_the_next_run_finishes() {
    let pool = TestPool::new();
    let ds = pool.dataset("tm");
    let dir = tempfile::tempdir().unwrap();
    // A zfs that puts a hold on one snapshot just before Backstop destroys it (after the
    // re-read), so that destroy fails while the others go.
    let flag = dir.path().join("armed");
    let victim = format!("{ds}@20261015_1800");
    let extra = zfs_wrapper(
        dir.path(),
        &format!(
            "if [ \"$1\" = destroy ] && [ \"$2\" = {victim} ] && [ -e {flag} ]; then rm {flag}; zfs hold racer {victim}; fi\nexec zfs \"$@\"",
            flag = flag.display()
        ),
    );
    let d = Daemon::start(&[("TM", &ds)], &extra);
    history(&d, &[1, 40, 41]);
    std::fs::write(&flag, "").unwrap();

    let out = d.cli(&["prune", "TM", "--json"]);
    assert_eq!(out.code, 1, "a partial failure is a failure: {out:?}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["failed"][0]["name"], "20261015_1800", "{report}");
    assert!(!report["failed"][0]["reason"].as_str().unwrap().is_empty());
    let planned = names_with(&report, "destroy");
    let kept = names_with(&report, "keep");
    assert_eq!(
        report["destroyed"].as_array().unwrap().len(),
        planned.len() - 1,
        "all but the held one went: {report}"
    );
    let left: BTreeSet<String> = pool.snapshots(&ds).into_iter().collect();
    let mut expected = kept.clone();
    expected.insert("20261015_1800".to_string());
    assert_eq!(left, expected);
    let text = d.cli(&["events"]).stdout;
    assert!(text.contains("could not be destroyed"), "{text}");

    // Once the hold is gone, the next run finishes the job.
    run(&["zfs", "release", "racer", &victim]).unwrap();
    let again = d.cli(&["prune", "TM", "--json"]).json();
    assert_eq!(again["destroyed"], serde_json::json!(["20261015_1800"]));
    assert_eq!(pool.snapshots(&ds).len(), kept.len());
}
