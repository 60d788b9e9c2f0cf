//! A real smbd for a test: its own smb.conf, state folders and passdb under the test's temp dir,
//! listening on a free high port on 127.0.0.1 only, serving Time Machine shares (`fruit`) whose
//! sections include a fragment the test chooses (so backstopd's Samba helpers can take one share
//! offline). Files are read and written with the real `smbclient`.
//!
//! smbd is started in a process group of its own: with `--no-process-group`, smbd answers SIGTERM
//! by signalling its whole process group, which would otherwise be the test process's (measured:
//! a shell that started smbd and sent it SIGTERM was killed with it).
//!
//! A missing Samba is a loud failure (run `scripts/setup` as root), never a skip.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{run, wait_for};

/// The Unix user the tests' smbd serves (created once, system account, no login, no home).
pub const USER: &str = "backstoptest";
/// Its Samba password (in each test's own passdb).
pub const PASSWORD: &str = "backstop-test-pw";

/// A share to serve.
#[derive(Clone, Debug)]
pub struct SambaShare {
    pub name: String,
    /// The folder served, e.g. a zfs-fuse dataset's mountpoint. On start it is given to [`USER`]
    /// (`chown`, that folder only) so clients can write into it.
    pub path: PathBuf,
    /// `include = PATH` in the share's section (the fragment backstopd writes); the file need not
    /// exist (smbd then serves the share, silently).
    pub include: Option<PathBuf>,
    /// More `key = value` lines for the section.
    pub extra: Vec<String>,
}

impl SambaShare {
    /// A Time Machine share (`catia fruit streams_xattr`, `fruit:time machine = yes`) of `path`,
    /// including `include`.
    pub fn time_machine(name: &str, path: &Path, include: &Path) -> SambaShare {
        SambaShare {
            name: name.to_string(),
            path: path.to_path_buf(),
            include: Some(include.to_path_buf()),
            extra: Vec::new(),
        }
    }

    fn section(&self) -> String {
        let mut s = format!(
            "[{}]\n  path = {}\n  read only = no\n  valid users = {USER}\n  \
             vfs objects = catia fruit streams_xattr\n  fruit:time machine = yes\n  \
             fruit:metadata = stream\n",
            self.name,
            self.path.display()
        );
        for line in &self.extra {
            s.push_str(&format!("  {line}\n"));
        }
        // Last, as an admin would add it: the fragment overrides what comes before.
        if let Some(inc) = &self.include {
            s.push_str(&format!("  include = {}\n", inc.display()));
        }
        s
    }
}

/// A running smbd, stopped (SIGTERM, wait) on drop.
pub struct Smbd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    log: PathBuf,
    /// How long the last start took, from spawn to accepting connections.
    pub started_in: Duration,
}

static SAMBA_CHECKED: Once = Once::new();

/// Panics with what to do when smbd, smbclient, smbcontrol, smbstatus or the fruit module is missing.
pub fn ensure_samba() {
    SAMBA_CHECKED.call_once(|| {
        for tool in ["smbd", "smbclient", "smbcontrol", "smbstatus", "smbpasswd"] {
            let found = Command::new("sh")
                .args(["-c", "command -v \"$1\" >/dev/null", "sh", tool])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                found,
                "{tool} is not on PATH: run `scripts/setup` as root (it installs samba smbclient samba-vfs-modules); these tests need a real Samba"
            );
        }
        let fruit = run(&["smbd", "-b"])
            .ok()
            .and_then(|out| {
                out.lines()
                    .find_map(|l| l.trim().strip_prefix("MODULESDIR:").map(|d| d.trim().to_string()))
            })
            .map(|d| Path::new(&d).join("vfs/fruit.so").exists());
        assert_ne!(
            fruit,
            Some(false),
            "Samba's fruit module is missing: run `scripts/setup` as root (apt-get install samba-vfs-modules)"
        );
    });
}

static USER_MADE: Once = Once::new();

/// Creates the Unix user [`USER`] if it does not exist. Safe for parallel tests and processes:
/// serialized by a file lock, and an "already exists" from useradd counts as success.
pub fn ensure_unix_user() {
    USER_MADE.call_once(|| {
        if user_exists() {
            return;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("backstop-samba-user.lock"))
            .expect("open the samba user lock file");
        lock.lock().expect("take the samba user lock");
        if user_exists() {
            return;
        }
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .stdin(Stdio::null())
            .status()
            .expect("run useradd (the Samba tests run as root)");
        // 9: the name is taken (made by someone else meanwhile).
        assert!(
            status.success() || status.code() == Some(9),
            "useradd {USER} failed ({status}); the Samba tests need root"
        );
        assert!(user_exists(), "user {USER} still missing after useradd");
    });
}

