//! Pruning: the retention planner's plan applied to a share on ZFS, and the keep mark.
//!
//! The plan is pure ([`crate::retention`]); this module reads the share, plans, and destroys with
//! as few zfs processes as the platform allows (one `zfs destroy ds@a,b,c` per batch where the
//! zfs has it, one call per snapshot on zfs-fuse). Right before destroying it reads the
//! properties again: a snapshot that became kept, held or verified good since the plan survives.
//! A failure part way leaves every snapshot either destroyed or intact, says which, and the next
//! run finishes the job.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::config::RetentionConfig;
use crate::events::{EventKind, NewEvent, Severity};
use crate::retention::{Candidate, Plan, PoolSpace, RetentionPolicy, plan};
use crate::snapshot::{Snapshot, Verification, check_snapshot_name};
use crate::snapshotter::{Error, Snapshotter};
use crate::zfs::runner::FailureKind;
use crate::zfs::{parse_get, parse_reclaim, props};

/// How many snapshots one batched `zfs destroy` names.
const BATCH: usize = 500;

/// What started a prune.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Request,
    AfterSnapshot,
    Timer,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Request => "request",
            Trigger::AfterSnapshot => "after-snapshot",
            Trigger::Timer => "timer",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PruneRequest {
    pub share: String,
    pub dry_run: bool,
    pub as_of: Option<Timestamp>,
    pub trigger: Trigger,
}

#[derive(Clone, Debug)]
pub struct PruneReport {
    pub share: String,
    pub dry_run: bool,
    pub plan: Plan,
    pub used_by_destroyed: u64,
    pub reclaim_estimate: Option<u64>,
    pub destroyed: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub spared: Vec<String>,
    pub freed: u64,
}

/// The planner's policy from the configuration.
pub fn policy(c: &RetentionConfig) -> RetentionPolicy {
    RetentionPolicy {
        hourly_hours: c.hourly_hours,
        daily_days: c.daily_days,
        weekly_weeks: c.weekly_weeks,
        timezone: c
            .timezone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system),
        min_free_percent: c.min_free_percent,
    }
}

fn candidate(s: &Snapshot) -> Candidate {
    Candidate {
        name: s.name.clone(),
        managed: s.managed,
        backup_time: s.backup_time,
        created: s.created,
        verified_good: s.verification == Verification::Good,
        keep: s.keep,
        holds: s.holds,
        used: s.used,
    }
}

/// Why a planned destruction must not happen any more, judged on fresh properties.
fn reason_to_spare(planned: &Snapshot, now: &Snapshot) -> Option<&'static str> {
    if !now.managed {
        Some("no longer managed")
    } else if now.keep {
        Some("keep mark set")
    } else if now.holds > 0 {
        Some("held")
    } else if now.verification == Verification::Good && planned.verification != Verification::Good {
        Some("became verified good")
    } else {
        None
    }
}

impl Snapshotter {
    /// Pool size and free space, for `min_free_percent` (from the pool's root dataset, which
    /// every zfs reports in exact bytes with `get -p`).
    async fn pool_space(&self, dataset: &str) -> Option<PoolSpace> {
        let pool = dataset.split('/').next()?;
        let out = self
            .runner
            .run(&self.cmds.get(&["used", "available"], pool, None))
            .await
            .ok()?;
        let parsed = parse_get(&out.stdout);
        let p = parsed.objects.get(pool)?;
        let (used, free) = (p.number("used")?, p.number("available")?);
        Some(PoolSpace {
            size: used + free,
            free,
        })
    }

