//! What `tmutil` prints → `backstop_agent_core::detector::parse_status` (`tmutil status -X`),
//! `parse_destinations` (`tmutil destinationinfo -X`), `parse_latestbackup` and
//! `stamp_from_path`, and `TmutilObservation::from_outputs`.
//!
//! Checks: no panic; deterministic; an error is one line; a progress is finite and not negative;
//! a latest backup is a valid stamp.
#![no_main]

use backstop_agent_core::detector::stamp::is_stamp;
use backstop_agent_core::detector::{
    TmutilObservation, parse_destinations, parse_latestbackup, parse_status, stamp_from_path,
};
use backstop_fuzz::{assert_one_line, assert_same, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = parse_status(data);
    assert_same("tmutil status", &status, &parse_status(data));
    match &status {
        Ok(s) => {
            if let Some(p) = s.percent {
                assert!(p.is_finite() && p >= 0.0, "percent {p}");
            }
        }
        Err(e) => assert_one_line("tmutil status error", &e.to_string()),
    }

    let destinations = parse_destinations(data);
    assert_same(
        "tmutil destinationinfo",
        &destinations,
        &parse_destinations(data),
    );
    if let Err(e) = &destinations {
        assert_one_line("tmutil destinationinfo error", &e.to_string());
    }

    let text = text(data);
    let latest = parse_latestbackup(&text);
    assert_eq!(latest, parse_latestbackup(&text));
    if let Some(stamp) = &latest {
        assert!(is_stamp(stamp), "latest backup {stamp:?}");
    }
    for line in text.lines() {
        if let Some(stamp) = stamp_from_path(line) {
            assert!(is_stamp(&stamp), "stamp {stamp:?} from {line:?}");
        }
    }
    if let Ok(s) = &status {
        let observation = TmutilObservation::from_outputs(s, &text);
        assert_eq!(observation.running, s.running);
        assert_eq!(observation.latest_backup, latest);
    }
});
