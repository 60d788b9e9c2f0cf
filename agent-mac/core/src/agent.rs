//! `backstop agent`: the long-running mode on the Mac.
//!
//! - [`AgentCore`] (pure: no I/O, no clock) turns log lines, `tmutil` observations and the
//!   server's snapshots into [`Finding`]s: backups that ended for good, successes waiting for a
//!   second signal, successes never confirmed.
//! - [`run`] is the shell around it: it reads the [`MacSources`], polls `tmutil`, hands each
//!   ended backup to the post-backup action (the durable queue, drained with backoff while the
//!   server is down; failures reported as events), follows each server's event stream (resuming
//!   from the last cursor, reconnecting with backoff) and shows notifications for what it hears.
//!
//! How a success becomes final ([`ConfirmedBy`]): `tmutil` says Time Machine is idle and
//! `latestbackup` reached the backup; or, where `latestbackup` fails (no Full Disk Access), the
//! server announces a snapshot of that backup taken from Time Machine's own record in the bundle;
//! or, when nothing can ask `tmutil` (a replay without recordings), the log is trusted. A backup
//! that ended with no log line (the stream restarted, the Mac slept) is found by the slow `tmutil`
//! poll: Time Machine idle and `latestbackup` past the last one seen.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backstop_proto::v1 as pb;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{Client, pb_time};
use crate::config::{AgentConfig, DestinationConfig};
use crate::detector::stamp::parse_stamp;
use crate::detector::{
    BackupDetector, BackupOutcome, Destination, LineParser, Outcome, TmutilObservation,
    parse_destinations, parse_status, stamp_from_path,
};
use crate::notify::{Notification, Notifier};
use crate::post_backup::{PostBackup, backup_id};
use crate::queue::{QueueError, backoff};
use crate::sources::MacSources;

/// How many handed-on backup stamps are remembered, to hand each on once.
const REMEMBERED: usize = 64;

/// What made a backup's ending final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmedBy {
    /// A failure or cancellation: final as logged.
    NotNeeded,
    /// Nothing could ask `tmutil` (a replay without recordings): the log is trusted.
    Log,
    /// `tmutil`: idle, and `latestbackup` reached the backup.
    Tmutil,
    /// The server snapshotted the backup from Time Machine's own record.
    Server,
    /// No log line: the slow `tmutil` poll found `latestbackup` past the last one seen.
    TmutilPoll,
}

/// What the core found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A backup ended for good: snapshot it (completed) or report it (failed, cancelled).
    Ended {
        outcome: BackupOutcome,
        confirmed_by: ConfirmedBy,
    },
    /// A success read from the log, waiting for `tmutil` or the server to agree.
    Awaiting(BackupOutcome),
    /// A success nothing confirmed in time: not snapshotted by the agent (the server still
    /// snapshots it by itself if its record shows the backup).
    Unconfirmed(BackupOutcome),
}

/// The agent's decisions, without I/O: log lines, `tmutil` observations and the server's
/// snapshots in, [`Finding`]s out.
#[derive(Debug, Clone)]
pub struct AgentCore {
    parser: LineParser,
    detector: BackupDetector,
    trust_log: bool,
    tz: TimeZone,
    known_latest: Option<String>,
    handed_on: VecDeque<String>,
}

impl AgentCore {
    /// `trust_log`: no `tmutil` to ask, so successes in the log are final. `tz`: the Mac's zone,
    /// which backup stamps are named in. `known_latest`: the latest backup seen by an earlier run
    /// (`None` on the first: the first observation is then only a baseline).
    pub fn new(trust_log: bool, tz: TimeZone, known_latest: Option<String>) -> Self {
        AgentCore {
            parser: LineParser::new(),
            detector: BackupDetector::new(),
            trust_log,
            tz,
            known_latest,
            handed_on: VecDeque::new(),
        }
    }

    /// The latest backup `tmutil` showed while idle (to keep across runs).
    pub fn known_latest(&self) -> Option<&str> {
        self.known_latest.as_deref()
    }

    /// Whether a success waits for confirmation (ask `tmutil` soon).
    pub fn awaiting_confirmation(&self) -> bool {
        self.detector.awaiting_confirmation()
    }

    /// Lines that were not log events (banner, trailer, garbage).
    pub fn lines_skipped(&self) -> usize {
        self.parser.skipped()
    }

    /// One line of the log stream.
    pub fn feed_line(&mut self, line: &str) -> Vec<Finding> {
        let Some(event) = self.parser.parse(line) else {
            return Vec::new();
        };
        let Some(outcome) = self.detector.feed(&event) else {
            return Vec::new();
        };
        match outcome.outcome {
            Outcome::Completed if self.trust_log => {
                // Nothing will confirm it: the detector need not keep it.
                let _ = self.detector.abandon_pending_before(Timestamp::MAX);
                self.finish(outcome, ConfirmedBy::Log).into_iter().collect()
            }
            Outcome::Completed => vec![Finding::Awaiting(outcome)],
            Outcome::Failed | Outcome::Cancelled => self
                .finish(outcome, ConfirmedBy::NotNeeded)
                .into_iter()
                .collect(),
        }
    }

