//! Time Machine's own record on the server: a backup seen finishing in the bundle is snapshotted
//! by the server itself (once, also when an agent asks for the same backup), marked good; a
//! verification failure reaches subscribed clients as a critical event.

use std::path::Path;
use std::time::Duration;

use backstop_e2e::{Daemon, TestPool, repo_root, wait_for};

const FAST: &str = "[bundle]\npoll_seconds = 1\nquiet_seconds = 1\n[scrub]\ninterval_days = 0\n";

fn history(stamps: &[(&str, &str)]) -> String {
    let entries: String = stamps
        .iter()
        .map(|(name, date)| {
            format!(
                "\t\t<dict>\n\t\t\t<key>com.apple.backupd.SnapshotCompletionDate</key>\n\t\t\t<date>{date}</date>\n\t\t\t<key>com.apple.backupd.SnapshotName</key>\n\t\t\t<string>{name}.backup</string>\n\t\t</dict>\n"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n\t<key>Snapshots</key>\n\t<array>\n{entries}\t</array>\n</dict>\n</plist>\n"
    )
}

/// Writes a record the way Time Machine does: a temp file renamed into place.
fn write_record(dir: &Path, name: &str, contents: &[u8]) {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn a_backup_finishing_in_the_bundle_is_snapshotted_and_a_failed_verification_announced() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let bundle = pool.mountpoint().join("mbp/MattBookPro.sparsebundle");
    std::fs::create_dir_all(bundle.join("bands")).unwrap();
    let fixtures = repo_root().join("server/tests/fixtures/bundle");
    let machine_ok = std::fs::read(fixtures.join("MachineID-ok.plist")).unwrap();
    let machine_failed =
        std::fs::read(fixtures.join("MachineID-verification-failed.plist")).unwrap();
    write_record(
        &bundle,
        "com.apple.TimeMachine.MachineID.plist",
        &machine_ok,
    );
    let first = ("2026-06-14-145122", "2026-06-14T03:51:22Z");
    write_record(
        &bundle,
        "com.apple.TimeMachine.SnapshotHistory.plist",
        history(&[first]).as_bytes(),
    );
    let d = Daemon::start(&[("MattBookPro", &ds)], FAST);

    // The history as found at start is the baseline: nothing is snapshotted for it.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(pool.snapshots(&ds).is_empty());

    // A partial write first (Time Machine mid-rewrite), then the whole new history.
    let next = ("2026-06-14-155240", "2026-06-14T04:52:40Z");
    let full = history(&[first, next]);
    std::fs::write(
        bundle.join("com.apple.TimeMachine.SnapshotHistory.plist"),
        &full.as_bytes()[..full.len() / 2],
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        pool.snapshots(&ds).is_empty(),
        "a partial record changes nothing"
    );
    write_record(
        &bundle,
        "com.apple.TimeMachine.SnapshotHistory.plist",
        full.as_bytes(),
    );

    let name = wait_for("the server's own snapshot", Duration::from_secs(30), || {
        pool.snapshots(&ds).first().cloned()
    })
    .unwrap();
    assert_eq!(name, "20260614_0452");
    let full_name = format!("{ds}@{name}");
    assert_eq!(pool.prop(&full_name, "org.backstop:verified").0, "good");
    assert_eq!(pool.prop(&full_name, "org.backstop:origin").0, "backup");
    assert_eq!(
        pool.prop(&full_name, "org.backstop:backup-id").0,
        "tm/2026-06-14-155240"
    );

    // The agent asks for the same backup later (its own destination id): no second snapshot.
    let again = d
        .cli(&[
            "snapshot",
            "MattBookPro",
            "--origin",
            "backup",
            "--backup-id",
            "5F2C6F4E/2026-06-14-155240",
            "--json",
        ])
        .json();
    assert_eq!(again["created"], false, "{again}");
    assert_eq!(pool.snapshots(&ds).len(), 1);

    // Time Machine flags the backup as failed: a critical event with the way back.
    write_record(
        &bundle,
        "com.apple.TimeMachine.MachineID.plist",
        &machine_failed,
    );
    let event = wait_for(
        "the verification failure event",
        Duration::from_secs(30),
        || {
            let events = d.cli(&["events", "--json"]).json();
            events["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "verification_failed")
                .cloned()
        },
    )
    .unwrap();
    assert_eq!(event["severity"], "critical");
    assert_eq!(event["share"], "MattBookPro");
    let summary = event["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Time Machine on MattBookPro reports its backup failed verification; newest good snapshot 20260614_0452 from "),
        "{summary}"
    );
    assert!(summary.ends_with("restore?"), "{summary}");
}

/// File system events, not the poll, bring the records to the server: with a 10-minute poll a
/// rewritten SnapshotHistory is snapshotted about `quiet_seconds` after the write; and after the
/// dataset was unmounted and mounted again (as a restore may do) the watch is set up anew.
#[test]
fn a_rewritten_history_is_snapshotted_in_seconds_with_a_slow_poll_also_after_a_remount() {
    const SLOW: &str =
        "[bundle]\npoll_seconds = 600\nquiet_seconds = 1\n[scrub]\ninterval_days = 0\n";
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let bundle = pool.mountpoint().join("mbp/MattBookPro.sparsebundle");
    std::fs::create_dir_all(bundle.join("bands")).unwrap();
    let fixtures = repo_root().join("server/tests/fixtures/bundle");
    write_record(
        &bundle,
        "com.apple.TimeMachine.MachineID.plist",
        &std::fs::read(fixtures.join("MachineID-ok.plist")).unwrap(),
    );
    let first = ("2026-06-14-145122", "2026-06-14T03:51:22Z");
    write_record(
        &bundle,
        "com.apple.TimeMachine.SnapshotHistory.plist",
        history(&[first]).as_bytes(),
    );
    let d = Daemon::start(&[("MattBookPro", &ds)], SLOW);
    // The server logs this once it has read the records as they are (its baseline).
    let line = wait_for("the bundle to be watched", Duration::from_secs(20), || {
        d.log_text()
            .lines()
            .find(|l| l.contains("watching Time Machine's records"))
            .map(str::to_string)
    })
    .unwrap();
    eprintln!("{line}");
    let events = !line.contains("polling");

    let next = ("2026-06-14-155240", "2026-06-14T04:52:40Z");
    let written = std::time::Instant::now();
    write_record(
        &bundle,
        "com.apple.TimeMachine.SnapshotHistory.plist",
        history(&[first, next]).as_bytes(),
    );
    // quiet_seconds (1) plus a little; the poll would take up to 600 s.
    let name = wait_for("the server's own snapshot", Duration::from_secs(8), || {
        pool.snapshots(&ds).first().cloned()
    })
    .unwrap_or_else(|e| panic!("{e}: {}", d.log_text()));
    let latency = written.elapsed();
    eprintln!("rewrite to snapshot: {latency:?} (events: {events})");
    assert_eq!(name, "20260614_0452");
    assert_eq!(
        pool.prop(&format!("{ds}@{name}"), "org.backstop:verified")
            .0,
        "good"
    );

    // Unmounted and mounted again: the old watch is dead; the server notices the new mount,
    // watches it and sees the history written meanwhile.
    {
        let _lock = backstop_e2e::zfs_admin_lock();
        backstop_e2e::run(&["zfs", "unmount", &ds]).unwrap();
        // zfs-fuse has once refused the mount right after the unmount: try again briefly.
        wait_for("zfs mount", Duration::from_secs(5), || {
            backstop_e2e::run(&["zfs", "mount", &ds])
                .map_err(|e| eprintln!("{e}"))
                .ok()
        })
        .unwrap();
    }
    let third = ("2026-06-14-165012", "2026-06-14T05:50:12Z");
    let written = std::time::Instant::now();
    write_record(
        &bundle,
        "com.apple.TimeMachine.SnapshotHistory.plist",
        history(&[first, next, third]).as_bytes(),
    );
    wait_for(
        "a snapshot of the backup written after the remount",
        Duration::from_secs(20),
        || {
            pool.snapshots(&ds)
                .contains(&"20260614_0550".to_string())
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}", d.log_text()));
    eprintln!(
        "after a remount, rewrite to snapshot: {:?}",
        written.elapsed()
    );
    let watched = d
        .log_text()
        .matches("watching Time Machine's records")
        .count();
    assert!(watched >= 2, "watched again: {}", d.log_text());

    // Written after the watch was set up again: seen by its events.
    let fourth = ("2026-06-14-175501", "2026-06-14T06:55:01Z");
    let written = std::time::Instant::now();
    write_record(
        &bundle,
        "com.apple.TimeMachine.SnapshotHistory.plist",
        history(&[first, next, third, fourth]).as_bytes(),
    );
    wait_for(
        "a snapshot through the new watch",
        Duration::from_secs(8),
        || {
            pool.snapshots(&ds)
                .contains(&"20260614_0655".to_string())
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}", d.log_text()));
    eprintln!(
        "through the new watch, rewrite to snapshot: {:?}",
        written.elapsed()
    );
    assert_eq!(pool.snapshots(&ds).len(), 3);
}
