//! Time Machine backup stamps: the `YYYY-MM-DD-HHMMSS` names of backups.
//!
//! Time Machine names each backup after the Mac's local wall-clock time when it made the backup's
//! snapshot: `2022-05-21-192820` (`Backups.backupdb`, up to Catalina), `2026-06-14-145122.backup`
//! (APFS destinations, Big Sur on). Stamps have a fixed width, so comparing them as strings
//! compares them in time.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// Length of a stamp, `YYYY-MM-DD-HHMMSS`.
const STAMP_LEN: usize = 17;

/// Whether `s` is exactly a valid stamp `YYYY-MM-DD-HHMMSS` (a real date and time).
pub fn is_stamp(s: &str) -> bool {
    parse_stamp(s).is_some()
}

/// The civil (local, zone-less) date and time a stamp names, if `s` is exactly a valid stamp.
pub fn parse_stamp(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN {
        return None;
    }
    let digits_at = |range: std::ops::Range<usize>| -> Option<i32> {
        let part = &b[range];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0i32, |acc, d| Some(acc * 10 + i32::from(d - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'-' {
        return None;
    }
    let year = i16::try_from(digits_at(0..4)?).ok()?;
    let month = i8::try_from(digits_at(5..7)?).ok()?;
    let day = i8::try_from(digits_at(8..10)?).ok()?;
    let hour = i8::try_from(digits_at(11..13)?).ok()?;
    let minute = i8::try_from(digits_at(13..15)?).ok()?;
    let second = i8::try_from(digits_at(15..17)?).ok()?;
    DateTime::new(year, month, day, hour, minute, second, 0).ok()
}

/// The stamp of a backup path or name: the last path component, which must be a stamp, with or
/// without the `.backup` suffix (`/Volumes/…/2026-06-14-145122.backup` → `2026-06-14-145122`).
///
/// Anything else (an `.inprogress` or `.interrupted` folder, a path that names no backup, text that
/// is not a path) gives `None`. Surrounding whitespace and trailing slashes are ignored.
pub fn stamp_from_path(path: &str) -> Option<String> {
    let trimmed = path.trim().trim_end_matches('/');
    let last = trimmed.rsplit('/').next()?;
    let name = last.strip_suffix(".backup").unwrap_or(last);
    is_stamp(name).then(|| name.to_owned())
}

/// The stamp-form of an instant as the Mac's wall clock showed it (seconds truncated).
pub fn stamp_at(at: Timestamp, offset: Offset) -> String {
    let dt = offset.to_datetime(at);
    format!(
        "{:04}-{:02}-{:02}-{:02}{:02}{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_stamps() {
        assert!(is_stamp("2022-05-21-192820"));
        assert!(is_stamp("2026-06-14-145122"));
        assert!(!is_stamp("2022-05-21-192820.backup"));
        assert!(!is_stamp("2022-13-21-192820"), "month 13");
        assert!(!is_stamp("2022-02-30-192820"), "30 February");
        assert!(!is_stamp("2022-05-21-246000"), "hour 24");
        assert!(!is_stamp("2022-05-21 192820"));
        assert!(!is_stamp("2022-05-21-19282"));
        assert!(!is_stamp("+022-05-21-192820"));
        assert!(!is_stamp(""));
        assert!(!is_stamp("２０２２-05-21-192820"), "non-ASCII digits");
    }

    #[test]
    fn stamp_from_paths() {
        assert_eq!(
            stamp_from_path(
                "/Volumes/.timemachine/vault._smb._tcp.local./1BA8/MattBookPro/2026-06-14-145122.backup\n"
            )
            .as_deref(),
            Some("2026-06-14-145122")
        );
        assert_eq!(
            stamp_from_path("/Volumes/TM/Backups.backupdb/Matt's Mac/2022-05-21-192820/")
                .as_deref(),
            Some("2022-05-21-192820")
        );
        assert_eq!(
            stamp_from_path("2022-05-21-192820").as_deref(),
            Some("2022-05-21-192820")
        );
        assert_eq!(
            stamp_from_path("/Volumes/TM/2022-05-21-192820.inprogress"),
            None
        );
        assert_eq!(
            stamp_from_path("/Volumes/TM/Backups.backupdb/Mac/Latest"),
            None
        );
        assert_eq!(stamp_from_path(""), None);
        assert_eq!(stamp_from_path("/"), None);
    }

    #[test]
    fn stamp_at_uses_the_offset() {
        let at: Timestamp = "2026-06-14T04:51:22.894Z".parse().unwrap();
        let aest = Offset::from_hours(10).unwrap();
        assert_eq!(stamp_at(at, aest), "2026-06-14-145122");
        assert_eq!(stamp_at(at, Offset::UTC), "2026-06-14-045122");
    }
}
