//! The Netatalk 4 test part, for real: Debian trixie's netatalk in the chroot that
//! `scripts/netatalk-chroot` makes, a volume on a zfs-fuse dataset mounted inside the chroot,
//! CNIDs read over AFP with `afparg`, the CNID database checked with `dbd -s`.
//!
//! No chroot is a failure naming the script, not a skip.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use backstop_e2e::netatalk::{self, Netatalk, Volume, timed};
use backstop_e2e::{TestPool, run, wait_for, zfs_admin_lock};
use backstop_server::file_service::netatalk as parsers;

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn refs(argv: &[String]) -> Vec<&str> {
    argv.iter().map(String::as_str).collect()
}

fn assert_distinct(cnids: &BTreeMap<String, u32>) {
    let mut ids: Vec<u32> = cnids.values().copied().collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), cnids.len(), "CNIDs are not distinct: {cnids:?}");
}

#[test]
fn cnids_survive_a_restart_and_a_rollback() {
    // Loud when the chroot is missing (before any pool is made).
    let root = netatalk::chroot_dir();
    let pool = TestPool::new();
    let unique = netatalk::unique_name();
    let mountpoint = netatalk::volume_dir(&unique);
    let ds = pool.dataset_at("tm", &mountpoint);
    assert!(mountpoint.starts_with(&root));
    write(&mountpoint.join("a.txt"), "a");
    write(&mountpoint.join("b.txt"), "b");
    write(&mountpoint.join("with space.txt"), "s");
    write(&mountpoint.join("sub/c.txt"), "c");
    write(&mountpoint.join("sub/deep/d.txt"), "d");

    let vol_path = netatalk::volume_path_in_chroot(&unique);
    let (na, took) = timed(|| Netatalk::start(vec![Volume::new("TimeMachine", &vol_path)]));
    let na = na.expect("start netatalk");
    eprintln!("netatalk start: {took:?}");
    assert!(na.is_running());

    let before = na.cnids("TimeMachine").expect("CNIDs over AFP");
    for f in [
        "a.txt",
        "b.txt",
        "with space.txt",
        "sub/",
        "sub/c.txt",
        "sub/deep/",
        "sub/deep/d.txt",
    ] {
        assert!(before.contains_key(f), "{f} missing from {before:?}");
    }
    assert!(!before.contains_key(".AppleDB/"), "{before:?}");
    assert_distinct(&before);
    // The database is in the dataset: a snapshot holds it.
    assert!(mountpoint.join(".AppleDB/cnid2.db").is_file());

    // The parsers read this afp.conf as netatalk does: nothing to advise.
    let text = std::fs::read_to_string(na.afp_conf_host_path()).unwrap();
    let setup = parsers::parse_afp_conf(&text)
        .unwrap()
        .volume("TimeMachine")
        .expect("the volume in afp.conf");
    assert_eq!(setup.path, vol_path);
    assert_eq!(setup.cnid_db, parsers::CnidDb::InsideVolume);
    assert!(!setup.cnid_dev);
    assert!(setup.time_machine);
    assert_eq!(parsers::advice(&setup), Vec::new());
    let mut argv = na.netatalk_argv_prefix();
    argv.push("-V".into());
    let out = run(&refs(&argv)).expect("netatalk -V");
    assert_eq!(
        parsers::parse_version(&out).map(|(v, _)| v),
        Some(parsers::NetatalkVersion::V4)
    );

    // Stopped and started again: same CNIDs.
    let (stopped, took) = timed(|| na.stop());
    stopped.expect("stop netatalk");
    eprintln!("netatalk stop: {took:?}");
    assert!(!na.is_running());
    assert_eq!(na.connected_clients(), 0);
    let (started, took) = timed(|| na.start_again());
    started.expect("start netatalk again");
    eprintln!("netatalk start again: {took:?}");
    assert_eq!(na.cnids("TimeMachine").unwrap(), before);

    // A snapshot while netatalk runs (as Backstop takes them), then later changes.
    run(&["zfs", "snapshot", &format!("{ds}@before")]).expect("zfs snapshot");
    std::fs::remove_file(mountpoint.join("a.txt")).unwrap();
    write(&mountpoint.join("new.txt"), "n");
    let changed = na.cnids("TimeMachine").unwrap();
    assert!(!changed.contains_key("a.txt"));
    assert!(changed.contains_key("new.txt"));
    assert!(!before.values().any(|id| *id == changed["new.txt"]));

    // Rolled back while stopped: every CNID as before, and dbd finds nothing to fix.
    na.stop().unwrap();
    let (rolled, took) = timed(|| {
        let _lock = zfs_admin_lock();
        run(&["zfs", "rollback", &format!("{ds}@before")])
    });
    rolled.expect("zfs rollback");
    eprintln!("zfs rollback: {took:?}");
    na.start_again().unwrap();
    assert_eq!(na.cnids("TimeMachine").unwrap(), before);
    let (scan, took) = timed(|| na.dbd_scan(&vol_path));
    let scan = scan.expect("dbd -s");
    eprintln!("dbd -s: {took:?}");
    let report = parsers::parse_dbd_output(&scan);
    assert!(
        report.clean,
        "dbd -s after the rollback: {report:?}\n{scan}"
    );

    // afparg's sessions are gone once it logged out.
    wait_for("no AFP client left", Duration::from_secs(10), || {
        (na.connected_clients() == 0).then_some(())
    })
    .unwrap();
    let out = run(&refs(&na.sessions_argv())).expect("sessions script");
    assert_eq!(out, "");
    drop(na);
    drop(pool);
    let _ = std::fs::remove_dir(&mountpoint);
}

