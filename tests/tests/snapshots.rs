//! Snapshots on real ZFS through backstopd and the `backstop` CLI.

use backstop_e2e::{Daemon, TestPool, run};

fn setup() -> (TestPool, String, Daemon) {
    let pool = TestPool::new();
    let ds = pool.dataset("MattBookPro");
    let daemon = Daemon::start(&[("MattBookPro", &ds)], "");
    (pool, ds, daemon)
}

#[test]
fn snapshot_is_named_marked_and_listed() {
    let (pool, ds, d) = setup();
    let out = d.cli(&[
        "snapshot",
        "MattBookPro",
        "--suffix",
        "before-upgrade",
        "--backup-time",
        "2013-11-24T13:44:10+01:00",
        "--json",
    ]);
    let j = out.json();
    assert_eq!(j["created"], true);
    assert_eq!(j["snapshot"]["name"], "20131124_1244_before-upgrade");
    assert_eq!(j["snapshot"]["backup_time"], "2013-11-24T12:44:10Z");
    assert_eq!(j["snapshot"]["origin"], "manual");

    // zfs itself shows the snapshot with Backstop's marks set on it (not inherited).
    let full = format!("{ds}@20131124_1244_before-upgrade");
    assert_eq!(pool.snapshots(&ds), vec!["20131124_1244_before-upgrade"]);
    assert_eq!(
        pool.prop(&full, "org.backstop:managed"),
        ("on".into(), "local".into())
    );
    assert_eq!(pool.prop(&full, "org.backstop:backup-time").0, "1385297050");
    assert_eq!(pool.prop(&full, "org.backstop:origin").0, "manual");

    // A foreign snapshot is listed as such.
    run(&[
        "zfs",
        "snapshot",
        &format!("{ds}@autosnap_2026-11-20_00:00:01_daily"),
    ])
    .unwrap();
    let list = d.cli(&["list", "MattBookPro", "--json"]).json();
    let snaps = list["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["name"], "20131124_1244_before-upgrade");
    assert_eq!(snaps[0]["managed"], true);
    assert_eq!(snaps[1]["managed"], false);
    assert_eq!(snaps[1]["origin"], serde_json::Value::Null);
    assert!(snaps[0]["referenced"].as_u64().unwrap() > 0);
    assert_eq!(list["share"]["dataset"], ds.as_str());
    // The share's space matches what zfs reports.
    let avail: u64 = run(&["zfs", "get", "-Hp", "-o", "value", "available", &ds])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let reported = list["space"]["available"].as_u64().unwrap();
    assert!(reported.abs_diff(avail) < 1 << 20, "{reported} vs {avail}");

    // The table shows the same, with zfs-style sizes.
    let table = d.cli(&["list", "MattBookPro"]);
    assert_eq!(table.code, 0);
    assert!(table.stdout.starts_with("NAME "), "{}", table.stdout);
    let row: Vec<&str> = table
        .stdout
        .lines()
        .find(|l| l.starts_with("20131124_1244_before-upgrade "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[1..3], ["2013-11-24", "12:44"], "{row:?}");
    assert_eq!(row[row.len() - 2..], ["manual", "-"], "{row:?}");
    assert!(table.stdout.contains("foreign"));
    assert!(table.stdout.contains("USEDSNAP"));
}

#[test]
fn taken_names_get_seconds_then_a_counter() {
    let (pool, ds, d) = setup();
    let t = "2026-11-24T10:15:42Z";
    let names: Vec<String> = (0..4)
        .map(|_| {
            let j = d
                .cli(&["snapshot", "MattBookPro", "--backup-time", t, "--json"])
                .json();
            j["snapshot"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "20261124_1015",
            "20261124_101542",
            "20261124_101542-2",
            "20261124_101542-3"
        ]
    );
    assert_eq!(pool.snapshots(&ds).len(), 4);
}

#[test]
fn concurrent_requests_on_one_share_all_succeed_with_distinct_names() {
    let (pool, ds, d) = setup();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let addr = d.addr.clone();
            std::thread::spawn(move || {
                backstop_e2e::cli(
                    &addr,
                    &[
                        "snapshot",
                        "MattBookPro",
                        "--backup-time",
                        "2026-11-24T10:15:00Z",
                        "--json",
                    ],
                )
                .json()["snapshot"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut names: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6);
    assert_eq!(pool.snapshots(&ds).len(), 6);
}

#[test]
fn a_retried_backup_id_returns_the_same_snapshot() {
    let (pool, ds, mut d) = setup();
    let args = [
        "snapshot",
        "MattBookPro",
        "--origin",
        "backup",
        "--backup-id",
        "5F2C6F4E-0B7A/2026-06-14-145122",
        "--backup-time",
        "2026-06-14T14:51:22Z",
        "--json",
    ];
    let first = d.cli(&args).json();
    assert_eq!(first["created"], true);
    assert_eq!(first["snapshot"]["origin"], "backup");
    let second = d.cli(&args).json();
    assert_eq!(second["created"], false);
    assert_eq!(second["snapshot"]["name"], first["snapshot"]["name"]);
    // Also after a restart (nothing cached) and after the user renamed it.
    d.restart();
    assert_eq!(d.cli(&args).json()["created"], false);
    run(&[
        "zfs",
        "rename",
        &format!("{ds}@20260614_1451"),
        &format!("{ds}@renamed-by-hand"),
    ])
    .unwrap();
    let third = d.cli(&args).json();
    assert_eq!(third["created"], false);
    assert_eq!(third["snapshot"]["name"], "renamed-by-hand");
    assert_eq!(pool.snapshots(&ds).len(), 1);
    // A different backup id is a new snapshot.
    let mut other = args;
    other[5] = "5F2C6F4E-0B7A/2026-06-14-155122";
    assert_eq!(d.cli(&other).json()["created"], true);
    assert_eq!(pool.snapshots(&ds).len(), 2);
}

#[test]
fn hostile_input_is_refused_and_changes_nothing() {
    let (pool, ds, d) = setup();
    d.cli(&["snapshot", "MattBookPro", "--json"]).json();
    let before = pool.snapshots(&ds);
    let long = "x".repeat(65);
    for bad in [
        "a@b",
        "../x",
        "-rf",
        "a b",
        "a\nb",
        "",
        long.as_str(),
        "x;rm",
    ] {
        let out = d.cli(&["snapshot", "MattBookPro", &format!("--suffix={bad}")]);
        assert_eq!(out.code, 2, "{bad:?}: {out:?}");
        assert!(
            out.stderr.contains("invalid suffix"),
            "{bad:?}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line: {}",
            out.stderr
        );
    }
    let out = d.cli(&["snapshot", "MattBookPro", "--backup-id", "-x y"]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = d.cli(&[
        "snapshot",
        "MattBookPro",
        "--backup-time",
        "2099-01-01T00:00:00Z",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("invalid backup time"), "{}", out.stderr);
    let out = d.cli(&["snapshot", "Nope"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "backstop: share 'Nope' is not configured on {} (configured: MattBookPro)",
            d.addr
        )
    );
    let out = d.cli(&["list", "../MattBookPro"]);
    assert_eq!(out.code, 1);
    assert_eq!(pool.snapshots(&ds), before);
}

#[test]
fn a_missing_dataset_is_a_clear_error() {
    let pool = TestPool::new();
    let d = Daemon::start(&[("Gone", &format!("{}/not-created", pool.name))], "");
    let out = d.cli(&["snapshot", "Gone"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("does not exist; create it or fix the share's dataset"),
        "{}",
        out.stderr
    );
}

#[test]
fn adopt_marks_the_scripts_snapshots_and_leaves_others_alone() {
    let (pool, ds, d) = setup();
    for name in [
        "20131124_1344",
        "20131124_1344_before-upgrade",
        "20131201_0900",
        "autosnap_2026-11-20_00:00:01_daily",
        "my-own",
    ] {
        run(&["zfs", "snapshot", &format!("{ds}@{name}")]).unwrap();
    }
    let j = d.cli(&["adopt", "MattBookPro", "--json"]).json();
    let adopted: Vec<&str> = j["adopted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(adopted.len(), 3, "{j}");
    for name in [
        "20131124_1344",
        "20131124_1344_before-upgrade",
        "20131201_0900",
    ] {
        assert!(adopted.contains(&name), "{name} in {adopted:?}");
        let full = format!("{ds}@{name}");
        assert_eq!(pool.prop(&full, "org.backstop:managed").0, "on");
        assert_eq!(pool.prop(&full, "org.backstop:origin").0, "adopted");
    }
    // Backup time from the name, in the host's zone (UTC here).
    assert_eq!(
        pool.prop(&format!("{ds}@20131124_1344"), "org.backstop:backup-time")
            .0,
        "1385300640"
    );
    let mut skipped: Vec<&str> = j["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    skipped.sort();
    assert_eq!(skipped, ["autosnap_2026-11-20_00:00:01_daily", "my-own"]);
    for foreign in ["autosnap_2026-11-20_00:00:01_daily", "my-own"] {
        assert_eq!(
            pool.prop(&format!("{ds}@{foreign}"), "org.backstop:managed")
                .0,
            "-"
        );
    }
    // Adopting again finds nothing new.
    let again = d.cli(&["adopt", "MattBookPro", "--json"]).json();
    assert_eq!(again["adopted"].as_array().unwrap().len(), 0);
    let text = d.cli(&["adopt", "MattBookPro"]);
    assert!(text.stdout.contains("nothing to adopt"), "{}", text.stdout);
}
