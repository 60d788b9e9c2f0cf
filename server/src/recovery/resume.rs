//! What to do with a plan that was interrupted (backstopd killed, a step failed): finish it when
//! its commit step had started, otherwise reverse every step that had started, newest first.
//! And whether a step is already done, from what zfs says, so any step can run again. Pure.

use serde::{Deserialize, Serialize};

use super::plan::{RecoveryPlan, Step};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    Started,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// Forward once the commit step has started; backward before.
pub fn direction(plan: &RecoveryPlan, states: &[StepState]) -> Direction {
    match states.get(plan.commit) {
        Some(StepState::Started | StepState::Done) => Direction::Forward,
        _ => Direction::Backward,
    }
}

/// The steps still to run, in order, to end the plan cleanly from `states`.
pub fn remaining(plan: &RecoveryPlan, states: &[StepState]) -> (Direction, Vec<Step>) {
    let dir = direction(plan, states);
    let steps = match dir {
        Direction::Forward => plan
            .steps
            .iter()
            .zip(states)
            .filter(|(_, s)| **s != StepState::Done)
            .map(|(step, _)| step.clone())
            .collect(),
        Direction::Backward => plan
            .steps
            .iter()
            .zip(states)
            .filter(|(_, s)| **s != StepState::Pending)
            .rev()
            .filter_map(|(step, _)| step.inverse())
            .collect(),
    };
    (dir, steps)
}

/// What zfs (and the filesystem) say about the names a step touches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Per dataset named by the step: exists, mounted, origin ("-" when none), and the value of
    /// the step's property when it sets one.
    pub datasets: Vec<DatasetState>,
    /// Whether the step's snapshot exists (guard snapshot).
    pub snapshot_exists: bool,
    /// For MoveAside: whether `from` and `to` exist.
    pub from_exists: bool,
    pub to_exists: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetState {
    pub name: String,
    pub exists: bool,
    pub mounted: bool,
    pub origin: String,
    pub prop: Option<String>,
}

impl Observed {
    fn get(&self, name: &str) -> Option<&DatasetState> {
        self.datasets.iter().find(|d| d.name == name)
    }

    fn exists(&self, name: &str) -> bool {
        self.get(name).is_some_and(|d| d.exists)
    }
}

