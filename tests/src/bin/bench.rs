//! `bench`: Backstop's figures on this machine, each beside its reference measured in the same
//! run on the same pool. Prints figures; asserts nothing. Run with `make bench` (release build).
//!
//! 1. `backstop snapshot` end to end (CLI process, gRPC, backstopd, zfs) against a bare
//!    `zfs snapshot`, median of 30 each, interleaved.
//! 2. Listing a share with 1,000 snapshots: `backstop list --json` against the `zfs get` it runs.
//! 3. backstopd's resident memory, idle, after listing those 1,000 snapshots.
//! 4. Planning retention for 10,000 snapshots (the pure planner, in process).
//! 5. Pruning 500 snapshots: zfs processes and wall time, Backstop against sanoid (Debian's
//!    package) on the same pool with an equivalent policy (keep nothing old), counted through
//!    logging shims in front of zfs (and ps, which sanoid runs once per snapshot).

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
        managed_snapshot(&format!("{ds}@fill{i:04}"), 1_700_000_000 + i as u64 * 3600);
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
    drop(d);

    plan_10k();
    prune_500(&pool);
}

/// A snapshot marked as Backstop makes them (managed, with a backup time), by a bare zfs call.
fn managed_snapshot(full_name: &str, backup_time: u64) {
    run(&[
        "zfs",
        "snapshot",
        "-o",
        "org.backstop:managed=on",
        "-o",
        &format!("org.backstop:backup-time={backup_time}"),
        "-o",
        "org.backstop:origin=backup",
        full_name,
    ])
    .expect("zfs snapshot");
}

fn plan_10k() {
    use backstop_server::retention::{Candidate, RetentionPolicy, plan};
    let now = jiff::Timestamp::from_second(1_795_600_000).unwrap();
    let snaps: Vec<Candidate> = (0..10_000i64)
        .map(|i| {
            let t = jiff::Timestamp::from_second(1_795_600_000 - i * 1800).unwrap();
            Candidate {
                name: format!("s{i:05}"),
                managed: i % 50 != 7,
                backup_time: Some(t),
                created: t,
                verified_good: i % 3 == 0,
                keep: i % 997 == 0,
                holds: u64::from(i % 1009 == 0),
                used: 1 << 20,
            }
        })
        .collect();
    let policy = RetentionPolicy {
        timezone: jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        ..RetentionPolicy::default()
    };
    let mut times = Vec::new();
    let mut destroyed = 0;
    for _ in 0..21 {
        let start = Instant::now();
        let p = plan(&snaps, &policy, now, None);
        times.push(start.elapsed());
        destroyed = p.to_destroy().len();
    }
    println!(
        "| plan retention for 10,000 snapshots (~7 months, every 30 min), median of 21 | {} ({destroyed} to destroy) | - | - | < 50 ms |",
        ms(median(&mut times))
    );
}

/// A script in `dir` named `name` that logs its arguments to `log` and runs `target`.
fn shim(
    dir: &std::path::Path,
    name: &str,
    log: &std::path::Path,
    body: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"{name} $*\" >> {}\n{body}\n",
            log.display()
        ),
    )
    .unwrap();
    run(&["chmod", "+x", path.to_str().unwrap()]).unwrap();
    path
}

fn count_lines(log: &std::path::Path, prefix: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count()
}

