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
    pub state_dir: PathBuf,
    pub zfs: ZfsConfig,
    pub events: EventsConfig,
    pub shares: Vec<Share>,
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
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default)]
    zfs: RawZfs,
    #[serde(default)]
    events: RawEvents,
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
}

impl Default for RawZfs {
    fn default() -> Self {
        RawZfs {
            zfs: default_zfs(),
            zpool: default_zpool(),
            timeout_seconds: default_timeout(),
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
                raw.listen
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
            shares.push(Share {
                name: s.name.clone(),
                dataset: s.dataset.clone(),
            });
        }

        Ok(Config {
            listen,
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
