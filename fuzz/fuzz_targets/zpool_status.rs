//! `zpool status` output → `backstop_server::health::status::parse` (and the field readers it
//! uses: `parse_size`, `parse_duration`, `parse_ctime`).
//!
//! Checks: no panic; deterministic; an error is one line and names a real line of the input
//! (1-based, its text verbatim); a parsed pool's device table starts with the pool row (depth 0,
//! role Pool) and every other row is deeper; the result serializes to JSON (what the daemon
//! stores and sends); an exact size reads back the same.
#![no_main]

use backstop_fuzz::{assert_one_line, assert_same, text};
use backstop_server::health::Role;
use backstop_server::health::status::{parse, parse_ctime, parse_duration, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let first = parse(&text);
    assert_same("zpool status", &first, &parse(&text));
    match &first {
        Ok(pools) => {
            for pool in pools {
                if let Some((row, rest)) = pool.devices.split_first() {
                    assert_eq!(row.depth, 0, "pool row depth: {pool:?}");
                    assert_eq!(row.role, Role::Pool, "pool row role: {pool:?}");
                    for d in rest {
                        assert!(d.depth >= 1, "a second depth-0 device: {pool:?}");
                        assert_ne!(d.role, Role::Pool, "a second pool row: {pool:?}");
                    }
                }
            }
            serde_json::to_string(pools).expect("parsed pools serialize to JSON");
        }
        Err(e) => {
            assert_one_line("zpool status error", &e.to_string());
            let lines = text.lines().count();
            assert!(
                e.line >= 1 && e.line <= lines.max(1),
                "error line {} outside 1..={lines}: {e}",
                e.line
            );
            assert_eq!(
                e.text,
                text.lines().nth(e.line - 1).unwrap_or(""),
                "the error quotes another line than it names: {e}"
            );
        }
    }
    for line in text.lines() {
        for field in std::iter::once(line).chain(line.split_whitespace()) {
            if let Some((value, exact)) = parse_size(field) {
                if exact {
                    assert_eq!(
                        parse_size(&value.to_string()),
                        Some((value, true)),
                        "exact size {value} from {field:?} does not read back"
                    );
                }
            }
            let _ = parse_duration(field);
        }
        let _ = parse_ctime(line);
    }
});
