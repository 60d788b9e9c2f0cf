//! Snapshot: what Backstop knows of one ZFS snapshot of a share, how Backstop names the ones it
//! creates, and the checks every client-supplied part of a name passes before zfs sees it.

use jiff::tz::TimeZone;
use jiff::{Timestamp, civil};
use serde::{Deserialize, Serialize};

use crate::share::Share;
use crate::zfs::{PropSet, props};

/// Why a snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Asked for by a person.
    Manual,
    /// After a Time Machine backup completed.
    Backup,
    /// Made by the hand-written script before Backstop, then adopted.
    Adopted,
}

impl Origin {
    pub fn as_prop(self) -> &'static str {
        match self {
            Origin::Manual => "manual",
            Origin::Backup => "backup",
            Origin::Adopted => "adopted",
        }
    }

    pub fn from_prop(v: &str) -> Option<Origin> {
        match v {
            "manual" => Some(Origin::Manual),
            "backup" => Some(Origin::Backup),
            "adopted" => Some(Origin::Adopted),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The part after `@`.
    pub name: String,
    pub share: String,
    /// `dataset@name`.
    pub full_name: String,
    /// Carries `org.backstop:managed=on` itself (not inherited).
    pub managed: bool,
    pub backup_time: Option<Timestamp>,
    pub created: Timestamp,
    pub used: u64,
    pub referenced: u64,
    pub origin: Option<Origin>,
    pub backup_id: Option<String>,
    #[serde(default)]
    pub verification: Verification,
    #[serde(default)]
    pub keep: bool,
    #[serde(default)]
    pub holds: u64,
}

/// Whether Time Machine considered the backup sound when the snapshot was taken
/// (`org.backstop:verified`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    #[default]
    Unknown,
    Good,
    Bad,
}

impl Verification {
    pub fn as_prop(self) -> &'static str {
        match self {
            Verification::Unknown => "unknown",
            Verification::Good => "good",
            Verification::Bad => "bad",
        }
    }

    pub fn from_prop(v: Option<&str>) -> Verification {
        match v {
            Some("good") => Verification::Good,
            Some("bad") => Verification::Bad,
            _ => Verification::Unknown,
        }
    }
}

/// The properties read for every snapshot (and the share's dataset).
pub const LISTED_PROPS: &[&str] = &[
    "creation",
    "used",
    "referenced",
    "available",
    "usedbysnapshots",
    props::MANAGED,
    props::BACKUP_TIME,
    props::ORIGIN,
    props::BACKUP_ID,
    props::VERIFIED,
    props::KEEP,
    "userrefs",
];

impl Snapshot {
    /// Builds a Snapshot from its `zfs get` properties. Only locally set Backstop properties
    /// count; a snapshot Backstop did not mark is foreign.
    pub fn from_props(share: &Share, full_name: &str, p: &PropSet) -> Option<Snapshot> {
        let name = full_name.strip_prefix(&share.dataset)?.strip_prefix('@')?;
        let managed = p.local(props::MANAGED) == Some("on");
        let own = |prop| if managed { p.local(prop) } else { None };
        Some(Snapshot {
            name: name.to_string(),
            share: share.name.clone(),
            full_name: full_name.to_string(),
            managed,
            backup_time: own(props::BACKUP_TIME)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(|s| Timestamp::from_second(s).ok()),
            created: p
                .number("creation")
                .and_then(|s| Timestamp::from_second(s as i64).ok())
                .unwrap_or(Timestamp::UNIX_EPOCH),
            used: p.number("used").unwrap_or(0),
            referenced: p.number("referenced").unwrap_or(0),
            origin: own(props::ORIGIN).and_then(Origin::from_prop),
            backup_id: own(props::BACKUP_ID).map(str::to_string),
            verification: Verification::from_prop(own(props::VERIFIED)),
            keep: own(props::KEEP) == Some("on"),
            holds: p.number("userrefs").unwrap_or(0),
        })
    }
}

/// The properties a new managed snapshot is created with.
pub fn creation_props(
    backup_time: Timestamp,
    origin: Origin,
    backup_id: Option<&BackupId>,
    verification: Verification,
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (props::MANAGED, "on".to_string()),
        (props::BACKUP_TIME, backup_time.as_second().to_string()),
        (props::ORIGIN, origin.as_prop().to_string()),
        (props::VERIFIED, verification.as_prop().to_string()),
    ];
    if let Some(id) = backup_id {
        v.push((props::BACKUP_ID, id.0.clone()));
    }
    v
}

