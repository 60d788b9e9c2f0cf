//! The durable event stream, end to end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use backstop_e2e::{Daemon, TestPool, bin, wait_for};

#[test]
fn a_follower_sees_each_snapshot_as_it_is_taken() {
    let pool = TestPool::new();
    let ds = pool.dataset("iMac");
    let d = Daemon::start(&[("iMac", &ds)], "");
    let mut follower = Command::new(bin("backstop"))
        .args(["--server", &d.addr, "events", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The backlog (server start) arrives first.
    let first: serde_json::Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(first["type"], "event");
    assert_eq!(first["kind"], "server_started");

    for _ in 0..2 {
        let made = d.cli(&["snapshot", "iMac", "--json"]).json();
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("event line");
        let ev: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ev["kind"], "snapshot_created");
        assert_eq!(ev["share"], "iMac");
        assert_eq!(ev["snapshot"]["name"], made["snapshot"]["name"]);
        assert!(ev["summary"].as_str().unwrap().contains("iMac: snapshot"));
    }
    follower.kill().unwrap();
    let _ = follower.wait();
}

#[test]
fn cursors_are_durable_and_since_resumes_after_a_restart() {
    let pool = TestPool::new();
    let ds = pool.dataset("iMac");
    let mut d = Daemon::start(&[("iMac", &ds)], "");
    d.cli(&["snapshot", "iMac", "--suffix", "one", "--json"])
        .json();
    let seen = d.cli(&["events", "--json"]).json();
    let last = seen["latest_cursor"].as_u64().unwrap();
    assert_eq!(last, 2, "{seen}");

    // While this client is away: the daemon restarts and a snapshot is taken.
    d.restart();
    d.cli(&["snapshot", "iMac", "--suffix", "two", "--json"])
        .json();

    let since = d
        .cli(&["events", "--since", &last.to_string(), "--json"])
        .json();
    let kinds: Vec<(&str, u64)> = since["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["cursor"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("server_started", 3), ("snapshot_created", 4)]);
    assert_eq!(since["missed"], serde_json::Value::Null);

    let text = d.cli(&["events"]);
    assert_eq!(text.code, 0);
    assert_eq!(text.stdout.lines().count(), 4, "{}", text.stdout);
    assert!(text.stdout.contains("iMac: snapshot"));
}

#[test]
fn a_client_behind_the_bounded_log_is_told() {
    let pool = TestPool::new();
    let ds = pool.dataset("iMac");
    let mut d = Daemon::start(&[("iMac", &ds)], "[events]\nkeep = 100\n");
    // Each restart records one event: 120 of them drop the oldest 20.
    for _ in 0..4 {
        d.restart();
    }
    // Cheaper than 120 restarts: take snapshots until the log has wrapped.
    let mut n = 0;
    wait_for("the log to wrap", Duration::from_secs(120), || {
        d.cli(&["snapshot", "iMac", "--suffix", &format!("s{n}"), "--json"])
            .json();
        n += 1;
        let info = d.cli(&["server-info", "--json"]).json();
        (info["oldest_event_cursor"].as_u64().unwrap() > 3).then_some(())
    })
    .unwrap();
    let j = d.cli(&["events", "--since", "2", "--json"]).json();
    assert_eq!(j["missed"]["type"], "missed");
    assert_eq!(j["missed"]["after_cursor"], 2);
    assert!(j["missed"]["oldest_kept_cursor"].as_u64().unwrap() > 3);
    assert_eq!(j["events"].as_array().unwrap().len(), 100);
    let text = d.cli(&["events", "--since", "2"]);
    assert!(text.stdout.starts_with("(events 3.."), "{}", text.stdout);
}
