//! The Netatalk 4 test part: Debian trixie's real netatalk (afpd, cnid_metad, cnid_dbd) in the
//! chroot `scripts/netatalk-chroot` makes (Debian 12 has no netatalk), and its own tools: `dbd`
//! for the CNID database and `afparg` (netatalk-tests), a real AFP client, to read CNIDs over
//! the wire.
//!
//! - A volume lives on a zfs-fuse dataset whose `mountpoint` is a directory inside the chroot
//!   ([`volume_dir`]), so a dataset swapped under the same mountpoint is seen at once: no bind
//!   mount to redo.
//! - Each [`Netatalk`] has its own afp.conf, log, free loopback ports and scripts in its own
//!   directory inside the chroot. netatalk refuses to start while another holds its lock file
//!   (`/run/lock/netatalk`, compiled in), so each instance runs in its own mount namespace with
//!   a private `/run/lock`; the namespace follows the host's mounts (slave propagation), so the
//!   zfs mounts stay visible. Instances share the chroot's `/var/lib/netatalk` (volume UUIDs).
//! - `proc` and `dev` are mounted into the chroot when missing and never unmounted here:
//!   parallel instances share them.
//! - A missing or outdated chroot is a loud failure naming the script, never a skip.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{repo_root, wait_for};

/// The AFP test user the chroot script creates (the cleartext UAM takes at most 8 characters).
pub const USER: &str = "tm";
pub const PASSWORD: &str = "tmpass1";
/// The setrlimit shim (inside the chroot): cnid_metad exits without it in a sandbox whose
/// RLIMIT_NOFILE hard limit is below 65535.
pub const SHIM: &str = "/usr/local/lib/backstop-setrlimit.so";
/// Where instances keep their files, inside the chroot.
const INSTANCES: &str = "/tmp/backstop-netatalk";

/// The chroot (`BACKSTOP_NETATALK_CHROOT`, default `/var/cache/backstop-ci/trixie`). Panics,
/// naming `scripts/netatalk-chroot`, when it is missing or older than the script's recipe.
pub fn chroot_dir() -> PathBuf {
    let dir = std::env::var_os("BACKSTOP_NETATALK_CHROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/backstop-ci/trixie"));
    chroot_dir_at(&dir)
}

/// [`chroot_dir`] for a given directory: it, when `scripts/netatalk-chroot` finished making it
/// with its current recipe; otherwise a panic saying what to run.
pub fn chroot_dir_at(dir: &Path) -> PathBuf {
    chroot_status(dir).unwrap_or_else(|why| panic!("{why}"))
}

/// Whether `dir` is a chroot `scripts/netatalk-chroot` finished with its current recipe; the
/// error says what to run.
pub fn chroot_status(dir: &Path) -> Result<PathBuf, String> {
    let script = repo_root().join("scripts/netatalk-chroot");
    let wanted = std::fs::read_to_string(&script)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("RECIPE=").map(|r| r.trim().to_string()))
        })
        .ok_or_else(|| format!("{} has no RECIPE= line", script.display()))?;
    let stamp = dir.join(".backstop-netatalk-chroot");
    match std::fs::read_to_string(&stamp) {
        Ok(s) if s.trim() == format!("recipe {wanted}") => Ok(dir.to_path_buf()),
        Ok(s) => Err(format!(
            "the Netatalk chroot {} was made by '{}', scripts/netatalk-chroot is at recipe {wanted}: run `sudo {}` (the Netatalk tests need the real netatalk 4)",
            dir.display(),
            s.trim(),
            script.display()
        )),
        Err(_) => Err(format!(
            "no Netatalk chroot at {} ({} is missing): run `sudo {}` first (or set BACKSTOP_NETATALK_CHROOT); the Netatalk tests need the real netatalk 4 and do not skip",
            dir.display(),
            stamp.display(),
            script.display()
        )),
    }
}

/// The path inside the chroot of a test volume named `unique` (`/srv/<unique>`).
pub fn volume_path_in_chroot(unique: &str) -> String {
    format!("/srv/{unique}")
}