    /// What `tmutil` said (`status -X` and `latestbackup`) at `now`.
    pub fn observe_tmutil(&mut self, obs: &TmutilObservation, now: Timestamp) -> Vec<Finding> {
        let latest = obs.latest_backup.as_deref().and_then(stamp_from_path);
        let mut out = self.confirm(obs, latest.as_deref(), ConfirmedBy::Tmutil);
        if obs.running {
            return out;
        }
        let Some(latest) = latest else {
            return out;
        };
        let moved_on = self
            .known_latest
            .as_deref()
            .is_some_and(|known| latest.as_str() > known);
        if moved_on && !self.handed_on.contains(&latest) {
            let at = self
                .stamp_time(&latest)
                .filter(|t| *t <= now)
                .unwrap_or(now);
            let found = BackupOutcome {
                outcome: Outcome::Completed,
                backup: Some(latest.clone()),
                code: None,
                reason: None,
                at,
                confirmed: true,
            };
            out.extend(self.finish(found, ConfirmedBy::TmutilPoll));
        }
        if self
            .known_latest
            .as_deref()
            .is_none_or(|known| latest.as_str() > known)
        {
            self.known_latest = Some(latest);
        }
        out
    }

    /// The server snapshotted backup `stamp` (from Time Machine's record in the bundle): the
    /// backup finished, as a `latestbackup` of that stamp would say.
    pub fn server_snapshotted(&mut self, stamp: &str) -> Vec<Finding> {
        let obs = TmutilObservation {
            running: false,
            latest_backup: Some(stamp.to_string()),
        };
        self.confirm(&obs, Some(stamp), ConfirmedBy::Server)
    }

    /// Gives up on successes logged more than `window` before `now`.
    pub fn expire(&mut self, now: Timestamp, window: SignedDuration) -> Vec<Finding> {
        self.detector
            .abandon_pending_before(now - window)
            .into_iter()
            .map(Finding::Unconfirmed)
            .collect()
    }

    fn confirm(
        &mut self,
        obs: &TmutilObservation,
        latest: Option<&str>,
        by: ConfirmedBy,
    ) -> Vec<Finding> {
        let mut confirmed = self.detector.observe_tmutil(obs);
        // A success whose lines named no backup is the latest one; only the newest such gets
        // the stamp (older ones keep the time of their line).
        if let Some(newest) = confirmed.iter_mut().rev().find(|c| c.backup.is_none()) {
            newest.backup = latest.map(str::to_string);
        }
        confirmed
            .into_iter()
            .filter_map(|c| self.finish(c, by))
            .collect()
    }

    /// Hands a backup on once: a stamp already handed on gives nothing.
    fn finish(&mut self, outcome: BackupOutcome, by: ConfirmedBy) -> Option<Finding> {
        if outcome.outcome == Outcome::Completed
            && let Some(stamp) = &outcome.backup
        {
            if self.handed_on.contains(stamp) {
                return None;
            }
            self.handed_on.push_back(stamp.clone());
            if self.handed_on.len() > REMEMBERED {
                self.handed_on.pop_front();
            }
        }
        Some(Finding::Ended {
            outcome,
            confirmed_by: by,
        })
    }

    /// When a stamp's backup was made, read in the Mac's zone.
    fn stamp_time(&self, stamp: &str) -> Option<Timestamp> {
        self.tz.to_timestamp(parse_stamp(stamp)?).ok()
    }
}

/// Which configured destination an ended backup went to: the only one; else the one
/// `tmutil destinationinfo` marks as the last destination.
pub fn route<'a>(
    config: &'a AgentConfig,
    seen: &[Destination],
) -> Result<&'a DestinationConfig, String> {
    if let [only] = config.destinations.as_slice() {
        return Ok(only);
    }
    match seen.iter().find(|d| d.last_destination) {
        Some(last) => config.destination(&last.id).ok_or_else(|| {
            format!(
                "the backup went to destination {} ({}), which agent.toml does not map; add it (see `backstop init`)",
                last.id, last.name
            )
        }),
        None => Err(
            "cannot tell which destination the backup went to: agent.toml maps several and tmutil destinationinfo names no last destination".into(),
        ),
    }
}

/// The event the server would have recorded for a failed backup: shown when the report could
/// not reach it.
pub fn local_failure_event(share: &str, outcome: &BackupOutcome) -> pb::Event {
    let why = outcome
        .explanation()
        .map(str::to_string)
        .or_else(|| outcome.reason.clone())
        .unwrap_or_default();
    pb::Event {
        cursor: 0,
        at: Some(pb_time(outcome.at)),
        severity: pb::Severity::Warning as i32,
        share: share.to_string(),
        summary: if why.is_empty() {
            format!("{share}: Time Machine backup failed")
        } else {
            format!("{share}: Time Machine backup failed: {why}")
        },
        kind: Some(pb::event::Kind::BackupEnded(pb::BackupEnded {
            outcome: "failed".into(),
            code: outcome.code,
            reason: outcome.reason.clone().unwrap_or_default(),
            backup: outcome.backup.clone().unwrap_or_default(),
        })),
    }
}

/// A client error in the agent's words: the server's address comes from agent.toml, not from
/// `--server`.
fn agent_words(error: impl ToString) -> String {
    let mut s = error.to_string();
    if let Some(i) = s.find(" (is it running? pass --server") {
        s.truncate(i);
        s.push_str(" (is it running? its address is in agent.toml)");
    }
    s
}

/// The stamp of a snapshot's backup id (`DEST/2026-06-14-145122`, `tm/…`).
fn stamp_of_backup_id(id: &str) -> Option<String> {
    stamp_from_path(id.rsplit('/').next()?)
}

// ---- State kept across runs -------------------------------------------------------------------

/// What the agent keeps in its state dir (`agent-state.json`) besides the queues.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// The last event seen, per server: the event stream resumes after it.
    #[serde(default)]
    pub event_cursors: BTreeMap<String, u64>,
    /// The latest backup `tmutil` showed while idle.
    #[serde(default)]
    pub latest_backup: Option<String>,
}

impl AgentState {
    pub const FILE: &str = "agent-state.json";

