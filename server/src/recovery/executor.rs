//! Runs recovery plans: one per share at a time, every step journaled before and after it runs,
//! an interrupted plan finished or reversed (also at the next start), the file service never left
//! offline. Progress goes to the caller's channel and to the event log.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::mpsc;

use super::journal::{Entry, Journal};
use super::plan::{
    self, CnidHandling, DatasetFacts, Kept, Mode, Operation, PlanError, RecoveryPlan, ShareFacts,
    Step, Target,
};
use super::resume::{self, DatasetState, Direction, Observed, StepState};
use crate::events::{EventKind, NewEvent, Severity};
use crate::file_service::{FileService, Sessions};
use crate::share::Share;
use crate::snapshotter::{self, Snapshotter};
use crate::zfs::runner::FailureKind;
use crate::zfs::{Argv, RunError, parse_get};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Share(#[from] snapshotter::Error),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "a {0} of share '{1}' is already running; wait for it to finish (watch `backstop events --follow`)"
    )]
    Busy(&'static str, String),
    #[error(
        "share '{share}' has a live Time Machine session ({clients}); wait until the backup ends, or pass --force"
    )]
    LiveSession { share: String, clients: String },
    #[error("cannot read the file service of share '{share}': {message}")]
    Service { share: String, message: String },
    #[error("{0}")]
    Failed(String),
    #[error("the recovery journal: {0}")]
    Journal(String),
}

/// One request: what to do to which share.
#[derive(Clone, Debug)]
pub struct Request {
    pub share: String,
    pub operation: Operation,
    pub target: Target,
    pub mode: Mode,
    pub force: bool,
    /// Plan only.
    pub dry_run: bool,
}

/// A progress report for the caller.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Plan(Box<RecoveryPlan>),
    Step {
        index: usize,
        total: usize,
        description: String,
    },
}

/// How a plan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub plan: RecoveryPlan,
    /// What `--undo` / `--finalize` would act on now.
    pub kept: Option<Kept>,
    pub seconds_offline: u64,
    pub millis: u64,
}

pub struct Recovery {
    core: Arc<Snapshotter>,
    services: HashMap<String, Arc<FileService>>,
    journal: Journal,
    running: std::sync::Mutex<HashSet<String>>,
    admin_lock: Option<PathBuf>,
}

/// Marks a share busy for as long as it lives.
struct Running<'a> {
    set: &'a std::sync::Mutex<HashSet<String>>,
    share: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set.lock().expect("running set").remove(&self.share);
    }
}

fn stamp_now() -> String {
    Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y%m%d-%H%M%S")
        .to_string()
}

fn steps_needing_admin_lock(step: &Step) -> bool {
    !matches!(
        step,
        Step::ServiceOffline | Step::ServiceOnline | Step::MoveAside { .. } | Step::SetProp { .. }
    )
}

impl Recovery {
    pub fn new(
        core: Arc<Snapshotter>,
        services: HashMap<String, Arc<FileService>>,
        journal: Journal,
        admin_lock: Option<PathBuf>,
    ) -> Recovery {
        Recovery {
            core,
            services,
            journal,
            running: std::sync::Mutex::new(HashSet::new()),
            admin_lock,
        }
    }

    pub fn service(&self, share: &str) -> Result<&Arc<FileService>, Error> {
        self.core.entry(share)?;
        Ok(self.services.get(share).expect("every share has a service"))
    }

