//! RecoveryPlan: the steps of a restore, an undo or a finalize, decided before anything changes
//! from what zfs said about the share (pure). The executor runs the steps; the journal records
//! them; [`crate::recovery::resume`] decides what to do with a plan interrupted half-way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::snapshot::{Snapshot, Verification};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Clone the snapshot and swap the clone in; the old dataset is kept, renamed, with all its
    /// newer snapshots. Undoable.
    CloneSwap,
    /// `zfs rollback -r`: destroys every newer snapshot. Not undoable; only when asked for.
    Rollback,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::CloneSwap => "clone-swap",
            Mode::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "" | "clone-swap" | "clone" => Some(Mode::CloneSwap),
            "rollback" => Some(Mode::Rollback),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Restore,
    Undo,
    Finalize,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Restore => "restore",
            Operation::Undo => "undo",
            Operation::Finalize => "finalize",
        }
    }
}

/// Which snapshot to restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The newest snapshot.
    Newest,
    /// The newest snapshot marked `verified=good`.
    LastGood,
    /// A snapshot by name (the part after `@`).
    Named(String),
}

/// One step. Every step is idempotent given what zfs says (see `resume::already_done`), so a
/// step interrupted by a crash can be run again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    ServiceOffline,
    ServiceOnline,
    GuardSnapshot {
        snapshot: String,
    },
    Clone {
        snapshot: String,
        clone: String,
    },
    Unmount {
        dataset: String,
    },
    /// Unmounts the fresh clone (zfs-fuse mounts clones whatever `canmount` says); not reversed,
    /// the clone is destroyed instead.
    UnmountClone {
        dataset: String,
    },
    Mount {
        dataset: String,
    },
    Rename {
        from: String,
        to: String,
    },
    SetProp {
        dataset: String,
        prop: String,
        value: String,
        previous: String,
    },
    Promote {
        dataset: String,
    },
    Rollback {
        snapshot: String,
        destroys: Vec<String>,
    },
    /// Moves a directory aside (Netatalk's CNID database kept outside the dataset).
    MoveAside {
        from: PathBuf,
        to: PathBuf,
    },
    /// Destroys the clone made by an interrupted restore (only if its origin is `origin`).
    DestroyClone {
        dataset: String,
        origin: String,
    },
    DestroyDataset {
        dataset: String,
    },
}

impl Step {
    /// One line for progress output.
    pub fn describe(&self) -> String {
        match self {
            Step::ServiceOffline => "taking the share offline".into(),
            Step::ServiceOnline => "bringing the share back online".into(),
            Step::GuardSnapshot { snapshot } => {
                format!("snapshotting the current state as {snapshot}")
            }
            Step::Clone { snapshot, clone } => format!("cloning {snapshot} as {clone}"),
            Step::Unmount { dataset } | Step::UnmountClone { dataset } => {
                format!("unmounting {dataset}")
            }
            Step::Mount { dataset } => format!("mounting {dataset}"),
            Step::Rename { from, to } => format!("renaming {from} to {to}"),
            Step::SetProp {
                dataset,
                prop,
                value,
                ..
            } => format!("setting {prop}={value} on {dataset}"),
            Step::Promote { dataset } => format!("promoting {dataset}"),
            Step::Rollback { snapshot, destroys } if destroys.is_empty() => {
                format!("rolling back to {snapshot}")
            }
            Step::Rollback { snapshot, destroys } => format!(
                "rolling back to {snapshot}, destroying {} newer snapshot{}",
                destroys.len(),
                if destroys.len() == 1 { "" } else { "s" }
            ),
            Step::MoveAside { from, to } => {
                format!("moving {} aside to {}", from.display(), to.display())
            }
            Step::DestroyClone { dataset, .. } => format!("destroying the unused clone {dataset}"),
            Step::DestroyDataset { dataset } => format!("destroying {dataset} and its snapshots"),
        }
    }

