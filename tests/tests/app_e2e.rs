//! The menu-bar app end to end: the built `backstop-app` (Tauri 2, WebKitGTK) under Xvfb, driven
//! through WebDriver (tauri-driver + Debian's WebKitWebDriver), against a real backstopd on a
//! zfs-fuse pool, with a fake `org.freedesktop.Notifications` on a private D-Bus session bus.
//!
//! - "Snapshot Now" makes a snapshot that `zfs list` shows and the dashboard's table shows.
//! - The restore wizard (pick → plan → confirm → progress → result) puts the share back to an
//!   older snapshot (the dataset's content changes), and Undo puts it back again.
//! - Silent corruption found by a scrub started from the menu's "Scrub Pool Now" is a pushed
//!   pool-error event: a desktop notification arrives, and the tray state (the app's own state,
//!   read through its `act` command) turns to attention.
//! - Screenshots of the menu page, the dashboard and the wizard go to docs/screenshots/.
//!
//! Missing Xvfb, WebKitWebDriver, tauri-driver, dbus-daemon or ImageMagick's `import` is a loud
//! failure, never a skip (scripts/setup installs them; tauri-driver is `cargo install`ed).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop_e2e::{Daemon, TestPool, bin, repo_root, run, wait_for};
use serde_json::{Value, json};

fn tool(name: &str, extra: &[&str]) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(extra.iter().map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing and the app's end-to-end test needs it: run scripts/setup as \
                 root (xvfb, webkit2gtk-driver, imagemagick, dbus) and scripts/ui-setup \
                 (tauri-driver)"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child in its own process group, which is killed whole on drop (tauri-driver leaves its
/// WebKitWebDriver, and that the app, behind when only it is killed).
struct Group(Child);
impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Xvfb on a free display.
fn xvfb() -> (Proc, String) {
    let mut child = Command::new(tool("Xvfb", &[]))
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("Xvfb prints its display");
    assert!(!line.trim().is_empty(), "Xvfb did not start");
    (Proc(child), format!(":{}", line.trim()))
}

/// A private session bus (nothing activatable on it).
fn private_bus(dir: &Path) -> (Proc, String) {
    let config = dir.join("session.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>"#,
            dir.join("bus").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(tool("dbus-daemon", &[]))
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dbus-daemon");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), line.trim().to_string())
}

#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String)>>);

struct FakeNotifications(Arc<Inbox>);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl FakeNotifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::wire::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut v = self.0.0.lock().unwrap();
        v.push((summary, body));
        v.len() as u32
    }
    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }
    fn get_server_information(&self) -> (String, String, String, String) {
        ("fake".into(), "backstop".into(), "0".into(), "1.2".into())
    }
    fn close_notification(&self, _id: u32) {}
}

// ---- A minimal WebDriver client (HTTP/1.1 over a TcpStream; W3C protocol) -------------------

struct WebDriver {
    port: u16,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a4ae-4e4f-ab53-8b3f8e6c0a1d";

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    // One write: the request whole.
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut r = rest;
        while let Some((len, after)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            r = &after[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))
}

impl WebDriver {
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        // tauri-driver's proxy now and then drops a request on a stale pooled connection to
        // WebKitWebDriver and answers nothing (the request never reached it): sent again.
        let mut tries = 0;
        let v = loop {
            match http(
                self.port,
                method,
                &path,
                (method == "POST").then_some(&body),
            ) {
                Ok(v) => break v,
                Err(e) if e == "no HTTP header" && tries < 3 => tries += 1,
                Err(e) => panic!("WebDriver {method} {path}: {e}"),
            }
        };
        if let Some(err) = v["value"].get("error") {
            panic!(
                "WebDriver {method} {path}: {err}: {}",
                v["value"]["message"]
            );
        }
        v["value"].clone()
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// As [`WebDriver::act`], None while the page cannot answer yet (it is still loading).
    fn try_act(&self, action: &Value) -> Option<Value> {
        let script = format!(
            "const done = arguments[arguments.length - 1];\
             window.__TAURI_INTERNALS__.invoke('act', {{action: {action}}})\
               .then(r => done({{ok: r}}), e => done({{err: String(e)}}));"
        );
        let path = format!("/session/{}/execute/async", self.session);
        let v = http(
            self.port,
            "POST",
            &path,
            Some(&json!({"script": script, "args": []})),
        )
        .ok()?;
        v["value"].get("ok").cloned()
    }

