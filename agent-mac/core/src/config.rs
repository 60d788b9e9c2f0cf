//! `agent.toml`: which server and share each Time Machine destination backs up to, what to be
//! notified about, and where the agent keeps its state.
//!
//! ```toml
//! state_dir = "/Users/matt/Library/Application Support/Backstop"  # optional
//!
//! [notifications]
//! show = true              # default
//! min_severity = "info"    # info (default), warning or critical
//!
//! [destinations."D46413A8-7046-460C-AF3D-01B7203D6ACB"]   # tmutil destinationinfo's ID
//! name = "MattBookPro"     # optional, for people
//! server = "vault.local:7461"
//! share = "MattBookPro"
//! ```
//!
//! It lives in the platform's config dir ([`default_config_path`]); `backstop init` writes it
//! ([`propose`] and [`AgentConfig::render`]). A bad file gives one line naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backstop_proto::v1 as pb;
use serde::Deserialize;

use crate::detector::Destination;
use crate::notify::{NotifyPrefs, severity_from_name};

/// `agent.toml` in the platform's config dir: `~/Library/Application Support/Backstop` on macOS,
/// `$XDG_CONFIG_HOME/backstop` (or `~/.config/backstop`) elsewhere. `None` without a home.
pub fn default_config_path() -> Option<PathBuf> {
    let app = if cfg!(target_os = "macos") {
        "Backstop"
    } else {
        "backstop"
    };
    dirs::config_dir().map(|d| d.join(app).join("agent.toml"))
}

/// Where one Time Machine destination's backups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationConfig {
    /// `tmutil destinationinfo`'s `ID`.
    pub id: String,
    /// Its name, for people (not used to match).
    pub name: Option<String>,
    /// backstopd's address (`HOST:PORT` or `http://HOST:PORT`).
    pub server: String,
    /// The server's share that holds this destination.
    pub share: String,
}

/// The agent's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Where the queue, the event cursors and the last seen backup are kept; `None`: the default
    /// ([`crate::post_backup::default_state_dir`]).
    pub state_dir: Option<PathBuf>,
    /// Whether to show desktop notifications at all.
    pub show_notifications: bool,
    /// Which notifications.
    pub notify: NotifyPrefs,
    /// By destination id.
    pub destinations: Vec<DestinationConfig>,
}

impl AgentConfig {
    /// The state dir in force.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(crate::post_backup::default_state_dir)
    }

    /// The destination with this id.
    pub fn destination(&self, id: &str) -> Option<&DestinationConfig> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// The servers named, each once, in order of first mention.
    pub fn servers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.destinations {
            if !out.contains(&d.server) {
                out.push(d.server.clone());
            }
        }
        out
    }

    /// The shares mapped on `server`.
    pub fn shares_on(&self, server: &str) -> Vec<String> {
        self.destinations
            .iter()
            .filter(|d| d.server == server)
            .map(|d| d.share.clone())
            .collect()
    }
}

/// A configuration problem, one line naming the file and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    #[serde(default)]
    notifications: RawNotifications,
    #[serde(default)]
    destinations: BTreeMap<String, RawDestination>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    show: Option<bool>,
    min_severity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    name: Option<String>,
    server: String,
    share: String,
}

