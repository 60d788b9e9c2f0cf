use super::*;
use crate::snapshot::Verification;

pub(crate) fn snapshot(name: &str, verification: Verification) -> Snapshot {
    Snapshot {
        name: name.into(),
        share: "Matt".into(),
        full_name: format!("tank/tm/Matt@{name}"),
        managed: true,
        backup_time: None,
        created: jiff::Timestamp::UNIX_EPOCH,
        used: 0,
        referenced: 0,
        origin: None,
        backup_id: None,
        verification,
        keep: false,
        holds: 0,
    }
}

fn facts(service: ServiceFacts) -> ShareFacts {
    ShareFacts {
        share: "Matt".into(),
        dataset: DatasetFacts {
            name: "tank/tm/Matt".into(),
            mountpoint: "/srv/Matt".into(),
            mountpoint_local: true,
            canmount: "on".into(),
            used: 0,
        },
        snapshots: vec![
            snapshot("20261120_0930", Verification::Good),
            snapshot("20261121_0930", Verification::Good),
            snapshot("20261122_0930", Verification::Bad),
            snapshot("20261123_0930", Verification::Unknown),
        ],
        kept: None,
        kept_used: None,
        service,
    }
}

fn names(steps: &[Step]) -> Vec<String> {
    steps.iter().map(Step::describe).collect()
}

#[test]
fn clone_swap_keeps_the_old_dataset_and_puts_the_clone_in_its_place() {
    let p = plan_restore(
        &facts(ServiceFacts::None),
        &Target::Named("20261121_0930".into()),
        Mode::CloneSwap,
        "20261125-230100",
    )
    .unwrap();
    assert_eq!(
        names(&p.steps),
        vec![
            "taking the share offline",
            "snapshotting the current state as tank/tm/Matt@backstop-before-restore-20261125-230100",
            "cloning tank/tm/Matt@20261121_0930 as tank/tm/Matt.restoring-20261125-230100",
            "unmounting tank/tm/Matt.restoring-20261125-230100",
            "unmounting tank/tm/Matt",
            "renaming tank/tm/Matt to tank/tm/Matt.before-restore-20261125-230100",
            "setting canmount=noauto on tank/tm/Matt.before-restore-20261125-230100",
            "renaming tank/tm/Matt.restoring-20261125-230100 to tank/tm/Matt",
            "setting mountpoint=/srv/Matt on tank/tm/Matt",
            "setting canmount=on on tank/tm/Matt",
            "mounting tank/tm/Matt",
            "promoting tank/tm/Matt",
            "bringing the share back online",
        ]
    );
    assert_eq!(p.commit, 7);
    assert_eq!(
        p.keeps.as_deref(),
        Some("tank/tm/Matt.before-restore-20261125-230100")
    );
    assert!(p.destroys.is_empty());
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn an_inherited_mountpoint_is_not_set() {
    let mut f = facts(ServiceFacts::None);
    f.dataset.mountpoint_local = false;
    let p = plan_restore(&f, &Target::Newest, Mode::CloneSwap, "S").unwrap();
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(s, Step::SetProp { prop, .. } if prop == "mountpoint"))
    );
    assert_eq!(p.target, "20261123_0930");
}

#[test]
fn rollback_lists_every_snapshot_it_destroys_and_says_it_cannot_be_undone() {
    let p = plan_restore(
        &facts(ServiceFacts::None),
        &Target::Named("20261121_0930".into()),
        Mode::Rollback,
        "S",
    )
    .unwrap();
    assert_eq!(
        p.destroys,
        vec!["tank/tm/Matt@20261122_0930", "tank/tm/Matt@20261123_0930"]
    );
    assert!(p.warnings[0].contains("tank/tm/Matt@20261122_0930, tank/tm/Matt@20261123_0930"));
    assert!(p.warnings.iter().any(|w| w.contains("cannot be undone")));
    assert_eq!(p.keeps, None);
    assert_eq!(
        p.steps[p.commit],
        Step::Rollback {
            snapshot: "tank/tm/Matt@20261121_0930".into(),
            destroys: p.destroys.clone(),
        }
    );
}

#[test]
fn targets_newest_last_good_and_by_name() {
    let f = facts(ServiceFacts::None);
    assert_eq!(
        pick_target(&f, &Target::Newest).unwrap().name,
        "20261123_0930"
    );
    assert_eq!(
        pick_target(&f, &Target::LastGood).unwrap().name,
        "20261121_0930"
    );
    assert_eq!(
        pick_target(&f, &Target::Named("nope".into())),
        Err(PlanError::NoSuchSnapshot {
            share: "Matt".into(),
            name: "nope".into()
        })
    );
    let mut none_good = f.clone();
    for s in &mut none_good.snapshots {
        s.verification = Verification::Unknown;
    }
    assert!(matches!(
        pick_target(&none_good, &Target::LastGood),
        Err(PlanError::NoGoodSnapshot { .. })
    ));
    let mut empty = f;
    empty.snapshots.clear();
    assert_eq!(
        pick_target(&empty, &Target::Newest),
        Err(PlanError::NoSnapshots("Matt".into()))
    );
}

fn kept(after: Operation) -> Kept {
    Kept {
        dataset: "tank/tm/Matt.before-restore-S".into(),
        after,
        restored: "20261121_0930".into(),
        at: "2026-11-25T23:01:00Z".into(),
        canmount: "on".into(),
        cnid_aside: None,
    }
}

