//! One line of `log stream --style ndjson` (or `log show --style ndjson`) output.
//!
//! The stream starts with a non-JSON banner (`Filtering the log data using ...`), may end with a
//! `{"count":…,"finished":…}` trailer, and in between has one JSON object per line. Lines that are
//! not a log event with a message and a readable time (the banner, the trailer, garbage, a line
//! cut short when the stream was stopped) give `None`; nothing here panics.

use jiff::Timestamp;
use jiff::fmt::strtime;
use jiff::tz::Offset;
use serde_json::{Map, Value};

/// The subsystem Time Machine logs under.
pub const TIME_MACHINE_SUBSYSTEM: &str = "com.apple.TimeMachine";

/// One unified-log event, reduced to what the detector needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// When the line was logged.
    pub at: Timestamp,
    /// The UTC offset the line was printed with: the Mac's local offset at that moment, which is
    /// also the wall clock Time Machine names its backups after.
    pub offset: Offset,
    /// `eventMessage`, the text the recognisers match.
    pub message: String,
    /// `messageType`: `Default`, `Info`, `Debug`, `Error` or `Fault` (numbers are kept as text).
    pub message_type: String,
    /// `subsystem`, empty when absent (older releases log backupd without one).
    pub subsystem: String,
    /// `category`, empty when absent.
    pub category: String,
    /// `processImagePath`, the full path of the logging process, empty when absent.
    pub process: String,
}

impl LogEvent {
    /// Whether the event comes from Time Machine: the same test as the `log stream` predicate
    /// (`subsystem == "com.apple.TimeMachine" OR processImagePath CONTAINS "backupd"`), so that
    /// feeding an unfiltered stream cannot turn another program's "Backup succeeded" into a backup.
    pub fn is_time_machine(&self) -> bool {
        self.subsystem == TIME_MACHINE_SUBSYSTEM || self.process.contains("backupd")
    }
}

/// Parses one line of ndjson log output into an event, or `None` when the line is not one.
pub fn parse_line(line: &str) -> Option<LogEvent> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let object: Map<String, Value> = serde_json::from_str(line).ok()?;
    let message = object.get("eventMessage")?.as_str()?.to_owned();
    let (at, offset) = parse_log_timestamp(object.get("timestamp")?.as_str()?)?;
    Some(LogEvent {
        at,
        offset,
        message,
        message_type: text_of(object.get("messageType")),
        subsystem: text_of(object.get("subsystem")),
        category: text_of(object.get("category")),
        process: text_of(object.get("processImagePath")),
    })
}

/// A field as text: strings as they are, numbers and booleans printed, absent or null as "".
fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Parses the `log` tool's timestamp, `2026-06-14 14:49:55.112000+1000` (the fraction optional,
/// the offset also accepted as `+10:00`, a `T` also accepted between date and time).
pub fn parse_log_timestamp(s: &str) -> Option<(Timestamp, Offset)> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
    ];
    let s = s.trim();
    FORMATS.iter().find_map(|format| {
        let tm = strtime::parse(format, s).ok()?;
        let offset = tm.offset()?;
        let at = tm.to_timestamp().ok()?;
        Some((at, offset))
    })
}

/// Parses lines and counts those that were not events.
#[derive(Debug, Clone, Default)]
pub struct LineParser {
    parsed: usize,
    skipped: usize,
}

impl LineParser {
    /// A parser with both counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one line; a line that is not blank and not an event counts as skipped.
    pub fn parse(&mut self, line: &str) -> Option<LogEvent> {
        let event = parse_line(line);
        match &event {
            Some(_) => self.parsed += 1,
            None if line.trim().is_empty() => {}
            None => self.skipped += 1,
        }
        event
    }

    /// Lines that gave an event.
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// Non-blank lines that gave no event (banner, trailer, garbage, truncated lines).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"traceID":0,"eventMessage":"Completed backup: 2022-05-21-192820","eventType":"logEvent","source":null,"subsystem":"com.apple.TimeMachine","category":"General","processImagePath":"\/System\/Library\/CoreServices\/backupd.bundle\/Contents\/Resources\/backupd","timestamp":"2022-05-21 19:28:21.720633-0700","messageType":"Info","processID":75012}"#;

    #[test]
    fn parses_a_line() {
        let event = parse_line(LINE).unwrap();
        assert_eq!(event.message, "Completed backup: 2022-05-21-192820");
        assert_eq!(
            event.at,
            "2022-05-22T02:28:21.720633Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(event.offset, Offset::from_hours(-7).unwrap());
        assert_eq!(event.message_type, "Info");
        assert_eq!(event.subsystem, "com.apple.TimeMachine");
        assert_eq!(event.category, "General");
        assert_eq!(
            event.process,
            "/System/Library/CoreServices/backupd.bundle/Contents/Resources/backupd"
        );
        assert!(event.is_time_machine());
    }

    #[test]
    fn non_events_are_none() {
        assert_eq!(
            parse_line(r#"Filtering the log data using "subsystem == \"com.apple.TimeMachine\"""#),
            None
        );
        assert_eq!(parse_line(r#"{"count":12,"finished":1}"#), None);
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("{"), None);
        assert_eq!(parse_line(&LINE[..LINE.len() / 2]), None, "truncated");
        assert_eq!(parse_line("[1,2,3]"), None);
        assert_eq!(
            parse_line(r#"{"eventMessage":"x","timestamp":"yesterday"}"#),
            None
        );
        assert_eq!(
            parse_line(r#"{"eventMessage":42,"timestamp":"2022-05-21 19:28:21-0700"}"#),
            None
        );
        assert_eq!(
            parse_line(r#"{"timestamp":"2022-05-21 19:28:21-0700"}"#),
            None
        );
    }

    #[test]
    fn minimal_line_and_odd_field_types() {
        let event = parse_line(
            r#"  {"eventMessage":"Backup succeeded","timestamp":"2024-10-01 08:00:00+0000","messageType":0,"subsystem":null}  "#,
        )
        .unwrap();
        assert_eq!(event.message, "Backup succeeded");
        assert_eq!(event.message_type, "0");
        assert_eq!(event.subsystem, "");
        assert_eq!(event.process, "");
        assert!(!event.is_time_machine());
    }

    #[test]
    fn timestamp_forms() {
        let want: Timestamp = "2026-06-14T04:49:55.112Z".parse().unwrap();
        for s in [
            "2026-06-14 14:49:55.112000+1000",
            "2026-06-14 14:49:55.112+10:00",
            "2026-06-14T14:49:55.112000+1000",
        ] {
            assert_eq!(parse_log_timestamp(s).map(|(at, _)| at), Some(want), "{s}");
        }
        assert_eq!(
            parse_log_timestamp("2026-06-14 14:49:55+0530").map(|(_, o)| o),
            Some(Offset::from_seconds(5 * 3600 + 30 * 60).unwrap())
        );
        assert_eq!(
            parse_log_timestamp("2026-06-14 14:49:55.112000"),
            None,
            "no offset"
        );
        assert_eq!(parse_log_timestamp("2026-06-14 25:49:55+0000"), None);
    }

    #[test]
    fn counter() {
        let mut parser = LineParser::new();
        for line in [
            "Filtering the log data using ...",
            LINE,
            "",
            "  ",
            "garbage",
            LINE,
        ] {
            parser.parse(line);
        }
        assert_eq!(parser.parsed(), 2);
        assert_eq!(parser.skipped(), 2);
    }
}
