//! Which zfs this is and which optional flags it understands, found once at startup.

use super::ZfsCommands;
use super::runner::{FailureKind, Runner};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// OpenZFS 0.8 and later (Linux, FreeBSD, macOS): has `zfs version`.
    OpenZfs,
    /// illumos (SmartOS, OmniOS) and other feature-flag zfs without `zfs version`.
    Illumos,
    /// zfs-fuse and other legacy, numbered-pool-version implementations.
    ZfsFuse,
    Unknown,
}

impl Implementation {
    pub fn name(self) -> &'static str {
        match self {
            Implementation::OpenZfs => "openzfs",
            Implementation::Illumos => "illumos",
            Implementation::ZfsFuse => "zfs-fuse",
            Implementation::Unknown => "unknown",
        }
    }
}

/// Optional flags, probed rather than assumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `zfs list -p` (exact numbers in list output).
    pub list_parsable: bool,
    /// `zfs get -t TYPE`.
    pub get_type_filter: bool,
    /// `zfs destroy -n` and `zfs destroy ds@a,b,c` (both came with OpenZFS/illumos's 2012 zfs;
    /// zfs-fuse has neither).
    pub destroy_batch: bool,
    /// `zpool status -p` (exact error counters).
    pub status_parsable: bool,
}

impl Capabilities {
    pub fn names(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.list_parsable {
            v.push("list-parsable".to_string());
        }
        if self.get_type_filter {
            v.push("get-type-filter".to_string());
        }
        if self.destroy_batch {
            v.push("destroy-batch".to_string());
        }
        if self.status_parsable {
            v.push("status-parsable".to_string());
        }
        v
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZfsInfo {
    pub implementation: Implementation,
    pub version: String,
    pub capabilities: Capabilities,
}

/// Reads `zfs version` output (`zfs-2.2.2-0ubuntu9.1\nzfs-kmod-2.2.2-0ubuntu9`), giving the
/// userland version.
pub fn parse_zfs_version(stdout: &str) -> Option<String> {
    let first = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let rest = first.strip_prefix("zfs-")?;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = version.trim_end_matches('.');
    (!version.is_empty()).then(|| version.to_string())
}

/// Reads `zpool upgrade -v`: feature flags (illumos) or a numbered legacy pool version.
pub fn parse_pool_versions(stdout: &str) -> (Implementation, String) {
    if stdout.contains("feature flags") {
        return (Implementation::Illumos, "feature flags".to_string());
    }
    // "This system is currently running ZFS pool version 23."
    let version = stdout.lines().find_map(|l| {
        let rest = l.split("ZFS pool version ").nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(digits)
    });
    match version {
        Some(v) => (Implementation::ZfsFuse, format!("pool v{v}")),
        None => (Implementation::Unknown, String::new()),
    }
}

/// A probe failed with a usage error only when the flag is not understood; "dataset does not
/// exist" means the flag was accepted.
fn probe_accepted(result: &Result<super::runner::Output, super::RunError>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) => e.kind() != FailureKind::Usage,
    }
}

/// Detects the implementation and capabilities, running a handful of harmless commands.
pub async fn detect(runner: &dyn Runner, cmds: &ZfsCommands) -> ZfsInfo {
    let (implementation, version) = match runner.run(&cmds.version()).await {
        Ok(out) => match parse_zfs_version(&out.stdout) {
            Some(v) => (Implementation::OpenZfs, v),
            None => (Implementation::Unknown, String::new()),
        },
        Err(_) => match runner.run(&cmds.pool_versions()).await {
            Ok(out) => parse_pool_versions(&out.stdout),
            Err(e) => {
                tracing::warn!("cannot tell which zfs this is: {e}");
                (Implementation::Unknown, String::new())
            }
        },
    };
    // A name that cannot exist: the probes only test whether the flag parses.
    let probe_target = "backstop-capability-probe/none";
    let capabilities = Capabilities {
        list_parsable: probe_accepted(&runner.run(&cmds.probe_list_parsable(probe_target)).await),
        get_type_filter: probe_accepted(
            &runner.run(&cmds.probe_get_type_filter(probe_target)).await,
        ),
        destroy_batch: probe_accepted(&runner.run(&cmds.probe_destroy_dry_run(probe_target)).await),
        status_parsable: probe_accepted(
            &runner
                .run(&cmds.probe_status_parsable("backstop-capability-probe"))
                .await,
        ),
    };
    ZfsInfo {
        implementation,
        version,
        capabilities,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openzfs_version() {
        assert_eq!(
            parse_zfs_version("zfs-2.2.2-0ubuntu9.1\nzfs-kmod-2.2.2-0ubuntu9\n").as_deref(),
            Some("2.2.2")
        );
        assert_eq!(
            parse_zfs_version("zfs-2.1.14-1\nzfs-kmod-v2023120100-zfs_f4871096b\n").as_deref(),
            Some("2.1.14")
        );
        assert_eq!(parse_zfs_version("usage: zfs command"), None);
    }

    #[test]
    fn zfs_fuse_pool_version() {
        let out = "This system is currently running ZFS pool version 23.\n\n\
                   The following versions are supported:\n";
        assert_eq!(
            parse_pool_versions(out),
            (Implementation::ZfsFuse, "pool v23".into())
        );
    }

    #[test]
    fn illumos_feature_flags() {
        let out = "This system supports ZFS pool feature flags.\n\n\
                   The following features are supported:\n";
        assert_eq!(parse_pool_versions(out).0, Implementation::Illumos);
    }

    #[test]
    fn unreadable_is_unknown() {
        assert_eq!(parse_pool_versions("").0, Implementation::Unknown);
    }
}
