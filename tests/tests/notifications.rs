//! Desktop notifications, end to end: real `pb::Event`s through `notification_for` and the real
//! `DesktopNotifier` (notify-rust over zbus) to a fake `org.freedesktop.Notifications` server on
//! a private session bus run by a real `dbus-daemon`.
//!
//! The notifier finds the session bus through `DBUS_SESSION_BUS_ADDRESS`, which a test cannot set
//! safely in its own (multi-threaded) process. So each test starts a private bus and runs itself
//! again, as a child process with that variable pointing at the bus; the child does the work.
//! The private bus has its own configuration: nothing on it can be activated, so no real
//! notification service gets started, and nothing reaches the desktop of whoever runs the tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use backstop_agent_core::notify::{
    DesktopNotifier, Notification, Notifier, NotifyPrefs, Urgency, notification_for, notify,
};
use backstop_proto::v1 as pb;
use pb::event::Kind;
use zbus::wire::OwnedVariant;

/// Set (to the bus address) in the child that runs on the private bus.
const BUS_VAR: &str = "BACKSTOP_TEST_PRIVATE_SESSION_BUS";

#[test]
fn notifications_reach_the_notification_server_with_title_body_and_urgency() {
    match std::env::var(BUS_VAR) {
        Ok(address) => send_events_to_a_fake_server(&address),
        Err(_) => run_on_a_private_bus(
            "notifications_reach_the_notification_server_with_title_body_and_urgency",
        ),
    }
}

#[test]
fn without_a_notification_server_showing_fails_with_a_readable_error() {
    match std::env::var(BUS_VAR) {
        Ok(_) => show_with_no_server(),
        Err(_) => run_on_a_private_bus(
            "without_a_notification_server_showing_fails_with_a_readable_error",
        ),
    }
}

// ---- In the child, on the private bus -------------------------------------------------------

fn send_events_to_a_fake_server(address: &str) {
    let inbox = Arc::new(Inbox::default());
    let _server = zbus::block_on(
        zbus::connection::Builder::address(address)
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

    let desktop = DesktopNotifier::new();
    let everything = NotifyPrefs::default();
    let quiet = NotifyPrefs {
        min_severity: pb::Severity::Warning,
    };
    let degraded = event(
        pb::Severity::Critical,
        "",
        "tank: pool is DEGRADED (sdb is FAULTED)",
        Kind::PoolHealthChanged(pb::PoolHealthChanged {
            pool: "tank".into(),
            device: String::new(),
            change: "state_changed".into(),
            state: "DEGRADED".into(),
            read: 0,
            write: 0,
            cksum: 0,
            repaired: 0,
        }),
    );
    let snapshot = event(
        pb::Severity::Info,
        "iMac",
        "iMac: snapshot 20261125_1000 taken after a Time Machine backup",
        Kind::SnapshotCreated(pb::SnapshotCreated {
            snapshot: Some(pb::Snapshot {
                name: "20261125_1000".into(),
                share: "iMac".into(),
                full_name: "tank/tm/iMac@20261125_1000".into(),
                managed: true,
                origin: pb::SnapshotOrigin::Backup as i32,
                verification: pb::Verification::Good as i32,
                ..Default::default()
            }),
        }),
    );
    let failed = event(
        pb::Severity::Warning,
        "iMac",
        "iMac: Time Machine backup failed: The backup disk is full",
        Kind::BackupEnded(pb::BackupEnded {
            outcome: "failed".into(),
            code: Some(19),
            reason: "BACKUP_FAILED_DISK_FULL".into(),
            backup: "2026-11-25-100000".into(),
        }),
    );
    let started = event(
        pb::Severity::Info,
        "",
        "backstopd 0.1.0 started",
        Kind::ServerStarted(pb::ServerStarted {
            version: "0.1.0".into(),
        }),
    );

    // Not shown: a server start never notifies, and the quiet preferences mute good news. Had
    // either been sent, it would be the first call the server received.
    assert_eq!(notify(&desktop, &everything, &started).unwrap(), None);
    assert_eq!(notify(&desktop, &quiet, &snapshot).unwrap(), None);

    let mut sent = Vec::new();
    for e in [&degraded, &snapshot, &failed] {
        let n = notify(&desktop, &everything, e)
            .unwrap_or_else(|err| panic!("showing {:?}: {err}", e.summary))
            .unwrap_or_else(|| panic!("{:?} shows a notification", e.summary));
        assert_eq!(Some(&n), notification_for(e).as_ref());
        sent.push(n);
    }

    let got = inbox.wait_for(sent.len());
    assert_eq!(
        got.len(),
        sent.len(),
        "exactly what was sent arrived: {got:#?}"
    );
    for (n, r) in sent.iter().zip(&got) {
        assert_eq!(r.app_name, "Backstop");
        assert_eq!(r.replaces_id, 0);
        assert_eq!(r.summary, n.title);
        assert_eq!(r.body, n.body);
        assert!(r.actions.is_empty(), "{r:?}");
        assert_eq!(r.hint_keys, vec!["urgency".to_string()], "{r:?}");
        let (urgency, timeout) = match n.urgency {
            Urgency::Low => (0, 10_000),
            Urgency::Normal => (1, 10_000),
            // Critical notifications stay until dismissed.
            Urgency::Critical => (2, 0),
        };
        assert_eq!(r.urgency, Some(urgency), "{r:?}");
        assert_eq!(r.expire_timeout, timeout, "{r:?}");
    }

    // And in the words a person reads.
    assert_eq!(got[0].summary, "Disk problem on tank");
    assert!(
        got[0]
            .body
            .starts_with("Pool is DEGRADED (sdb is FAULTED)."),
        "{:?}",
        got[0].body
    );
    assert!(
        got[0].body.contains("replace the failed disk"),
        "{:?}",
        got[0].body
    );
    assert_eq!(got[0].urgency, Some(2));

    assert_eq!(got[1].summary, "Backup snapshot taken");
    assert_eq!(
        got[1].body,
        "iMac's Time Machine backup is now also kept in snapshot 20261125_1000."
    );
    assert_eq!(got[1].urgency, Some(0));

    assert_eq!(got[2].summary, "Time Machine backup failed");
    assert_eq!(
        got[2].body,
        "iMac's Time Machine backup did not finish: the backup disk is full."
    );
    assert_eq!(got[2].urgency, Some(1));
}

fn show_with_no_server() {
    let n = Notification {
        title: "Disk problem on tank".into(),
        body: "Pool is DEGRADED.".into(),
        urgency: Urgency::Critical,
    };
    let err = DesktopNotifier::new()
        .show(&n)
        .expect_err("nothing serves org.freedesktop.Notifications on the private bus");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot show a desktop notification"),
        "{text}"
    );
    assert!(text.contains("org.freedesktop.Notifications"), "{text}");
}

