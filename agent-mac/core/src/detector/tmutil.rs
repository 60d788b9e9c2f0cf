//! What `tmutil` prints: `status -X`, `destinationinfo -X` (XML plists) and `latestbackup` (a path).
//!
//! Parsing only; running `tmutil` is the caller's business. Malformed plists give a
//! [`TmutilError`]; nothing here panics.

use std::io::Cursor;

use plist::{Dictionary, Value};

use super::stamp::stamp_from_path;

/// Why a `tmutil` plist could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TmutilError {
    /// The text is not a property list.
    #[error("tmutil's output is not a readable property list: {0}")]
    Plist(#[from] plist::Error),
    /// The property list is not a dictionary at the top.
    #[error("tmutil's property list is not a dictionary at the top")]
    NotADictionary,
    /// Nested deeper than any tmutil output (reading it would exhaust the stack).
    #[error("tmutil's property list is nested more than {0} levels deep")]
    TooDeep(usize),
    /// A key that must be there is missing.
    #[error("tmutil's property list has no `{0}`")]
    Missing(String),
    /// A key holds a value of the wrong type.
    #[error("tmutil's property list has `{key}` that is not {expected}")]
    WrongType {
        /// The key, with its place (`Destinations[0].ID`).
        key: String,
        /// What it should have been.
        expected: &'static str,
    },
}

/// `tmutil status -X`: whether a backup is running, and how far it is.
#[derive(Debug, Clone, PartialEq)]
pub struct TmutilStatus {
    /// `Running`.
    pub running: bool,
    /// `BackupPhase` (`Copying`, `Finishing`, …), absent when idle.
    pub phase: Option<String>,
    /// The progress as Time Machine reports it, a fraction from 0.0 to 1.0 (0.73 is 73 %):
    /// `Progress.Percent` on recent macOS, else the top-level `Percent`; `None` when idle or
    /// unknown (Time Machine reports -1 then).
    pub percent: Option<f64>,
}

/// One destination from `tmutil destinationinfo -X`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `ID`, the destination's UUID.
    pub id: String,
    /// `Name` (empty when absent).
    pub name: String,
    /// `Kind`: `Network` or `Local` (empty when absent).
    pub kind: String,
    /// `URL`, for network destinations (`smb://user@host/share`).
    pub url: Option<String>,
    /// `MountPoint`, when mounted.
    pub mount_point: Option<String>,
    /// `LastDestination`: the destination Time Machine backed up to last.
    pub last_destination: bool,
}

/// tmutil's plists nest a few levels; anything far deeper is refused before it is parsed
/// (the plist crate parses and drops nested values recursively).
const MAX_DEPTH: usize = 64;

/// The deepest nesting of `<dict>`/`<array>` in an XML plist (binary plists have their own
/// bounds in the plist crate's reader).
fn xml_depth(input: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(off) = input[i..].iter().position(|&b| b == b'<') {
        let rest = &input[i + off + 1..];
        if rest.starts_with(b"dict>") || rest.starts_with(b"array>") {
            depth += 1;
            max = max.max(depth);
        } else if rest.starts_with(b"/dict>") || rest.starts_with(b"/array>") {
            depth = depth.saturating_sub(1);
        }
        i += off + 1;
    }
    max
}

fn read_top(input: &[u8]) -> Result<Dictionary, TmutilError> {
    if xml_depth(input) > MAX_DEPTH {
        return Err(TmutilError::TooDeep(MAX_DEPTH));
    }
    Value::from_reader(Cursor::new(input))?
        .into_dictionary()
        .ok_or(TmutilError::NotADictionary)
}

fn as_bool(value: &Value, key: &str) -> Result<bool, TmutilError> {
    let wrong = || TmutilError::WrongType {
        key: key.to_owned(),
        expected: "a boolean",
    };
    match value {
        Value::Boolean(b) => Ok(*b),
        Value::Integer(i) => i.as_signed().map(|i| i != 0).ok_or_else(wrong),
        Value::String(s) => match s.trim() {
            "1" | "true" | "YES" | "yes" => Ok(true),
            "0" | "false" | "NO" | "no" => Ok(false),
            _ => Err(wrong()),
        },
        _ => Err(wrong()),
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Real(r) => Some(*r),
        Value::Integer(i) => i.as_signed().map(|i| i as f64),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn optional_string(
    dict: &Dictionary,
    key: &str,
    place: &str,
) -> Result<Option<String>, TmutilError> {
    match dict.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TmutilError::WrongType {
            key: format!("{place}{key}"),
            expected: "a string",
        }),
    }
}