/// Whether the step's effect is already there (so running it again is skipped). `Err`: the step
/// cannot run, and why (the state is not one this plan produces).
pub fn already_done(step: &Step, seen: &Observed) -> Result<bool, String> {
    Ok(match step {
        Step::ServiceOffline | Step::ServiceOnline | Step::Rollback { .. } => false,
        Step::GuardSnapshot { .. } => seen.snapshot_exists,
        Step::Clone { clone, .. } => seen.exists(clone),
        Step::Unmount { dataset } | Step::UnmountClone { dataset } => match seen.get(dataset) {
            Some(d) if d.exists => !d.mounted,
            // Renamed away already: nothing to unmount under this name.
            _ => true,
        },
        Step::Mount { dataset } => match seen.get(dataset) {
            Some(d) if d.exists => d.mounted,
            _ => return Err(format!("{dataset} does not exist, so it cannot be mounted")),
        },
        Step::Rename { from, to } => match (seen.exists(from), seen.exists(to)) {
            (true, false) => false,
            (false, true) => true,
            (true, true) => {
                return Err(format!(
                    "cannot rename {from} to {to}: both exist; fix by hand (`zfs list -r`)"
                ));
            }
            (false, false) => {
                return Err(format!(
                    "cannot rename {from} to {to}: neither exists; fix by hand (`zfs list -r`)"
                ));
            }
        },
        Step::SetProp { dataset, value, .. } => match seen.get(dataset) {
            Some(d) if d.exists => d.prop.as_deref() == Some(value.as_str()),
            _ => return Err(format!("{dataset} does not exist, so it cannot be changed")),
        },
        Step::Promote { dataset } => match seen.get(dataset) {
            Some(d) if d.exists => d.origin.is_empty() || d.origin == "-",
            _ => {
                return Err(format!(
                    "{dataset} does not exist, so it cannot be promoted"
                ));
            }
        },
        Step::DestroyClone { dataset, origin } => match seen.get(dataset) {
            Some(d) if d.exists && d.origin == *origin => false,
            Some(d) if d.exists => {
                return Err(format!(
                    "{dataset} is not the clone of {origin} this restore made (its origin is {}); left alone",
                    d.origin
                ));
            }
            _ => true,
        },
        Step::DestroyDataset { dataset } => !seen.exists(dataset),
        Step::MoveAside { from, to } => match (seen.from_exists, seen.to_exists) {
            (true, false) => false,
            (false, true) => true,
            // Nothing to move (a volume never served yet has no database).
            (false, false) => true,
            (true, true) => {
                return Err(format!(
                    "cannot move {} aside: {} exists already",
                    from.display(),
                    to.display()
                ));
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::plan::{
        CnidHandling, DatasetFacts, Mode, ServiceFacts, ShareFacts, Target, plan_restore,
    };
    use crate::snapshot::Snapshot;

    fn snap(name: &str) -> Snapshot {
        crate::recovery::plan::tests::snapshot(name, crate::snapshot::Verification::Unknown)
    }

    fn facts() -> ShareFacts {
        ShareFacts {
            share: "Matt".into(),
            dataset: DatasetFacts {
                name: "tank/tm/Matt".into(),
                mountpoint: "/tank/tm/Matt".into(),
                mountpoint_local: false,
                canmount: "on".into(),
                used: 0,
            },
            snapshots: vec![snap("a"), snap("b")],
            kept: None,
            kept_used: None,
            service: ServiceFacts::None,
        }
    }

    fn plan() -> RecoveryPlan {
        let p = plan_restore(&facts(), &Target::Named("a".into()), Mode::CloneSwap, "S").unwrap();
        assert_eq!(p.cnid, CnidHandling::NotApplicable);
        p
    }

    fn states(p: &RecoveryPlan, done: usize, started: bool) -> Vec<StepState> {
        (0..p.steps.len())
            .map(|i| {
                if i < done {
                    StepState::Done
                } else if i == done && started {
                    StepState::Started
                } else {
                    StepState::Pending
                }
            })
            .collect()
    }

    #[test]
    fn before_the_commit_everything_started_is_reversed_newest_first_and_the_service_comes_back() {
        let p = plan();
        // Crash while renaming the live dataset aside (started, not done).
        let rename_aside = p.commit - 2;
        let (dir, steps) = remaining(&p, &states(&p, rename_aside, true));
        assert_eq!(dir, Direction::Backward);
        assert_eq!(
            steps,
            vec![
                Step::Rename {
                    from: "tank/tm/Matt.before-restore-S".into(),
                    to: "tank/tm/Matt".into()
                },
                Step::Mount {
                    dataset: "tank/tm/Matt".into()
                },
                Step::DestroyClone {
                    dataset: "tank/tm/Matt.restoring-S".into(),
                    origin: "tank/tm/Matt@a".into()
                },
                Step::ServiceOnline,
            ]
        );
    }

    #[test]
    fn once_the_commit_step_started_the_plan_is_finished() {
        let p = plan();
        let (dir, steps) = remaining(&p, &states(&p, p.commit, true));
        assert_eq!(dir, Direction::Forward);
        assert_eq!(steps[0], p.steps[p.commit]);
        assert_eq!(steps.last(), Some(&Step::ServiceOnline));
        assert_eq!(steps.len(), p.steps.len() - p.commit);
    }

    #[test]
    fn nothing_started_means_nothing_to_do() {
        let p = plan();
        let (dir, steps) = remaining(&p, &states(&p, 0, false));
        assert_eq!(dir, Direction::Backward);
        assert!(steps.is_empty());
    }

    #[test]
    fn every_step_boundary_ends_with_the_service_online() {
        let p = plan();
        for done in 0..p.steps.len() {
            for started in [false, true] {
                if done == 0 && !started {
                    continue;
                }
                let (_, steps) = remaining(&p, &states(&p, done, started));
                assert_eq!(
                    steps.last(),
                    Some(&Step::ServiceOnline),
                    "done {done} started {started}"
                );
            }
        }
    }

    fn ds(name: &str, exists: bool, mounted: bool, origin: &str) -> DatasetState {
        DatasetState {
            name: name.into(),
            exists,
            mounted,
            origin: origin.into(),
            prop: None,
        }
    }

    #[test]
    fn a_rename_that_happened_is_not_redone_and_an_impossible_one_is_an_error() {
        let step = Step::Rename {
            from: "p/a".into(),
            to: "p/b".into(),
        };
        let seen = |a, b| Observed {
            datasets: vec![ds("p/a", a, false, "-"), ds("p/b", b, false, "-")],
            ..Observed::default()
        };
        assert_eq!(already_done(&step, &seen(true, false)), Ok(false));
        assert_eq!(already_done(&step, &seen(false, true)), Ok(true));
        assert!(already_done(&step, &seen(true, true)).is_err());
        assert!(already_done(&step, &seen(false, false)).is_err());
    }

    #[test]
    fn only_our_own_clone_is_ever_destroyed() {
        let step = Step::DestroyClone {
            dataset: "p/a.restoring-S".into(),
            origin: "p/a@x".into(),
        };
        let seen = |origin: &str| Observed {
            datasets: vec![ds("p/a.restoring-S", true, false, origin)],
            ..Observed::default()
        };
        assert_eq!(already_done(&step, &seen("p/a@x")), Ok(false));
        assert!(already_done(&step, &seen("p/other@x")).is_err());
        assert_eq!(already_done(&step, &Observed::default()), Ok(true));
    }

    #[test]
    fn promote_and_mount_are_done_when_zfs_says_so() {
        let promote = Step::Promote {
            dataset: "p/a".into(),
        };
        let seen = |mounted, origin: &str| Observed {
            datasets: vec![ds("p/a", true, mounted, origin)],
            ..Observed::default()
        };
        assert_eq!(already_done(&promote, &seen(true, "p/k@x")), Ok(false));
        assert_eq!(already_done(&promote, &seen(true, "-")), Ok(true));
        let mount = Step::Mount {
            dataset: "p/a".into(),
        };
        assert_eq!(already_done(&mount, &seen(false, "-")), Ok(false));
        assert_eq!(already_done(&mount, &seen(true, "-")), Ok(true));
    }
}
