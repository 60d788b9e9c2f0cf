//! What netatalk's programs print → `backstop_server::file_service::netatalk::parse_dbd_output`
//! (`dbd -s`), `parse_version` (`netatalk -V`, `afpd -V`, `dbd -V`…), `parse_afpd_paths`
//! (`afpd -V`'s compiled-in paths) and `file_service::afpd_sessions` (`ps` output).
//!
//! Checks: no panic; deterministic; a dbd report is clean exactly when it has no problem, and its
//! problems and summary are one line each; a version starts with its major number (2, 3 or 4) as
//! a whole number; paths read from `afpd -V` are absolute; sessions name afpd pids.
#![no_main]

use backstop_fuzz::{assert_one_line, assert_same, text};
use backstop_server::file_service::afpd_sessions;
use backstop_server::file_service::netatalk::{
    NetatalkVersion, parse_afpd_paths, parse_dbd_output, parse_version,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);

    let report = parse_dbd_output(&text);
    assert_same("dbd output", &report, &parse_dbd_output(&text));
    assert_eq!(report.clean, report.problems.is_empty(), "{report:?}");
    for problem in &report.problems {
        assert_one_line("dbd problem", problem);
        assert!(!problem.trim().is_empty(), "an empty problem: {report:?}");
    }
    assert_one_line("dbd report", &report.to_string());

    let version = parse_version(&text);
    assert_same("netatalk version", &version, &parse_version(&text));
    if let Some((major, version)) = version {
        let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
        let want = match major {
            NetatalkVersion::V2 => "2",
            NetatalkVersion::V3 => "3",
            NetatalkVersion::V4 => "4",
        };
        assert_eq!(digits, want, "version {version:?} read as {major:?}");
    }

    let paths = parse_afpd_paths(&text);
    assert_same("afpd paths", &paths, &parse_afpd_paths(&text));
    for path in [
        &paths.afp_conf,
        &paths.state_dir,
        &paths.apple_volumes_default,
    ]
    .into_iter()
    .flatten()
    {
        assert!(path.is_absolute(), "afpd path {path:?}");
    }

    for session in afpd_sessions(&text) {
        assert!(session.starts_with("afpd session (pid "), "{session:?}");
    }
});
