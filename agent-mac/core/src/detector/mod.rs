//! The backup detector: tells, from Time Machine's unified log and `tmutil`, when a backup ended
//! and how. Pure: no process is run and no clock is read here; the caller feeds lines and
//! `tmutil` outputs in.
//!
//! - [`log_line`]: one line of `log stream --style ndjson` → [`LogEvent`] (or nothing).
//! - [`recognizers`]: the table of Time Machine wordings → [`Recognized`]; [`reason_text`] for
//!   error codes.
//! - [`machine`]: [`BackupDetector`], events (and [`TmutilObservation`]s) → [`BackupOutcome`]s.
//! - [`tmutil`]: `tmutil status -X`, `destinationinfo -X` and `latestbackup` outputs.
//! - [`outcome`]: [`BackupOutcome`] and its JSON shape.
//! - [`stamp`]: backup stamps `YYYY-MM-DD-HHMMSS`.
//!
//! Apple documents none of the log wording, and it changes between releases: a success read from
//! the log is reported `confirmed: false` until `tmutil` agrees (see [`BackupDetector`]).
//! Failures and cancellations are reported confirmed at once.
//!
//! The stream is expected from
//! `log stream --style ndjson --info --predicate 'subsystem == "com.apple.TimeMachine" OR processImagePath CONTAINS "backupd"'`.

pub mod log_line;
pub mod machine;
pub mod outcome;
pub mod recognizers;
pub mod stamp;
pub mod tmutil;

pub use log_line::{LineParser, LogEvent, parse_line};
pub use machine::{BackupDetector, Phase, TmutilObservation};
pub use outcome::{BackupOutcome, Outcome};
pub use recognizers::{Recognized, reason_text, recognize};
pub use stamp::stamp_from_path;
pub use tmutil::{
    Destination, TmutilError, TmutilStatus, parse_destinations, parse_latestbackup, parse_status,
};

/// Runs a whole ndjson log text through a fresh detector, log only (no `tmutil`, so successes
/// stay unconfirmed). Returns the outcomes in order and the number of skipped lines: non-blank
/// lines that were not log events (the banner, a trailer, garbage, a truncated last line).
/// Well-formed events from other processes are not counted as skipped, only ignored.
pub fn replay(text: &str) -> (Vec<BackupOutcome>, usize) {
    let mut parser = LineParser::new();
    let mut detector = BackupDetector::new();
    let outcomes = text
        .lines()
        .filter_map(|line| parser.parse(line))
        .filter_map(|event| detector.feed(&event))
        .collect();
    (outcomes, parser.skipped())
}
