//! A whole unified-log stream, with `tmutil` answers between its lines, through
//! `backstop_agent_core::detector::BackupDetector` (and `replay`).
//!
//! The input is text, one line each: `log stream --style ndjson` lines (the fixtures are seeds
//! as they are), plus two kinds of lines of this target's own, which the log never prints:
//! - `tmutil R TEXT`: the agent asked tmutil; `R` is `1` when `Running` was true, and `TEXT` is
//!   what `tmutil latestbackup` printed (`observe_tmutil`);
//! - `abandon RFC3339`: the agent gives up on successes logged before that instant
//!   (`abandon_pending_before`).
//!
//! Checks: no panic; deterministic; `replay` counts sanely; a failure or cancellation comes out
//! confirmed at once and a success unconfirmed, at the instant of its line, with a valid stamp if
//! any and no error code; what the log says does not depend on the tmutil answers between its
//! lines (the events' outcomes equal `replay`'s); at most `MAX_PENDING` successes wait; tmutil
//! confirms nothing while running, and only pending successes; abandoning returns only successes
//! logged before the cutoff; at the end, an idle tmutil whose latest backup is past every stamp
//! confirms everything still pending.
#![no_main]

use backstop_agent_core::detector::machine::MAX_PENDING;
use backstop_agent_core::detector::recognizers::CANCELED_CODE;
use backstop_agent_core::detector::stamp::is_stamp;
use backstop_agent_core::detector::{
    BackupDetector, BackupOutcome, LineParser, Outcome, TmutilObservation, parse_latestbackup,
    replay,
};
use backstop_fuzz::{assert_same, text};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;

fn check_pending(detector: &BackupDetector) {
    let pending: Vec<&BackupOutcome> = detector.pending().collect();
    assert!(pending.len() <= MAX_PENDING, "{} pending", pending.len());
    assert_eq!(detector.awaiting_confirmation(), !pending.is_empty());
    for p in pending {
        assert!(
            p.outcome == Outcome::Completed && !p.confirmed,
            "pending {p:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let text = text(data);

    let replayed = replay(&text);
    assert_same("replay", &replayed, &replay(&text));
    let (replay_outcomes, skipped) = replayed;
    let non_blank = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(skipped <= non_blank);
    assert!(replay_outcomes.len() + skipped <= non_blank);

    let mut parser = LineParser::new();
    let mut detector = BackupDetector::new();
    let mut from_log = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("tmutil ") {
            let (running, latest) = rest.split_once(' ').unwrap_or((rest, ""));
            let observation = TmutilObservation {
                running: running == "1",
                latest_backup: parse_latestbackup(latest).or_else(|| Some(latest.to_owned())),
            };
            let before = detector.pending().count();
            let confirmed = detector.observe_tmutil(&observation);
            if observation.running {
                assert!(
                    confirmed.is_empty(),
                    "confirmed while running: {confirmed:?}"
                );
            }
            for c in &confirmed {
                assert!(
                    c.confirmed && c.outcome == Outcome::Completed,
                    "confirmed {c:?}"
                );
            }
            assert_eq!(before - confirmed.len(), detector.pending().count());
            check_pending(&detector);
            continue;
        }
        if let Some(rest) = line.strip_prefix("abandon ") {
            if let Ok(cutoff) = rest.trim().parse::<Timestamp>() {
                let before = detector.pending().count();
                let abandoned = detector.abandon_pending_before(cutoff);
                for a in &abandoned {
                    assert!(!a.confirmed && a.at < cutoff, "abandoned {a:?} at {cutoff}");
                }
                assert!(detector.pending().all(|p| p.at >= cutoff));
                assert_eq!(before - abandoned.len(), detector.pending().count());
                check_pending(&detector);
            }
            continue;
        }
        let Some(event) = parser.parse(line) else {
            continue;
        };
        if let Some(outcome) = detector.feed(&event) {
            assert_eq!(outcome.at, event.at, "{outcome:?}");
            assert_eq!(
                outcome.confirmed,
                outcome.outcome != Outcome::Completed,
                "{outcome:?}"
            );
            if let Some(stamp) = &outcome.backup {
                assert!(is_stamp(stamp), "{outcome:?}");
            }
            match outcome.outcome {
                Outcome::Completed => assert!(outcome.code.is_none() && outcome.reason.is_none()),
                Outcome::Failed => assert_ne!(outcome.code, Some(CANCELED_CODE)),
                Outcome::Cancelled => {
                    assert!(
                        matches!(outcome.code, None | Some(CANCELED_CODE)),
                        "{outcome:?}"
                    )
                }
            }
            from_log.push(outcome);
        }
        check_pending(&detector);
    }
    assert_eq!(
        from_log, replay_outcomes,
        "tmutil answers changed what the log says"
    );

    let pending = detector.pending().count();
    let confirmed = detector.observe_tmutil(&TmutilObservation {
        running: false,
        latest_backup: Some("9999-12-31-235959".into()),
    });
    assert_eq!(confirmed.len(), pending, "a latest backup past every stamp");
    assert!(!detector.awaiting_confirmation());
});
