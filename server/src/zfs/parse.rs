//! Pure parsers of zfs's scripted (`-H`) output.

use std::collections::BTreeMap;

/// One line of `zfs get -H -o name,property,value,source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropRow {
    pub name: String,
    pub property: String,
    pub value: String,
    pub source: String,
}

/// The properties of one dataset or snapshot: property -> (value, source).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropSet(BTreeMap<String, (String, String)>);

impl PropSet {
    /// The value, unless zfs printed `-` (unset or not applicable).
    pub fn value(&self, prop: &str) -> Option<&str> {
        self.0
            .get(prop)
            .map(|(v, _)| v.as_str())
            .filter(|v| *v != "-")
    }

    /// The value only when set on this object itself (`source` = `local`). A user property set on
    /// a dataset shows on each of its snapshots as `inherited`, which must not count.
    pub fn local(&self, prop: &str) -> Option<&str> {
        self.0
            .get(prop)
            .filter(|(_, src)| src == "local")
            .map(|(v, _)| v.as_str())
    }

    /// A numeric property printed by `-p`.
    pub fn number(&self, prop: &str) -> Option<u64> {
        self.value(prop).and_then(|v| v.parse().ok())
    }

    pub fn insert(&mut self, prop: impl Into<String>, value: impl Into<String>, source: &str) {
        self.0.insert(prop.into(), (value.into(), source.into()));
    }
}

/// The result of parsing `zfs get` output: properties by object name, in output order of names,
/// plus the lines that could not be read (reported, never fatal for the rest).
#[derive(Debug, Default)]
pub struct GetOutput {
    pub objects: BTreeMap<String, PropSet>,
    pub unreadable: Vec<(usize, String)>,
}

/// Parses `zfs get -H[p] -o name,property,value,source …`.
///
/// Names and property names never contain tabs; a value might (zfs allows it in user properties,
/// Backstop never writes one), so everything between the property and the last field is the
/// value. A line with fewer than four fields (e.g. the continuation of a value with a newline) is
/// reported in `unreadable`.
pub fn parse_get(stdout: &str) -> GetOutput {
    let mut out = GetOutput::default();
    for (i, line) in stdout.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 4 || fields[0].is_empty() || fields[1].is_empty() {
            out.unreadable.push((i + 1, line.to_string()));
            continue;
        }
        let n = fields.len();
        let value = fields[2..n - 1].join("\t");
        out.objects
            .entry(fields[0].to_string())
            .or_default()
            .insert(fields[1], value, fields[n - 1]);
    }
    out
}

/// Reads the bytes a dry-run destroy would free from `zfs destroy -nvp` output
/// (`reclaim\t123456`).
pub fn parse_reclaim(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|l| {
        let mut f = l.split('\t');
        (f.next()? == "reclaim").then_some(())?;
        f.next()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZFS_FUSE: &str = include_str!("../../tests/fixtures/zfs-get/zfs-fuse-share.txt");
    const OPENZFS: &str = include_str!("../../tests/fixtures/zfs-get/openzfs-share.txt");

    #[test]
    fn reads_zfs_fuse_output() {
        let out = parse_get(ZFS_FUSE);
        assert!(out.unreadable.is_empty());
        let ds = &out.objects["demo/share"];
        assert_eq!(ds.number("available"), Some(227_758_080));
        assert_eq!(ds.value("org.backstop:managed"), None);
        let snap = &out.objects["demo/share@20261125_2025"];
        assert_eq!(snap.local("org.backstop:managed"), Some("on"));
        assert_eq!(snap.number("creation"), Some(1_795_638_320));
        assert_eq!(snap.value("available"), None);
    }

    #[test]
    fn inherited_user_property_is_not_local() {
        let out = parse_get(OPENZFS);
        let snap = &out.objects["tank/tm@autosnap_2026-11-20_00:00:01_daily"];
        assert_eq!(snap.value("org.backstop:managed"), Some("on"));
        assert_eq!(snap.local("org.backstop:managed"), None);
    }

    #[test]
    fn value_with_tab_is_kept_whole_and_garbage_is_reported() {
        let out = parse_get("a@b\torg.x:y\tone\ttwo\tlocal\ngarbage line\n\n");
        assert_eq!(out.objects["a@b"].local("org.x:y"), Some("one\ttwo"));
        assert_eq!(out.unreadable, vec![(2, "garbage line".to_string())]);
    }

    #[test]
    fn reclaim_from_a_dry_run() {
        let out =
            "destroy\ttank/tm@20261101_0930\ndestroy\ttank/tm@20261102_0930\nreclaim\t1073741824\n";
        assert_eq!(parse_reclaim(out), Some(1_073_741_824));
        assert_eq!(parse_reclaim("would destroy tank/tm@a\n"), None);
    }

    #[test]
    fn empty_output_is_empty() {
        let out = parse_get("");
        assert!(out.objects.is_empty() && out.unreadable.is_empty());
    }
}
