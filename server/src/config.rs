//! backstopd's configuration: TOML, typed, validated once at startup.
//!
//! Every error names the file, the key and what to do, in one line. Later features add their own
//! sections (`[retention]`, `[scrub]`, `[tls]`, per-share keys); unknown keys are refused so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::share::{Share, validate_dataset, validate_share_name};
use crate::zfs::ZfsCommands;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/backstop/backstopd.toml";

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// A second, plaintext listener on loopback for the server's own admin (when `listen` serves
    /// TLS).
    pub local_listen: Option<SocketAddr>,
    /// Plaintext on a non-loopback `listen` (warned about at every start).
    pub insecure: bool,
    pub state_dir: PathBuf,
    pub zfs: ZfsConfig,
    pub events: EventsConfig,
    pub shares: Vec<Share>,
    /// The `[retention]` section, and per share (same order as `shares`) with that share's
    /// `retention` overrides applied.
    pub retention: RetentionConfig,
    pub share_retention: Vec<RetentionConfig>,
    /// Per share (same order as `shares`): its file service.
    pub services: Vec<ServiceConfig>,
    pub recovery: RecoveryConfig,
    pub scrub: ScrubConfig,
    pub bundle: BundleConfig,
}

/// `[bundle]`: watching Time Machine's own record in each share's bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleConfig {
    /// The safety poll of the records (changes are normally seen at once through file events),
    /// and the poll interval where the OS has no file events (illumos).
    pub poll_seconds: u64,
    /// How long the records must be unchanged before a new backup counts as finished.
    pub quiet_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    #[serde(default = "default_bundle_poll")]
    poll_seconds: u64,
    #[serde(default = "default_quiet")]
    quiet_seconds: u64,
}

impl Default for RawBundle {
    fn default() -> Self {
        RawBundle {
            poll_seconds: default_bundle_poll(),
            quiet_seconds: default_quiet(),
        }
    }
}

fn default_bundle_poll() -> u64 {
    5
}
fn default_quiet() -> u64 {
    60
}

/// `[scrub]`: pool health polling and scheduled scrubs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubConfig {
    /// Start a scrub when the last one finished longer ago than this; 0 = never by itself.
    pub interval_days: u32,
    /// How often `zpool status` is read.
    pub poll_seconds: u64,
    /// The pools to watch and scrub; empty = the pools holding the shares.
    pub pools: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScrub {
    #[serde(default = "default_interval_days")]
    interval_days: u32,
    #[serde(default = "default_poll_seconds")]
    poll_seconds: u64,
    #[serde(default)]
    pools: Vec<String>,
}

impl Default for RawScrub {
    fn default() -> Self {
        RawScrub {
            interval_days: default_interval_days(),
            poll_seconds: default_poll_seconds(),
            pools: Vec::new(),
        }
    }
}

fn default_interval_days() -> u32 {
    30
}
fn default_poll_seconds() -> u64 {
    300
}

/// Retention settings as configured (the planner's policy is built from these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    pub hourly_hours: u32,
    pub daily_days: u32,
    /// 0 = forever.
    pub weekly_weeks: u32,
    /// An IANA zone; `None` = the host's zone.
    pub timezone: Option<String>,
    pub min_free_percent: u8,
    /// How often the server prunes every share by itself; 0 = only after snapshots and on request.
    pub interval_minutes: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            hourly_hours: 24,
            daily_days: 30,
            weekly_weeks: 0,
            timezone: None,
            min_free_percent: 0,
            interval_minutes: 60,
        }
    }
}

/// `[retention]` or a share's `retention = { … }`: every key optional, so a share overrides only
/// what it names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    hourly_hours: Option<u32>,
    daily_days: Option<u32>,
    weekly_weeks: Option<u32>,
    timezone: Option<String>,
    min_free_percent: Option<u8>,
    interval_minutes: Option<u32>,
}

impl RawRetention {
    fn apply(&self, base: &RetentionConfig) -> RetentionConfig {
        RetentionConfig {
            hourly_hours: self.hourly_hours.unwrap_or(base.hourly_hours),
            daily_days: self.daily_days.unwrap_or(base.daily_days),
            weekly_weeks: self.weekly_weeks.unwrap_or(base.weekly_weeks),
            timezone: self.timezone.clone().or_else(|| base.timezone.clone()),
            min_free_percent: self.min_free_percent.unwrap_or(base.min_free_percent),
            interval_minutes: self.interval_minutes.unwrap_or(base.interval_minutes),
        }
    }
}

