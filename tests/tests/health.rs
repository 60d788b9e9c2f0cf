//! Pool health on real ZFS: silent corruption found by a scrub started through Backstop and
//! pushed to a subscribed client; a mirror that lost a disk.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use backstop_e2e::{Daemon, TestPool, bin, run};

const FAST_POLL: &str = "[scrub]\npoll_seconds = 1\ninterval_days = 0\n";

/// `backstop events --follow --json` in the background; its lines arrive on the receiver.
fn follow(d: &Daemon) -> (std::process::Child, Receiver<serde_json::Value>) {
    let mut child = Command::new(bin("backstop"))
        .args(["--server", &d.addr, "events", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str(&line) else {
                continue;
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The next event matching `pred`, within `timeout`.
fn next_event(
    rx: &Receiver<serde_json::Value>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return v,
            Ok(_) => continue,
            Err(_) => panic!("no event: {what} within {timeout:?}"),
        }
    }
}

fn health_events(d: &Daemon) -> Vec<serde_json::Value> {
    d.cli(&["events", "--json"]).json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "pool_health_changed")
        .cloned()
        .collect()
}

#[test]
fn a_scrub_finds_silent_corruption_and_every_client_hears_of_it_once() {
    let pool = TestPool::with_layout("raidz1", 3, "128M");
    let ds = pool.dataset("tm");
    let d = Daemon::start(&[("TM", &ds)], FAST_POLL);
    let (mut follower, rx) = follow(&d);

    // Data, then damage one vdev behind ZFS's back (past the front labels).
    let data: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(pool.mountpoint().join("tm/data"), &data).unwrap();
    run(&["sync"]).unwrap();
    let victim = pool.vdev(3);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&victim)
            .unwrap();
        f.seek(SeekFrom::Start(8 << 20)).unwrap();
        let junk: Vec<u8> = (0..(40u32 << 20))
            .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
            .collect();
        f.write_all(&junk).unwrap();
        f.sync_all().unwrap();
    }

    let out = d.cli(&["scrub", &pool.name]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("scrub of"), "{}", out.stdout);

    let victim_name = victim.display().to_string();
    let ev = next_event(
        &rx,
        Duration::from_secs(60),
        "checksum errors on the damaged vdev",
        |e| {
            e["kind"] == "pool_health_changed"
                && e["health"]["change"] == "errors_rose"
                && e["health"]["device"] == victim_name.as_str()
        },
    );
    assert!(ev["health"]["cksum"].as_u64().unwrap() > 0, "{ev}");
    assert_eq!(ev["severity"], "warning");
    assert!(
        ev["summary"].as_str().unwrap().contains("checksum error"),
        "{ev}"
    );
    let done = next_event(&rx, Duration::from_secs(60), "the scrub's end", |e| {
        e["kind"] == "pool_health_changed" && e["health"]["change"] == "scan_finished"
    });
    assert!(done["health"]["repaired"].as_u64().unwrap() > 0, "{done}");

    let health = d.cli(&["health", "--json"]).json();
    let p = &health["pools"][0];
    assert_eq!(p["name"], pool.name.as_str());
    assert_eq!(p["scan"]["kind"], "scrub");
    assert_eq!(p["scan"]["state"], "finished");
    assert!(p["scan"]["repaired"].as_u64().unwrap() > 0, "{p}");
    let dev = p["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == victim_name.as_str())
        .unwrap();
    assert!(dev["cksum"].as_u64().unwrap() > 0);
    assert!(
        p["verdict"]
            .as_str()
            .unwrap()
            .contains("checksum errors that ZFS repaired"),
        "{p}"
    );
    // The data is intact: raidz1 repaired it.
    assert_eq!(
        std::fs::read(pool.mountpoint().join("tm/data")).unwrap(),
        data
    );

    // More polls, and a restart: nothing new is reported.
    let before = health_events(&d).len();
    std::thread::sleep(Duration::from_millis(2500));
    let text = d.cli(&["health"]);
    assert!(
        text.stdout.contains("<--"),
        "errored device marked: {}",
        text.stdout
    );
    assert_eq!(health_events(&d).len(), before);
    follower.kill().unwrap();
    let _ = follower.wait();
}

#[test]
fn a_mirror_that_lost_a_disk_is_degraded_and_said_so() {
    let pool = TestPool::with_layout("mirror", 2, "128M");
    let ds = pool.dataset("tm");
    let mut d = Daemon::start(&[("TM", &ds)], FAST_POLL);
    // Healthy to begin with.
    let h = d.cli(&["health", "--json"]).json();
    assert_eq!(h["pools"][0]["state"], "ONLINE");
    assert!(
        h["pools"][0]["verdict"]
            .as_str()
            .unwrap()
            .contains("healthy"),
        "{h}"
    );

    d.stop();
    pool.reimport(|| std::fs::remove_file(pool.vdev(2)).unwrap());
    d.restart();
    let (mut follower, rx) = follow(&d);
    let ev = next_event(&rx, Duration::from_secs(30), "the degraded pool", |e| {
        e["kind"] == "pool_health_changed" && e["health"]["device"].is_null()
    });
    assert_eq!(ev["severity"], "critical");
    assert_eq!(ev["health"]["state"], "DEGRADED");
    assert!(ev["summary"].as_str().unwrap().contains("UNAVAIL"), "{ev}");

    let h = d.cli(&["health", "--json"]).json();
    let p = &h["pools"][0];
    assert_eq!(p["state"], "DEGRADED");
    assert!(
        p["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["state"] == "UNAVAIL" && x["note"].as_str().unwrap_or("").contains("was ")),
        "{p}"
    );
    assert!(p["verdict"].as_str().unwrap().contains("replace"), "{p}");
    follower.kill().unwrap();
    let _ = follower.wait();
}

#[test]
fn an_unknown_pool_is_refused() {
    let pool = TestPool::new();
    let ds = pool.dataset("tm");
    let d = Daemon::start(&[("TM", &ds)], FAST_POLL);
    let out = d.cli(&["scrub", "tank"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "backstop: pool 'tank' is not watched by this server (watched: {})",
            pool.name
        )
    );
}
