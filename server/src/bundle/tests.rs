//! Tests of the bundle records against the fixtures and hostile input.

use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use plist::{Dictionary, Value};

use super::*;

pub(super) const HISTORY_XML: &[u8] =
    include_bytes!("../../tests/fixtures/bundle/SnapshotHistory.plist");
pub(super) const MACHINE_OK_XML: &[u8] =
    include_bytes!("../../tests/fixtures/bundle/MachineID-ok.plist");
pub(super) const MACHINE_FAILED_XML: &[u8] =
    include_bytes!("../../tests/fixtures/bundle/MachineID-verification-failed.plist");

/// The same plist in binary form, written by the plist crate.
pub(super) fn to_binary(xml: &[u8]) -> Vec<u8> {
    let value = Value::from_reader_xml(xml).unwrap();
    let mut out = Vec::new();
    value.to_writer_binary(&mut out).unwrap();
    assert!(out.starts_with(b"bplist00"));
    out
}

pub(super) fn xml_of(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    value.to_writer_xml(&mut out).unwrap();
    out
}

fn dict(pairs: Vec<(&str, Value)>) -> Value {
    let mut d = Dictionary::new();
    for (k, v) in pairs {
        d.insert(k.to_string(), v);
    }
    Value::Dictionary(d)
}

fn date(ts: &str) -> Value {
    let ts: Timestamp = ts.parse().unwrap();
    Value::Date(SystemTime::try_from(ts).unwrap().into())
}

fn history_of(names: &[&str]) -> SnapshotHistory {
    SnapshotHistory {
        entries: names
            .iter()
            .map(|n| HistoryEntry {
                name: n.to_string(),
                completed: None,
            })
            .collect(),
    }
}

