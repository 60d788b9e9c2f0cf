//! The one action function: every tray menu click and every `act` command from the window comes
//! here, and only here calls the agent core. Everything else in the app translates.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use backstop_agent_core::Client;
use backstop_agent_core::config::AgentConfig;
use backstop_agent_core::view::severity_name;
use backstop_proto::v1 as pb;
use tauri::{AppHandle, Emitter, Manager};

use crate::model::{
    Action, DashboardData, DestinationView, DeviceView, Navigate, Page, PlanView, PoolView, Prefs,
    Reply, RestoreProgress, RestoreResult, SpaceView,
};
use crate::state::{Status, default_target, snapshot_row};

/// What the action function works with.
pub struct Ctx {
    pub app: AppHandle,
    pub status: Mutex<Status>,
    /// From `--server` or BACKSTOP_SERVER: wins over the preferences.
    pub server_override: Option<String>,
    pub agent_config: Option<AgentConfig>,
    pub prefs: Mutex<Prefs>,
    pub prefs_path: PathBuf,
}

pub type Shared = Arc<Ctx>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ctx {
    /// The server in force: `--server`/BACKSTOP_SERVER, the preferences, agent.toml, the default.
    pub fn server(&self) -> String {
        if let Some(s) = &self.server_override {
            return s.clone();
        }
        let p = lock(&self.prefs).server.clone();
        if !p.trim().is_empty() {
            return p.trim().to_string();
        }
        self.agent_config
            .as_ref()
            .and_then(|c| c.servers().into_iter().next())
            .unwrap_or_else(backstop_agent_core::client::default_server)
    }

    pub fn with_status<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        let r = f(&mut lock(&self.status));
        self.changed();
        r
    }

    /// Tells the window and the tray that the state changed.
    pub fn changed(&self) {
        let view = lock(&self.status).view();
        let _ = self.app.emit("state", &view);
        crate::tray::refresh(&self.app, &view);
    }

    pub fn prefs(&self) -> Prefs {
        lock(&self.prefs).clone()
    }

    pub async fn client(&self) -> Result<Client, String> {
        Client::connect(&self.server())
            .await
            .map_err(|e| e.to_string())
    }

    /// The shares this Mac works with: agent.toml's on this server, else every share it serves.
    pub async fn shares(&self, client: &Client) -> Result<Vec<String>, String> {
        let info = client.server_info().await.map_err(|e| e.to_string())?;
        let all: Vec<String> = info.shares.iter().map(|s| s.name.clone()).collect();
        let mine = self
            .agent_config
            .as_ref()
            .map(|c| c.shares_on(&self.server()))
            .unwrap_or_default();
        let mine: Vec<String> = mine.into_iter().filter(|s| all.contains(s)).collect();
        Ok(if mine.is_empty() { all } else { mine })
    }

    /// Re-reads the newest snapshots of the first share (the Restore ▸ submenu).
    pub async fn refresh_recent(&self, client: &Client) -> Result<(), String> {
        let shares = self.shares(client).await?;
        let mut recent = Vec::new();
        if let Some(first) = shares.first() {
            let list = client
                .list_snapshots(first)
                .await
                .map_err(|e| e.to_string())?;
            recent = list
                .snapshots
                .iter()
                .filter(|s| s.managed)
                .map(|s| snapshot_row(s, ""))
                .collect();
            recent.sort_by(|a, b| {
                (b.backup_time.clone(), b.created.clone())
                    .cmp(&(a.backup_time.clone(), a.created.clone()))
            });
            recent.truncate(5);
        }
        self.with_status(|s| {
            s.shares = shares;
            s.recent = recent;
        });
        Ok(())
    }

    pub async fn refresh_health(&self, client: &Client) -> Result<pb::HealthReport, String> {
        let h = client.health().await.map_err(|e| e.to_string())?;
        self.with_status(|s| s.on_health(&h));
        Ok(h)
    }
}