    /// The step that reverses this one, for a plan abandoned before its commit step. `None`:
    /// nothing to reverse (a guard snapshot is kept; an unmounted clone is destroyed anyway).
    pub fn inverse(&self) -> Option<Step> {
        Some(match self {
            Step::ServiceOffline => Step::ServiceOnline,
            Step::Clone { snapshot, clone } => Step::DestroyClone {
                dataset: clone.clone(),
                origin: snapshot.clone(),
            },
            Step::Unmount { dataset } => Step::Mount {
                dataset: dataset.clone(),
            },
            Step::Rename { from, to } => Step::Rename {
                from: to.clone(),
                to: from.clone(),
            },
            Step::SetProp {
                dataset,
                prop,
                value,
                previous,
            } => Step::SetProp {
                dataset: dataset.clone(),
                prop: prop.clone(),
                value: previous.clone(),
                previous: value.clone(),
            },
            Step::MoveAside { from, to } => Step::MoveAside {
                from: to.clone(),
                to: from.clone(),
            },
            _ => return None,
        })
    }
}

/// How Netatalk's CNID database is treated by a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CnidHandling {
    /// Not a Netatalk share.
    NotApplicable,
    /// The database travels with the dataset: no rebuild; `dbd -s` checks it afterwards.
    Scan { stable: bool },
    /// The database lives outside the dataset: moved aside and rebuilt (the seed's way).
    Rebuild { db: PathBuf },
}

/// What the planner needs to know about the share's file service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceFacts {
    None,
    Samba,
    Netatalk {
        /// The CNID database is inside the dataset.
        db_inside: bool,
        /// `cnid dev = yes` (the default): CNIDs are keyed by device and inode.
        cnid_dev: bool,
        /// Where the database is when outside (its `.AppleDB` directory's parent).
        db_dir: Option<PathBuf>,
    },
}

/// A dataset as zfs describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetFacts {
    pub name: String,
    pub mountpoint: String,
    /// The mountpoint is set on the dataset itself (not inherited).
    pub mountpoint_local: bool,
    pub canmount: String,
    pub used: u64,
}

/// What the last finished restore or undo left behind for `--undo` and `--finalize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The dataset kept aside (the pre-restore state after a restore; the restored copy after
    /// an undo).
    pub dataset: String,
    /// The operation that left it.
    pub after: Operation,
    /// The snapshot that was restored.
    pub restored: String,
    /// When it was left (RFC 3339).
    pub at: String,
    /// The `canmount` the live dataset had before the restore.
    pub canmount: String,
    /// CNID database directories moved aside: (live path, aside path).
    #[serde(default)]
    pub cnid_aside: Option<(PathBuf, PathBuf)>,
}

/// Everything the planner reads.
#[derive(Clone, Debug)]
pub struct ShareFacts {
    pub share: String,
    pub dataset: DatasetFacts,
    /// Oldest first.
    pub snapshots: Vec<Snapshot>,
    pub kept: Option<Kept>,
    /// Used space of the kept dataset, for finalize.
    pub kept_used: Option<u64>,
    pub service: ServiceFacts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPlan {
    pub operation: Operation,
    pub share: String,
    pub dataset: String,
    pub mode: Mode,
    /// The snapshot restored (restore, undo: the one restored before).
    pub target: String,
    /// The dataset kept aside when the plan is done (restore/undo in clone-swap mode).
    pub keeps: Option<String>,
    /// Snapshots destroyed (rollback mode), full names.
    pub destroys: Vec<String>,
    /// Bytes freed (finalize).
    pub frees: Option<u64>,
    pub cnid: CnidHandling,
    /// Things the person confirming should know.
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
    /// Once the step at this index has started, an interrupted plan is finished, not reversed.
    pub commit: usize,
    /// The canmount the live dataset had (restored on the swapped-in dataset).
    pub canmount: String,
    /// Stamp used in the names this plan creates.
    pub stamp: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("share '{0}' has no snapshots to restore")]
    NoSnapshots(String),
    #[error(
        "share '{share}' has no snapshot marked good (see `backstop list {share}`); name one with --to"
    )]
    NoGoodSnapshot { share: String },
    #[error("snapshot '{name}' not found on share '{share}' (see `backstop list {share}`)")]
    NoSuchSnapshot { share: String, name: String },
    #[error(
        "share '{share}' still keeps {kept} from its last {after}; run `backstop restore --undo {share}` or `backstop restore --finalize {share}` first"
    )]
    KeptExists {
        share: String,
        kept: String,
        after: &'static str,
    },
    #[error(
        "share '{0}' has nothing to undo (no restore in clone-swap mode was done since the last finalize)"
    )]
    NothingToUndo(String),
    #[error(
        "share '{0}' was already undone; run `backstop restore --finalize {0}` to drop the restored copy"
    )]
    AlreadyUndone(String),
    #[error("share '{0}' has nothing to finalize")]
    NothingToFinalize(String),
    #[error("dataset name '{0}' would be too long for zfs; use a shorter share dataset")]
    NameTooLong(String),
}

