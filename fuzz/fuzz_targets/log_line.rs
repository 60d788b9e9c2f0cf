//! Lines of `log stream --style ndjson` → `backstop_agent_core::detector::LineParser` /
//! `parse_line` / `parse_log_timestamp`, and each event's message through `recognize`.
//!
//! Checks: no panic; deterministic; surrounding whitespace does not change a line's reading;
//! the parser's counters add up (every line is parsed, skipped, or blank); a recognised completion
//! names only a valid stamp; every error code has a sentence.
#![no_main]

use backstop_agent_core::detector::log_line::parse_log_timestamp;
use backstop_agent_core::detector::stamp::is_stamp;
use backstop_agent_core::detector::{LineParser, Recognized, parse_line, reason_text, recognize};
use backstop_fuzz::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let mut parser = LineParser::new();
    let mut blank = 0;
    for line in text.lines() {
        let event = parser.parse(line);
        if line.trim().is_empty() {
            blank += 1;
        }
        assert_eq!(event, parse_line(line), "not deterministic: {line:?}");
        assert_eq!(
            event,
            parse_line(line.trim()),
            "whitespace changed {line:?}"
        );
        let _ = parse_log_timestamp(line);
        let Some(event) = event else {
            continue;
        };
        let _ = event.is_time_machine();
        let recognized = recognize(&event.message);
        assert_eq!(recognized, recognize(&event.message));
        match recognized {
            Some(Recognized::Completed {
                backup: Some(stamp),
            }) => assert!(is_stamp(&stamp), "completion names {stamp:?}"),
            Some(Recognized::Failed {
                code: Some(code), ..
            }) => assert!(!reason_text(code).is_empty()),
            _ => {}
        }
    }
    assert_eq!(
        parser.parsed() + parser.skipped() + blank,
        text.lines().count(),
        "the counters do not add up"
    );
});
