//! The Mac-only inputs of the agent, behind one small trait so that the same core runs on Linux
//! (and in tests) from recordings:
//!
//! - the unified log, as `log stream --style ndjson --info --predicate …` prints it (one line at
//!   a time, the banner and trailer included: the detector's parser skips them);
//! - `tmutil status -X`, `tmutil latestbackup` and `tmutil destinationinfo -X`, as printed.
//!
//! [`SystemSources`] runs the real commands (argv, never a shell). It compiles everywhere but is
//! only meaningful on macOS. [`ReplaySources`] plays recorded files back: a log ndjson file and a
//! directory of recorded `tmutil` outputs (see [`TmutilRecording::from_dir`]).
//!
//! Parsing is the detector's business ([`crate::detector`]); this module only fetches text.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// The unified-log predicate that selects Time Machine's lines.
pub const LOG_PREDICATE: &str =
    r#"subsystem == "com.apple.TimeMachine" OR processImagePath CONTAINS "backupd""#;

/// The argv of the live log stream.
pub fn log_stream_argv() -> Vec<String> {
    [
        "log",
        "stream",
        "--style",
        "ndjson",
        "--info",
        "--predicate",
        LOG_PREDICATE,
    ]
    .map(String::from)
    .to_vec()
}

/// Lines longer than this are dropped unread (no log line of Time Machine comes near it).
const MAX_LINE: usize = 1 << 20;

/// Why a source could not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The command or recording does not exist here (not macOS, nothing recorded).
    #[error("{what} is not available: {why}")]
    Unavailable { what: String, why: String },
    /// The command ran and failed (for `tmutil latestbackup`, typically: no Full Disk Access).
    #[error("`{command}` failed ({status}): {message}")]
    Failed {
        command: String,
        status: String,
        message: String,
    },
    /// The command did not finish in time and was killed.
    #[error("`{command}` did not finish within {seconds} s")]
    TimedOut { command: String, seconds: u64 },
    /// A recording could not be read.
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
}

/// The Mac-only inputs of the agent.
pub trait MacSources: Send {
    /// Starts following the unified log; each line arrives as printed, without its newline. The
    /// receiver ends only when the source has nothing more to give (the end of a replayed file);
    /// a live stream is restarted, with backoff, whenever `log` exits. Called once.
    fn log_lines(&mut self) -> mpsc::Receiver<String>;

    /// Whether `tmutil` can be asked at all. Without it a success read from the log cannot be
    /// confirmed by a second signal, and the agent trusts the log (as a replay does).
    fn has_tmutil(&self) -> bool;

    /// `tmutil status -X`'s output (a plist).
    fn tmutil_status(&mut self) -> impl Future<Output = Result<Vec<u8>, SourceError>> + Send;

    /// `tmutil latestbackup`'s output (a path); an error when it failed (without Full Disk
    /// Access it does).
    fn tmutil_latestbackup(&mut self) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// `tmutil destinationinfo -X`'s output (a plist).
    fn tmutil_destinationinfo(
        &mut self,
    ) -> impl Future<Output = Result<Vec<u8>, SourceError>> + Send;
}

/// The delay before restarting a log stream that exited, after `failures` quick exits in a row:
/// 1 s doubling to at most a minute (times `base`/1 s, so tests can shorten it).
pub fn restart_delay(base: Duration, failures: u32) -> Duration {
    (base * (1u32 << failures.min(6))).min(base * 60)
}

/// A stream that ran at least this long before exiting counts as healthy: the next restart
/// waits the shortest delay again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

// ---- The real commands ----------------------------------------------------------------------

/// Runs the real `log stream` and `tmutil` (macOS). Dropping it stops the log stream.
#[derive(Debug)]
pub struct SystemSources {
    log_argv: Vec<String>,
    tmutil: PathBuf,
    command_timeout: Duration,
    restart_base: Duration,
    follower: Option<Follower>,
}

