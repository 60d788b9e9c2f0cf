//! The snapshot service's core: creates, lists and adopts snapshots of configured shares through
//! the zfs layer, one request at a time per share (different shares in parallel), and records an
//! event for every change. The tonic layer only translates to and from this.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::Mutex;

use crate::events::{EventKind, EventLog, EventLogError, NewEvent, Severity};
use crate::retention::RetentionPolicy;
use crate::share::{Share, ShareSpace};
use crate::snapshot::{
    self, BackupId, InvalidInput, LISTED_PROPS, Origin, Snapshot, Suffix, creation_props,
    name_candidates, parse_seed_name,
};
use crate::zfs::runner::FailureKind;
use crate::zfs::{RunError, Runner, ZfsCommands, ZfsInfo, parse_get, props};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("share '{name}' is not configured on {server} (configured: {})", configured_list(.configured))]
    UnknownShare {
        name: String,
        server: String,
        configured: Vec<String>,
    },
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error(
        "dataset '{dataset}' of share '{share}' does not exist; create it or fix the share's dataset in the configuration"
    )]
    MissingDataset { share: String, dataset: String },
    #[error("zfs failed: {0}")]
    Zfs(#[from] RunError),
    #[error("no free snapshot name for {0} (tried 100); use a suffix")]
    NoFreeName(String),
    #[error("zfs created {0} but it cannot be read back")]
    Vanished(String),
    #[error("snapshot '{name}' not found on share '{share}' (see `backstop list {share}`)")]
    SnapshotNotFound { share: String, name: String },
    #[error(
        "snapshot '{name}' of share '{share}' was not made by Backstop; Backstop never prunes or changes it (adopt it first if it should be managed)"
    )]
    NotManaged { share: String, name: String },
    #[error(transparent)]
    Events(#[from] EventLogError),
}

/// Whether two backup ids name the same backup: equal, or the same backup stamp under another
/// prefix (the agent's destination id, the bundle watcher's `tm/`).
fn same_backup(a: &str, b: &str) -> bool {
    use crate::verification::stamp_of;
    a == b || stamp_of(a).is_some_and(|s| stamp_of(b) == Some(s))
}

/// The snapshot recorded for backup `id` in an index of backup id -> snapshot name.
fn find_backup<'a>(index: &'a HashMap<String, String>, id: &str) -> Option<&'a String> {
    index.get(id).or_else(|| {
        index
            .iter()
            .find(|(k, _)| same_backup(k, id))
            .map(|(_, v)| v)
    })
}

fn configured_list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// A request to snapshot a share, before validation.
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub share: String,
    pub suffix: Option<String>,
    pub backup_time: Option<Timestamp>,
    pub backup_id: Option<String>,
    pub origin: Option<Origin>,
}

/// A backup the Mac agent saw fail or be cancelled.
#[derive(Clone, Debug)]
pub struct BackupReport {
    pub share: String,
    pub outcome: String,
    pub code: Option<i32>,
    pub reason: String,
    pub backup: String,
    pub explanation: String,
}

#[derive(Clone, Debug)]
pub struct Listing {
    pub share: Share,
    pub space: ShareSpace,
    /// Oldest first.
    pub snapshots: Vec<Snapshot>,
}

#[derive(Clone, Debug)]
pub struct Adoption {
    pub adopted: Vec<Snapshot>,
    pub skipped: Vec<String>,
}

/// A configured share with its retention policy and its lock.
pub(crate) struct ShareEntry {
    pub(crate) share: Share,
    pub(crate) policy: RetentionPolicy,
    pub(crate) state: Mutex<ShareState>,
}

/// Per-share state, behind the share's lock.
#[derive(Default)]
pub(crate) struct ShareState {
    /// Where the dataset is mounted (None: not mounted), read once.
    root: Option<Option<std::path::PathBuf>>,
    /// backup id -> snapshot name, for idempotent creation. Only backstopd writes backup ids, so
    /// this is complete once loaded; a hit is checked against zfs before it is trusted.
    backup_ids: Option<HashMap<String, String>>,
}

impl ShareState {
    /// Forgets what was read about the dataset (after a restore swapped it).
    pub(crate) fn forget(&mut self) {
        *self = ShareState::default();
    }
}

pub struct Snapshotter {
    pub(crate) runner: Arc<dyn Runner>,
    pub(crate) cmds: ZfsCommands,
    pub(crate) info: ZfsInfo,
    pub(crate) events: Arc<EventLog>,
    tz: TimeZone,
    server_name: String,
    shares: BTreeMap<String, ShareEntry>,
}

