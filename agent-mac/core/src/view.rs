//! What the CLI prints: the stable JSON shapes of `--json` (documented in docs/cli-json.md) and
//! the readable tables. Built from the contract's messages; no other logic.

use backstop_proto::v1 as pb;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use backstop_proto::size::nicenum;

fn time(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    time(t).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Local time to the minute, for tables.
pub fn local_minute(t: Option<&prost_types::Timestamp>, tz: &TimeZone) -> String {
    time(t)
        .map(|t| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "-".into())
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ShareJson {
    pub name: String,
    pub dataset: String,
}

impl From<&pb::Share> for ShareJson {
    fn from(s: &pb::Share) -> Self {
        ShareJson {
            name: s.name.clone(),
            dataset: s.dataset.clone(),
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SnapshotJson {
    pub name: String,
    pub share: String,
    pub full_name: String,
    pub managed: bool,
    /// RFC 3339, UTC; null for foreign snapshots.
    pub backup_time: Option<String>,
    pub created: Option<String>,
    pub used: u64,
    pub referenced: u64,
    /// "manual", "backup", "adopted", or null for foreign snapshots.
    pub origin: Option<&'static str>,
    pub backup_id: Option<String>,
    /// "good", "bad" or "unknown": whether Time Machine considered the backup sound.
    pub verification: &'static str,
    /// The keep mark: never pruned.
    pub keep: bool,
    /// zfs holds on it: never pruned while held.
    pub holds: u64,
}

pub fn verification_name(v: pb::Verification) -> &'static str {
    match v {
        pb::Verification::Good => "good",
        pb::Verification::Bad => "bad",
        pb::Verification::Unknown | pb::Verification::Unspecified => "unknown",
    }
}

pub fn origin_name(o: pb::SnapshotOrigin) -> Option<&'static str> {
    match o {
        pb::SnapshotOrigin::Unspecified => None,
        pb::SnapshotOrigin::Manual => Some("manual"),
        pb::SnapshotOrigin::Backup => Some("backup"),
        pb::SnapshotOrigin::Adopted => Some("adopted"),
    }
}

impl From<&pb::Snapshot> for SnapshotJson {
    fn from(s: &pb::Snapshot) -> Self {
        SnapshotJson {
            name: s.name.clone(),
            share: s.share.clone(),
            full_name: s.full_name.clone(),
            managed: s.managed,
            backup_time: rfc3339(s.backup_time.as_ref()),
            created: rfc3339(s.created.as_ref()),
            used: s.used,
            referenced: s.referenced,
            origin: origin_name(s.origin()),
            backup_id: (!s.backup_id.is_empty()).then(|| s.backup_id.clone()),
            verification: verification_name(s.verification()),
            keep: s.keep,
            holds: s.holds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlanEntryJson {
    pub name: String,
    /// "keep", "destroy" or "foreign".
    pub decision: &'static str,
    pub reasons: Vec<String>,
    pub used: u64,
    pub backup_time: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FailureJson {
    pub name: String,
    pub reason: String,
}

/// `backstop prune --json`.
#[derive(Debug, Serialize)]
pub struct PruneJson {
    pub share: String,
    pub dry_run: bool,
    pub plan: Vec<PlanEntryJson>,
    pub used_by_destroyed: u64,
    pub reclaim_estimate: Option<u64>,
    pub destroyed: Vec<String>,
    pub failed: Vec<FailureJson>,
    pub spared: Vec<String>,
    pub freed: u64,
}

fn decision_name(d: pb::Decision) -> &'static str {
    match d {
        pb::Decision::Keep => "keep",
        pb::Decision::Destroy => "destroy",
        pb::Decision::Foreign => "foreign",
        pb::Decision::Unspecified => "unknown",
    }
}

impl From<&pb::PruneResponse> for PruneJson {
    fn from(r: &pb::PruneResponse) -> Self {
        PruneJson {
            share: r.share.clone(),
            dry_run: r.dry_run,
            plan: r
                .plan
                .iter()
                .map(|e| PlanEntryJson {
                    name: e.name.clone(),
                    decision: decision_name(e.decision()),
                    reasons: e.reasons.clone(),
                    used: e.used,
                    backup_time: rfc3339(e.backup_time.as_ref()),
                })
                .collect(),
            used_by_destroyed: r.used_by_destroyed,
            reclaim_estimate: r.reclaim_estimate,
            destroyed: r.destroyed.clone(),
            failed: r
                .failed
                .iter()
                .map(|f| FailureJson {
                    name: f.name.clone(),
                    reason: f.reason.clone(),
                })
                .collect(),
            spared: r.spared.clone(),
            freed: r.freed,
        }
    }
}

/// `backstop prune` as text: the plan with reasons, then what it would free or freed.
pub fn prune_text(r: &pb::PruneResponse, tz: &TimeZone) -> String {
    let rows: Vec<Vec<String>> = r
        .plan
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                local_minute(e.backup_time.as_ref(), tz),
                nicenum(e.used),
                e.reasons.join("; "),
            ]
        })
        .collect();
    let mut out = table(&["NAME", "BACKUP TIME", "USED", "DECISION"], &rows);
    let doomed = r
        .plan
        .iter()
        .filter(|e| e.decision() == pb::Decision::Destroy)
        .count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    out.push('\n');
    if r.dry_run {
        out.push_str(&format!(
            "would destroy {doomed} snapshot{} of {}: their USED adds up to {}",
            plural(doomed),
            r.share,
            nicenum(r.used_by_destroyed)
        ));
        match r.reclaim_estimate {
            Some(b) => out.push_str(&format!("; zfs says destroying them frees {}\n", nicenum(b))),
            None => out.push_str(
                " (space shared between them is freed too, and this zfs cannot say how much beforehand)\n",
            ),
        }
    } else {
        out.push_str(&format!(
            "destroyed {} snapshot{} of {}, freed {}\n",
            r.destroyed.len(),
            plural(r.destroyed.len()),
            r.share,
            nicenum(r.freed)
        ));
        for name in &r.spared {
            out.push_str(&format!(
                "spared {name}: it became kept, held or verified good since the plan\n"
            ));
        }
        for f in &r.failed {
            out.push_str(&format!(
                "could not destroy {}: {} (the next prune tries again)\n",
                f.name, f.reason
            ));
        }
    }
    out
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SpaceJson {
    pub used: u64,
    pub used_by_snapshots: u64,
    pub available: u64,
    pub referenced: u64,
}

#[derive(Debug, Serialize)]
pub struct ListJson {
    pub share: ShareJson,
    pub space: SpaceJson,
    pub snapshots: Vec<SnapshotJson>,
}

impl From<&pb::ListSnapshotsResponse> for ListJson {
    fn from(r: &pb::ListSnapshotsResponse) -> Self {
        let space = r.space.unwrap_or_default();
        ListJson {
            share: r.share.as_ref().map(ShareJson::from).unwrap_or(ShareJson {
                name: String::new(),
                dataset: String::new(),
            }),
            space: SpaceJson {
                used: space.used,
                used_by_snapshots: space.used_by_snapshots,
                available: space.available,
                referenced: space.referenced,
            },
            snapshots: r.snapshots.iter().map(SnapshotJson::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventJson {
    /// Always "event" (lines of `events --follow --json` are "event" or "missed").
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub cursor: u64,
    pub at: Option<String>,
    /// "info", "warning", "critical".
    pub severity: &'static str,
    pub share: Option<String>,
    pub summary: String,
    /// "server_started", "snapshot_created", "snapshots_adopted", or "other" for kinds this
    /// client does not know.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// For `pool_health_changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthChangeJson>,
}

#[derive(Debug, Serialize)]
pub struct HealthChangeJson {
    pub pool: String,
    pub device: Option<String>,
    /// "errors_rose", "state_changed", "scan_started", "scan_finished", "data_errors".
    pub change: String,
    pub state: String,
    pub read: u64,
    pub write: u64,
    pub cksum: u64,
    pub repaired: u64,
}

/// `backstop health --json`.
#[derive(Debug, Serialize)]
pub struct HealthJson {
    pub pools: Vec<PoolHealthJson>,
}

#[derive(Debug, Serialize)]
pub struct PoolHealthJson {
    pub name: String,
    pub state: String,
    pub verdict: String,
    pub severity: &'static str,
    pub status: Option<String>,
    pub action: Option<String>,
    pub scan: ScanJson,
    pub next_scrub: Option<String>,
    pub devices: Vec<DeviceJson>,
    pub errors: String,
    pub error_files: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ScanJson {
    pub kind: Option<String>,
    /// "none", "in_progress", "finished", "canceled".
    pub state: String,
    pub percent: f64,
    pub repaired: u64,
    pub errors: u64,
    pub at: Option<String>,
    pub time_left: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DeviceJson {
    pub name: String,
    pub role: String,
    pub depth: u32,
    pub state: String,
    pub read: u64,
    pub write: u64,
    pub cksum: u64,
    pub approximate: bool,
    pub note: Option<String>,
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl From<&pb::HealthReport> for HealthJson {
    fn from(r: &pb::HealthReport) -> Self {
        HealthJson {
            pools: r
                .pools
                .iter()
                .map(|p| {
                    let scan = p.scan.clone().unwrap_or_default();
                    PoolHealthJson {
                        name: p.name.clone(),
                        state: p.state.clone(),
                        verdict: p.verdict.clone(),
                        severity: severity_name(p.severity()),
                        status: nonempty(&p.status),
                        action: nonempty(&p.action),
                        scan: ScanJson {
                            kind: nonempty(&scan.kind),
                            state: scan.state.clone(),
                            percent: scan.percent,
                            repaired: scan.repaired,
                            errors: scan.errors,
                            at: rfc3339(scan.at.as_ref()),
                            time_left: nonempty(&scan.time_left),
                        },
                        next_scrub: rfc3339(p.next_scrub.as_ref()),
                        devices: p
                            .devices
                            .iter()
                            .map(|d| DeviceJson {
                                name: d.name.clone(),
                                role: d.role.clone(),
                                depth: d.depth,
                                state: d.state.clone(),
                                read: d.read,
                                write: d.write,
                                cksum: d.cksum,
                                approximate: d.approximate,
                                note: nonempty(&d.note),
                            })
                            .collect(),
                        errors: p.errors.clone(),
                        error_files: p.error_files.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// `backstop health` as text: the verdict first, then the details, devices with errors marked.
pub fn health_text(r: &pb::HealthReport, tz: &TimeZone) -> String {
    let mut out = String::new();
    if r.pools.is_empty() {
        out.push_str("no pools are watched (no shares configured)\n");
    }
    for p in &r.pools {
        let scan = p.scan.clone().unwrap_or_default();
        out.push_str(&format!("{}\n", p.verdict));
        let last = match scan.state.as_str() {
            "in_progress" => format!(
                "{} in progress, {:.0}% done{}",
                scan.kind,
                scan.percent,
                nonempty(&scan.time_left)
                    .map(|t| format!(", {t} to go"))
                    .unwrap_or_default()
            ),
            "finished" => format!(
                "{} finished {}, repaired {}, {} errors",
                scan.kind,
                local_minute(scan.at.as_ref(), tz),
                nicenum(scan.repaired),
                scan.errors
            ),
            "canceled" => format!(
                "{} canceled {}",
                scan.kind,
                local_minute(scan.at.as_ref(), tz)
            ),
            _ => "never scrubbed".to_string(),
        };
        out.push_str(&format!("  state: {}; last scan: {last}\n", p.state));
        out.push_str(&format!(
            "  next scheduled scrub: {}\n",
            match &p.next_scrub {
                Some(t) if t.seconds <= Timestamp::now().as_second() => {
                    "due now (starts at the server's next check)".to_string()
                }
                Some(t) => local_minute(Some(t), tz),
                None => "none".into(),
            }
        ));
        let rows: Vec<Vec<String>> = p
            .devices
            .iter()
            .map(|d| {
                let bad = d.read + d.write + d.cksum > 0
                    || !matches!(d.state.as_str(), "ONLINE" | "AVAIL" | "INUSE");
                vec![
                    format!("{}{}", "  ".repeat(d.depth as usize), d.name),
                    d.state.clone(),
                    d.read.to_string(),
                    d.write.to_string(),
                    d.cksum.to_string(),
                    format!("{}{}", if bad { "<-- " } else { "" }, d.note),
                ]
            })
            .collect();
        for line in table(&["NAME", "STATE", "READ", "WRITE", "CKSUM", ""], &rows).lines() {
            out.push_str(&format!("  {}\n", line.trim_end()));
        }
        out.push_str(&format!("  errors: {}\n", p.errors));
        for f in &p.error_files {
            out.push_str(&format!("    {f}\n"));
        }
    }
    out
}

pub fn severity_name(s: pb::Severity) -> &'static str {
    match s {
        pb::Severity::Unspecified | pb::Severity::Info => "info",
        pb::Severity::Warning => "warning",
        pb::Severity::Critical => "critical",
    }
}

impl From<&pb::Event> for EventJson {
    fn from(e: &pb::Event) -> Self {
        use pb::event::Kind;
        let (kind, snapshot, names) = match &e.kind {
            Some(Kind::ServerStarted(_)) => ("server_started", None, None),
            Some(Kind::SnapshotCreated(c)) => (
                "snapshot_created",
                c.snapshot.as_ref().map(SnapshotJson::from),
                None,
            ),
            Some(Kind::SnapshotsAdopted(a)) => ("snapshots_adopted", None, Some(a.names.clone())),
            Some(Kind::SnapshotsPruned(p)) => ("snapshots_pruned", None, Some(p.destroyed.clone())),
            Some(Kind::PoolHealthChanged(_)) => ("pool_health_changed", None, None),
            Some(Kind::BackupEnded(_)) => ("backup_ended", None, None),
            Some(Kind::VerificationFailed(_)) => ("verification_failed", None, None),
            Some(Kind::Recovery(_)) => ("recovery", None, None),
            Some(Kind::CnidChecked(_)) => ("cnid_checked", None, None),
            None => ("other", None, None),
        };
        let health = match &e.kind {
            Some(Kind::PoolHealthChanged(h)) => Some(HealthChangeJson {
                pool: h.pool.clone(),
                device: (!h.device.is_empty()).then(|| h.device.clone()),
                change: h.change.clone(),
                state: h.state.clone(),
                read: h.read,
                write: h.write,
                cksum: h.cksum,
                repaired: h.repaired,
            }),
            _ => None,
        };
        EventJson {
            type_: "event",
            health,
            cursor: e.cursor,
            at: rfc3339(e.at.as_ref()),
            severity: severity_name(e.severity()),
            share: (!e.share.is_empty()).then(|| e.share.clone()),
            summary: e.summary.clone(),
            kind,
            snapshot,
            names,
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct MissedJson {
    /// Always "missed".
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub after_cursor: u64,
    pub oldest_kept_cursor: u64,
}

impl From<&pb::EventsMissed> for MissedJson {
    fn from(m: &pb::EventsMissed) -> Self {
        MissedJson {
            type_: "missed",
            after_cursor: m.after_cursor,
            oldest_kept_cursor: m.oldest_kept_cursor,
        }
    }
}

/// `backstop shares --json`.
#[derive(Debug, Serialize)]
pub struct SharesJson {
    pub shares: Vec<ShareJson>,
}

/// `backstop snapshot --json`.
#[derive(Debug, Serialize)]
pub struct CreatedJson {
    /// False when the snapshot for this backup id already existed and is returned instead.
    pub created: bool,
    pub snapshot: SnapshotJson,
}

/// `backstop adopt --json`.
#[derive(Debug, Serialize)]
pub struct AdoptJson {
    pub adopted: Vec<SnapshotJson>,
    /// Unmanaged snapshots left alone: their names are not in the script's format.
    pub skipped: Vec<String>,
}

/// `backstop events --json` (without --follow): one document.
#[derive(Debug, Serialize)]
pub struct EventsJson {
    pub events: Vec<EventJson>,
    pub missed: Option<MissedJson>,
    pub latest_cursor: u64,
}

#[derive(Debug, Serialize)]
pub struct ServerInfoJson {
    pub server: String,
    pub version: String,
    pub zfs: ZfsJson,
    pub shares: Vec<ShareJson>,
    pub oldest_event_cursor: u64,
    pub latest_event_cursor: u64,
}

#[derive(Debug, Serialize)]
pub struct ZfsJson {
    pub implementation: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

impl ServerInfoJson {
    pub fn new(server: &str, i: &pb::ServerInfo) -> Self {
        let zfs = i.zfs.clone().unwrap_or_default();
        ServerInfoJson {
            server: server.to_string(),
            version: i.version.clone(),
            zfs: ZfsJson {
                implementation: zfs.implementation,
                version: zfs.version,
                capabilities: zfs.capabilities,
            },
            shares: i.shares.iter().map(ShareJson::from).collect(),
            oldest_event_cursor: i.oldest_event_cursor,
            latest_event_cursor: i.latest_event_cursor,
        }
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
/// Written by hand: a dozen lines, where table crates bring borders and terminal handling.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// The marks that protect a snapshot or say what it holds: `keep`, `held`, `good`/`bad`.
fn marks(s: &pb::Snapshot) -> String {
    let mut m = Vec::new();
    if s.keep {
        m.push("keep");
    }
    if s.holds > 0 {
        m.push("held");
    }
    match s.verification() {
        pb::Verification::Good => m.push("good"),
        pb::Verification::Bad => m.push("bad"),
        _ => {}
    }
    if m.is_empty() {
        "-".into()
    } else {
        m.join(",")
    }
}

/// `backstop list` as text.
pub fn list_table(r: &pb::ListSnapshotsResponse, tz: &TimeZone) -> String {
    let rows: Vec<Vec<String>> = r
        .snapshots
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                local_minute(s.backup_time.as_ref(), tz),
                local_minute(s.created.as_ref(), tz),
                nicenum(s.used),
                nicenum(s.referenced),
                if s.managed {
                    origin_name(s.origin()).unwrap_or("managed").to_string()
                } else {
                    "foreign".to_string()
                },
                marks(s),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "NAME",
            "BACKUP TIME",
            "CREATED",
            "USED",
            "REFER",
            "ORIGIN",
            "MARKS",
        ],
        &rows,
    );
    let space = r.space.unwrap_or_default();
    let share = r.share.clone().unwrap_or_default();
    let managed = r.snapshots.iter().filter(|s| s.managed).count();
    out.push_str(&format!(
        "\n{} ({}): {} snapshot{} ({} managed, {} foreign); USED {}, USEDSNAP {}, AVAIL {}\n",
        share.name,
        share.dataset,
        r.snapshots.len(),
        if r.snapshots.len() == 1 { "" } else { "s" },
        managed,
        r.snapshots.len() - managed,
        nicenum(space.used),
        nicenum(space.used_by_snapshots),
        nicenum(space.available),
    ));
    out
}

/// One line per event, for `backstop events`.
pub fn event_line(e: &pb::Event, tz: &TimeZone) -> String {
    format!(
        "{:>6}  {}  {:<8}  {}",
        e.cursor,
        local_minute(e.at.as_ref(), tz),
        severity_name(e.severity()),
        e.summary
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> pb::Snapshot {
        pb::Snapshot {
            name: "20131124_1344_before-upgrade".into(),
            share: "MattBookPro".into(),
            full_name: "zones/MacBackup/MattBookPro@20131124_1344_before-upgrade".into(),
            managed: true,
            backup_time: Some(prost_types::Timestamp {
                seconds: 1_385_297_040,
                nanos: 0,
            }),
            created: Some(prost_types::Timestamp {
                seconds: 1_385_297_041,
                nanos: 0,
            }),
            used: 0,
            referenced: 114_688,
            origin: pb::SnapshotOrigin::Manual.into(),
            backup_id: String::new(),
            ..Default::default()
        }
    }

    #[test]
    fn snapshot_json_shape_is_stable() {
        let v = serde_json::to_value(SnapshotJson::from(&snap())).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "20131124_1344_before-upgrade",
                "share": "MattBookPro",
                "full_name": "zones/MacBackup/MattBookPro@20131124_1344_before-upgrade",
                "managed": true,
                "backup_time": "2013-11-24T12:44:00Z",
                "created": "2013-11-24T12:44:01Z",
                "used": 0,
                "referenced": 114688,
                "origin": "manual",
                "backup_id": null,
                "verification": "unknown",
                "keep": false,
                "holds": 0
            })
        );
    }

    #[test]
    fn list_table_reads_like_zfs_list() {
        let mut foreign = snap();
        foreign.name = "autosnap_daily".into();
        foreign.managed = false;
        foreign.backup_time = None;
        foreign.origin = 0;
        let r = pb::ListSnapshotsResponse {
            share: Some(pb::Share {
                name: "MattBookPro".into(),
                dataset: "zones/MacBackup/MattBookPro".into(),
            }),
            space: Some(pb::ShareSpace {
                used: 1_572_864,
                used_by_snapshots: 90_112,
                available: 227_758_080,
                referenced: 114_688,
            }),
            snapshots: vec![snap(), foreign],
        };
        let text = list_table(&r, &TimeZone::UTC);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME                          BACKUP TIME       CREATED           USED  REFER  ORIGIN   MARKS"
        );
        assert_eq!(
            lines[1],
            "20131124_1344_before-upgrade  2013-11-24 12:44  2013-11-24 12:44  0     112K   manual   -"
        );
        assert!(
            lines[2].starts_with("autosnap_daily                -  "),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with("foreign  -"), "{}", lines[2]);
        assert_eq!(
            lines[4],
            "MattBookPro (zones/MacBackup/MattBookPro): 2 snapshots (1 managed, 1 foreign); USED 1.50M, USEDSNAP 88K, AVAIL 217M"
        );
    }

    #[test]
    fn unknown_event_kind_still_shows_its_summary() {
        let e = pb::Event {
            cursor: 9,
            summary: "something new".into(),
            severity: pb::Severity::Warning.into(),
            ..Default::default()
        };
        let j = serde_json::to_value(EventJson::from(&e)).unwrap();
        assert_eq!(j["kind"], "other");
        assert_eq!(j["summary"], "something new");
        assert_eq!(j["severity"], "warning");
        assert!(event_line(&e, &TimeZone::UTC).ends_with("warning   something new"));
    }
}