fn machine(state: Option<i64>) -> MachineId {
    MachineId {
        verification_state: state,
        ..MachineId::default()
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn history_xml(entries: Vec<Value>) -> Vec<u8> {
    xml_of(&dict(vec![("Snapshots", Value::Array(entries))]))
}

fn entry(name: Value, completed: Option<Value>) -> Value {
    let mut pairs = vec![("com.apple.backupd.SnapshotName", name)];
    if let Some(c) = completed {
        pairs.push(("com.apple.backupd.SnapshotCompletionDate", c));
    }
    dict(pairs)
}

// --- the fixtures ---------------------------------------------------------------------------

#[test]
fn history_fixture_parses() {
    let h = SnapshotHistory::parse(HISTORY_XML).unwrap();
    assert_eq!(
        h.entries,
        vec![
            HistoryEntry {
                name: "2026-06-14-145122.backup".into(),
                completed: Some(ts("2026-06-14T03:51:22Z")),
            },
            HistoryEntry {
                name: "2026-06-14-155240.backup".into(),
                completed: Some(ts("2026-06-14T04:52:40Z")),
            },
        ]
    );
    assert_eq!(h.latest().unwrap().name, "2026-06-14-155240.backup");
    assert_eq!(h.entries[0].stamp(), Some("2026-06-14-145122"));
    assert!(h.contains_backup("2026-06-14-145122"));
    assert!(h.contains_backup("2026-06-14-155240.backup"));
    assert!(!h.contains_backup("2026-06-14-145123"));
    assert!(!h.contains_backup("2026-06-14-145122.inprogress"));
    assert!(!h.contains_backup(""));
}

#[test]
fn machine_id_fixtures_parse() {
    let ok = MachineId::parse(MACHINE_OK_XML).unwrap();
    assert_eq!(ok.verification_state, Some(0));
    assert_eq!(ok.recovery_declined, None);
    assert_eq!(
        ok.host_uuid.as_deref(),
        Some("EB3EA526-064B-58FA-807A-5F5144738118")
    );
    assert_eq!(ok.verification(), VerificationStatus::Fine);

    let failed = MachineId::parse(MACHINE_FAILED_XML).unwrap();
    assert_eq!(failed.verification_state, Some(2));
    assert_eq!(failed.recovery_declined, Some(ts("2022-10-22T16:13:26Z")));
    assert_eq!(failed.host_uuid, ok.host_uuid);
    assert_eq!(failed.verification(), VerificationStatus::Failed(2));

    assert_eq!(
        MachineId::default().verification(),
        VerificationStatus::Unknown
    );
}

#[test]
fn binary_forms_parse_like_xml() {
    assert_eq!(
        SnapshotHistory::parse(&to_binary(HISTORY_XML)).unwrap(),
        SnapshotHistory::parse(HISTORY_XML).unwrap()
    );
    for xml in [MACHINE_OK_XML, MACHINE_FAILED_XML] {
        assert_eq!(
            MachineId::parse(&to_binary(xml)).unwrap(),
            MachineId::parse(xml).unwrap()
        );
    }
}

#[test]
fn fixtures_mark_as_the_rule_says() {
    let h = SnapshotHistory::parse(HISTORY_XML).unwrap();
    let ok = MachineId::parse(MACHINE_OK_XML).unwrap();
    let failed = MachineId::parse(MACHINE_FAILED_XML).unwrap();
    let listed = Some("2026-06-14-155240");
    assert_eq!(mark_for(Some(&h), Some(&ok), listed), Mark::Good);
    assert_eq!(mark_for(Some(&h), Some(&failed), listed), Mark::Bad);
    assert_eq!(
        mark_for(Some(&h), Some(&ok), Some("2026-06-14-165000")),
        Mark::Unknown
    );
}

// --- partial (mid-write) files ----------------------------------------------------------------

/// Every prefix of `bytes` that stops before the end of the document is an error; one that holds
/// the whole document (only trailing whitespace missing) parses as the whole.
fn check_prefixes<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, BundleError>,
    record: Record,
) {
    let whole = parse(bytes).unwrap();
    let end = bytes
        .windows(8)
        .position(|w| w == b"</plist>")
        .map_or(bytes.len(), |p| p + 8);
    for n in 0..bytes.len() {
        match parse(&bytes[..n]) {
            Err(e) => {
                assert!(n < end, "prefix of {n} bytes failed: {e}");
                let msg = e.to_string();
                assert!(msg.starts_with(record.file_name()), "{msg}");
                assert!(!msg.contains('\n'), "{msg}");
            }
            Ok(v) => {
                assert!(n >= end, "prefix of {n} of {} bytes parsed", bytes.len());
                assert_eq!(v, whole);
            }
        }
    }
}

#[test]
fn every_prefix_of_a_record_is_an_error() {
    check_prefixes(HISTORY_XML, SnapshotHistory::parse, Record::SnapshotHistory);
    check_prefixes(
        &to_binary(HISTORY_XML),
        SnapshotHistory::parse,
        Record::SnapshotHistory,
    );
    for xml in [MACHINE_OK_XML, MACHINE_FAILED_XML] {
        check_prefixes(xml, MachineId::parse, Record::MachineId);
        check_prefixes(&to_binary(xml), MachineId::parse, Record::MachineId);
    }
}

#[test]
fn a_partial_record_never_marks_good() {
    let h = SnapshotHistory::parse(HISTORY_XML).unwrap();
    let ok = MachineId::parse(MACHINE_OK_XML).unwrap();
    let stamp = Some("2026-06-14-145122");
    for bytes in [HISTORY_XML.to_vec(), to_binary(HISTORY_XML)] {
        let end = bytes.len() - usize::from(bytes.ends_with(b"\n"));
        for n in 0..end {
            let partial = SnapshotHistory::parse(&bytes[..n]).ok();
            assert_ne!(mark_for(partial.as_ref(), Some(&ok), stamp), Mark::Good);
        }
    }
    for bytes in [MACHINE_OK_XML.to_vec(), to_binary(MACHINE_OK_XML)] {
        let end = bytes.len() - usize::from(bytes.ends_with(b"\n"));
        for n in 0..end {
            let partial = MachineId::parse(&bytes[..n]).ok();
            assert_ne!(mark_for(Some(&h), partial.as_ref(), stamp), Mark::Good);
        }
    }
}

#[test]
fn empty_and_other_formats_are_errors() {
    for bytes in [
        &b""[..],
        b"   \n",
        b"bplist00",
        b"{ Snapshots = (); }",
        b"<plist version=\"1.0\"><dict><key>Snapshots</key><array/></dict><dict/></plist>",
        b"<plist version=\"1.0\"><dict><key>Snapshots</key><array/></dict>",
        b"\x00\x01\x02",
    ] {
        assert!(SnapshotHistory::parse(bytes).is_err(), "{bytes:?}");
        assert!(MachineId::parse(bytes).is_err(), "{bytes:?}");
    }
}

// --- hostile content -------------------------------------------------------------------------

#[test]
fn history_with_wrong_types_is_an_error() {
    let good_name = || Value::String("2026-06-14-145122.backup".into());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("root array", xml_of(&Value::Array(vec![]))),
        ("no Snapshots", xml_of(&dict(vec![]))),
        (
            "Snapshots a string",
            xml_of(&dict(vec![("Snapshots", Value::String("x".into()))])),
        ),
        (
            "Snapshots a dict",
            xml_of(&dict(vec![("Snapshots", dict(vec![]))])),
        ),
        (
            "entry a string",
            history_xml(vec![Value::String("2026-06-14-145122".into())]),
        ),
        ("entry without name", history_xml(vec![dict(vec![])])),
        (
            "name an integer",
            history_xml(vec![entry(Value::Integer(20260614145122_i64.into()), None)]),
        ),
        (
            "name empty",
            history_xml(vec![entry(Value::String(String::new()), None)]),
        ),
        (
            "name with a slash",
            history_xml(vec![entry(
                Value::String("../2026-06-14-145122".into()),
                None,
            )]),
        ),
        (
            "name with a control character",
            history_xml(vec![entry(
                Value::String("2026-06-14-145122\u{1b}".into()),
                None,
            )]),
        ),
        (
            "date a string",
            history_xml(vec![entry(
                good_name(),
                Some(Value::String("2026-06-14T03:51:22Z".into())),
            )]),
        ),
        (
            "date an integer",
            history_xml(vec![entry(good_name(), Some(Value::Integer(0.into())))]),
        ),
        (
            "one good entry, one bad",
            history_xml(vec![
                entry(good_name(), Some(date("2026-06-14T03:51:22Z"))),
                entry(Value::Boolean(true), None),
            ]),
        ),
    ];
    for (what, bytes) in cases {
        for bytes in [bytes.clone(), to_binary(&bytes)] {
            let err = SnapshotHistory::parse(&bytes).expect_err(what);
            assert!(!err.to_string().contains('\n'), "{what}: {err}");
        }
    }
}

