//! The detector's state machine: confirmation by `tmutil`, repeats, phases.

use backstop_agent_core::detector::machine::{DUPLICATE_WINDOW, MAX_PENDING};
use backstop_agent_core::detector::{
    BackupDetector, BackupOutcome, LineParser, LogEvent, Outcome, Phase, TmutilObservation,
    parse_status,
};
use jiff::Timestamp;
use jiff::tz::Offset;

macro_rules! fixture {
    ($dir:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $dir,
            "/",
            $name
        ))
    };
}

const BACKUPD: &str = "/System/Library/CoreServices/backupd.bundle/Contents/Resources/backupd";

/// Feeds a whole ndjson text; returns the outcomes.
fn feed_text(detector: &mut BackupDetector, text: &str) -> Vec<BackupOutcome> {
    let mut parser = LineParser::new();
    text.lines()
        .filter_map(|line| parser.parse(line))
        .filter_map(|event| detector.feed(&event))
        .collect()
}

/// A Time Machine event at a UTC+10 local time like "2026-06-14 14:51:22".
fn event(local: &str, message: &str) -> LogEvent {
    let offset = Offset::from_hours(10).unwrap();
    let at = format!("{}+10:00", local.replace(' ', "T"))
        .parse::<Timestamp>()
        .unwrap();
    LogEvent {
        at,
        offset,
        message: message.to_owned(),
        message_type: "Info".into(),
        subsystem: "com.apple.TimeMachine".into(),
        category: "General".into(),
        process: BACKUPD.into(),
    }
}

fn idle(latest: &str) -> TmutilObservation {
    TmutilObservation {
        running: false,
        latest_backup: Some(latest.to_owned()),
    }
}

fn confirmed(outcome: &BackupOutcome) -> BackupOutcome {
    BackupOutcome {
        confirmed: true,
        ..outcome.clone()
    }
}

#[test]
fn tahoe_success_confirmed_only_when_idle_and_latest_reaches_the_stamp() {
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "tahoe-smb-success.ndjson"),
    );
    assert_eq!(outcomes.len(), 1);
    let success = &outcomes[0];
    assert!(!success.confirmed);
    assert!(detector.awaiting_confirmation());
    assert_eq!(detector.pending().collect::<Vec<_>>(), vec![success]);

    // Still running: no confirmation, even with the right stamp.
    let running = TmutilObservation {
        running: true,
        latest_backup: Some("2026-06-14-145122".into()),
    };
    assert_eq!(detector.observe_tmutil(&running), vec![]);
    // No latest backup (no Full Disk Access).
    assert_eq!(
        detector.observe_tmutil(&TmutilObservation {
            running: false,
            latest_backup: None
        }),
        vec![]
    );
    // A stale latest (the previous backup) does not confirm.
    assert_eq!(detector.observe_tmutil(&idle("2026-06-14-135003")), vec![]);
    // Nor does something that is not a backup path.
    assert_eq!(
        detector.observe_tmutil(&idle("/Volumes/TM/2026-06-14-145122.inprogress")),
        vec![]
    );
    assert!(detector.awaiting_confirmation());

    // Idle, latest is this backup (as tmutil latestbackup prints it): confirmed.
    let path = "/Volumes/.timemachine/vault._smb._tcp.local./1BA82C89-0C1E-4F9A-9D3B-3B2C4A1E2F10/MattBookPro/2026-06-14-145122.backup\n";
    assert_eq!(
        detector.observe_tmutil(&idle(path)),
        vec![confirmed(success)]
    );
    assert!(!detector.awaiting_confirmation());
    assert_eq!(
        detector.observe_tmutil(&idle(path)),
        vec![],
        "confirmed once"
    );
    assert_eq!(
        serde_json::to_string(&confirmed(success)).unwrap(),
        r#"{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":true}"#
    );
}

#[test]
fn latest_moved_past_the_stamp_confirms() {
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "monterey-smb-success.ndjson"),
    );
    assert_eq!(
        detector.observe_tmutil(&idle("/Volumes/TM/Backups.backupdb/Mac/2022-05-21-202409")),
        vec![confirmed(&outcomes[0])]
    );
}

#[test]
fn observation_from_tmutil_outputs() {
    let idle_status = parse_status(fixture!("plist", "tmutil-status-idle.plist")).unwrap();
    let copying = parse_status(fixture!("plist", "tmutil-status-copying.plist")).unwrap();
    let latest = "/Volumes/.timemachine/vault._smb._tcp.local./1BA82C89-0C1E-4F9A-9D3B-3B2C4A1E2F10/MattBookPro/2026-06-14-145122.backup\n";
    let no_access = "tmutil: latestbackup requires Full Disk Access privileges.\n";

    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "tahoe-smb-success.ndjson"),
    );
    let copying_obs = TmutilObservation::from_outputs(&copying, latest);
    assert_eq!(
        copying_obs,
        TmutilObservation {
            running: true,
            latest_backup: Some("2026-06-14-145122".into())
        }
    );
    assert_eq!(detector.observe_tmutil(&copying_obs), vec![]);
    assert_eq!(
        detector.observe_tmutil(&TmutilObservation::from_outputs(&idle_status, no_access)),
        vec![]
    );
    assert_eq!(
        detector.observe_tmutil(&TmutilObservation::from_outputs(&idle_status, latest)),
        vec![confirmed(&outcomes[0])]
    );
}

