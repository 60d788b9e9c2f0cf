//! Hostile inputs found while fuzzing the agent's parsers (`fuzz/`, run by `scripts/fuzz`), kept
//! as ordinary tests. A test marked ignored (`ignore` attribute) holds an input for a bug that is not fixed yet:
//! remove the mark with the fix.

use backstop_agent_core::detector::{parse_destinations, parse_status};

/// A property list whose `Running` is `depth` arrays nested in each other.
fn nested_plist(depth: usize) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n\
         <dict><key>Running</key>{}{}</dict></plist>\n",
        "<array>".repeat(depth),
        "</array>".repeat(depth)
    )
}

/// tmutil's output nested 200 000 levels deep (3 MB) is an error, not a stack overflow that takes
/// the agent down. `plist::Value::from_reader` reads it without recursion, but dropping the value
/// recurses once per level, so the tmutil parsers refuse XML nested deeper than tmutil ever nests
/// before parsing (as the server's bundle reader bounds its depth, server/src/bundle/read.rs).
#[test]
fn deeply_nested_tmutil_output_is_an_error() {
    let text = nested_plist(200_000);
    // The agent's main thread has 8 MiB of stack.
    let result = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            (
                parse_status(text.as_bytes()).is_err(),
                parse_destinations(text.as_bytes()).is_err(),
            )
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(result, (true, true));
}