/// Stops the log stream's task (and so kills `log`) when dropped.
#[derive(Debug)]
struct Follower(tokio::task::AbortHandle);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Default for SystemSources {
    fn default() -> Self {
        SystemSources {
            log_argv: log_stream_argv(),
            tmutil: PathBuf::from("tmutil"),
            command_timeout: Duration::from_secs(60),
            restart_base: Duration::from_secs(1),
            follower: None,
        }
    }
}

impl SystemSources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Another log stream argv than [`log_stream_argv`] (for tests).
    pub fn with_log_argv(mut self, argv: Vec<String>) -> Self {
        self.log_argv = argv;
        self
    }

    /// Another `tmutil` program.
    pub fn with_tmutil(mut self, program: impl Into<PathBuf>) -> Self {
        self.tmutil = program.into();
        self
    }

    /// A `tmutil` call running longer than this is killed (default 60 s).
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The first restart delay of the log stream ([`restart_delay`]; default 1 s).
    pub fn with_restart_base(mut self, base: Duration) -> Self {
        self.restart_base = base;
        self
    }

    async fn tmutil_output(&self, args: &[&str]) -> Result<Vec<u8>, SourceError> {
        let command = format!("tmutil {}", args.join(" "));
        let child = tokio::process::Command::new(&self.tmutil)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SourceError::Unavailable {
                    what: command,
                    why: format!("{} not found (it is macOS's)", self.tmutil.display()),
                });
            }
            Err(e) => {
                return Err(SourceError::Failed {
                    command,
                    status: "not started".into(),
                    message: e.to_string(),
                });
            }
        };
        let out = match tokio::time::timeout(self.command_timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                return Err(SourceError::Failed {
                    command,
                    status: "unknown".into(),
                    message: e.to_string(),
                });
            }
            Err(_) => {
                return Err(SourceError::TimedOut {
                    command,
                    seconds: self.command_timeout.as_secs(),
                });
            }
        };
        if out.status.success() {
            return Ok(out.stdout);
        }
        // tmutil prints its complaint on stdout or stderr depending on the verb.
        let text = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &out.stderr
        } else {
            &out.stdout
        };
        Err(SourceError::Failed {
            command,
            status: out.status.to_string(),
            message: one_line(&String::from_utf8_lossy(text)),
        })
    }
}

/// The text on one line, runs of whitespace made single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl MacSources for SystemSources {
    fn log_lines(&mut self) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(follow_log(self.log_argv.clone(), self.restart_base, tx));
        self.follower = Some(Follower(task.abort_handle()));
        rx
    }

    fn has_tmutil(&self) -> bool {
        true
    }

    async fn tmutil_status(&mut self) -> Result<Vec<u8>, SourceError> {
        self.tmutil_output(&["status", "-X"]).await
    }

    async fn tmutil_latestbackup(&mut self) -> Result<String, SourceError> {
        self.tmutil_output(&["latestbackup"])
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    async fn tmutil_destinationinfo(&mut self) -> Result<Vec<u8>, SourceError> {
        self.tmutil_output(&["destinationinfo", "-X"]).await
    }
}

/// Runs the log stream, sending its lines, and starts it again when it exits (with
/// [`restart_delay`]) until the receiver is dropped.
async fn follow_log(argv: Vec<String>, base: Duration, tx: mpsc::Sender<String>) {
    let mut quick_exits = 0u32;
    loop {
        let started = Instant::now();
        let child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        if let Ok(mut child) = child
            && let Some(stdout) = child.stdout.take()
        {
            let mut out = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match out.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.len() > MAX_LINE => continue,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).to_string();
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = child.kill().await;
        }
        if started.elapsed() >= HEALTHY_RUN {
            quick_exits = 0;
        }
        let delay = restart_delay(base, quick_exits);
        quick_exits = quick_exits.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = tx.closed() => return,
        }
    }
}

// ---- Recordings -----------------------------------------------------------------------------

/// Recorded `tmutil` outputs, given back in order: each call of a verb returns its next
/// recording, and the last one again once they are used up.
#[derive(Debug, Clone, Default)]
pub struct TmutilRecording {
    statuses: Vec<Vec<u8>>,
    latest: Vec<Result<String, String>>,
    destinations: Option<Vec<u8>>,
    next_status: usize,
    next_latest: usize,
}