/// Parses `tmutil status -X`.
pub fn parse_status(input: impl AsRef<[u8]>) -> Result<TmutilStatus, TmutilError> {
    let top = read_top(input.as_ref())?;
    let running = as_bool(
        top.get("Running")
            .ok_or_else(|| TmutilError::Missing("Running".into()))?,
        "Running",
    )?;
    let phase = optional_string(&top, "BackupPhase", "")?;
    let usable = |p: f64| p.is_finite() && p >= 0.0;
    let progress = top
        .get("Progress")
        .and_then(Value::as_dictionary)
        .and_then(|progress| progress.get("Percent"))
        .and_then(as_number)
        .filter(|p| usable(*p));
    let percent = progress.or_else(|| {
        top.get("Percent")
            .and_then(as_number)
            .filter(|p| usable(*p))
    });
    Ok(TmutilStatus {
        running,
        phase,
        percent,
    })
}

/// Parses `tmutil destinationinfo -X`; no `Destinations` key means no destinations.
pub fn parse_destinations(input: impl AsRef<[u8]>) -> Result<Vec<Destination>, TmutilError> {
    let top = read_top(input.as_ref())?;
    let Some(list) = top.get("Destinations") else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| TmutilError::WrongType {
        key: "Destinations".into(),
        expected: "an array",
    })?;
    list.iter()
        .enumerate()
        .map(|(index, entry)| {
            let place = format!("Destinations[{index}].");
            let entry = entry
                .as_dictionary()
                .ok_or_else(|| TmutilError::WrongType {
                    key: format!("Destinations[{index}]"),
                    expected: "a dictionary",
                })?;
            let id = optional_string(entry, "ID", &place)?
                .ok_or_else(|| TmutilError::Missing(format!("{place}ID")))?;
            let last_destination = match entry.get("LastDestination") {
                None => false,
                Some(value) => as_bool(value, &format!("{place}LastDestination"))?,
            };
            Ok(Destination {
                id,
                name: optional_string(entry, "Name", &place)?.unwrap_or_default(),
                kind: optional_string(entry, "Kind", &place)?.unwrap_or_default(),
                url: optional_string(entry, "URL", &place)?,
                mount_point: optional_string(entry, "MountPoint", &place)?,
                last_destination,
            })
        })
        .collect()
}

