//! netatalk's configuration text → `backstop_server::file_service::netatalk::parse_afp_conf`
//! (netatalk 3/4 `afp.conf`) and `parse_apple_volumes` (netatalk 2 `AppleVolumes.default`), then
//! every volume's resolved setup and the `backstop doctor` advice for it.
//!
//! Checks: no panic; deterministic; an error is one line and names a line of the input; every
//! listed volume can be looked up by its name; advice summaries and the lines to add are one line
//! each, and advice comes with lines to add.
#![no_main]

use backstop_fuzz::{assert_one_line, assert_same, text};
use backstop_server::file_service::netatalk::{
    VolumeSetup, advice, parse_afp_conf, parse_apple_volumes,
};
use libfuzzer_sys::fuzz_target;

fn check_volume(setup: &VolumeSetup) {
    for a in advice(setup) {
        assert_one_line("advice summary", &a.summary);
        assert_one_line("advice section", &a.section);
        assert!(!a.lines.is_empty(), "advice without lines: {a:?}");
        for line in &a.lines {
            assert_one_line("advice line", line);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let lines = text.lines().count();

    let conf = parse_afp_conf(&text);
    assert_same("afp.conf", &conf, &parse_afp_conf(&text));
    match conf {
        Ok(conf) => {
            let conf = conf.with_state_dir("/var/lib/netatalk/");
            let _ = (conf.global("vol dbnest"), conf.includes());
            for name in conf.volume_names() {
                let setup = conf
                    .volume(&name)
                    .unwrap_or_else(|| panic!("volume {name:?} is listed but not found"));
                check_volume(&setup);
            }
        }
        Err(e) => {
            assert_one_line("afp.conf error", &e.to_string());
            assert!(
                e.line >= 1 && e.line <= lines,
                "afp.conf error line {}: {e}",
                e.line
            );
        }
    }

    let volumes = parse_apple_volumes(&text);
    assert_same("AppleVolumes", &volumes, &parse_apple_volumes(&text));
    match volumes {
        Ok(volumes) => {
            for name in volumes.volume_names() {
                let setup = volumes
                    .volume(&name)
                    .unwrap_or_else(|| panic!("volume {name:?} is listed but not found"));
                check_volume(&setup);
            }
        }
        Err(e) => {
            assert_one_line("AppleVolumes error", &e.to_string());
            assert!(
                e.line >= 1 && e.line <= lines,
                "AppleVolumes error line {}: {e}",
                e.line
            );
        }
    }
});
