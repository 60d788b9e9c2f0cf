//! Recovery end to end on real ZFS: restore (clone-and-swap), undo, finalize, rollback, the
//! refusals, and a backstopd killed at every step boundary of a restore.

use std::path::{Path, PathBuf};
use std::time::Duration;

use backstop_e2e::{Daemon, TestPool, run, wait_for};

/// A share whose "file service" is two scripts that append `stop`/`start` to a log, so tests
/// see that the service was stopped and started again.
struct Setup {
    pool: TestPool,
    ds: String,
    root: PathBuf,
    service_log: PathBuf,
    daemon: Daemon,
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    run(&["chmod", "+x", path.to_str().unwrap()]).unwrap();
    path.display().to_string()
}

fn write(root: &Path, content: &str) {
    std::fs::write(root.join("band"), content).unwrap();
}

fn read(root: &Path) -> String {
    std::fs::read_to_string(root.join("band")).unwrap_or_else(|e| format!("<{e}>"))
}

impl Setup {
    /// A share with snapshots `one` (content "v1") and `two` ("v2") and live content "v3".
    fn new(service_extra: &str) -> Setup {
        let pool = TestPool::new();
        let ds = pool.dataset("Matt");
        let root = pool.mountpoint().join("Matt");
        let scripts = tempfile::tempdir().unwrap().keep();
        let service_log = scripts.join("service.log");
        let stop = script(
            &scripts,
            "stop",
            &format!("echo stop >> {}", service_log.display()),
        );
        let start = script(
            &scripts,
            "start",
            &format!("echo start >> {}", service_log.display()),
        );
        let extra = format!(
            "[zfs]\nadmin_lock = \"/run/backstop-zfs-admin.lock\"\n\n\
             [[share]]\nname = \"Matt\"\ndataset = \"{ds}\"\n\
             service = {{ kind = \"none\", stop = [\"{stop}\"], start = [\"{start}\"]{service_extra} }}\n"
        );
        let daemon = Daemon::start(&[], &extra);
        write(&root, "v1");
        snapshot(&daemon, "one");
        write(&root, "v2");
        snapshot(&daemon, "two");
        write(&root, "v3");
        Setup {
            pool,
            ds,
            root,
            service_log,
            daemon,
        }
    }

