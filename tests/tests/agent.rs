//! The post-backup hook end to end: the agent core replays recorded backupd logs, the server
//! snapshots each completed backup once (through the durable queue when it is down), records
//! failures, and marks snapshots with Time Machine's own verdict from the bundle.

use std::path::PathBuf;
use std::process::Command;

use backstop_e2e::{CliOutput, Daemon, TestPool, bin, repo_root, run};

fn log(name: &str) -> String {
    repo_root()
        .join("agent-mac/core/tests/fixtures/unified-log")
        .join(name)
        .display()
        .to_string()
}

fn watch(addr: &str, state: &std::path::Path, args: &[&str]) -> CliOutput {
    Command::new(bin("backstop"))
        .args(["--server", addr, "watch", "--state-dir"])
        .arg(state)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap()
        .into()
}

fn json_lines(out: &CliOutput) -> Vec<serde_json::Value> {
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn replay_prints_one_line_per_backup_that_ended() {
    let state = tempfile::tempdir().unwrap();
    let out = watch(
        "127.0.0.1:1",
        state.path(),
        &["--replay", &log("tahoe-smb-success.ndjson"), "--json"],
    );
    assert_eq!(
        json_lines(&out),
        [
            serde_json::json!({"outcome": "completed", "backup": "2026-06-14-145122", "code": null,
            "reason": null, "at": "2026-06-14T04:51:22.894Z", "confirmed": false})
        ]
    );
    let out = watch(
        "127.0.0.1:1",
        state.path(),
        &[
            "--replay",
            &log("tahoe-smb-failed-network.ndjson"),
            "--json",
        ],
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[0]["code"], 26);
    assert_eq!(lines[0]["reason"], "BACKUP_FAILED_DISCONNECTED_NETWORK");
    let text = watch(
        "127.0.0.1:1",
        state.path(),
        &["--replay", &log("monterey-smb-success.ndjson")],
    );
    assert!(
        text.stdout.contains("completed backup 2022-05-21-192820"),
        "{text:?}"
    );
    // Garbage is skipped, never fatal.
    let junk = state.path().join("junk.ndjson");
    std::fs::write(
        &junk,
        "Filtering the log data\n{not json\n\u{0}\u{1}\n{\"count\":3,\"finished\":1}\n",
    )
    .unwrap();
    let out = watch(
        "127.0.0.1:1",
        state.path(),
        &["--replay", junk.to_str().unwrap(), "--verbose"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("lines skipped"), "{out:?}");
}

#[test]
fn one_snapshot_per_successful_backup_none_for_failures() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let d = Daemon::start(&[("MattBookPro", &ds)], "");
    let state = tempfile::tempdir().unwrap();
    let args = |file: &str| {
        vec![
            "--replay".to_string(),
            log(file),
            "--snapshot".into(),
            "--share".into(),
            "MattBookPro".into(),
            "--destination".into(),
            "5F2C6F4E".into(),
        ]
    };
    let a = args("tahoe-smb-success.ndjson");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = watch(&d.addr, state.path(), &a);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(pool.snapshots(&ds), ["20260614_0451"]);
    let full = format!("{ds}@20260614_0451");
    assert_eq!(pool.prop(&full, "org.backstop:origin").0, "backup");
    assert_eq!(
        pool.prop(&full, "org.backstop:backup-id").0,
        "5F2C6F4E/2026-06-14-145122"
    );
    // The agent retries: no second snapshot.
    let again = watch(&d.addr, state.path(), &a);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("already had snapshot"), "{again:?}");
    assert_eq!(pool.snapshots(&ds).len(), 1);

    // A failed backup: no snapshot, a warning event in plain words.
    let f = args("tahoe-smb-failed-network.ndjson");
    let f: Vec<&str> = f.iter().map(String::as_str).collect();
    let out = watch(&d.addr, state.path(), &f);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(pool.snapshots(&ds).len(), 1);
    let events = d.cli(&["events", "--json"]).json();
    let ended: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "backup_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{events}");
    assert_eq!(ended[0]["severity"], "warning");
    assert!(
        ended[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("MattBookPro: Time Machine backup failed: "),
        "{}",
        ended[0]["summary"]
    );
}

#[test]
fn a_backup_while_the_server_is_down_is_snapshotted_when_it_is_back() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let mut d = Daemon::start(&[("MattBookPro", &ds)], "");
    let state = tempfile::tempdir().unwrap();
    d.stop();
    let success = log("tahoe-smb-success.ndjson");
    let out = watch(
        &d.addr,
        state.path(),
        &["--replay", &success, "--snapshot", "--share", "MattBookPro"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("1 snapshot request queued"), "{out:?}");
    assert!(state.path().join("snapshot-queue.json").exists());
    assert!(pool.snapshots(&ds).is_empty());

    d.restart();
    let quiet = state.path().join("quiet.ndjson");
    std::fs::write(&quiet, "Filtering the log data using \"subsystem\"\n").unwrap();
    let out = watch(
        &d.addr,
        state.path(),
        &[
            "--replay",
            quiet.to_str().unwrap(),
            "--snapshot",
            "--share",
            "MattBookPro",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(pool.snapshots(&ds), ["20260614_0451"]);
    let q: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.path().join("snapshot-queue.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(q, serde_json::json!([]));
}

fn bundle(share_root: &std::path::Path, machine_id: &str) {
    let fixtures: PathBuf = repo_root().join("server/tests/fixtures/bundle");
    let b = share_root.join("MattBookPro.sparsebundle");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(
        fixtures.join("SnapshotHistory.plist"),
        b.join("com.apple.TimeMachine.SnapshotHistory.plist"),
    )
    .unwrap();
    std::fs::copy(
        fixtures.join(machine_id),
        b.join("com.apple.TimeMachine.MachineID.plist"),
    )
    .unwrap();
}

#[test]
fn snapshots_carry_time_machines_own_verdict() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let root = pool.mountpoint().join("mbp");
    let d = Daemon::start(&[("MattBookPro", &ds)], "");
    bundle(&root, "MachineID-ok.plist");
    let snap = |id: &str| {
        d.cli(&[
            "snapshot",
            "MattBookPro",
            "--origin",
            "backup",
            "--backup-id",
            id,
            "--json",
        ])
        .json()["snapshot"]
            .clone()
    };
    let good = snap("D/2026-06-14-155240");
    assert_eq!(good["verification"], "good", "{good}");
    assert_eq!(
        pool.prop(good["full_name"].as_str().unwrap(), "org.backstop:verified"),
        ("good".into(), "local".into())
    );
    // A backup the history does not list: unknown.
    assert_eq!(snap("D/2026-06-15-101010")["verification"], "unknown");
    // Time Machine flags the backup set as failed: bad.
    bundle(&root, "MachineID-verification-failed.plist");
    assert_eq!(snap("D/2026-06-14-145122")["verification"], "bad");
    let list = d.cli(&["list", "MattBookPro"]);
    assert!(
        list.stdout.contains("good") && list.stdout.contains("bad"),
        "{}",
        list.stdout
    );
    // Retention keeps the newest good one whatever the rules say.
    let plan = d
        .cli(&["prune", "MattBookPro", "--dry-run", "--json"])
        .json();
    let entry = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == good["name"])
        .unwrap()
        .clone();
    assert!(
        entry["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "keep: newest verified good"),
        "{entry}"
    );
    run(&["true"]).unwrap();
}