fn prune_500(pool: &TestPool) {
    let work = tempfile::tempdir().unwrap();
    let zfs_bin = run(&["sh", "-c", "command -v zfs"])
        .unwrap()
        .trim()
        .to_string();

    // Backstop: 501 managed snapshots, 500 of them older than every window.
    let ds = pool.dataset("prune-backstop");
    for i in 0..501u64 {
        let t = if i == 500 {
            1_795_600_000
        } else {
            1_790_000_000 + i * 600
        };
        managed_snapshot(&format!("{ds}@p{i:03}"), t);
    }
    let log = work.path().join("backstop-zfs.log");
    let counter = shim(
        work.path(),
        "zfs-counter",
        &log,
        &format!("exec {zfs_bin} \"$@\""),
    );
    let extra = format!(
        "[zfs]\nzfs = [\"{}\"]\n[retention]\nhourly_hours = 0\ndaily_days = 0\nweekly_weeks = 1\ninterval_minutes = 0\n",
        counter.display()
    );
    let d = Daemon::start_logging(&[("P", &ds)], &extra, "warn");
    let before = count_lines(&log, "zfs-counter");
    let start = Instant::now();
    let out = d.cli(&["prune", "P", "--json"]).json();
    let ours = start.elapsed();
    let ours_procs = count_lines(&log, "zfs-counter") - before;
    let ours_n = out["destroyed"].as_array().map_or(0, Vec::len);
    let batch = d.cli(&["server-info", "--json"]).json()["zfs"]["capabilities"]
        .as_array()
        .is_some_and(|c| c.iter().any(|x| x == "destroy-batch"));
    drop(d);

    // sanoid: 500 of its own snapshots, a policy that keeps none, zfs and ps shimmed to count
    // (and to stand in for `zfs get -t snapshot`, which zfs-fuse lacks: without that, sanoid
    // silently prunes nothing here).
    let ds = pool.dataset("prune-sanoid");
    for i in 0..500u64 {
        run(&[
            "zfs",
            "snapshot",
            &format!(
                "{ds}@autosnap_2026-10-01_00:{:02}:{:02}_hourly",
                i / 60,
                i % 60
            ),
        ])
        .unwrap();
    }
    let slog = work.path().join("sanoid.log");
    let bin_dir = work.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    shim(
        &bin_dir,
        "zfs",
        &slog,
        &format!(
            "if [ \"$1\" = get ] && [ \"$2\" = -Hrpt ] && [ \"$3\" = snapshot ]; then shift 3; {zfs_bin} get -Hrp \"$@\" | awk -F'\\t' '$1 ~ /@/'; exit 0; fi\nexec {zfs_bin} \"$@\""
        ),
    );
    shim(&bin_dir, "ps", &slog, "exec /bin/ps \"$@\"");
    let conf = work.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("sanoid.conf"),
        format!("[{ds}]\n\tuse_template = none\n\thourly = 0\n\tdaily = 0\n\tmonthly = 0\n\tyearly = 0\n\tautosnap = no\n\tautoprune = yes\n"),
    )
    .unwrap();
    std::fs::copy(
        "/usr/share/sanoid/sanoid.defaults.conf",
        conf.join("sanoid.defaults.conf"),
    )
    .expect("sanoid is installed (apt-get install sanoid)");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = Instant::now();
    let status = Command::new("sanoid")
        .args(["--prune-snapshots", "--force-update"])
        .arg(format!("--configdir={}", conf.display()))
        .arg(format!("--cache-dir={}", work.path().display()))
        .arg(format!("--run-dir={}", work.path().display()))
        .env("PATH", &path)
        .output()
        .expect("run sanoid");
    let theirs = start.elapsed();
    let left = pool.snapshots(&ds).len();
    let zfs_procs = count_lines(&slog, "zfs ");
    let ps_procs = count_lines(&slog, "ps ");
    if !status.status.success() {
        println!(
            "(sanoid failed: {})",
            String::from_utf8_lossy(&status.stderr).trim()
        );
    }
    println!(
        "| prune 500 snapshots: wall time | Backstop {} ({ours_n} destroyed) | sanoid {} ({} destroyed) | {:.2}x | - |",
        ms(ours),
        ms(theirs),
        500 - left,
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    println!(
        "| prune 500 snapshots: processes | Backstop {ours_procs} zfs | sanoid {zfs_procs} zfs + {ps_procs} ps | {:.1}x fewer | >= 10x fewer on OpenZFS |",
        (zfs_procs + ps_procs) as f64 / ours_procs.max(1) as f64
    );
    println!(
        "(this zfs {} batched destroy: Backstop {}.)",
        if batch { "has" } else { "lacks" },
        if batch {
            "destroys 500 per `zfs destroy ds@a,b,…` call"
        } else {
            "falls back to one `zfs destroy` per snapshot, as sanoid does; with batches (OpenZFS, illumos) the same prune is 3 `zfs get` + 1 `zfs destroy`"
        }
    );
}
