//! TLS, pairing and per-share authorization across two hosts: backstopd in one network
//! namespace, the Mac's `backstop` in another, joined by a veth pair.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use backstop_e2e::netns::NetPair;
use backstop_e2e::{Daemon, TestPool, wait_for};
use backstop_server::security::ca;

struct Setup {
    pool: TestPool,
    net: NetPair,
    daemon: Daemon,
    addr: String,
    a: String,
    b: String,
}

fn setup() -> Setup {
    let pool = TestPool::new();
    let a = pool.dataset("A");
    let b = pool.dataset("B");
    let net = NetPair::new();
    let extra =
        "local_listen = \"127.0.0.1:0\"\n[zfs]\nadmin_lock = \"/run/backstop-zfs-admin.lock\"\n";
    let mut daemon = Daemon::configure(
        &format!("{}:0", net.server_ip),
        &[("A", &a), ("B", &b)],
        extra,
        "debug",
    );
    let init = daemon.admin(&["init", "--name", &net.server_ip]);
    assert_eq!(init.code, 0, "{init:?}");
    daemon.netns = Some(net.server_ns.clone());
    daemon.spawn();
    let addr = daemon.addr.clone();
    Setup {
        pool,
        net,
        daemon,
        addr,
        a,
        b,
    }
}

/// `backstopd pair --share …`: (code, fingerprint).
fn new_code(d: &Daemon, shares: &[&str], admin: bool) -> (String, String) {
    let mut args = vec!["pair"];
    for s in shares {
        args.extend_from_slice(&["--share", s]);
    }
    if admin {
        args.push("--admin");
    }
    let out = d.admin(&args);
    assert_eq!(out.code, 0, "{out:?}");
    let field = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {}", out.stdout))
            .trim()
            .to_string()
    };
    (field("code:"), field("fingerprint:"))
}