/// The host path to use as the `mountpoint` of the dataset holding volume `unique`.
pub fn volume_dir(unique: &str) -> PathBuf {
    chroot_dir().join("srv").join(unique)
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

/// A name no other test process or instance of this one uses (`bs<pid>x<n>`), for volume
/// directories; directories left by dead processes are removed when empty.
pub fn unique_name() -> String {
    format!(
        "bs{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::SeqCst)
    )
}

/// One volume of an instance.
#[derive(Clone, Debug)]
pub struct Volume {
    /// The AFP volume name (also its afp.conf section).
    pub name: String,
    /// The shared directory, as seen inside the chroot.
    pub path: String,
    /// `vol dbpath = <path>`: the CNID database in `.AppleDB` inside the volume (the dataset).
    /// Otherwise it is in the instance's directory, outside the volume (as netatalk's default
    /// under /var/lib/netatalk/CNID is, but not shared with other tests).
    pub db_inside: bool,
    /// `cnid dev` (netatalk's default is yes).
    pub cnid_dev: bool,
}

impl Volume {
    /// A Time Machine volume set up for instant restores: database inside, `cnid dev = no`.
    pub fn new(name: &str, path: &str) -> Volume {
        Volume {
            name: name.to_string(),
            path: path.to_string(),
            db_inside: true,
            cnid_dev: false,
        }
    }
}

/// A free loopback TCP port (the OS picks it; it may be taken again before netatalk binds it,
/// which the start's wait reports).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Whether something listens on 127.0.0.1:`port` (read from /proc/net/tcp: connecting would
/// start an AFP session).
fn listening(port: u16) -> bool {
    let needle = format!("0100007F:{port:04X} 00000000:0000 0A");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| t.contains(&needle))
        .unwrap_or(false)
}

/// (pid, ppid, session, comm) of every process.
fn processes() -> Vec<(u32, u32, u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // state ppid pgrp session …
        Some((
            pid,
            rest.get(1)?.parse().ok()?,
            rest.get(3)?.parse().ok()?,
            comm,
        ))
    })
    .collect()
}

/// Runs argv with a timeout (afparg and dbd wait a long time for a CNID server that does not
/// answer); returns (exit code, stdout + stderr).
fn run_timeout(argv: &[String], timeout: Duration) -> Result<(i32, String)> {
    let dir = tempfile::tempdir()?;
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path)?;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot run {argv:?}"))?;
    let status = wait_for(&format!("{argv:?}"), timeout, || {
        child.try_wait().ok().flatten()
    });
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            bail!("{e}; output so far:\n{text}");
        }
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    Ok((status.code().unwrap_or(-1), text))
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// A running (or stopped) netatalk with its own config, stopped and removed on drop.
pub struct Netatalk {
    root: PathBuf,
    id: String,
    pub afp_port: u16,
    pub cnid_port: u16,
    pub volumes: Vec<Volume>,
}

