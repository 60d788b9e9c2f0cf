use super::*;

fn event(severity: pb::Severity, share: &str, summary: &str, kind: Kind) -> pb::Event {
    pb::Event {
        cursor: 7,
        at: None,
        severity: severity as i32,
        share: share.into(),
        summary: summary.into(),
        kind: Some(kind),
    }
}

fn snapshot(origin: pb::SnapshotOrigin, verification: pb::Verification) -> pb::Snapshot {
    pb::Snapshot {
        name: "20261125_1000".into(),
        share: "iMac".into(),
        full_name: "tank/tm/iMac@20261125_1000".into(),
        managed: true,
        origin: origin as i32,
        verification: verification as i32,
        ..Default::default()
    }
}

fn created(origin: pb::SnapshotOrigin, verification: pb::Verification) -> pb::Event {
    event(
        pb::Severity::Info,
        "iMac",
        "iMac: snapshot 20261125_1000 taken after a Time Machine backup",
        Kind::SnapshotCreated(pb::SnapshotCreated {
            snapshot: Some(snapshot(origin, verification)),
        }),
    )
}

fn health(
    severity: pb::Severity,
    summary: &str,
    change: &str,
    device: &str,
    state: &str,
    repaired: u64,
) -> pb::Event {
    event(
        severity,
        "",
        summary,
        Kind::PoolHealthChanged(pb::PoolHealthChanged {
            pool: "tank".into(),
            device: device.into(),
            change: change.into(),
            state: state.into(),
            read: 0,
            write: 0,
            cksum: 3,
            repaired,
        }),
    )
}

fn backup_ended(outcome: &str, severity: pb::Severity, summary: &str, reason: &str) -> pb::Event {
    event(
        severity,
        "iMac",
        summary,
        Kind::BackupEnded(pb::BackupEnded {
            outcome: outcome.into(),
            code: Some(19),
            reason: reason.into(),
            backup: "2026-11-25-100000".into(),
        }),
    )
}

fn some(e: &pb::Event) -> Notification {
    notification_for(e).unwrap_or_else(|| panic!("no notification for {e:?}"))
}

#[test]
fn a_snapshot_after_a_backup_is_quiet_good_news() {
    let n = some(&created(pb::SnapshotOrigin::Backup, pb::Verification::Good));
    assert_eq!(n.title, "Backup snapshot taken");
    assert_eq!(
        n.body,
        "iMac's Time Machine backup is now also kept in snapshot 20261125_1000."
    );
    assert_eq!(n.urgency, Urgency::Low);
}

#[test]
fn a_manual_snapshot_says_so_and_an_unsound_backup_is_mentioned() {
    let n = some(&created(
        pb::SnapshotOrigin::Manual,
        pb::Verification::Unspecified,
    ));
    assert_eq!(n.title, "Snapshot taken");
    assert_eq!(n.body, "Snapshot 20261125_1000 of iMac was taken.");
    assert_eq!(n.urgency, Urgency::Low);

    let n = some(&created(pb::SnapshotOrigin::Backup, pb::Verification::Bad));
    assert!(
        n.body
            .ends_with("Time Machine did not consider this backup sound."),
        "{}",
        n.body
    );
}

#[test]
fn a_snapshot_event_without_its_snapshot_falls_back_to_the_summary() {
    let e = event(
        pb::Severity::Info,
        "iMac",
        "iMac: snapshot x taken on request",
        Kind::SnapshotCreated(pb::SnapshotCreated { snapshot: None }),
    );
    assert_eq!(some(&e).body, "iMac: snapshot x taken on request.");
}

#[test]
fn a_failed_backup_says_why_in_plain_words() {
    let n = some(&backup_ended(
        "failed",
        pb::Severity::Warning,
        "iMac: Time Machine backup failed: The backup disk is full",
        "BACKUP_FAILED_DISK_FULL",
    ));
    assert_eq!(n.title, "Time Machine backup failed");
    assert_eq!(
        n.body,
        "iMac's Time Machine backup did not finish: the backup disk is full."
    );
    assert_eq!(n.urgency, Urgency::Normal);
}

#[test]
fn a_failed_backup_without_an_explanation_uses_the_reason_or_says_there_is_none() {
    // A summary in another shape: the reported reason is used.
    let n = some(&backup_ended(
        "failed",
        pb::Severity::Warning,
        "something else entirely",
        "BACKUP_FAILED_NETWORK",
    ));
    assert_eq!(
        n.body,
        "iMac's Time Machine backup did not finish: BACKUP_FAILED_NETWORK."
    );
    let n = some(&backup_ended(
        "failed",
        pb::Severity::Warning,
        "iMac: Time Machine backup failed",
        "",
    ));
    assert_eq!(
        n.body,
        "iMac's Time Machine backup did not finish; Time Machine gave no reason."
    );
}