fn check_retention(r: &RetentionConfig, key: &str) -> Result<(), String> {
    if let Some(tz) = &r.timezone {
        jiff::tz::TimeZone::get(tz).map_err(|_| {
            format!("{key}.timezone: unknown time zone '{}' (use an IANA name such as \"Europe/Berlin\", or leave it out for the host's zone)", tz.escape_debug())
        })?;
    }
    if r.min_free_percent > 90 {
        return Err(format!(
            "{key}.min_free_percent: {} would destroy nearly every snapshot; use 0 (off) to 90",
            r.min_free_percent
        ));
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct ZfsConfig {
    pub commands: ZfsCommands,
    pub timeout_seconds: u64,
}

#[derive(Clone, Debug)]
pub struct EventsConfig {
    /// How many events the durable log keeps; older ones are dropped first.
    pub keep: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    local_listen: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default)]
    zfs: RawZfs,
    #[serde(default)]
    events: RawEvents,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    scrub: RawScrub,
    #[serde(default)]
    bundle: RawBundle,
    #[serde(default)]
    recovery: RawRecovery,
    #[serde(default)]
    share: Vec<RawShare>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZfs {
    #[serde(default = "default_zfs")]
    zfs: Vec<String>,
    #[serde(default = "default_zpool")]
    zpool: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default)]
    admin_lock: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecovery {
    #[serde(default)]
    finalize_after_days: u32,
}

/// `[recovery]` (and `[zfs] admin_lock`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// A file locked (flock) around every mount, unmount, rename, clone, promote and destroy of a
    /// dataset. Only for zfs-fuse, which wedges when those race with pool changes made by other
    /// processes (the tests and the demo use one machine-wide lock).
    pub admin_lock: Option<PathBuf>,
    /// Destroy what a restore kept aside this many days later; 0 = only when asked.
    pub finalize_after_days: u32,
}

