//! Reading an accounts file as a stream: JSON lines line by line, a JSON array element by
//! element. A file of millions of accounts is never held whole; each entry is parsed, validated
//! and handed to the caller in input order, good or bad.
//!
//! The format is told by the first byte that is not white space: `[` starts a JSON array,
//! anything else is JSON lines (one account object per line, blank lines allowed). A bad entry is
//! named by its index in an array (`entry 0` is the first) or its line in JSON lines (`line 1` is
//! the first). A syntax error in an array ends the array (nothing after it can be read); in JSON
//! lines it spoils only its own line.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::BufRead;
use std::ops::ControlFlow;

use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;

use super::account::{parse_entry, AccountEntry, EntryError};

/// Where an entry is: its index in an array (`entry 0` first) or its line (`line 1` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub format: Format,
    pub number: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.format {
            Format::Array => write!(f, "entry {}", self.number),
            Format::Lines => write!(f, "line {}", self.number),
        }
    }
}

/// What the reader found next, in input order. Items are handed over one at a time and taken
/// apart at once, never kept in bulk, so the size of the large variant costs nothing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Item {
    /// A valid entry, with where it is.
    Entry { location: Location, entry: AccountEntry },
    /// A bad entry, or a syntax error that ends the file.
    Bad(EntryError),
}

/// The two forms of the accounts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Array,
    Lines,
}

/// Reads every entry of `reader` and hands each to `on`, which may stop the reading early with
/// `ControlFlow::Break`. An I/O error ends the reading with `Err`; everything about the content
/// is an `Item::Bad`.
pub fn read_accounts<R: BufRead>(reader: R, on: &mut dyn FnMut(Item) -> ControlFlow<()>) -> std::io::Result<Format> {
    read_accounts_as(reader, None, on)
}

/// [`read_accounts`] with the form either told by the first byte (`None`) or given (a request
/// body whose `Content-Type` names it: then a JSON-lines body whose first line is an array is
/// a bad line, not an array).
pub fn read_accounts_as<R: BufRead>(
    mut reader: R,
    given: Option<Format>,
    on: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> std::io::Result<Format> {
    let format = if let Some(format) = given {
        format
    } else {
        loop {
            let buf = reader.fill_buf()?;
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let format = if buf[i] == b'[' { Format::Array } else { Format::Lines };
                    break format;
                }
                // Only white space so far: an empty file is an empty list in either form.
                None if buf.is_empty() => return Ok(Format::Lines),
                None => {
                    let n = buf.len();
                    reader.consume(n);
                }
            }
        }
    };
    match format {
        Format::Lines => read_lines(reader, on)?,
        Format::Array => read_array(reader, on)?,
    }
    Ok(format)
}

fn item(location: Location, value: &Value) -> Item {
    match parse_entry(value) {
        Ok(entry) => Item::Entry { location, entry },
        Err((field, message)) => Item::Bad(EntryError {
            location: location.to_string(),
            field,
            message,
        }),
    }
}

fn read_lines<R: BufRead>(mut reader: R, on: &mut dyn FnMut(Item) -> ControlFlow<()>) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = Location {
            format: Format::Lines,
            number,
        };
        let next = match serde_json::from_slice::<Value>(&line) {
            Ok(value) => item(location, &value),
            Err(e) => Item::Bad(EntryError {
                location: location.to_string(),
                field: "(line)".into(),
                message: format!("not JSON: {e}"),
            }),
        };
        if on(next).is_break() {
            return Ok(());
        }
    }
}

fn read_array<R: BufRead>(reader: R, on: &mut dyn FnMut(Item) -> ControlFlow<()>) -> std::io::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut elements = Elements {
        on,
        index: 0,
        stopped: false,
    };
    let result = de.deserialize_seq(&mut elements).and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        // Whatever follows a stop is not read, so it cannot be wrong.
        Err(_) if elements.stopped => Ok(()),
        Err(e) if e.is_io() => Err(std::io::Error::other(e)),
        Err(e) => {
            let _ = (elements.on)(Item::Bad(EntryError {
                location: format!("line {}", e.line()),
                field: "(file)".into(),
                message: format!("not a JSON array of accounts: {e}"),
            }));
            Ok(())
        }
    }
}

/// Visits the array's elements one at a time, so only one is in memory.
struct Elements<'a> {
    on: &'a mut dyn FnMut(Item) -> ControlFlow<()>,
    index: u64,
    stopped: bool,
}

