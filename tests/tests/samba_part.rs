//! The real Samba part: a test's own smbd serving Time Machine shares on zfs-fuse datasets, and
//! backstopd's pure Samba helpers (`file_service::samba`) taking ONE share offline and back online
//! without stopping smbd, and seeing who is connected.
//!
//! Needs root, zfs-fuse and Samba (`scripts/setup`); a missing part fails, it never skips.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backstop_e2e::samba::{SambaShare, Smbd};
use backstop_e2e::{TestPool, run, wait_for};
use backstop_server::file_service::samba as smb;

/// Runs an argv built by the server's helpers (no shell).
fn run_argv(argv: &[String]) -> String {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(&argv).unwrap_or_else(|e| panic!("{e:#}"))
}

/// What stderr an argv printed, and whether it succeeded.
fn run_stderr(argv: &[String]) -> (bool, String) {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sessions(smbd: &Smbd, share: &str) -> Vec<smb::SmbSession> {
    let json = run_argv(&smb::status(&smbd.smbstatus(), smbd.conf_path()));
    smb::parse_share_sessions(&json, share).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// Two Time Machine shares, TMA and TMB, on two datasets of one pool, each with a file, and the
/// fragments in `frags` (TMA's and TMB's written "available").
fn two_shares(pool: &TestPool, frags: &Path) -> Vec<SambaShare> {
    ["TMA", "TMB"]
        .iter()
        .map(|name| {
            let child = name.to_lowercase();
            pool.dataset(&child);
            let mnt = pool.mountpoint().join(&child);
            std::fs::write(mnt.join("hello.txt"), format!("hello from {name}\n")).unwrap();
            smb::write_fragment(frags, name, true).unwrap();
            SambaShare::time_machine(name, &mnt, &smb::fragment_path(frags, name))
        })
        .collect()
}

fn expect_bad_network_name(result: anyhow::Result<Vec<u8>>) {
    let err = result.expect_err("the offline share must refuse connections");
    assert!(
        format!("{err:#}").contains("NT_STATUS_BAD_NETWORK_NAME"),
        "unexpected failure: {err:#}"
    );
}

#[test]
fn one_share_goes_offline_and_back_while_the_other_stays_served() {
    let pool = TestPool::new();
    let state = tempfile::tempdir().unwrap();
    // backstopd's default layout: <state_dir>/samba/<Share>.conf.
    let frags = smb::fragment_dir(state.path());
    let shares = two_shares(&pool, &frags);
    let smbd = Smbd::start(&shares);
    eprintln!(
        "smbd accepted connections {:?} after spawn",
        smbd.started_in
    );
    let (ctl, conf) = (smbd.smbcontrol(), smbd.conf_path());

    assert_eq!(smbd.get("TMA", "hello.txt").unwrap(), b"hello from TMA\n");
    // Writes land on the dataset (through fruit and streams_xattr on zfs-fuse).
    smbd.put("TMA", "written.txt", b"over smb\n").unwrap();
    assert_eq!(
        std::fs::read(shares[0].path.join("written.txt")).unwrap(),
        b"over smb\n"
    );

    // Offline: fragment `available = no`, reload-config, close-share.
    let cycle = Instant::now();
    smb::write_fragment(&frags, "TMA", false).unwrap();
    assert!(
        std::fs::read_to_string(smb::fragment_path(&frags, "TMA"))
            .unwrap()
            .contains("available = no")
    );
    run_argv(&smb::reload_config(&ctl, conf));
    run_argv(&smb::close_share(&ctl, conf, "TMA"));
    let offline_in = cycle.elapsed();
    expect_bad_network_name(smbd.get("TMA", "hello.txt"));
    // The other share, on the same smbd, is still served.
    assert_eq!(smbd.get("TMB", "hello.txt").unwrap(), b"hello from TMB\n");
    // Share names are case-insensitive to Samba: the other spelling is offline too.
    expect_bad_network_name(smbd.get("tma", "hello.txt"));

    // What a restore does meanwhile: the dataset's content changes under the offline share.
    std::fs::write(shares[0].path.join("hello.txt"), "restored\n").unwrap();

    // Online: the harmless fragment, reload-config.
    let online = Instant::now();
    smb::write_fragment(&frags, "TMA", true).unwrap();
    run_argv(&smb::reload_config(&ctl, conf));
    let content = wait_for("TMA to serve again", Duration::from_secs(10), || {
        smbd.get("TMA", "hello.txt").ok()
    })
    .unwrap();
    assert_eq!(content, b"restored\n");
    eprintln!(
        "offline (fragment + reload-config + close-share) in {offline_in:?}; \
         online again (fragment + reload-config + first read) in {:?}; whole cycle {:?}",
        online.elapsed(),
        cycle.elapsed()
    );
    assert_eq!(smbd.get("TMB", "hello.txt").unwrap(), b"hello from TMB\n");
}

#[test]
fn a_held_connection_is_listed_and_close_share_drops_it() {
    let pool = TestPool::new();
    let state = tempfile::tempdir().unwrap();
    // backstopd's default layout: <state_dir>/samba/<Share>.conf.
    let frags = smb::fragment_dir(state.path());
    let shares = two_shares(&pool, &frags);
    let mut smbd = Smbd::start(&shares);
    let (ctl, conf) = (smbd.smbcontrol(), smbd.conf_path().to_path_buf());

    assert_eq!(sessions(&smbd, "TMA"), vec![]);
    let mut held_a = smbd.hold("TMA").unwrap();
    let _held_b = smbd.hold("TMB").unwrap();

    let live = sessions(&smbd, "TMA");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].share, "TMA");
    assert_eq!(live[0].machine, "127.0.0.1");
    assert!(live[0].connected_at.is_some(), "{live:?}");
    assert!(live[0].pid.is_some(), "{live:?}");
    assert_eq!(sessions(&smbd, "TMB").len(), 1);
    // The parsed status names the smb.conf it read: the one passed with -s.
    let json = run_argv(&smb::status(&smbd.smbstatus(), &conf));
    assert_eq!(
        smb::parse_status(&json).unwrap().smb_conf.as_deref(),
        conf.to_str()
    );

    // Why every builder passes -s: without it smbstatus reads the default smb.conf and sees
    // nobody, exiting 0.
    let blind = run(&["smbstatus", "-S", "--json"]).unwrap();
    assert_eq!(smb::parse_share_sessions(&blind, "TMA").unwrap(), vec![]);

    // reload-config alone keeps existing connections: close-share drops them.
    smb::write_fragment(&frags, "TMA", false).unwrap();
    run_argv(&smb::reload_config(&ctl, &conf));
    assert_eq!(sessions(&smbd, "TMA").len(), 1, "reload-config kept it");
    let closing = Instant::now();
    run_argv(&smb::close_share(&ctl, &conf, "TMA"));
    wait_for("TMA's connection to go", Duration::from_secs(10), || {
        sessions(&smbd, "TMA").is_empty().then_some(())
    })
    .unwrap();
    eprintln!(
        "close-share dropped the connection in {:?}",
        closing.elapsed()
    );
    assert_eq!(sessions(&smbd, "TMB").len(), 1, "TMB's connection stays");
    // The client does not know yet (it would at its next command).
    assert!(held_a.is_running(), "{}", held_a.output());

    // smbstatus with an smb.conf it cannot load: an empty list, exit 0, and the reason on stderr.
    let missing = state.path().join("missing-smb.conf");
    let (ok, stderr) = run_stderr(&smb::status(&smbd.smbstatus(), &missing));
    assert!(ok);
    assert!(smb::status_stderr_error(&stderr).is_some(), "{stderr}");
    let (_, stderr) = run_stderr(&smb::status(&smbd.smbstatus(), &conf));
    assert_eq!(smb::status_stderr_error(&stderr), None, "{stderr}");

    // Once smbd is gone, smbcontrol says so (exit 1), and the helper recognises it.
    drop(held_a);
    smbd.stop();
    let (ok, stderr) = run_stderr(&smb::reload_config(&ctl, &conf));
    assert!(!ok);
    assert!(smb::smbd_not_running(&stderr), "{stderr}");
}
