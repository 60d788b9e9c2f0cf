//! The `org.backstop:verified` mark of a snapshot, from the records read when it was taken.

use std::fmt;

use super::{MachineId, SnapshotHistory, VerificationStatus};

/// Whether Time Machine considered the backup sound when the snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    /// The history lists the backup and `VerificationState` is 0.
    Good,
    /// `VerificationState` is non-zero: Time Machine flagged the backup as failed.
    Bad,
    /// Anything else, including a record that is missing or could not be read.
    Unknown,
}

impl Mark {
    /// The value of the `org.backstop:verified` property.
    pub fn as_prop(self) -> &'static str {
        match self {
            Mark::Good => "good",
            Mark::Bad => "bad",
            Mark::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_prop())
    }
}

/// The mark of a snapshot taken while the bundle held `history` and `machine` (`None`: the file
/// is missing or could not be read) after the backup stamped `backup_stamp` (`YYYY-MM-DD-HHMMSS`,
/// with or without `.backup`; `None`: not known).
///
/// - [`Mark::Bad`] when `VerificationState` is non-zero, whatever the history says;
/// - [`Mark::Good`] only when `VerificationState` is 0 and the history lists that backup;
/// - [`Mark::Unknown`] otherwise.
pub fn mark_for(
    history: Option<&SnapshotHistory>,
    machine: Option<&MachineId>,
    backup_stamp: Option<&str>,
) -> Mark {
    match machine.map(MachineId::verification) {
        Some(VerificationStatus::Failed(_)) => Mark::Bad,
        Some(VerificationStatus::Fine) => match (history, backup_stamp) {
            (Some(history), Some(stamp)) if history.contains_backup(stamp) => Mark::Good,
            _ => Mark::Unknown,
        },
        Some(VerificationStatus::Unknown) | None => Mark::Unknown,
    }
}
