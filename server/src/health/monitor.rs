//! What changed in the pools' health since it was last reported, the one-line verdict, and when
//! a scrub is due. Pure: [`diff`] takes what was reported before and what `zpool status` says
//! now, and returns the changes to announce and the new memory (kept across restarts by the
//! caller). Counters that go down (`zpool clear`) update the memory silently.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::status::{DataErrors, Device, PoolStatus, Role, Scan, ScanKind};
use crate::events::Severity;
use backstop_proto::size::nicenum;

/// What was last reported about one device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMemory {
    pub state: String,
    pub read: u64,
    pub write: u64,
    pub cksum: u64,
}

/// What was last reported about one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolMemory {
    pub state: String,
    pub devices: BTreeMap<String, DeviceMemory>,
    /// A key that changes when a scan starts, finishes or is canceled.
    pub scan: String,
    pub errors: String,
}

/// What was reported, per pool (persisted as JSON in the state dir).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    pub pools: BTreeMap<String, PoolMemory>,
}

/// One change worth telling the Macs.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthChange {
    pub pool: String,
    pub device: Option<String>,
    pub kind: ChangeKind,
    pub severity: Severity,
    pub summary: String,
    pub state: String,
    pub read: u64,
    pub write: u64,
    pub cksum: u64,
    pub repaired: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    ErrorsRose,
    StateChanged,
    ScanStarted,
    ScanFinished,
    DataErrors,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::ErrorsRose => "errors_rose",
            ChangeKind::StateChanged => "state_changed",
            ChangeKind::ScanStarted => "scan_started",
            ChangeKind::ScanFinished => "scan_finished",
            ChangeKind::DataErrors => "data_errors",
        }
    }
}

fn kind_name(k: &ScanKind) -> &'static str {
    match k {
        ScanKind::Scrub => "scrub",
        ScanKind::Resilver => "resilver",
    }
}

/// The memory key of a scan: equal keys mean nothing happened.
fn scan_key(scan: &Scan) -> String {
    match scan {
        Scan::None => "none".into(),
        Scan::InProgress { kind, since, .. } => format!(
            "{}:running:{}",
            kind_name(kind),
            since.map(|t| t.to_string()).unwrap_or_default()
        ),
        Scan::Finished { kind, at, .. } => format!(
            "{}:finished:{}",
            kind_name(kind),
            at.map(|t| t.to_string()).unwrap_or_default()
        ),
        Scan::Canceled { kind, at } => format!(
            "{}:canceled:{}",
            kind_name(kind),
            at.map(|t| t.to_string()).unwrap_or_default()
        ),
        Scan::Other(text) => format!("other:{text}"),
    }
}

fn errors_key(e: &DataErrors) -> String {
    match e {
        DataErrors::None => "none".into(),
        DataErrors::Count(n) => format!("count:{n}"),
        DataErrors::Files(f) => format!("files:{}", f.join("\n")),
        DataErrors::Other(t) => format!("other:{t}"),
    }
}

fn has_data_errors(e: &DataErrors) -> bool {
    match e {
        DataErrors::None => false,
        DataErrors::Count(n) => *n > 0,
        DataErrors::Files(f) => !f.is_empty(),
        DataErrors::Other(_) => true,
    }
}

fn healthy_state(s: &str) -> bool {
    matches!(s, "ONLINE" | "AVAIL" | "INUSE")
}

/// Whether a device has no children in the tree (a disk or file, not a mirror or raidz).
fn leaves(pool: &PoolStatus) -> Vec<&Device> {
    let d = &pool.devices;
    d.iter()
        .enumerate()
        .filter(|(i, dev)| {
            dev.role != Role::Pool && d.get(i + 1).is_none_or(|next| next.depth <= dev.depth)
        })
        .map(|(_, dev)| dev)
        .collect()
}

fn counts(d: &Device) -> (u64, u64, u64) {
    (d.read.value, d.write.value, d.cksum.value)
}