    /// Calls the app's one command and returns its reply.
    fn act(&self, action: Value) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];\
             window.__TAURI_INTERNALS__.invoke('act', {{action: {action}}})\
               .then(r => done({{ok: r}}), e => done({{err: String(e)}}));"
        );
        let v = self.cmd(
            "POST",
            "/execute/async",
            json!({"script": script, "args": []}),
        );
        assert!(v.get("err").is_none(), "act {action}: {v}");
        v["ok"].clone()
    }

    fn find(&self, css: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let v = http(
            self.port,
            "POST",
            &path,
            Some(&json!({"using": "css selector", "value": css})),
        )
        .ok()?;
        // The W3C web element reference: one key (ELEMENT) whose value is the id.
        let obj = v["value"]
            .as_object()
            .filter(|o| !o.contains_key("error"))?;
        obj.get(ELEMENT)
            .or_else(|| obj.values().next())?
            .as_str()
            .map(str::to_string)
    }

    fn wait(&self, css: &str, timeout: Duration) -> String {
        wait_for(&format!("element {css}"), timeout, || self.find(css)).unwrap_or_else(|e| {
            panic!(
                "{e}; the window shows:\n{}",
                self.js("return document.body.innerText")
            )
        })
    }

    fn click(&self, css: &str) {
        let e = self.wait(css, Duration::from_secs(30));
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn text(&self, css: &str) -> String {
        let e = self.wait(css, Duration::from_secs(30));
        self.cmd("GET", &format!("/element/{e}/text"), json!({}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn tray(&self) -> String {
        self.act(json!({"kind": "get_state"}))["state"]["tray"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Waits until the page has painted what the DOM holds (two animation frames), then captures
/// the whole X screen.
fn screenshot_of(wd: &WebDriver, display: &str, name: &str) {
    wd.cmd(
        "POST",
        "/execute/async",
        json!({"script": "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));", "args": []}),
    );
    screenshot(display, name);
}

fn screenshot(display: &str, name: &str) {
    let path = repo_root().join("docs/screenshots").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let out = Command::new(tool("import", &[]))
        .args(["-display", display, "-window", "root"])
        .arg(&path)
        .output()
        .expect("run import");
    assert!(out.status.success(), "screenshot {name}: {out:?}");
}

fn band(root: &Path) -> String {
    std::fs::read_to_string(root.join("band")).unwrap_or_else(|e| format!("<{e}>"))
}

#[test]
fn the_app_snapshots_restores_and_raises_attention_on_a_pool_error() {
    let webkit = tool("WebKitWebDriver", &[]);
    let home = std::env::var("HOME").unwrap_or_default();
    let driver = tool("tauri-driver", &[&format!("{home}/.cargo/bin")]);
    let app = bin("backstop-app");

    // A raidz1 pool (so a damaged vdev is found and repaired by a scrub) with a share.
    let pool = TestPool::with_layout("raidz1", 3, "128M");
    let ds = pool.dataset("Matt");
    let root = pool.mountpoint().join("Matt");
    let daemon = Daemon::start(
        &[("Matt", &ds)],
        "[zfs]\nadmin_lock = \"/run/backstop-zfs-admin.lock\"\n[scrub]\npoll_seconds = 1\ninterval_days = 0\n",
    );
    std::fs::write(root.join("band"), "v1").unwrap();
    let one = daemon
        .cli(&["snapshot", "Matt", "--suffix", "one", "--json"])
        .json()["snapshot"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(root.join("band"), "v2").unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let (_bus, bus_addr) = private_bus(tmp.path());
    let inbox = Arc::new(Inbox::default());
    let _notifications = zbus::block_on(
        zbus::connection::Builder::address(bus_addr.as_str())
            .name("org.freedesktop.Notifications")
            .serve_at(
                "/org/freedesktop/Notifications",
                FakeNotifications(inbox.clone()),
            )
            .build(),
    )
    .expect("the fake notification server owns its name on the private bus");
    let (_x, display) = xvfb();

    let port = free_port();
    let config = tmp.path().join("config");
    let _driver = Group(
        Command::new(&driver)
            .process_group(0)
            .args(["--port", &port.to_string()])
            .args(["--native-port", &free_port().to_string()])
            .args(["--native-driver", webkit.to_str().unwrap()])
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus_addr)
            .env("BACKSTOP_SERVER", &daemon.addr)
            .env("BACKSTOP_APP_SHOW", "1")
            .env("BACKSTOP_CONFIG_DIR", &config)
            .env("XDG_CONFIG_HOME", &config)
            .env("TZ", "UTC")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tauri-driver"),
    );
    wait_for("tauri-driver to listen", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .unwrap();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "wry",
        "tauri:options": {"application": app.display().to_string()}
    }}});
    // tauri-driver listens before its WebKitWebDriver does: retry until a session is made.
    let mut last = String::new();
    let session = wait_for(
        "a WebDriver session",
        Duration::from_secs(60),
        || match http(port, "POST", "/session", Some(&caps)) {
            Ok(v) => match v["value"]["sessionId"].as_str() {
                Some(s) => Some(s.to_string()),
                None => {
                    last = v.to_string();
                    None
                }
            },
            Err(e) => {
                last = e;
                None
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {last}"));
    let wd = WebDriver { port, session };

    // Connected and healthy.
    wait_for(
        "the app to follow the server",
        Duration::from_secs(30),
        || (wd.try_act(&json!({"kind": "get_state"}))?["state"]["connected"] == true).then_some(()),
    )
    .unwrap();
    assert_eq!(wd.tray(), "ok");
    wd.wait(
        &format!("[data-testid=snapshots] tr[data-name='{one}']"),
        Duration::from_secs(30),
    );

    // Snapshot Now: zfs has it, and so does the table.
    wd.click("[data-testid=snapshot-now]");
    let made = wait_for(
        "a new snapshot in zfs list",
        Duration::from_secs(30),
        || pool.snapshots(&ds).into_iter().find(|s| *s != one),
    )
    .unwrap();
    wd.wait(
        &format!("[data-testid=snapshots] tr[data-name='{made}']"),
        Duration::from_secs(30),
    );
    assert!(wd.text("[data-testid=message]").contains(&made));
    wd.click("[data-testid=message] button");
    screenshot_of(&wd, &display, "dashboard.png");

    // The tray menu as the tray builds it.
    wd.click("[data-testid=nav-menu]");
    let menu = wd.text("[data-testid=tray-menu]");
    for item in [
        "Snapshot Now",
        "Restore",
        "Scrub Pool Now",
        "Open Dashboard…",
        "Preferences…",
        "Quit Backstop",
        &made,
    ] {
        assert!(menu.contains(item), "{item} in the menu: {menu}");
    }
    screenshot_of(&wd, &display, "menu.png");

    // The wizard: pick `one` (the default is the newest), plan, confirm, result, undo.
    wd.click("[data-testid=nav-restore]");
    wd.wait("input[name=target]:checked", Duration::from_secs(30));
    let checked = wd.js("return document.querySelector('input[name=target]:checked')?.value");
    assert_eq!(
        checked,
        json!(made),
        "the newest snapshot is proposed (none is verified good)"
    );
    wd.click(&format!("input[name=target][value='{one}']"));
    wd.click("[data-testid=wizard-plan]");
    let plan = wd.text("[data-testid=wizard-plan-view]");
    assert!(
        plan.contains(&one) && plan.contains("Kept afterwards"),
        "{plan}"
    );
    screenshot_of(&wd, &display, "wizard-plan.png");
    wd.click("[data-testid=wizard-confirm]");
    let result = {
        wd.wait("[data-testid=wizard-result]", Duration::from_secs(120));
        wd.text("[data-testid=wizard-result]")
    };
    assert!(result.contains("Restored"), "{result}");
    assert_eq!(
        band(&root),
        "v1",
        "the share holds snapshot {one}'s content"
    );
    screenshot_of(&wd, &display, "wizard-result.png");
    wd.click("[data-testid=wizard-undo]");
    wait_for("the undo", Duration::from_secs(120), || {
        wd.text("[data-testid=wizard-result]")
            .contains("Undone")
            .then_some(())
    })
    .unwrap();
    assert_eq!(band(&root), "v2", "undo put the previous state back");

    // A pool error: damage a vdev behind ZFS's back; Scrub Pool Now (the menu's item) finds it.
    let data: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("data"), &data).unwrap();
    run(&["sync"]).unwrap();
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(pool.vdev(3))
            .unwrap();
        f.seek(SeekFrom::Start(8 << 20)).unwrap();
        let junk: Vec<u8> = (0..(40u32 << 20))
            .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
            .collect();
        f.write_all(&junk).unwrap();
        f.sync_all().unwrap();
    }
    assert_eq!(wd.tray(), "ok");
    wd.click("[data-testid=nav-menu]");
    wd.click("[data-testid=menu-scrub_now]");
    let shown = wait_for(
        "a disk-problem notification",
        Duration::from_secs(90),
        || {
            inbox
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|(t, _)| t.starts_with("Disk problem on"))
                .cloned()
        },
    )
    .unwrap();
    assert!(shown.1.contains("checksum error"), "{shown:?}");
    wait_for(
        "the tray state to turn to attention",
        Duration::from_secs(10),
        || (wd.tray() == "attention").then_some(()),
    )
    .unwrap();
    wd.click("[data-testid=nav-dashboard]");
    wd.wait(
        "[data-testid=tray-state][data-state=attention]",
        Duration::from_secs(10),
    );
    screenshot_of(&wd, &display, "attention.png");
    let _ = http(port, "DELETE", &format!("/session/{}", wd.session), None);
}