/// How a share's file service is controlled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    pub kind: ServiceKind,
    /// The share's name as the service knows it (Samba share, Netatalk volume).
    pub volume: String,
    /// How to stop and start the service (Netatalk; optional for `none`).
    pub control: Option<Control>,
    /// argv printing one line per connected client; Netatalk's default reads `ps`.
    pub sessions: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    None,
    Samba {
        smb_conf: PathBuf,
        smbcontrol: Vec<String>,
        smbstatus: Vec<String>,
        /// Where the per-share include fragments live.
        fragment_dir: PathBuf,
    },
    Netatalk {
        afp_conf: PathBuf,
        /// Paths in afp.conf are relative to this (a chroot); `/` normally.
        root: PathBuf,
        dbd: Vec<String>,
        netatalk: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

fn argv_key(v: Option<Vec<String>>, key: &str, default: &[&str]) -> Result<Vec<String>, String> {
    let v = v.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    if v.is_empty() || v[0].is_empty() {
        return Err(format!(
            "{key}: give at least the program, e.g. [\"{}\"]",
            default.first().unwrap_or(&"prog")
        ));
    }
    Ok(v)
}

fn service_config(raw: RawService, share: &str, state_dir: &Path) -> Result<ServiceConfig, String> {
    let volume = raw.volume.clone().unwrap_or_else(|| share.to_string());
    validate_share_name(&volume).map_err(|m| format!("volume: {m}"))?;
    let control = match (raw.manager.as_deref(), raw.stop, raw.start) {
        (None, None, None) => None,
        (None, Some(stop), Some(start)) => Some(Control {
            stop: argv_key(Some(stop), "stop", &["prog"])?,
            start: argv_key(Some(start), "start", &["prog"])?,
        }),
        (None, _, _) => return Err("give both stop and start (argv lists), or a manager".into()),
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err("give either manager or stop/start, not both".into());
        }
        (Some("systemctl"), None, None) => {
            let unit = raw
                .unit
                .clone()
                .ok_or("manager = \"systemctl\" needs unit, e.g. \"netatalk.service\"")?;
            Some(Control {
                stop: vec!["systemctl".into(), "stop".into(), unit.clone()],
                start: vec!["systemctl".into(), "start".into(), unit],
            })
        }
        (Some("svcadm"), None, None) => {
            let fmri = raw
                .fmri
                .clone()
                .ok_or("manager = \"svcadm\" needs fmri, e.g. \"svc:/network/netatalk:default\"")?;
            Some(Control {
                stop: vec!["svcadm".into(), "disable".into(), "-s".into(), fmri.clone()],
                start: vec!["svcadm".into(), "enable".into(), "-s".into(), fmri],
            })
        }
        (Some(m), None, None) => {
            return Err(format!(
                "manager: '{}' is not known; use \"systemctl\" or \"svcadm\", or give stop/start argv",
                m.escape_debug()
            ));
        }
    };
    let sessions = match raw.sessions {
        Some(v) => Some(argv_key(Some(v), "sessions", &["prog"])?),
        None => None,
    };
    let kind = match raw.kind.as_str() {
        "" | "none" => ServiceKind::None,
        "samba" => {
            if control.is_some() {
                return Err("samba shares are taken offline one by one with smbcontrol; stop/start/manager do not apply".into());
            }
            crate::file_service::samba::validate_conf_share_name(&volume)
                .map_err(|m| format!("volume: {m}"))?;
            ServiceKind::Samba {
                smb_conf: raw
                    .smb_conf
                    .unwrap_or_else(|| PathBuf::from("/etc/samba/smb.conf")),
                smbcontrol: argv_key(raw.smbcontrol, "smbcontrol", &["smbcontrol"])?,
                smbstatus: argv_key(raw.smbstatus, "smbstatus", &["smbstatus"])?,
                fragment_dir: raw.fragment_dir.unwrap_or_else(|| state_dir.join("samba")),
            }
        }
        "netatalk" => {
            if control.is_none() {
                return Err("netatalk needs a way to stop and start it: manager = \"systemctl\" with unit, manager = \"svcadm\" with fmri, or stop/start argv".into());
            }
            ServiceKind::Netatalk {
                afp_conf: raw
                    .afp_conf
                    .unwrap_or_else(|| PathBuf::from("/etc/netatalk/afp.conf")),
                root: raw.root.unwrap_or_else(|| PathBuf::from("/")),
                dbd: argv_key(raw.dbd, "dbd", &["dbd"])?,
                netatalk: argv_key(raw.netatalk, "netatalk", &["netatalk"])?,
            }
        }
        other => {
            return Err(format!(
                "kind: '{}' is not known; use \"netatalk\", \"samba\" or \"none\"",
                other.escape_debug()
            ));
        }
    };
    Ok(ServiceConfig {
        kind,
        volume,
        control,
        sessions,
    })
}

