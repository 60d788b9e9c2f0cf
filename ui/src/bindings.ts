// Generated from agent-mac/app/src/model.rs by ts-rs; do not edit.
// Regenerate: UPDATE_BINDINGS=1 cargo test -p backstop-app bindings

export type Action = { "kind": "get_state" } | { "kind": "acknowledge" } | { "kind": "snapshot_now", share: string | null, } | { "kind": "dashboard", share: string | null, } | { "kind": "plan_restore", share: string, to: string | null, } | { "kind": "restore", share: string, to: string, } | { "kind": "undo", share: string, } | { "kind": "scrub_now", pool: string | null, } | { "kind": "get_prefs" } | { "kind": "set_prefs", prefs: Prefs, } | { "kind": "pair", server: string, code: string, fingerprint: string, } | { "kind": "open", page: Page, share: string | null, to: string | null, } | { "kind": "menu" } | { "kind": "quit" };

export type Page = "dashboard" | "restore" | "preferences" | "menu";

export type Reply = { "kind": "state", state: AppState, } | { "kind": "done", message: string, } | { "kind": "dashboard", data: DashboardData, } | { "kind": "plan", plan: PlanView, } | { "kind": "restored", result: RestoreResult, } | { "kind": "prefs", prefs: Prefs, } | { "kind": "menu", items: Array<MenuItemView>, };

export type Navigate = { page: Page, share: string | null, to: string | null, };

export type TrayState = "ok" | "busy" | "attention";

export type AppState = { tray: TrayState, server: string, 
/**
 * Following the server's events.
 */
connected: boolean, connection_error: string | null, 
/**
 * What is in progress ("Restoring MattBookPro…").
 */
busy: string | null, 
/**
 * Why attention is needed, newest first.
 */
attention: Array<string>, 
/**
 * "Completed 2026-11-25 14:51" / "Failed …: reason".
 */
last_backup: string | null, last_snapshot: SnapshotRow | null, 
/**
 * Pool health in a few words.
 */
pool_health: string | null, shares: Array<string>, 
/**
 * The newest snapshots of the first share, newest first (the Restore ▸ submenu).
 */
recent: Array<SnapshotRow>, 
/**
 * Notifications shown, newest last (at most 50).
 */
notifications: Array<NotificationView>, };

export type NotificationView = { title: string, body: string, 
/**
 * "low", "normal", "critical".
 */
urgency: string, };

export type SnapshotRow = { name: string, share: string, 
/**
 * RFC 3339 (UTC); null for foreign snapshots.
 */
backup_time: string | null, created: string | null, used: number, referenced: number, 
/**
 * "good", "bad", "unknown".
 */
verification: string, 
/**
 * Why it is kept (from the retention plan), or what will happen to it.
 */
why: string, managed: boolean, };

export type DashboardData = { share: string, shares: Array<string>, dataset: string, snapshots: Array<SnapshotRow>, space: SpaceView, pools: Array<PoolView>, events: Array<EventView>, };

export type SpaceView = { used: number, used_by_snapshots: number, available: number, referenced: number, };

export type PoolView = { name: string, state: string, verdict: string, 
/**
 * "info", "warning", "critical".
 */
severity: string, scan: string, devices: Array<DeviceView>, errors: string, };

export type DeviceView = { name: string, depth: number, state: string, read: number, write: number, cksum: number, note: string | null, };

export type EventView = { cursor: number, at: string | null, severity: string, share: string | null, summary: string, };

export type PlanView = { operation: string, share: string, dataset: string, mode: string, target: string, 
/**
 * What is kept afterwards (undo puts it back).
 */
keeps: string | null, destroys: Array<string>, warnings: Array<string>, steps: Array<string>, };

export type RestoreProgress = { share: string, 
/**
 * 1-based.
 */
index: number, total: number, description: string, };

export type RestoreResult = { share: string, operation: string, summary: string, kept: string | null, millis: number, };

export type Prefs = { 
/**
 * backstopd's address; empty: from agent.toml, else 127.0.0.1:7461.
 */
server: string, 
/**
 * Notifications per severity.
 */
notify_info: boolean, notify_warning: boolean, notify_critical: boolean, start_at_login: boolean, 
/**
 * Read only: the destination → share mapping from agent.toml (`backstop init` writes it).
 */
destinations: Array<DestinationView>, 
/**
 * Read only: servers this Mac is paired with.
 */
paired: Array<string>, };

export type DestinationView = { id: string, name: string | null, server: string, share: string, };

export type MenuItemView = { 
/**
 * The menu id ("snapshot_now", "restore:SHARE:SNAP", …); empty for separators.
 */
id: string, label: string, enabled: boolean, 
/**
 * "Cmd+S"-style accelerator, when it has one.
 */
accelerator: string | null, 
/**
 * Items of a submenu.
 */
children: Array<MenuItemView>, separator: boolean, };

/** The events the app emits, by name. */
export type Events = {
  state: AppState;
  navigate: Navigate;
  "restore-progress": RestoreProgress;
  error: string;
};