impl Snapshotter {
    pub fn new(
        runner: Arc<dyn Runner>,
        cmds: ZfsCommands,
        info: ZfsInfo,
        events: Arc<EventLog>,
        tz: TimeZone,
        server_name: String,
        shares: Vec<(Share, RetentionPolicy)>,
    ) -> Snapshotter {
        Snapshotter {
            runner,
            cmds,
            info,
            events,
            tz,
            server_name,
            shares: shares
                .into_iter()
                .map(|(share, policy)| {
                    let entry = ShareEntry {
                        share,
                        policy,
                        state: Mutex::new(ShareState::default()),
                    };
                    (entry.share.name.clone(), entry)
                })
                .collect(),
        }
    }

    pub fn zfs_info(&self) -> &ZfsInfo {
        &self.info
    }

    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    pub fn shares(&self) -> impl Iterator<Item = &Share> {
        self.shares.values().map(|e| &e.share)
    }

    pub(crate) fn entry(&self, name: &str) -> Result<&ShareEntry, Error> {
        self.shares.get(name).ok_or_else(|| Error::UnknownShare {
            name: name.escape_debug().to_string(),
            server: self.server_name.clone(),
            configured: self.shares.keys().cloned().collect(),
        })
    }

    pub(crate) fn share(&self, name: &str) -> Result<(&Share, &Mutex<ShareState>), Error> {
        self.entry(name).map(|e| (&e.share, &e.state))
    }

    pub(crate) fn zfs_error(share: &Share, e: RunError) -> Error {
        if e.kind() == FailureKind::DoesNotExist && e.stderr().contains(&share.dataset) {
            Error::MissingDataset {
                share: share.name.clone(),
                dataset: share.dataset.clone(),
            }
        } else {
            Error::Zfs(e)
        }
    }

    /// Reads the share's dataset and its snapshots in one `zfs get`.
    /// The directory the share's dataset is mounted on, if it is mounted.
    async fn mount_root(&self, share: &Share) -> Option<std::path::PathBuf> {
        match self.mount_point(&share.dataset).await {
            Ok(Some((root, true))) => Some(root),
            _ => None,
        }
    }

    /// The dataset's mount point and whether it is mounted, read from zfs now (not cached: a
    /// restore may have swapped or remounted it). None: no mount point (`none`, `legacy`).
    pub(crate) async fn mount_point(
        &self,
        dataset: &str,
    ) -> Result<Option<(std::path::PathBuf, bool)>, RunError> {
        let argv = self.cmds.get(&["mountpoint", "mounted"], dataset, None);
        let out = self.runner.run(&argv).await?;
        let parsed = parse_get(&out.stdout);
        let Some(p) = parsed.objects.get(dataset) else {
            return Ok(None);
        };
        Ok(p.value("mountpoint")
            .filter(|m| m.starts_with('/'))
            .map(|m| {
                (
                    std::path::PathBuf::from(m),
                    p.value("mounted") == Some("yes"),
                )
            }))
    }

    pub(crate) async fn read(&self, share: &Share) -> Result<Listing, Error> {
        let argv = self.cmds.get(LISTED_PROPS, &share.dataset, Some(1));
        let out = self
            .runner
            .run(&argv)
            .await
            .map_err(|e| Self::zfs_error(share, e))?;
        let parsed = parse_get(&out.stdout);
        for (line, text) in &parsed.unreadable {
            tracing::warn!(share = %share.name, "zfs get: line {line} unreadable: {text:?}");
        }
        let space = parsed
            .objects
            .get(&share.dataset)
            .map(|p| ShareSpace {
                used: p.number("used").unwrap_or(0),
                used_by_snapshots: p.number("usedbysnapshots").unwrap_or(0),
                available: p.number("available").unwrap_or(0),
                referenced: p.number("referenced").unwrap_or(0),
            })
            .unwrap_or_default();
        let mut snapshots: Vec<Snapshot> = parsed
            .objects
            .iter()
            .filter_map(|(name, p)| Snapshot::from_props(share, name, p))
            .collect();
        snapshots.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(Listing {
            share: share.clone(),
            space,
            snapshots,
        })
    }

    pub(crate) async fn read_one(
        &self,
        share: &Share,
        full_name: &str,
    ) -> Result<Option<Snapshot>, Error> {
        let argv = self.cmds.get(LISTED_PROPS, full_name, None);
        match self.runner.run(&argv).await {
            Ok(out) => Ok(parse_get(&out.stdout)
                .objects
                .get(full_name)
                .and_then(|p| Snapshot::from_props(share, full_name, p))),
            Err(e) if e.kind() == FailureKind::DoesNotExist => Ok(None),
            Err(e) => Err(Self::zfs_error(share, e)),
        }
    }