/// Prefix of the guard snapshot a clone-swap takes before anything changes.
pub const GUARD_PREFIX: &str = "backstop-before-restore-";

fn check_len(name: String) -> Result<String, PlanError> {
    if name.len() > 250 {
        Err(PlanError::NameTooLong(name))
    } else {
        Ok(name)
    }
}

/// Picks the snapshot a restore goes back to.
pub fn pick_target<'a>(facts: &'a ShareFacts, target: &Target) -> Result<&'a Snapshot, PlanError> {
    let share = &facts.share;
    match target {
        Target::Newest => facts
            .snapshots
            .last()
            .ok_or_else(|| PlanError::NoSnapshots(share.clone())),
        Target::LastGood => facts
            .snapshots
            .iter()
            .rev()
            .find(|s| s.verification == Verification::Good)
            .ok_or_else(|| PlanError::NoGoodSnapshot {
                share: share.clone(),
            }),
        Target::Named(name) => facts
            .snapshots
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| PlanError::NoSuchSnapshot {
                share: share.clone(),
                name: name.clone(),
            }),
    }
}

/// The CNID treatment and the steps that move an outside database aside.
fn cnid_for(facts: &ShareFacts, mode: Mode, stamp: &str) -> (CnidHandling, Vec<Step>, Vec<String>) {
    match &facts.service {
        ServiceFacts::Netatalk {
            db_inside: true,
            cnid_dev,
            ..
        } => {
            // A rollback keeps the device number; a clone gets a new one.
            let stable = mode == Mode::Rollback || !cnid_dev;
            let warnings = if stable {
                vec![]
            } else {
                vec!["CNIDs may change: the volume has `cnid dev = yes` and the restored dataset gets a new device number (`backstop doctor` says how to fix this)".to_string()]
            };
            (CnidHandling::Scan { stable }, vec![], warnings)
        }
        ServiceFacts::Netatalk {
            db_inside: false,
            db_dir: Some(db),
            ..
        } => {
            let aside = PathBuf::from(format!("{}.backstop-{stamp}", db.display()));
            (
                CnidHandling::Rebuild { db: db.clone() },
                vec![Step::MoveAside {
                    from: db.clone(),
                    to: aside,
                }],
                vec!["CNIDs may change: the volume's CNID database is outside the dataset, so it is moved aside and rebuilt (`backstop doctor` says how to make restores instant)".to_string()],
            )
        }
        ServiceFacts::Netatalk { .. } => (
            CnidHandling::Rebuild { db: PathBuf::new() },
            vec![],
            vec!["CNIDs may change: the CNID database's location is unknown".to_string()],
        ),
        _ => (CnidHandling::NotApplicable, vec![], vec![]),
    }
}

fn parent_and_leaf(dataset: &str) -> (&str, &str) {
    match dataset.rsplit_once('/') {
        Some((p, l)) => (p, l),
        None => ("", dataset),
    }
}

fn sibling(dataset: &str, leaf: String) -> String {
    match parent_and_leaf(dataset) {
        ("", _) => leaf,
        (p, _) => format!("{p}/{leaf}"),
    }
}

/// The dataset a restore keeps aside: `<parent>/<leaf>.before-restore-<stamp>`.
pub fn kept_name(dataset: &str, stamp: &str) -> String {
    let (_, leaf) = parent_and_leaf(dataset);
    sibling(dataset, format!("{leaf}.before-restore-{stamp}"))
}

