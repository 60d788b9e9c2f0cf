//! The detector: a pure state machine from log events (and `tmutil` observations) to outcomes.

use std::collections::VecDeque;

use jiff::{SignedDuration, Timestamp};

use super::log_line::LogEvent;
use super::outcome::{BackupOutcome, Outcome};
use super::recognizers::{CANCELED_CODE, Recognized, recognize};
use super::stamp::{stamp_at, stamp_from_path};
use super::tmutil::{TmutilStatus, parse_latestbackup};

/// A second ending line of the same kind within this time of the first, with no start line in
/// between, is the same backup said twice (Time Machine often logs an ending twice; real backups
/// are at least minutes apart and announce their start).
pub const DUPLICATE_WINDOW: SignedDuration = SignedDuration::from_mins(5);

/// At most this many successes wait for confirmation; beyond it the oldest is dropped.
pub const MAX_PENDING: usize = 32;

/// How many reported stamps are remembered to drop repeated completion lines.
const REMEMBERED_STAMPS: usize = 64;

/// What `tmutil` said at one moment: the second signal that confirms a success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmutilObservation {
    /// `tmutil status -X`'s `Running`.
    pub running: bool,
    /// The latest backup, as a stamp or as the path `tmutil latestbackup` prints; `None` when it
    /// printed none (for instance without Full Disk Access).
    pub latest_backup: Option<String>,
}

impl TmutilObservation {
    /// An observation from `tmutil status -X` (parsed) and `tmutil latestbackup`'s raw output.
    pub fn from_outputs(status: &TmutilStatus, latestbackup_stdout: &str) -> Self {
        Self {
            running: status.running,
            latest_backup: parse_latestbackup(latestbackup_stdout),
        }
    }
}

/// Where the backup the log is telling about stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// No backup in progress as far as the log says (also before any line was seen).
    #[default]
    Idle,
    /// A backup started and has not ended.
    Running,
    /// A backup said it is completing (Tahoe) and has not yet said how it ended.
    Completing,
}

/// A success waiting for `tmutil` to agree.
#[derive(Debug, Clone)]
struct Pending {
    outcome: BackupOutcome,
    /// For a success without a stamp: the latest backup must be stamped strictly after this
    /// (the stamp-form of the backup's start), so that the previous backup does not confirm it.
    after: String,
}

/// The last outcome reported, to tell a repeated ending line from a new backup.
#[derive(Debug, Clone)]
struct Last {
    outcome: Outcome,
    at: Timestamp,
    backup: Option<String>,
}

/// Turns Time Machine's log events into one [`BackupOutcome`] per backup that ended.
///
/// Feed it every event with [`feed`](Self::feed), in order. A failure or cancellation comes out at
/// once with `confirmed: true`. A success comes out at once with `confirmed: false` and stays
/// pending until [`observe_tmutil`](Self::observe_tmutil) sees Time Machine idle with its latest
/// backup at (or past) that backup's stamp; that call returns the same outcome again with
/// `confirmed: true` (and the stamp, when a later line supplied it). The caller treats the
/// confirmed outcome as the final word on the backup the unconfirmed one announced.
///
/// The rules:
/// - Only events from Time Machine count ([`LogEvent::is_time_machine`]).
/// - A backup's session begins at its start line (or, with none, at the first event after the
///   previous ending). Tahoe's `Completing backup` then `Successfully completed …` is one success.
/// - An ending line repeating an already reported stamp is dropped. An ending line of the same kind
///   as the last outcome, within [`DUPLICATE_WINDOW`] and with no start line since, is dropped too
///   (if it names a stamp the first lacked, the stamp is kept for confirmation).
/// - A failure with code 22 (canceled) is a cancellation.
/// - Confirmation needs `running == false` and a latest backup stamped at or after the success's
///   stamp; for a success whose lines named no stamp, stamped strictly after the second the
///   backup's session began (in the Mac's local time, which is what stamps are named after).
#[derive(Debug, Clone, Default)]
pub struct BackupDetector {
    phase: Phase,
    /// Stamp-form of when the current session began (see the rules).
    session_start: Option<String>,
    started_since_last: bool,
    last: Option<Last>,
    reported: VecDeque<String>,
    pending: Vec<Pending>,
}

