//! The end-to-end harness: real file-backed ZFS pools, a real `backstopd` process and the real
//! `backstop` binary. Used by the tests in `tests/tests/`, the demo and the `bench` program.
//!
//! A missing part (no zfs, no built binaries) is a loud failure, never a skip.

pub mod netatalk;
pub mod netns;
pub mod samba;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where the workspace's binaries are, next to the running test or bench executable
/// (`target/<profile>/deps/test-…` or `target/<profile>/bench`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries first (`cargo build --workspace --bins`, as `make test` does)",
        path.display()
    );
    path
}

/// Runs argv (no shell), failing with its stderr when it fails.
pub fn run(argv: &[&str]) -> Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {argv:?}"))?;
    if !out.status.success() {
        bail!(
            "{argv:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

static ZFS_UP: Once = Once::new();

/// Makes sure a zfs answers (starting zfs-fuse through scripts/zfs-fuse-up when none does).
pub fn ensure_zfs() {
    ZFS_UP.call_once(|| {
        if run(&["zpool", "list", "-H"]).is_ok() {
            return;
        }
        let script = repo_root().join("scripts/zfs-fuse-up");
        let status = Command::new(&script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "no zfs available: {} failed; run `scripts/setup` as root (these tests need real ZFS)",
            script.display()
        );
    });
    STALE.call_once(destroy_stale_pools);
    run(&["zpool", "list", "-H"]).expect("zpool answers after zfs-fuse-up");
}

/// zfs-fuse wedges (every FUSE request of every pool hangs in D state) when pools are created,
/// datasets mounted or pools destroyed by several processes at once; measured here with three
/// concurrent create/mount/destroy loops: hung within two rounds without this lock, 45 rounds
/// clean with it. Every such operation of the harness holds this machine-wide lock (a file
/// lock, so it also serializes separate test processes).
pub struct ZfsAdminLock(#[allow(dead_code)] std::fs::File);

pub fn zfs_admin_lock() -> ZfsAdminLock {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/backstop-zfs-admin.lock")
        .or_else(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(std::env::temp_dir().join("backstop-zfs-admin.lock"))
        })
        .expect("open the zfs admin lock file");
    f.lock().expect("take the zfs admin lock");
    ZfsAdminLock(f)
}

static POOLS: AtomicU32 = AtomicU32::new(0);
static STALE: Once = Once::new();

/// Destroys test pools left by test processes that were killed (their pid is in the name and
/// no longer runs). Pools of running processes and every other pool are left alone.
fn destroy_stale_pools() {
    let Ok(out) = run(&["zpool", "list", "-H", "-o", "name"]) else {
        return;
    };
    for name in out.lines() {
        let Some(rest) = name.strip_prefix(POOL_PREFIX) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('x').next().map(str::parse::<u32>) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _lock = zfs_admin_lock();
            match run(&["zpool", "destroy", "-f", name]) {
                Ok(_) => eprintln!("destroyed stale test pool {name}"),
                Err(e) => eprintln!("cannot destroy stale test pool {name}: {e}"),
            }
        }
    }
}

/// The prefix of every pool the tests make, so stale ones are recognisable (and only ours).
pub const POOL_PREFIX: &str = "bstest";

/// A file-backed mirror pool with a unique name, destroyed on drop (also when a test panics).
pub struct TestPool {
    pub name: String,
    dir: tempfile::TempDir,
}

impl TestPool {
    pub fn new() -> TestPool {
        Self::with_size("256M")
    }

    pub fn with_size(size: &str) -> TestPool {
        Self::with_layout("mirror", 2, size)
    }

    /// A pool of `n` file vdevs in one `kind` vdev ("mirror", "raidz1").
    pub fn with_layout(kind: &str, n: usize, size: &str) -> TestPool {
        ensure_zfs();
        let seq = POOLS.fetch_add(1, Ordering::SeqCst);
        let name = format!("{POOL_PREFIX}{}x{seq}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("backstop-pool-")
            .tempdir()
            .expect("temp dir");
        let mnt = dir.path().join("mnt");
        let vdevs: Vec<String> = (1..=n)
            .map(|i| dir.path().join(format!("vdev{i}")).display().to_string())
            .collect();
        for f in &vdevs {
            run(&["truncate", "-s", size, f]).expect("truncate");
        }
        let mut argv = vec![
            "zpool",
            "create",
            "-f",
            "-m",
            mnt.to_str().unwrap(),
            &name,
            kind,
        ];
        argv.extend(vdevs.iter().map(String::as_str));
        let _lock = zfs_admin_lock();
        run(&argv).expect("zpool create");
        TestPool { name, dir }
    }

    /// Creates `POOL/child` and returns its name.
    pub fn dataset(&self, child: &str) -> String {
        let ds = format!("{}/{child}", self.name);
        let _lock = zfs_admin_lock();
        run(&["zfs", "create", &ds]).expect("zfs create");
        ds
    }

    /// Creates `POOL/child` mounted at `mountpoint` (set at creation: changing the mountpoint
    /// of a mounted dataset later remounts it, which zfs-fuse sometimes calls busy).
    pub fn dataset_at(&self, child: &str, mountpoint: &Path) -> String {
        let ds = format!("{}/{child}", self.name);
        let _lock = zfs_admin_lock();
        run(&[
            "zfs",
            "create",
            "-o",
            &format!("mountpoint={}", mountpoint.display()),
            &ds,
        ])
        .expect("zfs create");
        ds
    }

    /// The file behind vdev `i` (1-based).
    pub fn vdev(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("vdev{i}"))
    }

    /// `zpool export`, then `zpool import -d DIR`: the pool is opened afresh from its files.
    pub fn reimport(&self, between: impl FnOnce()) {
        let _lock = zfs_admin_lock();
        run(&["zpool", "export", &self.name]).expect("zpool export");
        between();
        run(&[
            "zpool",
            "import",
            "-d",
            self.dir.path().to_str().unwrap(),
            &self.name,
        ])
        .expect("zpool import");
    }

    /// The directory the pool's root dataset is mounted on.
    pub fn mountpoint(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Snapshot names (after '@') of a dataset, as zfs itself lists them.
    pub fn snapshots(&self, dataset: &str) -> Vec<String> {
        let out = run(&[
            "zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", dataset,
        ])
        .expect("zfs list");
        out.lines()
            .filter_map(|l| l.strip_prefix(&format!("{dataset}@")).map(str::to_string))
            .collect()
    }

    /// A property of a snapshot or dataset and its source, from `zfs get`.
    pub fn prop(&self, target: &str, prop: &str) -> (String, String) {
        let out = run(&["zfs", "get", "-H", "-o", "value,source", prop, target]).expect("zfs get");
        let mut it = out.trim_end_matches('\n').splitn(2, '\t');
        (
            it.next().unwrap_or("").to_string(),
            it.next().unwrap_or("").to_string(),
        )
    }
}

impl Default for TestPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        for attempt in 0..10 {
            let lock = zfs_admin_lock();
            let result = run(&["zpool", "destroy", "-f", &self.name]);
            drop(lock);
            match result {
                Ok(_) => return,
                Err(e) if attempt == 9 => eprintln!("cannot destroy pool {}: {e}", self.name),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// Waits for a condition, polling, up to `timeout`; the error names what was awaited.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running backstopd with its own config and state dir, stopped on drop.
pub struct Daemon {
    child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    log: PathBuf,
    log_filter: String,
    /// Extra environment of the next start (e.g. a test-only crash hook).
    pub env: Vec<(String, String)>,
    /// The network namespace it runs in (`ip netns exec`), if any.
    pub netns: Option<String>,
}

/// `[[share]]` entries for a config.
pub fn shares_toml(shares: &[(&str, &str)]) -> String {
    shares
        .iter()
        .map(|(n, d)| format!("[[share]]\nname = \"{n}\"\ndataset = \"{d}\"\n\n"))
        .collect()
}

impl Daemon {
    /// Starts backstopd on a free loopback port serving `shares` (name, dataset), with `extra`
    /// appended to the config. Times are named in UTC (TZ=UTC) so tests can predict names.
    pub fn start(shares: &[(&str, &str)], extra: &str) -> Daemon {
        Self::start_logging(shares, extra, "debug")
    }

    /// As [`Daemon::start`], with backstopd's log filter (`BACKSTOP_LOG`), e.g. "warn".
    pub fn start_logging(shares: &[(&str, &str)], extra: &str, log_filter: &str) -> Daemon {
        let mut d = Self::configure("127.0.0.1:0", shares, extra, log_filter);
        d.spawn();
        d
    }

    /// A daemon configured (config written, state dir chosen) but not started: run admin
    /// commands first (`backstopd init`), set `netns`, then [`Daemon::spawn`].
    pub fn configure(
        listen: &str,
        shares: &[(&str, &str)],
        extra: &str,
        log_filter: &str,
    ) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("backstopd-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("backstopd.toml");
        let state = dir.path().join("state");
        let text = format!(
            "listen = \"{listen}\"\nstate_dir = \"{}\"\n{extra}\n{}",
            state.display(),
            shares_toml(shares)
        );
        std::fs::write(&config, text).expect("write config");
        let log = dir.path().join("backstopd.log");
        Daemon {
            child: None,
            addr: String::new(),
            dir,
            config,
            log,
            log_filter: log_filter.to_string(),
            env: Vec::new(),
            netns: None,
        }
    }

    /// Runs `backstopd --config CONFIG ARGS` (admin commands: init, pair, clients, audit).
    pub fn admin(&self, args: &[&str]) -> CliOutput {
        Command::new(bin("backstopd"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run backstopd")
            .into()
    }

    /// Waits for the daemon to exit by itself (e.g. a test-only crash hook); true when it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let exited = wait_for("backstopd to exit", timeout, || {
            child.try_wait().ok().flatten()
        });
        if exited.is_ok() {
            self.child = None;
        }
        exited.is_ok()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn spawn(&mut self) {
        let addr_file = self.state_dir().join("listen-addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin("backstopd"));
                c
            }
            None => Command::new(bin("backstopd")),
        };
        let mut child = cmd
            .arg("--config")
            .arg(&self.config)
            .env("TZ", "UTC")
            .env("BACKSTOP_LOG", &self.log_filter)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn backstopd");
        let addr = wait_for("backstopd to listen", Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("backstopd exited ({status}): {}", self.log_text());
            }
            std::fs::read_to_string(&addr_file)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|e| panic!("{e}: {}", self.log_text()));
        self.addr = addr;
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops (SIGTERM, then waits) and starts again with the same config and state.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let waited = wait_for("backstopd to stop", Duration::from_secs(10), || {
                child.try_wait().ok().flatten()
            });
            if waited.is_err() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Runs `backstop ARGS` against this daemon.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        cli(&self.addr, args)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- backstopd log ---\n{}", self.log_text());
        }
    }
}

/// What the `backstop` binary did.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The JSON document printed, panicking (with the output) when the command failed.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "backstop failed: {self:?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl From<Output> for CliOutput {
    fn from(o: Output) -> Self {
        CliOutput {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `backstop --server ADDR ARGS`.
pub fn cli(addr: &str, args: &[&str]) -> CliOutput {
    Command::new(bin("backstop"))
        .arg("--server")
        .arg(addr)
        .args(args)
        .env("TZ", "UTC")
        .env_remove("BACKSTOP_SERVER")
        .stdin(Stdio::null())
        .output()
        .expect("run backstop")
        .into()
}
