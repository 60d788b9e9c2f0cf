//! zfs's scripted (`-H`) output → `backstop_server::zfs::parse_get` (`zfs get -H -o
//! name,property,value,source`), `parse_reclaim` (`zfs destroy -nvp`), and the version readers
//! of `zfs version` and `zpool upgrade -v` (`zfs::detect`).
//!
//! Checks: no panic; deterministic; every non-empty line is either an object's property or
//! reported unreadable (with its true 1-based number and text, in order); names and property
//! names are non-empty and hold no tab; a reclaim figure comes from a `reclaim` line.
#![no_main]

use backstop_fuzz::{assert_same, text};
use backstop_server::zfs::detect::{parse_pool_versions, parse_zfs_version};
use backstop_server::zfs::{parse_get, parse_reclaim};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let out = parse_get(&text);
    let again = parse_get(&text);
    assert_same(
        "zfs get",
        &(&out.objects, &out.unreadable),
        &(&again.objects, &again.unreadable),
    );

    let lines: Vec<&str> = text.lines().collect();
    let mut previous = 0;
    for (number, line) in &out.unreadable {
        assert!(
            *number > previous,
            "unreadable lines out of order: {:?}",
            out.unreadable
        );
        previous = *number;
        assert_eq!(
            lines.get(number - 1),
            Some(&line.as_str()),
            "unreadable line {number} is not the input's"
        );
    }
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() || out.unreadable.iter().any(|(n, _)| *n == i + 1) {
            continue;
        }
        let mut fields = line.split('\t');
        let (name, property) = (fields.next().unwrap(), fields.next().unwrap());
        let props = out
            .objects
            .get(name)
            .unwrap_or_else(|| panic!("line {} read, but {name:?} is not an object", i + 1));
        let _ = (
            props.value(property),
            props.local(property),
            props.number(property),
        );
    }
    for name in out.objects.keys() {
        assert!(
            !name.is_empty() && !name.contains('\t'),
            "object name {name:?}"
        );
    }

    let reclaim = parse_reclaim(&text);
    assert_eq!(
        reclaim,
        parse_reclaim(&text),
        "parse_reclaim not deterministic"
    );
    if let Some(n) = reclaim {
        assert!(
            lines.iter().any(|l| l.starts_with("reclaim\t")),
            "reclaim {n} without a reclaim line"
        );
    }

    if let Some(version) = parse_zfs_version(&text) {
        assert!(
            !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "zfs version {version:?}"
        );
    }
    let _ = parse_pool_versions(&text);
});
