//! The state the tray shows, and how events change it. Pure: no I/O, unit-tested.

use backstop_agent_core::view::{SnapshotJson, local_minute, severity_name};
use backstop_proto::v1 as pb;
use pb::event::Kind;

use crate::model::{AppState, EventView, NotificationView, SnapshotRow, TrayState};

/// Events kept for the timeline.
pub const EVENTS_KEPT: usize = 200;
const NOTIFICATIONS_KEPT: usize = 50;

/// The app's live status: what [`AppState`] is built from.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub server: String,
    pub connected: bool,
    /// Set once a connection attempt failed (and cleared when one succeeds).
    pub connection_error: Option<String>,
    /// Operations in progress, by key ("restore:Matt"), with their words.
    pub busy: Vec<(String, String)>,
    /// Raised by warning and critical events; cleared by Acknowledge.
    pub event_attention: Vec<String>,
    /// Pools whose health is not fine (from the last health report), with their verdicts.
    pub health_attention: Vec<String>,
    pub last_backup: Option<String>,
    pub last_snapshot: Option<SnapshotRow>,
    pub pool_health: Option<String>,
    pub shares: Vec<String>,
    pub recent: Vec<SnapshotRow>,
    pub events: Vec<EventView>,
    pub notifications: Vec<NotificationView>,
    pub cursor: u64,
}

/// ok / busy / attention: attention wins, then busy.
pub fn tray_state(s: &Status) -> TrayState {
    if !s.event_attention.is_empty()
        || !s.health_attention.is_empty()
        || s.connection_error.is_some()
    {
        TrayState::Attention
    } else if !s.busy.is_empty() {
        TrayState::Busy
    } else {
        TrayState::Ok
    }
}

impl Status {
    pub fn view(&self) -> AppState {
        let mut attention: Vec<String> = Vec::new();
        if let Some(e) = &self.connection_error {
            attention.push(e.clone());
        }
        attention.extend(self.health_attention.iter().cloned());
        attention.extend(self.event_attention.iter().rev().cloned());
        AppState {
            tray: tray_state(self),
            server: self.server.clone(),
            connected: self.connected,
            connection_error: self.connection_error.clone(),
            busy: self.busy.first().map(|(_, w)| w.clone()),
            attention,
            last_backup: self.last_backup.clone(),
            last_snapshot: self.last_snapshot.clone(),
            pool_health: self.pool_health.clone(),
            shares: self.shares.clone(),
            recent: self.recent.clone(),
            notifications: self.notifications.clone(),
        }
    }

    pub fn start_busy(&mut self, key: &str, words: String) {
        self.busy.retain(|(k, _)| k != key);
        self.busy.push((key.to_string(), words));
    }

    pub fn end_busy(&mut self, key: &str) {
        self.busy.retain(|(k, _)| k != key);
    }

    pub fn notified(&mut self, n: &backstop_agent_core::notify::Notification) {
        self.notifications.push(NotificationView {
            title: n.title.clone(),
            body: n.body.clone(),
            urgency: format!("{:?}", n.urgency).to_lowercase(),
        });
        if self.notifications.len() > NOTIFICATIONS_KEPT {
            self.notifications.remove(0);
        }
    }

    /// One event from the server. `live`: it happened while the app ran (or while it was
    /// disconnected), so problems raise attention; backlog from before the start only fills the
    /// timeline and the status block.
    pub fn on_event(&mut self, e: &pb::Event, live: bool) {
        self.cursor = self.cursor.max(e.cursor);
        self.events.push(event_view(e));
        if self.events.len() > EVENTS_KEPT {
            self.events.remove(0);
        }
        let when = local_minute(e.at.as_ref(), &jiff::tz::TimeZone::system());
        match &e.kind {
            Some(Kind::SnapshotCreated(c)) => {
                if let Some(s) = &c.snapshot {
                    let row = snapshot_row(s, "");
                    self.recent
                        .retain(|r| r.name != row.name || r.share != row.share);
                    if self.shares.first().is_none_or(|f| *f == row.share) {
                        self.recent.insert(0, row.clone());
                        self.recent.truncate(5);
                    }
                    self.last_snapshot = Some(row);
                }
            }
            Some(Kind::BackupEnded(b)) => {
                self.last_backup = Some(match b.outcome.as_str() {
                    "completed" => format!("Completed {when}"),
                    "failed" => format!("Failed {when}"),
                    other => format!("{} {when}", capitalized(other)),
                });
            }
            Some(Kind::PoolHealthChanged(_)) => {
                self.pool_health = Some(e.summary.clone());
            }
            _ => {}
        }
        let bad = matches!(e.severity(), pb::Severity::Warning | pb::Severity::Critical);
        if bad && live {
            self.event_attention.push(e.summary.clone());
            if self.event_attention.len() > 20 {
                self.event_attention.remove(0);
            }
        }
    }

