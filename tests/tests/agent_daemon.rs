//! `backstop init` and `backstop agent` end to end: a real backstopd on a zfs-fuse pool, the
//! real `backstop` binary replaying recorded backupd logs, and its desktop notifications arriving
//! at a recording `org.freedesktop.Notifications` server on a private D-Bus session bus (a real
//! `dbus-daemon`, as in notifications.rs; the agent finds it through DBUS_SESSION_BUS_ADDRESS,
//! set only in the agent's environment).
//!
//! No sleeps: every step waits for a condition (a snapshot in zfs, a report line from the agent,
//! a notification received) with a timeout.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use backstop_e2e::{Daemon, TestPool, bin, repo_root, wait_for};
use serde_json::Value;
use zbus::wire::OwnedVariant;

const DEST: &str = "D46413A8-7046-460C-AF3D-01B7203D6ACB";
/// Old backups (2022) must not be pruned by the default retention while the test looks.
const KEEP_ALL: &str = "[retention]\nhourly_hours = 1000000\n";
const WAIT: Duration = Duration::from_secs(60);

fn fixture(path: &str) -> PathBuf {
    repo_root().join("agent-mac/core/tests/fixtures").join(path)
}

fn agent_toml(dir: &Path, server: &str, share: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "state_dir = \"{}\"\n\n[destinations.\"{DEST}\"]\nserver = \"{server}\"\nshare = \"{share}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn init_writes_the_mapping_and_the_agent_snapshots_each_backup_once_and_notifies() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let d = Daemon::start(
        &[("MattBookPro", &ds), ("iMac", &pool.dataset("imac"))],
        KEEP_ALL,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("conf/agent.toml");
    let destinations = fixture("plist/tmutil-destinationinfo-network.plist");
    let init = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "init",
            "--config",
            config.to_str().unwrap(),
            "--destinations-from",
            destinations.to_str().unwrap(),
        ];
        args.extend(extra);
        d.cli(&args)
    };

    // Without a terminal, init asks for --yes rather than writing.
    let out = init(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("pass --yes"), "{out:?}");
    assert!(!config.exists());

    let proposal = init(&["--yes"]).json();
    assert_eq!(proposal["written"], true, "{proposal}");
    assert_eq!(proposal["destinations"][0]["id"], DEST);
    assert_eq!(proposal["destinations"][0]["share"], "MattBookPro");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("[destinations.\"{DEST}\"]")),
        "{text}"
    );
    assert!(text.contains(&format!("server = \"{}\"", d.addr)), "{text}");
    assert!(text.contains("share = \"MattBookPro\""), "{text}");
    // An existing file is kept unless --force.
    let again = init(&["--yes"]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("--force"), "{again:?}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    assert_eq!(init(&["--yes", "--force"]).code, 0);

    let bus = PrivateBus::start();
    let inbox = bus.serve_notifications();
    let state = dir.path().join("state");
    let log = fixture("unified-log/synthetic-monterey-two-backups.ndjson");
    let mut agent = Agent::start(&bus, &config, &state, &log, &[]);
    agent.report("two snapshots sent", |r| {
        r["report"] == "sent" && r["backup_id"] == format!("{DEST}/2022-05-21-202409")
    });
    let snaps = wait_for("two snapshots", WAIT, || {
        Some(pool.snapshots(&ds)).filter(|s| s.len() >= 2)
    })
    .unwrap();
    assert_eq!(snaps, ["20220522_0228", "20220522_0324"]);
    let got = inbox.wait_for(2);
    for (n, snap) in got.iter().zip(&snaps) {
        assert_eq!(n.app_name, "Backstop");
        assert_eq!(n.summary, "Backup snapshot taken");
        assert_eq!(
            n.body,
            format!("MattBookPro's Time Machine backup is now also kept in snapshot {snap}.")
        );
        assert_eq!(n.urgency, Some(0));
    }
    let full = format!("{ds}@20220522_0324");
    assert_eq!(pool.prop(&full, "org.backstop:origin").0, "backup");
    assert_eq!(
        pool.prop(&full, "org.backstop:backup-id").0,
        format!("{DEST}/2022-05-21-202409")
    );
    let reports = agent.stop();
    assert!(
        reports.iter().any(|r| r["report"] == "connected"),
        "{reports:#?}"
    );
    // The event cursor is kept: the next run resumes after the last event it saw.
    let events = d.cli(&["events", "--json"]).json();
    let last_snapshot = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "snapshot_created")
        .filter_map(|e| e["cursor"].as_u64())
        .max()
        .unwrap();
    let kept: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("agent-state.json")).unwrap())
            .unwrap();
    let cursor = kept["event_cursors"][d.addr.as_str()].as_u64();
    assert!(
        cursor.is_some_and(|c| c >= last_snapshot),
        "{kept} {events}"
    );

    // The agent runs again over the same log: the server already has both, nothing new.
    let mut agent = Agent::start(&bus, &config, &state, &log, &[]);
    agent.report("the second backup sent again", |r| {
        r["report"] == "sent" && r["backup_id"] == format!("{DEST}/2022-05-21-202409")
    });
    let reports = agent.stop();
    let sent: Vec<&Value> = reports.iter().filter(|r| r["report"] == "sent").collect();
    assert_eq!(sent.len(), 2, "{reports:#?}");
    assert!(sent.iter().all(|r| r["created"] == false), "{reports:#?}");
    assert_eq!(pool.snapshots(&ds).len(), 2);
    let events = d.cli(&["events", "--json"]).json();
    let created = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "snapshot_created")
        .count();
    assert_eq!(created, 2, "{events}");
    assert_eq!(inbox.received().len(), 2);
    // The other share saw nothing.
    assert!(pool.snapshots(&format!("{}/imac", pool.name)).is_empty());
}

