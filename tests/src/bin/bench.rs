//! `bench`: Backstop's figures on this machine, each beside its reference measured in the same
//! run on the same pool. Prints figures; asserts nothing. Run with `make bench` (release build).
//!
//! 1. `backstop snapshot` end to end (CLI process, gRPC, backstopd, zfs) against a bare
//!    `zfs snapshot`, median of 30 each, interleaved.
//! 2. Listing a share with 1,000 snapshots: `backstop list --json` against the `zfs get` it runs.
//! 3. backstopd's resident memory, idle, after listing those 1,000 snapshots.

use std::process::Command;
use std::time::{Duration, Instant};

use backstop_e2e::{Daemon, TestPool, bin, run};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn time(argv: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0);
    format!("{cores} cores ({cpu}), {} GiB", mem_kb / 1024 / 1024)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn main() {
    let rounds = 30;
    let pool = TestPool::with_size("512M");
    let ds = pool.dataset("MattBookPro");
    let d = Daemon::start_logging(&[("MattBookPro", &ds)], "", "warn");
    let backstop = bin("backstop");
    let backstop = backstop.to_str().unwrap();
    let zfs_impl = d.cli(&["server-info", "--json"]).json()["zfs"]["implementation"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    println!("machine: {}; zfs: {zfs_impl}", machine());

    // 1. Snapshot, end to end vs bare zfs, interleaved so both see the same conditions.
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let full = format!("{ds}@bare{i}");
        bare.push(time(&["zfs", "snapshot", &full]));
        let suffix = format!("b{i}");
        ours.push(time(&[
            backstop,
            "--server",
            &d.addr,
            "snapshot",
            "MattBookPro",
            "--suffix",
            &suffix,
        ]));
    }
    let (mo, mb) = (median(&mut ours), median(&mut bare));
    println!("\n| what | Backstop | reference | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| snapshot, median of {rounds} (p90) | `backstop snapshot` {} ({}) | bare `zfs snapshot` {} ({}) | {:.2}x | <= 1.5x |",
        ms(mo),
        ms(pct(&mut ours, 0.9)),
        ms(mb),
        ms(pct(&mut bare, 0.9)),
        mo.as_secs_f64() / mb.as_secs_f64()
    );

    // 2. Fill up to 1,000 snapshots (managed, as Backstop makes them), then list.
    let existing = pool.snapshots(&ds).len();
    for i in existing..1000 {
        let t = 1_700_000_000 + i as u64 * 3600;
        run(&[
            "zfs",
            "snapshot",
            "-o",
            "org.backstop:managed=on",
            "-o",
            &format!("org.backstop:backup-time={t}"),
            "-o",
            "org.backstop:origin=backup",
            &format!("{ds}@fill{i:04}"),
        ])
        .expect("fill");
    }
    let props = "creation,used,referenced,available,usedbysnapshots,org.backstop:managed,org.backstop:backup-time,org.backstop:origin,org.backstop:backup-id";
    let (mut list, mut get) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        get.push(time(&[
            "zfs",
            "get",
            "-Hp",
            "-d",
            "1",
            "-o",
            "name,property,value,source",
            props,
            &ds,
        ]));
        list.push(time(&[
            backstop,
            "--server",
            &d.addr,
            "list",
            "MattBookPro",
            "--json",
        ]));
    }
    let n = d.cli(&["list", "MattBookPro", "--json"]).json()["snapshots"]
        .as_array()
        .map_or(0, Vec::len);
    let (ml, mg) = (median(&mut list), median(&mut get));
    println!(
        "| list {n} snapshots, median of 7 | `backstop list --json` {} | its `zfs get` alone {} | +{} | < +100 ms |",
        ms(ml),
        ms(mg),
        ms(ml.saturating_sub(mg))
    );

    // 3. Idle memory after listing.
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_kb(d.pid());
    println!(
        "| backstopd resident memory, idle, after listing {n} | {:.1} MB | - | - | < 20 MB |",
        rss as f64 / 1024.0
    );
}