#[test]
fn a_second_restore_waits_for_undo_or_finalize() {
    let mut f = facts(ServiceFacts::None);
    f.kept = Some(kept(Operation::Restore));
    let e = plan_restore(&f, &Target::Newest, Mode::CloneSwap, "T").unwrap_err();
    assert!(
        e.to_string().contains("backstop restore --undo Matt"),
        "{e}"
    );
}

#[test]
fn undo_swaps_back_and_keeps_the_restored_copy() {
    let mut f = facts(ServiceFacts::None);
    f.kept = Some(kept(Operation::Restore));
    let p = plan_undo(&f, "T").unwrap();
    assert_eq!(
        names(&p.steps),
        vec![
            "taking the share offline",
            "unmounting tank/tm/Matt",
            "renaming tank/tm/Matt to tank/tm/Matt.undone-T",
            "setting canmount=noauto on tank/tm/Matt.undone-T",
            "renaming tank/tm/Matt.before-restore-S to tank/tm/Matt",
            "setting canmount=on on tank/tm/Matt",
            "mounting tank/tm/Matt",
            "promoting tank/tm/Matt",
            "bringing the share back online",
        ]
    );
    assert_eq!(p.commit, 4);
    assert_eq!(p.keeps.as_deref(), Some("tank/tm/Matt.undone-T"));
    f.kept = Some(kept(Operation::Undo));
    assert_eq!(
        plan_undo(&f, "U"),
        Err(PlanError::AlreadyUndone("Matt".into()))
    );
    f.kept = None;
    assert_eq!(
        plan_undo(&f, "U"),
        Err(PlanError::NothingToUndo("Matt".into()))
    );
}

#[test]
fn finalize_destroys_only_the_kept_dataset_and_says_what_it_frees() {
    let mut f = facts(ServiceFacts::None);
    assert_eq!(
        plan_finalize(&f, "T"),
        Err(PlanError::NothingToFinalize("Matt".into()))
    );
    f.kept = Some(kept(Operation::Restore));
    f.kept_used = Some(123_456);
    let p = plan_finalize(&f, "T").unwrap();
    assert_eq!(
        p.steps,
        vec![Step::DestroyDataset {
            dataset: "tank/tm/Matt.before-restore-S".into()
        }]
    );
    assert_eq!(p.frees, Some(123_456));
    assert!(p.warnings.iter().any(|w| w.contains("cannot be undone")));
}

#[test]
fn netatalk_with_the_database_inside_and_cnid_dev_off_needs_no_rebuild() {
    let p = plan_restore(
        &facts(ServiceFacts::Netatalk {
            db_inside: true,
            cnid_dev: false,
            db_dir: None,
        }),
        &Target::Newest,
        Mode::CloneSwap,
        "S",
    )
    .unwrap();
    assert_eq!(p.cnid, CnidHandling::Scan { stable: true });
    assert!(p.warnings.is_empty());
}

#[test]
fn netatalk_with_cnid_dev_on_warns_that_cnids_change_on_a_clone_but_not_on_a_rollback() {
    let svc = ServiceFacts::Netatalk {
        db_inside: true,
        cnid_dev: true,
        db_dir: None,
    };
    let p = plan_restore(&facts(svc.clone()), &Target::Newest, Mode::CloneSwap, "S").unwrap();
    assert_eq!(p.cnid, CnidHandling::Scan { stable: false });
    assert!(p.warnings[0].contains("CNIDs may change"));
    let p = plan_restore(&facts(svc), &Target::Newest, Mode::Rollback, "S").unwrap();
    assert_eq!(p.cnid, CnidHandling::Scan { stable: true });
}

#[test]
fn netatalk_with_the_database_outside_moves_it_aside_before_the_service_starts() {
    let p = plan_restore(
        &facts(ServiceFacts::Netatalk {
            db_inside: false,
            cnid_dev: true,
            db_dir: Some("/var/lib/netatalk/CNID/Matt".into()),
        }),
        &Target::Newest,
        Mode::CloneSwap,
        "S",
    )
    .unwrap();
    let n = p.steps.len();
    assert_eq!(
        p.steps[n - 2],
        Step::MoveAside {
            from: "/var/lib/netatalk/CNID/Matt".into(),
            to: "/var/lib/netatalk/CNID/Matt.backstop-S".into(),
        }
    );
    assert_eq!(p.steps[n - 1], Step::ServiceOnline);
    assert!(matches!(p.cnid, CnidHandling::Rebuild { .. }));
}

#[test]
fn every_inverse_of_an_inverse_is_the_step_itself() {
    let p = plan_restore(
        &facts(ServiceFacts::None),
        &Target::Newest,
        Mode::CloneSwap,
        "S",
    )
    .unwrap();
    for step in &p.steps {
        if let Some(inv) = step.inverse()
            && let Some(back) = inv.inverse()
        {
            assert_eq!(&back, step);
        }
    }
}

#[test]
fn names_stay_within_zfs_limits() {
    let mut f = facts(ServiceFacts::None);
    f.dataset.name = format!("tank/{}", "x".repeat(240));
    assert!(matches!(
        plan_restore(&f, &Target::Newest, Mode::CloneSwap, "S"),
        Err(PlanError::NameTooLong(_))
    ));
}