#[test]
fn machine_id_with_wrong_types_is_an_error_and_never_good() {
    let h = SnapshotHistory::parse(HISTORY_XML).unwrap();
    let cases: Vec<(&str, Value)> = vec![
        ("state a string", Value::String("0".into())),
        ("state a real", Value::Real(0.0)),
        ("state a boolean", Value::Boolean(false)),
        ("state too big", Value::Integer(u64::MAX.into())),
        (
            "state an array",
            Value::Array(vec![Value::Integer(0.into())]),
        ),
    ];
    for (what, state) in cases {
        let bytes = xml_of(&dict(vec![("VerificationState", state)]));
        for bytes in [bytes.clone(), to_binary(&bytes)] {
            let parsed = MachineId::parse(&bytes);
            assert!(parsed.is_err(), "{what}: {parsed:?}");
            let mark = mark_for(Some(&h), parsed.ok().as_ref(), Some("2026-06-14-145122"));
            assert_eq!(mark, Mark::Unknown, "{what}");
        }
    }
    let others: Vec<(&str, Value)> = vec![
        (
            "declined date a string",
            dict(vec![
                ("VerificationState", Value::Integer(0.into())),
                (
                    "RecoveryBackupDeclinedDate",
                    Value::String("2022-10-22".into()),
                ),
            ]),
        ),
        (
            "HostUUID an integer",
            dict(vec![
                ("VerificationState", Value::Integer(0.into())),
                ("com.apple.backupd.HostUUID", Value::Integer(1.into())),
            ]),
        ),
        (
            "HostUUID with a newline",
            dict(vec![
                ("VerificationState", Value::Integer(0.into())),
                ("com.apple.backupd.HostUUID", Value::String("a\nb".into())),
            ]),
        ),
        ("root a string", Value::String("VerificationState".into())),
    ];
    for (what, value) in others {
        assert!(MachineId::parse(&xml_of(&value)).is_err(), "{what}");
    }
}

