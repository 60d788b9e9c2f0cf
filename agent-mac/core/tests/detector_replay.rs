//! Replays every unified-log fixture through the detector and asserts the outcomes exactly.

use backstop_agent_core::detector::{BackupDetector, BackupOutcome, LineParser, Phase, replay};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/unified-log/",
            $name
        ))
    };
}

fn json(outcomes: &[BackupOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect()
}

fn assert_replay(text: &str, expected: &[&str], skipped: usize) {
    let (outcomes, got_skipped) = replay(text);
    assert_eq!(json(&outcomes), expected);
    assert_eq!(got_skipped, skipped, "skipped lines");
}

#[test]
fn monterey_smb_success() {
    assert_replay(
        fixture!("monterey-smb-success.ndjson"),
        &[
            r#"{"outcome":"completed","backup":"2022-05-21-192820","code":null,"reason":null,"at":"2022-05-22T02:28:21.720633Z","confirmed":false}"#,
        ],
        1,
    );
}

#[test]
fn tahoe_smb_success_is_one_outcome() {
    assert_replay(
        fixture!("tahoe-smb-success.ndjson"),
        &[
            r#"{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":false}"#,
        ],
        1,
    );
}

#[test]
fn tahoe_smb_failed_network() {
    assert_replay(
        fixture!("tahoe-smb-failed-network.ndjson"),
        &[
            r#"{"outcome":"failed","backup":null,"code":26,"reason":"BACKUP_FAILED_DISCONNECTED_NETWORK","at":"2026-09-02T22:02:04.2Z","confirmed":true}"#,
        ],
        1,
    );
}

#[test]
fn sierra_success_without_subsystem_and_with_trailer() {
    assert_replay(
        fixture!("synthetic-sierra-success.ndjson"),
        &[
            r#"{"outcome":"completed","backup":null,"code":null,"reason":null,"at":"2017-03-10T15:15:33.5Z","confirmed":false}"#,
        ],
        2,
    );
}

#[test]
fn catalina_success() {
    assert_replay(
        fixture!("synthetic-catalina-success.ndjson"),
        &[
            r#"{"outcome":"completed","backup":"2020-02-03-101500","code":null,"reason":null,"at":"2020-02-03T09:15:01.431Z","confirmed":false}"#,
        ],
        1,
    );
}

#[test]
fn big_sur_success_with_dot_backup() {
    assert_replay(
        fixture!("synthetic-bigsur-success-dotbackup.ndjson"),
        &[
            r#"{"outcome":"completed","backup":"2021-03-04-221507","code":null,"reason":null,"at":"2021-03-04T22:15:08.002Z","confirmed":false}"#,
        ],
        1,
    );
}

#[test]
fn sequoia_success() {
    assert_replay(
        fixture!("synthetic-sequoia-success.ndjson"),
        &[
            r#"{"outcome":"completed","backup":null,"code":null,"reason":null,"at":"2024-10-01T02:36:42.777Z","confirmed":false}"#,
        ],
        1,
    );
}

#[test]
fn tahoe_success_with_noise_garbage_foreign_process_repeat_and_truncated_end() {
    // Skipped: the banner, "this is not json", a line whose eventMessage is a number, the
    // truncated last line. The foreign "Backup succeeded" and the TRY_ERROR_BLOCK line that
    // quotes a failure are ignored; the repeated success line is not a second outcome.
    assert_replay(
        fixture!("synthetic-tahoe-success-noisy.ndjson"),
        &[
            r#"{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":false}"#,
        ],
        4,
    );
}

#[test]
fn tahoe_failed_authentication() {
    assert_replay(
        fixture!("synthetic-tahoe-failed-auth.ndjson"),
        &[
            r#"{"outcome":"failed","backup":null,"code":29,"reason":"BACKUP_FAILED_AUTHENTICATION_ERROR","at":"2026-06-30T23:00:04.25Z","confirmed":true}"#,
        ],
        2,
    );
}

#[test]
fn every_failure_form() {
    assert_replay(
        fixture!("synthetic-failure-forms.ndjson"),
        &[
            r#"{"outcome":"failed","backup":null,"code":26,"reason":"BACKUP_FAILED_DISCONNECTED_NETWORK","at":"2026-07-02T00:01:00Z","confirmed":true}"#,
            r#"{"outcome":"failed","backup":null,"code":null,"reason":"BACKUP_FAILED_AUTHENTICATION_ERROR","at":"2026-07-02T01:01:00Z","confirmed":true}"#,
            r#"{"outcome":"failed","backup":null,"code":19,"reason":null,"at":"2026-07-02T02:01:00Z","confirmed":true}"#,
            r#"{"outcome":"failed","backup":null,"code":501,"reason":null,"at":"2026-07-02T03:01:00Z","confirmed":true}"#,
            r#"{"outcome":"failed","backup":null,"code":null,"reason":null,"at":"2026-07-02T04:01:00Z","confirmed":true}"#,
            // Code 22 is a cancellation; the "Backup canceled." right after it is the same one.
            r#"{"outcome":"cancelled","backup":null,"code":22,"reason":null,"at":"2026-07-02T05:01:00Z","confirmed":true}"#,
        ],
        1,
    );
}

#[test]
fn canceled() {
    assert_replay(
        fixture!("synthetic-canceled.ndjson"),
        &[
            r#"{"outcome":"cancelled","backup":null,"code":null,"reason":null,"at":"2022-05-22T03:20:40.5Z","confirmed":true}"#,
        ],
        1,
    );
}

#[test]
fn started_then_nothing() {
    let text = fixture!("synthetic-started-only.ndjson");
    assert_replay(text, &[], 1);
    let mut detector = BackupDetector::new();
    let mut parser = LineParser::new();
    for event in text.lines().filter_map(|l| parser.parse(l)) {
        assert_eq!(detector.feed(&event), None);
    }
    assert_eq!(detector.phase(), Phase::Running);
    assert!(!detector.awaiting_confirmation());
}

#[test]
fn two_backups_and_a_repeated_completion_line() {
    assert_replay(
        fixture!("synthetic-monterey-two-backups.ndjson"),
        &[
            r#"{"outcome":"completed","backup":"2022-05-21-192820","code":null,"reason":null,"at":"2022-05-22T02:28:21.720633Z","confirmed":false}"#,
            r#"{"outcome":"completed","backup":"2022-05-21-202409","code":null,"reason":null,"at":"2022-05-22T03:24:10.3Z","confirmed":false}"#,
        ],
        2,
    );
}

#[test]
fn crlf_blank_lines_and_empty_input() {
    let text = fixture!("monterey-smb-success.ndjson").replace('\n', "\r\n\r\n");
    let (outcomes, skipped) = replay(&text);
    assert_eq!(outcomes.len(), 1);
    assert_eq!(skipped, 1);
    assert_eq!(replay(""), (vec![], 0));
}

#[test]
fn fixtures_concatenated_keep_their_outcomes() {
    // The two Tahoe captures, one after the other, as one long stream (banner twice).
    let text = [
        fixture!("tahoe-smb-success.ndjson"),
        fixture!("tahoe-smb-failed-network.ndjson"),
    ]
    .concat();
    let (outcomes, skipped) = replay(&text);
    assert_eq!(
        json(&outcomes),
        [
            r#"{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":false}"#,
            r#"{"outcome":"failed","backup":null,"code":26,"reason":"BACKUP_FAILED_DISCONNECTED_NETWORK","at":"2026-09-02T22:02:04.2Z","confirmed":true}"#,
        ]
    );
    assert_eq!(skipped, 2);
}