    /// Reads `DIR/agent-state.json`; a missing or unreadable one is a fresh state (an unreadable
    /// one is kept aside as `.corrupt`).
    pub fn load(dir: &Path) -> AgentState {
        let path = dir.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                AgentState::default()
            }),
            Err(_) => AgentState::default(),
        }
    }

    /// Writes it atomically (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let path = dir.join(Self::FILE);
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(self).expect("state serializes"))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)
    }
}

/// Where a destination's durable queue lives: `STATE/destinations/<id>/`.
pub fn queue_dir(state_dir: &Path, destination: &str) -> PathBuf {
    let safe: String = destination
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Never `.`, `..` or empty: always a name inside `destinations/`.
    let safe = if safe.chars().all(|c| c == '.') {
        format!("_{safe}")
    } else {
        safe
    };
    state_dir.join("destinations").join(safe)
}

// ---- The shell --------------------------------------------------------------------------------

/// How often and how long.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// While a success waits: how often `tmutil` is asked.
    pub confirm_every: Duration,
    /// The slow `tmutil` poll that finds backups that ended with no log line.
    pub poll_every: Duration,
    /// The longest wait between retries (queue, event stream); retries start at 1 s and double.
    pub retry_max: Duration,
    /// A success nothing confirmed within this is given up.
    pub confirm_window: SignedDuration,
    /// On the first run (no cursor yet): events older than this before the start are not shown.
    pub first_run_backlog: SignedDuration,
    /// Later runs: events older than this before the start are not shown (a Mac back after a
    /// long sleep is not flooded).
    pub backlog: SignedDuration,
    /// The Mac's time zone (backup stamps are named in it).
    pub tz: TimeZone,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            confirm_every: Duration::from_secs(10),
            poll_every: Duration::from_secs(300),
            retry_max: Duration::from_secs(300),
            confirm_window: SignedDuration::from_hours(2),
            first_run_backlog: SignedDuration::from_mins(10),
            backlog: SignedDuration::from_hours(24),
            tz: TimeZone::system(),
        }
    }
}

/// What the agent did, for its output (one line each; `--json` prints them as objects tagged
/// `"report"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum AgentReport {
    Started {
        destinations: usize,
        tmutil: bool,
        state_dir: String,
    },
    /// A success read from the log, waiting for `tmutil` or the server.
    Awaiting {
        outcome: BackupOutcome,
    },
    /// A backup ended for good.
    Ended {
        destination: Option<String>,
        outcome: BackupOutcome,
        confirmed_by: ConfirmedBy,
    },
    /// A success nothing confirmed in time.
    Unconfirmed {
        outcome: BackupOutcome,
    },
    /// A snapshot request was written to the durable queue.
    Queued {
        backup_id: String,
        server: String,
        share: String,
    },
    /// The server took a queued request.
    Sent {
        backup_id: String,
        snapshot: String,
        created: bool,
    },
    /// Requests are still queued; the next attempt is in `retry_in_seconds`.
    Retrying {
        queued: usize,
        error: String,
        retry_in_seconds: u64,
    },
    /// A failed or cancelled backup was reported to the server.
    Reported {
        server: String,
        share: String,
        outcome: Outcome,
    },
    /// Following the server's events.
    Connected {
        server: String,
    },
    /// The event stream is down; retrying.
    Disconnected {
        server: String,
        error: String,
        retry_in_seconds: u64,
    },
    /// A notification was shown.
    Notified {
        title: String,
        body: String,
    },
    /// The log source has nothing more (the end of a replay).
    LogEnded {
        lines_skipped: usize,
    },
    /// Something went wrong that the agent works around or retries.
    Warning {
        message: String,
    },
    Stopped,
}

