//! Time Machine's own record inside a share's bundle, read without side effects.
//!
//! Each share's dataset holds the Mac's bundle, `<Name>.sparsebundle/` (or `.backupbundle/`), and
//! inside it two small property lists that say what Time Machine thinks of its backups:
//!
//! - `com.apple.TimeMachine.SnapshotHistory.plist`: one entry per completed backup
//!   ([`SnapshotHistory`]); Time Machine rewrites it with an empty list when it starts a new
//!   backup set ([`SnapshotHistory::is_reset_from`]).
//! - `com.apple.TimeMachine.MachineID.plist`: `VerificationState` (0 fine, 2 failed) and
//!   `RecoveryBackupDeclinedDate` once the user chose "Back Up Later" ([`MachineId`]).
//!
//! From these [`mark_for`] decides the `org.backstop:verified` mark of a snapshot: `good` only
//! when the history lists the backup and `VerificationState` is 0, `bad` when
//! `VerificationState` is non-zero, `unknown` otherwise.
//!
//! Everything here is pure: the caller lists the share's root directory ([`find_bundles`]), reads
//! the files named by [`bundle_paths`] and hands over their bytes. Time Machine replaces these
//! files whole (it writes `X.plist.tmp` and renames it), yet a reader may still catch a partial or
//! damaged file, and anyone with write access to the share controls their content. So every
//! parser here returns a [`BundleError`] (never panics, never builds something that could mark a
//! snapshot good) on a truncated, malformed or hostile file; the caller keeps no mark (`unknown`)
//! and reads again on the next change.

mod history;
mod layout;
mod machine_id;
mod marks;
mod read;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use history::{HistoryEntry, SnapshotHistory, backup_stamp};
pub use layout::{BUNDLE_SUFFIXES, BundlePaths, Record, bundle_paths, check_name, find_bundles};
pub use machine_id::{MachineId, VerificationStatus};
pub use marks::{Mark, mark_for};
pub use read::{MAX_DEPTH, MAX_RECORD_BYTES, MAX_VALUES};

/// Why a bundle record (or a bundle's name) could not be used. The message is one line and names
/// the file (or name) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The file is larger than any real record.
    #[error("{record}: {len} bytes is more than the {limit} bytes a record may have")]
    TooLarge {
        record: Record,
        len: usize,
        limit: usize,
    },
    /// Not a complete XML or binary property list (partial, mid-write, damaged, or another
    /// format).
    #[error("{record}: not a complete property list ({reason})")]
    Unreadable { record: Record, reason: String },
    /// A well-formed property list too deep or too large to be a real record.
    #[error("{record}: {what}")]
    TooComplex { record: Record, what: String },
    /// A value is missing or has the wrong type or shape.
    #[error("{record}: {field} {problem}")]
    Field {
        record: Record,
        field: String,
        problem: String,
    },
    /// A directory entry name that must not be used as a path component.
    #[error("bundle name {name} is not acceptable: {reason}")]
    BadName { name: String, reason: &'static str },
}

/// Makes text from outside (an error from the plist reader, a hostile name) safe for a one-line
/// message: control characters become spaces and the text is cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}