impl<'de> Visitor<'de> for &mut Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of accounts")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            let location = Location {
                format: Format::Array,
                number: self.index,
            };
            let next = item(location, &value);
            self.index += 1;
            if (self.on)(next).is_break() {
                self.stopped = true;
                // Tell serde_json to stop here; the caller ignores the error this causes.
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Finds account numbers that appear more than once, in input order, without keeping the
/// numbers: each is remembered as a 128-bit keyed hash with the place it was first seen (about
/// 20 bytes per account, so 1,000,000 accounts take some 40 MiB). Two different numbers share a
/// hash with a probability near 2^-128 per pair, far below any hardware error rate, so a hit is
/// treated as a repeat.
#[derive(Default)]
pub struct DuplicateCheck {
    /// Hash → where it was first seen (the entry index or line; `u32::MAX` if beyond).
    seen: HashMap<[u8; 16], u32>,
    hashers: (RandomState, RandomState),
}

impl DuplicateCheck {
    /// Notes `account_number` seen at `location`; an error when it was seen before.
    pub fn check(&mut self, account_number: &str, location: Location) -> Option<EntryError> {
        let half = |state: &RandomState| {
            let mut h = state.build_hasher();
            h.write(account_number.as_bytes());
            h.finish().to_le_bytes()
        };
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&half(&self.hashers.0));
        key[8..].copy_from_slice(&half(&self.hashers.1));
        match self.seen.get(&key) {
            Some(&first) => {
                let first = if first == u32::MAX {
                    "an earlier entry".to_string()
                } else {
                    Location {
                        number: u64::from(first),
                        ..location
                    }
                    .to_string()
                };
                Some(EntryError {
                    location: location.to_string(),
                    field: "account_number".into(),
                    message: format!("{account_number} appears twice in the file (first at {first})"),
                })
            }
            None => {
                self.seen
                    .insert(key, u32::try_from(location.number).unwrap_or(u32::MAX));
                None
            }
        }
    }
}

/// Reads a whole accounts file held in memory (a request body, the demo seed) and validates it:
/// every good entry in order, or every problem in input order (all-or-nothing).
pub fn parse_all(bytes: &[u8]) -> Result<Vec<AccountEntry>, Vec<EntryError>> {
    parse_all_as(bytes, None)
}

/// [`parse_all`] with the form given (`Some`) or told by the first byte (`None`).
pub fn parse_all_as(bytes: &[u8], format: Option<Format>) -> Result<Vec<AccountEntry>, Vec<EntryError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut duplicates = DuplicateCheck::default();
    let read = read_accounts_as(bytes, format, &mut |item| {
        match item {
            Item::Entry { location, entry } => match duplicates.check(&entry.account.account_number, location) {
                Some(e) => errors.push(e),
                None => entries.push(entry),
            },
            Item::Bad(e) => errors.push(e),
        }
        ControlFlow::Continue(())
    });
    if let Err(e) = read {
        // Reading from memory does not fail; keep the error rather than lose it.
        errors.push(EntryError {
            location: "(file)".into(),
            field: "(file)".into(),
            message: e.to_string(),
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(text: &str) -> (Vec<String>, Vec<String>) {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        read_accounts(text.as_bytes(), &mut |item| {
            match item {
                Item::Entry { location, .. } => good.push(location.to_string()),
                Item::Bad(e) => bad.push(format!("{}: {}", e.location, e.field)),
            }
            ControlFlow::Continue(())
        })
        .expect("in memory");
        (good, bad)
    }

    #[test]
    fn json_lines_are_read_line_by_line_with_errors_in_input_order() {
        let text = "{\"account_number\": \"A-1\"}\n\nnot json\n{\"account_number\": \"A-2\", \"status\": \"frozen\"}\r\n{\"account_number\": \"A-3\"}";
        let (good, bad) = locations(text);
        assert_eq!(good, ["line 1", "line 5"]);
        assert_eq!(bad, ["line 3: (line)", "line 4: status"]);
    }

    #[test]
    fn an_array_is_read_element_by_element() {
        let text = "  [{\"account_number\": \"A-1\"}, 7, {\"account_number\": \"A-2\", \"currency\": \"usd\"},\n {\"account_number\": \"A-3\"}]\n";
        let (good, bad) = locations(text);
        assert_eq!(good, ["entry 0", "entry 3"]);
        assert_eq!(bad, ["entry 1: (entry)", "entry 2: currency"]);
    }

    #[test]
    fn a_syntax_error_ends_an_array_after_the_entries_before_it() {
        let (good, bad) = locations("[{\"account_number\": \"A-1\"},\n {\"account_number\" \"A-2\"}]");
        assert_eq!(good, ["entry 0"]);
        assert_eq!(bad, ["line 2: (file)"]);
        let (_, bad) = locations("[{\"account_number\": \"A-1\"}] trailing");
        assert_eq!(bad, ["line 1: (file)"]);
        let (_, bad) = locations("[{\"account_number\": \"A-1\"}");
        assert_eq!(bad, ["line 1: (file)"]);
    }

    #[test]
    fn empty_files_are_empty_lists() {
        for text in ["", "  \n", "[]", " [ ]\n"] {
            assert_eq!(locations(text), (vec![], vec![]), "{text:?}");
        }
    }

    #[test]
    fn the_reader_stops_when_asked() {
        for text in [
            "[{\"account_number\": \"A-1\"}, {\"account_number\": \"A-2\"}, garbage",
            "{\"account_number\": \"A-1\"}\n{\"account_number\": \"A-2\"}\ngarbage\n",
        ] {
            let mut seen = 0;
            read_accounts(text.as_bytes(), &mut |item| {
                assert!(matches!(item, Item::Entry { .. }), "{item:?}");
                seen += 1;
                if seen == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("in memory");
            assert_eq!(seen, 2);
        }
    }

    #[test]
    fn repeated_account_numbers_are_reported_where_they_repeat() {
        let text = "{\"account_number\": \"A-1\"}\n{\"account_number\": \"A-2\"}\n{\"account_number\": \"A-1\"}\n";
        let errors = parse_all(text.as_bytes()).expect_err("a repeat");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location, "line 3");
        assert!(errors[0].message.contains("first at line 1"), "{}", errors[0].message);
    }
}