impl Netatalk {
    /// Writes the instance's afp.conf and scripts, and starts it (returns once afpd listens).
    pub fn start(volumes: Vec<Volume>) -> Result<Netatalk> {
        let root = chroot_dir();
        sweep_stale(&root);
        let id = format!(
            "{}x{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::SeqCst)
        );
        let n = Netatalk {
            root,
            id,
            afp_port: free_port()?,
            cnid_port: free_port()?,
            volumes,
        };
        if n.afp_port == n.cnid_port {
            bail!("the OS gave the same free port twice");
        }
        let dir = n.host_dir();
        // cnid_metad makes only the last directory of a database path.
        for sub in ["lock", "cnid"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(n.afp_conf_host_path(), n.afp_conf_text())?;
        n.write_script("start.sh", &n.start_script())?;
        n.write_script("stop.sh", &n.stop_script())?;
        n.write_script("sessions.sh", &n.sessions_script())?;
        n.start_again()?;
        Ok(n)
    }

    /// The instance's directory inside the chroot.
    pub fn dir_in_chroot(&self) -> String {
        format!("{INSTANCES}/{}", self.id)
    }

    fn host_dir(&self) -> PathBuf {
        self.host_path(&self.dir_in_chroot())
    }

    /// The host path of a path inside the chroot.
    pub fn host_path(&self, in_chroot: &str) -> PathBuf {
        self.root.join(in_chroot.trim_start_matches('/'))
    }

    /// The chroot: afp.conf's paths are relative to it (backstopd's `root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// afp.conf as netatalk sees it (inside the chroot).
    pub fn afp_conf_path(&self) -> String {
        format!("{}/afp.conf", self.dir_in_chroot())
    }

    /// afp.conf on the host (backstopd's `afp_conf`).
    pub fn afp_conf_host_path(&self) -> PathBuf {
        self.host_path(&self.afp_conf_path())
    }

    /// The instance's netatalk log (afpd, cnid_metad, cnid_dbd).
    pub fn log(&self) -> String {
        let dir = self.host_dir();
        let mut text = std::fs::read_to_string(dir.join("netatalk.log")).unwrap_or_default();
        let out = std::fs::read_to_string(dir.join("netatalk.out")).unwrap_or_default();
        if !out.is_empty() {
            text.push_str("\n--- stdout/stderr ---\n");
            text.push_str(&out);
        }
        text
    }

    fn afp_conf_text(&self) -> String {
        let mut s = format!(
            "; Written by tests/src/netatalk.rs for one test instance.\n\
             [Global]\n\
             afp listen = 127.0.0.1\n\
             afp port = {afp}\n\
             cnid listen = 127.0.0.1:{cnid}\n\
             cnid server = 127.0.0.1:{cnid}\n\
             zeroconf = no\n\
             uam list = uams_clrtxt.so uams_dhx2.so\n\
             log file = {dir}/netatalk.log\n\
             log level = default:note\n",
            afp = self.afp_port,
            cnid = self.cnid_port,
            dir = self.dir_in_chroot()
        );
        for v in &self.volumes {
            s.push_str(&format!(
                "\n[{name}]\nvolume name = {name}\npath = {}\ntime machine = yes\n",
                v.path,
                name = v.name
            ));
            if v.db_inside {
                s.push_str(&format!("vol dbpath = {}\n", v.path));
            } else {
                s.push_str(&format!("vol dbpath = {}/cnid/$v\n", self.dir_in_chroot()));
            }
            s.push_str(&format!(
                "cnid dev = {}\n",
                if v.cnid_dev { "yes" } else { "no" }
            ));
        }
        s
    }

    fn write_script(&self, name: &str, text: &str) -> Result<()> {
        let path = self.host_dir().join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    fn start_script(&self) -> String {
        let root = self.root.display();
        let inst = self.host_dir();
        let inst = inst.display();
        format!(
            r#"#!/bin/bash
# Starts one test netatalk (tests/src/netatalk.rs) and returns once afpd listens.
set -euo pipefail
root='{root}'
inst='{inst}'
conf='{conf}'
port={port}
session_alive() {{ [ -n "${{1:-}}" ] && ps -eo sid= | grep -qw "$1"; }}
if [ -f "$inst/master.pid" ] && session_alive "$(cat "$inst/master.pid")"; then
  echo "netatalk of $inst already runs (pid $(cat "$inst/master.pid"))" >&2
  exit 0
fi
# proc and dev are shared by every instance: mounted once, never unmounted here.
flock "$root.lock" sh -c '
  grep -q " $1/proc " /proc/mounts || mount -t proc proc "$1/proc"
  grep -q " $1/dev " /proc/mounts || mount --bind /dev "$1/dev"' sh "$root"
rm -f "$inst/master.pid"
# A private /run/lock (netatalk's lock file) in a mount namespace that still sees the host's
# mounts; setsid makes netatalk a session leader, so its session is exactly this instance.
setsid unshare --mount --propagation slave sh -c '
  mount --bind "$1/lock" "$2/run/lock" && echo $$ > "$1/master.pid" &&
  exec chroot "$2" env LD_PRELOAD={shim} /usr/sbin/netatalk -d -F "$3"' \
  sh "$inst" "$root" "$conf" </dev/null >>"$inst/netatalk.out" 2>&1 &
needle=$(printf '0100007F:%04X 00000000:0000 0A' "$port")
for _ in $(seq 1 400); do
  if grep -q "$needle" /proc/net/tcp; then
    exit 0
  fi
  if [ -f "$inst/master.pid" ] && ! session_alive "$(cat "$inst/master.pid")"; then
    break
  fi
  sleep 0.05
done
echo "netatalk did not listen on 127.0.0.1:$port; its log:" >&2
tail -n 20 "$inst/netatalk.log" "$inst/netatalk.out" >&2 2>/dev/null || true
exit 1
"#,
            conf = self.afp_conf_path(),
            port = self.afp_port,
            shim = SHIM,
        )
    }

    fn stop_script(&self) -> String {
        let inst = self.host_dir();
        format!(
            r#"#!/bin/bash
# Stops one test netatalk: SIGTERM to the master, then waits until its whole session (afpd,
# cnid_metad, cnid_dbd, client afpds) is gone; what is left after 20 s gets SIGKILL.
set -euo pipefail
inst='{inst}'
[ -f "$inst/master.pid" ] || exit 0
pid=$(cat "$inst/master.pid")
session_alive() {{ ps -eo sid= | grep -qw "$pid"; }}
if session_alive; then
  kill -TERM "$pid" 2>/dev/null || true
fi
for _ in $(seq 1 400); do
  if ! session_alive; then
    rm -f "$inst/master.pid"
    exit 0
  fi
  sleep 0.05
done
echo "netatalk (session $pid) did not stop within 20 s; killing it" >&2
pkill -KILL -s "$pid" || true
sleep 0.5
rm -f "$inst/master.pid"
"#,
            inst = inst.display()
        )
    }

    fn sessions_script(&self) -> String {
        let inst = self.host_dir();
        format!(
            r#"#!/bin/bash
# Prints one line per AFP client of this test netatalk: afpd children of its afpd master.
set -euo pipefail
inst='{inst}'
[ -f "$inst/master.pid" ] || exit 0
pid=$(cat "$inst/master.pid")
ps -eo pid=,ppid=,sid=,comm= | awk -v s="$pid" '
  $3 == s && $4 == "afpd" {{ parent[$1] = $2 }}
  END {{ for (p in parent) if (parent[p] != s && parent[parent[p]] == s) print "afpd " p }}'
"#,
            inst = inst.display()
        )
    }

    /// The netatalk master's pid (its session id), while it runs.
    pub fn master_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.host_dir().join("master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        processes()
            .iter()
            .any(|(_, _, sid, _)| *sid == pid)
            .then_some(pid)
    }

    pub fn is_running(&self) -> bool {
        self.master_pid().is_some()
    }

    /// argv that starts this instance and returns once it serves (backstopd's `start`).
    pub fn start_argv(&self) -> Vec<String> {
        vec![self.host_dir().join("start.sh").display().to_string()]
    }

    /// argv that stops this instance and returns once every process is gone (`stop`).
    pub fn stop_argv(&self) -> Vec<String> {
        vec![self.host_dir().join("stop.sh").display().to_string()]
    }

    /// argv printing one line per connected AFP client of this instance (`sessions`).
    pub fn sessions_argv(&self) -> Vec<String> {
        vec![self.host_dir().join("sessions.sh").display().to_string()]
    }

    /// `dbd` in the chroot with this instance's afp.conf: append `[-s|-f] VOLUME_PATH` (`dbd`).
    pub fn dbd_argv_prefix(&self) -> Vec<String> {
        vec![
            "chroot".into(),
            self.root.display().to_string(),
            "env".into(),
            format!("LD_PRELOAD={SHIM}"),
            "dbd".into(),
            "-F".into(),
            self.afp_conf_path(),
        ]
    }

    /// `netatalk` in the chroot: append `-V` for its version (`netatalk`).
    pub fn netatalk_argv_prefix(&self) -> Vec<String> {
        vec![
            "chroot".into(),
            self.root.display().to_string(),
            "/usr/sbin/netatalk".into(),
        ]
    }

    /// The `service = { kind = "netatalk", … }` value of a backstopd share served by this
    /// instance (its afp.conf, chroot, start/stop/sessions scripts, dbd and netatalk argv).
    pub fn service_toml(&self) -> String {
        fn list(v: &[String]) -> String {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        }
        format!(
            "{{ kind = \"netatalk\", afp_conf = {:?}, root = {:?}, start = {}, stop = {}, sessions = {}, dbd = {}, netatalk = {} }}",
            self.afp_conf_host_path().display().to_string(),
            self.root().display().to_string(),
            list(&self.start_argv()),
            list(&self.stop_argv()),
            list(&self.sessions_argv()),
            list(&self.dbd_argv_prefix()),
            list(&self.netatalk_argv_prefix()),
        )
    }

    /// Starts it again after [`Netatalk::stop`] (through the start script, as backstopd would).
    pub fn start_again(&self) -> Result<()> {
        let (code, out) = run_timeout(&self.start_argv(), Duration::from_secs(60))?;
        if code != 0 {
            bail!("netatalk did not start ({code}): {out}\n{}", self.log());
        }
        wait_for("afpd to listen", Duration::from_secs(20), || {
            listening(self.afp_port).then_some(())
        })
        .with_context(|| self.log())?;
        if !self.is_running() {
            bail!("netatalk exited right after starting:\n{}", self.log());
        }
        Ok(())
    }

    /// SIGTERM to the master, and waits until every process of its session is gone.
    pub fn stop(&self) -> Result<()> {
        let (code, out) = run_timeout(&self.stop_argv(), Duration::from_secs(60))?;
        if code != 0 {
            bail!("stopping netatalk failed ({code}): {out}");
        }
        if let Some(pid) = self.master_pid() {
            bail!("netatalk (session {pid}) still runs after its stop script");
        }
        Ok(())
    }

    /// AFP clients connected now: afpd processes forked by this instance's afpd master.
    pub fn connected_clients(&self) -> usize {
        let Some(master) = self.master_pid() else {
            return 0;
        };
        let procs = processes();
        let afpd_master: Vec<u32> = procs
            .iter()
            .filter(|(_, ppid, sid, comm)| *sid == master && *ppid == master && comm == "afpd")
            .map(|(pid, ..)| *pid)
            .collect();
        procs
            .iter()
            .filter(|(_, ppid, sid, comm)| {
                *sid == master && comm == "afpd" && afpd_master.contains(ppid)
            })
            .count()
    }

    /// The CNIDs of everything in `volume`, read over AFP with `afparg -v … FPEnumerate /`:
    /// relative paths (directories end in `/`) to CNIDs. Names are as AFP sends them, in
    /// decomposed UTF-8 (a host's "ü" comes back as "u" + U+0308).
    pub fn cnids(&self, volume: &str) -> Result<BTreeMap<String, u32>> {
        self.cnids_in(volume, "/")
    }

    /// As [`Netatalk::cnids`], for one directory of the volume (`FPEnumerate` is recursive: a
    /// volume of 57,000 files is read a directory at a time).
    pub fn cnids_in(&self, volume: &str, dir: &str) -> Result<BTreeMap<String, u32>> {
        let argv: Vec<String> = [
            "chroot",
            &self.root.display().to_string(),
            "afparg",
            "-v",
            "-h",
            "127.0.0.1",
            "-p",
            &self.afp_port.to_string(),
            "-u",
            USER,
            "-w",
            PASSWORD,
            "-s",
            volume,
            "-f",
            "FPEnumerate",
            dir,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (code, out) = run_timeout(&argv, Duration::from_secs(60))?;
        if code != 0 {
            bail!(
                "afparg failed ({code}) on volume '{volume}':\n{out}\n--- netatalk log ---\n{}",
                self.log()
            );
        }
        parse_afparg_enumerate(&out).with_context(|| format!("afparg on volume '{volume}'"))
    }

    /// `dbd -s VOLUME_PATH` (path inside the chroot), its output (stdout and stderr). dbd exits
    /// 0 even on errors: read the output.
    pub fn dbd_scan(&self, volume_path: &str) -> Result<String> {
        let mut argv = self.dbd_argv_prefix();
        argv.push("-s".into());
        argv.push(volume_path.into());
        let (code, out) = run_timeout(&argv, Duration::from_secs(300))?;
        if code != 0 {
            bail!("dbd -s {volume_path} failed ({code}): {out}");
        }
        Ok(out)
    }
}

impl Drop for Netatalk {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("cannot stop netatalk {}: {e}", self.id);
            return;
        }
        if std::thread::panicking() {
            eprintln!("--- netatalk {} log ---\n{}", self.id, self.log());
        }
        let _ = std::fs::remove_dir_all(self.host_dir());
    }
}

/// Reads `afparg -v … -f FPEnumerate /` output: `0x00000011 b.txt` lines, under the directory
/// of the last `[FPEnumerateFull] Enumerate Vol N did : 0x13 …` line (afparg recurses into
/// directories, listed as `0x00000013 sub/`). Any AFP error other than the end of a listing
/// (-5018, AFPERR_NOOBJ) is an error.
pub fn parse_afparg_enumerate(out: &str) -> Result<BTreeMap<String, u32>> {
    let mut dirs: BTreeMap<u32, String> = BTreeMap::from([(2, String::new())]);
    let mut current: Option<u32> = None;
    let mut cnids = BTreeMap::new();
    for line in out.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("[FPEnumerateFull]") {
            let did = rest
                .split("did : ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .with_context(|| format!("no directory id in `{line}`"))?;
            // Enumerating a subdirectory: names in the first one are relative to it.
            if current.is_none() {
                dirs.entry(did).or_default();
            }
            current = Some(did);
            continue;
        }
        if line.starts_with("header.dsi_code") {
            if !line.contains("-5018") {
                bail!("AFP error: `{line}` in:\n{out}");
            }
            continue;
        }
        let Some((id, name)) = line.split_once(' ') else {
            continue;
        };
        let Some(hex) = id.strip_prefix("0x") else {
            continue;
        };
        if hex.len() != 8 {
            continue;
        }
        let Ok(cnid) = u32::from_str_radix(hex, 16) else {
            continue;
        };
        let did = current.with_context(|| format!("`{line}` before any enumeration"))?;
        let prefix = dirs
            .get(&did)
            .with_context(|| format!("directory id {did:#x} was never listed"))?
            .clone();
        let path = format!("{prefix}{name}");
        if path.ends_with('/') {
            dirs.insert(cnid, path.clone());
        }
        cnids.insert(path, cnid);
    }
    if current.is_none() {
        bail!("afparg enumerated nothing:\n{out}");
    }
    Ok(cnids)
}

/// Removes what killed test processes left in the chroot: instance directories whose netatalk
/// no longer runs, and empty volume directories of dead processes.
fn sweep_stale(root: &Path) {
    let alive = |pid: &str| Path::new(&format!("/proc/{pid}")).exists();
    if let Ok(entries) = std::fs::read_dir(root.join(INSTANCES.trim_start_matches('/'))) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.split('x').next() else {
                continue;
            };
            if alive(pid) {
                continue;
            }
            let master = std::fs::read_to_string(e.path().join("master.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let running =
                master.is_some_and(|m| processes().iter().any(|(_, _, sid, _)| *sid == m));
            if !running {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join("srv")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("bs").and_then(|r| r.split('x').next()) else {
                continue;
            };
            if !alive(pid) {
                // Only empty, unmounted directories go (remove_dir refuses anything else).
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// How long `f` took, for the timings the tests print.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afparg_output_of_the_real_netatalk() {
        let text = std::fs::read_to_string(
            repo_root().join("server/tests/fixtures/netatalk/afparg-v-enumerate.4.2.3.txt"),
        )
        .unwrap();
        let c = parse_afparg_enumerate(&text).unwrap();
        assert_eq!(c["c.txt"], 0x11);
        assert_eq!(c["sub/"], 0x13);
        assert_eq!(c["with space.txt"], 0x15);
        // Names come as AFP sends them: decomposed UTF-8 (UTF8-MAC), not as the host wrote them.
        assert_eq!(c["u\u{308}bung.txt"], 0x17);
        assert!(!c.contains_key("\u{fc}bung.txt"));
        assert_eq!(c["sub/in.txt"], 0x16);
        assert_eq!(c["sub/deep/"], 0x18);
        assert_eq!(c["sub/deep/z.txt"], 0x19);
        assert_eq!(c.len(), 9, "{c:?}");
    }

    #[test]
    fn afparg_errors() {
        assert!(parse_afparg_enumerate("Login failed\n").is_err());
        let denied = "[FPEnumerateFull] Enumerate Vol 256 did : 0x2 <> sindex: 1 reqcnt: 150\nheader.dsi_code       -5000\tAFPERR_ACCESS\n";
        assert!(parse_afparg_enumerate(denied).is_err());
    }
}