#[test]
fn absent_keys_are_none_and_unknown() {
    let m = MachineId::parse(&xml_of(&dict(vec![]))).unwrap();
    assert_eq!(m, MachineId::default());
    let h = SnapshotHistory::parse(HISTORY_XML).unwrap();
    assert_eq!(
        mark_for(Some(&h), Some(&m), Some("2026-06-14-145122")),
        Mark::Unknown
    );
    // Entries without a completion date still count; unknown keys are ignored.
    let bytes = history_xml(vec![dict(vec![
        (
            "com.apple.backupd.SnapshotName",
            Value::String("2026-06-14-145122".into()),
        ),
        (
            "com.apple.backupd.SnapshotTotalBytesCopied",
            Value::Integer(42.into()),
        ),
    ])]);
    let h = SnapshotHistory::parse(&bytes).unwrap();
    assert_eq!(h.entries[0].completed, None);
    assert!(h.contains_backup("2026-06-14-145122.backup"));
}

#[test]
fn repeated_keys_are_an_error() {
    let state2_then_0 = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<plist version=\"1.0\"><dict>
<key>VerificationState</key><integer>2</integer>
<key>VerificationState</key><integer>0</integer>
</dict></plist>";
    let err = MachineId::parse(state2_then_0).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let twice_in_entry = b"<plist version=\"1.0\"><dict><key>Snapshots</key><array><dict>
<key>com.apple.backupd.SnapshotName</key><string>2026-06-14-145122</string>
<key>com.apple.backupd.SnapshotName</key><string>2026-06-14-155240</string>
</dict></array></dict></plist>";
    assert!(SnapshotHistory::parse(twice_in_entry).is_err());
    // The same key in different dictionaries is fine.
    assert_eq!(
        SnapshotHistory::parse(HISTORY_XML).unwrap().entries.len(),
        2
    );
}

#[test]
fn huge_strings_are_errors_or_ignored() {
    let huge = "9".repeat(1 << 20);
    assert!(
        SnapshotHistory::parse(&history_xml(vec![entry(Value::String(huge.clone()), None)]))
            .is_err()
    );
    let m = xml_of(&dict(vec![(
        "com.apple.backupd.HostUUID",
        Value::String(huge.clone()),
    )]));
    assert!(MachineId::parse(&m).is_err());
    // A big value under a key nobody reads does no harm.
    let m = xml_of(&dict(vec![
        ("VerificationState", Value::Integer(2.into())),
        ("Padding", Value::String(huge)),
    ]));
    assert_eq!(MachineId::parse(&m).unwrap().verification_state, Some(2));
}

#[test]
fn oversized_files_are_refused_unread() {
    let mut bytes = HISTORY_XML.to_vec();
    bytes.resize(MAX_RECORD_BYTES + 1, b' ');
    assert!(matches!(
        SnapshotHistory::parse(&bytes),
        Err(BundleError::TooLarge { .. })
    ));
}

fn deep_xml(open: &str, close: &str, depth: usize) -> Vec<u8> {
    let mut s = String::from("<plist version=\"1.0\"><dict><key>Snapshots</key>");
    s.push_str(&open.repeat(depth));
    s.push_str(&close.repeat(depth));
    s.push_str("</dict></plist>");
    s.into_bytes()
}

#[test]
fn deeply_nested_xml_is_refused_without_overflowing() {
    for (open, close) in [("<array>", "</array>"), ("<dict><key>a</key>", "</dict>")] {
        // Closed and unclosed, far beyond the limit.
        let bytes = deep_xml(open, close, 200_000);
        let err = SnapshotHistory::parse(&bytes).unwrap_err();
        assert!(matches!(err, BundleError::TooComplex { .. }), "{err}");
        let unclosed = format!("<plist version=\"1.0\">{}</plist>", open.repeat(200_000));
        assert!(matches!(
            MachineId::parse(unclosed.as_bytes()),
            Err(BundleError::TooComplex { .. })
        ));
    }
    // Just within the limit is a type error, not a depth error.
    let bytes = deep_xml("<array>", "</array>", MAX_DEPTH - 1);
    assert!(matches!(
        SnapshotHistory::parse(&bytes),
        Err(BundleError::Field { .. })
    ));
}

/// A binary plist of `n` arrays, each holding `fanout` references to the next one (the last is
/// empty): nested `n` deep, and `fanout^(n-1)` values once expanded.
fn bplist_chain(n: u32, fanout: u8) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for i in 0..n {
        offsets.push(out.len() as u32);
        let len = if i + 1 < n { fanout } else { 0 };
        assert!(len < 15);
        out.push(0xA0 | len);
        for _ in 0..len {
            out.extend_from_slice(&(i + 1).to_be_bytes());
        }
    }
    let table = out.len() as u64;
    for o in offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&[4, 4]); // offset size, reference size
    out.extend_from_slice(&u64::from(n).to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes()); // top object
    out.extend_from_slice(&table.to_be_bytes());
    out
}