/// An invalid part of a request, phrased for the person who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// A validated snapshot-name suffix: `[A-Za-z0-9._-]{1,64}`, not starting with `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suffix(String);

impl Suffix {
    pub fn parse(s: &str) -> Result<Suffix, InvalidInput> {
        let shown = s.escape_debug();
        let rule = "a suffix is 1 to 64 of A-Z a-z 0-9 . _ - and does not start with '-'";
        if s.is_empty() {
            return Err(InvalidInput(format!("invalid suffix: it is empty; {rule}")));
        }
        if s.len() > 64 {
            return Err(InvalidInput(format!(
                "invalid suffix '{shown}': {} characters is too long; {rule}",
                s.chars().count()
            )));
        }
        if s.starts_with('-') {
            return Err(InvalidInput(format!(
                "invalid suffix '{shown}': it starts with '-'; {rule}"
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
        {
            return Err(InvalidInput(format!(
                "invalid suffix '{shown}': '{}' is not allowed; {rule}",
                c.escape_debug()
            )));
        }
        Ok(Suffix(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a snapshot name given by a client (the part after `@`): 1 to 200 of
/// `A-Z a-z 0-9 . _ : -`, not starting with `-`. Stricter than zfs (no spaces), so nothing odd
/// ever reaches a command line.
pub fn check_snapshot_name(s: &str) -> Result<(), InvalidInput> {
    let ok = !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(InvalidInput(format!(
            "invalid snapshot name '{}': use the name after '@' as `backstop list` shows it",
            s.escape_debug()
        )))
    }
}

/// A validated backup id (the Time Machine destination id and the backup's stamp):
/// `[A-Za-z0-9._:/-]{1,200}`, not starting with `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackupId(String);

impl BackupId {
    pub fn parse(s: &str) -> Result<BackupId, InvalidInput> {
        let ok = !s.is_empty()
            && s.len() <= 200
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c));
        if ok {
            Ok(BackupId(s.to_string()))
        } else {
            Err(InvalidInput(format!(
                "invalid backup id '{}': use 1 to 200 of A-Z a-z 0-9 . _ : / - not starting with '-'",
                s.escape_debug()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Refuses backup times that cannot be the time of a backup (before 2000, or more than a day
/// ahead of this host's clock: a Mac's clock may be a little off, not a day).
pub fn check_backup_time(t: Timestamp, now: Timestamp) -> Result<(), InvalidInput> {
    let earliest = Timestamp::from_second(946_684_800).expect("2000-01-01 is valid");
    let latest = now + jiff::SignedDuration::from_hours(24);
    if t < earliest || t > latest {
        return Err(InvalidInput(format!(
            "invalid backup time {t}: it must lie between 2000-01-01 and a day from now ({now})"
        )));
    }
    Ok(())
}

/// The names to try for a new snapshot, best first: `%Y%m%d_%H%M[_SUFFIX]`, then with seconds,
/// then `-2`, `-3`, … (in the host's time zone, as the hand-written script named them).
pub fn name_candidates(
    backup_time: Timestamp,
    tz: &TimeZone,
    suffix: Option<&Suffix>,
) -> impl Iterator<Item = String> {
    let zoned = backup_time.to_zoned_datetime(tz.clone());
    let minute = zoned.strftime("%Y%m%d_%H%M").to_string();
    let second = zoned.strftime("%Y%m%d_%H%M%S").to_string();
    let tail = suffix
        .map(|s| format!("_{}", s.as_str()))
        .unwrap_or_default();
    let first = [format!("{minute}{tail}"), format!("{second}{tail}")];
    first
        .into_iter()
        .chain((2..=99).map(move |n| format!("{second}{tail}-{n}")))
}

/// Reads the backup time out of a name in the hand-written script's format:
/// `YYYYMMDD_HHMM[SS][_suffix][-N]`, in the host's time zone.
pub fn parse_seed_name(name: &str, tz: &TimeZone) -> Option<Timestamp> {
    let b = name.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i32> {
        let s = name.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    if b.len() < 13 || b[8] != b'_' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi) = (digits(9..11)?, digits(11..13)?);
    let mut rest = &name[13..];
    let mut sec = 0;
    if rest.len() >= 2 && rest.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
        sec = digits(13..15)?;
        rest = &name[15..];
    }
    let tail_ok = rest.is_empty()
        || ((rest.starts_with('_') || rest.starts_with('-'))
            && rest.len() > 1
            && rest[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
    if !tail_ok {
        return None;
    }
    let dt = civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(sec).ok()?,
        0,
    )
    .ok()?;
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn suffix_rules() {
        for ok in ["before-upgrade", "a", "v1.2_x", &"x".repeat(64)] {
            assert!(Suffix::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a@b",
            "../x",
            "-rf",
            "a b",
            "a\nb",
            "",
            &"x".repeat(65),
            "x/y",
            "%",
            "ü",
        ] {
            let e = Suffix::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid suffix"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn names_follow_the_seed_format() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let t = ts("2013-11-24T12:44:31Z");
        let suffix = Suffix::parse("before-upgrade").unwrap();
        let names: Vec<String> = name_candidates(t, &tz, Some(&suffix)).take(4).collect();
        assert_eq!(
            names,
            [
                "20131124_1344_before-upgrade",
                "20131124_134431_before-upgrade",
                "20131124_134431_before-upgrade-2",
                "20131124_134431_before-upgrade-3",
            ]
        );
        let plain: Vec<String> = name_candidates(t, &TimeZone::UTC, None).take(2).collect();
        assert_eq!(plain, ["20131124_1244", "20131124_124431"]);
    }

    #[test]
    fn seed_names_are_read_back() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            parse_seed_name("20131124_1344", &tz),
            Some(ts("2013-11-24T12:44:00Z"))
        );
        assert_eq!(
            parse_seed_name("20131124_1344_before-upgrade", &tz),
            Some(ts("2013-11-24T12:44:00Z"))
        );
        assert_eq!(
            parse_seed_name("20131124_134431-2", &tz),
            Some(ts("2013-11-24T12:44:31Z"))
        );
        for not in [
            "autosnap_2026-11-20_00:00:01_daily",
            "20131324_1344",
            "20131124-1344",
            "2013112_1344",
            "20131124_1344_",
            "20131124_1344 x",
            "manual",
        ] {
            assert_eq!(parse_seed_name(not, &tz), None, "{not}");
        }
    }

    #[test]
    fn backup_time_bounds() {
        let now = ts("2026-11-25T12:00:00Z");
        assert!(check_backup_time(ts("2013-11-24T12:44:00Z"), now).is_ok());
        assert!(check_backup_time(ts("2026-11-26T11:00:00Z"), now).is_ok());
        assert!(check_backup_time(ts("2026-11-27T12:00:00Z"), now).is_err());
        assert!(check_backup_time(ts("1999-12-31T00:00:00Z"), now).is_err());
    }

    #[test]
    fn backup_ids() {
        assert!(BackupId::parse("5F2C6F4E-0B7A-4B8E/2026-06-14-145122").is_ok());
        for bad in ["", "-x", "a b", "a\tb", "a@b", &"x".repeat(201)] {
            assert!(BackupId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn foreign_snapshot_ignores_inherited_marks() {
        let share = Share {
            name: "tm".into(),
            dataset: "tank/tm".into(),
        };
        let mut p = PropSet::default();
        p.insert(props::MANAGED, "on", "inherited from tank/tm");
        p.insert(props::BACKUP_TIME, "1700000000", "inherited from tank/tm");
        p.insert("creation", "1763596801", "-");
        let s = Snapshot::from_props(&share, "tank/tm@x", &p).unwrap();
        assert!(!s.managed);
        assert_eq!(s.backup_time, None);
        assert!(Snapshot::from_props(&share, "tank/tm2@x", &p).is_none());
        assert!(Snapshot::from_props(&share, "tank/tm/child", &p).is_none());
    }

    proptest! {
        /// Every name Backstop generates is a valid ZFS snapshot component that reads back as
        /// its own backup time (to the minute or second) and cannot be taken for an option.
        #[test]
        fn generated_names_are_safe_and_read_back(secs in 946_684_800i64..4_102_444_800, suffix in "[A-Za-z0-9._][A-Za-z0-9._-]{0,63}") {
            let t = Timestamp::from_second(secs).unwrap();
            let tz = TimeZone::get("America/New_York").unwrap();
            let suffix = Suffix::parse(&suffix).unwrap();
            for name in name_candidates(t, &tz, Some(&suffix)).take(3) {
                prop_assert!(!name.starts_with('-'));
                prop_assert!(name.len() <= 64 + 18);
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
                let back = parse_seed_name(&name, &tz).unwrap();
                prop_assert!((t.as_second() - back.as_second()).abs() < 3600 + 60, "{} {}", name, back);
            }
        }

        #[test]
        fn suffix_parse_never_panics(s in "\\PC{0,80}") {
            let _ = Suffix::parse(&s);
        }
    }
}