    fn index(listing: &Listing) -> HashMap<String, String> {
        listing
            .snapshots
            .iter()
            .filter_map(|s| Some((s.backup_id.clone()?, s.name.clone())))
            .collect()
    }

    /// The share's mount point, if its dataset is mounted.
    pub async fn share_root(&self, share: &str) -> Result<Option<std::path::PathBuf>, Error> {
        let (share, state) = self.share(share)?;
        let mut state = state.lock().await;
        Ok(self.cached_root(share, &mut state).await)
    }

    /// The share's mount point, read from zfs once and then remembered.
    async fn cached_root(
        &self,
        share: &Share,
        state: &mut ShareState,
    ) -> Option<std::path::PathBuf> {
        if state.root.is_none() {
            state.root = Some(self.mount_root(share).await);
        }
        state.root.clone().flatten()
    }

    pub async fn list(&self, share: &str) -> Result<Listing, Error> {
        let (share, state) = self.share(share)?;
        let mut state = state.lock().await;
        let listing = self.read(share).await?;
        state.backup_ids = Some(Self::index(&listing));
        Ok(listing)
    }

    /// Creates a snapshot; returns it and whether it was created (false: the snapshot already
    /// taken for this backup id). Nothing runs unless every input is valid.
    pub async fn create(&self, req: CreateRequest) -> Result<(Snapshot, bool), Error> {
        let (share, state) = self.share(&req.share)?;
        let suffix = req.suffix.as_deref().map(Suffix::parse).transpose()?;
        let backup_id = req.backup_id.as_deref().map(BackupId::parse).transpose()?;
        let now = Timestamp::now();
        let backup_time = req.backup_time.unwrap_or(now);
        snapshot::check_backup_time(backup_time, now)?;
        let origin = req.origin.unwrap_or(Origin::Manual);

        let mut state = state.lock().await;
        if let Some(id) = &backup_id {
            if state.backup_ids.is_none() {
                let listing = self.read(share).await?;
                state.backup_ids = Some(Self::index(&listing));
            }
            let known = state
                .backup_ids
                .as_ref()
                .and_then(|m| find_backup(m, id.as_str()))
                .cloned();
            if let Some(name) = known {
                let full = format!("{}@{name}", share.dataset);
                match self.read_one(share, &full).await? {
                    Some(s)
                        if s.backup_id
                            .as_deref()
                            .is_some_and(|b| same_backup(b, id.as_str())) =>
                    {
                        return Ok((s, false));
                    }
                    // Destroyed or renamed behind our back: forget and look again.
                    _ => {
                        let listing = self.read(share).await?;
                        let index = Self::index(&listing);
                        let found = find_backup(&index, id.as_str()).cloned();
                        state.backup_ids = Some(index);
                        if let Some(name) = found {
                            let s = listing.snapshots.into_iter().find(|s| s.name == name);
                            return s.map(|s| (s, false)).ok_or(Error::Vanished(full));
                        }
                    }
                }
            }
        }

        let stamp = backup_id
            .as_ref()
            .and_then(|id| crate::verification::stamp_of(id.as_str()));
        let verification = match self.cached_root(share, &mut state).await {
            Some(root) => crate::verification::mark_share(&root, stamp),
            None => crate::snapshot::Verification::Unknown,
        };
        let props = creation_props(backup_time, origin, backup_id.as_ref(), verification);
        let mut created = None;
        for name in name_candidates(backup_time, &self.tz, suffix.as_ref()) {
            let full = format!("{}@{name}", share.dataset);
            match self.runner.run(&self.cmds.snapshot(&full, &props)).await {
                Ok(_) => {
                    created = Some(full);
                    break;
                }
                Err(e) if e.kind() == FailureKind::AlreadyExists => continue,
                Err(e) => return Err(Self::zfs_error(share, e)),
            }
        }
        let full = created.ok_or_else(|| Error::NoFreeName(share.dataset.clone()))?;
        let snap = self
            .read_one(share, &full)
            .await?
            .ok_or_else(|| Error::Vanished(full.clone()))?;
        if let (Some(id), Some(map)) = (&backup_id, state.backup_ids.as_mut()) {
            map.insert(id.as_str().to_string(), snap.name.clone());
        }
        drop(state);

        let what = match origin {
            Origin::Backup => "after a Time Machine backup",
            Origin::Manual | Origin::Adopted => "on request",
        };
        self.events.append(NewEvent {
            severity: Severity::Info,
            share: Some(share.name.clone()),
            summary: format!("{}: snapshot {} taken {what}", share.name, snap.name),
            kind: EventKind::SnapshotCreated {
                snapshot: snap.clone(),
            },
        })?;
        Ok((snap, true))
    }

