//! The verification mark of a new snapshot, read from Time Machine's own record in the share's
//! bundle(s) at the moment the snapshot is taken. The rule is pure ([`crate::bundle::mark_for`]);
//! this reads the files. Anything unreadable, partial or odd gives `unknown`, never `good`.

use std::path::Path;

use crate::bundle::{self, MachineId, Mark, Record, SnapshotHistory};
use crate::snapshot::Verification;

/// A record's bytes, if it is a regular file of a size a record can have.
pub(crate) fn read_record(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    // Only regular files of a sane size: a symlink or a huge file is not Time Machine's.
    if !meta.is_file() || meta.len() > bundle::MAX_RECORD_BYTES as u64 {
        return None;
    }
    std::fs::read(path).ok()
}

/// The mark for a snapshot of the share mounted at `root`, capturing the backup `stamp`
/// (`YYYY-MM-DD-HHMMSS`). With several bundles (several Macs on one share): bad if any says its
/// backup failed verification, good if one lists the backup and all are fine, else unknown.
pub fn mark_share(root: &Path, stamp: Option<&str>) -> Verification {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Verification::Unknown;
    };
    let names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let mut marks = Vec::new();
    for b in bundle::find_bundles(&names) {
        let Ok(paths) = bundle::bundle_paths(&b) else {
            continue;
        };
        let history = read_record(&root.join(paths.record(Record::SnapshotHistory)))
            .and_then(|bytes| SnapshotHistory::parse(&bytes).ok());
        let machine = read_record(&root.join(paths.record(Record::MachineId)))
            .and_then(|bytes| MachineId::parse(&bytes).ok());
        marks.push(bundle::mark_for(history.as_ref(), machine.as_ref(), stamp));
    }
    if marks.contains(&Mark::Bad) {
        Verification::Bad
    } else if marks.contains(&Mark::Good) {
        Verification::Good
    } else {
        Verification::Unknown
    }
}

/// The backup stamp inside a backup id ("DESTINATION/2026-06-14-145122").
pub fn stamp_of(backup_id: &str) -> Option<&str> {
    backup_id.rsplit('/').next().and_then(bundle::backup_stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bundle");

    fn share(machine_id: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("MattBookPro.sparsebundle");
        std::fs::create_dir(&b).unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join("SnapshotHistory.plist"),
            b.join("com.apple.TimeMachine.SnapshotHistory.plist"),
        )
        .unwrap();
        std::fs::copy(
            Path::new(FIXTURES).join(machine_id),
            b.join("com.apple.TimeMachine.MachineID.plist"),
        )
        .unwrap();
        dir
    }

    fn listed_stamp() -> String {
        let bytes = std::fs::read(Path::new(FIXTURES).join("SnapshotHistory.plist")).unwrap();
        let h = SnapshotHistory::parse(&bytes).unwrap();
        h.latest().and_then(|e| e.stamp()).unwrap().to_string()
    }

    #[test]
    fn good_bad_unknown_from_the_bundle() {
        let stamp = listed_stamp();
        let ok = share("MachineID-ok.plist");
        assert_eq!(mark_share(ok.path(), Some(&stamp)), Verification::Good);
        assert_eq!(
            mark_share(ok.path(), Some("2001-01-01-000000")),
            Verification::Unknown
        );
        assert_eq!(mark_share(ok.path(), None), Verification::Unknown);
        let failed = share("MachineID-verification-failed.plist");
        assert_eq!(mark_share(failed.path(), Some(&stamp)), Verification::Bad);
    }

    #[test]
    fn a_partial_record_is_never_good() {
        let stamp = listed_stamp();
        let dir = share("MachineID-ok.plist");
        let path = dir
            .path()
            .join("MattBookPro.sparsebundle/com.apple.TimeMachine.SnapshotHistory.plist");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(mark_share(dir.path(), Some(&stamp)), Verification::Unknown);
        assert_eq!(
            mark_share(Path::new("/nonexistent"), Some(&stamp)),
            Verification::Unknown
        );
    }

    #[test]
    fn stamps_from_backup_ids() {
        assert_eq!(
            stamp_of("5F2C/2026-06-14-145122"),
            Some("2026-06-14-145122")
        );
        assert_eq!(
            stamp_of("5F2C/2026-06-14-145122.backup"),
            Some("2026-06-14-145122")
        );
        assert_eq!(stamp_of("manual"), None);
    }
}
