//! `com.apple.TimeMachine.SnapshotHistory.plist`: the backups Time Machine completed.
//!
//! The file is a dictionary with `Snapshots`, an array with one dictionary per completed backup:
//! `com.apple.backupd.SnapshotName` (e.g. `2026-06-14-145122.backup`) and
//! `com.apple.backupd.SnapshotCompletionDate`. The name's stamp is the Mac's local time; the date
//! is UTC. Time Machine rewrites the file with an empty list when it starts a new backup set.

use std::collections::HashSet;

use jiff::Timestamp;
use plist::Value;

use super::read::{kind_of, optional_date, read_dict};
use super::{BundleError, Record};

const SNAPSHOTS_KEY: &str = "Snapshots";
const NAME_KEY: &str = "com.apple.backupd.SnapshotName";
const COMPLETION_KEY: &str = "com.apple.backupd.SnapshotCompletionDate";

/// The longest snapshot name accepted, in bytes (real ones are 24).
const MAX_NAME_BYTES: usize = 255;

const RECORD: Record = Record::SnapshotHistory;

/// The parsed SnapshotHistory, entries in the file's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotHistory {
    pub entries: Vec<HistoryEntry>,
}

/// One completed backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// As Time Machine wrote it, e.g. `2026-06-14-145122.backup` (or the bare stamp).
    pub name: String,
    /// When the backup completed, if the entry says.
    pub completed: Option<Timestamp>,
}

impl HistoryEntry {
    /// The `YYYY-MM-DD-HHMMSS` stamp of the backup, if the name is a backup's name.
    pub fn stamp(&self) -> Option<&str> {
        backup_stamp(&self.name)
    }

    /// What identifies the entry across two readings: its stamp, or else its whole name.
    fn key(&self) -> &str {
        self.stamp().unwrap_or(&self.name)
    }
}

/// The `YYYY-MM-DD-HHMMSS` stamp in a backup's name: the name is the stamp itself or the stamp
/// followed by `.backup` (`2026-06-14-145122.backup`), and the stamp is a valid date and time.
/// Anything else (`….inprogress`, `….previous`, a path) is not a completed backup's name.
pub fn backup_stamp(name: &str) -> Option<&str> {
    let stamp = name.strip_suffix(".backup").unwrap_or(name);
    let b = stamp.as_bytes();
    let shape_ok = b.len() == 17
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 10 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    jiff::civil::DateTime::strptime("%Y-%m-%d-%H%M%S", stamp)
        .ok()
        .map(|_| stamp)
}

impl SnapshotHistory {
    /// Parses the file's bytes (XML or binary plist). An error for anything that is not a whole,
    /// well-formed history: in particular a missing `Snapshots` list is an error, not an empty
    /// history (which would read as a new backup set).
    pub fn parse(bytes: &[u8]) -> Result<SnapshotHistory, BundleError> {
        let root = read_dict(RECORD, bytes)?;
        let snapshots = root.get(SNAPSHOTS_KEY).ok_or_else(|| BundleError::Field {
            record: RECORD,
            field: SNAPSHOTS_KEY.to_string(),
            problem: "is missing".to_string(),
        })?;
        let list = snapshots.as_array().ok_or_else(|| BundleError::Field {
            record: RECORD,
            field: SNAPSHOTS_KEY.to_string(),
            problem: format!("is {}, not an array", kind_of(snapshots)),
        })?;
        let entries = list
            .iter()
            .enumerate()
            .map(|(i, v)| parse_entry(i, v))
            .collect::<Result<_, _>>()?;
        Ok(SnapshotHistory { entries })
    }

    /// The most recent backup: the latest completion date (entries without one come before any
    /// with one), then the latest stamp, then the last in the file.
    pub fn latest(&self) -> Option<&HistoryEntry> {
        self.entries.iter().max_by_key(|e| (e.completed, e.stamp()))
    }

    /// Whether the history lists the backup with this stamp. `stamp` may be the bare
    /// `YYYY-MM-DD-HHMMSS` or carry `.backup`, and so may the entries' names; a stamp that is not
    /// one ([`backup_stamp`]) is never listed.
    pub fn contains_backup(&self, stamp: &str) -> bool {
        let Some(wanted) = backup_stamp(stamp) else {
            return false;
        };
        self.entries.iter().any(|e| e.stamp() == Some(wanted))
    }

    /// The entries not in `previous` (compared by stamp, or by name when there is none), in this
    /// history's order.
    pub fn new_entries_since(&self, previous: &SnapshotHistory) -> Vec<&HistoryEntry> {
        let before: HashSet<&str> = previous.entries.iter().map(HistoryEntry::key).collect();
        self.entries
            .iter()
            .filter(|e| !before.contains(e.key()))
            .collect()
    }

    /// Whether Time Machine started a new backup set since `previous`: `previous` listed backups
    /// and none of them is listed any more (the list was emptied, and perhaps has new entries
    /// since). A list that only got shorter but still holds some of the earlier entries is old
    /// backups being deleted, not a new set.
    pub fn is_reset_from(&self, previous: &SnapshotHistory) -> bool {
        if previous.entries.is_empty() {
            return false;
        }
        let now: HashSet<&str> = self.entries.iter().map(HistoryEntry::key).collect();
        !previous.entries.iter().any(|e| now.contains(e.key()))
    }
}

fn parse_entry(index: usize, value: &Value) -> Result<HistoryEntry, BundleError> {
    let field = |key: &str| {
        if key.is_empty() {
            format!("{SNAPSHOTS_KEY}[{index}]")
        } else {
            format!("{SNAPSHOTS_KEY}[{index}].{key}")
        }
    };
    let wrong = |key: &str, problem: String| BundleError::Field {
        record: RECORD,
        field: field(key),
        problem,
    };
    let dict = value
        .as_dictionary()
        .ok_or_else(|| wrong("", format!("is {}, not a dictionary", kind_of(value))))?;
    let name = dict
        .get(NAME_KEY)
        .ok_or_else(|| wrong(NAME_KEY, "is missing".to_string()))?;
    let name = name
        .as_string()
        .ok_or_else(|| wrong(NAME_KEY, format!("is {}, not a string", kind_of(name))))?;
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(wrong(
            NAME_KEY,
            format!("is {} bytes long, not 1 to {MAX_NAME_BYTES}", name.len()),
        ));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(wrong(
            NAME_KEY,
            "contains a `/` or a control character".to_string(),
        ));
    }
    let completed = optional_date(RECORD, dict, COMPLETION_KEY, || field(COMPLETION_KEY))?;
    Ok(HistoryEntry {
        name: name.to_string(),
        completed,
    })
}