    pub async fn prune(&self, req: PruneRequest) -> Result<PruneReport, Error> {
        let entry = self.entry(&req.share)?;
        if req.as_of.is_some() && !req.dry_run {
            return Err(crate::snapshot::InvalidInput(
                "--as-of plans as if it were another time; it only goes with --dry-run".into(),
            )
            .into());
        }
        let share = &entry.share;
        let _state = entry.state.lock().await;
        let listing = self.read(share).await?;
        let candidates: Vec<Candidate> = listing.snapshots.iter().map(candidate).collect();
        let space = if entry.policy.min_free_percent > 0 {
            self.pool_space(&share.dataset).await
        } else {
            None
        };
        let now = req.as_of.unwrap_or_else(Timestamp::now);
        let plan = plan(&candidates, &entry.policy, now, space);
        let doomed: Vec<String> = plan.to_destroy().iter().map(|s| s.to_string()).collect();
        let mut report = PruneReport {
            share: share.name.clone(),
            dry_run: req.dry_run,
            used_by_destroyed: plan.bytes_used_by_destroyed(),
            plan,
            reclaim_estimate: None,
            destroyed: Vec::new(),
            failed: Vec::new(),
            spared: Vec::new(),
            freed: 0,
        };
        if doomed.is_empty() {
            return Ok(report);
        }
        if req.dry_run {
            if self.info.capabilities.destroy_batch {
                let mut total = Some(0u64);
                for batch in doomed.chunks(BATCH) {
                    let argv = self.cmds.destroy_dry_run(&share.dataset, batch);
                    let got = self
                        .runner
                        .run(&argv)
                        .await
                        .ok()
                        .and_then(|o| parse_reclaim(&o.stdout));
                    total = total.zip(got).map(|(a, b)| a + b);
                }
                report.reclaim_estimate = total;
            }
            return Ok(report);
        }

        // Fresh properties, right before destroying.
        let fresh = self.read(share).await?;
        let by_name: HashMap<&str, &Snapshot> = fresh
            .snapshots
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect();
        let planned: HashMap<&str, &Snapshot> = listing
            .snapshots
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect();
        let mut go = Vec::new();
        for name in &doomed {
            match by_name.get(name.as_str()) {
                // Gone already (destroyed by hand or by an earlier run): nothing to do.
                None => {}
                Some(now) => match reason_to_spare(planned[name.as_str()], now) {
                    Some(why) => {
                        tracing::info!(share = %share.name, snapshot = %name, "spared: {why}");
                        report.spared.push(name.clone());
                    }
                    None => go.push(name.clone()),
                },
            }
        }
        let before = fresh.space.used_by_snapshots;
        if self.info.capabilities.destroy_batch {
            for batch in go.chunks(BATCH) {
                let argv = self.cmds.destroy_batch(&share.dataset, batch);
                match self.runner.run(&argv).await {
                    Ok(_) => report.destroyed.extend(batch.iter().cloned()),
                    // Atomic: nothing of the batch went. One by one, so only the culprit stays.
                    Err(e) => {
                        tracing::warn!(share = %share.name, "batched destroy failed, going one by one: {e}");
                        self.destroy_each(share, batch, &mut report).await;
                    }
                }
            }
        } else {
            self.destroy_each(share, &go, &mut report).await;
        }
        let after = self.read(share).await.map(|l| l.space.used_by_snapshots);
        report.freed = after.map_or(0, |a| before.saturating_sub(a));

        if !report.destroyed.is_empty() || !report.failed.is_empty() {
            let mut summary = format!(
                "{}: pruned {} snapshot{}, freed {}",
                share.name,
                report.destroyed.len(),
                if report.destroyed.len() == 1 { "" } else { "s" },
                backstop_proto::size::nicenum(report.freed)
            );
            if !report.failed.is_empty() {
                summary.push_str(&format!(
                    "; {} could not be destroyed ({})",
                    report.failed.len(),
                    report.failed[0].1
                ));
            }
            self.events.append(NewEvent {
                severity: if report.failed.is_empty() {
                    Severity::Info
                } else {
                    Severity::Warning
                },
                share: Some(share.name.clone()),
                summary,
                kind: EventKind::SnapshotsPruned {
                    destroyed: report.destroyed.clone(),
                    failed: report.failed.clone(),
                    freed: report.freed,
                    trigger: req.trigger,
                },
            })?;
        }
        Ok(report)
    }

    async fn destroy_each(
        &self,
        share: &crate::share::Share,
        names: &[String],
        report: &mut PruneReport,
    ) {
        for name in names {
            let full = format!("{}@{name}", share.dataset);
            match self.runner.run(&self.cmds.destroy_one(&full)).await {
                Ok(_) => report.destroyed.push(name.clone()),
                Err(e) if e.kind() == FailureKind::DoesNotExist => {}
                Err(e) => report.failed.push((name.clone(), e.stderr().to_string())),
            }
        }
    }

