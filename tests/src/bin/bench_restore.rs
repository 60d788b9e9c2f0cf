//! `make bench` (restore part): a share of 57,206 band files served by the real Netatalk 4 (the
//! trixie chroot), restored by Backstop (clone-and-swap, CNID database in the dataset, `cnid dev
//! = no`) and by the seed's procedure (stop, rollback, delete the CNID database, start, `dbd`
//! rebuild), in one run. Prints the time until the share is served again and whether the CNIDs
//! of a sample of files survived. Figures, not assertions.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use backstop_e2e::netatalk::{self, Netatalk, Volume};
use backstop_e2e::{Daemon, TestPool, run, wait_for, zfs_admin_lock};

const BANDS: usize = 57_206;
const SAMPLE: usize = 50;

fn run_argv(argv: &[String]) -> Duration {
    let t = Instant::now();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn same(a: &BTreeMap<String, u32>, b: &BTreeMap<String, u32>) -> String {
    let samples: Vec<&String> = a.keys().filter(|k| k.contains("sample")).collect();
    let kept = samples.iter().filter(|k| b.get(**k) == a.get(**k)).count();
    format!("{kept} of {} unchanged", samples.len())
}

fn main() {
    let pool = TestPool::with_size("1G");
    let unique = netatalk::unique_name();
    let dir = netatalk::volume_dir(&unique);
    let ds = pool.dataset_at("MattBookPro", &dir);
    let t = Instant::now();
    let bands = dir.join("MattBookPro.sparsebundle/bands");
    std::fs::create_dir_all(&bands).unwrap();
    for i in 0..BANDS {
        std::fs::write(bands.join(format!("{i:x}")), [i as u8; 16]).unwrap();
    }
    std::fs::create_dir_all(dir.join("sample")).unwrap();
    for i in 0..SAMPLE {
        std::fs::write(dir.join(format!("sample/sample{i:02}")), "v1").unwrap();
    }
    eprintln!("created {BANDS} band files in {}", secs(t.elapsed()));

    let n = Netatalk::start(vec![Volume::new(
        "MattBookPro",
        &netatalk::volume_path_in_chroot(&unique),
    )])
    .unwrap();
    let vol_path = netatalk::volume_path_in_chroot(&unique);
    let mut dbd = n.dbd_argv_prefix();
    dbd.push(vol_path.clone());
    let first_index = run_argv(&dbd);
    eprintln!("first dbd index: {}", secs(first_index));
    let before = n.cnids_in("MattBookPro", "/sample").unwrap();

    let extra = format!(
        "[zfs]\nadmin_lock = \"/run/backstop-zfs-admin.lock\"\n\n\
         [[share]]\nname = \"MattBookPro\"\ndataset = \"{ds}\"\nservice = {}\n",
        n.service_toml()
    );
    let d = Daemon::start_logging(&[], &extra, "warn");
    let snap = d
        .cli(&["snapshot", "MattBookPro", "--suffix", "good", "--json"])
        .json()["snapshot"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // The backup goes on, then goes bad.
    for i in 0..1000 {
        std::fs::write(bands.join(format!("{i:x}")), [0xffu8; 16]).unwrap();
    }

    // Backstop: clone-and-swap; the CLI returns once netatalk serves the volume again.
    let t = Instant::now();
    d.cli(&["restore", "MattBookPro", "--to", &snap, "--yes", "--json"])
        .json();
    let backstop = t.elapsed();
    let after = n.cnids_in("MattBookPro", "/sample").unwrap();
    let scan = wait_for("dbd -s to finish", Duration::from_secs(600), || {
        d.cli(&["events", "--json"]).json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e["kind"] == "cnid_checked")
            .cloned()
    })
    .unwrap();
    d.cli(&["restore", "MattBookPro", "--finalize", "--yes", "--json"])
        .json();
    drop(d);

    // The seed's procedure on the same share, from the same kind of damage.
    for i in 0..1000 {
        std::fs::write(bands.join(format!("{i:x}")), [0xeeu8; 16]).unwrap();
    }
    let t = Instant::now();
    run_argv(&n.stop_argv());
    {
        let _lock = zfs_admin_lock();
        run(&["zfs", "rollback", "-r", &format!("{ds}@{snap}")]).unwrap();
    }
    std::fs::remove_dir_all(dir.join(".AppleDB")).unwrap();
    run_argv(&n.start_argv());
    run_argv(&dbd);
    let seed = t.elapsed();
    let seed_after = n.cnids_in("MattBookPro", "/sample").unwrap();

    println!(
        "\nrestore of a share with {BANDS} band files, real Netatalk 4 in the trixie chroot, zfs-fuse"
    );
    println!(
        "| what | Backstop (clone-swap, CNID db in the dataset, cnid dev = no) | seed's procedure (rollback, delete CNID db, dbd rebuild) |"
    );
    println!("|---|---|---|");
    println!(
        "| until the share is served again | {} | {} |",
        secs(backstop),
        secs(seed)
    );
    println!(
        "| CNIDs of {SAMPLE} sample files over AFP | {} | {} |",
        same(&before, &after),
        same(&before, &seed_after)
    );
    println!(
        "| CNID database check afterwards | in the background, share already served: {} | the rebuild above |",
        scan["summary"].as_str().unwrap_or("?")
    );
    println!(
        "| first index of the share (dbd) | {} | |",
        secs(first_index)
    );
}
