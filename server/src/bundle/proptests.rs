//! Properties: the parsers never panic, and a mark is good only when both conditions hold.

use std::time::SystemTime;

use jiff::Timestamp;
use plist::{Dictionary, Value};
use proptest::prelude::*;

use super::tests::{HISTORY_XML, MACHINE_FAILED_XML, MACHINE_OK_XML, to_binary, xml_of};
use super::*;

fn parse_both(bytes: &[u8]) {
    let _ = SnapshotHistory::parse(bytes);
    let _ = MachineId::parse(bytes);
}

/// A valid stamp from a few hours of one day, so histories and queries collide often.
fn stamp() -> impl Strategy<Value = String> {
    (10u32..14, 0u32..3).prop_map(|(h, m)| format!("2026-06-14-{h:02}{m:02}00"))
}

fn name_for(stamp: &str, suffixed: bool) -> String {
    if suffixed {
        format!("{stamp}.backup")
    } else {
        stamp.to_string()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        parse_both(&bytes);
        let mut bin = b"bplist00".to_vec();
        bin.extend_from_slice(&bytes);
        parse_both(&bin);
        let mut xml = b"<plist version=\"1.0\"><dict>".to_vec();
        xml.extend_from_slice(&bytes);
        parse_both(&xml);
    }

    #[test]
    fn parsers_never_panic_on_mutated_records(
        which in 0usize..3,
        binary in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let xml = [HISTORY_XML, MACHINE_OK_XML, MACHINE_FAILED_XML][which];
        let mut bytes = if binary { to_binary(xml) } else { xml.to_vec() };
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        parse_both(&bytes);
    }

    #[test]
    fn a_mark_is_good_only_when_listed_and_fine(
        listed in proptest::collection::vec((stamp(), any::<bool>()), 0..6),
        history_read in any::<bool>(),
        state in proptest::option::of(prop_oneof![Just(0i64), Just(2i64), any::<i64>()]),
        machine_read in any::<bool>(),
        query in proptest::option::of((stamp(), any::<bool>())),
    ) {
        let history = SnapshotHistory {
            entries: listed
                .iter()
                .map(|(s, suffixed)| HistoryEntry { name: name_for(s, *suffixed), completed: None })
                .collect(),
        };
        let machine = MachineId { verification_state: state, ..MachineId::default() };
        let query = query.map(|(s, suffixed)| name_for(&s, suffixed));
        let h = history_read.then_some(&history);
        let m = machine_read.then_some(&machine);
        let mark = mark_for(h, m, query.as_deref());

        let is_listed = history_read
            && query.as_ref().is_some_and(|q| {
                let q = q.strip_suffix(".backup").unwrap_or(q);
                listed.iter().any(|(s, _)| s == q)
            });
        let fine = machine_read && state == Some(0);
        let failed = machine_read && state.is_some_and(|s| s != 0);
        prop_assert_eq!(mark == Mark::Good, is_listed && fine);
        prop_assert_eq!(mark == Mark::Bad, failed);
    }

    #[test]
    fn histories_round_trip_in_both_forms(
        entries in proptest::collection::vec(
            (stamp(), any::<bool>(), proptest::option::of(0i64..4_000_000_000)),
            0..8,
        ),
        binary in any::<bool>(),
    ) {
        let mut list = Vec::new();
        let mut want = Vec::new();
        for (s, suffixed, secs) in entries {
            let name = name_for(&s, suffixed);
            let completed = secs.map(|s| Timestamp::from_second(s).unwrap());
            let mut d = Dictionary::new();
            d.insert("com.apple.backupd.SnapshotName".into(), Value::String(name.clone()));
            if let Some(t) = completed {
                d.insert(
                    "com.apple.backupd.SnapshotCompletionDate".into(),
                    Value::Date(SystemTime::try_from(t).unwrap().into()),
                );
            }
            list.push(Value::Dictionary(d));
            want.push(HistoryEntry { name, completed });
        }
        let mut root = Dictionary::new();
        root.insert("Snapshots".into(), Value::Array(list));
        let xml = xml_of(&Value::Dictionary(root));
        let bytes = if binary { to_binary(&xml) } else { xml };
        let parsed = SnapshotHistory::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed.entries, &want);
        for e in &want {
            prop_assert!(parsed.contains_backup(&e.name));
        }
    }
}