    /// Sets (`keep`) or clears the keep mark of a managed snapshot.
    pub async fn set_keep(&self, share: &str, name: &str, keep: bool) -> Result<Snapshot, Error> {
        let entry = self.entry(share)?;
        check_snapshot_name(name)?;
        let share = &entry.share;
        let _state = entry.state.lock().await;
        let full = format!("{}@{name}", share.dataset);
        let snap = self
            .read_one(share, &full)
            .await?
            .ok_or_else(|| Error::SnapshotNotFound {
                share: share.name.clone(),
                name: name.to_string(),
            })?;
        if !snap.managed {
            return Err(Error::NotManaged {
                share: share.name.clone(),
                name: name.to_string(),
            });
        }
        let argv = if keep {
            self.cmds
                .set(props::KEEP, "on", std::slice::from_ref(&full))
        } else {
            self.cmds.inherit(props::KEEP, &full)
        };
        self.runner
            .run(&argv)
            .await
            .map_err(|e| Self::zfs_error(share, e))?;
        self.read_one(share, &full)
            .await?
            .ok_or(Error::SnapshotNotFound {
                share: share.name.clone(),
                name: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    //! The apply path against a scripted zfs that has batched destroy (as OpenZFS and illumos
    //! do; zfs-fuse, which the end-to-end tests use, has not).

    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::events::EventLog;
    use crate::share::Share;
    use crate::zfs::runner::{Output, RunFuture};
    use crate::zfs::{Argv, Capabilities, Implementation, RunError, Runner, ZfsCommands, ZfsInfo};

    /// Answers `zfs get` from the current snapshot set, destroys from it, logs every argv, and
    /// fails a batch or a single destroy that names `refuse`.
    struct FakeZfs {
        snapshots: Mutex<Vec<String>>,
        refuse: Option<String>,
        log: Mutex<Vec<String>>,
    }

    impl FakeZfs {
        fn get_output(&self) -> String {
            let mut out = String::new();
            for (k, v) in [
                ("used", "1000"),
                ("usedbysnapshots", "0"),
                ("available", "1"),
            ] {
                out.push_str(&format!("tank/tm\t{k}\t{v}\t-\n"));
            }
            for (i, name) in self.snapshots.lock().unwrap().iter().enumerate() {
                let full = format!("tank/tm@{name}");
                let t = 1_700_000_000 + i as u64 * 3600;
                for (k, v, src) in [
                    ("creation", t.to_string(), "-"),
                    ("used", "4096".to_string(), "-"),
                    ("userrefs", "0".to_string(), "-"),
                    (props::MANAGED, "on".to_string(), "local"),
                    (props::BACKUP_TIME, t.to_string(), "local"),
                ] {
                    out.push_str(&format!("{full}\t{k}\t{v}\t{src}\n"));
                }
            }
            out
        }

        fn fail(argv: &Argv) -> RunError {
            RunError::Failed {
                argv: argv.clone(),
                status: "exit status: 1".into(),
                code: Some(1),
                stderr: "cannot destroy snapshot: dataset is busy".into(),
            }
        }
    }

    impl Runner for FakeZfs {
        fn run<'a>(&'a self, argv: &'a Argv) -> RunFuture<'a> {
            Box::pin(async move {
                let a = argv.as_slice();
                self.log.lock().unwrap().push(a.join(" "));
                match a[1].as_str() {
                    "get" => Ok(Output {
                        stdout: self.get_output(),
                        stderr: String::new(),
                    }),
                    "destroy" => {
                        let (_, names) = a[2].split_once('@').unwrap();
                        let names: Vec<&str> = names.split(',').collect();
                        if self.refuse.as_deref().is_some_and(|r| names.contains(&r)) {
                            return Err(Self::fail(argv));
                        }
                        self.snapshots
                            .lock()
                            .unwrap()
                            .retain(|s| !names.contains(&s.as_str()));
                        Ok(Output::default())
                    }
                    other => panic!("unexpected zfs {other}"),
                }
            })
        }
    }

    fn snapshotter(fake: Arc<FakeZfs>, dir: &std::path::Path) -> Snapshotter {
        let share = Share {
            name: "TM".into(),
            dataset: "tank/tm".into(),
        };
        let policy = RetentionPolicy {
            hourly_hours: 0,
            daily_days: 0,
            weekly_weeks: 1,
            timezone: jiff::tz::TimeZone::UTC,
            min_free_percent: 0,
        };
        Snapshotter::new(
            fake,
            ZfsCommands::default(),
            ZfsInfo {
                implementation: Implementation::OpenZfs,
                version: "2.2.2".into(),
                capabilities: Capabilities {
                    destroy_batch: true,
                    ..Capabilities::default()
                },
            },
            Arc::new(EventLog::open(dir, 100).unwrap()),
            jiff::tz::TimeZone::UTC,
            "test".into(),
            vec![(share, policy)],
        )
    }

    fn fake(n: usize, refuse: Option<&str>) -> Arc<FakeZfs> {
        Arc::new(FakeZfs {
            snapshots: Mutex::new((0..n).map(|i| format!("s{i:03}")).collect()),
            refuse: refuse.map(str::to_string),
            log: Mutex::new(Vec::new()),
        })
    }

    fn request() -> PruneRequest {
        PruneRequest {
            share: "TM".into(),
            dry_run: false,
            as_of: None,
            trigger: Trigger::Request,
        }
    }

    #[tokio::test]
    async fn with_batches_500_snapshots_take_one_destroy() {
        let dir = tempfile::tempdir().unwrap();
        let zfs = fake(501, None);
        let core = snapshotter(zfs.clone(), dir.path());
        let report = core.prune(request()).await.unwrap();
        assert_eq!(report.destroyed.len(), 500);
        assert!(report.failed.is_empty());
        assert_eq!(*zfs.snapshots.lock().unwrap(), ["s500"]);
        let log = zfs.log.lock().unwrap();
        let destroys = log.iter().filter(|l| l.starts_with("zfs destroy")).count();
        let gets = log.iter().filter(|l| l.starts_with("zfs get")).count();
        assert_eq!((gets, destroys), (3, 1), "{log:?}");
    }

    #[tokio::test]
    async fn a_failing_batch_goes_one_by_one_and_reports_the_culprit() {
        let dir = tempfile::tempdir().unwrap();
        let zfs = fake(6, Some("s002"));
        let core = snapshotter(zfs.clone(), dir.path());
        let report = core.prune(request()).await.unwrap();
        assert_eq!(report.destroyed, ["s000", "s001", "s003", "s004"]);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "s002");
        assert!(report.failed[0].1.contains("busy"), "{:?}", report.failed);
        assert_eq!(*zfs.snapshots.lock().unwrap(), ["s002", "s005"]);
        // The event says so, as a warning.
        let (_, latest) = core.events.bounds();
        assert_eq!(latest, 1);
    }
}