#[test]
fn two_instances_run_side_by_side_and_dbd_sees_a_stopped_one() {
    // netatalk's lock file is compiled in; each instance gets its own in its own namespace.
    let a_dir = netatalk::unique_name();
    let b_dir = netatalk::unique_name();
    for d in [&a_dir, &b_dir] {
        write(&netatalk::volume_dir(d).join("f.txt"), d);
    }
    let a = Netatalk::start(vec![Volume::new(
        "A",
        &netatalk::volume_path_in_chroot(&a_dir),
    )])
    .expect("first instance");
    let b = Netatalk::start(vec![Volume {
        db_inside: false,
        cnid_dev: true,
        ..Volume::new("B", &netatalk::volume_path_in_chroot(&b_dir))
    }])
    .expect("second instance");
    assert!(a.is_running() && b.is_running());
    assert_ne!(a.master_pid(), b.master_pid());
    assert!(a.cnids("A").unwrap().contains_key("f.txt"));
    assert!(b.cnids("B").unwrap().contains_key("f.txt"));

    // B keeps its database outside the volume, keyed by device: the parsers say so and advise.
    let text = std::fs::read_to_string(b.afp_conf_host_path()).unwrap();
    let setup = parsers::parse_afp_conf(&text).unwrap().volume("B").unwrap();
    let parsers::CnidDb::Outside(db) = &setup.cnid_db else {
        panic!("{setup:?}");
    };
    assert!(
        b.host_path(&db.display().to_string())
            .join("cnid2.db")
            .is_file(),
        "{db:?}"
    );
    assert!(!netatalk::volume_dir(&b_dir).join(".AppleDB").exists());
    let advice = parsers::advice(&setup);
    assert_eq!(advice.len(), 2, "{advice:?}");

    // Stopping one leaves the other serving; dbd against the stopped one says so (exit 0).
    b.stop().unwrap();
    assert!(a.is_running());
    assert!(a.cnids("A").is_ok());
    let out = b
        .dbd_scan(&netatalk::volume_path_in_chroot(&b_dir))
        .unwrap();
    let report = parsers::parse_dbd_output(&out);
    assert!(!report.clean, "{out}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("onnection refused")),
        "{report:?}"
    );
    drop(a);
    drop(b);
    for d in [&a_dir, &b_dir] {
        let _ = std::fs::remove_dir_all(netatalk::volume_dir(d));
    }
}

#[test]
fn a_missing_chroot_is_a_loud_failure() {
    // chroot_dir_at panics with this message; the status is checked here without a panic.
    let why = netatalk::chroot_status(Path::new("/nonexistent/trixie")).unwrap_err();
    assert!(why.contains("scripts/netatalk-chroot"), "{why}");
    assert!(why.contains("/nonexistent/trixie"), "{why}");
    assert_eq!(
        netatalk::chroot_status(&netatalk::chroot_dir()),
        Ok(netatalk::chroot_dir())
    );
}