fn error_words(read: u64, write: u64, cksum: u64) -> String {
    let mut parts = Vec::new();
    if read > 0 {
        parts.push(format!("{read} read"));
    }
    if write > 0 {
        parts.push(format!("{write} write"));
    }
    if cksum > 0 {
        parts.push(format!("{cksum} checksum"));
    }
    let n = parts.len();
    let joined = match n {
        0 => "no".to_string(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    };
    format!(
        "{joined} error{}",
        if read + write + cksum == 1 { "" } else { "s" }
    )
}

/// Compares `now` with what was reported; returns what to announce and the new memory.
pub fn diff(previous: &Reported, now: &[PoolStatus]) -> (Vec<HealthChange>, Reported) {
    let mut changes = Vec::new();
    let mut next = previous.clone();
    for pool in now {
        let before = previous.pools.get(&pool.name);
        let first_sight = before.is_none();
        let empty = PoolMemory::default();
        let before = before.unwrap_or(&empty);
        let change = |device: Option<&Device>, kind, severity, summary: String| HealthChange {
            pool: pool.name.clone(),
            device: device.map(|d| d.name.clone()),
            kind,
            severity,
            summary,
            state: device.map_or(pool.state.clone(), |d| d.state.clone()),
            read: device.map_or(0, |d| d.read.value),
            write: device.map_or(0, |d| d.write.value),
            cksum: device.map_or(0, |d| d.cksum.value),
            repaired: 0,
        };

        // The pool's state.
        let state_changed = if first_sight {
            !healthy_state(&pool.state)
        } else {
            before.state != pool.state
        };
        if state_changed {
            let (severity, summary) = if healthy_state(&pool.state) {
                (
                    Severity::Info,
                    format!("{}: pool is {} again", pool.name, pool.state),
                )
            } else {
                let bad: Vec<String> = leaves(pool)
                    .iter()
                    .filter(|d| !healthy_state(&d.state))
                    .map(|d| format!("{} is {}", d.name, d.state))
                    .collect();
                (
                    Severity::Critical,
                    format!(
                        "{}: pool is {}{}",
                        pool.name,
                        pool.state,
                        if bad.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", bad.join(", "))
                        }
                    ),
                )
            };
            changes.push(change(None, ChangeKind::StateChanged, severity, summary));
        }

        // Every device: counters that rose, states that changed.
        let mut devices = BTreeMap::new();
        for dev in pool.devices.iter().filter(|d| d.role != Role::Pool) {
            let (read, write, cksum) = counts(dev);
            let old = before.devices.get(&dev.name);
            let was = old.cloned().unwrap_or(DeviceMemory {
                state: if first_sight {
                    "ONLINE".into()
                } else {
                    dev.state.clone()
                },
                ..DeviceMemory::default()
            });
            if read > was.read || write > was.write || cksum > was.cksum {
                let (severity, advice) = if read > was.read || write > was.write {
                    (Severity::Critical, "the disk is failing; replace it")
                } else {
                    (
                        Severity::Warning,
                        "ZFS repaired them; replace the disk soon",
                    )
                };
                changes.push(change(
                    Some(dev),
                    ChangeKind::ErrorsRose,
                    severity,
                    format!(
                        "{}: disk {} has {} ({advice})",
                        pool.name,
                        dev.name,
                        error_words(read, write, cksum)
                    ),
                ));
            }
            if was.state != dev.state && (old.is_some() || !healthy_state(&dev.state)) {
                let severity = if healthy_state(&dev.state) {
                    Severity::Info
                } else {
                    Severity::Critical
                };
                let note = dev
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                changes.push(change(
                    Some(dev),
                    ChangeKind::StateChanged,
                    severity,
                    format!(
                        "{}: disk {} is {}{note} (was {})",
                        pool.name, dev.name, dev.state, was.state
                    ),
                ));
            }
            devices.insert(
                dev.name.clone(),
                DeviceMemory {
                    state: dev.state.clone(),
                    read,
                    write,
                    cksum,
                },
            );
        }

        // Scans: started, finished, canceled (not on first sight: that is history).
        let scan = scan_key(&pool.scan);
        if !first_sight && scan != before.scan {
            match &pool.scan {
                Scan::InProgress { kind, .. } => changes.push(change(
                    None,
                    ChangeKind::ScanStarted,
                    Severity::Info,
                    format!("{}: {} started", pool.name, kind_name(kind)),
                )),
                Scan::Finished { kind, errors, .. } => {
                    let repaired = &repaired_bytes(pool);
                    let severity = if *errors > 0 {
                        Severity::Critical
                    } else if *repaired > 0 {
                        Severity::Warning
                    } else {
                        Severity::Info
                    };
                    let what = if *repaired > 0 {
                        format!("repaired {}", nicenum(*repaired))
                    } else {
                        "nothing to repair".into()
                    };
                    let mut c = change(
                        None,
                        ChangeKind::ScanFinished,
                        severity,
                        format!(
                            "{}: {} finished, {what}, {} error{}",
                            pool.name,
                            kind_name(kind),
                            errors,
                            if *errors == 1 { "" } else { "s" }
                        ),
                    );
                    c.repaired = *repaired;
                    changes.push(c);
                }
                Scan::Canceled { kind, .. } => changes.push(change(
                    None,
                    ChangeKind::ScanFinished,
                    Severity::Info,
                    format!("{}: {} canceled", pool.name, kind_name(kind)),
                )),
                Scan::None | Scan::Other(_) => {}
            }
        }

        // The errors line.
        let errors = errors_key(&pool.errors);
        let errors_changed = if first_sight {
            has_data_errors(&pool.errors)
        } else {
            errors != before.errors
        };
        if errors_changed {
            let (severity, summary) = match &pool.errors {
                DataErrors::None => (
                    Severity::Info,
                    format!("{}: no known data errors any more", pool.name),
                ),
                DataErrors::Files(files) => (
                    Severity::Critical,
                    format!(
                        "{}: {} file{} damaged beyond repair (restore from a snapshot): {}",
                        pool.name,
                        files.len(),
                        if files.len() == 1 { " is" } else { "s are" },
                        files.join(", ")
                    ),
                ),
                DataErrors::Count(n) => (
                    Severity::Critical,
                    format!("{}: {n} data errors ZFS could not repair", pool.name),
                ),
                DataErrors::Other(t) => (Severity::Critical, format!("{}: {t}", pool.name)),
            };
            changes.push(change(None, ChangeKind::DataErrors, severity, summary));
        }

        next.pools.insert(
            pool.name.clone(),
            PoolMemory {
                state: pool.state.clone(),
                devices,
                scan,
                errors,
            },
        );
    }
    (changes, next)
}

