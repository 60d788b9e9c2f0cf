//! backstopd's configuration text → `backstop_server::config::Config::parse`.
//!
//! Checks: no panic; deterministic; an error is one line and starts with the file name; a config
//! that loads has valid, distinct share names and distinct, non-nested datasets, one retention
//! and one service per share, and at least a program for zfs and zpool.
#![no_main]

use backstop_fuzz::{assert_one_line, assert_same, text};
use backstop_server::config::Config;
use backstop_server::share::{validate_dataset, validate_share_name};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let parsed = Config::parse(&text, FILE);
    assert_same("config", &parsed, &Config::parse(&text, FILE));
    let config = match parsed {
        Ok(config) => config,
        Err(e) => {
            let message = e.to_string();
            assert_one_line("config error", &message);
            assert!(
                message.starts_with(&format!("{FILE}: ")),
                "the error does not name the file: {message:?}"
            );
            return;
        }
    };
    assert_eq!(config.shares.len(), config.share_retention.len());
    assert_eq!(config.shares.len(), config.services.len());
    assert!(!config.zfs.commands.zfs.is_empty() && !config.zfs.commands.zpool.is_empty());
    for (i, share) in config.shares.iter().enumerate() {
        assert_eq!(validate_share_name(&share.name), Ok(()), "{share:?}");
        assert_eq!(validate_dataset(&share.dataset), Ok(()), "{share:?}");
        for other in &config.shares[..i] {
            assert_ne!(share.name, other.name, "a share defined twice");
            assert_ne!(share.dataset, other.dataset, "a dataset shared");
            let nested = |inner: &str, outer: &str| {
                inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.starts_with('/'))
            };
            assert!(
                !nested(&share.dataset, &other.dataset) && !nested(&other.dataset, &share.dataset),
                "nested datasets: {share:?} {other:?}"
            );
        }
    }
});
