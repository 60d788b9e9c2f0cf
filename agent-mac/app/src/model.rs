//! What crosses the IPC boundary: the one [`Action`] the window (and the tray menu) asks for, its
//! [`Reply`], and the events the app emits. TypeScript types are generated from these
//! (`ui/src/bindings.ts`, see `bindings.rs`), so the UI and Rust cannot drift.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Everything the app can be asked to do. Tray menu clicks and the window's `act` command both
/// become one of these and go through [`crate::actions::perform`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// The state the tray shows.
    GetState,
    /// The user has seen what needed attention (clears event-raised attention).
    Acknowledge,
    /// A manual snapshot of `share` (default: every share this Mac backs up to).
    SnapshotNow {
        share: Option<String>,
    },
    /// Everything the dashboard shows for `share` (default: the first).
    Dashboard {
        share: Option<String>,
    },
    /// The restore plan (changes nothing); `to` default: the newest good snapshot, else the newest.
    PlanRestore {
        share: String,
        to: Option<String>,
    },
    /// Restores `share` to snapshot `to` (clone-swap, undoable); progress comes as
    /// `restore-progress` events.
    Restore {
        share: String,
        to: String,
    },
    /// Undoes the last restore of `share`.
    Undo {
        share: String,
    },
    /// Scrubs the pool (default: every pool the server watches).
    ScrubNow {
        pool: Option<String>,
    },
    GetPrefs,
    SetPrefs {
        prefs: Prefs,
    },
    /// Pairs with a server (`backstopd pair` prints the code and the fingerprint).
    Pair {
        server: String,
        code: String,
        fingerprint: String,
    },
    /// Shows the window on a page (the wizard with `share` and `to` chosen, from Restore ▸).
    Open {
        page: Page,
        share: Option<String>,
        to: Option<String>,
    },
    /// The tray menu's items, as the tray shows them.
    Menu,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Page {
    Dashboard,
    Restore,
    Preferences,
    Menu,
}

/// What an [`Action`] answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    State { state: AppState },
    Done { message: String },
    Dashboard { data: DashboardData },
    Plan { plan: PlanView },
    Restored { result: RestoreResult },
    Prefs { prefs: Prefs },
    Menu { items: Vec<MenuItemView> },
}

/// The `navigate` event: the window is asked to show a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Navigate {
    pub page: Page,
    pub share: Option<String>,
    pub to: Option<String>,
}

/// The icon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
pub enum TrayState {
    /// Idle and healthy.
    #[default]
    Ok,
    /// A snapshot, scrub or restore in progress.
    Busy,
    /// A failed backup, a failed verification, pool errors, or the server unreachable.
    Attention,
}

/// What the tray and the window show about now. Emitted as the `state` event on every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, Default)]
pub struct AppState {
    pub tray: TrayState,
    pub server: String,
    /// Following the server's events.
    pub connected: bool,
    pub connection_error: Option<String>,
    /// What is in progress ("Restoring MattBookPro…").
    pub busy: Option<String>,
    /// Why attention is needed, newest first.
    pub attention: Vec<String>,
    /// "Completed 2026-11-25 14:51" / "Failed …: reason".
    pub last_backup: Option<String>,
    pub last_snapshot: Option<SnapshotRow>,
    /// Pool health in a few words.
    pub pool_health: Option<String>,
    pub shares: Vec<String>,
    /// The newest snapshots of the first share, newest first (the Restore ▸ submenu).
    pub recent: Vec<SnapshotRow>,
    /// Notifications shown, newest last (at most 50).
    pub notifications: Vec<NotificationView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct NotificationView {
    pub title: String,
    pub body: String,
    /// "low", "normal", "critical".
    pub urgency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SnapshotRow {
    pub name: String,
    pub share: String,
    /// RFC 3339 (UTC); null for foreign snapshots.
    pub backup_time: Option<String>,
    pub created: Option<String>,
    #[ts(type = "number")]
    pub used: u64,
    #[ts(type = "number")]
    pub referenced: u64,
    /// "good", "bad", "unknown".
    pub verification: String,
    /// Why it is kept (from the retention plan), or what will happen to it.
    pub why: String,
    pub managed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DashboardData {
    pub share: String,
    pub shares: Vec<String>,
    pub dataset: String,
    pub snapshots: Vec<SnapshotRow>,
    pub space: SpaceView,
    pub pools: Vec<PoolView>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SpaceView {
    #[ts(type = "number")]
    pub used: u64,
    #[ts(type = "number")]
    pub used_by_snapshots: u64,
    #[ts(type = "number")]
    pub available: u64,
    #[ts(type = "number")]
    pub referenced: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PoolView {
    pub name: String,
    pub state: String,
    pub verdict: String,
    /// "info", "warning", "critical".
    pub severity: String,
    pub scan: String,
    pub devices: Vec<DeviceView>,
    pub errors: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DeviceView {
    pub name: String,
    pub depth: u32,
    pub state: String,
    #[ts(type = "number")]
    pub read: u64,
    #[ts(type = "number")]
    pub write: u64,
    #[ts(type = "number")]
    pub cksum: u64,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EventView {
    #[ts(type = "number")]
    pub cursor: u64,
    pub at: Option<String>,
    pub severity: String,
    pub share: Option<String>,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PlanView {
    pub operation: String,
    pub share: String,
    pub dataset: String,
    pub mode: String,
    pub target: String,
    /// What is kept afterwards (undo puts it back).
    pub keeps: Option<String>,
    pub destroys: Vec<String>,
    pub warnings: Vec<String>,
    pub steps: Vec<String>,
}

/// A restore's progress: the `restore-progress` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RestoreProgress {
    pub share: String,
    /// 1-based.
    pub index: u32,
    pub total: u32,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RestoreResult {
    pub share: String,
    pub operation: String,
    pub summary: String,
    pub kept: Option<String>,
    #[ts(type = "number")]
    pub millis: u64,
}

/// The app's preferences (`app.json` in the config dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Prefs {
    /// backstopd's address; empty: from agent.toml, else 127.0.0.1:7461.
    #[serde(default)]
    pub server: String,
    /// Notifications per severity.
    #[serde(default = "yes")]
    pub notify_info: bool,
    #[serde(default = "yes")]
    pub notify_warning: bool,
    #[serde(default = "yes")]
    pub notify_critical: bool,
    #[serde(default)]
    pub start_at_login: bool,
    /// Read only: the destination → share mapping from agent.toml (`backstop init` writes it).
    #[serde(default)]
    pub destinations: Vec<DestinationView>,
    /// Read only: servers this Mac is paired with.
    #[serde(default)]
    pub paired: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            server: String::new(),
            notify_info: true,
            notify_warning: true,
            notify_critical: true,
            start_at_login: false,
            destinations: Vec::new(),
            paired: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DestinationView {
    pub id: String,
    pub name: Option<String>,
    pub server: String,
    pub share: String,
}

/// One tray menu item, as the tray builds it (and the window's menu page shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MenuItemView {
    /// The menu id ("snapshot_now", "restore:SHARE:SNAP", …); empty for separators.
    pub id: String,
    pub label: String,
    pub enabled: bool,
    /// "Cmd+S"-style accelerator, when it has one.
    pub accelerator: Option<String>,
    /// Items of a submenu.
    pub children: Vec<MenuItemView>,
    pub separator: bool,
}