    /// Records a failed or cancelled backup as an event (nothing is snapshotted). The texts come
    /// from a client: bounded and checked before they reach the log.
    pub fn report_backup(&self, r: BackupReport) -> Result<crate::events::Event, Error> {
        let (share, _) = self.share(&r.share)?;
        let failed = match r.outcome.as_str() {
            "failed" => true,
            "cancelled" => false,
            other => {
                return Err(InvalidInput(format!(
                    "invalid outcome '{}': report \"failed\" or \"cancelled\" (completed backups are snapshotted)",
                    other.escape_debug()
                ))
                .into());
            }
        };
        let clean = |s: &str, max: usize| -> Result<String, Error> {
            if s.len() > max || s.chars().any(char::is_control) {
                return Err(InvalidInput(format!(
                    "invalid backup report: a text is longer than {max} bytes or has control characters"
                ))
                .into());
            }
            Ok(s.to_string())
        };
        let reason = clean(&r.reason, 128)?;
        let backup = clean(&r.backup, 128)?;
        let explanation = clean(&r.explanation, 300)?;
        let summary = if failed {
            let why = if explanation.is_empty() {
                reason.clone()
            } else {
                explanation.clone()
            };
            format!(
                "{}: Time Machine backup failed{}",
                share.name,
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            )
        } else {
            format!("{}: Time Machine backup cancelled", share.name)
        };
        Ok(self.events.append(NewEvent {
            severity: if failed {
                Severity::Warning
            } else {
                Severity::Info
            },
            share: Some(share.name.clone()),
            summary,
            kind: EventKind::BackupEnded {
                outcome: r.outcome,
                code: r.code,
                reason,
                backup,
            },
        })?)
    }

    /// Marks the share's unmanaged snapshots named in the hand-written script's format as
    /// managed, with the backup time read from the name. Properties are set so that a snapshot
    /// is only ever marked managed after its backup time is in place.
    pub async fn adopt(&self, share: &str) -> Result<Adoption, Error> {
        let (share, state) = self.share(share)?;
        let _state = state.lock().await;
        let listing = self.read(share).await?;
        let mut chosen = Vec::new();
        let mut skipped = Vec::new();
        for s in listing.snapshots.iter().filter(|s| !s.managed) {
            match parse_seed_name(&s.name, &self.tz) {
                Some(t) => chosen.push((s.full_name.clone(), t)),
                None => skipped.push(s.name.clone()),
            }
        }
        if chosen.is_empty() {
            return Ok(Adoption {
                adopted: Vec::new(),
                skipped,
            });
        }
        let run = |argv| async move {
            self.runner
                .run(&argv)
                .await
                .map_err(|e| Self::zfs_error(share, e))
        };
        for (full, t) in &chosen {
            run(self.cmds.set(
                props::BACKUP_TIME,
                &t.as_second().to_string(),
                std::slice::from_ref(full),
            ))
            .await?;
        }
        let names: Vec<String> = chosen.iter().map(|(f, _)| f.clone()).collect();
        for batch in names.chunks(200) {
            run(self
                .cmds
                .set(props::ORIGIN, Origin::Adopted.as_prop(), batch))
            .await?;
            run(self.cmds.set(props::MANAGED, "on", batch)).await?;
        }
        let after = self.read(share).await?;
        let adopted: Vec<Snapshot> = after
            .snapshots
            .into_iter()
            .filter(|s| s.managed && names.contains(&s.full_name))
            .collect();
        let short: Vec<String> = adopted.iter().map(|s| s.name.clone()).collect();
        self.events.append(NewEvent {
            severity: Severity::Info,
            share: Some(share.name.clone()),
            summary: format!(
                "{}: adopted {} snapshot{} made before Backstop",
                share.name,
                short.len(),
                if short.len() == 1 { "" } else { "s" }
            ),
            kind: EventKind::SnapshotsAdopted { names: short },
        })?;
        Ok(Adoption { adopted, skipped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backup_under_several_ids() {
        assert!(same_backup("D/2026-06-14-145122", "D/2026-06-14-145122"));
        assert!(same_backup(
            "tm/2026-06-14-145122",
            "5F2C/2026-06-14-145122.backup"
        ));
        assert!(!same_backup("tm/2026-06-14-145122", "tm/2026-06-14-155240"));
        assert!(!same_backup("manual-a", "manual-b"));
        let index: HashMap<String, String> = [(
            "tm/2026-06-14-145122".to_string(),
            "20260614_0451".to_string(),
        )]
        .into();
        assert_eq!(
            find_backup(&index, "5F2C/2026-06-14-145122").map(String::as_str),
            Some("20260614_0451")
        );
        assert_eq!(find_backup(&index, "5F2C/2026-06-15-145122"), None);
    }
}