impl AgentReport {
    /// One line for people.
    pub fn text(&self, tz: &TimeZone) -> String {
        let when = |t: Timestamp| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let backup = |o: &BackupOutcome| o.backup.clone().unwrap_or_else(|| "(unnamed)".into());
        match self {
            AgentReport::Started {
                destinations,
                tmutil,
                state_dir,
            } => format!(
                "agent started: {destinations} destination{}, {}, state in {state_dir}",
                if *destinations == 1 { "" } else { "s" },
                if *tmutil {
                    "successes confirmed by tmutil"
                } else {
                    "no tmutil: the log is trusted"
                }
            ),
            AgentReport::Awaiting { outcome } => format!(
                "{}  backup {} completed (from the log; waiting for tmutil to agree)",
                when(outcome.at),
                backup(outcome)
            ),
            AgentReport::Ended {
                destination,
                outcome,
                confirmed_by,
            } => {
                let what = match outcome.outcome {
                    Outcome::Completed => format!(
                        "completed backup {}{}",
                        backup(outcome),
                        match confirmed_by {
                            ConfirmedBy::Tmutil => " (confirmed by tmutil)",
                            ConfirmedBy::Server => " (confirmed by the server)",
                            ConfirmedBy::TmutilPoll => " (found by tmutil; no log line)",
                            ConfirmedBy::Log => " (from the log)",
                            ConfirmedBy::NotNeeded => "",
                        }
                    ),
                    Outcome::Failed => format!(
                        "failed {}{}",
                        outcome.reason.as_deref().unwrap_or(""),
                        outcome
                            .explanation()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                    Outcome::Cancelled => "cancelled".into(),
                };
                match destination {
                    Some(d) => format!("{}  {what} (destination {d})", when(outcome.at)),
                    None => format!("{}  {what}", when(outcome.at)),
                }
            }
            AgentReport::Unconfirmed { outcome } => format!(
                "{}  backup {} was never confirmed by tmutil or the server: not snapshotted",
                when(outcome.at),
                backup(outcome)
            ),
            AgentReport::Queued {
                backup_id,
                server,
                share,
            } => format!("queued a snapshot of {share} on {server} for backup {backup_id}"),
            AgentReport::Sent {
                backup_id,
                snapshot,
                created,
            } => format!(
                "{} {snapshot} for backup {backup_id}",
                if *created {
                    "snapshot"
                } else {
                    "already had snapshot"
                }
            ),
            AgentReport::Retrying {
                queued,
                error,
                retry_in_seconds,
            } => format!(
                "{queued} snapshot request{} queued ({error}); retrying in {retry_in_seconds} s",
                if *queued == 1 { "" } else { "s" }
            ),
            AgentReport::Reported {
                server,
                share,
                outcome,
            } => format!(
                "reported the {} backup of {share} to {server}",
                match outcome {
                    Outcome::Cancelled => "cancelled",
                    _ => "failed",
                }
            ),
            AgentReport::Connected { server } => format!("following {server}'s events"),
            AgentReport::Disconnected {
                server,
                error,
                retry_in_seconds,
            } => format!("lost {server}'s events ({error}); retrying in {retry_in_seconds} s"),
            AgentReport::Notified { title, body } => format!("notified: {title}: {body}"),
            AgentReport::LogEnded { lines_skipped } => {
                format!("the log replay ended ({lines_skipped} lines skipped)")
            }
            AgentReport::Warning { message } => format!("warning: {message}"),
            AgentReport::Stopped => "agent stopped".into(),
        }
    }
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot use the state dir {path}: {source}")]
    StateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    PostBackup(#[from] crate::post_backup::PostBackupError),
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere). The handlers are installed now, so a signal
/// that comes before the future is first polled is not lost.
pub fn termination() -> std::io::Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// What a server's event follower tells the agent.
enum FromServer {
    Connected {
        server: String,
    },
    Disconnected {
        server: String,
        error: String,
        retry_in: Duration,
    },
    Event {
        server: String,
        event: Box<pb::Event>,
        /// Past the backlog: the cursor is saved at once (the backlog's once it is delivered).
        live: bool,
    },
    CaughtUp,
    Missed {
        server: String,
        after: u64,
        oldest_kept: u64,
    },
}

/// Follows `server`'s events after `cursor`, reconnecting with backoff, until the receiver is
/// dropped.
async fn follow_events(
    server: String,
    mut cursor: u64,
    tx: mpsc::Sender<FromServer>,
    retry_max: Duration,
) {
    use pb::subscribe_response::Item;
    let mut attempt = 0u32;
    let mut say_down = true;
    loop {
        let error = match Client::connect(&server).await {
            Err(e) => agent_words(e),
            Ok(client) => match client.subscribe(cursor, true).await {
                Err(e) => agent_words(e),
                Ok(mut sub) => {
                    let connected = FromServer::Connected {
                        server: server.clone(),
                    };
                    if tx.send(connected).await.is_err() {
                        return;
                    }
                    attempt = 0;
                    say_down = true;
                    let mut live = false;
                    loop {
                        let message = match sub.next().await {
                            Ok(Some(Item::Event(event))) => {
                                cursor = cursor.max(event.cursor);
                                FromServer::Event {
                                    server: server.clone(),
                                    event: Box::new(event),
                                    live,
                                }
                            }
                            Ok(Some(Item::Missed(m))) => FromServer::Missed {
                                server: server.clone(),
                                after: m.after_cursor,
                                oldest_kept: m.oldest_kept_cursor,
                            },
                            Ok(Some(Item::CaughtUp(_))) => {
                                live = true;
                                FromServer::CaughtUp
                            }
                            Ok(None) => break "the server ended the event stream".to_string(),
                            Err(e) => break agent_words(e),
                        };
                        if tx.send(message).await.is_err() {
                            return;
                        }
                    }
                }
            },
        };
        let retry_in = backoff(attempt).min(retry_max);
        attempt = attempt.saturating_add(1);
        if say_down {
            say_down = false;
            let down = FromServer::Disconnected {
                server: server.clone(),
                error,
                retry_in,
            };
            if tx.send(down).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry_in) => {}
            _ = tx.closed() => return,
        }
    }
}

struct Agent<S, N> {
    sources: S,
    config: AgentConfig,
    notifier: Arc<N>,
    options: AgentOptions,
    reports: mpsc::UnboundedSender<AgentReport>,
    core: AgentCore,
    state: AgentState,
    state_dir: PathBuf,
    posts: BTreeMap<String, PostBackup>,
    destinations_seen: Vec<Destination>,
    notify_since: BTreeMap<String, Timestamp>,
    /// Problems already said, not repeated until they go away.
    warned: HashSet<&'static str>,
    next_poll: Instant,
    next_confirm: Instant,
    next_drain: Option<Instant>,
    drain_attempt: u32,
}

/// Runs the agent until `shutdown` resolves. Errors only when it cannot start (state dir,
/// queue); everything later is reported and retried.
pub async fn run<S, N>(
    sources: S,
    config: AgentConfig,
    notifier: Arc<N>,
    options: AgentOptions,
    reports: mpsc::UnboundedSender<AgentReport>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError>
where
    S: MacSources,
    N: Notifier + Send + Sync + 'static,
{
    let state_dir = config.state_dir();
    std::fs::create_dir_all(&state_dir).map_err(|source| AgentError::StateDir {
        path: state_dir.display().to_string(),
        source,
    })?;
    let state = AgentState::load(&state_dir);
    let mut posts = BTreeMap::new();
    for d in &config.destinations {
        posts.insert(
            d.id.clone(),
            PostBackup::open(&d.server, &d.share, &d.id, &queue_dir(&state_dir, &d.id))?,
        );
    }
    let started = Timestamp::now();
    let now = Instant::now();
    let trust_log = !sources.has_tmutil();
    let mut notify_since = BTreeMap::new();
    for server in config.servers() {
        let since = if state.event_cursors.contains_key(&server) {
            started - options.backlog
        } else {
            started - options.first_run_backlog
        };
        notify_since.insert(server, since);
    }
    let mut agent = Agent {
        core: AgentCore::new(trust_log, options.tz.clone(), state.latest_backup.clone()),
        next_poll: now + options.poll_every,
        next_confirm: now + options.confirm_every,
        next_drain: posts.values().any(|p| p.queued() > 0).then_some(now),
        sources,
        config,
        notifier,
        options,
        reports,
        state,
        state_dir,
        posts,
        destinations_seen: Vec::new(),
        notify_since,
        warned: HashSet::new(),
        drain_attempt: 0,
    };
    agent.report(AgentReport::Started {
        destinations: agent.config.destinations.len(),
        tmutil: !trust_log,
        state_dir: agent.state_dir.display().to_string(),
    });
    agent.main_loop(shutdown).await;
    agent.report(AgentReport::Stopped);
    Ok(())
}

impl<S, N> Agent<S, N>
where
    S: MacSources,
    N: Notifier + Send + Sync + 'static,
{
    fn report(&self, r: AgentReport) {
        let _ = self.reports.send(r);
    }

    fn warn(&self, message: String) {
        self.report(AgentReport::Warning { message });
    }

    /// Says a recurring problem once, until [`Agent::cleared`].
    fn warn_once(&mut self, key: &'static str, message: String) {
        if self.warned.insert(key) {
            self.warn(message);
        }
    }

    fn cleared(&mut self, key: &'static str) {
        self.warned.remove(key);
    }

    fn save_state(&mut self) {
        if let Err(e) = self.state.save(&self.state_dir) {
            self.warn_once(
                "state",
                format!(
                    "cannot save {}: {e}",
                    self.state_dir.join(AgentState::FILE).display()
                ),
            );
        } else {
            self.cleared("state");
        }
    }

    async fn main_loop(&mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (events_tx, mut events) = mpsc::channel(256);
        let followers: Vec<_> = self
            .config
            .servers()
            .into_iter()
            .map(|server| {
                let cursor = self.state.event_cursors.get(&server).copied().unwrap_or(0);
                tokio::spawn(follow_events(
                    server,
                    cursor,
                    events_tx.clone(),
                    self.options.retry_max,
                ))
            })
            .collect();
        drop(events_tx);
        let mut events_open = !followers.is_empty();

        let mut lines = self.sources.log_lines();
        let mut lines_open = true;
        if self.core.trust_log {
            // Which destination a backup went to, when recorded.
            self.refresh_destinations().await;
        } else {
            // The baseline, and whatever ended while the agent was not running.
            self.poll(true).await;
        }
        let far = || Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let tmutil_at = (!self.core.trust_log).then(|| {
                if self.core.awaiting_confirmation() {
                    self.next_poll.min(self.next_confirm)
                } else {
                    self.next_poll
                }
            });
            tokio::select! {
                _ = &mut shutdown => break,
                line = lines.recv(), if lines_open => match line {
                    Some(line) => {
                        let found = self.core.feed_line(&line);
                        self.handle(found).await;
                    }
                    None => {
                        lines_open = false;
                        self.report(AgentReport::LogEnded {
                            lines_skipped: self.core.lines_skipped(),
                        });
                    }
                },
                message = events.recv(), if events_open => match message {
                    Some(message) => self.on_server(message).await,
                    None => events_open = false,
                },
                _ = tokio::time::sleep_until(self.next_drain.unwrap_or_else(far)),
                    if self.next_drain.is_some() => self.drain().await,
                _ = tokio::time::sleep_until(tmutil_at.unwrap_or_else(far)),
                    if tmutil_at.is_some() => {
                    let now = Instant::now();
                    let slow = now >= self.next_poll;
                    if slow {
                        self.next_poll = now + self.options.poll_every;
                    }
                    self.next_confirm = now + self.options.confirm_every;
                    self.poll(slow).await;
                    let gone = self.core.expire(Timestamp::now(), self.options.confirm_window);
                    self.handle(gone).await;
                }
            }
        }
        for f in followers {
            f.abort();
        }
        self.save_state();
    }

    /// Asks `tmutil destinationinfo` which destinations there are (and which was used last).
    async fn refresh_destinations(&mut self) {
        let seen = self
            .sources
            .tmutil_destinationinfo()
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| parse_destinations(b).map_err(|e| e.to_string()));
        match seen {
            Ok(seen) => {
                self.destinations_seen = seen;
                self.cleared("destinationinfo");
            }
            // Only needed to tell several destinations apart.
            Err(e) if self.config.destinations.len() > 1 => self.warn_once("destinationinfo", e),
            Err(_) => {}
        }
    }

