//! `com.apple.TimeMachine.MachineID.plist` bytes (XML or binary, from a share anyone with write
//! access controls) → `backstop_server::bundle::MachineId::parse`, `verification`, `mark_for`.
//!
//! Checks: no panic (also none inside the plist crate); deterministic; an error is one line
//! without control characters; a HostUUID is at most 128 bytes without control characters; the
//! mark follows `VerificationState` (non-zero: `bad`; 0 without a history: `unknown`).
#![no_main]

use backstop_fuzz::{assert_no_control, assert_same};
use backstop_server::bundle::{MachineId, Mark, VerificationStatus, mark_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = MachineId::parse(data);
    assert_same("MachineID", &parsed, &MachineId::parse(data));
    let machine = match parsed {
        Ok(machine) => machine,
        Err(e) => {
            assert_no_control("MachineID error", &e.to_string());
            return;
        }
    };
    if let Some(uuid) = &machine.host_uuid {
        assert!(
            uuid.len() <= 128 && !uuid.chars().any(char::is_control),
            "HostUUID {uuid:?}"
        );
    }
    let mark = mark_for(None, Some(&machine), Some("2026-06-14-145122"));
    match machine.verification() {
        VerificationStatus::Failed(n) => {
            assert_ne!(n, 0);
            assert_eq!(mark, Mark::Bad);
        }
        VerificationStatus::Fine => {
            assert_eq!(machine.verification_state, Some(0));
            assert_eq!(mark, Mark::Unknown, "good without a history");
        }
        VerificationStatus::Unknown => {
            assert_eq!(machine.verification_state, None);
            assert_eq!(mark, Mark::Unknown);
        }
    }
});