#[test]
fn failures_and_cancellations_need_no_confirmation() {
    for text in [
        fixture!("unified-log", "tahoe-smb-failed-network.ndjson"),
        fixture!("unified-log", "synthetic-canceled.ndjson"),
        fixture!("unified-log", "synthetic-failure-forms.ndjson"),
    ] {
        let mut detector = BackupDetector::new();
        let outcomes = feed_text(&mut detector, text);
        assert!(!outcomes.is_empty());
        assert!(
            outcomes
                .iter()
                .all(|o| o.confirmed && o.outcome != Outcome::Completed)
        );
        assert!(!detector.awaiting_confirmation());
        assert_eq!(detector.observe_tmutil(&idle("9999-12-31-235959")), vec![]);
    }
}

#[test]
fn stampless_success_needs_a_latest_newer_than_the_backup_start() {
    // Sequoia: started 2024-10-01 08:00:00.1 (+0530), "Backup succeeded" with no stamp.
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "synthetic-sequoia-success.ndjson"),
    );
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].backup, None);
    assert_eq!(
        detector.observe_tmutil(&idle("2024-10-01-070012")),
        vec![],
        "previous backup"
    );
    assert_eq!(
        detector.observe_tmutil(&idle("2024-10-01-080000")),
        vec![],
        "same second as the start: could be older"
    );
    assert_eq!(
        detector.observe_tmutil(&idle("/Volumes/TM/2024-10-01-080640.backup")),
        vec![confirmed(&outcomes[0])]
    );
}

#[test]
fn sierra_stampless_success_confirmed_by_backupdb_path() {
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "synthetic-sierra-success.ndjson"),
    );
    assert_eq!(
        detector.observe_tmutil(&idle("/Volumes/TM/Backups.backupdb/Mac/2017-03-09-101530")),
        vec![]
    );
    assert_eq!(
        detector.observe_tmutil(&idle("/Volumes/TM/Backups.backupdb/Mac/2017-03-10-101530")),
        vec![confirmed(&outcomes[0])]
    );
}

#[test]
fn two_pending_successes_confirmed_in_turn() {
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "synthetic-monterey-two-backups.ndjson"),
    );
    assert_eq!(outcomes.len(), 2);
    assert_eq!(detector.pending().count(), 2);
    assert_eq!(
        detector.observe_tmutil(&idle("2022-05-21-192820")),
        vec![confirmed(&outcomes[0])]
    );
    assert_eq!(detector.pending().collect::<Vec<_>>(), vec![&outcomes[1]]);
    assert_eq!(
        detector.observe_tmutil(&idle("2022-05-21-202409")),
        vec![confirmed(&outcomes[1])]
    );
    assert!(!detector.awaiting_confirmation());
}

#[test]
fn both_pending_confirmed_at_once_when_latest_is_past_both() {
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "synthetic-monterey-two-backups.ndjson"),
    );
    assert_eq!(
        detector.observe_tmutil(&idle("2022-05-21-212000")),
        outcomes.iter().map(confirmed).collect::<Vec<_>>()
    );
}

#[test]
fn abandon_pending() {
    let mut detector = BackupDetector::new();
    let outcomes = feed_text(
        &mut detector,
        fixture!("unified-log", "synthetic-monterey-two-backups.ndjson"),
    );
    let cutoff: Timestamp = "2022-05-22T03:00:00Z".parse().unwrap();
    assert_eq!(
        detector.abandon_pending_before(cutoff),
        vec![outcomes[0].clone()]
    );
    assert_eq!(detector.pending().collect::<Vec<_>>(), vec![&outcomes[1]]);
    assert_eq!(detector.observe_tmutil(&idle("2022-05-21-192820")), vec![]);
}

#[test]
fn phases() {
    let mut detector = BackupDetector::new();
    assert_eq!(detector.phase(), Phase::Idle);
    detector.feed(&event(
        "2026-06-14 14:49:55",
        r#"Attempting backup with mode "automatic backup""#,
    ));
    assert_eq!(detector.phase(), Phase::Running);
    detector.feed(&event("2026-06-14 14:50:10", "connection invalid"));
    assert_eq!(detector.phase(), Phase::Running);
    assert_eq!(
        detector.feed(&event("2026-06-14 14:51:22", "Completing backup")),
        None
    );
    assert_eq!(detector.phase(), Phase::Completing);
    assert!(
        !detector.awaiting_confirmation(),
        "Completing alone reports nothing"
    );
    let out = detector
        .feed(&event(
            "2026-06-14 14:51:23",
            "Successfully completed backing up 1 MB to '/Volumes/TM/2026-06-14-145122.backup'",
        ))
        .unwrap();
    assert_eq!(out.backup.as_deref(), Some("2026-06-14-145122"));
    assert_eq!(detector.phase(), Phase::Idle);
}