/// Bytes the pool's last scan repaired: from the scan line, or (zfs-fuse, which prints them only
/// per device) the sum of the devices' "… repaired" notes.
pub fn repaired_bytes(pool: &PoolStatus) -> u64 {
    let from_scan = match &pool.scan {
        Scan::Finished { repaired, .. } => *repaired,
        Scan::InProgress { repaired, .. } => repaired.unwrap_or(0),
        _ => 0,
    };
    if from_scan > 0 {
        return from_scan;
    }
    pool.devices
        .iter()
        .filter_map(|d| d.note.as_deref()?.strip_suffix(" repaired"))
        .filter_map(|size| super::status::parse_size(size.trim()).map(|(n, _)| n))
        .sum()
}

/// When the last scrub finished (a resilver reads everything too, but only what it rebuilt is
/// checked, so it does not count).
fn last_scrub(pool: &PoolStatus, tz: &TimeZone) -> Option<Timestamp> {
    match &pool.scan {
        Scan::Finished {
            kind: ScanKind::Scrub,
            at: Some(at),
            ..
        } => tz.to_ambiguous_timestamp(*at).compatible().ok(),
        _ => None,
    }
}

/// When the next scheduled scrub starts: `interval_days` after the last one finished; now when
/// there was none; `None` when scrubs are not scheduled or one is running.
pub fn next_scrub(
    pool: &PoolStatus,
    now: Timestamp,
    interval_days: u32,
    tz: &TimeZone,
) -> Option<Timestamp> {
    if interval_days == 0 || matches!(pool.scan, Scan::InProgress { .. }) {
        return None;
    }
    let every = SignedDuration::from_hours(24 * i64::from(interval_days));
    Some(last_scrub(pool, tz).map_or(now, |t| t + every))
}

/// Whether the server should start a scrub of this pool now.
pub fn scrub_due(pool: &PoolStatus, now: Timestamp, interval_days: u32, tz: &TimeZone) -> bool {
    next_scrub(pool, now, interval_days, tz).is_some_and(|t| t <= now)
}

fn ago(then: Timestamp, now: Timestamp) -> String {
    let secs = (now - then).as_secs().max(0);
    let days = secs / 86_400;
    match days {
        0 if secs < 3600 => "less than an hour ago".into(),
        0 => format!(
            "{} hour{} ago",
            secs / 3600,
            if secs / 3600 == 1 { "" } else { "s" }
        ),
        1 => "yesterday".into(),
        d => format!("{d} days ago"),
    }
}