#[test]
fn a_failed_backup_is_notified_in_plain_words_and_never_snapshotted() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let d = Daemon::start(&[("MattBookPro", &ds)], KEEP_ALL);
    let dir = tempfile::tempdir().unwrap();
    let config = agent_toml(dir.path(), &d.addr, "MattBookPro");
    let bus = PrivateBus::start();
    let inbox = bus.serve_notifications();
    let log = fixture("unified-log/tahoe-smb-failed-network.ndjson");
    let mut agent = Agent::start(&bus, &config, &dir.path().join("state"), &log, &[]);
    agent.report("the failure reported", |r| {
        r["report"] == "reported" && r["outcome"] == "failed"
    });
    let got = inbox.wait_for(1);
    assert_eq!(got[0].summary, "Time Machine backup failed");
    assert_eq!(
        got[0].body,
        "MattBookPro's Time Machine backup did not finish: the network connection to the backup server was lost."
    );
    assert_eq!(got[0].urgency, Some(1));
    agent.report("the notification", |r| r["report"] == "notified");
    let reports = agent.stop();
    assert!(
        !reports
            .iter()
            .any(|r| r["report"] == "queued" || r["report"] == "sent"),
        "{reports:#?}"
    );
    assert!(pool.snapshots(&ds).is_empty());
    assert_eq!(inbox.received().len(), 1);
}

