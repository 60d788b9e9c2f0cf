//! The command line's contract: exit codes, one-line errors, the daemon's startup checks.

use std::process::Command;

use backstop_e2e::{Daemon, TestPool, bin, cli};

#[test]
fn an_unreachable_server_is_one_line_and_exit_1() {
    // A port nobody listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = cli(&format!("127.0.0.1:{port}"), &["shares"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "backstop: cannot reach backstopd at 127.0.0.1:{port}: connection refused (is it running? pass --server or set BACKSTOP_SERVER)"
        )
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = cli("127.0.0.1:1", &["list"]);
    assert_eq!(out.code, 2);
    let out = cli(
        "127.0.0.1:1",
        &["snapshot", "x", "--backup-time", "yesterday"],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("RFC 3339"), "{}", out.stderr);
    let out = cli("127.0.0.1:1", &["frobnicate"]);
    assert_eq!(out.code, 2);
}

#[test]
fn server_info_and_shares() {
    let pool = TestPool::new();
    let a = pool.dataset("MattBookPro");
    let b = pool.dataset("iMac");
    let d = Daemon::start(&[("MattBookPro", &a), ("iMac", &b)], "");
    let info = d.cli(&["server-info", "--json"]).json();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let implementation = info["zfs"]["implementation"].as_str().unwrap();
    assert!(
        ["zfs-fuse", "openzfs", "illumos"].contains(&implementation),
        "{info}"
    );
    assert_eq!(info["shares"].as_array().unwrap().len(), 2);
    let shares = d.cli(&["shares"]);
    assert_eq!(shares.code, 0);
    let lines: Vec<&str> = shares.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DATASET"]
    );
    assert!(lines[1].starts_with("MattBookPro") && lines[1].ends_with(&a));
    let text = d.cli(&["server-info"]);
    assert!(
        text.stdout.contains("shares:   MattBookPro, iMac"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_bad_config_stops_startup_with_one_line_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backstopd.toml");
    std::fs::write(
        &config,
        "[[share]]\nname = \"A\"\ndataset = \"tank/tm\"\n[[share]]\nname = \"B\"\ndataset = \"tank/tm/b\"\n",
    )
    .unwrap();
    let out = Command::new(bin("backstopd"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(config.to_str().unwrap()), "{err}");
    assert!(err.contains("share[1].dataset (B)"), "{err}");
    assert!(err.contains("nested"), "{err}");

    let out = Command::new(bin("backstopd"))
        .args(["--config", "/nonexistent/backstopd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration"));
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let pool = TestPool::new();
    let ds = pool.dataset("iMac");
    let d = Daemon::start(&[("iMac", &ds)], "");
    let out = Command::new(bin("backstopd"))
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another backstopd is already using"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The first one still answers.
    assert_eq!(d.cli(&["shares"]).code, 0);
}