/// The temporary clone: `<parent>/<leaf>.restoring-<stamp>`.
pub fn clone_name(dataset: &str, stamp: &str) -> String {
    let (_, leaf) = parent_and_leaf(dataset);
    sibling(dataset, format!("{leaf}.restoring-{stamp}"))
}

/// The restored copy an undo keeps aside: `<parent>/<leaf>.undone-<stamp>`.
pub fn undone_name(dataset: &str, stamp: &str) -> String {
    let (_, leaf) = parent_and_leaf(dataset);
    sibling(dataset, format!("{leaf}.undone-{stamp}"))
}

/// Plans a restore of the share to `target`. `stamp` (e.g. `20261125-230100`) names what the
/// plan creates.
pub fn plan_restore(
    facts: &ShareFacts,
    target: &Target,
    mode: Mode,
    stamp: &str,
) -> Result<RecoveryPlan, PlanError> {
    if let Some(kept) = &facts.kept {
        return Err(PlanError::KeptExists {
            share: facts.share.clone(),
            kept: kept.dataset.clone(),
            after: kept.after.as_str(),
        });
    }
    let snap = pick_target(facts, target)?;
    let ds = &facts.dataset.name;
    let full = format!("{ds}@{}", snap.name);
    let (cnid, cnid_steps, mut warnings) = cnid_for(facts, mode, stamp);
    let mut steps = vec![Step::ServiceOffline];
    let (commit, keeps, destroys);
    match mode {
        Mode::Rollback => {
            let newer: Vec<String> = facts
                .snapshots
                .iter()
                .skip_while(|s| s.name != snap.name)
                .skip(1)
                .map(|s| format!("{ds}@{}", s.name))
                .collect();
            if !newer.is_empty() {
                warnings.push(format!(
                    "rollback destroys {} newer snapshot{} for good: {}",
                    newer.len(),
                    if newer.len() == 1 { "" } else { "s" },
                    newer.join(", ")
                ));
            }
            warnings.push("a rollback cannot be undone; the default mode (clone-swap) can".into());
            commit = steps.len();
            steps.push(Step::Rollback {
                snapshot: full.clone(),
                destroys: newer.clone(),
            });
            keeps = None;
            destroys = newer;
        }
        Mode::CloneSwap => {
            let guard = check_len(format!("{ds}@{GUARD_PREFIX}{stamp}"))?;
            let clone = check_len(clone_name(ds, stamp))?;
            let kept = check_len(kept_name(ds, stamp))?;
            steps.push(Step::GuardSnapshot { snapshot: guard });
            steps.push(Step::Clone {
                snapshot: full.clone(),
                clone: clone.clone(),
            });
            steps.push(Step::UnmountClone {
                dataset: clone.clone(),
            });
            steps.push(Step::Unmount {
                dataset: ds.clone(),
            });
            steps.push(Step::Rename {
                from: ds.clone(),
                to: kept.clone(),
            });
            steps.push(Step::SetProp {
                dataset: kept.clone(),
                prop: "canmount".into(),
                value: "noauto".into(),
                previous: facts.dataset.canmount.clone(),
            });
            commit = steps.len();
            steps.push(Step::Rename {
                from: clone,
                to: ds.clone(),
            });
            if facts.dataset.mountpoint_local {
                steps.push(Step::SetProp {
                    dataset: ds.clone(),
                    prop: "mountpoint".into(),
                    value: facts.dataset.mountpoint.clone(),
                    previous: String::new(),
                });
            }
            steps.push(Step::SetProp {
                dataset: ds.clone(),
                prop: "canmount".into(),
                value: facts.dataset.canmount.clone(),
                previous: "noauto".into(),
            });
            steps.push(Step::Mount {
                dataset: ds.clone(),
            });
            steps.push(Step::Promote {
                dataset: ds.clone(),
            });
            keeps = Some(kept);
            destroys = vec![];
        }
    }
    steps.extend(cnid_steps);
    steps.push(Step::ServiceOnline);
    Ok(RecoveryPlan {
        operation: Operation::Restore,
        share: facts.share.clone(),
        dataset: ds.clone(),
        mode,
        target: snap.name.clone(),
        keeps,
        destroys,
        frees: None,
        cnid,
        warnings,
        steps,
        commit,
        canmount: facts.dataset.canmount.clone(),
        stamp: stamp.to_string(),
    })
}

