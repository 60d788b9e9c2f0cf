//! Helpers shared by the fuzz targets: how input bytes become text, and the checks every target
//! makes of an error message and of a second run.

use std::fmt::Debug;

/// The input as the daemon and the agent see another program's output: bytes read as UTF-8,
/// invalid sequences replaced (what `String::from_utf8_lossy` gives them).
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// An error message is one line: it goes into a log line, a CLI error or an API status.
#[track_caller]
pub fn assert_one_line(what: &str, message: &str) {
    assert!(
        !message.contains('\n'),
        "{what}: the message is not one line: {message:?}"
    );
}

/// A message that must not carry any control character (the bundle readers promise this: text
/// from outside is passed through their `one_line`, which turns control characters into spaces).
#[track_caller]
pub fn assert_no_control(what: &str, message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "{what}: the message holds a control character: {message:?}"
    );
}

/// Parsing is deterministic: a second run gives the same result. Compared through `Debug`, so
/// that results holding a NaN (not equal to itself) still compare.
#[track_caller]
pub fn assert_same<T: Debug>(what: &str, first: &T, second: &T) {
    let (a, b) = (format!("{first:?}"), format!("{second:?}"));
    assert!(a == b, "{what}: not deterministic:\n{a}\n!=\n{b}");
}
