//! Desktop notifications for what the server pushes.
//!
//! - [`notification_for`] (pure) decides which events are worth interrupting someone for, and
//!   says so in words a non-expert understands; [`NotifyPrefs`] lets the user mute the quieter
//!   ones.
//! - [`Notifier`] shows them: [`DesktopNotifier`] for real (the macOS notification centre, or
//!   `org.freedesktop.Notifications` on the session D-Bus elsewhere), [`RecordingNotifier`] in
//!   tests.
//! - [`notify`] ties the two together for one event.

use std::sync::Mutex;
use std::time::Duration;

use backstop_proto::v1 as pb;
use pb::event::Kind;
use serde::Serialize;

/// How insistently a notification asks for attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Good news or routine: shown quietly, gone soon.
    Low,
    /// Something went wrong that the user may want to look at.
    Normal,
    /// Backups are at risk: stays until dismissed.
    Critical,
}

/// One desktop notification: a title, a sentence or two, and how urgent it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub title: String,
    pub body: String,
    pub urgency: Urgency,
}

/// What the user wants to be notified about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyPrefs {
    /// Events below this severity are not shown. `Info` (the default) shows everything that
    /// notifies; `Warning` mutes the good news (snapshots taken, scrubs that found nothing);
    /// `Critical` keeps only what puts backups at risk. An event of unspecified severity counts
    /// as `Info`.
    pub min_severity: pb::Severity,
}

impl Default for NotifyPrefs {
    fn default() -> Self {
        NotifyPrefs {
            min_severity: pb::Severity::Info,
        }
    }
}

impl NotifyPrefs {
    /// Whether the event is severe enough to be shown.
    pub fn wants(&self, event: &pb::Event) -> bool {
        rank(event.severity()) >= rank(self.min_severity)
    }

    /// [`notification_for`] the event, when the user wants it.
    pub fn notification_for(&self, event: &pb::Event) -> Option<Notification> {
        if self.wants(event) {
            notification_for(event)
        } else {
            None
        }
    }
}

/// Parses a severity as a person writes it: "info", "warning" or "critical" (any case).
pub fn severity_from_name(name: &str) -> Option<pb::Severity> {
    match name.to_ascii_lowercase().as_str() {
        "info" => Some(pb::Severity::Info),
        "warning" | "warn" => Some(pb::Severity::Warning),
        "critical" => Some(pb::Severity::Critical),
        _ => None,
    }
}

fn rank(s: pb::Severity) -> u8 {
    match s {
        pb::Severity::Unspecified | pb::Severity::Info => 1,
        pb::Severity::Warning => 2,
        pb::Severity::Critical => 3,
    }
}

/// The notification an event deserves, or `None` when it is routine (server started, snapshots
/// adopted or pruned as planned, a scrub started, a backup cancelled). Kinds this does not know
/// notify with their summary when they are warnings or worse.
///
/// A critical event is always a critical notification.
pub fn notification_for(event: &pb::Event) -> Option<Notification> {
    let severity = event.severity();
    let mut n = match &event.kind {
        Some(Kind::SnapshotCreated(c)) => snapshot_created(event, c),
        Some(Kind::BackupEnded(b)) => backup_ended(event, b),
        Some(Kind::PoolHealthChanged(p)) => pool_health_changed(event, p),
        Some(Kind::SnapshotsPruned(_)) => match severity {
            // Pruning as planned is routine; what could not be destroyed keeps using space.
            pb::Severity::Warning | pb::Severity::Critical => Some(Notification {
                title: "Old snapshots could not be removed".into(),
                body: sentence(after_name(&event.summary, &event.share)),
                urgency: Urgency::Normal,
            }),
            pb::Severity::Info | pb::Severity::Unspecified => None,
        },
        Some(Kind::VerificationFailed(v)) => Some(verification_failed(event, v)),
        // A restore's start and steps are shown by whoever asked; its end is news.
        Some(Kind::Recovery(r)) => match r.phase.as_str() {
            "finished" => Some(Notification {
                title: match r.operation.as_str() {
                    "undo" => "Restore undone".into(),
                    "finalize" => "Restore finalized".into(),
                    _ => "Backup share restored".into(),
                },
                body: sentence(after_name(&event.summary, &event.share)),
                urgency: Urgency::Normal,
            }),
            "failed" | "reversed" => unknown(event),
            _ => None,
        },
        // Both follow from something the user did or saw happen.
        Some(Kind::ServerStarted(_)) | Some(Kind::SnapshotsAdopted(_)) => None,
        // A kind from a newer server (or one added to the contract since this was written): its
        // summary still says what happened.
        #[allow(unreachable_patterns)]
        Some(_) | None => unknown(event),
    }?;
    if severity == pb::Severity::Critical {
        n.urgency = Urgency::Critical;
    }
    Some(n)
}

