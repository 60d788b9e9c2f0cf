//! Pure builders of zfs/zpool argument vectors.
//!
//! Every name that reaches a builder has been validated by its domain type (share datasets at
//! config load, snapshot names by [`crate::snapshot`]), so no argument can be read as an option.

use std::fmt;

/// One command line: program and arguments, executed without a shell.
#[derive(Clone, PartialEq, Eq)]
pub struct Argv(Vec<String>);

impl Argv {
    pub fn new(prefix: &[String]) -> Self {
        Argv(prefix.to_vec())
    }

    fn arg(mut self, a: impl Into<String>) -> Self {
        self.0.push(a.into());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, it: I) -> Self {
        self.0.extend(it.into_iter().map(Into::into));
        self
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn program(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or("")
    }
}

impl fmt::Debug for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Readable form for logs and error messages; arguments with unusual characters are quoted.
impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@/._:,=+-%".contains(c));
            if plain {
                f.write_str(a)?;
            } else {
                write!(f, "{a:?}")?;
            }
        }
        Ok(())
    }
}

/// The argv prefixes of `zfs` and `zpool` (e.g. `["pfexec", "/usr/sbin/zfs"]` on SmartOS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZfsCommands {
    pub zfs: Vec<String>,
    pub zpool: Vec<String>,
}

impl Default for ZfsCommands {
    fn default() -> Self {
        ZfsCommands {
            zfs: vec!["zfs".into()],
            zpool: vec!["zpool".into()],
        }
    }
}

impl ZfsCommands {
    fn zfs(&self) -> Argv {
        Argv::new(&self.zfs)
    }

    fn zpool(&self) -> Argv {
        Argv::new(&self.zpool)
    }

    /// `zfs snapshot -o k=v … DATASET@NAME`: the snapshot and its properties in one atomic call.
    pub fn snapshot(&self, full_name: &str, props: &[(&str, String)]) -> Argv {
        let mut argv = self.zfs().arg("snapshot");
        for (k, v) in props {
            argv = argv.arg("-o").arg(format!("{k}={v}"));
        }
        argv.arg(full_name)
    }

    /// `zfs get -Hp [-d DEPTH] -o name,property,value,source PROPS TARGET`: exact numbers,
    /// tab-separated, in the form every implementation (zfs-fuse included) understands.
    pub fn get(&self, props: &[&str], target: &str, depth: Option<u32>) -> Argv {
        let mut argv = self.zfs().arg("get").arg("-Hp");
        if let Some(d) = depth {
            argv = argv.arg("-d").arg(d.to_string());
        }
        argv.arg("-o")
            .arg("name,property,value,source")
            .arg(props.join(","))
            .arg(target)
    }

    /// `zfs set PROP=VALUE TARGET…`: one property (the only form zfs-fuse accepts) on many targets.
    pub fn set(&self, prop: &str, value: &str, targets: &[String]) -> Argv {
        self.zfs()
            .arg("set")
            .arg(format!("{prop}={value}"))
            .args(targets.iter().cloned())
    }

    /// `zfs destroy DATASET@NAME`: one snapshot (the only form zfs-fuse has).
    pub fn destroy_one(&self, full_name: &str) -> Argv {
        self.zfs().arg("destroy").arg(full_name)
    }

    /// `zfs destroy DATASET@A,B,C`: several snapshots of one dataset in one call (OpenZFS,
    /// illumos). Atomic: one held or busy snapshot fails the whole call.
    pub fn destroy_batch(&self, dataset: &str, names: &[String]) -> Argv {
        self.zfs()
            .arg("destroy")
            .arg(format!("{dataset}@{}", names.join(",")))
    }

    /// `zfs destroy -nvp DATASET@A,B,C`: what destroying the batch would free, destroying nothing.
    pub fn destroy_dry_run(&self, dataset: &str, names: &[String]) -> Argv {
        self.zfs()
            .arg("destroy")
            .arg("-nvp")
            .arg(format!("{dataset}@{}", names.join(",")))
    }

    /// `zfs inherit PROP TARGET`: removes a locally set property.
    pub fn inherit(&self, prop: &str, target: &str) -> Argv {
        self.zfs().arg("inherit").arg(prop).arg(target)
    }

    /// `zfs clone -o canmount=noauto DATASET@SNAP NEW`: a writable copy of a snapshot that does
    /// not take a mountpoint by itself (zfs-fuse mounts it anyway; the recovery unmounts it).
    pub fn clone_noauto(&self, snapshot: &str, new: &str) -> Argv {
        self.zfs()
            .args(["clone", "-o", "canmount=noauto"])
            .arg(snapshot)
            .arg(new)
    }

    /// `zfs rename FROM TO` (datasets; both unmounted first on zfs-fuse, which says "busy").
    pub fn rename(&self, from: &str, to: &str) -> Argv {
        self.zfs().arg("rename").arg(from).arg(to)
    }

    /// `zfs mount DATASET`.
    pub fn mount(&self, dataset: &str) -> Argv {
        self.zfs().arg("mount").arg(dataset)
    }

    /// `zfs unmount DATASET`.
    pub fn unmount(&self, dataset: &str) -> Argv {
        self.zfs().arg("unmount").arg(dataset)
    }

    /// `zfs promote CLONE`: the clone takes over its origin's older snapshots.
    pub fn promote(&self, dataset: &str) -> Argv {
        self.zfs().arg("promote").arg(dataset)
    }