impl Default for RawZfs {
    fn default() -> Self {
        RawZfs {
            zfs: default_zfs(),
            zpool: default_zpool(),
            timeout_seconds: default_timeout(),
            admin_lock: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    #[serde(default = "default_keep")]
    keep: usize,
}

impl Default for RawEvents {
    fn default() -> Self {
        RawEvents {
            keep: default_keep(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShare {
    name: String,
    dataset: String,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    service: Option<RawService>,
}

/// A share's `service = { … }`: how its file service is taken offline and back during a restore.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    kind: String,
    volume: Option<String>,
    stop: Option<Vec<String>>,
    start: Option<Vec<String>>,
    manager: Option<String>,
    unit: Option<String>,
    fmri: Option<String>,
    sessions: Option<Vec<String>>,
    smb_conf: Option<PathBuf>,
    smbcontrol: Option<Vec<String>>,
    smbstatus: Option<Vec<String>>,
    fragment_dir: Option<PathBuf>,
    afp_conf: Option<PathBuf>,
    root: Option<PathBuf>,
    dbd: Option<Vec<String>>,
    netatalk: Option<Vec<String>>,
}

fn default_listen() -> String {
    format!("127.0.0.1:{}", backstop_proto::DEFAULT_PORT)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/backstop")
}
fn default_zfs() -> Vec<String> {
    vec!["zfs".into()]
}
fn default_zpool() -> Vec<String> {
    vec!["zpool".into()]
}
fn default_timeout() -> u64 {
    120
}
fn default_keep() -> usize {
    10_000
}

/// A configuration problem, already phrased for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            message: format!(
                "cannot read the configuration: {e} (create it, or pass --config PATH)"
            ),
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates; `file` is only used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let what = e.message().trim().replace('\n', " ");
            let hint = if what.contains("unknown field") {
                " (fix the key's spelling or remove it; see README, Configuration)"
            } else if what.contains("missing field") {
                " (add it)"
            } else {
                ""
            };
            match line {
                Some(l) => err(format!("line {l}: {what}{hint}")),
                None => err(format!("{what}{hint}")),
            }
        })?;

        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            err(format!(
                "listen: '{}' is not an address:port (e.g. \"127.0.0.1:7461\")",
                raw.listen.escape_debug()
            ))
        })?;
        if raw.zfs.zfs.is_empty() || raw.zfs.zpool.is_empty() {
            return Err(err(
                "zfs.zfs and zfs.zpool: give at least the program, e.g. [\"zfs\"]".into(),
            ));
        }
        if raw.zfs.timeout_seconds == 0 {
            return Err(err("zfs.timeout_seconds: must be at least 1".into()));
        }
        if raw.events.keep < 100 {
            return Err(err(format!(
                "events.keep: {} is too few to catch up after a restart; use 100 or more",
                raw.events.keep
            )));
        }

        if raw.scrub.poll_seconds == 0 {
            return Err(err("scrub.poll_seconds: must be at least 1".into()));
        }
        for pool in &raw.scrub.pools {
            if pool.contains('/') {
                return Err(err(format!(
                    "scrub.pools: '{}' is a dataset; name the pool (the part before the first '/')",
                    pool.escape_debug()
                )));
            }
            validate_dataset(pool).map_err(|m| err(format!("scrub.pools: {m}")))?;
        }
        let retention = raw.retention.apply(&RetentionConfig::default());
        check_retention(&retention, "retention").map_err(err)?;
        let mut share_retention = Vec::new();
        let mut services = Vec::new();
        let mut shares: Vec<Share> = Vec::new();
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        for (i, s) in raw.share.iter().enumerate() {
            let key = format!("share[{i}]");
            validate_share_name(&s.name).map_err(|m| err(format!("{key}.name: {m}")))?;
            validate_dataset(&s.dataset)
                .map_err(|m| err(format!("{key}.dataset ({}): {m}", s.name)))?;
            if by_name.insert(s.name.clone(), i).is_some() {
                return Err(err(format!(
                    "{key}.name: share '{}' is defined twice; give each share its own name",
                    s.name
                )));
            }
            for other in &shares {
                if other.dataset == s.dataset {
                    return Err(err(format!(
                        "{key}.dataset ({}): '{}' is already the dataset of share '{}'; give each share its own dataset",
                        s.name, s.dataset, other.name
                    )));
                }
                let (outer, inner) = if is_nested(&s.dataset, &other.dataset) {
                    (&other.name, &s.name)
                } else if is_nested(&other.dataset, &s.dataset) {
                    (&s.name, &other.name)
                } else {
                    continue;
                };
                return Err(err(format!(
                    "{key}.dataset ({}): '{}' and '{}' are nested (share '{inner}' lies inside share '{outer}'); a restore of one would change the other, so use sibling datasets",
                    s.name, s.dataset, other.dataset
                )));
            }
            let own = s.retention.apply(&retention);
            check_retention(&own, &format!("{key}.retention ({})", s.name)).map_err(err)?;
            share_retention.push(own);
            shares.push(Share {
                name: s.name.clone(),
                dataset: s.dataset.clone(),
            });
            services.push(
                service_config(
                    s.service.clone().unwrap_or_default(),
                    &s.name,
                    &raw.state_dir,
                )
                .map_err(|m| err(format!("{key}.service ({}): {m}", s.name)))?,
            );
        }

        let local_listen = match &raw.local_listen {
            None => None,
            Some(l) => {
                let a: SocketAddr = l.parse().map_err(|_| {
                    err(format!(
                        "local_listen: '{}' is not an address:port (e.g. \"127.0.0.1:7462\")",
                        l.escape_debug()
                    ))
                })?;
                if !a.ip().is_loopback() {
                    return Err(err(format!(
                        "local_listen: '{l}' is not a loopback address; the local listener is plaintext and needs no pairing, so it only listens on 127.0.0.1 or ::1"
                    )));
                }
                Some(a)
            }
        };
        Ok(Config {
            listen,
            local_listen,
            insecure: raw.insecure,
            state_dir: raw.state_dir,
            zfs: ZfsConfig {
                commands: ZfsCommands {
                    zfs: raw.zfs.zfs,
                    zpool: raw.zfs.zpool,
                },
                timeout_seconds: raw.zfs.timeout_seconds,
            },
            events: EventsConfig {
                keep: raw.events.keep,
            },
            shares,
            retention,
            share_retention,
            services,
            recovery: RecoveryConfig {
                admin_lock: raw.zfs.admin_lock,
                finalize_after_days: raw.recovery.finalize_after_days,
            },
            bundle: BundleConfig {
                poll_seconds: raw.bundle.poll_seconds.max(1),
                quiet_seconds: raw.bundle.quiet_seconds,
            },
            scrub: ScrubConfig {
                interval_days: raw.scrub.interval_days,
                poll_seconds: raw.scrub.poll_seconds,
                pools: raw.scrub.pools,
            },
        })
    }
}

