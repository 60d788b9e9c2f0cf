//! backstopd survives clients that connect and say nothing, send garbage, open too many streams
//! or vanish mid-stream: it keeps answering everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use backstop_e2e::{Daemon, TestPool, bin, wait_for};

#[test]
fn silent_garbage_and_vanishing_clients_do_not_stop_the_daemon() {
    let pool = TestPool::new();
    let ds = pool.dataset("A");
    let d = Daemon::start_logging(&[("A", &ds)], "", "info");

    // Connects and sends nothing.
    let silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&d.addr).unwrap())
        .collect();
    // Sends garbage, then an HTTP/1 request, then a bogus HTTP/2 preface with junk frames.
    for junk in [
        b"\x00\x01\x02garbage\xff\xfe".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(), &[0xff; 64]].concat(),
    ] {
        let mut c = TcpStream::connect(&d.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(&junk).unwrap();
        let mut buf = [0u8; 256];
        let _ = c.read(&mut buf);
    }
    // Subscribes and disappears mid-stream, many times.
    for _ in 0..10 {
        let mut child = std::process::Command::new(bin("backstop"))
            .args(["--server", &d.addr, "events", "--follow", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = [0u8; 1];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Still answering, and still taking snapshots.
    let shares = d.cli(&["shares", "--json"]).json();
    assert_eq!(shares["shares"][0]["name"], "A");
    d.cli(&["snapshot", "A", "--json"]).json();
    assert_eq!(pool.snapshots(&ds).len(), 1);
    drop(silent);
    wait_for("the daemon to stay up", Duration::from_secs(5), || {
        (d.cli(&["server-info", "--json"]).code == 0).then_some(())
    })
    .unwrap();
}