    fn claim(&self, share: &str, op: Operation) -> Result<Running<'_>, Error> {
        let mut set = self.running.lock().expect("running set");
        if !set.insert(share.to_string()) {
            return Err(Error::Busy(op.as_str(), share.to_string()));
        }
        Ok(Running {
            set: &self.running,
            share: share.to_string(),
        })
    }

    async fn zfs(&self, argv: &Argv) -> Result<String, RunError> {
        Ok(self.core.runner.run(argv).await?.stdout)
    }

    /// Reads what the planner needs.
    async fn facts(&self, share: &Share) -> Result<ShareFacts, Error> {
        let cmds = &self.core.cmds;
        let out = self
            .zfs(&cmds.get(&["mountpoint", "canmount", "used"], &share.dataset, Some(0)))
            .await
            .map_err(|e| Snapshotter::zfs_error(share, e))?;
        let got = parse_get(&out);
        let props = got.objects.get(&share.dataset);
        let value = |p: &str| {
            props
                .and_then(|o| o.value(p))
                .unwrap_or_default()
                .to_string()
        };
        let dataset = DatasetFacts {
            name: share.dataset.clone(),
            mountpoint: value("mountpoint"),
            mountpoint_local: props.and_then(|o| o.local("mountpoint")).is_some(),
            canmount: value("canmount"),
            used: props.and_then(|o| o.number("used")).unwrap_or(0),
        };
        let mut snapshots = self.core.read(share).await?.snapshots;
        snapshots.retain(|s| !s.name.starts_with(plan::GUARD_PREFIX));
        let kept = self
            .journal
            .kept(&share.name)
            .map_err(|e| Error::Journal(e.to_string()))?;
        let kept_used = match &kept {
            Some(k) => self
                .zfs(&cmds.get(&["used"], &k.dataset, Some(0)))
                .await
                .ok()
                .and_then(|o| parse_get(&o).objects.get(&k.dataset)?.number("used")),
            None => None,
        };
        let service = self
            .service(&share.name)?
            .facts()
            .map_err(|e| Error::Service {
                share: share.name.clone(),
                message: e.to_string(),
            })?;
        Ok(ShareFacts {
            share: share.name.clone(),
            dataset,
            snapshots,
            kept,
            kept_used,
            service,
        })
    }

    fn make_plan(&self, facts: &ShareFacts, req: &Request) -> Result<RecoveryPlan, Error> {
        let stamp = stamp_now();
        Ok(match req.operation {
            Operation::Restore => plan::plan_restore(facts, &req.target, req.mode, &stamp)?,
            Operation::Undo => plan::plan_undo(facts, &stamp)?,
            Operation::Finalize => plan::plan_finalize(facts, &stamp)?,
        })
    }

    /// The plan a request would carry out, changing nothing.
    pub async fn plan(&self, req: &Request) -> Result<RecoveryPlan, Error> {
        let (share, _) = self.core.share(&req.share)?;
        let facts = self.facts(share).await?;
        self.make_plan(&facts, req)
    }

    /// Plans and carries out a request, reporting progress on `tx`.
    pub async fn run(&self, req: Request, tx: mpsc::Sender<Progress>) -> Result<Outcome, Error> {
        let (share, lock) = self.core.share(&req.share)?;
        if req.dry_run {
            let plan = self.plan(&req).await?;
            let _ = tx.send(Progress::Plan(Box::new(plan.clone()))).await;
            return Ok(Outcome {
                plan,
                kept: None,
                seconds_offline: 0,
                millis: 0,
            });
        }
        let _running = self.claim(&req.share, req.operation)?;
        // Snapshots, prunes and the bundle watcher wait for the whole plan.
        let mut state = lock.lock().await;
        let t0 = Instant::now();
        let facts = self.facts(share).await?;
        let plan = self.make_plan(&facts, &req)?;
        let _ = tx.send(Progress::Plan(Box::new(plan.clone()))).await;
        let service = self.service(&req.share)?.clone();
        if req.operation != Operation::Finalize && !req.force {
            match service.sessions().await {
                Ok(Sessions::Clients(c)) if !c.is_empty() => {
                    return Err(Error::LiveSession {
                        share: req.share.clone(),
                        clients: c.join(", "),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::Service {
                        share: req.share.clone(),
                        message: format!(
                            "cannot tell whether a Mac is connected ({e}); pass --force to restore anyway"
                        ),
                    });
                }
            }
        }
        self.event(
            &plan,
            Severity::Info,
            format!(
                "{} of share '{}' started: {}",
                plan.operation.as_str(),
                plan.share,
                headline(&plan)
            ),
            "started",
            None,
        );
        let mut entry = Entry {
            plan: plan.clone(),
            states: vec![StepState::Pending; plan.steps.len()],
            started_at: Timestamp::now().to_string(),
        };
        self.journal
            .begin(&entry)
            .map_err(|e| Error::Journal(e.to_string()))?;
        let result = self.carry_out(&mut entry, &service, &tx).await;
        state.forget();
        drop(state);
        match result {
            Ok(()) => {
                let kept = self.kept_after(&plan);
                self.journal
                    .finish(&plan.share, kept.as_ref())
                    .map_err(|e| Error::Journal(e.to_string()))?;
                let millis = t0.elapsed().as_millis() as u64;
                self.event(
                    &plan,
                    Severity::Info,
                    finished_summary(&plan, millis),
                    "finished",
                    None,
                );
                self.after_online(&plan, service);
                Ok(Outcome {
                    plan,
                    kept,
                    seconds_offline: millis / 1000,
                    millis,
                })
            }
            Err(message) => {
                self.event(
                    &plan,
                    Severity::Critical,
                    format!(
                        "{} of share '{}' failed: {message}",
                        plan.operation.as_str(),
                        plan.share
                    ),
                    "failed",
                    None,
                );
                Err(Error::Failed(message))
            }
        }
    }

    fn kept_after(&self, plan: &RecoveryPlan) -> Option<Kept> {
        let cnid_aside = plan.steps.iter().find_map(|s| match s {
            Step::MoveAside { from, to } if plan.operation == Operation::Restore => {
                Some((from.clone(), to.clone()))
            }
            _ => None,
        });
        plan.keeps.as_ref().map(|k| Kept {
            dataset: k.clone(),
            after: plan.operation,
            restored: plan.target.clone(),
            at: Timestamp::now().to_string(),
            canmount: plan.canmount.clone(),
            cnid_aside,
        })
    }

    /// Runs a fresh plan; on a failure before the commit step, reverses it.
    async fn carry_out(
        &self,
        entry: &mut Entry,
        service: &FileService,
        tx: &mpsc::Sender<Progress>,
    ) -> Result<(), String> {
        let total = entry.plan.steps.len();
        for i in 0..total {
            let step = entry.plan.steps[i].clone();
            let _ = tx
                .send(Progress::Step {
                    index: i,
                    total,
                    description: step.describe(),
                })
                .await;
            self.step_event(&entry.plan, i, &step);
            self.record(entry, i, StepState::Started)?;
            if let Err(e) = self.run_step(&step, service).await {
                let failed = format!(
                    "step {} of {total} ({}) failed: {e}",
                    i + 1,
                    step.describe()
                );
                tracing::warn!(share = %entry.plan.share, "{failed}");
                return Err(match self.settle(entry, service).await {
                    Ok(Direction::Backward) => format!("{failed}; every change was put back"),
                    Ok(Direction::Forward) => format!("{failed}; it was finished on a retry"),
                    Err(e2) => format!(
                        "{failed}; putting it right failed too: {e2}; backstopd retries at its next start"
                    ),
                });
            }
            self.record(entry, i, StepState::Done)?;
        }
        Ok(())
    }

    fn record(&self, entry: &mut Entry, i: usize, state: StepState) -> Result<(), String> {
        self.journal
            .record(entry, i, state)
            .map_err(|e| format!("cannot write the recovery journal: {e}"))
    }

    /// Ends an interrupted plan: finishes it past its commit step, else reverses it. The journal
    /// entry goes when that worked.
    async fn settle(&self, entry: &Entry, service: &FileService) -> Result<Direction, String> {
        let (dir, steps) = resume::remaining(&entry.plan, &entry.states);
        let mut first_error = None;
        for step in &steps {
            if let Err(e) = self.run_step(step, service).await {
                tracing::warn!(share = %entry.plan.share, "while settling: {} failed: {e}", step.describe());
                first_error.get_or_insert(format!("{}: {e}", step.describe()));
                if dir == Direction::Forward && *step != Step::ServiceOnline {
                    // Still bring the share back before giving up.
                    let _ = self.run_step(&Step::ServiceOnline, service).await;
                    break;
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        match dir {
            Direction::Forward => {
                let kept = self.kept_after(&entry.plan);
                self.journal
                    .finish(&entry.plan.share, kept.as_ref())
                    .map_err(|e| e.to_string())?;
            }
            Direction::Backward => self
                .journal
                .abandon(&entry.plan.share)
                .map_err(|e| e.to_string())?,
        }
        Ok(dir)
    }

    /// Finalizes every share whose kept dataset is older than `days` (`[recovery]
    /// finalize_after_days`). Returns the shares finalized.
    pub async fn finalize_expired(&self, days: u32) -> Vec<String> {
        let mut done = Vec::new();
        let shares: Vec<String> = self.core.shares().map(|s| s.name.clone()).collect();
        for share in shares {
            let Ok(Some(kept)) = self.journal.kept(&share) else {
                continue;
            };
            let Ok(at) = kept.at.parse::<Timestamp>() else {
                continue;
            };
            if Timestamp::now().duration_since(at).as_secs() < i64::from(days) * 86_400 {
                continue;
            }
            let req = Request {
                share: share.clone(),
                operation: Operation::Finalize,
                target: Target::Newest,
                mode: Mode::CloneSwap,
                force: false,
                dry_run: false,
            };
            let (tx, _rx) = mpsc::channel(64);
            match self.run(req, tx).await {
                Ok(_) => done.push(share),
                Err(e) => tracing::warn!(%share, "scheduled finalize failed: {e}"),
            }
        }
        done
    }

    /// At start: ends every plan a previous backstopd left unfinished.
    pub async fn resume_unfinished(&self) -> anyhow::Result<()> {
        for entry in self.journal.unfinished()? {
            let share = entry.plan.share.clone();
            let Some(service) = self.services.get(&share).cloned() else {
                tracing::warn!(%share, "unfinished recovery of a share no longer configured; left as is");
                continue;
            };
            let (_, lock) = self.core.share(&share)?;
            let mut state = lock.lock().await;
            let result = self.settle(&entry, &service).await;
            state.forget();
            drop(state);
            let (severity, summary, phase) = match &result {
                Ok(Direction::Forward) => (
                    Severity::Warning,
                    format!(
                        "the {} of share '{share}' interrupted by a backstopd restart was finished",
                        entry.plan.operation.as_str()
                    ),
                    "finished",
                ),
                Ok(Direction::Backward) => (
                    Severity::Warning,
                    format!(
                        "the {} of share '{share}' interrupted by a backstopd restart was reversed; the share is as it was before",
                        entry.plan.operation.as_str()
                    ),
                    "reversed",
                ),
                Err(e) => (
                    Severity::Critical,
                    format!(
                        "the {} of share '{share}' interrupted by a backstopd restart could not be ended: {e}",
                        entry.plan.operation.as_str()
                    ),
                    "failed",
                ),
            };
            tracing::warn!(%share, "{summary}");
            self.event(&entry.plan, severity, summary, phase, None);
            if matches!(result, Ok(Direction::Forward)) {
                self.after_online(&entry.plan, service);
            }
        }
        Ok(())
    }

    /// After the share is back: Netatalk's CNID check in the background, reported as an event.
    fn after_online(&self, plan: &RecoveryPlan, service: Arc<FileService>) {
        let rebuild = match &plan.cnid {
            CnidHandling::NotApplicable => return,
            CnidHandling::Scan { .. } => false,
            CnidHandling::Rebuild { .. } => plan.operation == Operation::Restore,
        };
        let events = self.core.events().clone();
        let plan = plan.clone();
        tokio::spawn(async move {
            let result = service.cnid_check(rebuild).await;
            let (severity, summary, kind) = match result {
                Ok(Some(c)) => (
                    if c.clean {
                        Severity::Info
                    } else {
                        Severity::Warning
                    },
                    format!(
                        "CNID database of share '{}' {} in {:.1} s: {}",
                        plan.share,
                        if c.rebuilt { "rebuilt" } else { "checked" },
                        c.millis as f64 / 1000.0,
                        if c.clean {
                            "clean".to_string()
                        } else {
                            c.problems.join("; ")
                        }
                    ),
                    EventKind::CnidChecked {
                        clean: c.clean,
                        rebuilt: c.rebuilt,
                        problems: c.problems,
                        millis: c.millis,
                    },
                ),
                Ok(None) => return,
                Err(e) => (
                    Severity::Warning,
                    format!("CNID check of share '{}' could not run: {e}", plan.share),
                    EventKind::CnidChecked {
                        clean: false,
                        rebuilt: rebuild,
                        problems: vec![e.to_string()],
                        millis: 0,
                    },
                ),
            };
            if let Err(e) = events.append(NewEvent {
                severity,
                share: Some(plan.share.clone()),
                summary,
                kind,
            }) {
                tracing::warn!("cannot record the CNID check: {e}");
            }
        });
    }

    fn event(
        &self,
        plan: &RecoveryPlan,
        severity: Severity,
        summary: String,
        phase: &str,
        step: Option<usize>,
    ) {
        let kind = EventKind::Recovery {
            operation: plan.operation.as_str().to_string(),
            phase: phase.to_string(),
            target: plan.target.clone(),
            mode: plan.mode.as_str().to_string(),
            step: step.map_or(0, |i| i as u32 + 1),
            total: plan.steps.len() as u32,
            kept: plan.keeps.clone().unwrap_or_default(),
        };
        if let Err(e) = self.core.events().append(NewEvent {
            severity,
            share: Some(plan.share.clone()),
            summary,
            kind,
        }) {
            tracing::warn!("cannot record a recovery event: {e}");
        }
    }

    fn step_event(&self, plan: &RecoveryPlan, i: usize, step: &Step) {
        self.event(
            plan,
            Severity::Info,
            format!(
                "{} of share '{}': step {} of {}: {}",
                plan.operation.as_str(),
                plan.share,
                i + 1,
                plan.steps.len(),
                step.describe()
            ),
            "step",
            Some(i),
        );
    }

    /// What zfs and the filesystem say about the names a step touches.
    async fn observe(&self, step: &Step) -> Result<Observed, String> {
        let mut seen = Observed::default();
        let (datasets, prop): (Vec<&String>, Option<&str>) = match step {
            Step::Clone { clone, .. } => (vec![clone], None),
            Step::Unmount { dataset }
            | Step::UnmountClone { dataset }
            | Step::Mount { dataset }
            | Step::Promote { dataset }
            | Step::DestroyClone { dataset, .. }
            | Step::DestroyDataset { dataset } => (vec![dataset], None),
            Step::Rename { from, to } => (vec![from, to], None),
            Step::SetProp { dataset, prop, .. } => (vec![dataset], Some(prop.as_str())),
            Step::GuardSnapshot { snapshot } => {
                seen.snapshot_exists = self.exists(snapshot).await?;
                (vec![], None)
            }
            Step::MoveAside { from, to } => {
                seen.from_exists = from.exists();
                seen.to_exists = to.exists();
                (vec![], None)
            }
            _ => (vec![], None),
        };
        for name in datasets {
            let mut props = vec!["mounted", "origin"];
            if let Some(p) = prop {
                props.push(p);
            }
            let argv = self.core.cmds.get(&props, name, Some(0));
            match self.core.runner.run(&argv).await {
                Ok(out) => {
                    let got = parse_get(&out.stdout);
                    let o = got.objects.get(name.as_str());
                    let v = |p: &str| o.and_then(|o| o.value(p)).map(str::to_string);
                    seen.datasets.push(DatasetState {
                        name: name.clone(),
                        exists: o.is_some(),
                        mounted: v("mounted").as_deref() == Some("yes"),
                        origin: v("origin").unwrap_or_default(),
                        prop: prop.and_then(v),
                    });
                }
                Err(e) if e.kind() == FailureKind::DoesNotExist => {
                    seen.datasets.push(DatasetState {
                        name: name.clone(),
                        ..DatasetState::default()
                    });
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(seen)
    }

    async fn exists(&self, target: &str) -> Result<bool, String> {
        match self
            .core
            .runner
            .run(&self.core.cmds.get(&["name"], target, Some(0)))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == FailureKind::DoesNotExist => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs one step unless zfs says it is already done.
    async fn run_step(&self, step: &Step, service: &FileService) -> Result<(), String> {
        match step {
            Step::ServiceOffline => return service.offline().await.map_err(|e| e.to_string()),
            Step::ServiceOnline => return service.online().await.map_err(|e| e.to_string()),
            _ => {}
        }
        let seen = self.observe(step).await?;
        if resume::already_done(step, &seen)? {
            tracing::debug!("{}: already done", step.describe());
            return Ok(());
        }
        let cmds = &self.core.cmds;
        let argv = match step {
            Step::ServiceOffline | Step::ServiceOnline => unreachable!("handled above"),
            Step::MoveAside { from, to } => {
                return std::fs::rename(from, to).map_err(|e| {
                    format!("cannot move {} to {}: {e}", from.display(), to.display())
                });
            }
            Step::GuardSnapshot { snapshot } => cmds.snapshot(snapshot, &[]),
            Step::Clone { snapshot, clone } => cmds.clone_noauto(snapshot, clone),
            Step::Unmount { dataset } | Step::UnmountClone { dataset } => cmds.unmount(dataset),
            Step::Mount { dataset } => cmds.mount(dataset),
            Step::Rename { from, to } => cmds.rename(from, to),
            Step::SetProp {
                dataset,
                prop,
                value,
                ..
            } => cmds.set(prop, value, std::slice::from_ref(dataset)),
            Step::Promote { dataset } => cmds.promote(dataset),
            Step::Rollback { snapshot, .. } => cmds.rollback_destroying_newer(snapshot),
            Step::DestroyClone { dataset, .. } | Step::DestroyDataset { dataset } => {
                cmds.destroy_dataset(dataset)
            }
        };
        let _lock = if steps_needing_admin_lock(step) {
            self.admin_lock().await?
        } else {
            None
        };
        self.zfs(&argv).await.map(drop).map_err(|e| e.to_string())
    }

    /// Takes `[zfs] admin_lock` (zfs-fuse only), off the async threads.
    async fn admin_lock(&self) -> Result<Option<std::fs::File>, String> {
        let Some(path) = self.admin_lock.clone() else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open admin_lock {}: {e}", path.display()))?;
            f.lock()
                .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
            Ok(Some(f))
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

fn headline(plan: &RecoveryPlan) -> String {
    match plan.operation {
        Operation::Restore => format!("to {} ({})", plan.target, plan.mode.as_str()),
        Operation::Undo => format!("back from the restore to {}", plan.target),
        Operation::Finalize => format!("destroying {}", plan.destroys.join(", ")),
    }
}

/// The one-line result of a finished plan.
pub fn summary(outcome: &Outcome) -> String {
    finished_summary(&outcome.plan, outcome.millis)
}

fn finished_summary(plan: &RecoveryPlan, millis: u64) -> String {
    let secs = millis as f64 / 1000.0;
    match plan.operation {
        Operation::Restore => match &plan.keeps {
            Some(k) => format!(
                "share '{}' restored to {} in {secs:.1} s; the previous state is kept as {k} (undo: `backstop restore --undo {}`)",
                plan.share, plan.target, plan.share
            ),
            None => format!(
                "share '{}' rolled back to {} in {secs:.1} s",
                plan.share, plan.target
            ),
        },
        Operation::Undo => format!(
            "share '{}' is back to its state before the restore to {} ({secs:.1} s); the restored copy is kept as {}",
            plan.share,
            plan.target,
            plan.keeps.as_deref().unwrap_or("-")
        ),
        Operation::Finalize => format!(
            "share '{}': destroyed {} in {secs:.1} s",
            plan.share,
            plan.destroys.join(", ")
        ),
    }
}