    fn service_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.service_log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn datasets(&self) -> Vec<String> {
        run(&["zfs", "list", "-H", "-o", "name", "-r", &self.pool.name])
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn restore(&self, args: &[&str]) -> backstop_e2e::CliOutput {
        let mut a = vec!["restore", "Matt"];
        a.extend_from_slice(args);
        self.daemon.cli(&a)
    }
}

fn snapshot(d: &Daemon, suffix: &str) -> String {
    let j = d
        .cli(&["snapshot", "Matt", "--suffix", suffix, "--json"])
        .json();
    j["snapshot"]["name"].as_str().unwrap().to_string()
}

fn snapshot_named(s: &Setup, suffix: &str) -> String {
    s.pool
        .snapshots(&s.ds)
        .into_iter()
        .find(|n| n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no snapshot ending {suffix}: {:?}", s.pool.snapshots(&s.ds)))
}

#[test]
fn restore_swaps_in_the_snapshot_keeps_everything_and_undo_and_finalize_work() {
    let s = Setup::new("");
    let one = snapshot_named(&s, "_one");
    let two = snapshot_named(&s, "_two");

    // The plan first, changing nothing.
    let plan = s.restore(&["--to", &one, "--dry-run", "--json"]).json();
    assert_eq!(plan["target"], one.as_str());
    assert_eq!(plan["mode"], "clone-swap");
    assert!(
        plan["keeps"]
            .as_str()
            .unwrap()
            .contains("Matt.before-restore-")
    );
    assert_eq!(read(&s.root), "v3");
    assert!(s.service_calls().is_empty());

    let done = s.restore(&["--to", &one, "--yes", "--json"]).json();
    let kept = done["kept"].as_str().unwrap().to_string();
    assert_eq!(
        read(&s.root),
        "v1",
        "the share shows the snapshot's content"
    );
    assert_eq!(s.service_calls(), ["stop", "start"]);
    let all = s.datasets();
    assert!(all.contains(&kept), "{all:?}");
    assert!(!all.iter().any(|d| d.contains(".restoring-")), "{all:?}");
    // The newer snapshot and the pre-restore state are kept with the old dataset.
    assert!(s.pool.snapshots(&kept).contains(&two));
    assert!(
        s.pool
            .snapshots(&kept)
            .iter()
            .any(|n| n.starts_with("backstop-before-restore-"))
    );
    assert_eq!(s.pool.snapshots(&s.ds), vec![one.clone()]);
    assert_eq!(s.pool.prop(&kept, "mounted").0, "no");
    // New backups land on the restored share, and Backstop snapshots them.
    write(&s.root, "v4");
    snapshot(&s.daemon, "after");

    // A second restore must wait for undo or finalize.
    let again = s.restore(&["--yes"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("--undo Matt"), "{}", again.stderr);

    let undo = s.restore(&["--undo", "--yes", "--json"]).json();
    assert_eq!(
        read(&s.root),
        "v3",
        "undo brings back the state before the restore"
    );
    assert!(s.pool.snapshots(&s.ds).contains(&two));
    let undone = undo["kept"].as_str().unwrap().to_string();
    assert!(undone.contains("Matt.undone-"), "{undone}");
    assert_eq!(s.service_calls(), ["stop", "start", "stop", "start"]);

    let fin = s.restore(&["--finalize", "--dry-run", "--json"]).json();
    assert_eq!(fin["destroys"][0], undone.as_str());
    s.restore(&["--finalize", "--yes", "--json"]).json();
    assert!(!s.datasets().contains(&undone));
    assert_eq!(read(&s.root), "v3");
    assert!(s.pool.snapshots(&s.ds).contains(&one));
    assert!(s.pool.snapshots(&s.ds).contains(&two));

    // Everything was reported as events.
    let events = s.daemon.cli(&["events", "--json"]).json();
    let phases: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "recovery")
        .map(|e| e["summary"].as_str().unwrap().to_string())
        .filter(|s| !s.contains(": step "))
        .collect();
    assert_eq!(phases.len(), 6, "{phases:#?}");
    assert!(phases[1].contains("restored to"), "{phases:#?}");
}

#[test]
fn rollback_needs_its_mode_and_a_confirmation_and_lists_what_it_destroys() {
    let s = Setup::new("");
    let one = snapshot_named(&s, "_one");
    let two = snapshot_named(&s, "_two");
    let plan = s
        .restore(&["--to", &one, "--mode", "rollback", "--dry-run", "--json"])
        .json();
    assert_eq!(plan["destroys"][0], format!("{}@{two}", s.ds));
    assert!(plan["keeps"].is_null());

    // No terminal and no --yes: nothing happens.
    let refused = s.restore(&["--to", &one, "--mode", "rollback"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stdout.contains(&format!("{}@{two}", s.ds)),
        "{}",
        refused.stdout
    );
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(read(&s.root), "v3");
    assert!(s.pool.snapshots(&s.ds).contains(&two));

    s.restore(&["--to", &one, "--mode", "rollback", "--yes", "--json"])
        .json();
    assert_eq!(read(&s.root), "v1");
    assert_eq!(s.pool.snapshots(&s.ds), vec![one]);
    assert_eq!(s.service_calls(), ["stop", "start"]);
    let undo = s.restore(&["--undo", "--yes"]);
    assert_eq!(undo.code, 1);
    assert!(undo.stderr.contains("nothing to undo"), "{}", undo.stderr);
}

#[test]
fn bad_requests_change_nothing() {
    let s = Setup::new("");
    for (args, code, says) in [
        (vec!["--to", "nope", "--yes"], 1, "not found"),
        (vec!["--to", "-rf", "--yes"], 2, ""),
        (vec!["--to", "a@b", "--yes"], 2, ""),
        (vec!["--finalize", "--yes"], 1, "nothing to finalize"),
    ] {
        let out = s.restore(&args);
        assert_eq!(out.code, code, "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    let unknown = s.daemon.cli(&["restore", "Nobody", "--yes"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("not configured"),
        "{}",
        unknown.stderr
    );
    assert_eq!(read(&s.root), "v3");
    assert!(s.service_calls().is_empty());
    assert_eq!(s.datasets().len(), 2);
}

#[test]
fn a_live_time_machine_session_blocks_a_restore_unless_forced() {
    let dir = tempfile::tempdir().unwrap().keep();
    let clients = dir.join("clients");
    std::fs::write(&clients, "192.168.1.20 (MattBookPro)\n").unwrap();
    let s = Setup::new(&format!(
        ", sessions = [\"cat\", \"{}\"]",
        clients.display()
    ));
    let out = s.restore(&["--yes"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("live Time Machine session"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("MattBookPro"), "{}", out.stderr);
    assert_eq!(read(&s.root), "v3");
    assert!(s.service_calls().is_empty());
    s.restore(&["--yes", "--force", "--json"]).json();
    assert_eq!(read(&s.root), "v2");
}

#[test]
fn a_second_restore_of_the_same_share_is_refused_while_one_runs() {
    let dir = tempfile::tempdir().unwrap().keep();
    let gate = dir.join("gate");
    let stop = script(
        &dir,
        "slow-stop",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display()),
    );
    let s = Setup::new("");
    // Same share, but a service whose stop waits for the test.
    let mut d = s.daemon;
    let config = std::fs::read_to_string(&d.config).unwrap();
    let first_stop = config
        .split("stop = [\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    std::fs::write(&d.config, config.replace(&first_stop, &stop)).unwrap();
    d.restart();
    let addr = d.addr.clone();
    let first = std::thread::spawn(move || backstop_e2e::cli(&addr, &["restore", "Matt", "--yes"]));
    wait_for(
        "the first restore to start",
        Duration::from_secs(20),
        || {
            let ev = d.cli(&["events", "--json"]).json();
            ev["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "recovery")
                .then_some(())
        },
    )
    .unwrap();
    let second = d.cli(&["restore", "Matt", "--yes"]);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second.stderr.contains("already running"),
        "{}",
        second.stderr
    );
    std::fs::write(&gate, "").unwrap();
    let first = first.join().unwrap();
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(read(&s.root), "v2");
    drop(d);
}

/// backstopd killed (abort) right after the journal records each step as started and as done;
/// the next start finishes or reverses the restore: the share is mounted with the old or the
/// restored content, the service runs, no clone is left over, and nothing is lost.
#[test]
fn a_restore_interrupted_at_any_step_is_finished_or_reversed_at_the_next_start() {
    let mut s = Setup::new("");
    let one = snapshot_named(&s, "_one");
    let plan = s.restore(&["--to", &one, "--dry-run", "--json"]).json();
    let steps = plan["steps"].as_array().unwrap().len();
    let commit = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|st| {
            let st = st.as_str().unwrap();
            st.starts_with("renaming") && st.contains(".restoring-")
        })
        .unwrap();
    for step in 0..steps {
        for state in ["started", "done"] {
            let case = format!("crash after step {step} {state}");
            s.daemon.env = vec![("BACKSTOP_TEST_CRASH_AT".into(), format!("{step}:{state}"))];
            s.daemon.restart();
            let out = s.restore(&["--to", &one, "--yes"]);
            assert_ne!(out.code, 0, "{case}: the restore should have been cut off");
            assert!(s.daemon.wait_exit(Duration::from_secs(20)), "{case}");
            s.daemon.env.clear();
            s.daemon.restart();
            let forward = step >= commit;
            let calls = s.service_calls();
            assert_eq!(
                calls.last().map(String::as_str),
                Some("start"),
                "{case}: {calls:?}"
            );
            assert_eq!(s.pool.prop(&s.ds, "mounted").0, "yes", "{case}");
            let all = s.datasets();
            assert!(
                !all.iter().any(|d| d.contains(".restoring-")),
                "{case}: {all:?}"
            );
            if forward {
                assert_eq!(read(&s.root), "v1", "{case}");
                // Put it back for the next case.
                s.restore(&["--undo", "--yes", "--json"]).json();
                s.restore(&["--finalize", "--yes", "--json"]).json();
            } else {
                assert!(
                    !all.iter().any(|d| d.contains(".before-restore-")),
                    "{case}: {all:?}"
                );
            }
            assert_eq!(read(&s.root), "v3", "{case}");
            let snaps = s.pool.snapshots(&s.ds);
            assert!(snaps.contains(&one), "{case}: {snaps:?}");
            assert!(
                snaps.iter().any(|n| n.ends_with("_two")),
                "{case}: {snaps:?}"
            );
            std::fs::write(&s.service_log, "").unwrap();
        }
    }
}

#[test]
fn what_a_restore_kept_is_finalized_by_itself_after_the_configured_days() {
    let mut s = Setup::new("");
    let done = s.restore(&["--yes", "--json"]).json();
    let kept = done["kept"].as_str().unwrap().to_string();
    s.daemon.stop();
    let record = s.daemon.state_dir().join("recovery/Matt.kept.json");
    let text = std::fs::read_to_string(&record).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["at"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(&record, v.to_string()).unwrap();
    let config = std::fs::read_to_string(&s.daemon.config).unwrap();
    std::fs::write(
        &s.daemon.config,
        format!("{config}\n[recovery]\nfinalize_after_days = 3\n"),
    )
    .unwrap();
    s.daemon.restart();
    wait_for(
        "the kept dataset to be finalized",
        Duration::from_secs(30),
        || (!s.datasets().contains(&kept) && !record.exists()).then_some(()),
    )
    .unwrap();
    assert_eq!(read(&s.root), "v2");
}