impl TmutilRecording {
    /// From outputs in memory: `status -X` plists, `latestbackup` outputs (`Err(text)` for a call
    /// that failed, with what it printed) and a `destinationinfo -X` plist.
    pub fn new(
        statuses: Vec<Vec<u8>>,
        latest: Vec<Result<String, String>>,
        destinations: Option<Vec<u8>>,
    ) -> Self {
        TmutilRecording {
            statuses,
            latest,
            destinations,
            next_status: 0,
            next_latest: 0,
        }
    }

    /// Only `destinationinfo -X` (for `backstop init --destinations-from FILE`).
    pub fn destinations_from_file(path: &Path) -> Result<Self, SourceError> {
        Ok(Self::new(Vec::new(), Vec::new(), Some(read(path)?)))
    }

    /// From a directory of recordings, taken in the order of their names:
    /// - `status-*.plist`: `tmutil status -X`;
    /// - `latestbackup-*.txt`: `tmutil latestbackup`'s output, or `latestbackup-*.err`: a call
    ///   that failed, with what it printed (as without Full Disk Access);
    /// - `destinationinfo.plist`: `tmutil destinationinfo -X`.
    ///
    /// Other files are ignored; a directory with none of these is an error.
    pub fn from_dir(dir: &Path) -> Result<Self, SourceError> {
        let entries = std::fs::read_dir(dir).map_err(|e| SourceError::Read {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut recording = TmutilRecording::default();
        for name in &names {
            let path = dir.join(name);
            if name.starts_with("status-") && name.ends_with(".plist") {
                recording.statuses.push(read(&path)?);
            } else if name.starts_with("latestbackup-") && name.ends_with(".txt") {
                recording.latest.push(Ok(read_text(&path)?));
            } else if name.starts_with("latestbackup-") && name.ends_with(".err") {
                recording.latest.push(Err(read_text(&path)?));
            } else if name == "destinationinfo.plist" {
                recording.destinations = Some(read(&path)?);
            }
        }
        if recording.statuses.is_empty()
            && recording.latest.is_empty()
            && recording.destinations.is_none()
        {
            return Err(SourceError::Read {
                path: dir.display().to_string(),
                message: "no recorded tmutil output in it (status-*.plist, latestbackup-*.txt or .err, destinationinfo.plist)".into(),
            });
        }
        Ok(recording)
    }

    fn status(&mut self) -> Result<Vec<u8>, SourceError> {
        next_of(&self.statuses, &mut self.next_status)
            .cloned()
            .ok_or_else(|| unrecorded("tmutil status -X"))
    }

    fn latestbackup(&mut self) -> Result<String, SourceError> {
        match next_of(&self.latest, &mut self.next_latest) {
            Some(Ok(text)) => Ok(text.clone()),
            Some(Err(text)) => Err(SourceError::Failed {
                command: "tmutil latestbackup".into(),
                status: "exit status: 1".into(),
                message: one_line(text),
            }),
            None => Err(unrecorded("tmutil latestbackup")),
        }
    }

    fn destinationinfo(&self) -> Result<Vec<u8>, SourceError> {
        self.destinations
            .clone()
            .ok_or_else(|| unrecorded("tmutil destinationinfo -X"))
    }
}

fn next_of<'a, T>(items: &'a [T], next: &mut usize) -> Option<&'a T> {
    let item = items.get((*next).min(items.len().checked_sub(1)?))?;
    *next += 1;
    Some(item)
}