    /// Asks `tmutil` (and, with `destinations`, which destinations there are).
    async fn poll(&mut self, destinations: bool) {
        if destinations {
            self.refresh_destinations().await;
        }
        let status = self
            .sources
            .tmutil_status()
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| parse_status(b).map_err(|e| e.to_string()));
        let status = match status {
            Ok(s) => {
                self.cleared("status");
                s
            }
            Err(e) => return self.warn_once("status", e),
        };
        let latest = match self.sources.tmutil_latestbackup().await {
            Ok(text) => {
                self.cleared("latestbackup");
                text
            }
            Err(e) => {
                self.warn_once(
                    "latestbackup",
                    format!(
                        "{e}; backups are confirmed by the server's own record instead (give the agent Full Disk Access to use tmutil)"
                    ),
                );
                String::new()
            }
        };
        let obs = TmutilObservation::from_outputs(&status, &latest);
        let found = self.core.observe_tmutil(&obs, Timestamp::now());
        if self.core.known_latest() != self.state.latest_backup.as_deref() {
            self.state.latest_backup = self.core.known_latest().map(str::to_string);
            self.save_state();
        }
        self.handle(found).await;
    }

    async fn handle(&mut self, found: Vec<Finding>) {
        for f in found {
            match f {
                Finding::Awaiting(outcome) => {
                    self.next_confirm = Instant::now() + self.options.confirm_every;
                    self.report(AgentReport::Awaiting { outcome });
                }
                Finding::Unconfirmed(outcome) => self.report(AgentReport::Unconfirmed { outcome }),
                Finding::Ended {
                    outcome,
                    confirmed_by,
                } => self.ended(outcome, confirmed_by).await,
            }
        }
    }

    async fn ended(&mut self, outcome: BackupOutcome, confirmed_by: ConfirmedBy) {
        let routed = route(&self.config, &self.destinations_seen).cloned();
        self.report(AgentReport::Ended {
            destination: routed.as_ref().ok().map(|d| d.id.clone()),
            outcome: outcome.clone(),
            confirmed_by,
        });
        let dest = match routed {
            Ok(d) => d,
            Err(e) => return self.warn(e),
        };
        let Some(post) = self.posts.get_mut(&dest.id) else {
            return;
        };
        let result = post.handle(&outcome).await;
        match (outcome.outcome, result) {
            (Outcome::Completed, Ok(())) => {
                self.report(AgentReport::Queued {
                    backup_id: backup_id(&dest.id, &outcome),
                    server: dest.server.clone(),
                    share: dest.share.clone(),
                });
                self.next_drain = Some(Instant::now());
            }
            (Outcome::Completed, Err(e)) => {
                self.warn(format!("cannot queue the snapshot request: {e}"))
            }
            (o, Ok(())) => self.report(AgentReport::Reported {
                server: dest.server.clone(),
                share: dest.share.clone(),
                outcome: o,
            }),
            (o, Err(e)) => {
                let e = agent_words(e);
                self.warn(format!(
                    "cannot report the {} backup to {}: {e}",
                    if o == Outcome::Failed {
                        "failed"
                    } else {
                        "cancelled"
                    },
                    dest.server
                ));
                // The server will not tell: say it here.
                if o == Outcome::Failed {
                    self.notify(&local_failure_event(&dest.share, &outcome))
                        .await;
                }
            }
        }
    }

    /// Sends every queue; schedules the next attempt with backoff while requests are left.
    async fn drain(&mut self) {
        let mut left = 0;
        let mut errors = Vec::new();
        let mut sent = Vec::new();
        let mut warnings = Vec::new();
        for post in self.posts.values_mut() {
            if post.queued() == 0 {
                continue;
            }
            match post.drain().await {
                Ok(d) => {
                    sent.extend(d.sent);
                    left += d.left;
                    match d.error.map(agent_words) {
                        Some(e) if d.left > 0 => errors.push(e),
                        Some(e) => warnings.push(e),
                        None => {}
                    }
                }
                Err(e) => {
                    left += post.queued();
                    errors.push(agent_words(e));
                }
            }
        }
        for (backup_id, snapshot, created) in sent {
            self.report(AgentReport::Sent {
                backup_id,
                snapshot,
                created,
            });
        }
        for w in warnings {
            self.warn(w);
        }
        if left == 0 {
            self.drain_attempt = 0;
            self.next_drain = None;
            return;
        }
        let retry_in = backoff(self.drain_attempt).min(self.options.retry_max);
        self.drain_attempt = self.drain_attempt.saturating_add(1);
        self.next_drain = Some(Instant::now() + retry_in);
        self.report(AgentReport::Retrying {
            queued: left,
            error: errors.join("; "),
            retry_in_seconds: retry_in.as_secs(),
        });
    }

    async fn on_server(&mut self, message: FromServer) {
        match message {
            FromServer::Connected { server } => {
                self.report(AgentReport::Connected {
                    server: server.clone(),
                });
                // The server is back: send what waits for it now rather than at the next retry.
                if self
                    .posts
                    .values()
                    .any(|p| p.server == server && p.queued() > 0)
                {
                    self.drain_attempt = 0;
                    self.next_drain = Some(Instant::now());
                }
            }
            FromServer::Disconnected {
                server,
                error,
                retry_in,
            } => self.report(AgentReport::Disconnected {
                server,
                error,
                retry_in_seconds: retry_in.as_secs(),
            }),
            FromServer::Missed {
                server,
                after,
                oldest_kept,
            } => self.warn(format!(
                "{server} no longer keeps events {}..{}: they were not shown",
                after + 1,
                oldest_kept.saturating_sub(1)
            )),
            FromServer::CaughtUp => self.save_state(),
            FromServer::Event {
                server,
                event,
                live,
            } => {
                self.state
                    .event_cursors
                    .insert(server.clone(), event.cursor);
                if live {
                    self.save_state();
                }
                let ours = event.share.is_empty()
                    || self
                        .config
                        .destinations
                        .iter()
                        .any(|d| d.server == server && d.share == event.share);
                if !ours {
                    return;
                }
                if let Some(pb::event::Kind::SnapshotCreated(created)) = &event.kind
                    && let Some(snap) = &created.snapshot
                    && snap.origin() == pb::SnapshotOrigin::Backup
                    && let Some(stamp) = stamp_of_backup_id(&snap.backup_id)
                {
                    let found = self.core.server_snapshotted(&stamp);
                    self.handle(found).await;
                }
                let at = event
                    .at
                    .and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
                    .unwrap_or_else(Timestamp::now);
                let since = self
                    .notify_since
                    .get(&server)
                    .copied()
                    .unwrap_or(Timestamp::MIN);
                if at >= since {
                    self.notify(&event).await;
                }
            }
        }
    }

    /// Shows the event's notification, when it has one and the user wants it.
    async fn notify(&mut self, event: &pb::Event) {
        if !self.config.show_notifications {
            return;
        }
        let Some(n) = self.config.notify.notification_for(event) else {
            return;
        };
        let notifier = self.notifier.clone();
        let shown: Notification = n.clone();
        match tokio::task::spawn_blocking(move || notifier.show(&shown)).await {
            Ok(Ok(())) => {
                self.cleared("notify");
                self.report(AgentReport::Notified {
                    title: n.title,
                    body: n.body,
                });
            }
            Ok(Err(e)) => self.warn_once("notify", e.to_string()),
            Err(e) => self.warn_once("notify", format!("showing a notification failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAHOE: &str = include_str!("../tests/fixtures/unified-log/tahoe-smb-success.ndjson");
    const SEQUOIA: &str =
        include_str!("../tests/fixtures/unified-log/synthetic-sequoia-success.ndjson");
    const FAILED: &str =
        include_str!("../tests/fixtures/unified-log/tahoe-smb-failed-network.ndjson");

    fn tz() -> TimeZone {
        TimeZone::fixed(jiff::tz::Offset::from_hours(10).unwrap())
    }

    fn feed(core: &mut AgentCore, text: &str) -> Vec<Finding> {
        text.lines().flat_map(|l| core.feed_line(l)).collect()
    }

    fn idle(latest: Option<&str>) -> TmutilObservation {
        TmutilObservation {
            running: false,
            latest_backup: latest.map(|s| format!("/Volumes/TM/{s}.backup")),
        }
    }

    fn now() -> Timestamp {
        "2026-06-14T06:00:00Z".parse().unwrap()
    }

    fn ended(f: &[Finding]) -> Vec<(Outcome, Option<String>, ConfirmedBy)> {
        f.iter()
            .filter_map(|f| match f {
                Finding::Ended {
                    outcome,
                    confirmed_by,
                } => Some((outcome.outcome, outcome.backup.clone(), *confirmed_by)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_logged_success_waits_for_tmutil_then_ends_once() {
        let mut core = AgentCore::new(false, tz(), Some("2026-06-13-120000".into()));
        let found = feed(&mut core, TAHOE);
        assert!(
            matches!(found.as_slice(), [Finding::Awaiting(o)] if o.backup.as_deref() == Some("2026-06-14-145122"))
        );
        assert!(core.awaiting_confirmation());
        // Running, or idle with the old backup: nothing.
        let running = TmutilObservation {
            running: true,
            latest_backup: Some("/V/2026-06-14-145122.backup".into()),
        };
        assert_eq!(core.observe_tmutil(&running, now()), []);
        assert_eq!(
            core.observe_tmutil(&idle(Some("2026-06-13-120000")), now()),
            []
        );
        // Idle and moved on: confirmed, and not found a second time by the poll.
        let found = core.observe_tmutil(&idle(Some("2026-06-14-145122")), now());
        assert_eq!(
            ended(&found),
            [(
                Outcome::Completed,
                Some("2026-06-14-145122".into()),
                ConfirmedBy::Tmutil
            )]
        );
        assert!(!core.awaiting_confirmation());
        assert_eq!(
            core.observe_tmutil(&idle(Some("2026-06-14-145122")), now()),
            []
        );
        assert_eq!(core.known_latest(), Some("2026-06-14-145122"));
        // The same lines again (a restarted stream replays them): no second hand-on.
        feed(&mut core, TAHOE);
        assert_eq!(
            core.observe_tmutil(&idle(Some("2026-06-14-145122")), now()),
            []
        );
    }

    #[test]
    fn a_stampless_success_takes_the_latest_backups_stamp() {
        let mut core = AgentCore::new(false, tz(), None);
        assert!(
            matches!(feed(&mut core, SEQUOIA).as_slice(), [Finding::Awaiting(o)] if o.backup.is_none())
        );
        // The backup before this one does not confirm it.
        assert_eq!(
            core.observe_tmutil(&idle(Some("2024-10-01-070000")), now()),
            []
        );
        let found = core.observe_tmutil(&idle(Some("2024-10-01-080100")), now());
        assert_eq!(
            ended(&found),
            [(
                Outcome::Completed,
                Some("2024-10-01-080100".into()),
                ConfirmedBy::Tmutil
            )]
        );
    }

    #[test]
    fn without_latestbackup_the_server_confirms() {
        let mut core = AgentCore::new(false, tz(), None);
        feed(&mut core, TAHOE);
        // latestbackup failed: nothing to go by.
        assert_eq!(core.observe_tmutil(&idle(None), now()), []);
        assert_eq!(core.server_snapshotted("2026-06-13-000000"), []);
        let found = core.server_snapshotted("2026-06-14-145122");
        assert_eq!(
            ended(&found),
            [(
                Outcome::Completed,
                Some("2026-06-14-145122".into()),
                ConfirmedBy::Server
            )]
        );
        assert!(!core.awaiting_confirmation());
    }

    #[test]
    fn the_slow_poll_finds_a_backup_with_no_log_line() {
        // First run: the first observation is only the baseline.
        let mut core = AgentCore::new(false, tz(), None);
        assert_eq!(
            core.observe_tmutil(&idle(Some("2026-06-14-100000")), now()),
            []
        );
        // A backup running: not yet.
        let running = TmutilObservation {
            running: true,
            latest_backup: Some("/V/2026-06-14-145122.backup".into()),
        };
        assert_eq!(core.observe_tmutil(&running, now()), []);
        let found = core.observe_tmutil(&idle(Some("2026-06-14-145122")), now());
        assert_eq!(
            ended(&found),
            [(
                Outcome::Completed,
                Some("2026-06-14-145122".into()),
                ConfirmedBy::TmutilPoll
            )]
        );
        // Its time is the stamp, read in the Mac's zone.
        let Finding::Ended { outcome, .. } = &found[0] else {
            unreachable!()
        };
        assert_eq!(outcome.at, "2026-06-14T04:51:22Z".parse().unwrap());
        assert!(outcome.confirmed);
        assert_eq!(
            core.observe_tmutil(&idle(Some("2026-06-14-145122")), now()),
            []
        );
        // A restart that remembers the latest backup finds what ended while it was away.
        let mut later = AgentCore::new(false, tz(), Some("2026-06-14-145122".into()));
        let found = later.observe_tmutil(&idle(Some("2026-06-14-155000")), now());
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn failures_end_at_once_and_trusted_logs_too() {
        let mut core = AgentCore::new(false, tz(), None);
        let found = feed(&mut core, FAILED);
        assert_eq!(
            ended(&found),
            [(Outcome::Failed, None, ConfirmedBy::NotNeeded)]
        );
        let mut trusting = AgentCore::new(true, tz(), None);
        let found = feed(&mut trusting, TAHOE);
        assert_eq!(
            ended(&found),
            [(
                Outcome::Completed,
                Some("2026-06-14-145122".into()),
                ConfirmedBy::Log
            )]
        );
        assert!(!trusting.awaiting_confirmation());
        assert_eq!(feed(&mut trusting, TAHOE), []);
    }

    #[test]
    fn unconfirmed_successes_expire() {
        let mut core = AgentCore::new(false, tz(), None);
        feed(&mut core, TAHOE);
        assert_eq!(core.expire(now(), SignedDuration::from_hours(2)), []);
        let later: Timestamp = "2026-06-14T07:00:00Z".parse().unwrap();
        let gone = core.expire(later, SignedDuration::from_hours(2));
        assert!(matches!(gone.as_slice(), [Finding::Unconfirmed(_)]));
        assert!(!core.awaiting_confirmation());
    }

    fn config(ids: &[&str]) -> AgentConfig {
        AgentConfig {
            state_dir: None,
            show_notifications: true,
            notify: Default::default(),
            destinations: ids
                .iter()
                .map(|id| DestinationConfig {
                    id: id.to_string(),
                    name: None,
                    server: "h:1".into(),
                    share: format!("S{id}"),
                })
                .collect(),
        }
    }

    fn seen(id: &str, last: bool) -> Destination {
        Destination {
            id: id.into(),
            name: format!("N{id}"),
            kind: "Network".into(),
            url: None,
            mount_point: None,
            last_destination: last,
        }
    }

    #[test]
    fn routing_to_a_destination() {
        assert_eq!(route(&config(&["A"]), &[]).unwrap().id, "A");
        let two = config(&["A", "B"]);
        assert_eq!(
            route(&two, &[seen("A", false), seen("B", true)])
                .unwrap()
                .id,
            "B"
        );
        assert!(
            route(&two, &[seen("A", false)])
                .unwrap_err()
                .contains("names no last destination")
        );
        assert!(
            route(&two, &[seen("C", true)])
                .unwrap_err()
                .contains("does not map")
        );
    }

    #[test]
    fn the_local_failure_event_reads_like_the_servers() {
        let mut core = AgentCore::new(false, tz(), None);
        let found = feed(&mut core, FAILED);
        let Finding::Ended { outcome, .. } = &found[0] else {
            unreachable!()
        };
        let event = local_failure_event("MattBookPro", outcome);
        let n = crate::notify::notification_for(&event).unwrap();
        assert_eq!(n.title, "Time Machine backup failed");
        assert_eq!(
            n.body,
            "MattBookPro's Time Machine backup did not finish: the network connection to the backup server was lost."
        );
    }

    #[test]
    fn state_round_trips_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(AgentState::load(dir.path()), AgentState::default());
        let s = AgentState {
            event_cursors: [("h:1".to_string(), 42)].into(),
            latest_backup: Some("2026-06-14-145122".into()),
        };
        s.save(dir.path()).unwrap();
        assert_eq!(AgentState::load(dir.path()), s);
        std::fs::write(dir.path().join(AgentState::FILE), "{oops").unwrap();
        assert_eq!(AgentState::load(dir.path()), AgentState::default());
        assert!(dir.path().join("agent-state.json.corrupt").exists());
    }

    #[test]
    fn client_errors_name_agent_toml() {
        let e = crate::ClientError::Unreachable {
            server: "h:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            agent_words(e),
            "cannot reach backstopd at h:1: connection refused (is it running? its address is in agent.toml)"
        );
        assert_eq!(agent_words("share unknown"), "share unknown");
    }

    #[test]
    fn queue_dirs_are_safe_names() {
        assert_eq!(
            queue_dir(Path::new("/s"), "D464-13A8"),
            Path::new("/s/destinations/D464-13A8")
        );
        assert_eq!(
            queue_dir(Path::new("/s"), "../x y"),
            Path::new("/s/destinations/.._x_y")
        );
        assert_eq!(
            queue_dir(Path::new("/s"), ".."),
            Path::new("/s/destinations/_..")
        );
        assert_eq!(
            queue_dir(Path::new("/s"), ""),
            Path::new("/s/destinations/_")
        );
    }
}
