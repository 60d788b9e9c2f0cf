//! `tmutil` outputs: the plist fixtures, and what malformed ones give.

use backstop_agent_core::detector::{
    Destination, TmutilError, TmutilStatus, parse_destinations, parse_latestbackup, parse_status,
};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/plist/",
            $name
        ))
    };
}

#[test]
fn status_idle() {
    assert_eq!(
        parse_status(fixture!("tmutil-status-idle.plist")).unwrap(),
        TmutilStatus {
            running: false,
            phase: None,
            percent: None
        }
    );
}

#[test]
fn status_copying_uses_progress_percent() {
    assert_eq!(
        parse_status(fixture!("tmutil-status-copying.plist")).unwrap(),
        TmutilStatus {
            running: true,
            phase: Some("Copying".into()),
            percent: Some(0.731_637_932_268_697_4)
        }
    );
}

#[test]
fn status_binary_plist_reads_the_same() {
    let value =
        plist::Value::from_reader_xml(fixture!("tmutil-status-copying.plist").as_bytes()).unwrap();
    let mut binary = Vec::new();
    value.to_writer_binary(&mut binary).unwrap();
    assert_eq!(
        parse_status(&binary).unwrap(),
        parse_status(fixture!("tmutil-status-copying.plist")).unwrap()
    );
}

#[test]
fn destinationinfo_network() {
    assert_eq!(
        parse_destinations(fixture!("tmutil-destinationinfo-network.plist")).unwrap(),
        vec![Destination {
            id: "D46413A8-7046-460C-AF3D-01B7203D6ACB".into(),
            name: "MattBookPro".into(),
            kind: "Network".into(),
            url: Some("smb://matt@vault._smb._tcp.local./MattBookPro".into()),
            mount_point: Some(
                "/Volumes/.timemachine/vault._smb._tcp.local./1BA82C89-0C1E-4F9A-9D3B-3B2C4A1E2F10/MattBookPro"
                    .into()
            ),
            last_destination: true,
        }]
    );
}

#[test]
fn truncated_plists_are_errors() {
    for text in [
        fixture!("tmutil-status-copying.plist"),
        fixture!("tmutil-status-idle.plist"),
        fixture!("tmutil-destinationinfo-network.plist"),
    ] {
        let cut = &text[..text.len() / 2];
        assert!(
            matches!(parse_status(cut), Err(TmutilError::Plist(_))),
            "{cut}"
        );
        assert!(
            matches!(parse_destinations(cut), Err(TmutilError::Plist(_))),
            "{cut}"
        );
    }
}

#[test]
fn wrong_plist_for_the_command() {
    // destinationinfo's plist has no Running.
    let err = parse_status(fixture!("tmutil-destinationinfo-network.plist")).unwrap_err();
    assert_eq!(err.to_string(), "tmutil's property list has no `Running`");
    // status's plist has no Destinations: no destinations.
    assert_eq!(
        parse_destinations(fixture!("tmutil-status-idle.plist")).unwrap(),
        vec![]
    );
}

#[test]
fn error_texts() {
    let wrong = parse_status(
        r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Running</key><array/></dict></plist>"#,
    )
    .unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "tmutil's property list has `Running` that is not a boolean"
    );
    let not_dict = parse_status(
        r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><string>x</string></plist>"#,
    )
    .unwrap_err();
    assert_eq!(
        not_dict.to_string(),
        "tmutil's property list is not a dictionary at the top"
    );
}

#[test]
fn latestbackup_outputs() {
    assert_eq!(
        parse_latestbackup(
            "/Volumes/.timemachine/vault._smb._tcp.local./1BA82C89-0C1E-4F9A-9D3B-3B2C4A1E2F10/MattBookPro/2026-06-14-145122.backup\n"
        )
        .as_deref(),
        Some("2026-06-14-145122")
    );
    assert_eq!(
        parse_latestbackup("/Volumes/TM/Backups.backupdb/MattBookPro/2022-05-21-192820\n")
            .as_deref(),
        Some("2022-05-21-192820")
    );
    assert_eq!(
        parse_latestbackup("tmutil: latestbackup requires Full Disk Access privileges.\n"),
        None
    );
}
