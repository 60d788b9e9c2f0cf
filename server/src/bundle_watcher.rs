//! Watches Time Machine's own record in each share's bundle (polling the two plists' size and
//! modification time, which works on every OS and on FUSE; illumos has no inotify anyway):
//! - when SnapshotHistory gains an entry and the records have been quiet for `quiet_seconds`,
//!   the backup is finished: it is snapshotted (unless an agent already asked for that backup:
//!   the server makes one snapshot per backup stamp), so a Mac without the agent still gets
//!   post-backup snapshots;
//! - when MachineID's VerificationState turns non-zero, a critical event names the newest
//!   snapshot marked good.
//!
//! A record that cannot be read (mid-write, damaged, hostile) changes nothing and is read again
//! on its next change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::bundle::{self, HistoryEntry, MachineId, Record, SnapshotHistory, VerificationStatus};
use crate::config::BundleConfig;
use crate::events::{EventKind, NewEvent, Severity};
use crate::snapshot::{Origin, Verification};
use crate::snapshotter::{CreateRequest, Snapshotter};
use crate::verification::read_record as read;

type Signature = Option<(SystemTime, u64)>;

fn signature(path: &Path) -> Signature {
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_file()
        .then(|| (m.modified().ok(), m.len()))
        .and_then(|(t, l)| Some((t?, l)))
}

/// What is known of one bundle.
#[derive(Default)]
struct Watched {
    history_sig: Signature,
    history: Option<SnapshotHistory>,
    machine_sig: Signature,
    verification: Option<VerificationStatus>,
    /// Backups seen finishing, waiting for the records to be quiet.
    pending: Vec<HistoryEntry>,
    last_change: Option<Instant>,
}

pub struct BundleWatcher {
    core: Arc<Snapshotter>,
    config: BundleConfig,
    shares: Vec<String>,
}

impl BundleWatcher {
    pub fn new(core: Arc<Snapshotter>, config: BundleConfig) -> BundleWatcher {
        let shares = core.shares().map(|s| s.name.clone()).collect();
        BundleWatcher {
            core,
            config,
            shares,
        }
    }

    pub async fn run(self) {
        let mut known: HashMap<(String, String), Watched> = HashMap::new();
        let every = Duration::from_secs(self.config.poll_seconds);
        loop {
            for share in &self.shares {
                let root = match self.core.share_root(share).await {
                    Ok(Some(root)) => root,
                    _ => continue,
                };
                let names: Vec<String> = match std::fs::read_dir(&root) {
                    Ok(dir) => dir
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect(),
                    Err(_) => continue,
                };
                for b in bundle::find_bundles(&names) {
                    let w = known.entry((share.clone(), b.clone())).or_default();
                    self.tick(share, &root, &b, w).await;
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn tick(&self, share: &str, root: &Path, b: &str, w: &mut Watched) {
        let Ok(paths) = bundle::bundle_paths(b) else {
            return;
        };
        let history_path: PathBuf = root.join(paths.record(Record::SnapshotHistory));
        let machine_path: PathBuf = root.join(paths.record(Record::MachineId));

        let sig = signature(&history_path);
        if sig != w.history_sig {
            w.last_change = Some(Instant::now());
            match read(&history_path).map(|bytes| SnapshotHistory::parse(&bytes)) {
                Some(Ok(now)) => {
                    if let Some(before) = &w.history {
                        if now.is_reset_from(before) {
                            tracing::info!(%share, bundle = b, "Time Machine started a new backup set");
                        }
                        let new: Vec<HistoryEntry> =
                            now.new_entries_since(before).into_iter().cloned().collect();
                        w.pending.extend(new);
                    }
                    w.history = Some(now);
                    w.history_sig = sig;
                }
                // Partial or unreadable: keep the last good view and read it again next tick.
                Some(Err(e)) => {
                    tracing::debug!(%share, bundle = b, "SnapshotHistory not readable yet: {e}")
                }
                None => w.history_sig = sig,
            }
        }

        let sig = signature(&machine_path);
        if sig != w.machine_sig {
            w.last_change = Some(Instant::now());
            if let Some(Ok(m)) = read(&machine_path).map(|bytes| MachineId::parse(&bytes)) {
                let now = m.verification();
                let was_failed = matches!(w.verification, Some(VerificationStatus::Failed(_)));
                if let (Some(_), VerificationStatus::Failed(state)) = (&w.verification, &now)
                    && !was_failed
                {
                    self.verification_failed(share, b, *state).await;
                }
                w.verification = Some(now);
                w.machine_sig = sig;
            } else if !machine_path.exists() {
                w.machine_sig = sig;
            }
        }

        let quiet = w
            .last_change
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(self.config.quiet_seconds));
        if quiet && !w.pending.is_empty() {
            for entry in std::mem::take(&mut w.pending) {
                let Some(stamp) = entry.stamp() else {
                    continue;
                };
                let req = CreateRequest {
                    share: share.to_string(),
                    suffix: None,
                    backup_time: entry.completed,
                    backup_id: Some(format!("tm/{stamp}")),
                    origin: Some(Origin::Backup),
                };
                match self.core.create(req).await {
                    Ok((snap, created)) => tracing::info!(
                        %share, snapshot = %snap.name, created,
                        "backup {stamp} finished (seen in the bundle)"
                    ),
                    Err(e) => tracing::warn!(%share, "cannot snapshot backup {stamp}: {e}"),
                }
            }
        }
    }

    async fn verification_failed(&self, share: &str, b: &str, state: i64) {
        let newest_good = self.core.list(share).await.ok().and_then(|l| {
            l.snapshots
                .into_iter()
                .filter(|s| s.managed && s.verification == Verification::Good)
                .max_by_key(|s| s.backup_time.unwrap_or(s.created))
        });
        let way_back = match &newest_good {
            Some(s) => {
                let t = s.backup_time.unwrap_or(s.created);
                let days = (jiff::Timestamp::now() - t).as_hours() / 24;
                format!(
                    "newest good snapshot {} from {}; restore?",
                    s.name,
                    match days {
                        0 => "today".to_string(),
                        1 => "yesterday".to_string(),
                        d => format!("{d} days ago"),
                    }
                )
            }
            None => "no snapshot is marked good".to_string(),
        };
        let event = NewEvent {
            severity: Severity::Critical,
            share: Some(share.to_string()),
            summary: format!(
                "Time Machine on {share} reports its backup failed verification; {way_back}"
            ),
            kind: EventKind::VerificationFailed {
                bundle: b.to_string(),
                state,
                newest_good,
            },
        };
        if let Err(e) = self.core.events().append(event) {
            tracing::error!("cannot record the verification failure: {e}");
        }
    }
}
