//! Inputs the fuzz targets found (`fuzz/`, run by `scripts/fuzz`), kept as ordinary tests so
//! that `cargo test` checks them too. Each test reads every file under
//! `fuzz/regressions/<target>/` and makes the check that target makes; drop a new input there
//! and it is tested here (and replayed by `scripts/fuzz`).
//!
//! A test marked ignored (`ignore` attribute) holds an input for a bug that is not fixed yet: remove the mark
//! with the fix.

use std::path::PathBuf;

use backstop_server::config::Config;
use backstop_server::health::Role;
use backstop_server::health::status;

/// (file name, bytes) of every input kept for a fuzz target.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no input in {}", dir.display());
    out
}

/// `zpool status` output is refused, or read into pools whose device table starts with the one
/// pool row (depth 0) with every other device below it.
#[test]
fn zpool_status_inputs_give_well_formed_pools() {
    for (name, bytes) in inputs("zpool_status") {
        let text = String::from_utf8_lossy(&bytes);
        let Ok(pools) = status::parse(&text) else {
            continue;
        };
        for pool in &pools {
            let Some((row, rest)) = pool.devices.split_first() else {
                continue;
            };
            assert_eq!((row.depth, row.role), (0, Role::Pool), "{name}: {pool:?}");
            for d in rest {
                assert!(
                    d.depth >= 1 && d.role != Role::Pool,
                    "{name}: second pool row {d:?}"
                );
            }
        }
    }
}

/// A configuration error is one line, whatever the strings in the file hold.
#[test]
fn config_errors_are_one_line() {
    for (name, bytes) in inputs("config") {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = Config::parse(&text, "fuzz.toml") {
            let message = e.to_string();
            assert!(!message.contains('\n'), "{name}: {message:?}");
        }
    }
}