/// Marks `key` busy while the future runs.
async fn busy<T>(
    ctx: &Ctx,
    key: &str,
    words: String,
    f: impl std::future::Future<Output = T>,
) -> T {
    ctx.with_status(|s| s.start_busy(key, words));
    let r = f.await;
    ctx.with_status(|s| s.end_busy(key));
    r
}

fn plan_view(p: &pb::RecoveryPlan) -> PlanView {
    PlanView {
        operation: p.operation.clone(),
        share: p.share.clone(),
        dataset: p.dataset.clone(),
        mode: p.mode.clone(),
        target: p.target.clone(),
        keeps: (!p.keeps.is_empty()).then(|| p.keeps.clone()),
        destroys: p.destroys.clone(),
        warnings: p.warnings.clone(),
        steps: p.steps.clone(),
    }
}

/// THE action function.
pub async fn perform(ctx: &Shared, action: Action) -> Result<Reply, String> {
    match action {
        Action::GetState => Ok(Reply::State {
            state: lock(&ctx.status).view(),
        }),
        Action::Acknowledge => {
            ctx.with_status(|s| s.event_attention.clear());
            Ok(Reply::State {
                state: lock(&ctx.status).view(),
            })
        }
        Action::Menu => Ok(Reply::Menu {
            items: crate::tray::menu_items(&lock(&ctx.status).view()),
        }),
        Action::SnapshotNow { share } => {
            let client = ctx.client().await?;
            let shares = match share {
                Some(s) => vec![s],
                None => ctx.shares(&client).await?,
            };
            if shares.is_empty() {
                return Err(format!("{} serves no shares", client.server()));
            }
            let made = busy(ctx, "snapshot", "Taking a snapshot…".into(), async {
                let mut made = Vec::new();
                for share in &shares {
                    let r = client
                        .create_snapshot(pb::CreateSnapshotRequest {
                            share: share.clone(),
                            suffix: None,
                            backup_time: None,
                            backup_id: None,
                            origin: pb::SnapshotOrigin::Manual as i32,
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    let name = r.snapshot.map(|s| s.name).unwrap_or_default();
                    made.push(format!("{share}@{name}"));
                }
                Ok::<_, String>(made)
            })
            .await?;
            let _ = ctx.refresh_recent(&client).await;
            Ok(Reply::Done {
                message: format!("Snapshot taken: {}", made.join(", ")),
            })
        }
        Action::Dashboard { share } => {
            let client = ctx.client().await?;
            let shares = ctx.shares(&client).await?;
            let share = share
                .or_else(|| shares.first().cloned())
                .ok_or_else(|| format!("{} serves no shares", client.server()))?;
            let list = client
                .list_snapshots(&share)
                .await
                .map_err(|e| e.to_string())?;
            // Why each is kept: the retention plan, without applying it.
            let plan = client
                .prune(pb::PruneRequest {
                    share: share.clone(),
                    dry_run: true,
                    as_of: None,
                })
                .await
                .ok();
            let why = |name: &str| {
                plan.as_ref()
                    .and_then(|p| p.plan.iter().find(|e| e.name == name))
                    .map(|e| e.reasons.join("; "))
                    .unwrap_or_default()
            };
            let mut snapshots: Vec<_> = list
                .snapshots
                .iter()
                .map(|s| snapshot_row(s, &why(&s.name)))
                .collect();
            snapshots.sort_by(|a, b| {
                (b.backup_time.clone(), b.created.clone())
                    .cmp(&(a.backup_time.clone(), a.created.clone()))
            });
            let health = ctx.refresh_health(&client).await.unwrap_or_default();
            let space = list.space.unwrap_or_default();
            let events = lock(&ctx.status)
                .events
                .iter()
                .rev()
                .filter(|e| e.share.as_deref().is_none_or(|s| s == share))
                .take(100)
                .cloned()
                .collect();
            Ok(Reply::Dashboard {
                data: DashboardData {
                    dataset: list.share.map(|s| s.dataset).unwrap_or_default(),
                    share,
                    shares,
                    snapshots,
                    space: SpaceView {
                        used: space.used,
                        used_by_snapshots: space.used_by_snapshots,
                        available: space.available,
                        referenced: space.referenced,
                    },
                    pools: health
                        .pools
                        .iter()
                        .map(|p| {
                            let scan = p.scan.clone().unwrap_or_default();
                            PoolView {
                                name: p.name.clone(),
                                state: p.state.clone(),
                                verdict: p.verdict.clone(),
                                severity: severity_name(p.severity()).to_string(),
                                scan: if scan.kind.is_empty() {
                                    "none".into()
                                } else {
                                    format!("{} {}", scan.kind, scan.state)
                                },
                                devices: p
                                    .devices
                                    .iter()
                                    .map(|d| DeviceView {
                                        name: d.name.clone(),
                                        depth: d.depth,
                                        state: d.state.clone(),
                                        read: d.read,
                                        write: d.write,
                                        cksum: d.cksum,
                                        note: (!d.note.is_empty()).then(|| d.note.clone()),
                                    })
                                    .collect(),
                                errors: p.errors.clone(),
                            }
                        })
                        .collect(),
                    events,
                },
            })
        }
        Action::PlanRestore { share, to } => {
            let client = ctx.client().await?;
            let to = match to {
                Some(t) => t,
                None => {
                    let list = client
                        .list_snapshots(&share)
                        .await
                        .map_err(|e| e.to_string())?;
                    let rows: Vec<_> = list.snapshots.iter().map(|s| snapshot_row(s, "")).collect();
                    default_target(&rows)
                        .map(|r| r.name.clone())
                        .ok_or_else(|| format!("share {share} has no snapshot to restore"))?
                }
            };
            let plan = client
                .plan_recovery(recovery_request(&share, "restore", &to))
                .await
                .map_err(|e| e.to_string())?;
            Ok(Reply::Plan {
                plan: plan_view(&plan),
            })
        }
        Action::Restore { share, to } => recover(ctx, &share, "restore", &to).await,
        Action::Undo { share } => recover(ctx, &share, "undo", "").await,
        Action::ScrubNow { pool } => {
            let client = ctx.client().await?;
            let pools = match pool {
                Some(p) => vec![p],
                None => ctx
                    .refresh_health(&client)
                    .await?
                    .pools
                    .into_iter()
                    .map(|p| p.name)
                    .collect(),
            };
            let mut said = Vec::new();
            for p in pools {
                let r = client.scrub(&p, false).await.map_err(|e| e.to_string())?;
                said.push(r.message);
            }
            Ok(Reply::Done {
                message: said.join("; "),
            })
        }
        Action::GetPrefs => Ok(Reply::Prefs {
            prefs: full_prefs(ctx),
        }),
        Action::SetPrefs { prefs } => {
            if prefs.start_at_login != crate::autostart::is_enabled() {
                crate::autostart::set(prefs.start_at_login)
                    .map_err(|e| format!("cannot change start at login: {e}"))?;
            }
            let keep = Prefs {
                destinations: Vec::new(),
                paired: Vec::new(),
                ..prefs
            };
            save_prefs(&ctx.prefs_path, &keep)?;
            let server_changed = lock(&ctx.prefs).server != keep.server;
            *lock(&ctx.prefs) = keep;
            if server_changed {
                ctx.with_status(|s| s.server = ctx.server());
                crate::follower::restart(ctx.clone());
            }
            Ok(Reply::Prefs {
                prefs: full_prefs(ctx),
            })
        }
        Action::Pair {
            server,
            code,
            fingerprint,
        } => {
            let name = hostname();
            let creds = backstop_agent_core::pairing::pair(&server, &code, &name, &fingerprint)
                .await
                .map_err(|e| e.to_string())?;
            backstop_agent_core::pairing::save(&backstop_agent_core::pairing::config_dir(), &creds)
                .map_err(|e| format!("cannot save the credentials: {e}"))?;
            Ok(Reply::Done {
                message: format!(
                    "Paired with {} as {} for {}",
                    creds.paired.server,
                    creds.paired.client_name,
                    creds.paired.shares.join(", ")
                ),
            })
        }
        Action::Open { page, share, to } => {
            if let Some(w) = ctx.app.get_webview_window("main") {
                let _ = w.show();
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
            let _ = ctx.app.emit("navigate", &Navigate { page, share, to });
            if page == Page::Dashboard {
                ctx.with_status(|s| s.event_attention.clear());
            }
            Ok(Reply::Done {
                message: "shown".into(),
            })
        }
        Action::Quit => {
            ctx.app.exit(0);
            Ok(Reply::Done {
                message: "bye".into(),
            })
        }
    }
}

fn recovery_request(share: &str, operation: &str, to: &str) -> pb::RecoveryRequest {
    pb::RecoveryRequest {
        share: share.to_string(),
        operation: operation.to_string(),
        to: to.to_string(),
        last_good: false,
        mode: "clone-swap".into(),
        force: false,
    }
}

/// Runs a restore or undo, emitting `restore-progress` for each step.
async fn recover(ctx: &Shared, share: &str, operation: &str, to: &str) -> Result<Reply, String> {
    use pb::recovery_update::Update;
    let client = ctx.client().await?;
    let words = if operation == "undo" {
        format!("Undoing the restore of {share}…")
    } else {
        format!("Restoring {share} to {to}…")
    };
    let result = busy(ctx, &format!("restore:{share}"), words, async {
        let mut updates = client
            .recover(recovery_request(share, operation, to))
            .await
            .map_err(|e| e.to_string())?;
        let mut result = None;
        while let Some(u) = updates.next().await.map_err(|e| e.to_string())? {
            match u {
                Update::Plan(_) => {}
                Update::Step(s) => {
                    let _ = ctx.app.emit(
                        "restore-progress",
                        &RestoreProgress {
                            share: share.to_string(),
                            index: s.index,
                            total: s.total,
                            description: s.description,
                        },
                    );
                }
                Update::Result(r) => result = Some(r),
            }
        }
        result.ok_or_else(|| "the server ended the restore without a result".to_string())
    })
    .await?;
    let _ = ctx.refresh_recent(&client).await;
    Ok(Reply::Restored {
        result: RestoreResult {
            share: share.to_string(),
            operation: operation.to_string(),
            summary: result.summary,
            kept: (!result.kept.is_empty()).then_some(result.kept),
            millis: result.millis,
        },
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "mac".into())
}

/// The preferences with the read-only parts filled in.
fn full_prefs(ctx: &Ctx) -> Prefs {
    let mut p = ctx.prefs();
    if p.server.is_empty() {
        p.server = ctx.server();
    }
    p.start_at_login = crate::autostart::is_enabled();
    p.destinations = ctx
        .agent_config
        .as_ref()
        .map(|c| {
            c.destinations
                .iter()
                .map(|d| DestinationView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    server: d.server.clone(),
                    share: d.share.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let base = backstop_agent_core::pairing::config_dir();
    p.paired = ctx
        .agent_config
        .as_ref()
        .map(|c| c.servers())
        .unwrap_or_default()
        .into_iter()
        .chain(std::iter::once(ctx.server()))
        .filter(|s| backstop_agent_core::pairing::load(&base, s).is_some())
        .collect();
    p.paired.dedup();
    p
}

pub fn load_prefs(path: &std::path::Path) -> Prefs {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_prefs(path: &std::path::Path, p: &Prefs) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(p).expect("prefs serialize"))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot save {}: {e}", path.display()))
}