    /// A fresh health report: the pools' verdicts in a few words; unhealthy pools need attention.
    pub fn on_health(&mut self, r: &pb::HealthReport) {
        self.health_attention = r
            .pools
            .iter()
            .filter(|p| {
                p.severity() != pb::Severity::Info && p.severity() != pb::Severity::Unspecified
            })
            .map(|p| format!("{}: {}", p.name, p.verdict))
            .collect();
        self.pool_health = Some(if r.pools.is_empty() {
            "no pools".into()
        } else {
            r.pools
                .iter()
                .map(|p| format!("{}: {}", p.name, p.verdict))
                .collect::<Vec<_>>()
                .join("; ")
        });
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn event_view(e: &pb::Event) -> EventView {
    let at =
        e.at.as_ref()
            .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    EventView {
        cursor: e.cursor,
        at,
        severity: severity_name(e.severity()).to_string(),
        share: (!e.share.is_empty()).then(|| e.share.clone()),
        summary: e.summary.clone(),
    }
}

pub fn snapshot_row(s: &pb::Snapshot, why: &str) -> SnapshotRow {
    let j = SnapshotJson::from(s);
    SnapshotRow {
        name: j.name,
        share: j.share,
        backup_time: j.backup_time,
        created: j.created,
        used: j.used,
        referenced: j.referenced,
        verification: j.verification.to_string(),
        why: why.to_string(),
        managed: j.managed,
    }
}

/// The snapshot a restore goes back to by default: the newest good one, else the newest.
/// `snapshots` in any order; foreign ones are never proposed.
pub fn default_target(snapshots: &[SnapshotRow]) -> Option<&SnapshotRow> {
    let key = |s: &&SnapshotRow| s.backup_time.clone().or(s.created.clone());
    let managed = || snapshots.iter().filter(|s| s.managed);
    managed()
        .filter(|s| s.verification == "good")
        .max_by_key(key)
        .or_else(|| managed().max_by_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(severity: pb::Severity, summary: &str, kind: Kind) -> pb::Event {
        pb::Event {
            cursor: 7,
            at: None,
            severity: severity as i32,
            share: "Matt".into(),
            summary: summary.into(),
            kind: Some(kind),
        }
    }

    fn pool_error() -> pb::Event {
        event(
            pb::Severity::Warning,
            "tank: disk sdb has 3 checksum errors",
            Kind::PoolHealthChanged(pb::PoolHealthChanged {
                pool: "tank".into(),
                device: "sdb".into(),
                change: "errors_rose".into(),
                state: "ONLINE".into(),
                cksum: 3,
                ..Default::default()
            }),
        )
    }

    #[test]
    fn a_live_pool_error_needs_attention_until_acknowledged() {
        let mut s = Status::default();
        assert_eq!(tray_state(&s), TrayState::Ok);
        s.on_event(&pool_error(), true);
        assert_eq!(tray_state(&s), TrayState::Attention);
        assert_eq!(
            s.view().attention,
            vec!["tank: disk sdb has 3 checksum errors"]
        );
        assert_eq!(s.cursor, 7);
        s.event_attention.clear();
        assert_eq!(tray_state(&s), TrayState::Ok);
    }

    #[test]
    fn backlog_fills_the_timeline_without_raising_attention() {
        let mut s = Status::default();
        s.on_event(&pool_error(), false);
        assert_eq!(tray_state(&s), TrayState::Ok);
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].severity, "warning");
    }

    #[test]
    fn attention_wins_over_busy_and_busy_over_ok() {
        let mut s = Status::default();
        s.start_busy("restore:Matt", "Restoring Matt…".into());
        assert_eq!(tray_state(&s), TrayState::Busy);
        assert_eq!(s.view().busy.as_deref(), Some("Restoring Matt…"));
        s.connection_error = Some("cannot reach backstopd".into());
        assert_eq!(tray_state(&s), TrayState::Attention);
        s.connection_error = None;
        s.end_busy("restore:Matt");
        assert_eq!(tray_state(&s), TrayState::Ok);
    }

    #[test]
    fn a_snapshot_event_becomes_the_last_snapshot_and_a_recent_one() {
        let mut s = Status {
            shares: vec!["Matt".into()],
            ..Default::default()
        };
        let snap = pb::Snapshot {
            name: "20261125_1000".into(),
            share: "Matt".into(),
            managed: true,
            verification: pb::Verification::Good as i32,
            ..Default::default()
        };
        s.on_event(
            &event(
                pb::Severity::Info,
                "Matt: snapshot taken",
                Kind::SnapshotCreated(pb::SnapshotCreated {
                    snapshot: Some(snap),
                }),
            ),
            true,
        );
        assert_eq!(tray_state(&s), TrayState::Ok);
        let last = s.last_snapshot.as_ref().unwrap();
        assert_eq!(last.name, "20261125_1000");
        assert_eq!(last.verification, "good");
        assert_eq!(s.recent.len(), 1);
    }

    #[test]
    fn the_default_target_is_the_newest_good_else_the_newest_managed() {
        let row = |name: &str, t: &str, v: &str, managed: bool| SnapshotRow {
            name: name.into(),
            share: "Matt".into(),
            backup_time: Some(t.into()),
            created: None,
            used: 0,
            referenced: 0,
            verification: v.into(),
            why: String::new(),
            managed,
        };
        let rows = vec![
            row("a", "2026-01-01T00:00:00Z", "good", true),
            row("b", "2026-01-02T00:00:00Z", "unknown", true),
            row("c", "2026-01-03T00:00:00Z", "good", false),
        ];
        assert_eq!(default_target(&rows).unwrap().name, "a");
        let rows = vec![
            row("a", "2026-01-01T00:00:00Z", "unknown", true),
            row("b", "2026-01-02T00:00:00Z", "bad", true),
        ];
        assert_eq!(default_target(&rows).unwrap().name, "b");
        assert!(default_target(&[]).is_none());
    }
}