#[test]
fn a_backup_while_the_server_is_down_lands_once_when_it_is_back() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let mut d = Daemon::start(&[("MattBookPro", &ds)], KEEP_ALL);
    // Come back on the same address: the agent's config names it.
    let text = std::fs::read_to_string(&d.config).unwrap();
    let fixed = text.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{}\"", d.addr),
    );
    assert_ne!(fixed, text);
    std::fs::write(&d.config, fixed).unwrap();
    d.stop();

    let dir = tempfile::tempdir().unwrap();
    let config = agent_toml(dir.path(), &d.addr, "MattBookPro");
    let state = dir.path().join("state");
    let bus = PrivateBus::start();
    let inbox = bus.serve_notifications();
    let log = fixture("unified-log/tahoe-smb-success.ndjson");
    let mut agent = Agent::start(&bus, &config, &state, &log, &[]);
    agent.report("the request kept in the queue", |r| {
        r["report"] == "retrying" && r["queued"] == 1
    });
    let queue = state
        .join("destinations")
        .join(DEST)
        .join("snapshot-queue.json");
    let q: Value = serde_json::from_str(&std::fs::read_to_string(&queue).unwrap()).unwrap();
    assert_eq!(q[0]["backup_id"], format!("{DEST}/2026-06-14-145122"));
    assert!(pool.snapshots(&ds).is_empty());

    d.restart();
    let r = agent.report("the snapshot sent", |r| r["report"] == "sent");
    assert_eq!(r["created"], true, "{r}");
    assert_eq!(r["backup_id"], format!("{DEST}/2026-06-14-145122"));
    assert_eq!(pool.snapshots(&ds), ["20260614_0451"]);
    let got = inbox.wait_for(1);
    assert_eq!(got[0].summary, "Backup snapshot taken");
    assert_eq!(
        got[0].body,
        "MattBookPro's Time Machine backup is now also kept in snapshot 20260614_0451."
    );
    let reports = agent.stop();
    assert_eq!(
        reports.iter().filter(|r| r["report"] == "sent").count(),
        1,
        "{reports:#?}"
    );
    let q: Value = serde_json::from_str(&std::fs::read_to_string(&queue).unwrap()).unwrap();
    assert_eq!(q, serde_json::json!([]));
    assert_eq!(pool.snapshots(&ds), ["20260614_0451"]);
    assert_eq!(inbox.received().len(), 1);
}