#[test]
fn foreign_processes_are_ignored() {
    let mut detector = BackupDetector::new();
    let mut foreign = event("2026-06-14 14:49:55", "Backup succeeded");
    foreign.subsystem = "com.example.photosync".into();
    foreign.process = "/Applications/PhotoSync.app/Contents/MacOS/PhotoSync".into();
    assert_eq!(detector.feed(&foreign), None);
    // backupd without a subsystem (older releases) counts.
    let mut old = event("2026-06-14 14:49:56", "Backup succeeded");
    old.subsystem.clear();
    assert!(detector.feed(&old).is_some());
}

#[test]
fn repeated_stampless_success_then_stamp_is_one_outcome_confirmed_with_the_stamp() {
    let mut detector = BackupDetector::new();
    detector.feed(&event("2026-06-14 14:00:00", "Starting automatic backup"));
    let first = detector
        .feed(&event("2026-06-14 14:10:00", "Backup succeeded"))
        .unwrap();
    assert_eq!(first.backup, None);
    assert_eq!(
        detector.feed(&event("2026-06-14 14:10:01", "Backup succeeded")),
        None
    );
    assert_eq!(
        detector.feed(&event(
            "2026-06-14 14:10:02",
            "Completed backup: 2026-06-14-140958.backup"
        )),
        None
    );
    assert_eq!(
        detector.feed(&event(
            "2026-06-14 14:10:03",
            "Completed backup: 2026-06-14-140958"
        )),
        None
    );
    // The stamp is now known: the stale previous backup does not confirm, this one does.
    assert_eq!(detector.observe_tmutil(&idle("2026-06-14-140001")), vec![]);
    assert_eq!(
        detector.observe_tmutil(&idle("2026-06-14-140958")),
        vec![BackupOutcome {
            backup: Some("2026-06-14-140958".into()),
            confirmed: true,
            ..first
        }]
    );
}

#[test]
fn repeats_and_new_backups() {
    let mut detector = BackupDetector::new();
    let n = |d: &mut BackupDetector, t: &str, m: &str| d.feed(&event(t, m)).is_some();
    assert!(n(
        &mut detector,
        "2026-06-14 10:00:00",
        "Backup failed: BACKUP_FAILED_DISCONNECTED_NETWORK (26)"
    ));
    assert!(
        !n(&mut detector, "2026-06-14 10:00:01", "Backup failed."),
        "same failure said twice"
    );
    // A different kind of ending is a different backup.
    assert!(n(&mut detector, "2026-06-14 10:00:02", "Backup canceled."));
    assert!(!n(&mut detector, "2026-06-14 10:00:03", "Backup canceled."));
    // Past the window, with no start line: a new backup.
    let later = (DUPLICATE_WINDOW.as_secs() / 60 + 1) as i32;
    assert!(n(
        &mut detector,
        &format!("2026-06-14 10:{later:02}:04"),
        "Backup canceled."
    ));
    // A start line in between: a new backup even seconds later.
    assert!(n(&mut detector, "2026-06-14 11:00:00", "Backup succeeded"));
    assert!(!n(
        &mut detector,
        "2026-06-14 11:00:01",
        "Backup completed successfully."
    ));
    detector.feed(&event("2026-06-14 11:00:02", "Starting manual backup"));
    assert!(n(&mut detector, "2026-06-14 11:00:30", "Backup succeeded"));
    // Two different stamps are two backups; the same stamp again is not, however late.
    assert!(n(
        &mut detector,
        "2026-06-14 12:00:00",
        "Completed backup: 2026-06-14-115959"
    ));
    assert!(n(
        &mut detector,
        "2026-06-14 12:00:01",
        "Completed backup: 2026-06-14-120000"
    ));
    assert!(!n(
        &mut detector,
        "2026-06-14 18:00:00",
        "Completed backup: 2026-06-14-115959"
    ));
    detector.feed(&event("2026-06-14 19:00:00", "Starting manual backup"));
    assert!(!n(
        &mut detector,
        "2026-06-14 19:10:00",
        "Completed backup: 2026-06-14-120000"
    ));
}

#[test]
fn pending_is_bounded() {
    let mut detector = BackupDetector::new();
    for hour in 0..(MAX_PENDING + 5) {
        let day = 1 + hour / 24;
        let h = hour % 24;
        let t = format!("2026-07-{day:02} {h:02}:10:00");
        detector.feed(&event(&t, "Starting automatic backup"));
        let stamp = format!("2026-07-{day:02}-{h:02}0959");
        let t = format!("2026-07-{day:02} {h:02}:10:00");
        assert!(
            detector
                .feed(&event(&t, &format!("Completed backup: {stamp}")))
                .is_some()
        );
    }
    assert_eq!(detector.pending().count(), MAX_PENDING);
    assert_eq!(
        detector.pending().next().unwrap().backup.as_deref(),
        Some("2026-07-01-050959"),
        "the oldest were dropped"
    );
}