/// The key a TOML error is about, from the text at its place: `destinations."X".share` for a
/// value, `destinations."X"` for a table header.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[start..end].trim();
    let header = |l: &str| {
        let l = l.trim();
        l.strip_prefix('[')
            .and_then(|h| h.split(']').next())
            .map(|h| h.trim_start_matches('[').trim().to_string())
    };
    if line.starts_with('[') {
        return header(line);
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let table = text[..start]
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .and_then(header);
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// Share names as the server allows them.
fn valid_share(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl AgentConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "not found: run `backstop init` to write it, or pass --config PATH".into()
            } else {
                format!("cannot read it: {e}")
            },
        })?;
        AgentConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and checks; `file` is only used in messages.
    pub fn parse(text: &str, file: &str) -> Result<AgentConfig, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let what = e.message().trim().replace('\n', " ");
            let place = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                (line, key_at(text, s.start))
            });
            let hint = if what.contains("unknown field") {
                " (fix the key's spelling or remove it)"
            } else if what.contains("missing field") {
                " (add it)"
            } else {
                ""
            };
            match place {
                Some((line, Some(key))) if !what.contains(&format!("`{key}`")) => {
                    err(format!("line {line}: {key}: {what}{hint}"))
                }
                Some((line, _)) => err(format!("line {line}: {what}{hint}")),
                None => err(format!("{what}{hint}")),
            }
        })?;

        if let Some(dir) = &raw.state_dir
            && !dir.is_absolute()
        {
            return Err(err(format!(
                "state_dir: '{}' is not an absolute path",
                dir.display()
            )));
        }
        let min_severity = match raw.notifications.min_severity.as_deref() {
            None => pb::Severity::Info,
            Some(name) => severity_from_name(name).ok_or_else(|| {
                err(format!(
                    "notifications.min_severity: '{name}' is not one of info, warning, critical"
                ))
            })?,
        };
        if raw.destinations.is_empty() {
            return Err(err(
                "destinations: none mapped; run `backstop init`, or add [destinations.\"<ID from tmutil destinationinfo>\"] with server and share".into(),
            ));
        }
        let mut destinations = Vec::new();
        for (id, d) in raw.destinations {
            let key = format!("destinations.{}", quoted_key(&id));
            if id.trim().is_empty() {
                return Err(err(format!(
                    "{key}: the destination id is empty (use the ID from `tmutil destinationinfo`)"
                )));
            }
            if d.server.trim().is_empty() || d.server.chars().any(char::is_whitespace) {
                return Err(err(format!(
                    "{key}.server: '{}' is not a server address (use HOST:PORT or http://HOST:PORT)",
                    d.server
                )));
            }
            if !valid_share(&d.share) {
                return Err(err(format!(
                    "{key}.share: '{}' is not a share name (1 to 64 of A-Z a-z 0-9 . _ -; see `backstop shares`)",
                    d.share
                )));
            }
            destinations.push(DestinationConfig {
                id,
                name: d.name.filter(|n| !n.is_empty()),
                server: d.server,
                share: d.share,
            });
        }
        Ok(AgentConfig {
            state_dir: raw.state_dir,
            show_notifications: raw.notifications.show.unwrap_or(true),
            notify: NotifyPrefs { min_severity },
            destinations,
        })
    }

    /// The file's text, with comments; [`AgentConfig::parse`] reads it back to the same value.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Backstop agent: which server and share each Time Machine destination backs up to.\n\
             # Written by `backstop init`; edit freely (see README, \"backstop init and backstop agent\").\n\n",
        );
        if let Some(dir) = &self.state_dir {
            out.push_str(&format!(
                "state_dir = {}\n\n",
                toml_string(&dir.display().to_string())
            ));
        }
        let severity = match self.notify.min_severity {
            pb::Severity::Warning => "warning",
            pb::Severity::Critical => "critical",
            pb::Severity::Info | pb::Severity::Unspecified => "info",
        };
        out.push_str(&format!(
            "[notifications]\nshow = {}\nmin_severity = \"{severity}\"   # info, warning or critical\n",
            self.show_notifications
        ));
        for d in &self.destinations {
            out.push_str(&format!("\n[destinations.{}]\n", quoted_key(&d.id)));
            if let Some(name) = &d.name {
                out.push_str(&format!("name = {}\n", toml_string(name)));
            }
            out.push_str(&format!(
                "server = {}\nshare = {}\n",
                toml_string(&d.server),
                toml_string(&d.share)
            ));
        }
        out
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A table key, quoted (destination ids have dashes; quoting is always valid).
fn quoted_key(s: &str) -> String {
    toml_string(s)
}

/// What `backstop init` proposes for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub destination: Destination,
    /// The server's share it seems to back up to; `None` when no share matches.
    pub share: Option<String>,
}