/// Parses `tmutil latestbackup`'s output: the stamp of the backup path it prints.
///
/// `None` when it printed no backup path: an error text (such as the one shown without Full Disk
/// Access), nothing, or an unfinished backup. When several lines name backups, the newest stamp.
pub fn parse_latestbackup(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('/'))
        .filter_map(stamp_from_path)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plist(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
{body}
</plist>"#
        )
    }

    #[test]
    fn status_variants() {
        let s = parse_status(plist(
            "<dict><key>Running</key><integer>1</integer><key>BackupPhase</key><string>Finishing</string><key>Percent</key><real>0.5</real></dict>",
        ))
        .unwrap();
        assert_eq!(
            s,
            TmutilStatus {
                running: true,
                phase: Some("Finishing".into()),
                percent: Some(0.5)
            }
        );
        let s = parse_status(plist(
            "<dict><key>Running</key><string>0</string><key>Percent</key><string>-1</string></dict>",
        ))
        .unwrap();
        assert_eq!(
            s,
            TmutilStatus {
                running: false,
                phase: None,
                percent: None
            }
        );
        // Progress.Percent wins over the top-level Percent; a negative one falls back.
        let s = parse_status(plist(
            "<dict><key>Running</key><true/><key>Percent</key><real>0.25</real><key>Progress</key><dict><key>Percent</key><real>-1</real></dict></dict>",
        ))
        .unwrap();
        assert_eq!(s.percent, Some(0.25));
    }

    #[test]
    fn status_errors() {
        assert!(matches!(
            parse_status(plist("<dict><key>Percent</key><real>0</real></dict>")),
            Err(TmutilError::Missing(key)) if key == "Running"
        ));
        assert!(matches!(
            parse_status(plist("<dict><key>Running</key><date>2026-08-12T07:25:54Z</date></dict>")),
            Err(TmutilError::WrongType { key, .. }) if key == "Running"
        ));
        assert!(matches!(
            parse_status(plist("<dict><key>Running</key><true/><key>BackupPhase</key><integer>3</integer></dict>")),
            Err(TmutilError::WrongType { key, .. }) if key == "BackupPhase"
        ));
        assert!(matches!(
            parse_status(plist("<array><true/></array>")),
            Err(TmutilError::NotADictionary)
        ));
        assert!(matches!(
            parse_status(plist("<dict><key>Running</key><true/>")),
            Err(TmutilError::Plist(_))
        ));
        assert!(parse_status("").is_err());
        let message = parse_status("<plist><dict><key>Running")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("tmutil's output is not a readable property list"),
            "{message}"
        );
    }

    #[test]
    fn destinations_variants_and_errors() {
        assert_eq!(parse_destinations(plist("<dict/>")).unwrap(), vec![]);
        let d = parse_destinations(plist(
            "<dict><key>Destinations</key><array><dict><key>ID</key><string>A</string><key>Kind</key><string>Local</string><key>Name</key><string>TM</string><key>MountPoint</key><string>/Volumes/TM</string></dict></array></dict>",
        ))
        .unwrap();
        assert_eq!(
            d,
            vec![Destination {
                id: "A".into(),
                name: "TM".into(),
                kind: "Local".into(),
                url: None,
                mount_point: Some("/Volumes/TM".into()),
                last_destination: false,
            }]
        );
        assert!(matches!(
            parse_destinations(plist("<dict><key>Destinations</key><string>x</string></dict>")),
            Err(TmutilError::WrongType { key, .. }) if key == "Destinations"
        ));
        assert!(matches!(
            parse_destinations(plist("<dict><key>Destinations</key><array><dict><key>Name</key><string>x</string></dict></array></dict>")),
            Err(TmutilError::Missing(key)) if key == "Destinations[0].ID"
        ));
        assert!(matches!(
            parse_destinations(plist("<dict><key>Destinations</key><array><string>x</string></array></dict>")),
            Err(TmutilError::WrongType { key, .. }) if key == "Destinations[0]"
        ));
        assert!(parse_destinations("not a plist at all <<<").is_err());
    }

    #[test]
    fn latestbackup() {
        assert_eq!(
            parse_latestbackup("/Volumes/.timemachine/vault._smb._tcp.local./1BA82C89-0C1E-4F9A-9D3B-3B2C4A1E2F10/MattBookPro/2026-06-14-145122.backup\n")
                .as_deref(),
            Some("2026-06-14-145122")
        );
        assert_eq!(
            parse_latestbackup("/Volumes/Backup/Backups.backupdb/MattBookPro/2022-05-21-192820\n")
                .as_deref(),
            Some("2022-05-21-192820")
        );
        assert_eq!(
            parse_latestbackup(
                "/Volumes/A/2026-06-14-145122.backup\n/Volumes/B/2026-06-14-155000.backup\n"
            )
            .as_deref(),
            Some("2026-06-14-155000")
        );
        assert_eq!(
            parse_latestbackup(
                "tmutil: latestbackup requires Full Disk Access privileges.\nTo allow this operation, select Full Disk Access in the Privacy\ntab of the Security & Privacy preference pane, and add Terminal\nto the list of applications which are allowed Full Disk Access.\n"
            ),
            None
        );
        assert_eq!(
            parse_latestbackup("Unable to locate machine directory for host.\n"),
            None
        );
        assert_eq!(parse_latestbackup(""), None);
        assert_eq!(
            parse_latestbackup("/Volumes/A/2026-06-14-145122.inprogress\n"),
            None
        );
        assert_eq!(
            parse_latestbackup("2026-06-14-145122\n"),
            None,
            "not a path"
        );
    }
}