fn snapshot_created(event: &pb::Event, c: &pb::SnapshotCreated) -> Option<Notification> {
    let Some(snap) = &c.snapshot else {
        return Some(Notification {
            title: "Snapshot taken".into(),
            body: stopped(&event.summary),
            urgency: Urgency::Low,
        });
    };
    let share = if event.share.is_empty() {
        &snap.share
    } else {
        &event.share
    };
    let (title, mut body) = match snap.origin() {
        pb::SnapshotOrigin::Backup => (
            "Backup snapshot taken",
            format!(
                "{share}'s Time Machine backup is now also kept in snapshot {}.",
                snap.name
            ),
        ),
        _ => (
            "Snapshot taken",
            format!("Snapshot {} of {share} was taken.", snap.name),
        ),
    };
    if snap.verification() == pb::Verification::Bad {
        body.push_str(" Time Machine did not consider this backup sound.");
    }
    Some(Notification {
        title: title.into(),
        body,
        urgency: Urgency::Low,
    })
}

fn verification_failed(event: &pb::Event, v: &pb::VerificationFailed) -> Notification {
    let whose = if event.share.is_empty() {
        "A".to_string()
    } else {
        format!("{}'s", event.share)
    };
    let way_back = if v.newest_good.is_empty() {
        "No snapshot is known to hold a good copy.".to_string()
    } else {
        format!(
            "Snapshot {} still holds a good copy, which can be restored instead of starting over.",
            v.newest_good
        )
    };
    Notification {
        title: "Time Machine backup is damaged".into(),
        body: format!(
            "{whose} Time Machine backup failed verification, and the Mac will ask to start a new one. {way_back}"
        ),
        urgency: Urgency::Critical,
    }
}

fn backup_ended(event: &pb::Event, b: &pb::BackupEnded) -> Option<Notification> {
    match b.outcome.as_str() {
        // Almost always the user's own doing (or the Mac going to sleep); Time Machine tries
        // again by itself. The event log keeps it.
        "cancelled" => None,
        "failed" => {
            let share = &event.share;
            // The server's summary carries the code's explanation in plain words when there is
            // one: "iMac: Time Machine backup failed: <why>".
            let why = event
                .summary
                .strip_prefix(&format!("{share}: Time Machine backup failed"))
                .map(|rest| rest.strip_prefix(": ").unwrap_or(rest).trim().to_string())
                .unwrap_or_else(|| b.reason.trim().to_string());
            let whose = if share.is_empty() {
                "The".to_string()
            } else {
                format!("{share}'s")
            };
            let body = if why.is_empty() {
                format!("{whose} Time Machine backup did not finish; Time Machine gave no reason.")
            } else {
                stopped(&format!(
                    "{whose} Time Machine backup did not finish: {}",
                    lower_first(&why)
                ))
            };
            Some(Notification {
                title: "Time Machine backup failed".into(),
                body,
                urgency: Urgency::Normal,
            })
        }
        _ => unknown(event),
    }
}

fn pool_health_changed(event: &pb::Event, p: &pb::PoolHealthChanged) -> Option<Notification> {
    let severity = event.severity();
    let pool = &p.pool;
    let what = after_name(&event.summary, pool);
    let bad = matches!(severity, pb::Severity::Warning | pb::Severity::Critical);
    let problem = || format!("Disk problem on {pool}");
    let (title, body, urgency) = match p.change.as_str() {
        "errors_rose" => (problem(), sentence(what), Urgency::Normal),
        "state_changed" if bad => {
            let advice = if p.device.is_empty() {
                pool_state_advice(&p.state)
            } else {
                device_state_advice(&p.state)
            };
            (problem(), with_advice(what, advice), Urgency::Normal)
        }
        "state_changed" => {
            let title = if p.device.is_empty() {
                format!("{pool} is healthy again")
            } else {
                format!("Disk {} is back on {pool}", p.device)
            };
            (title, sentence(what), Urgency::Low)
        }
        "data_errors" if bad => (
            format!("Damaged files on {pool}"),
            with_advice(
                what,
                Some("Other snapshots may still hold good copies: see `backstop health`."),
            ),
            Urgency::Normal,
        ),
        "data_errors" => (
            format!("No more damaged files on {pool}"),
            sentence(what),
            Urgency::Low,
        ),
        // The end of a scan is news; its start is not.
        "scan_started" => return None,
        "scan_finished" if severity == pb::Severity::Critical => (
            problem(),
            with_advice(
                what,
                Some("Some data could not be repaired: see `backstop health`."),
            ),
            Urgency::Critical,
        ),
        "scan_finished" if bad || p.repaired > 0 => (
            problem(),
            with_advice(
                what,
                Some(
                    "ZFS fixed the damaged data, but a disk may be failing: see `backstop health`.",
                ),
            ),
            Urgency::Normal,
        ),
        "scan_finished" => {
            let kind = if what.contains("resilver") {
                "Resilver"
            } else {
                "Scrub"
            };
            let ended = if what.contains("cancel") {
                "canceled"
            } else {
                "finished"
            };
            (
                format!("{kind} {ended} on {pool}"),
                sentence(what),
                Urgency::Low,
            )
        }
        _ if bad => (problem(), sentence(what), Urgency::Normal),
        _ => return None,
    };
    Some(Notification {
        title,
        body,
        urgency,
    })
}