#[test]
fn a_cancelled_backup_does_not_notify() {
    let e = backup_ended(
        "cancelled",
        pb::Severity::Info,
        "iMac: Time Machine backup cancelled",
        "",
    );
    assert_eq!(notification_for(&e), None);
}

#[test]
fn a_degraded_pool_is_critical_and_explained() {
    let n = some(&health(
        pb::Severity::Critical,
        "tank: pool is DEGRADED (sdb is FAULTED)",
        "state_changed",
        "",
        "DEGRADED",
        0,
    ));
    assert_eq!(n.title, "Disk problem on tank");
    assert!(
        n.body.starts_with("Pool is DEGRADED (sdb is FAULTED). "),
        "{}",
        n.body
    );
    assert!(n.body.contains("replace the failed disk"), "{}", n.body);
    assert_eq!(n.urgency, Urgency::Critical);
}

#[test]
fn a_faulted_disk_is_critical() {
    let n = some(&health(
        pb::Severity::Critical,
        "tank: disk sdb is FAULTED (too many errors) (was ONLINE)",
        "state_changed",
        "sdb",
        "FAULTED",
        0,
    ));
    assert_eq!(n.title, "Disk problem on tank");
    assert_eq!(
        n.body,
        "Disk sdb is FAULTED (too many errors) (was ONLINE). Check the disk's cable, or replace the disk."
    );
    assert_eq!(n.urgency, Urgency::Critical);
}

