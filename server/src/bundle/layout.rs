//! Where the bundle and its records are in a share: names only, no file system access.
//!
//! The names come from a directory that the Mac (or anyone with write access to the share)
//! controls, so a name is used as a path component only after [`check_name`] accepted it.

use std::fmt;
use std::path::PathBuf;

use super::{BundleError, one_line};

/// The name endings of a Time Machine bundle directory in a share's root.
pub const BUNDLE_SUFFIXES: [&str; 2] = [".sparsebundle", ".backupbundle"];

/// The longest name accepted (the usual file system limit, in bytes).
const MAX_NAME_BYTES: usize = 255;

/// One of Time Machine's record files inside a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    /// `com.apple.TimeMachine.SnapshotHistory.plist`
    SnapshotHistory,
    /// `com.apple.TimeMachine.MachineID.plist`
    MachineId,
}

impl Record {
    pub const ALL: [Record; 2] = [Record::SnapshotHistory, Record::MachineId];

    /// The file's name inside the bundle.
    pub fn file_name(self) -> &'static str {
        match self {
            Record::SnapshotHistory => "com.apple.TimeMachine.SnapshotHistory.plist",
            Record::MachineId => "com.apple.TimeMachine.MachineID.plist",
        }
    }

    /// The record a file in the bundle is, if any: exactly the record's name, so Time Machine's
    /// `X.plist.tmp` (being written) and `X.plist.bckup` (its spare copy) are not records.
    pub fn from_file_name(name: &str) -> Option<Record> {
        Record::ALL.into_iter().find(|r| r.file_name() == name)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Checks that `name` is a single, ordinary directory entry name: not empty, not `.` or `..`,
/// no `/`, `\`, `..` or control characters, at most 255 bytes.
pub fn check_name(name: &str) -> Result<(), BundleError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name.contains("..") || name == "." {
        Some("it contains `..` or is `.`")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(BundleError::BadName {
            name: format!("{:?}", one_line(name, 64)),
            reason,
        }),
    }
}

/// The bundles among the names in a share's root directory: acceptable names ([`check_name`])
/// ending in `.sparsebundle` or `.backupbundle` (any ASCII case) with something before it.
/// Hidden names are left out, among them the `._Name.sparsebundle` AppleDouble files that Samba
/// and Netatalk may keep next to a bundle. Sorted, without duplicates. Whether each is a
/// directory is for the caller to see.
pub fn find_bundles(entries: &[String]) -> Vec<String> {
    let mut found: Vec<String> = entries
        .iter()
        .filter(|name| is_bundle_name(name))
        .cloned()
        .collect();
    found.sort();
    found.dedup();
    found
}

fn is_bundle_name(name: &str) -> bool {
    if check_name(name).is_err() || name.starts_with('.') {
        return false;
    }
    BUNDLE_SUFFIXES.iter().any(|suffix| {
        name.len() > suffix.len()
            && name
                .get(name.len() - suffix.len()..)
                .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
    })
}

/// The paths of a bundle and its records, relative to the share's root (its mount point).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundlePaths {
    /// `<Name>.sparsebundle`
    pub bundle: PathBuf,
    /// `<Name>.sparsebundle/com.apple.TimeMachine.SnapshotHistory.plist`
    pub snapshot_history: PathBuf,
    /// `<Name>.sparsebundle/com.apple.TimeMachine.MachineID.plist`
    pub machine_id: PathBuf,
}

impl BundlePaths {
    /// The path of one record.
    pub fn record(&self, record: Record) -> &PathBuf {
        match record {
            Record::SnapshotHistory => &self.snapshot_history,
            Record::MachineId => &self.machine_id,
        }
    }
}

/// The relative paths for the bundle named `bundle` (a name from [`find_bundles`]); an error for
/// a name that is not a single ordinary path component.
pub fn bundle_paths(bundle: &str) -> Result<BundlePaths, BundleError> {
    check_name(bundle)?;
    let dir = PathBuf::from(bundle);
    Ok(BundlePaths {
        snapshot_history: dir.join(Record::SnapshotHistory.file_name()),
        machine_id: dir.join(Record::MachineId.file_name()),
        bundle: dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_both_bundle_kinds_sorted() {
        let entries = names(&[
            "Zed’s MacBook Pro.sparsebundle",
            "Ann.backupbundle",
            ".zfs",
            "notes.txt",
            "Ann.BackupBundle",
            "Ann.backupbundle",
            "sparsebundle",
        ]);
        assert_eq!(
            find_bundles(&entries),
            names(&[
                "Ann.BackupBundle",
                "Ann.backupbundle",
                "Zed’s MacBook Pro.sparsebundle"
            ])
        );
    }

    #[test]
    fn leaves_out_hidden_empty_and_hostile_names() {
        let entries = names(&[
            "._Mac.sparsebundle",
            ".sparsebundle",
            ".hidden.sparsebundle",
            "../Mac.sparsebundle",
            "a/b.sparsebundle",
            "a\\b.sparsebundle",
            "x..sparsebundle",
            "Mac\n.sparsebundle",
            "Mac\u{0}.sparsebundle",
            "Mac\u{9b}.sparsebundle",
            &format!("{}.sparsebundle", "a".repeat(250)),
            "Mac.sparsebundle.tmp",
        ]);
        assert_eq!(find_bundles(&entries), Vec::<String>::new());
    }

    #[test]
    fn check_name_rejects_traversal_and_controls() {
        for bad in [
            "", ".", "..", "../x", "x/..", "/", "a/b", "a\\b", "a\tb", "a\u{7f}",
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(matches!(err, BundleError::BadName { .. }), "{bad:?}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        check_name("Ann’s Mac.sparsebundle").unwrap();
    }

    #[test]
    fn bad_name_message_is_one_short_line() {
        let hostile = format!("{}\n\u{1b}[31m/../etc", "x".repeat(10_000));
        let msg = check_name(&hostile).unwrap_err().to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg}");
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn paths_are_relative_to_the_share_root() {
        let p = bundle_paths("Mac.sparsebundle").unwrap();
        assert_eq!(p.bundle, PathBuf::from("Mac.sparsebundle"));
        assert_eq!(
            p.snapshot_history,
            PathBuf::from("Mac.sparsebundle/com.apple.TimeMachine.SnapshotHistory.plist")
        );
        assert_eq!(
            p.machine_id,
            PathBuf::from("Mac.sparsebundle/com.apple.TimeMachine.MachineID.plist")
        );
        assert_eq!(p.record(Record::MachineId), &p.machine_id);
        assert!(p.bundle.is_relative());
        assert!(bundle_paths("../Mac.sparsebundle").is_err());
        assert!(bundle_paths("/Mac.sparsebundle").is_err());
    }

    #[test]
    fn record_file_names() {
        for r in Record::ALL {
            assert_eq!(Record::from_file_name(r.file_name()), Some(r));
            assert_eq!(
                Record::from_file_name(&format!("{}.tmp", r.file_name())),
                None
            );
            assert_eq!(
                Record::from_file_name(&format!("{}.bckup", r.file_name())),
                None
            );
        }
        assert_eq!(
            Record::MachineId.to_string(),
            "com.apple.TimeMachine.MachineID.plist"
        );
    }
}
