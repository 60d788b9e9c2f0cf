//! `com.apple.TimeMachine.SnapshotHistory.plist` bytes (XML or binary, from a share anyone with
//! write access controls) → `backstop_server::bundle::SnapshotHistory::parse`, then what the
//! daemon does with a history: `latest`, `contains_backup`, `new_entries_since`,
//! `is_reset_from`, `mark_for`.
//!
//! Checks: no panic (also none inside the plist crate: libFuzzer aborts on any panic, even one
//! the reader's `catch_unwind` would hide); deterministic; an error is one line without control
//! characters; every entry's name is 1 to 255 bytes without `/` or control characters; a history
//! is neither reset from nor newer than itself; a listed backup marks `good` only with a fine
//! MachineID and `bad` with a failed one.
#![no_main]

use backstop_fuzz::{assert_no_control, assert_same};
use backstop_server::bundle::{MachineId, Mark, SnapshotHistory, mark_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = SnapshotHistory::parse(data);
    assert_same("SnapshotHistory", &parsed, &SnapshotHistory::parse(data));
    let history = match parsed {
        Ok(history) => history,
        Err(e) => {
            assert_no_control("SnapshotHistory error", &e.to_string());
            return;
        }
    };
    for entry in &history.entries {
        let name = &entry.name;
        assert!(
            !name.is_empty() && name.len() <= 255 && !name.contains('/'),
            "entry name {name:?}"
        );
        assert!(!name.chars().any(char::is_control), "entry name {name:?}");
    }
    assert_eq!(history.latest().is_some(), !history.entries.is_empty());
    assert!(
        !history.is_reset_from(&history),
        "a history is reset from itself"
    );
    assert!(history.new_entries_since(&history).is_empty());
    assert_eq!(
        history.new_entries_since(&SnapshotHistory::default()).len(),
        history.entries.len()
    );
    let fine = MachineId {
        verification_state: Some(0),
        ..MachineId::default()
    };
    let failed = MachineId {
        verification_state: Some(2),
        ..MachineId::default()
    };
    for entry in &history.entries {
        if let Some(stamp) = entry.stamp() {
            assert!(
                history.contains_backup(stamp),
                "{stamp} listed but not contained"
            );
            assert_eq!(
                mark_for(Some(&history), Some(&fine), Some(stamp)),
                Mark::Good
            );
            assert_eq!(
                mark_for(Some(&history), Some(&failed), Some(stamp)),
                Mark::Bad
            );
            assert_eq!(mark_for(Some(&history), None, Some(stamp)), Mark::Unknown);
        }
    }
    assert_eq!(mark_for(Some(&history), Some(&fine), None), Mark::Unknown);
});
