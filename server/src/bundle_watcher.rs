//! Watches Time Machine's own record in each share's bundle:
//! - when SnapshotHistory gains an entry and the records have been quiet for `quiet_seconds`,
//!   the backup is finished: it is snapshotted (unless an agent already asked for that backup:
//!   the server makes one snapshot per backup stamp), so a Mac without the agent still gets
//!   post-backup snapshots;
//! - when MachineID's VerificationState turns non-zero, a critical event names the newest
//!   snapshot marked good.
//!
//! A record that cannot be read (mid-write, damaged, hostile) changes nothing and is read again
//! on its next change.
//!
//! How changes are seen: the records are compared by size and modification time (a *scan*), and
//! a scan runs
//! - when a file system event arrives: notify's recommended watcher (inotify, FSEvents) watches
//!   each share's root and each bundle directory in it, non-recursively, so a new bundle (a new
//!   Mac) is seen too. Where the OS has no backend (illumos), where it is kqueue (which keeps
//!   the watched directories open, and so the share busy), or when the watcher cannot start or
//!   add a watch, notify's PollWatcher looks every `poll_seconds`. Events only wake the scan: a
//!   finished backup still needs `quiet_seconds` of quiet;
//! - every `poll_seconds` anyway (the safety poll): some changes make no event, e.g. a
//!   `zfs rollback` rewrites files under a live inotify watch without one (measured on
//!   zfs-fuse), and the PollWatcher only sees a modification time that moved forward by at
//!   least a second;
//! - when a quiet period ends.
//!
//! An inotify watch dies silently with the mount it was on (a dataset remounted or swapped
//! during a restore), and a remount may bring back the same device, inode and mount id numbers.
//! So on every change of the mount table (Linux tells; elsewhere the watchers follow paths) and
//! every minute, each share's mount point is read again from zfs, its watches are set up again
//! and it is scanned. A watch error does the same.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use notify::event::ModifyKind;
use notify::{
    Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher, WatcherKind,
};

use crate::bundle::{self, HistoryEntry, MachineId, Record, SnapshotHistory, VerificationStatus};
use crate::config::BundleConfig;
use crate::events::{EventKind as ServerEventKind, NewEvent, Severity};
use crate::snapshot::{Origin, Verification};
use crate::snapshotter::{CreateRequest, Snapshotter};
use crate::verification::read_record as read;

/// Events come in bursts (a rewrite is a create, writes, a close and a rename): after the first
/// one the scan waits this long, so one burst makes one scan.
const GATHER: Duration = Duration::from_millis(100);
/// How often each share's mount point is read again from zfs.
const RESOLVE_EVERY: Duration = Duration::from_secs(60);
/// The shortest time between two re-resolutions caused by mount changes or watch errors (a host
/// starting containers changes its mount table often).
const RESOLVE_GAP: Duration = Duration::from_secs(5);

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

/// Where a share is mounted, as last resolved.
struct ShareRoot {
    name: String,
    dataset: String,
    /// The dataset's mount point (None: not known yet, or none).
    path: Option<PathBuf>,
    mounted: bool,
    /// What was at `path` when it was resolved (mounted or not).
    id: Option<DirId>,
}

impl ShareRoot {
    /// Where the share's files are: its mount point, while mounted.
    fn root(&self) -> Option<&Path> {
        self.path.as_deref().filter(|_| self.mounted)
    }

    /// Whether another directory is at `path` than when it was resolved.
    fn moved(&self) -> bool {
        self.path.as_deref().is_some_and(|p| dir_id(p) != self.id)
    }
}

pub struct BundleWatcher {
    core: Arc<Snapshotter>,
    config: BundleConfig,
    /// Each share's name and dataset.
    shares: Vec<(String, String)>,
}

impl BundleWatcher {
    pub fn new(core: Arc<Snapshotter>, config: BundleConfig) -> BundleWatcher {
        let shares = core
            .shares()
            .map(|s| (s.name.clone(), s.dataset.clone()))
            .collect();
        BundleWatcher {
            core,
            config,
            shares,
        }
    }