fn unrecorded(what: &str) -> SourceError {
    SourceError::Unavailable {
        what: what.into(),
        why: "nothing recorded for it".into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|e| SourceError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn read_text(path: &Path) -> Result<String, SourceError> {
    Ok(String::from_utf8_lossy(&read(path)?).into_owned())
}

/// Plays recordings back: a log file's lines, and recorded `tmutil` outputs.
#[derive(Debug, Clone, Default)]
pub struct ReplaySources {
    lines: Vec<String>,
    tmutil: Option<TmutilRecording>,
}

impl ReplaySources {
    /// The lines of a recorded `log stream --style ndjson` file (read now), and optionally
    /// recorded `tmutil` outputs.
    pub fn from_file(log: &Path, tmutil: Option<TmutilRecording>) -> Result<Self, SourceError> {
        Ok(Self::new(&read_text(log)?, tmutil))
    }

    /// The lines of a log text, and optionally recorded `tmutil` outputs.
    pub fn new(log: &str, tmutil: Option<TmutilRecording>) -> Self {
        ReplaySources {
            lines: log.lines().map(str::to_string).collect(),
            tmutil,
        }
    }
}

impl MacSources for ReplaySources {
    fn log_lines(&mut self) -> mpsc::Receiver<String> {
        let lines = std::mem::take(&mut self.lines);
        let (tx, rx) = mpsc::channel(lines.len().max(1));
        for line in lines {
            // Cannot fail: the channel holds every line.
            let _ = tx.try_send(line);
        }
        rx
    }

    fn has_tmutil(&self) -> bool {
        self.tmutil.as_ref().is_some_and(|t| !t.statuses.is_empty())
    }

    async fn tmutil_status(&mut self) -> Result<Vec<u8>, SourceError> {
        match &mut self.tmutil {
            Some(t) => t.status(),
            None => Err(unrecorded("tmutil status -X")),
        }
    }

    async fn tmutil_latestbackup(&mut self) -> Result<String, SourceError> {
        match &mut self.tmutil {
            Some(t) => t.latestbackup(),
            None => Err(unrecorded("tmutil latestbackup")),
        }
    }

    async fn tmutil_destinationinfo(&mut self) -> Result<Vec<u8>, SourceError> {
        match &self.tmutil {
            Some(t) => t.destinationinfo(),
            None => Err(unrecorded("tmutil destinationinfo -X")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stream_is_argv_with_the_predicate_as_one_argument() {
        let argv = log_stream_argv();
        assert_eq!(
            argv[..6],
            [
                "log",
                "stream",
                "--style",
                "ndjson",
                "--info",
                "--predicate"
            ]
        );
        assert_eq!(
            argv[6],
            "subsystem == \"com.apple.TimeMachine\" OR processImagePath CONTAINS \"backupd\""
        );
        assert_eq!(argv.len(), 7);
    }

    #[test]
    fn restart_delay_doubles_and_is_capped() {
        let s = Duration::from_secs(1);
        assert_eq!(restart_delay(s, 0), s);
        assert_eq!(restart_delay(s, 1), 2 * s);
        assert_eq!(restart_delay(s, 5), 32 * s);
        assert_eq!(restart_delay(s, 6), 60 * s);
        assert_eq!(restart_delay(s, 1000), 60 * s);
    }

    #[test]
    fn recordings_come_back_in_order_then_the_last_repeats() {
        let mut t = TmutilRecording::new(
            vec![b"a".to_vec(), b"b".to_vec()],
            vec![
                Ok("/x/2026-01-01-000000.backup\n".into()),
                Err("no access\n".into()),
            ],
            None,
        );
        assert_eq!(t.status().unwrap(), b"a");
        assert_eq!(t.status().unwrap(), b"b");
        assert_eq!(t.status().unwrap(), b"b");
        assert_eq!(t.latestbackup().unwrap(), "/x/2026-01-01-000000.backup\n");
        let err = t.latestbackup().unwrap_err();
        assert!(matches!(&err, SourceError::Failed { message, .. } if message == "no access"));
        assert_eq!(t.latestbackup().unwrap_err(), err);
        assert!(matches!(
            t.destinationinfo(),
            Err(SourceError::Unavailable { .. })
        ));
        let mut empty = TmutilRecording::default();
        assert!(matches!(
            empty.status(),
            Err(SourceError::Unavailable { .. })
        ));
    }
}