#[test]
fn tmutil_confirms_a_logged_success_and_without_latestbackup_the_servers_snapshot_does() {
    let pool = TestPool::new();
    let ds = pool.dataset("mbp");
    let imac = pool.dataset("imac");
    let d = Daemon::start(&[("MattBookPro", &ds), ("iMac", &imac)], KEEP_ALL);
    let dir = tempfile::tempdir().unwrap();
    let bus = PrivateBus::start();
    let _inbox = bus.serve_notifications();
    let recording = |name: &str, latest: &[(&str, &str)]| {
        let rec = dir.path().join(name);
        std::fs::create_dir_all(&rec).unwrap();
        std::fs::copy(
            fixture("plist/tmutil-status-idle.plist"),
            rec.join("status-1.plist"),
        )
        .unwrap();
        std::fs::copy(
            fixture("plist/tmutil-destinationinfo-network.plist"),
            rec.join("destinationinfo.plist"),
        )
        .unwrap();
        for (file, text) in latest {
            std::fs::write(rec.join(file), text).unwrap();
        }
        rec
    };

    // The recorded tmutil: copying, then idle with latestbackup moved on to the logged backup.
    let tm = fixture("tmutil-replay/tahoe-success");
    let one = dir.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    let config = agent_toml(&one, &d.addr, "MattBookPro");
    let log = fixture("unified-log/tahoe-smb-success.ndjson");
    let tm_arg = tm.to_str().unwrap();
    let extra = ["--tmutil-from", tm_arg, "--confirm-seconds", "1"];
    let mut agent = Agent::start(&bus, &config, &one.join("state"), &log, &extra);
    let ended = agent.report("the confirmed success", |r| r["report"] == "ended");
    assert_eq!(ended["confirmed_by"], "tmutil", "{ended}");
    assert_eq!(ended["outcome"]["backup"], "2026-06-14-145122");
    assert_eq!(ended["destination"], DEST);
    let sent = agent.report("the snapshot sent", |r| r["report"] == "sent");
    assert_eq!(sent["created"], true, "{sent}");
    agent.stop();
    assert_eq!(pool.snapshots(&ds), ["20260614_0451"]);

    // latestbackup fails (no Full Disk Access): the success waits for the server, which
    // snapshots the backup from Time Machine's own record (here: as it would, by backup id).
    let fda = recording(
        "fda",
        &[(
            "latestbackup-1.err",
            "tmutil: latestbackup requires Full Disk Access privileges.\n",
        )],
    );
    let two = dir.path().join("two");
    std::fs::create_dir_all(&two).unwrap();
    // Another Mac's share: the first one's snapshot (in the event backlog) is not about it.
    let config = agent_toml(&two, &d.addr, "iMac");
    let log = fixture("unified-log/synthetic-sequoia-success.ndjson");
    let fda_arg = fda.to_str().unwrap();
    let extra = ["--tmutil-from", fda_arg, "--confirm-seconds", "1"];
    let mut agent = Agent::start(&bus, &config, &two.join("state"), &log, &extra);
    agent.report("the success, waiting", |r| r["report"] == "awaiting");
    agent.report("the latestbackup warning", |r| {
        r["report"] == "warning"
            && r["message"]
                .as_str()
                .is_some_and(|m| m.contains("Full Disk Access"))
    });
    agent.report("the event stream", |r| r["report"] == "connected");
    let server_snap = d
        .cli(&[
            "snapshot",
            "iMac",
            "--origin",
            "backup",
            "--backup-id",
            "tm/2024-10-01-080642",
            "--backup-time",
            "2024-10-01T02:36:42Z",
            "--json",
        ])
        .json();
    assert_eq!(server_snap["created"], true);
    let ended = agent.report("the success confirmed by the server", |r| {
        r["report"] == "ended"
    });
    assert_eq!(ended["confirmed_by"], "server", "{ended}");
    assert_eq!(ended["outcome"]["backup"], "2024-10-01-080642");
    let sent = agent.report("the agent's request", |r| r["report"] == "sent");
    assert_eq!(sent["created"], false, "{sent}");
    assert_eq!(sent["backup_id"], format!("{DEST}/2024-10-01-080642"));
    agent.stop();
    assert_eq!(pool.snapshots(&imac), ["20241001_0236"]);
    assert_eq!(pool.snapshots(&ds), ["20260614_0451"]);
}

// ---- The agent process ----------------------------------------------------------------------

/// `backstop --json agent --replay LOG`, its JSON report lines collected as they come.
struct Agent {
    child: Option<Child>,
    reports: Arc<(Mutex<Vec<Value>>, Condvar)>,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    fn start(bus: &PrivateBus, config: &Path, state: &Path, log: &Path, extra: &[&str]) -> Agent {
        let mut child = Command::new(bin("backstop"))
            .args(["--json", "agent", "--retry-max-seconds", "1", "--config"])
            .arg(config)
            .arg("--replay")
            .arg(log)
            .args(extra)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("BACKSTOP_STATE_DIR", state)
            .env("TZ", "UTC")
            .env_remove("BACKSTOP_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run backstop agent");
        let reports: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let r = reports.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|e| Value::String(format!("not JSON ({e}): {line}")));
                r.0.lock().unwrap().push(v);
                r.1.notify_all();
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            e.lock().unwrap().push_str(&text);
        });
        let mut agent = Agent {
            child: Some(child),
            reports,
            stderr,
        };
        agent.report("the agent to start", |r| r["report"] == "started");
        agent
    }

    /// Waits for a report `want` accepts (also among those already printed); returns it.
    fn report(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let (lock, arrived) = &*self.reports;
        let seen = lock.lock().unwrap();
        let (seen, waited) = arrived
            .wait_timeout_while(seen, WAIT, |s| !s.iter().any(&want))
            .unwrap();
        if waited.timed_out() {
            panic!(
                "no report of {what} within {WAIT:?}: {seen:#?}\nstderr: {}",
                self.stderr.lock().unwrap()
            );
        }
        seen.iter().find(|r| want(r)).unwrap().clone()
    }

    /// SIGTERM, then waits: the agent stops cleanly (exit 0, a last "stopped" report).
    fn stop(mut self) -> Vec<Value> {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = wait_for("the agent to stop", Duration::from_secs(20), || {
            child.try_wait().unwrap()
        })
        .unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("{e}");
        });
        assert!(
            status.success(),
            "agent exit {status}: {}",
            self.stderr.lock().unwrap()
        );
        let seen = wait_for("the agent's last report", Duration::from_secs(10), || {
            let seen = self.reports.0.lock().unwrap();
            (seen.last().is_some_and(|r| r["report"] == "stopped")).then(|| seen.clone())
        })
        .unwrap();
        assert!(
            !seen.iter().any(|r| r.is_string()),
            "every line is JSON: {seen:#?}"
        );
        seen
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- agent stderr ---\n{}", self.stderr.lock().unwrap());
            }
        }
    }
}