    pub async fn run(self) {
        let poll = Duration::from_secs(self.config.poll_seconds.max(1));
        let quiet = Duration::from_secs(self.config.quiet_seconds);
        let wake = Arc::new(Wake::default());
        let mut watch = Watch::start(wake.clone(), poll);
        let mounts = MountChanges::open();
        let mut shares: Vec<ShareRoot> = self
            .shares
            .iter()
            .map(|(name, dataset)| ShareRoot {
                name: name.clone(),
                dataset: dataset.clone(),
                path: None,
                mounted: false,
                id: None,
            })
            .collect();
        let mut known: HashMap<(String, String), Watched> = HashMap::new();

        let start = Instant::now();
        let (mut next_scan, mut next_resolve, mut last_resolve) = (start, start, start);
        let mut quiet_due: Option<Instant> = None;
        let (mut woken, mut rewatch) = (false, false);
        loop {
            for dir in wake.take_gone() {
                watch.forget(&dir);
            }
            if wake.trouble.swap(false, Ordering::Relaxed) {
                rewatch = true;
            }
            if rewatch {
                next_resolve = next_resolve.min(last_resolve + RESOLVE_GAP);
            }
            let now = Instant::now();
            let resolve = now >= next_resolve;
            if resolve {
                last_resolve = now;
                next_resolve = now + RESOLVE_EVERY;
                // Without word of mount changes, a dead watch is only found by adding it again.
                rewatch |= mounts.is_none() && !watch.follows_paths();
            }
            // A share whose mount or watches were set up again is scanned too (below).
            let scan_all = woken || now >= next_scan || quiet_due.is_some_and(|t| now >= t);

            let mut due: Option<Instant> = None;
            for share in &mut shares {
                let moved = share.moved();
                let mut scan = scan_all;
                if resolve || moved {
                    scan |= self.resolve(share, &mut watch, rewatch || moved).await;
                }
                due = if scan {
                    earliest(due, self.scan(share, &mut watch, &mut known, quiet).await)
                } else {
                    earliest(due, quiet_due)
                };
            }
            if resolve {
                rewatch = false;
            }
            if scan_all {
                next_scan = Instant::now() + poll;
            }
            quiet_due = due;

            let until = [Some(next_scan), Some(next_resolve), quiet_due]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_scan);
            let mounts_changed;
            (woken, mounts_changed) = tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => (false, false),
                _ = wake.notify.notified() => (true, false),
                _ = MountChanges::changed(mounts.as_ref()) => (false, true),
            };
            rewatch |= mounts_changed;
            if woken || mounts_changed {
                tokio::time::sleep(GATHER).await;
            }
        }
    }

    /// Reads the share's mount point from zfs again; when it (or what is at it) changed, or
    /// `rewatch`, the share's watches are dropped, to be added again by its next scan. True when
    /// the share should be scanned now.
    async fn resolve(&self, share: &mut ShareRoot, watch: &mut Watch, rewatch: bool) -> bool {
        let (path, mounted) = match self.mount_point(&share.dataset).await {
            Ok(Some((path, mounted))) => (Some(path), mounted),
            Ok(None) => (None, false),
            Err(e) => {
                tracing::debug!(share = %share.name, "cannot read the mount point: {e}");
                return false;
            }
        };
        let id = path.as_deref().and_then(dir_id);
        let changed = (&path, mounted, id) != (&share.path, share.mounted, share.id);
        if !rewatch && !changed {
            return false;
        }
        if let Some(old) = share.root().map(Path::to_path_buf) {
            watch.forget_under(&old);
        }
        if changed && share.path.is_some() {
            tracing::info!(
                share = %share.name, mount_point = ?path, mounted,
                "the share's mount changed: watching it again"
            );
        } else if share.mounted {
            tracing::debug!(share = %share.name, "watching the share again");
        }
        share.path = path;
        share.mounted = mounted;
        share.id = id;
        true
    }

    /// The dataset's mount point and whether it is mounted, read from zfs now.
    async fn mount_point(&self, dataset: &str) -> Result<Option<(PathBuf, bool)>, String> {
        self.core
            .mount_point(dataset)
            .await
            .map_err(|e| e.to_string())
    }

    /// Looks at the share's bundles (watching their directories) and acts on what changed.
    /// Returns when the earliest quiet period among them ends.
    async fn scan(
        &self,
        share: &ShareRoot,
        watch: &mut Watch,
        known: &mut HashMap<(String, String), Watched>,
        quiet: Duration,
    ) -> Option<Instant> {
        let (Some(root), Some(root_id)) = (share.root(), share.id) else {
            return None;
        };
        watch.ensure(root, root_id);
        let names: Vec<String> = match std::fs::read_dir(root) {
            Ok(dir) => dir
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect(),
            Err(_) => return None,
        };
        let bundles = bundle::find_bundles(&names);
        watch.retain_under(root, |dir| {
            dir == root || bundles.iter().any(|b| root.join(b) == dir)
        });
        let mut due = None;
        for b in bundles {
            let dir = root.join(&b);
            let added = dir_id(&dir).is_some_and(|id| watch.ensure(&dir, id));
            let w = known.entry((share.name.clone(), b.clone())).or_default();
            self.tick(&share.name, root, &b, w).await;
            if added {
                // After the first tick: what the records said then is the baseline.
                tracing::info!(
                    share = %share.name, bundle = b, watcher = %watch.describe(),
                    "watching Time Machine's records"
                );
            }
            if !w.pending.is_empty() {
                due = earliest(due, w.last_change.map(|t| t + quiet));
            }
        }
        due
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
            kind: ServerEventKind::VerificationFailed {
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

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What was at a directory's path when it was watched: a watch follows the directory (the
/// inode), not the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirId {
    dev: u64,
    ino: u64,
}

/// The identity of the directory (not a symlink) at `path`.
fn dir_id(path: &Path) -> Option<DirId> {
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_dir().then(|| DirId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// Word of changes to this process's mount table (Linux: /proc/self/mountinfo polls as
/// "priority" on each mount and unmount).
struct MountChanges(tokio::io::unix::AsyncFd<std::fs::File>);

impl MountChanges {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn open() -> Option<MountChanges> {
        use tokio::io::Interest;
        let file = std::fs::File::open("/proc/self/mountinfo").ok()?;
        // SAFETY: the AsyncFd owns the File, which keeps its descriptor open and the same until
        // both are dropped; nothing else closes or replaces it.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                file,
                Interest::PRIORITY | Interest::ERROR,
            )
        };
        match fd {
            Ok(fd) => Some(MountChanges(fd)),
            Err(e) => {
                tracing::info!("mount changes cannot be followed: {}", e.into_parts().1);
                None
            }
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn open() -> Option<MountChanges> {
        None
    }

    /// Returns at the next change (never without `mounts`).
    async fn changed(mounts: Option<&MountChanges>) {
        let Some(MountChanges(fd)) = mounts else {
            return std::future::pending().await;
        };
        match fd
            .ready(tokio::io::Interest::PRIORITY | tokio::io::Interest::ERROR)
            .await
        {
            Ok(mut ready) => ready.clear_ready(),
            Err(_) => std::future::pending().await,
        }
    }
}

/// How notify's thread wakes the watcher's loop.
#[derive(Default)]
struct Wake {
    notify: tokio::sync::Notify,
    /// A watch reported an error: the shares are resolved and watched again.
    trouble: AtomicBool,
    /// Bundle directories removed or renamed: notify drops their watches, so they are watched
    /// again if they come back (a new directory may get the old one's inode number).
    gone: std::sync::Mutex<Vec<PathBuf>>,
}

impl Wake {
    fn take_gone(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.gone.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn handler(wake: Arc<Wake>) -> impl FnMut(notify::Result<Event>) + Send + 'static {
    move |result| match result {
        Ok(event) => {
            if matches!(
                event.kind,
                EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
            ) {
                let bundles = event.paths.iter().filter(|p| is_bundle(p)).cloned();
                wake.gone
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(bundles);
            }
            if wakes(&event) {
                wake.notify.notify_one();
            }
        }
        Err(e) => {
            tracing::debug!("file system watch: {e}");
            wake.trouble.store(true, Ordering::Relaxed);
            wake.notify.notify_one();
        }
    }
}

/// Whether an event may concern a bundle's records: not an access (reading the records makes
/// those), and about a record, a bundle directory or no path in particular (a rescan).
fn wakes(event: &Event) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.need_rescan() || event.paths.is_empty() || event.paths.iter().any(|p| relevant(p))
}

fn relevant(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|name| Record::from_file_name(name).is_some())
        || is_bundle(path)
}

fn is_bundle(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|name| !bundle::find_bundles(&[name.to_string()]).is_empty())
}

/// notify's watcher and the directories it watches (each non-recursively).
struct Watch {
    inner: Option<Box<dyn Watcher + Send>>,
    kind: Option<WatcherKind>,
    poll: Duration,
    wake: Arc<Wake>,
    watched: HashMap<PathBuf, DirId>,
}

impl Watch {
    /// The OS's own file system events where notify has a backend for it, else polling.
    fn start(wake: Arc<Wake>, poll: Duration) -> Watch {
        let mut w = Watch {
            inner: None,
            kind: None,
            poll,
            wake,
            watched: HashMap::new(),
        };
        let kind = RecommendedWatcher::kind();
        if kind == WatcherKind::PollWatcher {
            w.use_polling("notify has no file system events on this OS");
        } else if kind == WatcherKind::Kqueue {
            // kqueue holds every watched directory open, which keeps `zfs unmount` (a restore)
            // from unmounting the share, and sees a directory's entries change but not a
            // record rewritten in place.
            w.use_polling("kqueue would keep the shares busy");
        } else {
            match RecommendedWatcher::new(handler(w.wake.clone()), notify::Config::default()) {
                Ok(native) => {
                    w.inner = Some(Box::new(native));
                    w.kind = Some(kind);
                }
                Err(e) => w.use_polling(&format!("{kind:?} cannot start: {e}")),
            }
        }
        w
    }

    /// Replaces the watcher with notify's PollWatcher (every `poll`), watching the same
    /// directories.
    fn use_polling(&mut self, why: &str) {
        self.inner = None;
        let config = notify::Config::default().with_poll_interval(self.poll);
        match PollWatcher::new(handler(self.wake.clone()), config) {
            Ok(poller) => {
                tracing::info!("bundle watcher: {why}; polling every {:?}", self.poll);
                self.inner = Some(Box::new(poller));
                self.kind = Some(WatcherKind::PollWatcher);
            }
            Err(e) => {
                tracing::warn!("bundle watcher: {why}, and polling cannot start: {e}");
                self.kind = None;
            }
        }
        if let Some(inner) = &mut self.inner {
            for dir in self.watched.keys() {
                if let Err(e) = inner.watch(dir, RecursiveMode::NonRecursive) {
                    tracing::debug!("cannot watch {}: {e}", dir.display());
                }
            }
        }
    }

    /// Whether the watches follow paths (and so survive a remount), rather than directories.
    fn follows_paths(&self) -> bool {
        matches!(
            self.kind,
            None | Some(WatcherKind::PollWatcher | WatcherKind::Fsevent)
        )
    }

    fn describe(&self) -> String {
        match self.kind {
            Some(WatcherKind::PollWatcher) => format!("polling every {:?}", self.poll),
            Some(kind) => format!("{kind:?}"),
            None => "none (the safety poll only)".to_string(),
        }
    }

    /// Watches `dir` unless it is already watched as `id`. True when a watch was added.
    fn ensure(&mut self, dir: &Path, id: DirId) -> bool {
        if self.watched.get(dir) == Some(&id) {
            return false;
        }
        self.forget(dir);
        let Some(inner) = &mut self.inner else {
            return false;
        };
        match inner.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf(), id);
                true
            }
            // Gone meanwhile: seen again, if it comes back, by a later scan.
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => false,
            Err(e) if self.kind != Some(WatcherKind::PollWatcher) => {
                self.watched.insert(dir.to_path_buf(), id);
                let kind = self.kind;
                self.use_polling(&format!("{kind:?} cannot watch {}: {e}", dir.display()));
                true
            }
            Err(e) => {
                tracing::debug!("cannot watch {}: {e}", dir.display());
                false
            }
        }
    }

    fn forget(&mut self, dir: &Path) {
        if self.watched.remove(dir).is_some()
            && let Some(inner) = &mut self.inner
        {
            // An error means the watch is gone already (its directory was removed).
            let _ = inner.unwatch(dir);
        }
    }

    /// Stops watching `root` and everything under it.
    fn forget_under(&mut self, root: &Path) {
        self.retain_under(root, |_| false);
    }

    /// Stops watching the directories under `root` (itself included) that `keep` refuses.
    fn retain_under(&mut self, root: &Path, keep: impl Fn(&Path) -> bool) {
        let gone: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|dir| dir.starts_with(root) && !keep(dir))
            .cloned()
            .collect();
        for dir in gone {
            self.forget(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, Flag, ModifyKind};

    const HISTORY: &str = "com.apple.TimeMachine.SnapshotHistory.plist";

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn events_about_records_and_bundles_wake_reads_do_not() {
        let modify = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let wake = [
            event(modify, &format!("/tank/mbp/Mac.sparsebundle/{HISTORY}")),
            event(
                EventKind::Create(CreateKind::Folder),
                "/tank/mbp/New Mac.backupbundle",
            ),
            event(
                EventKind::Remove(notify::event::RemoveKind::Any),
                "/tank/mbp/Mac.sparsebundle/com.apple.TimeMachine.MachineID.plist",
            ),
            Event::new(EventKind::Other).set_flag(Flag::Rescan),
            Event::new(EventKind::Any),
        ];
        for e in &wake {
            assert!(wakes(e), "{e:?}");
        }
        let quiet = [
            // Reading the records and listing the directories make these.
            event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                &format!("/tank/mbp/Mac.sparsebundle/{HISTORY}"),
            ),
            event(
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                "/tank/mbp/Mac.sparsebundle",
            ),
            // Time Machine's temporary file: the rename that follows is what counts.
            event(modify, &format!("/tank/mbp/Mac.sparsebundle/{HISTORY}.tmp")),
            event(modify, "/tank/mbp/Mac.sparsebundle/bands"),
            event(modify, "/tank/mbp/.DS_Store"),
            event(modify, "/tank/mbp/._Mac.sparsebundle"),
        ];
        for e in &quiet {
            assert!(!wakes(e), "{e:?}");
        }
    }

    #[tokio::test]
    async fn mount_changes_can_be_followed_on_linux() {
        assert_eq!(
            MountChanges::open().is_some(),
            cfg!(any(target_os = "linux", target_os = "android"))
        );
    }

    /// Waits for a wake-up; false after `within` without one.
    async fn woken(wake: &Wake, within: Duration) -> bool {
        tokio::time::timeout(within, wake.notify.notified())
            .await
            .is_ok()
    }

    /// Lets the events of what was just done arrive and be consumed.
    async fn settle(wake: &Wake) {
        while woken(wake, Duration::from_millis(300)).await {}
    }

    fn rewrite(dir: &Path, name: &str, contents: &str) {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }

    fn watched(watch: &mut Watch, dir: &Path) -> bool {
        watch.ensure(dir, dir_id(dir).unwrap())
    }

    #[tokio::test]
    async fn the_os_events_wake_on_a_rewrite_and_a_new_bundle_not_on_reads() {
        let share = tempfile::tempdir().unwrap();
        let bundle = share.path().join("Mac.sparsebundle");
        std::fs::create_dir(&bundle).unwrap();
        rewrite(&bundle, HISTORY, "one");
        let wake = Arc::new(Wake::default());
        let mut watch = Watch::start(wake.clone(), Duration::from_secs(600));
        if cfg!(target_os = "linux") {
            assert_eq!(watch.kind, Some(WatcherKind::Inotify));
        }
        assert!(watched(&mut watch, share.path()));
        assert!(watched(&mut watch, &bundle));
        assert!(!watched(&mut watch, &bundle), "already watched");
        settle(&wake).await;

        let t = Instant::now();
        rewrite(&bundle, HISTORY, "two");
        assert!(woken(&wake, Duration::from_secs(5)).await);
        eprintln!("woken {:?} after the rewrite", t.elapsed());
        settle(&wake).await;

        // What a scan does (list, stat, read) wakes nothing, or the loop would spin.
        let _ = std::fs::read_dir(share.path()).unwrap().count();
        let _ = signature(&bundle.join(HISTORY));
        let _ = read(&bundle.join(HISTORY)).unwrap();
        assert!(!woken(&wake, Duration::from_millis(500)).await);

        std::fs::create_dir(share.path().join("Other.backupbundle")).unwrap();
        assert!(woken(&wake, Duration::from_secs(5)).await);
        assert!(!wake.trouble.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_replaced_bundle_directory_is_watched_again() {
        let share = tempfile::tempdir().unwrap();
        let bundle = share.path().join("Mac.sparsebundle");
        std::fs::create_dir(&bundle).unwrap();
        let wake = Arc::new(Wake::default());
        let mut watch = Watch::start(wake.clone(), Duration::from_secs(600));
        assert!(watched(&mut watch, share.path()));
        assert!(watched(&mut watch, &bundle));
        settle(&wake).await;
        // Removed and made again (here it may well get the same inode number): the loop forgets
        // what notify said was gone, and the next scan watches the new directory.
        std::fs::remove_dir(&bundle).unwrap();
        std::fs::create_dir(&bundle).unwrap();
        assert!(woken(&wake, Duration::from_secs(5)).await);
        if watch.kind != Some(WatcherKind::PollWatcher) {
            let gone = wake.take_gone();
            assert!(
                !gone.is_empty() && gone.iter().all(|p| p == &bundle),
                "{gone:?}"
            );
            watch.forget(&bundle);
        }
        assert!(watched(&mut watch, &bundle), "a new directory: a new watch");
        settle(&wake).await;
        rewrite(&bundle, HISTORY, "x");
        assert!(woken(&wake, Duration::from_secs(5)).await);

        watch.retain_under(share.path(), |dir| dir == share.path());
        assert_eq!(watch.watched.len(), 1, "only the share's root is left");
        settle(&wake).await;
        rewrite(&bundle, HISTORY, "y");
        if watch.kind != Some(WatcherKind::PollWatcher) {
            assert!(!woken(&wake, Duration::from_millis(500)).await, "unwatched");
        }
        // A directory replaced while nobody looked: another inode, another watch.
        let other = share.path().join("Other.sparsebundle");
        std::fs::create_dir(&other).unwrap();
        std::fs::remove_dir_all(&bundle).unwrap();
        std::fs::rename(&other, &bundle).unwrap();
        assert!(watched(&mut watch, &bundle));
    }

    #[tokio::test]
    async fn the_polling_fallback_wakes_too() {
        let share = tempfile::tempdir().unwrap();
        let bundle = share.path().join("Mac.sparsebundle");
        std::fs::create_dir(&bundle).unwrap();
        rewrite(&bundle, HISTORY, "one");
        let wake = Arc::new(Wake::default());
        let mut watch = Watch::start(wake.clone(), Duration::from_millis(200));
        assert!(watched(&mut watch, share.path()));
        watch.use_polling("test");
        assert_eq!(watch.kind, Some(WatcherKind::PollWatcher));
        assert!(watched(&mut watch, &bundle));
        assert_eq!(watch.describe(), "polling every 200ms");
        settle(&wake).await;

        // notify's poller sees a modification time that moved on by a whole second.
        let t = Instant::now();
        rewrite(&bundle, HISTORY, "two");
        let f = std::fs::File::options()
            .write(true)
            .open(bundle.join(HISTORY))
            .unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(2))
            .unwrap();
        assert!(woken(&wake, Duration::from_secs(5)).await);
        eprintln!("polling: woken {:?} after the rewrite", t.elapsed());

        // The share root, watched before the switch, is still watched.
        settle(&wake).await;
        std::fs::create_dir(share.path().join("Other.backupbundle")).unwrap();
        assert!(woken(&wake, Duration::from_secs(5)).await);
    }
}
