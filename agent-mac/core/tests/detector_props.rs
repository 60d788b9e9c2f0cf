//! Properties: the parsers and the detector never panic, whatever they are fed.

use backstop_agent_core::detector::{
    BackupDetector, LogEvent, Outcome, TmutilObservation, parse_destinations, parse_latestbackup,
    parse_line, parse_status, recognize, replay, stamp_from_path,
};
use jiff::Timestamp;
use jiff::tz::Offset;
use proptest::prelude::*;

const TAHOE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/unified-log/tahoe-smb-success.ndjson"
));
const STATUS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plist/tmutil-status-copying.plist"
));

const MESSAGES: &[&str] = &[
    "Starting automatic backup",
    "Starting manual backup",
    r#"Attempting backup with mode "automatic backup""#,
    "Completing backup",
    "Backup completed successfully.",
    "Completed backup: 2022-05-21-192820",
    "Completed backup: 2022-05-21-202409.backup",
    "Backup succeeded",
    "Successfully completed backing up 205.7 MB to '/Volumes/X/2026-06-14-145122.backup'",
    "Backup failed: BACKUP_FAILED_DISCONNECTED_NETWORK (26)",
    "Backup failed: BACKUP_FAILED_AUTHENTICATION_ERROR (29)",
    "Backup failed with error: 22",
    "Backup failed.",
    "Backup canceled.",
    "connection invalid",
    "TRY_ERROR_BLOCK",
    "Limiting logging for limit",
];

/// A JSON log line built from parts, some of them arbitrary.
fn json_line() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            prop::sample::select(MESSAGES).prop_map(str::to_owned),
            any::<String>()
        ],
        prop_oneof![
            Just("2026-06-14 14:49:55.112000+1000".to_owned()),
            "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{0,9}[+-][0-9]{4}",
            any::<String>(),
        ],
    )
        .prop_map(|(message, timestamp)| {
            serde_json::json!({
                "eventMessage": message,
                "timestamp": timestamp,
                "subsystem": "com.apple.TimeMachine",
                "messageType": "Info",
            })
            .to_string()
        })
}

/// A line of a stream: a JSON log line, a cut-off one, or anything.
fn stream_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => json_line(),
        1 => (json_line(), any::<prop::sample::Index>()).prop_map(|(line, cut)| {
            let cut = cut.index(line.len() + 1);
            let cut = (0..=cut).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            line[..cut].to_owned()
        }),
        1 => any::<String>(),
        1 => Just(r#"{"count":3,"finished":1}"#.to_owned()),
    ]
}

fn event_at(seconds: i64, offset_hours: i8, message: &str) -> LogEvent {
    LogEvent {
        at: Timestamp::from_second(seconds).unwrap(),
        offset: Offset::from_hours(offset_hours).unwrap(),
        message: message.to_owned(),
        message_type: "Info".into(),
        subsystem: "com.apple.TimeMachine".into(),
        category: String::new(),
        process: String::new(),
    }
}

proptest! {
    #[test]
    fn parse_line_never_panics(line in any::<String>()) {
        let _ = parse_line(&line);
    }

    #[test]
    fn recognize_never_panics(message in any::<String>()) {
        let _ = recognize(&message);
    }

    #[test]
    fn replay_never_panics_and_counts_sanely(lines in prop::collection::vec(stream_line(), 0..40)) {
        let text = lines.join("\n");
        let (outcomes, skipped) = replay(&text);
        let non_blank = text.lines().filter(|l| !l.trim().is_empty()).count();
        prop_assert!(skipped <= non_blank);
        prop_assert!(outcomes.len() + skipped <= non_blank);
        for outcome in &outcomes {
            prop_assert_eq!(outcome.confirmed, outcome.outcome != Outcome::Completed);
        }
    }

    #[test]
    fn replay_of_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = replay(&text);
    }

    #[test]
    fn fixture_cut_anywhere_never_panics(cut in any::<prop::sample::Index>()) {
        let cut = cut.index(TAHOE.len() + 1);
        let _ = replay(&TAHOE[..cut]);
    }

    #[test]
    fn detector_on_random_sequences(
        steps in prop::collection::vec(
            (prop::sample::select(MESSAGES), 0i64..4_000_000_000, -12i8..=14),
            0..60,
        ),
        observations in prop::collection::vec((any::<bool>(), prop::option::of("[0-9a-z/.-]{0,30}")), 0..5),
    ) {
        let mut detector = BackupDetector::new();
        let mut completed = 0;
        for (message, seconds, offset) in steps {
            if let Some(outcome) = detector.feed(&event_at(seconds, offset, message)) {
                prop_assert_eq!(outcome.confirmed, outcome.outcome != Outcome::Completed);
                completed += usize::from(outcome.outcome == Outcome::Completed);
            }
            prop_assert!(detector.pending().count() <= completed);
        }
        for (running, latest) in observations {
            let confirmed = detector.observe_tmutil(&TmutilObservation { running, latest_backup: latest });
            prop_assert!(confirmed.iter().all(|o| o.confirmed && o.outcome == Outcome::Completed));
        }
        // A latest past every stamp, with Time Machine idle, confirms everything still pending.
        let pending = detector.pending().count();
        let confirmed = detector.observe_tmutil(&TmutilObservation {
            running: false,
            latest_backup: Some("9999-12-31-235959".into()),
        });
        prop_assert_eq!(confirmed.len(), pending);
        prop_assert!(!detector.awaiting_confirmation());
    }

    #[test]
    fn tmutil_parsers_never_panic(text in any::<String>()) {
        let _ = parse_status(&text);
        let _ = parse_destinations(&text);
        let _ = parse_latestbackup(&text);
        let _ = stamp_from_path(&text);
    }

    #[test]
    fn tmutil_plist_cut_or_bytes_flipped_never_panics(
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = STATUS.as_bytes()[..cut.index(STATUS.len() + 1)].to_vec();
        for (at, byte) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        let _ = parse_status(&bytes);
        let _ = parse_destinations(&bytes);
    }
}