/// Plans swapping back the dataset the last restore kept aside.
pub fn plan_undo(facts: &ShareFacts, stamp: &str) -> Result<RecoveryPlan, PlanError> {
    let kept = match &facts.kept {
        None => return Err(PlanError::NothingToUndo(facts.share.clone())),
        Some(k) if k.after == Operation::Undo => {
            return Err(PlanError::AlreadyUndone(facts.share.clone()));
        }
        Some(k) => k,
    };
    let ds = &facts.dataset.name;
    let undone = check_len(undone_name(ds, stamp))?;
    let mut steps = vec![
        Step::ServiceOffline,
        Step::Unmount {
            dataset: ds.clone(),
        },
        Step::Rename {
            from: ds.clone(),
            to: undone.clone(),
        },
        Step::SetProp {
            dataset: undone.clone(),
            prop: "canmount".into(),
            value: "noauto".into(),
            previous: facts.dataset.canmount.clone(),
        },
    ];
    let commit = steps.len();
    steps.push(Step::Rename {
        from: kept.dataset.clone(),
        to: ds.clone(),
    });
    steps.push(Step::SetProp {
        dataset: ds.clone(),
        prop: "canmount".into(),
        value: kept.canmount.clone(),
        previous: "noauto".into(),
    });
    steps.push(Step::Mount {
        dataset: ds.clone(),
    });
    steps.push(Step::Promote {
        dataset: ds.clone(),
    });
    let mut cnid = match &facts.service {
        ServiceFacts::Netatalk { .. } => CnidHandling::Scan { stable: true },
        _ => CnidHandling::NotApplicable,
    };
    if let Some((live, aside)) = &kept.cnid_aside {
        // The rebuilt database belongs to the restored copy: it goes aside, the original back.
        steps.push(Step::MoveAside {
            from: live.clone(),
            to: PathBuf::from(format!("{}.backstop-undone-{stamp}", live.display())),
        });
        steps.push(Step::MoveAside {
            from: aside.clone(),
            to: live.clone(),
        });
        cnid = CnidHandling::Scan { stable: true };
    }
    steps.push(Step::ServiceOnline);
    Ok(RecoveryPlan {
        operation: Operation::Undo,
        share: facts.share.clone(),
        dataset: ds.clone(),
        mode: Mode::CloneSwap,
        target: kept.restored.clone(),
        keeps: Some(undone),
        destroys: vec![],
        frees: None,
        cnid,
        warnings: vec![],
        steps,
        commit,
        canmount: kept.canmount.clone(),
        stamp: stamp.to_string(),
    })
}

/// Plans destroying the dataset the last restore or undo kept aside.
pub fn plan_finalize(facts: &ShareFacts, stamp: &str) -> Result<RecoveryPlan, PlanError> {
    let kept = facts
        .kept
        .as_ref()
        .ok_or_else(|| PlanError::NothingToFinalize(facts.share.clone()))?;
    let mut warnings = vec![format!(
        "destroys {} for good, with every snapshot it holds",
        kept.dataset
    )];
    if kept.after == Operation::Restore {
        warnings.push(format!(
            "after this the restore to {} cannot be undone",
            kept.restored
        ));
    }
    Ok(RecoveryPlan {
        operation: Operation::Finalize,
        share: facts.share.clone(),
        dataset: facts.dataset.name.clone(),
        mode: Mode::CloneSwap,
        target: kept.restored.clone(),
        keeps: None,
        destroys: vec![kept.dataset.clone()],
        frees: facts.kept_used,
        cnid: CnidHandling::NotApplicable,
        warnings,
        steps: vec![Step::DestroyDataset {
            dataset: kept.dataset.clone(),
        }],
        commit: 0,
        canmount: facts.dataset.canmount.clone(),
        stamp: stamp.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
