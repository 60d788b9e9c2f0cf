//! Reading a record's bytes as a property list, defensively.
//!
//! The `plist` crate reads XML and binary plists without recursion, but a hostile file can still
//! hurt: a deeply nested value is dropped recursively (stack overflow), and a binary plist may
//! reference one array from many places, so a few hundred bytes expand into billions of values.
//! So the value is built from the reader's event stream through [`Limits`], which ends the stream
//! at the first exceeded limit. Only XML and binary plists are accepted (Time Machine writes
//! nothing else; the crate's fallback to the old ASCII format is not used).

use std::collections::HashSet;
use std::io::Cursor;

use plist::stream::{BinaryReader, Event, XmlReader};
use plist::{Dictionary, Value};

use super::{BundleError, Record, one_line};

/// The largest record file read, in bytes (real ones are a few KiB).
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// The deepest nesting of arrays and dictionaries accepted (real records nest 3 deep).
pub const MAX_DEPTH: usize = 32;
/// The most values (scalars, arrays, dictionaries, keys) a record may hold.
pub const MAX_VALUES: usize = 1_000_000;
/// The most bytes of strings and data, counted over every value (references included).
const MAX_PAYLOAD_BYTES: usize = MAX_RECORD_BYTES;

const BINARY_MAGIC: &[u8] = b"bplist00";
const XML_END: &[u8] = b"</plist>";

/// Reads `bytes` as an XML or binary plist whose root is a dictionary.
pub(super) fn read_dict(record: Record, bytes: &[u8]) -> Result<Dictionary, BundleError> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(BundleError::TooLarge {
            record,
            len: bytes.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    // The plist crate has fuzz tests and no input here was seen to panic it; this is a second line so
    // that a bug in it costs one unread record (retried on the next change), not the caller.
    let value = std::panic::catch_unwind(|| read_value(record, bytes)).unwrap_or_else(|_| {
        Err(BundleError::Unreadable {
            record,
            reason: "the plist reader failed unexpectedly".to_string(),
        })
    })?;
    match value {
        Value::Dictionary(dict) => Ok(dict),
        other => Err(BundleError::Field {
            record,
            field: "the root".to_string(),
            problem: format!("is {}, not a dictionary", kind_of(&other)),
        }),
    }
}

fn read_value(record: Record, bytes: &[u8]) -> Result<Value, BundleError> {
    let built = if bytes.starts_with(BINARY_MAGIC) {
        build(record, BinaryReader::new(Cursor::new(bytes)))
    } else {
        // The reader accepts a document cut off after the root value's end; a whole record ends
        // with `</plist>` (and perhaps a newline).
        if !bytes.trim_ascii_end().ends_with(XML_END) {
            return Err(BundleError::Unreadable {
                record,
                reason: "does not end with </plist>".to_string(),
            });
        }
        build(record, XmlReader::new(bytes))
    };
    built?.map_err(|e| BundleError::Unreadable {
        record,
        reason: one_line(&e.to_string(), 160),
    })
}

/// Builds the value; the outer error is an exceeded limit (which ended the stream early, so the
/// inner result does not matter), the inner one the reader's.
fn build<'a>(
    record: Record,
    events: impl Iterator<Item = Result<Event<'a>, plist::Error>>,
) -> Result<Result<Value, plist::Error>, BundleError> {
    let mut limits = Limits {
        events,
        record,
        stack: Vec::new(),
        values: 0,
        payload: 0,
        exceeded: None,
    };
    let value = Value::from_events(&mut limits);
    match limits.exceeded {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

/// Where the stream is inside one array or dictionary.
enum Frame {
    Array,
    Dict {
        keys: HashSet<String>,
        want_key: bool,
    },
}

/// Passes events through until one exceeds a limit (depth, values, bytes of text and data) or
/// repeats a key in a dictionary (the builder would keep the last, Time Machine never writes one,
/// and which copy counts is anyone's guess); then records why in `exceeded` and ends the stream.
/// Malformed streams pass through for the builder to reject.
struct Limits<I> {
    events: I,
    record: Record,
    stack: Vec<Frame>,
    values: usize,
    payload: usize,
    exceeded: Option<BundleError>,
}

impl<'a, I: Iterator<Item = Result<Event<'a>, plist::Error>>> Iterator for Limits<I> {
    type Item = Result<Event<'a>, plist::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.exceeded.is_some() {
            return None;
        }
        let event = match self.events.next()? {
            Ok(event) => event,
            Err(e) => return Some(Err(e)),
        };
        match self.check(&event) {
            Ok(()) => Some(Ok(event)),
            Err(e) => {
                self.exceeded = Some(e);
                None
            }
        }
    }
}