fn pool_state_advice(state: &str) -> Option<&'static str> {
    match state {
        "DEGRADED" => Some(
            "The backups are still there, but one more failing disk could lose them: replace the failed disk.",
        ),
        "FAULTED" | "UNAVAIL" => {
            Some("The backups on it cannot be reached until its disks are working again.")
        }
        "SUSPENDED" => Some("ZFS stopped writing to it: check the disks and their cables."),
        _ => None,
    }
}

fn device_state_advice(state: &str) -> Option<&'static str> {
    match state {
        "FAULTED" | "UNAVAIL" | "REMOVED" => Some("Check the disk's cable, or replace the disk."),
        "DEGRADED" => Some("The disk is unreliable: replace it soon."),
        _ => None,
    }
}

fn unknown(event: &pb::Event) -> Option<Notification> {
    match event.severity() {
        pb::Severity::Warning | pb::Severity::Critical => Some(Notification {
            title: "Backstop needs your attention".into(),
            body: stopped(&event.summary),
            urgency: Urgency::Normal,
        }),
        pb::Severity::Info | pb::Severity::Unspecified => None,
    }
}

/// The summary without its leading "name: ", which the title already says.
fn after_name<'a>(summary: &'a str, name: &str) -> &'a str {
    if name.is_empty() {
        return summary;
    }
    summary
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(summary)
}

/// Capitalized and ending in a full stop: for the rest of a summary after its "name: ".
fn sentence(s: &str) -> String {
    let s = s.trim();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => stopped(&c.to_uppercase().chain(chars).collect::<String>()),
        None => String::new(),
    }
}

/// Ending in a full stop, otherwise as it is (it may start with a share or pool name, whose case
/// matters).
fn stopped(s: &str) -> String {
    let mut out = s.trim().to_string();
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

fn with_advice(what: &str, advice: Option<&str>) -> String {
    match advice {
        Some(a) => format!("{} {a}", sentence(what)),
        None => sentence(what),
    }
}

/// "Not enough space" → "not enough space", but "APFS …" stays as it is.
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            a.to_lowercase().chain(s[a.len_utf8()..].chars()).collect()
        }
        _ => s.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot show a desktop notification (is a notification service running?): {0}")]
    Desktop(String),
}

/// Something that shows notifications.
pub trait Notifier {
    fn show(&self, n: &Notification) -> Result<(), NotifyError>;
}

/// Shows the event's notification when there is one and the user wants it; returns what was
/// shown.
pub fn notify<N: Notifier + ?Sized>(
    notifier: &N,
    prefs: &NotifyPrefs,
    event: &pb::Event,
) -> Result<Option<Notification>, NotifyError> {
    let Some(n) = prefs.notification_for(event) else {
        return Ok(None);
    };
    notifier.show(&n)?;
    Ok(Some(n))
}

/// Real desktop notifications through `notify-rust`: the notification centre on macOS,
/// `org.freedesktop.Notifications` on the session D-Bus on Linux and the BSDs.
///
/// [`Notifier::show`] blocks until the notification service has answered (a D-Bus round trip
/// on Linux); from async code, call it in `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct DesktopNotifier {
    /// The application name the notification service shows.
    pub app_name: String,
    /// How long low and normal notifications stay; critical ones stay until dismissed. Only
    /// notification services that honour a timeout use it (macOS does not).
    pub timeout: Duration,
}

impl Default for DesktopNotifier {
    fn default() -> Self {
        DesktopNotifier {
            app_name: "Backstop".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl DesktopNotifier {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Notifier for DesktopNotifier {
    fn show(&self, n: &Notification) -> Result<(), NotifyError> {
        let mut desktop = notify_rust::Notification::new();
        desktop
            .appname(&self.app_name)
            .summary(&n.title)
            .body(&n.body)
            .timeout(match n.urgency {
                Urgency::Critical => notify_rust::Timeout::Never,
                Urgency::Low | Urgency::Normal => notify_rust::Timeout::from(self.timeout),
            });
        // On macOS notify-rust has no urgency (without its preview features).
        #[cfg(not(target_os = "macos"))]
        desktop.urgency(match n.urgency {
            Urgency::Low => notify_rust::Urgency::Low,
            Urgency::Normal => notify_rust::Urgency::Normal,
            Urgency::Critical => notify_rust::Urgency::Critical,
        });
        desktop
            .show()
            .map(drop)
            .map_err(|e| NotifyError::Desktop(e.to_string()))
    }
}

/// Keeps what it is asked to show, for tests.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    shown: Mutex<Vec<Notification>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything shown so far, oldest first.
    pub fn shown(&self) -> Vec<Notification> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Notifier for RecordingNotifier {
    fn show(&self, n: &Notification) -> Result<(), NotifyError> {
        self.shown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