    /// `zfs rollback -r DATASET@SNAP`: destroys every newer snapshot.
    pub fn rollback_destroying_newer(&self, snapshot: &str) -> Argv {
        self.zfs().args(["rollback", "-r"]).arg(snapshot)
    }

    /// `zfs destroy -r DATASET`: a whole dataset with its snapshots (never `-R`: clones of it
    /// make this fail rather than disappear).
    pub fn destroy_dataset(&self, dataset: &str) -> Argv {
        self.zfs().args(["destroy", "-r"]).arg(dataset)
    }

    /// `zpool status -v [-p] POOL…`: the health of the pools, with the files that have permanent
    /// errors; `-p` (exact counters) where the zpool has it.
    pub fn pool_status(&self, pools: &[String], parsable: bool) -> Argv {
        let mut argv = self.zpool().arg("status").arg("-v");
        if parsable {
            argv = argv.arg("-p");
        }
        argv.args(pools.iter().cloned())
    }

    /// `zpool scrub POOL`, or with `stop`, `zpool scrub -s POOL`.
    pub fn scrub(&self, pool: &str, stop: bool) -> Argv {
        let argv = self.zpool().arg("scrub");
        let argv = if stop { argv.arg("-s") } else { argv };
        argv.arg(pool)
    }

    /// `zpool status -p NAME`, only to learn whether `-p` is understood.
    pub fn probe_status_parsable(&self, pool: &str) -> Argv {
        self.zpool().arg("status").arg("-p").arg(pool)
    }

    /// `zfs version` (OpenZFS 0.8 and later only).
    pub fn version(&self) -> Argv {
        self.zfs().arg("version")
    }

    /// `zpool upgrade -v`: tells feature flags (illumos, OpenZFS) from a legacy pool version.
    pub fn pool_versions(&self) -> Argv {
        self.zpool().arg("upgrade").arg("-v")
    }

    /// `zfs list -H -p -o name -d 0 TARGET`, only to learn whether `-p` is understood.
    pub fn probe_list_parsable(&self, target: &str) -> Argv {
        self.zfs()
            .args(["list", "-H", "-p", "-o", "name", "-d", "0"])
            .arg(target)
    }

    /// `zfs destroy -nvp TARGET@a,b`, only to learn whether dry runs (and with them batches)
    /// are understood; `-n` destroys nothing.
    pub fn probe_destroy_dry_run(&self, target: &str) -> Argv {
        self.destroy_dry_run(target, &["a".to_string(), "b".to_string()])
    }

    /// `zfs get -H -t filesystem -o name name TARGET`, only to learn whether `-t` is understood.
    pub fn probe_get_type_filter(&self, target: &str) -> Argv {
        self.zfs()
            .args(["get", "-H", "-t", "filesystem", "-o", "name", "name"])
            .arg(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn snapshot_sets_properties_in_the_same_call() {
        let z = ZfsCommands::default();
        let argv = z.snapshot(
            "tank/tm@20261124_1344",
            &[("org.backstop:managed", "on".into())],
        );
        assert_eq!(
            argv.as_slice(),
            s(&[
                "zfs",
                "snapshot",
                "-o",
                "org.backstop:managed=on",
                "tank/tm@20261124_1344"
            ])
        );
    }

    #[test]
    fn prefix_is_kept_for_pfexec() {
        let z = ZfsCommands {
            zfs: s(&["pfexec", "/usr/sbin/zfs"]),
            zpool: s(&["pfexec", "/usr/sbin/zpool"]),
        };
        let argv = z.get(&["used", "creation"], "zones/tm", Some(1));
        assert_eq!(
            argv.as_slice(),
            s(&[
                "pfexec",
                "/usr/sbin/zfs",
                "get",
                "-Hp",
                "-d",
                "1",
                "-o",
                "name,property,value,source",
                "used,creation",
                "zones/tm"
            ])
        );
        assert_eq!(z.pool_versions().program(), "pfexec");
    }

    #[test]
    fn set_takes_one_property_and_many_targets() {
        let z = ZfsCommands::default();
        let argv = z.set("org.backstop:managed", "on", &s(&["t/a@1", "t/a@2"]));
        assert_eq!(
            argv.as_slice(),
            s(&["zfs", "set", "org.backstop:managed=on", "t/a@1", "t/a@2"])
        );
    }

    #[test]
    fn destroy_forms() {
        let z = ZfsCommands::default();
        let names = s(&["20261101_0930", "20261102_0930"]);
        assert_eq!(
            z.destroy_batch("tank/tm", &names).as_slice(),
            s(&["zfs", "destroy", "tank/tm@20261101_0930,20261102_0930"])
        );
        assert_eq!(
            z.destroy_dry_run("tank/tm", &names).as_slice(),
            s(&[
                "zfs",
                "destroy",
                "-nvp",
                "tank/tm@20261101_0930,20261102_0930"
            ])
        );
        assert_eq!(
            z.destroy_one("tank/tm@x").as_slice(),
            s(&["zfs", "destroy", "tank/tm@x"])
        );
    }

    #[test]
    fn display_quotes_odd_arguments() {
        let argv = Argv::new(&s(&["zfs", "get", "a b", ""]));
        assert_eq!(argv.to_string(), r#"zfs get "a b" """#);
    }
}