impl<I> Limits<I> {
    fn check(&mut self, event: &Event<'_>) -> Result<(), BundleError> {
        let record = self.record;
        let too_complex = |what: String| BundleError::TooComplex { record, what };
        match event {
            Event::String(s) => self.payload = self.payload.saturating_add(s.len()),
            Event::Data(d) => self.payload = self.payload.saturating_add(d.len()),
            _ => {}
        }
        if self.payload > MAX_PAYLOAD_BYTES {
            return Err(too_complex(format!(
                "more than {MAX_PAYLOAD_BYTES} bytes of strings and data"
            )));
        }
        if !matches!(event, Event::EndCollection) {
            self.values += 1;
            if self.values > MAX_VALUES {
                return Err(too_complex(format!("more than {MAX_VALUES} values")));
            }
        }
        if let Some(Frame::Dict { keys, want_key }) = self.stack.last_mut()
            && *want_key
        {
            match event {
                Event::String(key) => {
                    if !keys.insert(key.to_string()) {
                        return Err(BundleError::Field {
                            record,
                            field: format!("the key {:?}", one_line(key, 64)),
                            problem: "appears twice in one dictionary".to_string(),
                        });
                    }
                    *want_key = false;
                    return Ok(());
                }
                Event::EndCollection => {}
                // Not a key: malformed, the builder says so.
                _ => return Ok(()),
            }
        }
        match event {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                if self.stack.len() == MAX_DEPTH {
                    return Err(too_complex(format!(
                        "nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                self.stack.push(match event {
                    Event::StartArray(_) => Frame::Array,
                    _ => Frame::Dict {
                        keys: HashSet::new(),
                        want_key: true,
                    },
                });
                return Ok(());
            }
            Event::EndCollection => {
                self.stack.pop();
            }
            _ => {}
        }
        // A whole value ended: the dictionary holding it wants a key next.
        if let Some(Frame::Dict { want_key, .. }) = self.stack.last_mut() {
            *want_key = true;
        }
        Ok(())
    }
}

/// The plist type of a value, for messages.
pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::Dictionary(_) => "a dictionary",
        Value::Boolean(_) => "a boolean",
        Value::Data(_) => "data",
        Value::Date(_) => "a date",
        Value::Real(_) => "a real",
        Value::Integer(_) => "an integer",
        Value::String(_) => "a string",
        Value::Uid(_) => "a uid",
        _ => "an unknown value",
    }
}

/// A field's date as a timestamp; `None` when the key is absent, an error when it is anything
/// other than a representable date.
pub(super) fn optional_date(
    record: Record,
    dict: &Dictionary,
    key: &str,
    field: impl Fn() -> String,
) -> Result<Option<jiff::Timestamp>, BundleError> {
    let Some(value) = dict.get(key) else {
        return Ok(None);
    };
    let wrong = |problem: String| BundleError::Field {
        record,
        field: field(),
        problem,
    };
    let date = value
        .as_date()
        .ok_or_else(|| wrong(format!("is {}, not a date", kind_of(value))))?;
    let time: std::time::SystemTime = date.into();
    jiff::Timestamp::try_from(time)
        .map(Some)
        .map_err(|_| wrong("is a date out of range".to_string()))
}