/// Whether `inner` is a descendant of `outer` (`tank/a/b` in `tank/a`, not `tank/ab`).
fn is_nested(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");

    fn sample(name: &str) -> Result<Config, ConfigError> {
        Config::load(&Path::new(SAMPLES).join(name))
    }

    fn message(name: &str) -> String {
        let e = sample(name).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(e.contains(name), "names the file: {e}");
        e
    }

    #[test]
    fn the_documented_example_loads() {
        let c = sample("valid-example.toml").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7461");
        assert_eq!(c.zfs.commands.zfs, vec!["pfexec", "/usr/sbin/zfs"]);
        assert_eq!(c.shares.len(), 2);
        assert_eq!(c.shares[0].name, "MattBookPro");
        assert_eq!(c.shares[0].dataset, "zones/MacBackup/MattBookPro");
    }

    #[test]
    fn file_services_load_with_their_defaults() {
        let c = sample("valid-services.toml").unwrap();
        assert_eq!(c.recovery.finalize_after_days, 14);
        let netatalk = &c.services[0];
        assert_eq!(netatalk.volume, "MattBookPro");
        assert_eq!(
            netatalk.control.as_ref().unwrap().stop,
            vec!["svcadm", "disable", "-s", "svc:/network/netatalk:default"]
        );
        assert!(matches!(
            &netatalk.kind,
            ServiceKind::Netatalk { afp_conf, dbd, .. }
                if afp_conf == Path::new("/opt/local/etc/afp.conf") && dbd == &["dbd"]
        ));
        let samba = &c.services[1];
        assert_eq!(samba.volume, "iMac-TM");
        assert!(matches!(
            &samba.kind,
            ServiceKind::Samba { smb_conf, fragment_dir, .. }
                if smb_conf == Path::new("/etc/samba/smb.conf")
                    && fragment_dir == Path::new("/var/lib/backstop/samba")
        ));
        assert_eq!(
            c.services[2].control.as_ref().unwrap().start,
            vec!["/usr/local/bin/tm-on"]
        );
        assert_eq!(c.services[3].kind, ServiceKind::None);
        assert_eq!(c.services[3].control, None);
    }

    #[test]
    fn bad_file_services_are_refused_with_the_fix() {
        let share = |service: &str| {
            Config::parse(
                &format!("[[share]]\nname='a'\ndataset='tank/a'\nservice = {{ {service} }}\n"),
                "x.toml",
            )
            .unwrap_err()
            .to_string()
        };
        let e = share("kind = 'afp'");
        assert!(
            e.contains("share[0].service (a): kind: 'afp' is not known"),
            "{e}"
        );
        let e = share("kind = 'netatalk'");
        assert!(e.contains("needs a way to stop and start it"), "{e}");
        let e = share("kind = 'samba', stop = ['x'], start = ['y']");
        assert!(e.contains("do not apply"), "{e}");
        let e = share("kind = 'netatalk', manager = 'launchd'");
        assert!(e.contains("'launchd' is not known"), "{e}");
        let e = share("kind = 'netatalk', manager = 'systemctl'");
        assert!(e.contains("needs unit"), "{e}");
        let e = share("kind = 'none', stop = ['x']");
        assert!(e.contains("give both stop and start"), "{e}");
        let e = share("kind = 'none', stop = [], start = ['y']");
        assert!(e.contains("stop: give at least the program"), "{e}");
        let e = share("kind = 'samba', volume = '-rf'");
        assert!(e.contains("volume"), "{e}");
        let e = share("kind = 'samba', smb_conf = '/etc/samba/smb.conf', colour = 'red'");
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let c = Config::parse("", "x.toml").unwrap();
        assert_eq!(c.listen.port(), 7461);
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/backstop"));
        assert_eq!(c.zfs.commands, ZfsCommands::default());
        assert!(c.shares.is_empty());
    }

    #[test]
    fn unknown_key_names_line_key_and_fix() {
        let e = message("invalid-unknown-key.toml");
        assert!(e.contains("line 6"), "{e}");
        assert!(e.contains("datset"), "{e}");
        assert!(e.contains("fix the key"), "{e}");
    }

    #[test]
    fn missing_dataset() {
        let e = message("invalid-missing-dataset.toml");
        assert!(e.contains("dataset"), "{e}");
        assert!(e.contains("add it"), "{e}");
    }

    #[test]
    fn two_shares_on_one_dataset() {
        let e = message("invalid-same-dataset.toml");
        assert!(e.contains("share[1].dataset (iMac)"), "{e}");
        assert!(
            e.contains("already the dataset of share 'MattBookPro'"),
            "{e}"
        );
    }

    #[test]
    fn nested_datasets() {
        let e = message("invalid-nested.toml");
        assert!(e.contains("nested"), "{e}");
        assert!(e.contains("share 'Inner' lies inside share 'Outer'"), "{e}");
    }

    #[test]
    fn sibling_with_common_prefix_is_not_nested() {
        let c = Config::parse(
            "[[share]]\nname='a'\ndataset='tank/tm'\n[[share]]\nname='b'\ndataset='tank/tm2'\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.shares.len(), 2);
    }

    #[test]
    fn hostile_dataset_is_refused() {
        let e = message("invalid-hostile-dataset.toml");
        assert!(e.contains("share[0].dataset"), "{e}");
    }

    #[test]
    fn bad_listen_address() {
        let e = Config::parse("listen = 'localhost'", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen") && e.contains("address:port"), "{e}");
    }

    #[test]
    fn retention_defaults_and_per_share_overrides() {
        let c = Config::parse(
            "[retention]\nhourly_hours = 12\ntimezone = 'Europe/Berlin'\n\
             [[share]]\nname='a'\ndataset='t/a'\n\
             [[share]]\nname='b'\ndataset='t/b'\nretention = { daily_days = 60, weekly_weeks = 52 }\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.retention.hourly_hours, 12);
        assert_eq!(c.share_retention[0], c.retention);
        let b = &c.share_retention[1];
        assert_eq!((b.hourly_hours, b.daily_days, b.weekly_weeks), (12, 60, 52));
        assert_eq!(b.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(
            Config::parse("", "x").unwrap().retention,
            RetentionConfig::default()
        );
    }

    #[test]
    fn bad_retention_values() {
        let e = Config::parse("[retention]\ntimezone = 'Mars/Olympus'\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("retention.timezone") && e.contains("IANA"),
            "{e}"
        );
        let e = Config::parse(
            "[[share]]\nname='a'\ndataset='t/a'\nretention = { daily_dayz = 3 }\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("daily_dayz"), "{e}");
        let e = Config::parse("[retention]\nmin_free_percent = 99\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("min_free_percent"), "{e}");
    }

    #[test]
    fn scrub_section() {
        let c = Config::parse("", "x").unwrap();
        assert_eq!((c.scrub.interval_days, c.scrub.poll_seconds), (30, 300));
        let c = Config::parse("[scrub]\ninterval_days = 7\npools = ['tank']\n", "x").unwrap();
        assert_eq!(c.scrub.pools, ["tank"]);
        let e = Config::parse("[scrub]\npools = ['tank/tm']\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("name the pool"), "{e}");
    }

    #[test]
    fn duplicate_share_name() {
        let e = Config::parse(
            "[[share]]\nname='a'\ndataset='t/a'\n[[share]]\nname='a'\ndataset='t/b'\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("defined twice"), "{e}");
    }
}