/// The last path segment of a URL or path, with `%XX` decoded.
fn last_segment(s: &str) -> String {
    let seg = s.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = seg.get(i + 1..i + 3)
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Proposes a share for each destination: a share named exactly like the last part of the
/// destination's URL (or mount point, or its name), ignoring case; else the longest share name
/// that appears in the URL or name (none when two equally long ones do).
pub fn propose(destinations: &[Destination], shares: &[String]) -> Vec<Proposal> {
    destinations
        .iter()
        .map(|d| {
            let exact_candidates: Vec<String> = [
                d.url.as_deref().map(last_segment),
                d.mount_point.as_deref().map(last_segment),
                Some(d.name.clone()),
            ]
            .into_iter()
            .flatten()
            .filter(|c| !c.is_empty())
            .collect();
            let exact = shares
                .iter()
                .find(|s| exact_candidates.iter().any(|c| c.eq_ignore_ascii_case(s)));
            let share = exact.cloned().or_else(|| {
                let hay = format!(
                    "{} {}",
                    d.url.as_deref().map(last_segment).unwrap_or_default(),
                    d.name
                )
                .to_lowercase();
                let mut found: Vec<&String> = shares
                    .iter()
                    .filter(|s| hay.contains(&s.to_lowercase()))
                    .collect();
                found.sort_by_key(|s| std::cmp::Reverse(s.len()));
                match found.as_slice() {
                    [] => None,
                    [one] => Some((*one).clone()),
                    [a, b, ..] if a.len() > b.len() => Some((*a).clone()),
                    _ => None,
                }
            });
            Proposal {
                destination: d.clone(),
                share,
            }
        })
        .collect()
}

/// The configuration for the proposals that found a share, all on `server`.
pub fn config_from(server: &str, proposals: &[Proposal]) -> AgentConfig {
    AgentConfig {
        state_dir: None,
        show_notifications: true,
        notify: NotifyPrefs::default(),
        destinations: proposals
            .iter()
            .filter_map(|p| {
                Some(DestinationConfig {
                    id: p.destination.id.clone(),
                    name: Some(p.destination.name.clone()).filter(|n| !n.is_empty()),
                    server: server.to_string(),
                    share: p.share.clone()?,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
state_dir = "/var/tmp/backstop"

[notifications]
min_severity = "warning"

[destinations."D46413A8-7046-460C-AF3D-01B7203D6ACB"]
name = "MattBookPro"
server = "vault.local:7461"
share = "MattBookPro"

[destinations."0A1B"]
server = "http://10.0.0.2:7461"
share = "Other"
"#;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        AgentConfig::parse(text, "agent.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.state_dir, Some(PathBuf::from("/var/tmp/backstop")));
        assert!(c.show_notifications);
        assert_eq!(c.notify.min_severity, pb::Severity::Warning);
        assert_eq!(c.destinations.len(), 2);
        let d = c
            .destination("D46413A8-7046-460C-AF3D-01B7203D6ACB")
            .unwrap();
        assert_eq!(d.server, "vault.local:7461");
        assert_eq!(d.share, "MattBookPro");
        assert_eq!(d.name.as_deref(), Some("MattBookPro"));
        assert_eq!(c.servers(), ["http://10.0.0.2:7461", "vault.local:7461"]);
        assert_eq!(c.shares_on("vault.local:7461"), ["MattBookPro"]);
        // Rendering reads back the same.
        assert_eq!(parse(&c.render()).unwrap(), c);
    }

    #[test]
    fn defaults() {
        let c = parse("[destinations.A]\nserver = \"h:1\"\nshare = \"S\"\n").unwrap();
        assert_eq!(c.state_dir, None);
        assert!(c.show_notifications);
        assert_eq!(c.notify, NotifyPrefs::default());
        assert_eq!(parse(&c.render()).unwrap(), c);
    }

    #[test]
    fn errors_are_one_line_and_name_the_key() {
        let cases: &[(&str, &str)] = &[
            (
                "[destinations.A]\nserver = \"h:1\"\nshare = \"S\"\nshaer = \"x\"\n",
                "agent.toml: line 4: destinations.A.shaer: unknown field `shaer`, expected one of `name`, `server`, `share` (fix the key's spelling or remove it)",
            ),
            (
                "[destinations.A]\nserver = \"h:1\"\n",
                "agent.toml: line 1: destinations.A: missing field `share` (add it)",
            ),
            (
                "[destinations.A]\nserver = \"h:1\"\nshare = 3\n",
                "agent.toml: line 3: destinations.A.share: invalid type: integer `3`, expected a string",
            ),
            (
                "[notifications]\nshow = \"yes\"\n[destinations.A]\nserver = \"h:1\"\nshare = \"S\"\n",
                "agent.toml: line 2: notifications.show: invalid type: string \"yes\", expected a boolean",
            ),
            ("colour = 1\n", "agent.toml: line 1: unknown field `colour`"),
            ("", "agent.toml: destinations: none mapped"),
            (
                "[notifications]\nmin_severity = \"loud\"\n[destinations.A]\nserver = \"h:1\"\nshare = \"S\"\n",
                "agent.toml: notifications.min_severity: 'loud' is not one of info, warning, critical",
            ),
            (
                "[destinations.A]\nserver = \"h 1\"\nshare = \"S\"\n",
                "agent.toml: destinations.\"A\".server: 'h 1' is not a server address",
            ),
            (
                "[destinations.A]\nserver = \"h:1\"\nshare = \"a/b\"\n",
                "agent.toml: destinations.\"A\".share: 'a/b' is not a share name",
            ),
            (
                "state_dir = \"rel\"\n[destinations.A]\nserver = \"h:1\"\nshare = \"S\"\n",
                "agent.toml: state_dir: 'rel' is not an absolute path",
            ),
            ("[destinations", "agent.toml: line 1: "),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert!(
                got.starts_with(want),
                "{text:?}\n got: {got}\nwant: {want}…"
            );
            assert!(!got.contains('\n'), "{got}");
        }
    }

    fn dest(id: &str, name: &str, url: Option<&str>) -> Destination {
        Destination {
            id: id.into(),
            name: name.into(),
            kind: "Network".into(),
            url: url.map(str::to_string),
            mount_point: None,
            last_destination: false,
        }
    }

    #[test]
    fn proposals_match_by_share_name() {
        let shares: Vec<String> = ["iMac", "MattBookPro", "Matt", "Old-Backups"]
            .map(String::from)
            .to_vec();
        let got = propose(
            &[
                dest(
                    "1",
                    "TM",
                    Some("smb://matt@vault._smb._tcp.local./MattBookPro"),
                ),
                dest("2", "imac", None),
                dest("3", "Old Backups", Some("afp://vault/Old%2DBackups")),
                dest("4", "USB disk", None),
                dest(
                    "5",
                    "Backups of MattBookPro2",
                    Some("smb://vault/MattBookPro2"),
                ),
            ],
            &shares,
        );
        let chosen: Vec<Option<&str>> = got.iter().map(|p| p.share.as_deref()).collect();
        assert_eq!(
            chosen,
            [
                Some("MattBookPro"),
                Some("iMac"),
                Some("Old-Backups"),
                None,
                // Not exact: the longest share named inside wins.
                Some("MattBookPro"),
            ]
        );
        let c = config_from("h:7461", &got);
        assert_eq!(c.destinations.len(), 4);
        assert_eq!(c.destinations[0].name.as_deref(), Some("TM"));
        assert_eq!(parse(&c.render()).unwrap(), c);
    }

    #[test]
    fn the_recorded_destination_maps_to_its_share() {
        let d = crate::detector::parse_destinations(include_str!(
            "../tests/fixtures/plist/tmutil-destinationinfo-network.plist"
        ))
        .unwrap();
        let p = propose(&d, &["MattBookPro".to_string(), "iMac".to_string()]);
        assert_eq!(p[0].share.as_deref(), Some("MattBookPro"));
        assert_eq!(p[0].destination.id, "D46413A8-7046-460C-AF3D-01B7203D6ACB");
    }

    #[test]
    fn the_default_path_is_in_the_config_dir() {
        if let Some(p) = default_config_path() {
            assert!(p.ends_with("agent.toml"));
            let app = p.parent().unwrap().file_name().unwrap();
            assert!(app == "backstop" || app == "Backstop", "{p:?}");
        }
    }
}