fn user_exists() -> bool {
    Command::new("getent")
        .args(["passwd", USER])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Smbd {
    /// Starts smbd serving `shares`, with user [`USER`]/[`PASSWORD`], and returns once it accepts
    /// connections. Panics (with smbd's log) when it cannot.
    pub fn start(shares: &[SambaShare]) -> Smbd {
        ensure_samba();
        ensure_unix_user();
        let dir = tempfile::Builder::new()
            .prefix("backstop-smbd-")
            .tempdir()
            .expect("temp dir");
        for d in [
            "private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "upload",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).expect("smbd folder");
        }
        for share in shares {
            run(&["chown", &format!("{USER}:"), path_str(&share.path)])
                .expect("give the share's folder to the test user");
        }
        let conf = dir.path().join("smb.conf");
        let log = dir.path().join("smbd.log");
        let mut smbd = Smbd {
            child: None,
            dir,
            conf,
            port: 0,
            log,
            started_in: Duration::ZERO,
        };
        // A port picked free can be taken by someone else before smbd binds it: retry on a new one.
        // (smbd aborts when its port is taken.)
        let mut last_error = String::new();
        for attempt in 0..5 {
            smbd.port = free_port();
            smbd.write_conf(shares);
            if attempt == 0 {
                // The passdb's path does not depend on the port: add the user once.
                smbd.add_user();
            }
            match smbd.spawn() {
                Ok(()) => return smbd,
                Err(e) => last_error = format!("{e:#}"),
            }
        }
        panic!(
            "smbd did not start: {last_error}\n--- smbd log ---\n{}",
            smbd.log_text()
        );
    }

    fn write_conf(&self, shares: &[SambaShare]) {
        let d = self.dir.path();
        let p = |name: &str| d.join(name).display().to_string();
        let mut text = format!(
            "# A test's own smbd (backstop-e2e); nothing here touches the system's Samba.\n\
             [global]\n  \
             server role = standalone server\n  \
             private dir = {private}\n  \
             passdb backend = tdbsam:{private}/passdb.tdb\n  \
             lock directory = {lock}\n  \
             state directory = {state}\n  \
             cache directory = {cache}\n  \
             pid directory = {pid}\n  \
             ncalrpc dir = {ncalrpc}\n  \
             binddns dir = {binddns}\n  \
             usershare path =\n  \
             interfaces = 127.0.0.1\n  \
             bind interfaces only = yes\n  \
             smb ports = {port}\n  \
             disable netbios = yes\n  \
             map to guest = never\n  \
             load printers = no\n  \
             printing = bsd\n  \
             printcap name = /dev/null\n  \
             disable spoolss = yes\n  \
             log level = 1\n\n",
            private = p("private"),
            lock = p("lock"),
            state = p("state"),
            cache = p("cache"),
            pid = p("pid"),
            ncalrpc = p("ncalrpc"),
            binddns = p("binddns"),
            port = self.port,
        );
        for share in shares {
            text.push_str(&share.section());
            text.push('\n');
        }
        std::fs::write(&self.conf, text).expect("write smb.conf");
    }

    fn add_user(&self) {
        let mut child = Command::new("smbpasswd")
            .args(["-c", path_str(&self.conf), "-s", "-a", USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run smbpasswd");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
            .expect("write the password to smbpasswd");
        let out = child.wait_with_output().expect("smbpasswd");
        assert!(
            out.status.success(),
            "smbpasswd -a {USER} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context("smbd log")?;
        let start = Instant::now();
        let mut child = Command::new("smbd")
            .args([
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                "-s",
                path_str(&self.conf),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: see the module's doc.
            .process_group(0)
            .spawn()
            .context("spawn smbd")?;
        let port = self.port;
        let ready = wait_for(
            "smbd to accept connections",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(Err(anyhow::anyhow!("smbd exited ({status})")));
                }
                TcpStream::connect(("127.0.0.1", port)).ok()?;
                // Still running: the listener is smbd's, not someone else's on a reused port.
                match child.try_wait() {
                    Ok(None) => Some(Ok(())),
                    _ => None,
                }
            },
        );
        match ready.and_then(|r| r) {
            Ok(()) => {
                self.started_in = start.elapsed();
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The prefix argv for backstopd's `smbcontrol` setting.
    pub fn smbcontrol(&self) -> Vec<String> {
        vec!["smbcontrol".to_string()]
    }

    /// The prefix argv for backstopd's `smbstatus` setting.
    pub fn smbstatus(&self) -> Vec<String> {
        vec!["smbstatus".to_string()]
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `smbclient //127.0.0.1/SHARE -p PORT -U USER%PASSWORD -c COMMAND` (argv, no shell).
    fn smbclient(&self, share: &str, command: &str) -> Result<Vec<u8>> {
        let out = Command::new("smbclient")
            .args(self.client_args(share))
            .args(["-c", command])
            .stdin(Stdio::null())
            .output()
            .context("run smbclient")?;
        if !out.status.success() {
            let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if msg.is_empty() {
                msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            bail!(
                "smbclient //127.0.0.1/{share} -c '{command}' failed ({}): {msg}",
                out.status
            );
        }
        Ok(out.stdout)
    }

    fn client_args(&self, share: &str) -> Vec<String> {
        vec![
            format!("//127.0.0.1/{share}"),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            format!("{USER}%{PASSWORD}"),
        ]
    }

    /// A file's bytes, read over SMB (`get FILE -`). An error says why smbclient failed
    /// (e.g. `tree connect failed: NT_STATUS_BAD_NETWORK_NAME` for an unavailable share).
    pub fn get(&self, share: &str, file: &str) -> Result<Vec<u8>> {
        check_smbclient_arg(file)?;
        self.smbclient(share, &format!("get \"{file}\" -"))
    }

    /// Writes `data` to FILE over SMB (`put LOCAL FILE`).
    pub fn put(&self, share: &str, file: &str, data: &[u8]) -> Result<()> {
        check_smbclient_arg(file)?;
        let local = tempfile::NamedTempFile::new_in(self.dir.path().join("upload"))?;
        std::fs::write(local.path(), data)?;
        self.smbclient(
            share,
            &format!("put \"{}\" \"{file}\"", local.path().display()),
        )?;
        Ok(())
    }

    /// An smbclient connected to SHARE and kept open (reading commands from a pipe), as a Mac
    /// backing up holds its session. Returns once the share is connected.
    pub fn hold(&self, share: &str) -> Result<HeldConnection> {
        let log = self.dir.path().join(format!(
            "hold-{share}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        let out = std::fs::File::create(&log)?;
        // smbclient's stdout is a file here, so stdio would hold its output until exit: stdbuf
        // makes it unbuffered (stdbuf then execs smbclient: same pid).
        let mut child = Command::new("stdbuf")
            .args(["-o0", "-e0", "smbclient"])
            .args(self.client_args(share))
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawn smbclient")?;
        let stdin = child.stdin.take();
        // Interactive smbclient prints its "Try help" hint once the tree connect succeeded.
        let connected = wait_for(
            "smbclient to connect",
            Duration::from_secs(20),
            || match child.try_wait() {
                Ok(Some(status)) => Some(Err(status)),
                _ => std::fs::read_to_string(&log)
                    .ok()
                    .filter(|t| t.contains("Try \"help\""))
                    .map(|_| Ok(())),
            },
        );
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        match connected {
            Ok(Ok(())) => Ok(HeldConnection {
                child: Some(child),
                stdin,
                log,
            }),
            Ok(Err(status)) => bail!("smbclient to {share} exited ({status}): {}", text().trim()),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{e}: {}", text().trim())
            }
        }
    }

    /// Stops smbd: SIGTERM (smbd then ends its children), waiting up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let waited = wait_for("smbd to stop", Duration::from_secs(10), || {
                child.try_wait().ok().flatten()
            });
            if waited.is_err() {
                // The whole group: smbd and the per-connection smbd it forked.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Smbd {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- smbd log ---\n{}", self.log_text());
        }
    }
}

/// A file name smbclient's command line can take in double quotes.
fn check_smbclient_arg(file: &str) -> Result<()> {
    if file.is_empty() || file.contains(['"', ';', '\n', '\r']) {
        bail!("file name {file:?} cannot go into an smbclient command");
    }
    Ok(())
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// An open SMB connection to one share (an interactive smbclient fed from a pipe). Dropping it
/// closes the pipe, and smbclient disconnects and exits.
pub struct HeldConnection {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl HeldConnection {
    /// Whether the smbclient process still runs (it stays running after the server dropped the
    /// share: it only notices at its next command).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// What smbclient printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        // EOF on stdin: smbclient exits.
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take()
            && wait_for("smbclient to exit", Duration::from_secs(5), || {
                child.try_wait().ok().flatten()
            })
            .is_err()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