impl BackupDetector {
    /// A detector that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the backup the log is telling about stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Feeds one event; returns the outcome when it ends a backup (at most one per event).
    pub fn feed(&mut self, event: &LogEvent) -> Option<BackupOutcome> {
        if !event.is_time_machine() {
            return None;
        }
        let here = stamp_at(event.at, event.offset);
        if self.session_start.is_none() {
            self.session_start = Some(here.clone());
        }
        match recognize(&event.message)? {
            Recognized::Started => {
                self.phase = Phase::Running;
                self.started_since_last = true;
                self.session_start = Some(here);
                None
            }
            Recognized::Completing => {
                self.phase = Phase::Completing;
                None
            }
            Recognized::Completed { backup } => {
                self.end(event.at, here, Outcome::Completed, backup, None, None)
            }
            Recognized::Failed { code, reason } => {
                let outcome = if code == Some(CANCELED_CODE) {
                    Outcome::Cancelled
                } else {
                    Outcome::Failed
                };
                self.end(event.at, here, outcome, None, code, reason)
            }
            Recognized::Canceled => self.end(event.at, here, Outcome::Cancelled, None, None, None),
        }
    }

    fn end(
        &mut self,
        at: Timestamp,
        here: String,
        outcome: Outcome,
        backup: Option<String>,
        code: Option<i32>,
        reason: Option<String>,
    ) -> Option<BackupOutcome> {
        self.phase = Phase::Idle;
        if self.is_repeat(at, outcome, backup.as_deref()) {
            return None;
        }
        let session_start = self.session_start.take().unwrap_or(here);
        self.started_since_last = false;
        self.last = Some(Last {
            outcome,
            at,
            backup: backup.clone(),
        });
        let result = BackupOutcome {
            outcome,
            backup,
            code,
            reason,
            at,
            confirmed: outcome != Outcome::Completed,
        };
        if outcome == Outcome::Completed {
            if let Some(stamp) = &result.backup {
                self.remember(stamp);
            }
            self.pending.push(Pending {
                outcome: result.clone(),
                after: session_start,
            });
            if self.pending.len() > MAX_PENDING {
                self.pending.remove(0);
            }
        }
        Some(result)
    }

    /// Whether an ending line repeats the last outcome (see the rules on [`BackupDetector`]).
    fn is_repeat(&mut self, at: Timestamp, outcome: Outcome, backup: Option<&str>) -> bool {
        if let Some(stamp) = backup
            && self.reported.iter().any(|known| known == stamp)
        {
            return true;
        }
        let Some(last) = &mut self.last else {
            return false;
        };
        if self.started_since_last
            || last.outcome != outcome
            || at.duration_since(last.at).abs() > DUPLICATE_WINDOW
        {
            return false;
        }
        match (last.backup.as_deref(), backup) {
            // Two different stamps are two backups.
            (Some(_), Some(_)) => false,
            (None, Some(stamp)) => {
                let stamp = stamp.to_owned();
                last.backup = Some(stamp.clone());
                let last_at = last.at;
                if let Some(pending) = self
                    .pending
                    .iter_mut()
                    .find(|p| p.outcome.at == last_at && p.outcome.backup.is_none())
                {
                    pending.outcome.backup = Some(stamp.clone());
                }
                self.remember(&stamp);
                true
            }
            _ => true,
        }
    }

    fn remember(&mut self, stamp: &str) {
        self.reported.push_back(stamp.to_owned());
        if self.reported.len() > REMEMBERED_STAMPS {
            self.reported.pop_front();
        }
    }

    /// Takes what `tmutil` says; returns the pending successes it confirms, now `confirmed: true`,
    /// oldest first. Nothing is confirmed while Time Machine runs or without a latest backup.
    pub fn observe_tmutil(&mut self, observation: &TmutilObservation) -> Vec<BackupOutcome> {
        if observation.running {
            return Vec::new();
        }
        let Some(latest) = observation
            .latest_backup
            .as_deref()
            .and_then(stamp_from_path)
        else {
            return Vec::new();
        };
        let mut confirmed = Vec::new();
        self.pending.retain(|pending| {
            let agrees = match &pending.outcome.backup {
                Some(stamp) => latest.as_str() >= stamp.as_str(),
                None => latest > pending.after,
            };
            if agrees {
                confirmed.push(BackupOutcome {
                    confirmed: true,
                    ..pending.outcome.clone()
                });
            }
            !agrees
        });
        confirmed
    }

    /// Whether any success still waits for confirmation (the caller should keep asking `tmutil`).
    pub fn awaiting_confirmation(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The successes waiting for confirmation, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &BackupOutcome> + '_ {
        self.pending.iter().map(|p| &p.outcome)
    }

    /// Gives up on the pending successes logged before `cutoff`; returns them, still unconfirmed.
    pub fn abandon_pending_before(&mut self, cutoff: Timestamp) -> Vec<BackupOutcome> {
        let mut abandoned = Vec::new();
        self.pending.retain(|pending| {
            let old = pending.outcome.at < cutoff;
            if old {
                abandoned.push(pending.outcome.clone());
            }
            !old
        });
        abandoned
    }
}