#[test]
fn hand_built_binary_plists_are_read() {
    // The builder is right: a short chain is an array of arrays.
    let v = Value::from_reader(std::io::Cursor::new(bplist_chain(3, 2))).unwrap();
    let inner = Value::Array(vec![Value::Array(vec![]); 2]);
    assert_eq!(v, Value::Array(vec![inner.clone(), inner]));
}

#[test]
fn deeply_nested_binary_is_refused_without_overflowing() {
    let err = SnapshotHistory::parse(&bplist_chain(200_000, 1)).unwrap_err();
    assert!(matches!(err, BundleError::TooComplex { .. }), "{err}");
}

#[test]
fn exponential_binary_is_refused_quickly() {
    // 14^29 values from 1.7 KB.
    let bytes = bplist_chain(30, 14);
    let start = Instant::now();
    let err = MachineId::parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("values"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn too_many_values_are_refused() {
    let mut s = String::from("<plist version=\"1.0\"><dict><key>Snapshots</key><array>");
    s.push_str(&"<true/>".repeat(MAX_VALUES + 1));
    s.push_str("</array></dict></plist>");
    let err = SnapshotHistory::parse(s.as_bytes()).unwrap_err();
    assert!(matches!(err, BundleError::TooComplex { .. }), "{err}");
}

#[test]
fn mutated_binary_records_never_panic() {
    for xml in [HISTORY_XML, MACHINE_OK_XML, MACHINE_FAILED_XML] {
        let bin = to_binary(xml);
        for i in 0..bin.len() {
            for b in [0x00, 0x01, 0x0f, 0x10, 0x33, 0x7f, 0x80, 0xa5, 0xd1, 0xff] {
                let mut m = bin.clone();
                m[i] = b;
                let _ = SnapshotHistory::parse(&m);
                let _ = MachineId::parse(&m);
            }
        }
    }
}

// --- history changes -------------------------------------------------------------------------

#[test]
fn an_emptied_history_is_a_reset() {
    let before = SnapshotHistory::parse(HISTORY_XML).unwrap();
    let empty_xml = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<plist version=\"1.0\"><dict><key>Snapshots</key><array/></dict></plist>\n";
    for bytes in [empty_xml.to_vec(), to_binary(empty_xml)] {
        let empty = SnapshotHistory::parse(&bytes).unwrap();
        assert!(empty.entries.is_empty());
        assert!(empty.latest().is_none());
        assert!(empty.is_reset_from(&before));
        assert!(!before.is_reset_from(&empty));
        assert!(!empty.is_reset_from(&empty));
        assert!(empty.new_entries_since(&before).is_empty());
    }
}

#[test]
fn history_changes() {
    let a = "2026-06-14-145122.backup";
    let b = "2026-06-14-155240.backup";
    let c = "2026-06-14-165301.backup";
    let d = "2026-06-15-090000.backup";
    let before = history_of(&[a, b]);

    let grown = history_of(&[a, b, c]);
    assert!(!grown.is_reset_from(&before));
    assert_eq!(grown.new_entries_since(&before), vec![&grown.entries[2]]);

    // Old backups deleted (thinning) while a new one completed: not a new set.
    let thinned = history_of(&[b, c]);
    assert!(!thinned.is_reset_from(&before));
    assert_eq!(
        thinned.new_entries_since(&before),
        vec![&thinned.entries[1]]
    );
    let shorter = history_of(&[b]);
    assert!(!shorter.is_reset_from(&before));
    assert!(shorter.new_entries_since(&before).is_empty());

    // A new set seen only after its first backup: nothing of the old list survives.
    let new_set = history_of(&[d]);
    assert!(new_set.is_reset_from(&before));
    assert_eq!(
        new_set.new_entries_since(&before),
        vec![&new_set.entries[0]]
    );

    // Stamps match whether or not the name carries `.backup`.
    let bare = history_of(&["2026-06-14-145122", "2026-06-14-155240"]);
    assert!(!bare.is_reset_from(&before));
    assert!(bare.new_entries_since(&before).is_empty());

    assert!(!before.is_reset_from(&SnapshotHistory::default()));
    assert_eq!(
        before.new_entries_since(&SnapshotHistory::default()).len(),
        2
    );
}

#[test]
fn latest_prefers_completion_then_stamp() {
    let mut h = history_of(&["2026-06-14-155240.backup", "2026-06-14-145122.backup"]);
    assert_eq!(h.latest().unwrap().name, "2026-06-14-155240.backup");
    h.entries[1].completed = Some(ts("2026-06-14T03:51:22Z"));
    assert_eq!(h.latest().unwrap().name, "2026-06-14-145122.backup");
}

#[test]
fn backup_stamps() {
    assert_eq!(
        backup_stamp("2026-06-14-145122.backup"),
        Some("2026-06-14-145122")
    );
    assert_eq!(backup_stamp("2026-06-14-145122"), Some("2026-06-14-145122"));
    for not in [
        "",
        ".backup",
        "2026-06-14-145122.inprogress",
        "2026-06-14-145122.previous",
        "2026-06-14-145122.backup.backup",
        "/Volumes/x/2026-06-14-145122.backup",
        "2026-13-14-145122",
        "2026-02-30-145122",
        "2026-06-14-245122",
        "2026-06-14 145122",
        "+026-06-14-145122",
        "２026-06-14-145122",
        "2026-06-14-1451220",
    ] {
        assert_eq!(backup_stamp(not), None, "{not:?}");
    }
}

/// One row of the marks table: history, MachineID, backup stamp, expected mark.
type Row<'a> = (
    Option<&'a SnapshotHistory>,
    Option<&'a MachineId>,
    Option<&'a str>,
    Mark,
);

// --- marks -----------------------------------------------------------------------------------

#[test]
fn marks_rule_table() {
    let listed = "2026-06-14-145122";
    let h = history_of(&["2026-06-14-145122.backup"]);
    let empty = SnapshotHistory::default();
    let fine = machine(Some(0));
    let failed = machine(Some(2));
    let odd = machine(Some(-1));
    let no_state = machine(None);
    use Mark::*;
    let table: Vec<Row> = vec![
        (Some(&h), Some(&fine), Some(listed), Good),
        (
            Some(&h),
            Some(&fine),
            Some("2026-06-14-145122.backup"),
            Good,
        ),
        (Some(&h), Some(&fine), Some("2026-06-14-145123"), Unknown),
        (Some(&h), Some(&fine), None, Unknown),
        (Some(&empty), Some(&fine), Some(listed), Unknown),
        (None, Some(&fine), Some(listed), Unknown),
        (Some(&h), None, Some(listed), Unknown),
        (Some(&h), Some(&no_state), Some(listed), Unknown),
        (None, None, None, Unknown),
        (Some(&h), Some(&failed), Some(listed), Bad),
        (Some(&h), Some(&failed), None, Bad),
        (None, Some(&failed), None, Bad),
        (Some(&empty), Some(&odd), Some(listed), Bad),
    ];
    for (i, (history, machine, stamp, want)) in table.into_iter().enumerate() {
        assert_eq!(mark_for(history, machine, stamp), want, "row {i}");
    }
    assert_eq!(Good.as_prop(), "good");
    assert_eq!(Bad.as_prop(), "bad");
    assert_eq!(Unknown.as_prop(), "unknown");
    assert_eq!(Bad.to_string(), "bad");
    // The props this module writes are the ones the snapshot model reads back.
    for m in [Good, Bad, Unknown] {
        let v = crate::snapshot::Verification::from_prop(Some(m.as_prop()));
        assert_eq!(format!("{v:?}"), format!("{m:?}"));
    }
}

#[test]
fn error_messages_name_the_file_and_reason() {
    let err = SnapshotHistory::parse(&HISTORY_XML[..100]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "com.apple.TimeMachine.SnapshotHistory.plist: not a complete property list ("
        ),
        "{msg}"
    );
    let err = MachineId::parse(&xml_of(&dict(vec![(
        "VerificationState",
        Value::String("0".into()),
    )])))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "com.apple.TimeMachine.MachineID.plist: VerificationState is a string, not an integer"
    );
    let err =
        SnapshotHistory::parse(&history_xml(vec![entry(Value::Boolean(true), None)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "com.apple.TimeMachine.SnapshotHistory.plist: Snapshots[0].com.apple.backupd.SnapshotName is a boolean, not a string"
    );
}