/// The one-line verdict a non-expert understands, with its severity.
pub fn verdict(pool: &PoolStatus, now: Timestamp, tz: &TimeZone) -> (Severity, String) {
    let name = &pool.name;
    let bad: Vec<String> = leaves(pool)
        .iter()
        .filter(|d| !healthy_state(&d.state))
        .map(|d| format!("disk {} is {}", d.name, d.state))
        .collect();
    if !healthy_state(&pool.state) || !bad.is_empty() {
        let what = if bad.is_empty() {
            String::new()
        } else {
            format!(": {}", bad.join(", "))
        };
        return (
            Severity::Critical,
            format!(
                "{name}: {}{what}; replace the disk (zpool replace) before another fails",
                pool.state
            ),
        );
    }
    if has_data_errors(&pool.errors) {
        return (
            Severity::Critical,
            format!("{name}: some data is damaged beyond repair; restore it from a snapshot"),
        );
    }
    let erring: Vec<&Device> = leaves(pool)
        .into_iter()
        .filter(|d| d.read.value + d.write.value + d.cksum.value > 0)
        .collect();
    if let Some(d) = erring.first() {
        let (r, w, c) = counts(d);
        let (severity, advice) = if r + w > 0 {
            (Severity::Critical, "replace it now")
        } else {
            (Severity::Warning, "that ZFS repaired; replace it soon")
        };
        let more = if erring.len() > 1 {
            format!(" (and {} more disks with errors)", erring.len() - 1)
        } else {
            String::new()
        };
        return (
            severity,
            format!(
                "{name}: disk {} has {} {advice}{more}",
                d.name,
                error_words(r, w, c)
            ),
        );
    }
    let scrub = match &pool.scan {
        Scan::InProgress { kind, percent, .. } => format!(
            "{} in progress{}",
            kind_name(kind),
            percent
                .map(|p| format!(", {p:.0}% done"))
                .unwrap_or_default()
        ),
        Scan::Finished {
            kind: ScanKind::Scrub,
            ..
        } => {
            let when = last_scrub(pool, tz).map_or("scrubbed".to_string(), |t| {
                format!("scrubbed {}", ago(t, now))
            });
            let repaired = repaired_bytes(pool);
            if repaired > 0 {
                format!("{when}, repaired {}", nicenum(repaired))
            } else {
                format!("{when}, nothing to repair")
            }
        }
        _ => "never scrubbed".to_string(),
    };
    (Severity::Info, format!("{name}: healthy, {scrub}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::status::parse;

    fn fixture(name: &str) -> Vec<PoolStatus> {
        let path = format!(
            "{}/tests/fixtures/zpool-status/{name}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn existing_errors_are_reported_once_then_remembered() {
        let now = fixture("illumos-mirror3-cksum-resilvered");
        let (changes, memory) = diff(&Reported::default(), &now);
        assert_eq!(changes.len(), 1, "{changes:#?}");
        let c = &changes[0];
        assert_eq!(c.kind, ChangeKind::ErrorsRose);
        assert_eq!(c.device.as_deref(), Some("c1t0d0s0"));
        assert_eq!(
            c.severity,
            Severity::Critical,
            "read/write errors: failing disk"
        );
        assert_eq!((c.read, c.write, c.cksum), (2673, 374_784, 635));
        assert_eq!(
            c.summary,
            "zones: disk c1t0d0s0 has 2673 read, 374784 write and 635 checksum errors (the disk is failing; replace it)"
        );
        // The same output again: nothing new.
        let (again, same) = diff(&memory, &now);
        assert!(again.is_empty(), "{again:#?}");
        assert_eq!(same, memory);
    }

    #[test]
    fn a_zpool_clear_is_noticed_not_reported_and_new_errors_after_it_are() {
        let mut now = fixture("zfs-fuse-raidz1-cksum-repaired");
        let (first, memory) = diff(&Reported::default(), &now);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].severity, Severity::Warning);
        // zpool clear: counters back to 0.
        for d in &mut now[0].devices {
            d.cksum.value = 0;
        }
        let (cleared, memory) = diff(&memory, &now);
        assert!(cleared.is_empty(), "{cleared:#?}");
        assert_eq!(memory.pools["tank"].devices["/tmp/vdev/d3"].cksum, 0);
        now[0].devices[4].cksum.value = 3;
        let (rose, _) = diff(&memory, &now);
        assert_eq!(rose.len(), 1);
        assert_eq!(rose[0].cksum, 3);
    }

    #[test]
    fn scans_are_reported_when_they_start_and_finish() {
        let running = fixture("openzfs-linux-scrub-in-progress");
        let done = fixture("openzfs-linux-healthy-scrubbed");
        let base = Reported {
            pools: [(
                "tank".to_string(),
                PoolMemory {
                    state: "ONLINE".into(),
                    scan: "none".into(),
                    errors: "none".into(),
                    devices: BTreeMap::new(),
                },
            )]
            .into(),
        };
        let (started, memory) = diff(&base, &running[..1]);
        assert!(
            started
                .iter()
                .any(|c| c.kind == ChangeKind::ScanStarted && c.summary == "tank: scrub started"),
            "{started:#?}"
        );
        let (finished, _) = diff(&memory, &done);
        let f = finished
            .iter()
            .find(|c| c.kind == ChangeKind::ScanFinished)
            .expect("finished");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(
            f.summary,
            "tank: scrub finished, nothing to repair, 0 errors"
        );
    }

    #[test]
    fn a_degraded_pool_is_critical_with_its_bad_disks() {
        let now = fixture("openzfs-linux-faulted-devices-p");
        let (changes, _) = diff(&Reported::default(), &now);
        let pool = changes
            .iter()
            .find(|c| c.kind == ChangeKind::StateChanged && c.device.is_none())
            .unwrap();
        assert_eq!(pool.severity, Severity::Critical);
        assert!(
            pool.summary.starts_with("vault: pool is DEGRADED ("),
            "{}",
            pool.summary
        );
        assert!(pool.summary.contains("sda is FAULTED") && pool.summary.contains("sdi is UNAVAIL"));
        assert!(changes.iter().any(|c| c.kind == ChangeKind::DataErrors));
        let (severity, verdict) = verdict(&now[0], ts("2026-11-25T12:00:00Z"), &TimeZone::UTC);
        assert_eq!(severity, Severity::Critical);
        assert!(
            verdict.starts_with("vault: DEGRADED: disk sda is FAULTED"),
            "{verdict}"
        );
        assert!(verdict.ends_with("replace the disk (zpool replace) before another fails"));
    }

    #[test]
    fn verdicts_a_non_expert_understands() {
        let now = ts("2026-11-11T09:00:00Z");
        let healthy = fixture("openzfs-linux-healthy-scrubbed");
        assert_eq!(
            verdict(&healthy[0], now, &TimeZone::UTC),
            (
                Severity::Info,
                "tank: healthy, scrubbed 3 days ago, nothing to repair".to_string()
            )
        );
        let fuse = fixture("zfs-fuse-raidz1-cksum-repaired");
        let (severity, text) = verdict(&fuse[0], now, &TimeZone::UTC);
        assert_eq!(severity, Severity::Warning);
        assert_eq!(
            text,
            "tank: disk /tmp/vdev/d3 has 21 checksum errors that ZFS repaired; replace it soon"
        );
        assert_eq!(repaired_bytes(&fuse[0]), 1_132_462);
    }

    #[test]
    fn scrub_scheduling() {
        let tz = TimeZone::UTC;
        let healthy = &fixture("openzfs-linux-healthy-scrubbed")[0];
        // Finished 2026-11-08 00:34:38.
        assert_eq!(
            next_scrub(healthy, ts("2026-11-10T00:00:00Z"), 30, &tz),
            Some(ts("2026-12-08T00:34:38Z"))
        );
        assert!(!scrub_due(healthy, ts("2026-12-08T00:34:37Z"), 30, &tz));
        assert!(scrub_due(healthy, ts("2026-12-08T00:34:38Z"), 30, &tz));
        assert!(
            !scrub_due(healthy, ts("2027-06-01T00:00:00Z"), 0, &tz),
            "0 = never"
        );
        let running = &fixture("openzfs-linux-scrub-in-progress")[0];
        assert_eq!(
            next_scrub(running, ts("2027-01-01T00:00:00Z"), 30, &tz),
            None
        );
        let mut never = healthy.clone();
        never.scan = Scan::None;
        assert!(scrub_due(&never, ts("2026-11-10T00:00:00Z"), 30, &tz));
    }
}