#[test]
fn rising_checksum_errors_are_a_warning_with_zfs_advice() {
    let n = some(&health(
        pb::Severity::Warning,
        "tank: disk sdb has 3 checksum errors (ZFS repaired them; replace the disk soon)",
        "errors_rose",
        "sdb",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "Disk problem on tank");
    assert_eq!(
        n.body,
        "Disk sdb has 3 checksum errors (ZFS repaired them; replace the disk soon)."
    );
    assert_eq!(n.urgency, Urgency::Normal);
}

#[test]
fn recovery_is_low_urgency_good_news() {
    let n = some(&health(
        pb::Severity::Info,
        "tank: pool is ONLINE again",
        "state_changed",
        "",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "tank is healthy again");
    assert_eq!(n.body, "Pool is ONLINE again.");
    assert_eq!(n.urgency, Urgency::Low);

    let n = some(&health(
        pb::Severity::Info,
        "tank: disk sdb is ONLINE (was FAULTED)",
        "state_changed",
        "sdb",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "Disk sdb is back on tank");
    assert_eq!(n.urgency, Urgency::Low);

    let n = some(&health(
        pb::Severity::Info,
        "tank: no known data errors any more",
        "data_errors",
        "",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "No more damaged files on tank");
    assert_eq!(n.urgency, Urgency::Low);
}

#[test]
fn damaged_files_are_critical() {
    let n = some(&health(
        pb::Severity::Critical,
        "tank: 1 file is damaged beyond repair (restore from a snapshot): /tank/tm/iMac/x",
        "data_errors",
        "",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "Damaged files on tank");
    assert!(n.body.starts_with("1 file is damaged"), "{}", n.body);
    assert_eq!(n.urgency, Urgency::Critical);
}

#[test]
fn a_scrub_that_found_nothing_is_low_and_one_that_repaired_is_a_problem() {
    let n = some(&health(
        pb::Severity::Info,
        "tank: scrub finished, nothing to repair, 0 errors",
        "scan_finished",
        "",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "Scrub finished on tank");
    assert_eq!(n.body, "Scrub finished, nothing to repair, 0 errors.");
    assert_eq!(n.urgency, Urgency::Low);

    let n = some(&health(
        pb::Severity::Info,
        "tank: scrub canceled",
        "scan_finished",
        "",
        "ONLINE",
        0,
    ));
    assert_eq!(n.title, "Scrub canceled on tank");

    let n = some(&health(
        pb::Severity::Warning,
        "tank: scrub finished, repaired 4.50M, 0 errors",
        "scan_finished",
        "",
        "ONLINE",
        4_718_592,
    ));
    assert_eq!(n.title, "Disk problem on tank");
    assert!(n.body.contains("repaired 4.50M"), "{}", n.body);
    assert!(n.body.contains("a disk may be failing"), "{}", n.body);
    assert_eq!(n.urgency, Urgency::Normal);

    let n = some(&health(
        pb::Severity::Critical,
        "tank: scrub finished, repaired 0B, 2 errors",
        "scan_finished",
        "",
        "ONLINE",
        0,
    ));
    assert!(n.body.contains("could not be repaired"), "{}", n.body);
    assert_eq!(n.urgency, Urgency::Critical);
}

#[test]
fn a_scrub_starting_does_not_notify() {
    let e = health(
        pb::Severity::Info,
        "tank: scrub started",
        "scan_started",
        "",
        "ONLINE",
        0,
    );
    assert_eq!(notification_for(&e), None);
}

#[test]
fn an_unknown_health_change_notifies_only_when_it_is_bad() {
    let bad = health(
        pb::Severity::Warning,
        "tank: something new",
        "spare_used",
        "",
        "ONLINE",
        0,
    );
    let n = some(&bad);
    assert_eq!(n.title, "Disk problem on tank");
    assert_eq!(n.body, "Something new.");
    let info = health(
        pb::Severity::Info,
        "tank: something new",
        "spare_used",
        "",
        "ONLINE",
        0,
    );
    assert_eq!(notification_for(&info), None);
}

#[test]
fn pruning_notifies_only_when_snapshots_could_not_be_destroyed() {
    let pruned = |severity, summary: &str| {
        event(
            severity,
            "iMac",
            summary,
            Kind::SnapshotsPruned(pb::SnapshotsPruned {
                destroyed: vec!["20261001_1000".into()],
                failed: vec![],
                freed: 1 << 30,
                trigger: "timer".into(),
            }),
        )
    };
    assert_eq!(
        notification_for(&pruned(
            pb::Severity::Info,
            "iMac: pruned 1 snapshot, freed 1G"
        )),
        None
    );
    let n = some(&pruned(
        pb::Severity::Warning,
        "iMac: pruned 1 snapshot, freed 1G; 1 could not be destroyed (dataset is busy)",
    ));
    assert_eq!(n.title, "Old snapshots could not be removed");
    assert_eq!(
        n.body,
        "Pruned 1 snapshot, freed 1G; 1 could not be destroyed (dataset is busy)."
    );
    assert_eq!(n.urgency, Urgency::Normal);
}

#[test]
fn server_start_and_adoption_do_not_notify() {
    let started = event(
        pb::Severity::Info,
        "",
        "backstopd 0.1.0 started",
        Kind::ServerStarted(pb::ServerStarted {
            version: "0.1.0".into(),
        }),
    );
    assert_eq!(notification_for(&started), None);
    let adopted = event(
        pb::Severity::Info,
        "iMac",
        "iMac: adopted 2 snapshots",
        Kind::SnapshotsAdopted(pb::SnapshotsAdopted {
            names: vec!["20131124_1344".into()],
        }),
    );
    assert_eq!(notification_for(&adopted), None);
}

#[test]
fn an_unknown_kind_from_a_newer_server_shows_its_summary_when_it_matters() {
    let mut e = event(pb::Severity::Critical, "", "tank: pool is on fire", {
        Kind::ServerStarted(pb::ServerStarted::default())
    });
    e.kind = None;
    let n = some(&e);
    assert_eq!(n.title, "Backstop needs your attention");
    assert_eq!(n.body, "tank: pool is on fire.");
    assert_eq!(n.urgency, Urgency::Critical);
    e.severity = pb::Severity::Info as i32;
    assert_eq!(notification_for(&e), None);
}

#[test]
fn a_failed_verification_is_critical_and_names_the_way_back() {
    let failed = |newest_good: &str| {
        event(
            pb::Severity::Critical,
            "iMac",
            "Time Machine on iMac reports its backup failed verification; ...",
            Kind::VerificationFailed(pb::VerificationFailed {
                bundle: "iMac.sparsebundle".into(),
                state: 2,
                newest_good: newest_good.into(),
                newest_good_time: None,
            }),
        )
    };
    let n = some(&failed("20261124_1000"));
    assert_eq!(n.title, "Time Machine backup is damaged");
    assert!(
        n.body
            .starts_with("iMac's Time Machine backup failed verification"),
        "{}",
        n.body
    );
    assert!(
        n.body
            .contains("Snapshot 20261124_1000 still holds a good copy"),
        "{}",
        n.body
    );
    assert_eq!(n.urgency, Urgency::Critical);
    let n = some(&failed(""));
    assert!(
        n.body
            .ends_with("No snapshot is known to hold a good copy."),
        "{}",
        n.body
    );
}

#[test]
fn critical_severity_is_always_critical_urgency() {
    // Even a kind that is otherwise quiet.
    let mut e = created(pb::SnapshotOrigin::Backup, pb::Verification::Good);
    e.severity = pb::Severity::Critical as i32;
    assert_eq!(some(&e).urgency, Urgency::Critical);
    let mut e = backup_ended(
        "failed",
        pb::Severity::Critical,
        "iMac: Time Machine backup failed: x",
        "",
    );
    e.severity = pb::Severity::Critical as i32;
    assert_eq!(some(&e).urgency, Urgency::Critical);
}

#[test]
fn prefs_mute_what_is_below_the_minimum_severity() {
    let snap = created(pb::SnapshotOrigin::Backup, pb::Verification::Good);
    let degraded = health(
        pb::Severity::Critical,
        "tank: pool is DEGRADED",
        "state_changed",
        "",
        "DEGRADED",
        0,
    );
    let failed = backup_ended(
        "failed",
        pb::Severity::Warning,
        "iMac: Time Machine backup failed: x",
        "",
    );
    let all = NotifyPrefs::default();
    assert!(all.notification_for(&snap).is_some());
    assert!(all.notification_for(&failed).is_some());

    let quiet = NotifyPrefs {
        min_severity: pb::Severity::Warning,
    };
    assert_eq!(quiet.notification_for(&snap), None);
    assert!(quiet.notification_for(&failed).is_some());
    assert!(quiet.notification_for(&degraded).is_some());

    let critical_only = NotifyPrefs {
        min_severity: pb::Severity::Critical,
    };
    assert_eq!(critical_only.notification_for(&failed), None);
    assert!(critical_only.notification_for(&degraded).is_some());

    // Unspecified severity counts as info.
    let mut unspecified = snap.clone();
    unspecified.severity = pb::Severity::Unspecified as i32;
    assert!(all.wants(&unspecified));
    assert!(!quiet.wants(&unspecified));
}

#[test]
fn severity_names_parse() {
    assert_eq!(severity_from_name("info"), Some(pb::Severity::Info));
    assert_eq!(severity_from_name("Warning"), Some(pb::Severity::Warning));
    assert_eq!(severity_from_name("CRITICAL"), Some(pb::Severity::Critical));
    assert_eq!(severity_from_name("loud"), None);
}

#[test]
fn notify_shows_what_the_prefs_let_through() {
    let rec = RecordingNotifier::new();
    let quiet = NotifyPrefs {
        min_severity: pb::Severity::Warning,
    };
    let snap = created(pb::SnapshotOrigin::Backup, pb::Verification::Good);
    let failed = backup_ended(
        "failed",
        pb::Severity::Warning,
        "iMac: Time Machine backup failed: The backup disk is full",
        "",
    );
    assert_eq!(notify(&rec, &quiet, &snap).unwrap(), None);
    let shown = notify(&rec, &quiet, &failed).unwrap().expect("shown");
    assert_eq!(rec.shown(), vec![shown.clone()]);
    assert_eq!(shown.title, "Time Machine backup failed");

    // Through a trait object too.
    let dynamic: &dyn Notifier = &rec;
    notify(dynamic, &NotifyPrefs::default(), &snap).unwrap();
    assert_eq!(rec.shown().len(), 2);
    assert_eq!(rec.shown()[1].title, "Backup snapshot taken");
}

#[test]
fn sentences_are_capitalized_and_stopped() {
    assert_eq!(sentence(" pool is DEGRADED "), "Pool is DEGRADED.");
    assert_eq!(sentence("done!"), "Done!");
    assert_eq!(sentence(""), "");
    assert_eq!(stopped("iMac: x"), "iMac: x.");
    assert_eq!(stopped(""), "");
    assert_eq!(lower_first("The disk"), "the disk");
    assert_eq!(lower_first("APFS"), "APFS");
    assert_eq!(after_name("tank: x", "tank"), "x");
    assert_eq!(after_name("tankx: x", "tank"), "tankx: x");
    assert_eq!(after_name("x", ""), "x");
}

#[test]
fn notifications_serialize_with_lowercase_urgency() {
    let n = Notification {
        title: "t".into(),
        body: "b".into(),
        urgency: Urgency::Critical,
    };
    assert_eq!(
        serde_json::to_value(&n).unwrap(),
        serde_json::json!({"title": "t", "body": "b", "urgency": "critical"})
    );
}