// ---- A private session bus with a recording notification server -----------------------------
// (The same pattern as notifications.rs; the agent is a separate process here, so the test
// needs no second run of itself.)

/// A `dbus-daemon` serving a session bus on a socket in a temporary directory; nothing on it can
/// be activated, so no real notification service starts.
struct PrivateBus {
    daemon: Child,
    address: String,
    server: Mutex<Option<zbus::Connection>>,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("session.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .expect("writing the bus configuration");
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian's `dbus`; scripts/setup installs it)");
        let stdout = daemon.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if !line.trim().is_empty() => PrivateBus {
                daemon,
                address: line.trim().to_string(),
                server: Mutex::new(None),
                _dir: dir,
            },
            got => {
                let _ = daemon.kill();
                let _ = daemon.wait();
                panic!("dbus-daemon did not print its address within 10 s ({got:?})");
            }
        }
    }

    /// Owns org.freedesktop.Notifications on the bus; what it receives goes to the inbox.
    fn serve_notifications(&self) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox::default());
        let connection = zbus::block_on(
            zbus::connection::Builder::address(self.address.as_str())
                .name("org.freedesktop.Notifications")
                .serve_at(
                    "/org/freedesktop/Notifications",
                    FakeServer {
                        inbox: inbox.clone(),
                        next_id: AtomicU32::new(1),
                    },
                )
                .build(),
        )
        .expect("the fake notification server connects to the private bus and owns its name");
        *self.server.lock().unwrap() = Some(connection);
        inbox
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        self.server.lock().unwrap().take();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// One `Notify` call, as the server received it.
#[derive(Debug, Clone)]
struct Received {
    app_name: String,
    summary: String,
    body: String,
    urgency: Option<u8>,
}

#[derive(Default)]
struct Inbox {
    calls: Mutex<Vec<Received>>,
    arrived: Condvar,
}

impl Inbox {
    /// Waits until `n` notifications arrived; returns all received.
    fn wait_for(&self, n: usize) -> Vec<Received> {
        let calls = self.calls.lock().unwrap();
        let (calls, waited) = self
            .arrived
            .wait_timeout_while(calls, WAIT, |c| c.len() < n)
            .unwrap();
        assert!(
            !waited.timed_out(),
            "the notification server received {} of {n} notifications: {:#?}",
            calls.len(),
            *calls
        );
        calls.clone()
    }

    fn received(&self) -> Vec<Received> {
        self.calls.lock().unwrap().clone()
    }
}

struct FakeServer {
    inbox: Arc<Inbox>,
    next_id: AtomicU32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl FakeServer {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        self.inbox.calls.lock().unwrap().push(Received {
            app_name,
            summary,
            body,
            urgency,
        });
        self.inbox.arrived.notify_all();
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "backstop-fake-notifications".into(),
            "backstop".into(),
            "0".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}
