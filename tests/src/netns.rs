//! Two hosts on one machine: a server and a Mac, each in its own network namespace, joined by a
//! veth pair on a private /24. Made and removed by the test (root; iproute2).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{CliOutput, bin, run};

static N: AtomicU32 = AtomicU32::new(0);

pub struct NetPair {
    pub server_ns: String,
    pub mac_ns: String,
    pub server_ip: String,
    pub mac_ip: String,
}

impl NetPair {
    pub fn new() -> NetPair {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, n);
        let (s, m) = (format!("bss{tag}"), format!("bsm{tag}"));
        let net = format!("10.{}.{}", 100 + (pid % 100), n % 250);
        let pair = NetPair {
            server_ns: s.clone(),
            mac_ns: m.clone(),
            server_ip: format!("{net}.1"),
            mac_ip: format!("{net}.2"),
        };
        let ip = |args: &[&str]| {
            let mut argv = vec!["ip"];
            argv.extend_from_slice(args);
            run(&argv).unwrap_or_else(|e| {
                panic!("{e} (these tests need root and iproute2: network namespaces)")
            })
        };
        ip(&["netns", "add", &s]);
        ip(&["netns", "add", &m]);
        let (vs, vm) = (format!("v{tag}s"), format!("v{tag}m"));
        ip(&[
            "link", "add", &vs, "netns", &s, "type", "veth", "peer", "name", &vm, "netns", &m,
        ]);
        ip(&[
            "-n",
            &s,
            "addr",
            "add",
            &format!("{}/24", pair.server_ip),
            "dev",
            &vs,
        ]);
        ip(&[
            "-n",
            &m,
            "addr",
            "add",
            &format!("{}/24", pair.mac_ip),
            "dev",
            &vm,
        ]);
        for (ns, dev) in [(&s, &vs), (&m, &vm)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// `backstop ARGS` run on the Mac, with its own config dir (its pairing credentials).
    pub fn mac_cli(&self, config_dir: &std::path::Path, args: &[&str]) -> CliOutput {
        self.mac_command(config_dir, args)
            .stdin(Stdio::null())
            .output()
            .expect("run backstop in the Mac's namespace")
            .into()
    }

    /// The `backstop ARGS` command on the Mac, to spawn it.
    pub fn mac_command(&self, config_dir: &std::path::Path, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.mac_ns])
            .arg(bin("backstop"))
            .args(args)
            .env("BACKSTOP_CONFIG_DIR", config_dir)
            .env("TZ", "UTC")
            .env_remove("BACKSTOP_SERVER");
        c
    }
}

impl Default for NetPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.server_ns, &self.mac_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