fn event(severity: pb::Severity, share: &str, summary: &str, kind: Kind) -> pb::Event {
    pb::Event {
        cursor: 1,
        at: None,
        severity: severity as i32,
        share: share.into(),
        summary: summary.into(),
        kind: Some(kind),
    }
}

/// One `Notify` call, as the server received it.
#[derive(Debug, Clone)]
struct Received {
    app_name: String,
    replaces_id: u32,
    #[allow(dead_code)] // shown in failure messages
    app_icon: String,
    summary: String,
    body: String,
    actions: Vec<String>,
    hint_keys: Vec<String>,
    urgency: Option<u8>,
    expire_timeout: i32,
}

#[derive(Default)]
struct Inbox {
    calls: Mutex<Vec<Received>>,
    arrived: Condvar,
}

impl Inbox {
    fn push(&self, r: Received) {
        self.calls.lock().unwrap().push(r);
        self.arrived.notify_all();
    }

    /// Waits until `n` notifications arrived (at most 10 s); returns all received.
    fn wait_for(&self, n: usize) -> Vec<Received> {
        let calls = self.calls.lock().unwrap();
        let (calls, waited) = self
            .arrived
            .wait_timeout_while(calls, Duration::from_secs(10), |c| c.len() < n)
            .unwrap();
        assert!(
            !waited.timed_out(),
            "the notification server received {} of {n} notifications in 10 s: {:#?}",
            calls.len(),
            *calls
        );
        calls.clone()
    }
}

/// A minimal `org.freedesktop.Notifications` server (Desktop Notifications Specification 1.2)
/// that records what it is asked to show.
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
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        let mut hint_keys: Vec<String> = hints.keys().cloned().collect();
        hint_keys.sort();
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        self.inbox.push(Received {
            app_name,
            replaces_id,
            app_icon,
            summary,
            body,
            actions,
            hint_keys,
            urgency,
            expire_timeout,
        });
        if replaces_id != 0 {
            replaces_id
        } else {
            self.next_id.fetch_add(1, Ordering::Relaxed)
        }
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

// ---- In the test process: the private bus and the child ------------------------------------

/// A `dbus-daemon` serving a session bus on a socket in a temporary directory.
struct PrivateBus {
    daemon: Child,
    address: String,
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
        let mut daemon = match Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "dbus-daemon is missing, and the notification tests need it: run scripts/setup \
                 as root (it installs Debian's `dbus` package)"
            ),
            Err(e) => panic!("cannot start dbus-daemon: {e}"),
        };

        // The daemon prints its address once it listens.
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
                _dir: dir,
            },
            got => {
                let _ = daemon.kill();
                let _ = daemon.wait();
                let mut stderr = String::new();
                if let Some(mut e) = daemon.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                panic!(
                    "dbus-daemon did not print its address within 10 s ({got:?}): {}",
                    stderr.trim()
                );
            }
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Runs the test named `test` of this binary again, in a child on a private bus, and fails with
/// the child's output when it fails (or runs no test).
fn run_on_a_private_bus(test: &str) {
    let bus = PrivateBus::start();
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(BUS_VAR, &bus.address)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the test binary again");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let output = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    match status {
        None => panic!("{test} on the private bus did not finish in 60 s\n{output}"),
        Some(s) if !s.success() => panic!("{test} on the private bus failed ({s})\n{output}"),
        Some(_) => assert!(
            stdout.contains("test result: ok. 1 passed"),
            "{test} did not run on the private bus\n{output}"
        ),
    }
}