fn paired(s: &Setup, shares: &[&str], name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (code, fp) = new_code(&s.daemon, shares, false);
    let out = s.net.mac_cli(
        dir.path(),
        &[
            "pair",
            &s.addr,
            &code,
            "--fingerprint",
            &fp,
            "--name",
            name,
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    dir
}

fn mac(s: &Setup, dir: &Path, args: &[&str]) -> backstop_e2e::CliOutput {
    let mut a = vec!["--server", s.addr.as_str()];
    a.extend_from_slice(args);
    s.net.mac_cli(dir, &a)
}

#[test]
fn a_paired_mac_reaches_only_its_own_shares_and_strangers_get_nothing() {
    let s = setup();

    // Plaintext to the TLS port fails cleanly, changing nothing.
    let nobody = tempfile::tempdir().unwrap();
    let plain = mac(&s, nobody.path(), &["snapshot", "A"]);
    assert_eq!(plain.code, 1, "{plain:?}");
    assert!(plain.stderr.starts_with("backstop: "), "{}", plain.stderr);
    assert_eq!(plain.stderr.lines().count(), 1, "{}", plain.stderr);

    // Pairing: a wrong fingerprint is refused before the code is sent; the right one works once.
    let (code, fp) = new_code(&s.daemon, &["A"], false);
    let wrong = format!("{}00", &fp[..fp.len() - 2]);
    let wrong = if wrong == fp {
        format!("{}11", &fp[..fp.len() - 2])
    } else {
        wrong
    };
    let mallory = s.net.mac_cli(
        nobody.path(),
        &[
            "pair",
            &s.addr,
            &code,
            "--fingerprint",
            &wrong,
            "--name",
            "Matt",
        ],
    );
    assert_eq!(mallory.code, 1, "{mallory:?}");
    assert!(mallory.stderr.contains("fingerprint"), "{}", mallory.stderr);
    let mac_dir = tempfile::tempdir().unwrap();
    let ok = s.net.mac_cli(
        mac_dir.path(),
        &[
            "pair",
            &s.addr,
            &code,
            "--fingerprint",
            &fp,
            "--name",
            "Matt",
            "--json",
        ],
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    let other = tempfile::tempdir().unwrap();
    let reused = s.net.mac_cli(
        other.path(),
        &[
            "pair",
            &s.addr,
            &code,
            "--fingerprint",
            &fp,
            "--name",
            "Eve",
        ],
    );
    assert_eq!(reused.code, 1, "{reused:?}");
    assert!(reused.stderr.contains("already used"), "{}", reused.stderr);
    let key = mac_dir
        .path()
        .join(format!("servers/{}/client.key", s.addr.replace(':', "_")));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Its own share: yes. Another Mac's share: no, and nothing changes there.
    let snap = mac(&s, mac_dir.path(), &["snapshot", "A", "--json"]);
    assert_eq!(snap.code, 0, "{snap:?}");
    let refused = mac(&s, mac_dir.path(), &["snapshot", "B"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("not paired for share 'B'"),
        "{}",
        refused.stderr
    );
    for args in [
        vec!["list", "B"],
        vec!["prune", "B"],
        vec!["restore", "B", "--dry-run"],
        vec!["restore", "B", "--yes"],
    ] {
        let out = mac(&s, mac_dir.path(), &args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("not paired for share 'B'"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(s.pool.snapshots(&s.b).is_empty());
    assert_eq!(s.pool.snapshots(&s.a).len(), 1);
    // It sees only its share; health is for every paired Mac; scrub needs an admin.
    let shares = mac(&s, mac_dir.path(), &["shares", "--json"]).json();
    assert_eq!(shares["shares"].as_array().unwrap().len(), 1, "{shares}");
    assert_eq!(mac(&s, mac_dir.path(), &["health", "--json"]).code, 0);
    let scrub = mac(&s, mac_dir.path(), &["scrub", &s.pool.name]);
    assert_eq!(scrub.code, 1);
    assert!(scrub.stderr.contains("admin"), "{}", scrub.stderr);

    // A certificate from another CA is refused in the handshake; one our CA signed but never
    // paired is not paired.
    let forged = tempfile::tempdir().unwrap();
    let strange_ca = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now();
    ca::init(strange_ca.path(), &[], now).unwrap();
    let strange = ca::load(strange_ca.path()).unwrap();
    let real = ca::load(&s.daemon.state_dir()).unwrap();
    for (dir, signer) in [(&forged, &strange), (&other, &real)] {
        let (key, csr) = ca::make_client_key_and_csr("Ghost").unwrap();
        let cert = ca::sign_client(signer, &csr, "Ghost", now).unwrap();
        let creds = backstop_agent_core::pairing::Credentials {
            paired: backstop_agent_core::pairing::Paired {
                server: s.addr.clone(),
                client_name: "Ghost".into(),
                ca_fingerprint: fp.clone(),
                shares: vec!["A".into(), "B".into()],
                admin: true,
            },
            ca_pem: real.ca_cert_pem.clone(),
            cert_pem: cert.cert_pem,
            key_pem: key,
        };
        backstop_agent_core::pairing::save(dir.path(), &creds).unwrap();
        let out = mac(&s, dir.path(), &["snapshot", "A"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    let ghost = mac(&s, other.path(), &["list", "A"]);
    assert!(ghost.stderr.contains("not paired"), "{}", ghost.stderr);
    assert_eq!(s.pool.snapshots(&s.a).len(), 1);

    // The audit log has who did what.
    let audit = s.daemon.admin(&["audit", "--json"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    assert!(
        audit.stdout.contains("\"who\":\"client Matt\""),
        "{}",
        audit.stdout
    );
    assert!(
        audit.stdout.contains("not paired for share 'B'"),
        "{}",
        audit.stdout
    );
}

#[test]
fn a_revoked_mac_is_refused_at_once_also_on_a_stream_it_holds_open() {
    let s = setup();
    let mac_dir = paired(&s, &["A"], "Matt");
    let mut follow = s
        .net
        .mac_command(
            mac_dir.path(),
            &["--server", &s.addr, "events", "--follow", "--json"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The stream is open once the Mac's snapshot event arrives on it... and it still runs.
    assert_eq!(mac(&s, mac_dir.path(), &["snapshot", "A"]).code, 0);
    assert!(follow.try_wait().unwrap().is_none());

    let out = s.daemon.admin(&["clients", "revoke", "Matt"]);
    assert_eq!(out.code, 0, "{out:?}");
    let status = wait_for("the open stream to be cut", Duration::from_secs(15), || {
        follow.try_wait().unwrap()
    })
    .unwrap();
    assert!(!status.success());
    let err = std::io::read_to_string(follow.stderr.take().unwrap()).unwrap();
    assert!(err.contains("revoked"), "{err}");
    let after = mac(&s, mac_dir.path(), &["list", "A"]);
    assert_eq!(after.code, 1);
    assert!(after.stderr.contains("revoked"), "{}", after.stderr);
    let list = s.daemon.admin(&["clients", "list"]);
    assert!(list.stdout.contains("revoked"), "{}", list.stdout);
}

#[test]
fn a_non_loopback_listen_without_certificates_refuses_to_start() {
    let net = NetPair::new();
    let d = Daemon::configure(&format!("{}:0", net.server_ip), &[], "", "info");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &net.server_ns])
        .arg(backstop_e2e::bin("backstopd"))
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backstopd init"), "{err}");
    assert!(!d.state_dir().join("listen-addr").exists());
}
