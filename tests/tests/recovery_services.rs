//! Restores with the real file services: Samba (only the restored share goes offline; a client
//! reads the content change and come back) and Netatalk 4 in its trixie chroot (CNIDs read over
//! AFP before the snapshot and after the restore are equal; dbd's check arrives as an event).

use std::path::Path;
use std::time::Duration;

use backstop_e2e::netatalk::{self, Netatalk, Volume};
use backstop_e2e::samba::{SambaShare, Smbd};
use backstop_e2e::{Daemon, TestPool, wait_for};

fn toml_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

fn events(d: &Daemon) -> Vec<serde_json::Value> {
    d.cli(&["events", "--json"]).json()["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn snapshot(d: &Daemon, share: &str, suffix: &str) -> String {
    d.cli(&["snapshot", share, "--suffix", suffix, "--json"])
        .json()["snapshot"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn samba_serves_the_restored_content_takes_only_that_share_offline_and_undo_brings_it_back() {
    let pool = TestPool::new();
    let ds = pool.dataset("Matt");
    let other = pool.dataset("Other");
    let root = pool.mountpoint().join("Matt");
    std::fs::write(root.join("band"), "before").unwrap();
    std::fs::write(pool.mountpoint().join("Other/band"), "other").unwrap();
    let fragments = tempfile::tempdir().unwrap();
    let include = fragments.path().join("Matt.conf");
    std::fs::write(&include, "# available\n").unwrap();
    let smbd = Smbd::start(&[
        SambaShare::time_machine("Matt", &root, &include),
        SambaShare::time_machine(
            "Other",
            &pool.mountpoint().join("Other"),
            &fragments.path().join("Other.conf"),
        ),
    ]);
    let extra = format!(
        "[zfs]\nadmin_lock = \"/run/backstop-zfs-admin.lock\"\n\n\
         [[share]]\nname = \"Matt\"\ndataset = \"{ds}\"\n\
         service = {{ kind = \"samba\", smb_conf = \"{conf}\", smbcontrol = {ctl}, smbstatus = {st}, fragment_dir = \"{frag}\" }}\n\n\
         [[share]]\nname = \"Other\"\ndataset = \"{other}\"\n",
        conf = smbd.conf_path().display(),
        ctl = toml_list(&smbd.smbcontrol()),
        st = toml_list(&smbd.smbstatus()),
        frag = fragments.path().display(),
    );
    let d = Daemon::start(&[], &extra);
    let one = snapshot(&d, "Matt", "one");
    std::fs::write(root.join("band"), "after").unwrap();
    assert_eq!(smbd.get("Matt", "band").unwrap(), b"after");

    // A Mac connected to the share: no restore without --force.
    let held = smbd.hold("Matt").unwrap();
    wait_for(
        "smbstatus to show the session",
        Duration::from_secs(10),
        || {
            let out = d.cli(&["restore", "Matt", "--to", &one, "--yes"]);
            (out.code == 1 && out.stderr.contains("live Time Machine session")).then_some(())
        },
    )
    .unwrap();
    assert_eq!(smbd.get("Matt", "band").unwrap(), b"after");
    drop(held);

    let done = wait_for("the restore to go through", Duration::from_secs(20), || {
        let out = d.cli(&["restore", "Matt", "--to", &one, "--yes", "--json"]);
        (out.code == 0).then(|| out.json())
    })
    .unwrap();
    assert_eq!(smbd.get("Matt", "band").unwrap(), b"before");
    assert_eq!(smbd.get("Other", "band").unwrap(), b"other");
    // The fragment says the share is available again.
    let fragment = std::fs::read_to_string(&include).unwrap();
    assert!(
        !fragment.lines().any(|l| l.trim() == "available = no"),
        "{fragment}"
    );
    assert!(done["summary"].as_str().unwrap().contains("restored to"));

    d.cli(&["restore", "Matt", "--undo", "--yes", "--json"])
        .json();
    assert_eq!(smbd.get("Matt", "band").unwrap(), b"after");
    d.cli(&["restore", "Matt", "--finalize", "--yes", "--json"])
        .json();
    assert_eq!(smbd.get("Matt", "band").unwrap(), b"after");

    let doctor = d.cli(&["doctor", "Matt", "--json"]).json();
    assert_eq!(doctor["service"], "samba");
    assert_eq!(doctor["ok"], true, "{doctor}");
}

/// A dataset mounted inside the chroot, holding `n` files.
fn netatalk_dataset(pool: &TestPool, unique: &str, n: usize) -> (String, std::path::PathBuf) {
    let dir = netatalk::volume_dir(unique);
    let ds = pool.dataset_at("Matt", &dir);
    for i in 0..n {
        std::fs::write(dir.join(format!("band{i:03}")), format!("v1 {i}")).unwrap();
    }
    (ds, dir)
}

fn netatalk_daemon(ds: &str, n: &Netatalk) -> Daemon {
    let extra = format!(
        "[zfs]\nadmin_lock = \"/run/backstop-zfs-admin.lock\"\n\n\
         [[share]]\nname = \"Matt\"\ndataset = \"{ds}\"\nservice = {}\n",
        n.service_toml()
    );
    Daemon::start(&[], &extra)
}

fn cnid_event(d: &Daemon) -> serde_json::Value {
    wait_for("the CNID check event", Duration::from_secs(120), || {
        events(d)
            .into_iter()
            .rev()
            .find(|e| e["kind"] == "cnid_checked")
    })
    .unwrap()
}

#[test]
fn netatalk_restore_keeps_every_cnid_and_needs_no_rebuild() {
    let pool = TestPool::new();
    let unique = netatalk::unique_name();
    let (ds, dir) = netatalk_dataset(&pool, &unique, 40);
    let n = Netatalk::start(vec![Volume::new(
        "Matt",
        &netatalk::volume_path_in_chroot(&unique),
    )])
    .unwrap();
    let before = n.cnids("Matt").unwrap();
    assert_eq!(before.len(), 40, "{before:?}");
    let d = netatalk_daemon(&ds, &n);
    let doctor = d.cli(&["doctor", "Matt", "--json"]).json();
    assert_eq!(doctor["service"], "netatalk");
    assert_eq!(doctor["ok"], true, "{doctor}");
    assert!(
        doctor["version"].as_str().unwrap_or("").starts_with('4'),
        "{doctor}"
    );

    let one = snapshot(&d, "Matt", "one");
    // Time Machine goes on writing, then eats itself.
    for i in 0..40 {
        std::fs::write(dir.join(format!("band{i:03}")), format!("v2 {i}")).unwrap();
    }
    std::fs::write(dir.join("new-band"), "v2").unwrap();
    let plan = d
        .cli(&["restore", "Matt", "--to", &one, "--dry-run", "--json"])
        .json();
    assert_eq!(plan["cnid"], "scan");
    assert_eq!(plan["cnid_stable"], true);

    let t = std::time::Instant::now();
    d.cli(&["restore", "Matt", "--to", &one, "--yes", "--json"])
        .json();
    let served_in = t.elapsed();
    assert!(n.is_running(), "netatalk runs again: {}", n.log());
    assert_eq!(
        std::fs::read_to_string(dir.join("band007")).unwrap(),
        "v1 7"
    );
    assert!(!Path::new(&dir.join("new-band")).exists());
    let after = n.cnids("Matt").unwrap();
    assert_eq!(after, before, "CNIDs over AFP are unchanged");
    let check = cnid_event(&d);
    assert_eq!(check["severity"], "info", "{check}");
    assert!(
        check["summary"].as_str().unwrap().contains("clean"),
        "{check}"
    );
    eprintln!("netatalk restore: share served again after {served_in:?}");

    d.cli(&["restore", "Matt", "--undo", "--yes", "--json"])
        .json();
    assert_eq!(
        std::fs::read_to_string(dir.join("band007")).unwrap(),
        "v2 7"
    );
    assert!(n.is_running());
    assert_eq!(
        n.cnids("Matt").unwrap().get("band007"),
        before.get("band007")
    );
}

#[test]
fn netatalk_with_the_database_outside_gets_the_seeds_rebuild_and_doctor_says_what_to_change() {
    let pool = TestPool::new();
    let unique = netatalk::unique_name();
    let (ds, dir) = netatalk_dataset(&pool, &unique, 10);
    let mut vol = Volume::new("Matt", &netatalk::volume_path_in_chroot(&unique));
    vol.db_inside = false;
    vol.cnid_dev = true;
    let n = Netatalk::start(vec![vol]).unwrap();
    n.cnids("Matt").unwrap();
    let d = netatalk_daemon(&ds, &n);
    let doctor = d.cli(&["doctor", "Matt", "--json"]).json();
    assert_eq!(doctor["ok"], false, "{doctor}");
    let lines = doctor["advice"].to_string();
    assert!(lines.contains("cnid dev = no"), "{doctor}");
    assert!(
        lines.contains("vol dbpath") || lines.contains("vol dbnest"),
        "{doctor}"
    );

    let one = snapshot(&d, "Matt", "one");
    std::fs::write(dir.join("band003"), "v2").unwrap();
    let plan = d
        .cli(&["restore", "Matt", "--to", &one, "--dry-run", "--json"])
        .json();
    assert_eq!(plan["cnid"], "rebuild", "{plan}");
    assert!(plan["warnings"].to_string().contains("CNIDs may change"));
    d.cli(&["restore", "Matt", "--to", &one, "--yes", "--json"])
        .json();
    assert_eq!(
        std::fs::read_to_string(dir.join("band003")).unwrap(),
        "v1 3"
    );
    let check = cnid_event(&d);
    assert!(
        check["summary"].as_str().unwrap().contains("rebuilt"),
        "{check}"
    );
    assert!(n.is_running());
    assert_eq!(n.cnids("Matt").unwrap().len(), 10);
}
